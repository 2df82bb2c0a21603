"""load_dataset: a registered name or a path to the user's own data."""

from __future__ import annotations

import os
from pathlib import Path

from ..exceptions import DataError
from .arrays import load_npy, load_npz
from .binarize import binarize as apply_binarize
from .binarize import check_mode
from .dataset import Dataset
from .h5ad import load_h5ad, split_obs_column
from .images import load_image_folder
from .large import cached_image_folder, is_large_image_folder, is_large_npy, mapped_npy
from .registry import DATASETS
from .tabular import load_csv

READERS = {".npy": load_npy, ".npz": load_npz, ".csv": load_csv, ".h5ad": load_h5ad}


def load_dataset(
    source: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    binarize: str = "none",
    seed: int = 0,
    download: bool = True,
    missing: bool = False,
) -> Dataset:
    """A registered name (see DATASETS) or a path to a user file/folder.

    A registered name wins over a file of the same name; write ``./digits`` for the file. User
    data has no test split (``test=None``). A large .npy file or image folder (see
    ``vaekit.data.large``) comes back with ``train`` as a ``DataSource`` read from disk.
    ``binarize`` is ``"none"``, ``"dynamic"`` or ``"fixed"``, drawn with ``seed``; ``data_dir``
    and ``download`` concern registered datasets. An AnnData file's labels are the ``obs``
    column named after a ``#``: ``"cells.h5ad#cell_type"``. With ``missing`` a file's NaN (and a
    CSV's empty cells) are missing values, for a model with ``missing="ignore"``.
    """
    if isinstance(source, str) and source in DATASETS:
        return DATASETS[source](data_dir=data_dir, binarize=binarize, seed=seed, download=download)
    check_mode(binarize)
    source, obs_column = split_obs_column(str(source))
    path = Path(source).expanduser()
    if obs_column is not None and path.is_file():
        return apply_binarize(load_h5ad(path, obs_column, missing), binarize, seed)
    if path.is_dir():
        large = is_large_image_folder(path)
        folder = cached_image_folder(path) if large else load_image_folder(path)
        return apply_binarize(folder, binarize, seed)
    if path.suffix.lower() == ".npy" and path.is_file() and is_large_npy(path):
        return apply_binarize(mapped_npy(path, missing), binarize, seed)
    reader = READERS.get(path.suffix.lower())
    if path.is_file() and reader is not None:
        return apply_binarize(reader(path, missing=missing), binarize, seed)
    if path.is_file():
        raise DataError(
            f"Cannot read {path}: vaekit reads .npy, .npz, .csv and .h5ad files and folders of "
            "images."
        )
    if reader is not None or len(path.parts) > 1:
        raise DataError(f"{path} does not exist; check the path.")
    raise DataError(
        f"Unknown dataset {str(source)!r}; use one of {', '.join(DATASETS)}, or a path to a .npy, "
        ".npz, .csv, .h5ad file or an image folder."
    )
