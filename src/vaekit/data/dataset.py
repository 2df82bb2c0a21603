"""The Dataset record every loader returns, and the checks every loader shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.sources import ArraySource, DataSource, check_observed, count, scan
from ..engine.sources import check_finite as check_source_finite
from ..exceptions import DataError


@dataclass(frozen=True, eq=False)
class Dataset:
    """Examples as float32 rows (images flattened C*H*W, row-major), with optional splits.

    ``train`` is a ``DataSource`` read from disk for data too large to load (``data.large``).
    Labels are class ids; ``label_names`` (when the file named its classes) gives the name of
    each id. ``feature_names`` are a table's column names; ``channels_last`` says that colour
    images came as (n, H, W, C).
    """

    name: str
    train: np.ndarray | DataSource
    test: np.ndarray | None
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    image_shape: tuple[int, int, int] | None
    kind: str
    valid: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None
    label_names: tuple[str, ...] | None = None
    channels_last: bool = False


def infer_kind(x: np.ndarray) -> str:
    """``"binary"`` for values in {0, 1}, ``"unit"`` for values in [0, 1], else ``"real"``;
    missing values (NaN) are left out."""
    x = x[~np.isnan(x)] if np.isnan(x).any() else x
    if x.size == 0:
        return "real"
    return kind_of(float(x.min()), float(x.max()), bool(((x == 0) | (x == 1)).all()))


def kind_of(low: float, high: float, binary: bool) -> str:
    """The kind of data with these smallest and largest values (``binary``: all 0 or 1)."""
    if binary:
        return "binary"
    return "unit" if low >= 0 and high <= 1 else "real"


def check_finite(x: np.ndarray, name: str, missing: bool = False) -> None:
    """Refuse rows that hold NaN or infinite values; with ``missing`` (NaN is a missing value),
    rows with an infinite value or nothing observed."""
    if missing:
        check_observed(scan(ArraySource(x), missing=True), name, every_feature=False)
        return
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise DataError(
            f"{name} contains NaN or infinite values in {count(int(bad.sum()), 'row')} (the first "
            f"at row index {int(np.argmax(bad))}); clean or drop them."
        )


def source_dataset(
    name: str,
    source: DataSource,
    image_shape: tuple[int, int, int] | None,
    missing: bool = False,
) -> Dataset:
    """A Dataset whose rows stay in ``source``, checked and classified in one chunked pass
    (NaN taken as a missing value with ``missing``)."""
    stats = scan(source, missing=missing)
    if missing:
        check_observed(stats, name, every_feature=False)
    else:
        check_source_finite(stats, name)
    kind = kind_of(stats.min, stats.max, stats.all_binary)
    return Dataset(name, source, None, source.labels, None, image_shape, kind)
