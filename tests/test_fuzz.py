"""Property-based fuzzing of the file parsers: whatever the bytes, the only error is DataError.

Each parser gets random bytes and mutations of a valid file (bytes flipped, cut, inserted,
repeated). It must return well-formed data or raise vaekit's DataError; any other exception
(IndexError, UnicodeDecodeError, MemoryError from a huge declared size, ...) fails the test.
Hypothesis shrinks a failing input to a small one and prints it. Found this way: a damaged
.npy header made NumPy raise SyntaxError and tokenize.TokenError; a .npz member flagged as
encrypted or with an unknown compression method made zipfile raise RuntimeError and
NotImplementedError (kept below as fixed regression cases).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vaekit.data.amat import read_amat
from vaekit.data.arrays import load_npy, load_npz
from vaekit.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from vaekit.data.images import load_image_folder
from vaekit.data.tabular import load_csv
from vaekit.exceptions import DataError

# 400 fixed examples per parser in the suite (about 10 s); VAEKIT_FUZZ_EXAMPLES=20000 explores
# afresh with random seeds.
DEEP = os.environ.get("VAEKIT_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(DEEP or 400),
    derandomize=DEEP is None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def mutated(draw, valid: bytes) -> bytes:
    """``valid`` with a few random edits: flips, cuts, insertions, repeats."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "zero"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif kind == "zero":
            data[at : at + 4] = bytes(len(data[at : at + 4]))
    return bytes(data)


def inputs(valid: bytes):
    """Random bytes, or a mutation of a valid file."""
    return st.one_of(st.binary(max_size=512), mutated(valid))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def only_data_errors(parse: Callable[[Path], object], path: Path, data: bytes) -> object | None:
    path.write_bytes(data)
    try:
        return parse(path)
    except DataError:
        return None


def idx_file(dims: tuple[int, ...]) -> bytes:
    header = struct.pack(">HBB", 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    return (
        header
        + np.random.default_rng(0).integers(0, 256, int(np.prod(dims))).astype(np.uint8).tobytes()
    )


VALID_IMAGES = gzip.compress(idx_file((3, 4, 5)))
VALID_LABELS = gzip.compress(idx_file((3,)))


@FUZZ
@given(st.one_of(inputs(VALID_IMAGES), inputs(idx_file((3, 4, 5))).map(gzip.compress)))
def test_idx_images(work, data):
    x = only_data_errors(lambda p: read_idx(p, IMAGES_MAGIC), work / "images.gz", data)
    assert x is None or (x.dtype == np.uint8 and x.ndim == 3 and min(x.shape) > 0)


@FUZZ
@given(st.one_of(inputs(VALID_LABELS), inputs(idx_file((3,))).map(gzip.compress)))
def test_idx_labels(work, data):
    y = only_data_errors(lambda p: read_idx(p, LABELS_MAGIC), work / "labels.gz", data)
    assert y is None or (y.dtype == np.uint8 and y.ndim == 1)


AMAT = b"".join(b" ".join(row) + b"\n" for row in ([b"0", b"1", b"1", b"0"],) * 3)


@FUZZ
@given(inputs(AMAT))
def test_amat(work, data):
    x = only_data_errors(lambda p: read_amat(p, width=4), work / "x.amat", data)
    assert x is None or (x.shape[1] == 4 and set(np.unique(x)) <= {0.0, 1.0})


CSV = b"a,b,label\n1.5,2,0\n-3,4e-2,1\n5,6,1\n"


@FUZZ
@given(st.one_of(inputs(CSV), st.text(max_size=200).map(str.encode)))
def test_csv(work, data):
    dataset = only_data_errors(load_csv, work / "x.csv", data)
    assert dataset is None or np.isfinite(dataset.train).all()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@FUZZ
@given(inputs(npy_bytes(np.arange(12, dtype=np.float32).reshape(3, 4))))
def test_npy(work, data):
    dataset = only_data_errors(load_npy, work / "x.npy", data)
    assert dataset is None or np.isfinite(dataset.train).all()


@FUZZ
@given(inputs(npz_bytes(X=np.ones((3, 4)), y=np.arange(3))))
def test_npz(work, data):
    dataset = only_data_errors(load_npz, work / "x.npz", data)
    assert dataset is None or np.isfinite(dataset.train).all()


def zip_with(valid: bytes, flag: int = 0, method: int | None = None) -> bytes:
    """``valid`` with every zip member's flag bits or compression method changed."""
    data = bytearray(valid)
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at != -1:
            data[at + flag_at] |= flag
            if method is not None:
                data[at + method_at : at + method_at + 2] = struct.pack("<H", method)
            at = data.find(signature, at + 1)
    return bytes(data)


@pytest.mark.parametrize("damage", [{"flag": 1}, {"method": 99}], ids=["encrypted", "method"])
def test_npz_members_that_zipfile_cannot_read(tmp_path, damage):
    (tmp_path / "x.npz").write_bytes(zip_with(npz_bytes(X=np.ones((3, 4))), **damage))
    with pytest.raises(DataError, match="not a readable NumPy file"):
        load_npz(tmp_path / "x.npz")


def image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
@FUZZ
@given(data=st.data())
def test_image_folder(work, fmt, suffix, data):
    folder = work / f"images{suffix}"
    folder.mkdir(exist_ok=True)
    payload = data.draw(inputs(image_bytes(fmt)))
    dataset = only_data_errors(
        lambda p: load_image_folder(p.parent), folder / f"a{suffix}", payload
    )
    assert dataset is None or (0 <= dataset.train.min() and dataset.train.max() <= 1)
