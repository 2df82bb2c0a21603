"""Data too big to load: a large .npy file stays a memory map, a large image folder becomes a
uint8 cache on disk; both are read a batch at a time as a ``DataSource``.

"Large" is ``$VAEKIT_MEMMAP_BYTES`` or more of stored values (default 256 MiB: 1 GiB as
float32). Smaller data are loaded into memory as before.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..exceptions import ConfigError
from .arrays import open_npy
from .dataset import Dataset, source_dataset
from .fetch import cache_root
from .image_cache import image_folder_source
from .images import image_format, list_images

DEFAULT_MEMMAP_BYTES = 256 * 2**20


def memmap_bytes() -> int:
    """Stored sizes from which data are read from disk rather than loaded: $VAEKIT_MEMMAP_BYTES."""
    text = os.environ.get("VAEKIT_MEMMAP_BYTES", str(DEFAULT_MEMMAP_BYTES))
    if not text.strip().isdigit():
        raise ConfigError(f"VAEKIT_MEMMAP_BYTES must be a whole number of bytes; got {text!r}.")
    return int(text)


def is_large_npy(path: Path) -> bool:
    """True for a .npy file of at least ``memmap_bytes()``."""
    return path.stat().st_size >= memmap_bytes()


def is_large_image_folder(folder: Path) -> bool:
    """True for an image folder whose pixels take at least ``memmap_bytes()`` as uint8."""
    files, _ = list_images(folder)
    mode, (width, height) = image_format(folder, files[:1])
    return len(files) * len(mode) * width * height >= memmap_bytes()


def mapped_npy(path: Path, missing: bool = False) -> Dataset:
    """A large .npy file as a memory-mapped source, checked in one chunked pass (NaN taken as
    a missing value with ``missing``)."""
    source, image_shape = open_npy(path)
    return source_dataset(path.name, source, image_shape, missing)


def cached_image_folder(folder: Path) -> Dataset:
    """A large image folder decoded once into the cache (``cache_root()/images``), with
    progress, then read like a memory map."""
    source, image_shape = image_folder_source(folder, cache_root() / "images")
    return source_dataset(folder.resolve().name, source, image_shape)
