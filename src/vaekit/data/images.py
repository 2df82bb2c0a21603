"""A user folder of PNG/JPEG images, flat or in class subfolders (folder/<class>/*.png)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..exceptions import DataError
from .dataset import Dataset, infer_kind

SUFFIXES = (".png", ".jpg", ".jpeg")
# What Pillow raises on files it cannot decode, depending on the format and the damage.
PIL_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


def load_image_folder(folder: Path) -> Dataset:
    """All images, of one size and either all grayscale or all colour (RGB), in [0, 1].

    Images in class subfolders get the index of their class in the sorted class names as label.
    Colour modes (RGB, RGBA, palette) are read as RGB; a folder that mixes sizes, or grayscale
    with colour, is refused rather than silently resized or converted.
    """
    files, labels = list_images(folder)
    mode, (width, height) = image_format(folder, files)
    channels = len(mode)
    pixels = np.empty((len(files), height, width, channels), dtype=np.uint8)
    for i, path in enumerate(files):
        with open_image(path) as image:
            try:
                converted = image.convert(mode)
            except PIL_ERRORS as err:
                raise unreadable(path, err) from None
        pixels[i] = np.asarray(converted).reshape(height, width, channels)
    rows = pixels.transpose(0, 3, 1, 2).reshape(len(files), -1).astype(np.float32) / 255
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    shape = (channels, height, width)
    return Dataset(folder.resolve().name, rows, None, y, None, shape, infer_kind(rows))


def image_format(
    folder: Path, files: list[Path], progress: bool = False
) -> tuple[str, tuple[int, int]]:
    """The one mode ("L" or "RGB") and size (width, height) of the images, from their headers.

    Raises
    ------
    DataError
        For images of more than 8 bits, or a folder that mixes sizes or grayscale and colour.
    """
    modes, sizes = [], []
    for path in tqdm(
        files, desc="Checking images", unit="image", disable=None if progress else True
    ):
        with open_image(path) as image:
            if image.mode in ("I", "F") or image.mode.startswith("I;"):
                raise DataError(
                    f"{path} has {image.mode} pixels (more than 8 bits); vaekit reads 8-bit "
                    "images, so convert it to 8 bits."
                )
            modes.append("L" if Image.getmodebase(image.mode) == "L" else "RGB")
            sizes.append(image.size)
    first = files[0]
    for path, mode, size in zip(files, modes, sizes, strict=True):
        if size != sizes[0]:
            raise DataError(
                f"{folder} mixes image sizes: {first.name} is {_size(sizes[0])} but "
                f"{path.relative_to(folder)} is {_size(size)}; resize them to one size."
            )
        if mode != modes[0]:
            raise DataError(
                f"{folder} mixes grayscale and colour images ({first.name} and "
                f"{path.relative_to(folder)}); convert them to one mode."
            )
    return modes[0], sizes[0]


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def list_images(folder: Path) -> tuple[list[Path], list[int] | None]:
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


def open_image(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except PIL_ERRORS as err:
        raise unreadable(path, err) from None


def unreadable(path: Path, err: Exception) -> DataError:
    return DataError(f"{path} is not a readable image ({err}); fix or remove it.")
