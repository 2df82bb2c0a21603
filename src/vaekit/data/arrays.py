"""User arrays: .npy and .npz files, tabular (n, D) or images (n, H, W[, C]) / (n, C, H, W)."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from tokenize import TokenError

import numpy as np
import scipy.sparse as sp

from ..engine.sources import ArraySource, SparseSource, as_labels
from ..exceptions import DataError
from .dataset import Dataset, check_finite, infer_kind, source_dataset

DATA_KEYS = ("X", "x", "data", "images")
LABEL_KEYS = ("y", "labels", "targets")
SPARSE_KEYS = {"format", "shape", "data"}  # what scipy.sparse.save_npz writes, whatever the format
CHANNELS = (1, 3, 4)
# What np.load raises on damaged files: a damaged .npy header is parsed as a Python literal
# (SyntaxError, TokenError); zipfile raises NotImplementedError for an unknown compression method
# and RuntimeError for an encrypted member.
LOAD_ERRORS = (
    ValueError,
    NotImplementedError,
    RuntimeError,
    OSError,
    EOFError,
    KeyError,
    SyntaxError,
    TokenError,
    MemoryError,
    zipfile.BadZipFile,
    zlib.error,
)


def array_to_dataset(
    x: np.ndarray,
    name: str,
    y: np.ndarray | None = None,
    feature_names: tuple[str, ...] | None = None,
    missing: bool = False,
) -> Dataset:
    """A Dataset of float32 rows from a numeric array.

    3-D and 4-D arrays are images, put in (C, H, W) order; uint8 images are scaled by 1/255.
    Labels may be class ids or class names (strings), which become ids in sorted order.
    """
    channels_last = x.ndim == 4 and x.shape[3] in CHANNELS
    if x.dtype.kind not in "biuf":
        raise DataError(f"{name} holds {x.dtype} values; give a numeric array.")
    if x.ndim == 2:
        image_shape = None
    elif x.ndim == 3:
        image_shape = (1, *x.shape[1:])
    elif x.ndim == 4 and x.shape[3] in CHANNELS:
        x = x.transpose(0, 3, 1, 2)
        image_shape = x.shape[1:]
    elif x.ndim == 4 and x.shape[1] in CHANNELS:
        image_shape = x.shape[1:]
    else:
        raise DataError(
            f"{name} has shape {x.shape}; give (n, features), (n, H, W), (n, H, W, C) or "
            "(n, C, H, W) with C = 1, 3 or 4."
        )
    if x.size == 0:
        raise DataError(f"{name} has shape {x.shape}, which holds no values; give some data.")
    rows = x.reshape(x.shape[0], -1).astype(np.float32)
    if image_shape is not None and x.dtype == np.uint8:
        rows /= 255
    check_finite(rows, name, missing)
    labels, label_names = (None, None) if y is None else class_ids(y, rows.shape[0], name)
    shape = None if image_shape is None else tuple(int(s) for s in image_shape)
    kind = infer_kind(rows)
    return Dataset(
        name, rows, None, labels, None, shape, kind, None, feature_names, label_names, channels_last
    )


def class_ids(y: np.ndarray, n: int, name: str) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Labels as int64 class ids, and the class names when the labels were strings.

    Parameters
    ----------
    y : array-like of shape (n,)
        Whole numbers, or strings naming the classes.
    n : int
        The number of examples.
    name : str
        The data's name, for the messages.

    Returns
    -------
    ids : ndarray of int64, shape (n,)
        The labels, or for names the index of each in the sorted class names.
    names : tuple of str or None
        The sorted class names; None for numeric labels.
    """
    y = np.asarray(y)
    if y.dtype.kind in "USO" and y.ndim == 1 and y.shape[0] == n:
        names, ids = np.unique(y.astype(str), return_inverse=True)
        return ids.astype(np.int64), tuple(str(v) for v in names)
    return as_labels(y, n, name), None


def load_npy(path: Path, missing: bool = False) -> Dataset:
    """A .npy file holding one numeric array; pickled (object) arrays are refused. With
    ``missing``, NaN entries are missing values."""
    x = _load(path)
    if isinstance(x, dict):
        raise DataError(f"{path} is a .npz archive; rename it to end in .npz.")
    return array_to_dataset(x, path.name, missing=missing)


