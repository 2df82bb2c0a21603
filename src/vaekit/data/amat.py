"""A fast, strict reader of the .amat text files of the statically binarized MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..exceptions import DataError

_ZERO, _ONE, _SPACE, _NEWLINE = b"0"[0], b"1"[0], b" "[0], b"\n"[0]


def read_amat(path: Path, width: int = 784) -> np.ndarray:
    """Rows of ``width`` values, each 0 or 1, as float32.

    The published layout (values separated by single spaces, ``\\n`` line ends) is checked in
    one vectorised pass; any other layout is read line by line, which names the first bad line.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"Cannot read {path} ({err.strerror}).") from None
    line = 2 * width  # the values, the spaces between them and the newline
    if raw and len(raw) % line == 0:
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, line)
        values, gaps = rows[:, 0::2], rows[:, 1::2]
        if (
            ((values == _ZERO) | (values == _ONE)).all()
            and (gaps[:, :-1] == _SPACE).all()
            and (gaps[:, -1] == _NEWLINE).all()
        ):
            return (values - _ZERO).astype(np.float32)
    return _read_lines(path, raw, width)


def _read_lines(path: Path, raw: bytes, width: int) -> np.ndarray:
    lines = raw.rstrip().splitlines()
    if not lines:
        raise DataError(f"{path} is empty; replace it with the published file.")
    out = np.empty((len(lines), width), dtype=np.float32)
    for number, text in enumerate(lines, start=1):
        tokens = text.split()
        if len(tokens) != width:
            raise DataError(
                f"{path} line {number} has {len(tokens)} values, expected {width}; "
                "the file is corrupt, replace it."
            )
        if not set(tokens) <= {b"0", b"1"}:
            bad = next(t for t in tokens if t not in (b"0", b"1"))
            raise DataError(
                f"{path} line {number} holds the value {bad[:20].decode(errors='replace')!r}; "
                "every value must be 0 or 1."
            )
        out[number - 1] = np.frombuffer(b"".join(tokens), dtype=np.uint8) - _ZERO
    return out
