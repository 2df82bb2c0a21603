"""A strict reader of gzipped IDX files, the format of MNIST and Fashion-MNIST."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ..exceptions import DataError

IMAGES_MAGIC = 2051  # unsigned bytes, 3 dimensions: N, H, W
LABELS_MAGIC = 2049  # unsigned bytes, 1 dimension: N


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array of a gzipped IDX file whose magic number must be ``magic``."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{path} is not a readable gzip file ({err}); delete it and download it again."
        ) from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{path} is too short for an IDX header ({len(raw)} bytes); replace the file."
        )
    found, *dims = (int(v) for v in np.frombuffer(raw[:header], dtype=">u4"))
    if found != magic:
        raise DataError(
            f"{path} has IDX magic number {found}, expected {magic}; check that it is the right "
            "file."
        )
    if min(dims) == 0:
        raise DataError(f"{path} declares dimensions {dims} with a zero; replace the file.")
    if len(raw) - header != math.prod(dims):
        raise DataError(
            f"{path} declares dimensions {dims} ({math.prod(dims)} bytes) but holds "
            f"{len(raw) - header} bytes of data; the file is truncated or corrupt, replace it."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Images as float32 rows in [0, 1], labels as int64, and the (height, width)."""
    x = read_idx(images, IMAGES_MAGIC)
    y = read_idx(labels, LABELS_MAGIC)
    if x.shape[0] != y.shape[0]:
        raise DataError(
            f"{images.name} holds {x.shape[0]} images but {labels.name} holds {y.shape[0]} "
            "labels; use files from the same release."
        )
    rows = x.reshape(x.shape[0], -1).astype(np.float32) / np.float32(255)
    return rows, y.astype(np.int64), (x.shape[1], x.shape[2])
