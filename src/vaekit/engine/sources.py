"""Data sources: rows of a data set read by index, so data larger than memory is never loaded whole.

A source keeps its values in their own dtype (a memory-mapped uint8 .npy file stays uint8, on disk)
and converts only the rows asked for to float32. Training, evaluation and inference read batches
with ``DataSource.rows``; one-pass statistics (``scan``) and fingerprints stream through
``DataSource.chunks``, a bounded number of bytes at a time.
"""

from __future__ import annotations

import abc
import hashlib
import mmap
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from ..exceptions import ConfigError, DataError

#: madvise() hints for memory-mapped files, where the platform has them (not on Windows).
READ_AT_RANDOM = getattr(mmap, "MADV_RANDOM", None)
READ_IN_ORDER = getattr(mmap, "MADV_SEQUENTIAL", None)
CHUNK_BYTES = 1 << 26  # the float32 bytes of one chunk when chunk_rows is not given
NUMERIC_KINDS = "biuf"
# What np.load raises on a damaged .npy file: its header is parsed as a Python literal.


class DataSource(abc.ABC):
    """Rows of a 2-D data set, read by index; stored in its own dtype and converted per batch.

    Attributes
    ----------
    n_rows : int
        The number of rows (also ``len(source)``).
    n_features : int
        The number of values in a row.
    labels : numpy.ndarray or None
        One int64 class per row, or None.
    """

    def __init__(self, n_rows: int, n_features: int, labels: np.ndarray | None) -> None:
        self.n_rows = n_rows
        self.n_features = n_features
        self.labels = labels

    def __len__(self) -> int:
        return self.n_rows

    @abc.abstractmethod
    def _read_sorted(self, index: np.ndarray) -> np.ndarray:
        """float32 rows (len(index), n_features) for an ascending index with repeats allowed;
        a new array, never a view of the storage."""

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        return self._read_sorted(np.arange(start, stop))

    def rows(self, index: ArrayLike) -> np.ndarray:
        """float32 rows, in the order asked.

        Parameters
        ----------
        index : array-like of int
            Row numbers in any order, repeats allowed.

        Returns
        -------
        numpy.ndarray
            (len(index), n_features) float32, a new array. The rows are read in ascending order
            (locality on a memory map) and then put back in the order asked.
        """
        index = _check_index(index, self.n_rows)
        if np.all(index[1:] >= index[:-1]):
            return self._read_sorted(index)
        order = np.argsort(index, kind="stable")
        out = np.empty((len(index), self.n_features), dtype=np.float32)
        out[order] = self._read_sorted(index[order])
        return out

    def chunks(
        self, chunk_rows: int | None = None, rows: slice | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Every row once, in order, a chunk at a time: for scans.

        Parameters
        ----------
        chunk_rows : int, optional
            Rows per chunk; by default as many as fit in ``CHUNK_BYTES`` of float32.
        rows : slice, optional
            Only the rows ``rows.start`` to ``rows.stop`` (one process's block); all by default.

        Yields
        ------
        tuple of (int, numpy.ndarray)
            The number of the chunk's first row and its float32 rows.
        """
        step = _chunk_rows(chunk_rows, 4 * self.n_features)
        first, stop, _ = (rows or slice(None)).indices(self.n_rows)
        for start in range(first, stop, step):
            yield start, self._read_range(start, min(start + step, stop))

    def fingerprint(self) -> str:
        """SHA256 (hex) of the shape and the float32 rows, read chunk by chunk.

        Sources that store their values otherwise hash those instead, with their dtype.
        """
        digest = hashlib.sha256(f"rows {self.n_rows}x{self.n_features} float32\n".encode())
        for _, chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()


class ArraySource(DataSource):
    """An in-memory or memory-mapped array of any numeric dtype, read a few rows at a time.

    Parameters
    ----------
    array : array-like
        (n, ...) numbers; more than two dimensions are viewed as (n, prod(rest)) without copying.
        A memory map (``np.load(path, mmap_mode="r")``) stays one, so only the rows read are
        loaded; it must be in C order.
    divisor : float, optional
        Rows are returned as ``float32(rows) / divisor`` (255 for uint8 images).
    labels : array-like, optional
        One integer class per row.
    name : str
        What error messages call the array.
    """

    def __init__(
        self,
        array: ArrayLike,
        divisor: float | None = None,
        labels: ArrayLike | None = None,
        *,
        name: str = "X",
    ) -> None:
        if not isinstance(array, np.memmap):
            array = np.asarray(array)
        if array.dtype.kind not in NUMERIC_KINDS:
            raise DataError(f"{name} holds {array.dtype} values; give a numeric array.")
        if array.ndim < 2:
            raise DataError(f"{name} has shape {array.shape}; give one example per row.")
        if array.size == 0:
            raise DataError(
                f"{name} has shape {array.shape}, which holds no values; give some data."
            )
        if not array.flags.c_contiguous:
            if isinstance(array, np.memmap):
                raise DataError(
                    f"{name} is memory-mapped in an order other than C (row-major), so its rows "
                    "cannot be read without loading it whole; save numpy.ascontiguousarray of it."
                )
            array = np.ascontiguousarray(array)
        self.array = array.reshape(array.shape[0], -1)
        self._mmap = _mapping(array)
        self.mapped = self._mmap is not None or isinstance(array, np.memmap)
        self._advice = None
        self.divisor = None if divisor is None else float(divisor)
        n_rows, n_features = self.array.shape
        y = None if labels is None else as_labels(labels, n_rows, name)
        super().__init__(n_rows, n_features, y)

    def _convert(self, stored: np.ndarray) -> np.ndarray:
        """float32 values of rows already copied out of the storage (no second copy)."""
        if self.divisor is None:
            return stored.astype(np.float32, copy=False)
        return np.divide(stored, np.float32(self.divisor), dtype=np.float32)

    def rows(self, index: ArrayLike) -> np.ndarray:
        """float32 rows, in the order asked: read in ascending order from a memory map, and
        gathered directly from memory, where order does not matter."""
        if self.mapped:
            self._advise(READ_AT_RANDOM)
            return super().rows(index)
        return self._convert(self.array[_check_index(index, self.n_rows)])

    def _advise(self, advice: int | None) -> None:
        """Tell the kernel how the mapped file is about to be read: rows at random (no
        read-ahead, which would pull in 32 pages for every row of a shuffled batch when the
        file does not fit in memory) or chunks in order (read-ahead)."""
        if self._mmap is not None and advice is not None and self._advice != advice:
            self._mmap.madvise(advice)
            self._advice = advice

    def _read_sorted(self, index: np.ndarray) -> np.ndarray:
        return self._convert(self.array[index])

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        self._advise(READ_IN_ORDER)
        return self._convert(np.array(self.array[start:stop]))  # a slice is a view: copy it

    def fingerprint(self) -> str:
        """SHA256 (hex) of the shape, the storage dtype, the divisor and the stored bytes."""
        digest = hashlib.sha256(
            f"array {self.n_rows}x{self.n_features} {self.array.dtype.str} "
            f"/ {self.divisor!r}\n".encode()
        )
        step = _chunk_rows(None, self.array.itemsize * self.n_features)
        for start in range(0, self.n_rows, step):
            digest.update(self.array[start : start + step])
        return digest.hexdigest()


class SparseSource(DataSource):
    """A scipy.sparse matrix or array, kept sparse (as CSR); only the rows read are densified.

    Parameters
    ----------
    matrix : scipy.sparse matrix or array
        Any format; converted to canonical CSR (sorted indices, no repeats), copying only when
        the input is not already so.
    labels : array-like, optional
        One integer class per row.
    name : str
        What error messages call the matrix.
    """

    def __init__(
        self, matrix: sp.spmatrix | sp.sparray, labels: ArrayLike | None = None, *, name: str = "X"
    ) -> None:
        if matrix.dtype.kind not in NUMERIC_KINDS:
            raise DataError(f"{name} holds {matrix.dtype} values; give a numeric array.")
        if 0 in matrix.shape:
            raise DataError(
                f"{name} has shape {matrix.shape}, which holds no values; give some data."
            )
        csr = matrix.tocsr()
        if not csr.has_canonical_format:
            if csr is matrix:
                csr = csr.copy()
            csr.sum_duplicates()
        self.matrix = csr
        n_rows, n_features = csr.shape
        y = None if labels is None else as_labels(labels, n_rows, name)
        super().__init__(n_rows, n_features, y)

    def _read_sorted(self, index: np.ndarray) -> np.ndarray:
        return self.matrix[index].astype(np.float32).toarray()

    def fingerprint(self) -> str:
        """SHA256 (hex) of the shape, the value dtype and the CSR arrays (indices as int64)."""
        m = self.matrix
        digest = hashlib.sha256(
            f"csr {self.n_rows}x{self.n_features} {m.dtype.str} {m.nnz}\n".encode()
        )
        for values, dtype in ((m.indptr, np.int64), (m.indices, np.int64), (m.data, m.dtype)):
            step = CHUNK_BYTES // 8
            for start in range(0, len(values), step):
                digest.update(np.ascontiguousarray(values[start : start + step], dtype=dtype))
        return digest.hexdigest()


class SubsetSource(DataSource):
    """Some rows of another source, in a given order, without copying them: a data split.

    Parameters
    ----------
    source : DataSource
        The source read from.
    index : array-like of int
        Its rows, in this source's order; repeats allowed.
    """

    def __init__(self, source: DataSource, index: ArrayLike) -> None:
        self.source = source
        self.index = np.array(_check_index(index, source.n_rows))
        self.index.setflags(write=False)
        labels = None if source.labels is None else source.labels[self.index]
        super().__init__(len(self.index), source.n_features, labels)

    def _read_sorted(self, index: np.ndarray) -> np.ndarray:
        return self.source.rows(self.index[index])


class ColumnsBeside(DataSource):
    """The rows of ``source`` with more columns after them: (n, C) float32 values held in
    memory (a conditional model's encoded conditions).

    Parameters
    ----------
    source : DataSource
        The rows.
    columns : numpy.ndarray
        (len(source), C) values for the end of each row.
    """

    def __init__(self, source: DataSource, columns: np.ndarray) -> None:
        if columns.ndim != 2 or len(columns) != len(source):
            raise DataError(f"{len(source)} rows need {len(source)} rows of extra columns.")
        self.source = source
        self.columns = np.ascontiguousarray(columns, dtype=np.float32)
        self.columns.setflags(write=False)
        super().__init__(len(source), source.n_features + columns.shape[1], source.labels)

    def rows(self, index: ArrayLike) -> np.ndarray:
        index = _check_index(index, self.n_rows)
        return np.concatenate([self.source.rows(index), self.columns[index]], axis=1)

    def _read_sorted(self, index: np.ndarray) -> np.ndarray:
        return self.rows(index)

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        rows = self.source._read_range(start, stop)
        return np.concatenate([rows, self.columns[start:stop]], axis=1)

    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.source.fingerprint().encode())
        digest.update(f"beside {self.columns.shape} float32\n".encode())
        digest.update(self.columns.tobytes())
        return digest.hexdigest()


def as_source(X: DataSource | ArrayLike, labels: ArrayLike | None = None) -> DataSource:
    """A DataSource for anything that holds rows.

    Parameters
    ----------
    X : DataSource, scipy.sparse matrix, numpy.ndarray (memory maps too) or array-like
        A DataSource is returned as it is; sparse data stays sparse; a memory map stays mapped;
        anything else (lists, DataFrames) goes through ``numpy.asarray``.
    labels : array-like, optional
        One integer class per row; a DataSource carries its own.

    Returns
    -------
    DataSource
    """
    if isinstance(X, DataSource):
        if labels is not None:
            raise DataError("X is a DataSource, which carries its own labels; give them to it.")
        return X
    if sp.issparse(X):
        return SparseSource(X, labels)
    return ArraySource(X, labels=labels)


def count(n: int, noun: str) -> str:
    """'1 row', '2 rows'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def as_labels(y: np.ndarray, n: int, name: str) -> np.ndarray:
    """Class labels as int64, one per example."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"{name} has {n} examples but labels of shape {y.shape}; give one per row.")
    if y.dtype.kind in "iub":
        return y.astype(np.int64)
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        return y.astype(np.int64)
    raise DataError(f"The labels of {name} are not whole numbers; give class ids as integers.")


@dataclass(frozen=True, eq=False)
class SourceStats:
    """What one pass over a source found.

    ``min``, ``max``, ``all_binary``, ``all_integer``, ``mean`` and ``std`` (ddof=0, float64 per
    feature) are over the rows whose values are all finite; they are NaN (``all_binary`` and
    ``all_integer`` True) when there are none. A scan for missing values counts NaN as missing
    instead: the numbers are over the observed entries, ``observed`` counts them per feature,
    and the bad rows are those with an infinite value or no observed value at all.
    """

    n_rows: int
    n_features: int
    min: float
    max: float
    all_binary: bool
    all_integer: bool
    mean: np.ndarray
    std: np.ndarray
    first_nonfinite_row: int | None
    n_nonfinite_rows: int
    observed: np.ndarray


def scan(source: DataSource, chunk_rows: int | None = None, missing: bool = False) -> SourceStats:
    """Statistics of a source's float32 rows in one chunked pass.

    Parameters
    ----------
    source : DataSource
    chunk_rows : int, optional
        Rows per chunk; see ``DataSource.chunks``.
    missing : bool
        Count NaN as a missing value rather than a bad row.

    Returns
    -------
    SourceStats
        Means and variances are merged across chunks in float64 with Chan et al.'s pairwise
        update (per feature, over its observed entries), so they agree with a float64 pass
        over the whole array.
    """
    n_features = source.n_features
    seen, mean, m2 = np.zeros(n_features), np.zeros(n_features), np.zeros(n_features)
    low, high, binary, integer = np.inf, -np.inf, True, True
    first_bad, n_bad = None, 0
    for start, chunk in source.chunks(chunk_rows):
        if missing:
            bad = np.isinf(chunk).any(axis=1) | np.isnan(chunk).all(axis=1)
        else:
            bad = ~np.isfinite(chunk).all(axis=1)
        if bad.any():
            first_bad = start + int(np.flatnonzero(bad)[0]) if first_bad is None else first_bad
            n_bad += int(bad.sum())
            chunk = chunk[~bad]
        if len(chunk) == 0:
            continue
        if missing:  # the other kind of scan has dropped every row with a NaN by now
            observed = ~np.isnan(chunk)
            values = np.where(observed, chunk, 0.0).astype(np.float64)
            n = observed.sum(axis=0)
        else:
            values, n = chunk.astype(np.float64), np.full(n_features, len(chunk))
        chunk_mean = values.sum(axis=0) / np.maximum(n, 1)
        deviations = values - chunk_mean
        if missing:
            deviations = np.where(observed, deviations, 0.0)
        chunk_m2 = np.square(deviations).sum(axis=0)
        total = seen + n
        delta = chunk_mean - mean
        mean += delta * (n / np.maximum(total, 1))
        m2 += chunk_m2 + np.square(delta) * (seen * n / np.maximum(total, 1))
        seen = total
        entries = chunk[observed] if missing else chunk
        if entries.size:
            low, high = min(low, float(entries.min())), max(high, float(entries.max()))
            binary = binary and bool(((entries == 0) | (entries == 1)).all())
            integer = integer and bool((entries == np.round(entries)).all())
    empty = seen == 0
    mean[empty], m2[empty] = np.nan, np.nan
    if empty.all():
        low, high = np.nan, np.nan
    std = np.sqrt(m2 / np.maximum(seen, 1))
    return SourceStats(
        source.n_rows,
        source.n_features,
        low,
        high,
        binary,
        integer,
        mean,
        std,
        first_bad,
        n_bad,
        seen.astype(np.int64),
    )


def check_finite(stats: SourceStats, name: str, advice: str = "clean or drop them") -> None:
    """Refuse a source with rows that hold NaN or infinite values.

    Parameters
    ----------
    stats : SourceStats
        From ``scan``.
    name : str
        What the message calls the data.
    advice : str
        What the message ends with: what to do.
    """
    if stats.n_nonfinite_rows:
        raise DataError(
            f"{name} contains NaN or infinite values in {count(stats.n_nonfinite_rows, 'row')} "
            f"(the first at row index {stats.first_nonfinite_row}); {advice}."
        )


def check_observed(stats: SourceStats, name: str, every_feature: bool = True) -> None:
    """Refuse, for a model of missing values, rows with an infinite value or nothing observed,
    and (with ``every_feature``: training data) features never observed.

    Parameters
    ----------
    stats : SourceStats
        From ``scan(..., missing=True)``.
    name : str
        What the message calls the data.
    every_feature : bool
        Refuse a feature with no observed value too.
    """
    if stats.n_nonfinite_rows:
        raise DataError(
            f"{name} has {count(stats.n_nonfinite_rows, 'row')} with an infinite value or no "
            f"observed value (the first at row index {stats.first_nonfinite_row}); a row needs "
            "an observed value and no infinity, so drop or fix them."
        )
    never = np.flatnonzero(stats.observed == 0)
    if every_feature and len(never):
        raise DataError(
            f"{name} has {count(len(never), 'feature')} with no observed value (the first is "
            f"column {int(never[0])}); drop them, since nothing can be learned about them."
        )


def _check_index(index: ArrayLike, n_rows: int) -> np.ndarray:
    index = np.asarray(index)
    if index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
        raise TypeError(
            f"Rows are read by a 1-D array of integers, not {index.dtype} of shape {index.shape}."
        )
    index = index.astype(np.intp, copy=False)
    if index.size and (index.min() < 0 or index.max() >= n_rows):
        raise IndexError(
            f"Row indices run from {index.min()} to {index.max()}, outside [0, {n_rows})."
        )
    return index


def _chunk_rows(chunk_rows: int | None, row_bytes: int) -> int:
    if chunk_rows is None:
        return max(1, CHUNK_BYTES // row_bytes)
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows is {chunk_rows}; give a positive number of rows.")
    return int(chunk_rows)


def _mapping(array: np.ndarray) -> mmap.mmap | None:
    """The mapped file behind an array (a np.memmap, or a view of one), or None."""
    while array is not None:
        if isinstance(array, mmap.mmap):
            return array
        array = getattr(array, "base", None)
    return None
