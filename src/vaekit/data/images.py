"""A user folder of PNG/JPEG images, flat or in class subfolders (folder/<class>/*.png)."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from ..exceptions import DataError
from .dataset import Dataset, infer_kind

SUFFIXES = (".png", ".jpg", ".jpeg")
# What Pillow raises on files it cannot decode, depending on the format and the damage.
_PIL_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


def load_image_folder(folder: Path) -> Dataset:
    """All images in one mode (L, or RGB if any is in colour) and the most common size, in [0, 1].

    Images in class subfolders get the index of their class in the sorted class names as label.
    """
    files, labels = _list_images(folder)
    modes, sizes = [], []
    for path in files:
        with _open(path) as image:
            if image.mode in ("I", "F") or image.mode.startswith("I;"):
                raise DataError(
                    f"{path} has {image.mode} pixels (more than 8 bits); vaekit reads 8-bit "
                    "images, so convert it to 8 bits."
                )
            modes.append(image.mode)
            sizes.append(image.size)
    mode = "L" if all(Image.getmodebase(m) == "L" for m in modes) else "RGB"
    size = Counter(sizes).most_common(1)[0][0]
    channels = len(mode)
    pixels = np.empty((len(files), size[1], size[0], channels), dtype=np.uint8)
    for i, path in enumerate(files):
        with _open(path) as image:
            try:
                converted = image.convert(mode)
                if converted.size != size:
                    converted = converted.resize(size, Image.Resampling.BILINEAR)
            except _PIL_ERRORS as err:
                raise _unreadable(path, err) from None
        pixels[i] = np.asarray(converted).reshape(size[1], size[0], channels)
    rows = pixels.transpose(0, 3, 1, 2).reshape(len(files), -1).astype(np.float32) / 255
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    shape = (channels, size[1], size[0])
    return Dataset(folder.resolve().name, rows, None, y, None, shape, infer_kind(rows))


def _list_images(folder: Path) -> tuple[list[Path], list[int] | None]:
    top = _images_in(folder)
    classes = [d for d in _visible(folder) if d.is_dir() and _images_in(d)]
    if top and classes:
        raise DataError(
            f"{folder} has images both at its top level and in subfolders; put them all in "
            "class subfolders or all at the top."
        )
    if top:
        return top, None
    if not classes:
        raise DataError(f"{folder} holds no PNG or JPEG images; add some or give another path.")
    files, labels = [], []
    for index, subfolder in enumerate(classes):
        images = _images_in(subfolder)
        files += images
        labels += [index] * len(images)
    return files, labels


def _visible(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as err:
        raise DataError(f"Cannot read the folder {folder} ({err.strerror}).") from None


def _images_in(folder: Path) -> list[Path]:
    return [p for p in _visible(folder) if p.is_file() and p.suffix.lower() in SUFFIXES]


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except _PIL_ERRORS as err:
        raise _unreadable(path, err) from None


def _unreadable(path: Path, err: Exception) -> DataError:
    return DataError(f"{path} is not a readable image ({err}); fix or remove it.")
