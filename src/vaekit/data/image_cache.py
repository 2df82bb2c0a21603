"""A folder of images decoded once into a uint8 .npy cache, then read like a memory map."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm.auto import tqdm

from ..engine.sources import ArraySource
from ..exceptions import DataError
from ..io import UMASK
from .arrays import LOAD_ERRORS
from .images import PIL_ERRORS, image_format, list_images, open_image, unreadable

_CACHE_VERSION = b"vaekit image cache 1\n"


def image_folder_source(
    folder: Path, cache_dir: Path, progress: bool = True
) -> tuple[ArraySource, tuple[int, int, int]]:
    """A folder of PNG/JPEG images, decoded once into a uint8 .npy cache and memory-mapped.

    Parameters
    ----------
    folder : Path
        Images of one size and mode, flat or in class subfolders, read as
        ``vaekit.data.images.load_image_folder`` reads them (the same checks and messages).
    cache_dir : Path
        Where the cache goes (created if missing). Its name holds a SHA256 of the images'
        relative paths, sizes and modification times, so a changed folder gets a new cache and
        an unchanged one is never decoded again.
    progress : bool
        Show progress bars while checking and decoding.

    Returns
    -------
    tuple of (ArraySource, tuple of int)
        The images as rows in [0, 1] (C*H*W, channels first, divided by 255), with labels from
        the class subfolders; and the image shape (C, H, W).
    """
    files, labels = list_images(folder)
    cache = cache_dir / f"images-{_folder_key(folder, files)}.npy"
    array = _cached(cache, len(files))
    if array is None:
        _decode(folder, files, cache, progress)
        array = np.load(cache, mmap_mode="r", allow_pickle=False)
    source = ArraySource(array, 255, labels, name=folder.name)
    channels, height, width = (int(s) for s in array.shape[1:])
    return source, (channels, height, width)


def _folder_key(folder: Path, files: list[Path]) -> str:
    digest = hashlib.sha256(_CACHE_VERSION)
    for path in sorted(files):
        try:
            stat = path.stat()
        except OSError as err:
            raise DataError(f"Cannot read {path} ({err.strerror}).") from None
        entry = [path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns]
        digest.update(json.dumps(entry).encode() + b"\n")
    return digest.hexdigest()


def _cached(cache: Path, n_images: int) -> np.ndarray | None:
    """The cache's array, or None when it is missing or not what this folder decodes to."""
    try:
        array = np.load(cache, mmap_mode="r", allow_pickle=False)
    except LOAD_ERRORS:
        return None
    usable = (
        isinstance(array, np.ndarray)
        and array.dtype == np.uint8
        and array.ndim == 4
        and array.shape[0] == n_images
    )
    return array if usable else None


def _decode(folder: Path, files: list[Path], cache: Path, progress: bool) -> None:
    """Write the images as a (n, C, H, W) uint8 .npy file through a temporary file and a rename.

    Rows are written to the file one by one rather than through a memory map, so a full disk
    raises an error instead of killing the process.
    """
    mode, size = image_format(folder, files, progress)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.name}.", suffix=".part")
    except OSError as err:
        raise DataError(
            f"Cannot write to the cache folder {cache.parent} ({err.strerror})."
        ) from None
    try:
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as out:
            _write_images(out, files, mode, size, progress)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, cache)
    except OSError as err:
        raise DataError(
            f"Cannot write the image cache {cache} ({err.strerror}); free some space or give "
            "another cache folder."
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_images(
    out: BinaryIO, files: list[Path], mode: str, size: tuple[int, int], progress: bool
) -> None:
    width, height = size
    channels = len(mode)
    header = {
        "descr": "|u1",
        "fortran_order": False,
        "shape": (len(files), channels, height, width),
    }
    np.lib.format.write_array_header_1_0(out, header)
    for path in tqdm(
        files, desc="Decoding images", unit="image", disable=None if progress else True
    ):
        with open_image(path) as image:
            try:
                converted = image.convert(mode)
            except PIL_ERRORS as err:
                raise unreadable(path, err) from None
        pixels = np.asarray(converted).reshape(height, width, channels)
        out.write(pixels.transpose(2, 0, 1).tobytes())
