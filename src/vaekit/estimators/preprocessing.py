"""The estimators' input: any array, memory map, sparse matrix or data source, checked in chunks
and seen through the model's preprocessing (threshold binarisation, standardisation) per batch.

Nothing here holds the whole data set in memory: checks and the scaler's statistics come from one
chunked pass (``scan``), and the preprocessing is applied to the rows a batch reads.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import validate_data

from ..engine.sources import (
    DataSource,
    SourceStats,
    as_source,
    check_finite,
    check_observed,
    scan,
)
from ..exceptions import DataError

MISSING_ADVICE = "clean or drop them, or give a VAE missing='ignore' to take NaN as missing values"


class PreparedSource(DataSource):
    """Rows of ``source`` binarised at ``threshold`` (if given), then standardised with
    ``mean`` and ``scale`` (if given), as float32."""

    def __init__(
        self,
        source: DataSource,
        threshold: float | None = None,
        mean: np.ndarray | None = None,
        scale: np.ndarray | None = None,
    ):
        self.source, self.threshold, self.mean, self.scale = source, threshold, mean, scale
        super().__init__(source.n_rows, source.n_features, source.labels)

    def _transform(self, rows: np.ndarray) -> np.ndarray:
        if self.threshold is not None:  # a missing value (NaN) stays missing
            rows = np.where(np.isnan(rows), rows, rows > self.threshold).astype(np.float32)
        if self.mean is not None:
            rows = (rows - self.mean) / self.scale
        return rows

    def _read_sorted(self, index: np.ndarray) -> np.ndarray:
        return self._transform(self.source.rows(index))

    def rows(self, index) -> np.ndarray:
        return self._transform(self.source.rows(index))  # the source reads in its best order

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        return self._transform(self.source._read_range(start, stop))

    def fingerprint(self) -> str:
        return self.source.fingerprint()


def validated_source(estimator, X, reset: bool) -> DataSource:
    """X as a data source, with scikit-learn's checks of shape, dtype and feature count.

    Arrays keep their dtype (a uint8 array stays uint8) and memory maps stay on disk; the
    check for NaN and infinities is left to ``checked_stats``, which reads in chunks.
    """
    if isinstance(X, DataSource):
        n_features = X.n_features
        if reset:
            estimator.n_features_in_ = n_features
        elif n_features != estimator.n_features_in_:
            raise DataError(
                f"X has {n_features} features, but {type(estimator).__name__} is expecting "
                f"{estimator.n_features_in_} features as input."
            )
        return X
    try:
        X = validate_data(
            estimator,
            X,
            reset=reset,
            accept_sparse="csr",
            dtype="numeric",
            ensure_all_finite=False,
        )
    except ValueError as err:  # scikit-learn's sentence, as vaekit's own error
        raise DataError(str(err)) from None
    if sp.issparse(X) and X.dtype.kind not in "biuf":
        X = X.astype(np.float64)
    return as_source(X)


def checked_stats(source: DataSource, missing: bool = False, fitting: bool = True) -> SourceStats:
    """One chunked pass over ``source``: refuses non-finite values, naming the first bad row;
    with ``missing``, NaN entries are missing values and the refusals ``check_observed``'s
    (a feature never observed only when ``fitting``)."""
    stats = scan(source, missing=missing)
    if missing:
        check_observed(stats, "X", every_feature=fitting)
    else:
        check_finite(stats, "X", MISSING_ADVICE)
    return stats