def load_npz(path: Path, missing: bool = False) -> Dataset:
    """A .npz archive: data under X, x, data, images or the only array; labels under y, labels
    or targets. With ``missing``, NaN entries are missing values."""
    arrays = _load(path)
    if not isinstance(arrays, dict):
        raise DataError(f"{path} is a .npy array; rename it to end in .npy.")
    if SPARSE_KEYS <= set(arrays):
        return _sparse_dataset(arrays, path, missing)
    data_keys = [k for k in DATA_KEYS if k in arrays]
    others = [k for k in arrays if k not in LABEL_KEYS]
    if not data_keys and len(others) != 1:
        raise DataError(
            f"{path} holds the arrays {', '.join(arrays) or 'none'}; name the data array "
            f"one of {', '.join(DATA_KEYS)}."
        )
    label_key = next((k for k in LABEL_KEYS if k in arrays), None)
    x = arrays[data_keys[0] if data_keys else others[0]]
    y = None if label_key is None else arrays[label_key]
    return array_to_dataset(x, path.name, y, missing=missing)


def _sparse_dataset(arrays: dict[str, np.ndarray], path: Path, missing: bool) -> Dataset:
    """The matrix of a ``scipy.sparse.save_npz`` file, kept sparse, checked in one pass."""
    fmt = arrays["format"].item()
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    if fmt not in ("csr", "csc", "coo"):
        raise DataError(
            f"{path} holds a sparse matrix in {fmt!r} format; save it as CSR, CSC or COO."
        )
    try:
        shape = tuple(int(n) for n in arrays["shape"])
        if fmt in ("csr", "csc"):
            build = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
            matrix = build((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        else:
            matrix = sp.coo_matrix((arrays["data"], (arrays["row"], arrays["col"])), shape=shape)
        if fmt != "coo":
            matrix.check_format()
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise DataError(f"{path} is not a readable sparse matrix ({err}).") from None
    return source_dataset(path.name, SparseSource(matrix, name=path.name), None, missing)


def _load(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    """The array of a .npy file, or every array of a .npz archive; never unpickles, and the
    file is closed whatever happens."""
    try:
        with path.open("rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return loaded
            with loaded:  # an NpzFile reads lazily from f: take its arrays before f closes
                return {key: loaded[key] for key in loaded.files}
    except LOAD_ERRORS as err:
        reason = (
            "NumPy could only read it by unpickling, which vaekit never does"
            if "pickle" in str(err)
            else str(err)
        )
        raise DataError(
            f"{path} is not a readable NumPy file ({reason}); save a numeric array with "
            "numpy.save or numpy.savez."
        ) from None


def open_npy(path: Path) -> tuple[ArraySource, tuple[int, int, int] | None]:
    """A .npy file, memory-mapped: only the rows read are ever loaded.

    Parameters
    ----------
    path : Path
        A numeric array: (n, features), images (n, H, W) or (n, C, H, W) with C = 1, 3 or 4,
        or (n, H, W, 1). uint8 images are divided by 255. Pickled arrays are refused, and so are
        channel-last colour images, which cannot be read as rows without copying them.

    Returns
    -------
    tuple of (ArraySource, tuple of int or None)
        The source and the image shape (C, H, W), None for tabular data. The values are not
        checked: ``check_finite(scan(source), ...)`` does that in one pass.
    """
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except LOAD_ERRORS as err:
        reason = str(err)
        if "pickle" in reason or "Python objects" in reason:
            reason = "it holds Python objects, which vaekit never unpickles"
        raise DataError(
            f"{path} is not a readable NumPy file ({reason}); save a numeric array with numpy.save."
        ) from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise DataError(f"{path} is a .npz archive; give a .npy file.")
    shape = array.shape
    if array.ndim == 2:
        image_shape = None
    elif array.ndim == 3:
        image_shape = (1, *shape[1:])
    elif array.ndim == 4 and shape[3] == 1:
        image_shape = (1, *shape[1:3])
    elif array.ndim == 4 and shape[3] in CHANNELS:
        raise DataError(
            f"{path} holds channel-last images {shape}, which cannot be read as rows without "
            "loading them whole; save them channels-first, (n, C, H, W), or as (n, H, W)."
        )
    elif array.ndim == 4 and shape[1] in CHANNELS:
        image_shape = shape[1:]
    else:
        raise DataError(
            f"{path.name} has shape {shape}; give (n, features), (n, H, W) or (n, C, H, W) "
            "with C = 1, 3 or 4."
        )
    divisor = 255 if image_shape is not None and array.dtype == np.uint8 else None
    source = ArraySource(array, divisor, name=path.name)
    return source, None if image_shape is None else tuple(int(s) for s in image_shape)
