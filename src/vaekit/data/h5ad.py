"""AnnData ``.h5ad`` files (single-cell data): X as rows, one ``obs`` column as labels.

anndata is an optional dependency (``pip install vaekit[anndata]``). X may be dense or sparse;
a sparse X stays sparse. A file of ``$VAEKIT_MEMMAP_BYTES`` or more is opened in backed mode and
read a batch at a time, never whole. The labels come from the ``obs`` column named after a ``#``
in the path (``cells.h5ad#cell_type``), or from the ``obs_column`` argument: categories or strings
become class names, whole numbers class ids; a run can then be conditioned on them
(``--condition label``) or have them shown in its pictures.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..engine.sources import DataSource, SparseSource
from ..exceptions import ConfigError, DataError
from .arrays import array_to_dataset, class_ids
from .dataset import Dataset, source_dataset
from .large import memmap_bytes

SUFFIX = ".h5ad"


def split_obs_column(source: str) -> tuple[str, str | None]:
    """(path, obs column) of ``"cells.h5ad#cell_type"``; the column is None without a ``#``."""
    path, mark, column = source.partition("#")
    if not mark or not path.lower().endswith(SUFFIX):
        return source, None
    if not column:
        raise ConfigError(f"{source!r} names no obs column after '#'; write FILE.h5ad#COLUMN.")
    return path, column


def _anndata():
    try:
        return importlib.import_module("anndata")
    except ImportError:
        raise ConfigError(
            "Reading .h5ad files needs the anndata package; install it with "
            "pip install 'vaekit[anndata]'."
        ) from None


class BackedAnnDataSource(DataSource):
    """The rows of a backed AnnData's X (an HDF5 dataset, dense or sparse), read by index."""

    def __init__(self, matrix, labels: np.ndarray | None, name: str):
        self.matrix, self.name = matrix, name
        n_rows, n_features = matrix.shape
        super().__init__(n_rows, n_features, labels)

    def _read_sorted(self, index: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(index, return_inverse=True)  # HDF5 reads need no repeats
        return _dense(self.matrix[unique])[inverse]

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        return _dense(self.matrix[start:stop])


def _dense(rows) -> np.ndarray:
    """Rows read from a backed X (sparse or dense) as a float32 array."""
    return (rows.toarray() if sp.issparse(rows) else np.asarray(rows)).astype(np.float32)


def _labels(adata, column: str | None, name: str) -> tuple[np.ndarray | None, tuple | None]:
    """(class ids, class names) of an obs column; (None, None) without one."""
    if column is None:
        return None, None
    if column not in adata.obs.columns:
        have = ", ".join(map(str, adata.obs.columns)) or "none"
        raise DataError(f"{name} has no obs column {column!r}; its obs columns: {have}.")
    values = adata.obs[column]
    if values.isna().any():
        raise DataError(
            f"The obs column {column!r} of {name} has missing values in "
            f"{int(values.isna().sum())} rows; fill or drop them."
        )
    numeric = values.dtype.kind in "iub"
    return class_ids(
        values.to_numpy() if numeric else values.astype(str).to_numpy(), len(values), name
    )


def load_h5ad(path: Path, obs_column: str | None = None, missing: bool = False) -> Dataset:
    """An AnnData file as a Dataset: X as rows (kept sparse, or read from disk when large),
    ``var_names`` as feature names, and the ``obs_column`` as labels.

    Parameters
    ----------
    path : Path
        The ``.h5ad`` file.
    obs_column : str, optional
        The ``obs`` column whose values label the rows.
    missing : bool
        Take NaN in X as a missing value.

    Returns
    -------
    Dataset
        With ``train`` an array, a sparse source, or (for a large file) a backed source.
    """
    anndata = _anndata()
    backed = path.stat().st_size >= memmap_bytes()
    try:
        adata = anndata.read_h5ad(path, backed="r" if backed else None)
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise DataError(f"{path} is not a readable .h5ad file ({err}).") from None
    labels, label_names = _labels(adata, obs_column, path.name)
    features = tuple(map(str, adata.var_names))
    if backed:
        source = BackedAnnDataSource(adata.X, labels, path.name)
        dataset = source_dataset(path.name, source, None, missing)
    elif sp.issparse(adata.X):
        sparse = SparseSource(adata.X, labels, name=path.name)
        dataset = source_dataset(path.name, sparse, None, missing)
    else:
        dataset = array_to_dataset(np.asarray(adata.X), path.name, labels, missing=missing)
    return dataclasses.replace(dataset, feature_names=features, label_names=label_names)
