"""User CSV files: numeric, comma-separated, with an optional header and a label column of
class ids or class names."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..engine.sources import count
from ..exceptions import DataError
from .arrays import array_to_dataset
from .dataset import Dataset

LABEL_COLUMNS = ("label", "labels", "target", "class", "y")
#: Cells that spreadsheets, R and pandas write for a missing value (compared in lower case).
MISSING_CELLS = frozenset({"", "na", "n/a", "#n/a", "nan", "-nan", "null", "none", "<na>"})
#: An empty label cell reads as this: the row's label is unknown (scikit-learn's convention).
UNLABELLED_CELL = "-1"


def load_csv(path: Path, missing: bool = False) -> Dataset:
    """A numeric CSV; a first row with no number in it is the header. With ``missing``, a
    feature's empty cell, NA, N/A, NaN, null or None is a missing value. An empty label cell
    marks a row whose label is unknown (-1)."""
    lines, rows = _read_rows(path)
    header = None
    if not any(_is_number(cell) for cell in rows[0]):
        header = tuple(cell.strip() for cell in rows[0])
        lines, rows = lines[1:], rows[1:]
        if not rows:
            raise DataError(f"{path} has a header but no data rows; add some data.")
    width = len(header or rows[0])
    for line, row in zip(lines, rows, strict=True):
        if len(row) != width:
            raise DataError(
                f"{path} line {line} has {len(row)} values, expected {width}; "
                "every row needs the same number of columns."
            )
    labels = [j for j, name in enumerate(header or ()) if name.lower() in LABEL_COLUMNS]
    if len(labels) > 1:
        names = ", ".join(header[j] for j in labels)
        raise DataError(f"{path} has several label columns ({names}); keep one.")
    keep = [j for j in range(width) if j not in labels]
    if not keep:
        raise DataError(f"{path} has a label column but no feature columns; add features.")
    if missing:
        rows = [
            [cell if j in labels or not _is_missing(cell) else "nan" for j, cell in enumerate(row)]
            for row in rows
        ]
    x = _numbers(path, lines, rows, header, keep, missing)
    y = None
    if labels:
        y = np.array([row[labels[0]].strip() or UNLABELLED_CELL for row in rows])
        if all(_is_number(cell) for cell in y):
            y = y.astype(np.float64)
    names = None if header is None else tuple(header[j] for j in keep)
    return array_to_dataset(x, path.name, y, names, missing)


def _numbers(
    path: Path, lines: list[int], rows: list[list[str]], header, keep: list[int], missing: bool
):
    """The ``keep`` columns of the rows as float64, refusing text and non-finite values (but
    NaN, a missing value, with ``missing``)."""
    try:
        x = np.array([[row[j] for j in keep] for row in rows], dtype=np.float64)
    except ValueError:
        line, column, cell = next(
            (line, j, row[j])
            for line, row in zip(lines, rows, strict=True)
            for j in keep
            if not _is_number(row[j])
        )
        if _is_missing(cell):
            raise DataError(
                f"{path} line {line}, column {_column(header, column)} holds a missing value "
                f"({cell!r}); fill it in, or train with --missing ignore (missing='ignore') to "
                "learn from the observed entries."
            ) from None
        raise DataError(
            f"{path} line {line}, column {_column(header, column)} holds {cell!r}, which is not a "
            f"number; feature columns must be numeric (a column named "
            f"{', '.join(LABEL_COLUMNS[:-1])} or {LABEL_COLUMNS[-1]} may hold class names)."
        ) from None
    bad = np.isinf(x) if missing else ~np.isfinite(x)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(
            f"{path} contains NaN or infinite values in {count(int(bad.any(axis=1).sum()), 'row')} "
            f"(the first at line {lines[i]}, column {_column(header, keep[j])}); clean or drop "
            "them."
        )
    return x


def _read_rows(path: Path) -> tuple[list[int], list[list[str]]]:
    """The non-blank rows of the file and the line each one ends on."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; save it as a UTF-8 CSV file.") from None
    except OSError as err:
        raise DataError(f"Cannot read {path} ({err.strerror}).") from None
    lines, rows = [], []
    reader = csv.reader(io.StringIO(text))
    try:
        for row in reader:
            if len(row) > 1 or (row and row[0].strip()):
                lines.append(reader.line_num)
                rows.append(row)
    except csv.Error as err:
        raise DataError(f"{path} line {reader.line_num} is not valid CSV ({err}).") from None
    if not rows:
        raise DataError(f"{path} is empty; give one example per row.")
    return lines, rows


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING_CELLS


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column(header: tuple[str, ...] | None, j: int) -> str:
    return f"{j + 1} ({header[j]!r})" if header else str(j + 1)
