"""Datasets: parsers on small hand-made files, the registry, downloads, and the real files."""

import gzip
import hashlib
import http.server
import pickle
import re
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from vaekit import DataError
from vaekit.data import DATASETS, fetch, load_dataset, registry
from vaekit.data.amat import read_amat
from vaekit.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_FILES = tuple(registry.MNIST.sha256)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A private cache, no VAEKIT_DATA, and mirrors that refuse connections: never the internet."""
    monkeypatch.delenv("VAEKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for source in (registry.MNIST, registry.FASHION_MNIST, registry.BINARIZED_MNIST):
        monkeypatch.setenv(source.mirror_variable, "http://127.0.0.1:9/")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setattr(fetch, "TIMEOUT_S", 5.0)


def cache_dir(tmp_path, name="mnist"):
    return tmp_path / "xdg" / "vaekit" / name


# --- IDX -------------------------------------------------------------------------------------


def idx_bytes(magic, dims, payload):
    return gzip.compress(struct.pack(f">{1 + len(dims)}I", magic, *dims) + bytes(payload))


def mnist_files(n_train=6, n_test=4, height=3, width=2, seed=0):
    """The four gzipped IDX files of a tiny MNIST, and the arrays they hold."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, height, width), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, height, width), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    files = {
        "train-images-idx3-ubyte.gz": idx_bytes(
            IMAGES_MAGIC, arrays["x_train"].shape, arrays["x_train"].tobytes()
        ),
        "train-labels-idx1-ubyte.gz": idx_bytes(LABELS_MAGIC, (n_train,), arrays["y_train"]),
        "t10k-images-idx3-ubyte.gz": idx_bytes(
            IMAGES_MAGIC, arrays["x_test"].shape, arrays["x_test"].tobytes()
        ),
        "t10k-labels-idx1-ubyte.gz": idx_bytes(LABELS_MAGIC, (n_test,), arrays["y_test"]),
    }
    return files, arrays


def write_files(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def assert_mnist_matches(dataset, arrays, name="mnist"):
    n, h, w = arrays["x_train"].shape
    assert dataset.name == name
    assert dataset.image_shape == (1, h, w)
    assert dataset.kind == "unit"
    assert dataset.train.dtype == np.float32 and dataset.train.shape == (n, h * w)
    np.testing.assert_allclose(dataset.train * 255, arrays["x_train"].reshape(n, -1), atol=1e-4)
    np.testing.assert_allclose(
        dataset.test * 255, arrays["x_test"].reshape(len(arrays["x_test"]), -1), atol=1e-4
    )
    assert dataset.y_train.dtype == np.int64
    np.testing.assert_array_equal(dataset.y_train, arrays["y_train"])
    np.testing.assert_array_equal(dataset.y_test, arrays["y_test"])
    assert dataset.valid is None and dataset.feature_names is None


def test_idx_round_trip(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / "images.gz"
    path.write_bytes(idx_bytes(IMAGES_MAGIC, images.shape, images.tobytes()))
    np.testing.assert_array_equal(read_idx(path, IMAGES_MAGIC), images)
    path.write_bytes(idx_bytes(LABELS_MAGIC, (4,), [3, 0, 9, 255]))
    np.testing.assert_array_equal(read_idx(path, LABELS_MAGIC), [3, 0, 9, 255])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (idx_bytes(LABELS_MAGIC, (2, 3, 3), bytes(18)), "magic number 2049, expected 2051"),
        (gzip.compress(struct.pack(">II", IMAGES_MAGIC, 2)), "too short for an IDX header"),
        (idx_bytes(IMAGES_MAGIC, (0, 3, 3), b""), "with a zero"),
        (idx_bytes(IMAGES_MAGIC, (2, 3, 3), bytes(17)), "18 bytes.*holds 17 bytes"),
        (idx_bytes(IMAGES_MAGIC, (2, 3, 3), bytes(19)), "18 bytes.*holds 19 bytes"),
        (gzip.decompress(idx_bytes(IMAGES_MAGIC, (2, 3, 3), bytes(18))), "not a readable gzip"),
        (b"", "too short for an IDX header"),
        (idx_bytes(IMAGES_MAGIC, (2, 3, 3), bytes(18))[:-12], "not a readable gzip"),
        (idx_bytes(IMAGES_MAGIC, (2, 3, 3), bytes(18))[:15] + bytes(30), "not a readable gzip"),
    ],
    ids=[
        "wrong-magic",
        "short-header",
        "zero-dim",
        "short-payload",
        "long-payload",
        "not-gzip",
        "empty",
        "truncated-gzip",
        "corrupt-deflate",
    ],
)
def test_bad_idx_files_are_refused(tmp_path, data, message):
    path = tmp_path / "bad-images.gz"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path, IMAGES_MAGIC)
    assert "bad-images.gz" in str(info.value)


def test_mnist_loads_from_dataset_folder_and_from_root(tmp_path):
    files, arrays = mnist_files()
    write_files(tmp_path / "nested" / "mnist", files)
    assert_mnist_matches(load_dataset("mnist", data_dir=tmp_path / "nested"), arrays)
    write_files(tmp_path / "flat", files)
    assert_mnist_matches(load_dataset("mnist", data_dir=str(tmp_path / "flat")), arrays)


def test_fashion_mnist_is_found_through_vaekit_data(tmp_path, monkeypatch):
    files, arrays = mnist_files(seed=3)
    write_files(tmp_path / "store" / "fashion-mnist", files)
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "store"))
    assert_mnist_matches(load_dataset("fashion-mnist"), arrays, name="fashion-mnist")


def test_data_dir_comes_before_vaekit_data(tmp_path, monkeypatch):
    first, arrays = mnist_files(seed=1)
    second, _ = mnist_files(seed=2)
    write_files(tmp_path / "first" / "mnist", first)
    write_files(tmp_path / "second" / "mnist", second)
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "second"))
    assert_mnist_matches(load_dataset("mnist", data_dir=tmp_path / "first"), arrays)


def test_label_count_must_match_image_count(tmp_path):
    files, _ = mnist_files(n_train=6)
    files["train-labels-idx1-ubyte.gz"] = idx_bytes(LABELS_MAGIC, (5,), bytes(5))
    write_files(tmp_path / "mnist", files)
    with pytest.raises(DataError, match="holds 6 images but train-labels-idx1-ubyte.gz holds 5"):
        load_dataset("mnist", data_dir=tmp_path)


def test_train_and_test_images_must_have_one_size(tmp_path):
    files, _ = mnist_files()
    files["t10k-images-idx3-ubyte.gz"] = idx_bytes(IMAGES_MAGIC, (4, 3, 3), bytes(36))
    write_files(tmp_path / "mnist", files)
    with pytest.raises(DataError, match=r"train images are \(3, 2\) but the test images"):
        load_dataset("mnist", data_dir=tmp_path)


# --- .amat (binarized MNIST) -----------------------------------------------------------------


def amat_text(rows, newline="\n"):
    return "".join(" ".join(str(int(v)) for v in row) + newline for row in rows).encode()


def binary_rows(n, seed=0):
    return np.random.default_rng(seed).integers(0, 2, (n, 784)).astype(np.float32)


def test_amat_reads_the_published_layout_and_variants(tmp_path):
    rows = binary_rows(3)
    path = tmp_path / "a.amat"
    for data in (amat_text(rows), amat_text(rows, "\r\n"), amat_text(rows)[:-1]):
        path.write_bytes(data)
        out = read_amat(path)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, rows)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: lines.__setitem__(1, lines[1][:-2]), "line 2 has 783 values, expected 784"),
        (lambda lines: lines.__setitem__(2, b"2" + lines[2][1:]), "line 3 holds the value '2'"),
        (lambda lines: lines.__setitem__(0, b"\xff" + lines[0][1:]), "line 1 holds the value"),
        (lambda lines: lines.clear(), "is empty"),
    ],
    ids=["783-values", "value-2", "not-text", "empty"],
)
def test_bad_amat_files_are_refused(tmp_path, edit, message):
    lines = amat_text(binary_rows(3)).splitlines()
    edit(lines)
    path = tmp_path / "binarized_mnist_train.amat"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    with pytest.raises(DataError, match=message) as info:
        read_amat(path)
    assert "binarized_mnist_train.amat" in str(info.value)


def test_binarized_mnist_loads_three_splits(tmp_path):
    splits = {"train": binary_rows(4, 1), "valid": binary_rows(2, 2), "test": binary_rows(3, 3)}
    folder = tmp_path / "binarized-mnist"
    folder.mkdir()
    for split, rows in splits.items():
        (folder / f"binarized_mnist_{split}.amat").write_bytes(amat_text(rows))
    dataset = load_dataset("binarized-mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(dataset.train, splits["train"])
    np.testing.assert_array_equal(dataset.valid, splits["valid"])
    np.testing.assert_array_equal(dataset.test, splits["test"])
    assert (dataset.kind, dataset.image_shape) == ("binary", (1, 28, 28))
    assert dataset.y_train is None and dataset.y_test is None
    fixed = load_dataset("binarized-mnist", data_dir=tmp_path, binarize="fixed", seed=5)
    np.testing.assert_array_equal(fixed.train, splits["train"])
    with pytest.raises(DataError, match="already binary"):
        load_dataset("binarized-mnist", data_dir=tmp_path, binarize="dynamic")


# --- names, lookup, options -------------------------------------------------------------------


def test_registry_names():
    assert list(DATASETS) == ["digits", "mnist", "fashion-mnist", "binarized-mnist"]


def test_unknown_name_is_refused_with_the_choices():
    message = (
        "Unknown dataset 'cifar'; use one of digits, mnist, fashion-mnist, binarized-mnist, or a "
        "path to a .npy, .npz, .csv, .h5ad file or an image folder."
    )
    with pytest.raises(DataError, match=re.escape(message)):
        load_dataset("cifar")


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nothing.csv")


def test_unreadable_file_type_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("1,2\n")
    with pytest.raises(DataError, match=r"reads \.npy, \.npz, \.csv and \.h5ad files"):
        load_dataset(tmp_path / "notes.txt")


@pytest.mark.parametrize("name", ["digits", "mnist", "binarized-mnist"])
def test_unknown_binarize_option_is_refused_before_reading(name):
    with pytest.raises(DataError, match="Unknown binarize option 'yes'"):
        load_dataset(name, binarize="yes", download=False)


def test_missing_files_without_download_name_the_files_and_the_folder(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("mnist", download=False)
    message = str(info.value)
    assert all(file in message for file in MNIST_FILES)
    assert str(cache_dir(tmp_path)) in message and message.endswith("allow the download.")


def test_missing_files_in_data_dir_are_not_downloaded(tmp_path):
    files, _ = mnist_files()
    del files["t10k-labels-idx1-ubyte.gz"]
    write_files(tmp_path / "given" / "mnist", files)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=tmp_path / "given")
    message = str(info.value)
    assert "missing: put t10k-labels-idx1-ubyte.gz in" in message
    assert str(tmp_path / "given" / "mnist") in message and "--data-dir" in message


# --- digits and binarization ------------------------------------------------------------------


def test_digits_split_scale_and_labels():
    dataset = load_dataset("digits")
    assert dataset.train.shape == (1347, 64) and dataset.test.shape == (450, 64)
    assert dataset.train.dtype == np.float32
    assert dataset.train.min() == 0 and dataset.train.max() == 1
    np.testing.assert_array_equal(dataset.train * 16, np.round(dataset.train * 16))
    assert (dataset.kind, dataset.image_shape, dataset.name) == ("unit", (1, 8, 8), "digits")
    assert dataset.y_train.dtype == np.int64
    all_counts = np.bincount(load_digits().target)
    np.testing.assert_array_equal(
        np.bincount(dataset.y_train) + np.bincount(dataset.y_test), all_counts
    )
    assert np.abs(np.bincount(dataset.y_test) - all_counts / 4).max() <= 1  # stratified
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.train, dataset.train)


def test_digits_fixed_binarization_is_seeded():
    plain = load_dataset("digits")
    fixed = load_dataset("digits", binarize="fixed", seed=1)
    assert fixed.kind == "binary"
    for split in (fixed.train, fixed.test):
        assert split.dtype == np.float32 and set(np.unique(split)) == {0.0, 1.0}
    assert abs(fixed.train.mean() - plain.train.mean()) < 0.01  # a Bernoulli draw of the pixels
    assert not fixed.train[plain.train == 0].any() and fixed.train[plain.train == 1].all()
    same = load_dataset("digits", binarize="fixed", seed=1)
    other = load_dataset("digits", binarize="fixed", seed=2)
    np.testing.assert_array_equal(same.train, fixed.train)
    np.testing.assert_array_equal(same.test, fixed.test)
    assert (other.train != fixed.train).mean() > 0.05
    np.testing.assert_array_equal(fixed.y_train, plain.y_train)


def test_digits_dynamic_binarization_draws_only_the_test_set():
    plain = load_dataset("digits")
    dynamic = load_dataset("digits", binarize="dynamic", seed=1)
    assert dynamic.kind == "unit"
    np.testing.assert_array_equal(dynamic.train, plain.train)
    assert set(np.unique(dynamic.test)) == {0.0, 1.0}
    fixed = load_dataset("digits", binarize="fixed", seed=1)
    np.testing.assert_array_equal(dynamic.test, fixed.test)  # one test draw per seed, any mode


# --- user arrays: .npy and .npz ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([[0.0, 1.0], [1.0, 1.0]], "binary"),
        ([[0.0, 0.5], [1.0, 0.25]], "unit"),
        ([[-1.0, 2.0], [3.0, 0.5]], "real"),
    ],
)
def test_npy_table_kinds(tmp_path, values, kind):
    np.save(tmp_path / "table.npy", np.array(values))
    dataset = load_dataset(tmp_path / "table.npy")
    assert (dataset.name, dataset.kind, dataset.image_shape) == ("table.npy", kind, None)
    assert dataset.train.dtype == np.float32 and dataset.test is None and dataset.y_train is None
    np.testing.assert_array_equal(dataset.train, values)


def test_npy_uint8_images_are_scaled(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4, 5, 6), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    dataset = load_dataset(str(tmp_path / "images.npy"))
    assert dataset.image_shape == (1, 5, 6) and dataset.kind == "unit"
    np.testing.assert_allclose(dataset.train, images.reshape(4, 30) / 255, rtol=1e-6)


def test_npy_channels_last_images_become_channels_first(tmp_path):
    images = np.random.default_rng(0).random((2, 5, 6, 3))
    np.save(tmp_path / "rgb.npy", images)
    dataset = load_dataset(tmp_path / "rgb.npy")
    assert dataset.image_shape == (3, 5, 6)
    np.testing.assert_allclose(dataset.train[1], images[1].transpose(2, 0, 1).ravel(), rtol=1e-6)
    np.save(tmp_path / "chw.npy", images.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(load_dataset(tmp_path / "chw.npy").train, dataset.train)


def _write(path, data):
    path.write_bytes(data)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True), "unpickling"),
        (lambda p: _write(p, pickle.dumps([[1.0, 2.0]])), "unpickling"),
        (lambda p: _write(p, b""), "not a readable NumPy file"),
        (lambda p: _write(p, np.lib.format.magic(1, 0) + b"\x10\x00{'descr':"), "not a readable"),
        (lambda p: np.save(p, np.arange(5.0)), r"shape \(5,\)"),
        (lambda p: np.save(p, np.zeros((2, 2, 2, 2, 2))), r"shape \(2, 2, 2, 2, 2\)"),
        (lambda p: np.save(p, np.zeros((2, 5, 6, 7))), "C = 1, 3 or 4"),
        (lambda p: np.save(p, np.array([["a", "b"]])), "give a numeric array"),
        (lambda p: np.save(p, np.zeros((0, 3))), "holds no values"),
        (
            lambda p: np.save(p, np.array([[1.0, np.nan], [0, 1], [np.inf, 0]])),
            "NaN or infinite values in 2 rows",
        ),
    ],
    ids=[
        "object",
        "pickle",
        "empty",
        "truncated",
        "1-d",
        "5-d",
        "4-d-no-channels",
        "strings",
        "no-rows",
        "nan",
    ],
)
def test_bad_npy_files_are_refused(tmp_path, make, message):
    path = tmp_path / "bad.npy"
    make(path)
    with pytest.raises(DataError, match=message):
        load_dataset(path)


def test_npz_with_data_and_labels(tmp_path):
    x = np.random.default_rng(0).random((5, 3))
    np.savez(tmp_path / "a.npz", X=x, y=np.array([0, 1, 1, 0, 2]), other=np.zeros(2))
    dataset = load_dataset(tmp_path / "a.npz")
    np.testing.assert_allclose(dataset.train, x, rtol=1e-6)
    assert dataset.y_train.dtype == np.int64
    np.testing.assert_array_equal(dataset.y_train, [0, 1, 1, 0, 2])
    np.savez(tmp_path / "b.npz", images=np.zeros((2, 4, 4), np.uint8), labels=np.array([1.0, 0]))
    dataset = load_dataset(tmp_path / "b.npz")
    assert dataset.image_shape == (1, 4, 4) and dataset.y_train.tolist() == [1, 0]
    np.savez(tmp_path / "c.npz", x)  # the only array, saved as arr_0
    assert load_dataset(tmp_path / "c.npz").train.shape == (5, 3)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.zeros((3, 2)), "y": np.zeros(4)}, r"3 examples but labels of shape \(4,\)"),
        ({"X": np.zeros((2, 2)), "targets": np.array([0.5, 1])}, "not whole numbers"),
        ({"a": np.zeros((2, 2)), "b": np.zeros((2, 2))}, "holds the arrays a, b"),
        ({"y": np.zeros(2)}, "holds the arrays y"),
        ({"X": np.array([{}], dtype=object)}, "could only read it by unpickling"),
    ],
    ids=["label-count", "fractional-labels", "ambiguous", "labels-only", "object"],
)
def test_bad_npz_files_are_refused(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_dataset(tmp_path / "bad.npz")


def test_corrupt_npz_is_refused(tmp_path):
    np.savez(tmp_path / "ok.npz", X=np.zeros((50, 4)))
    data = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.npz"):
        load_dataset(tmp_path / "cut.npz")


# --- user CSV ---------------------------------------------------------------------------------


def test_csv_with_header_and_label_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("height, weight ,Label\n1.5,-2,0\n\n3,4e1,2\n", encoding="utf-8")
    dataset = load_dataset(path)
    assert dataset.feature_names == ("height", "weight")
    np.testing.assert_array_equal(dataset.train, [[1.5, -2.0], [3.0, 40.0]])
    np.testing.assert_array_equal(dataset.y_train, [0, 2])
    assert (dataset.kind, dataset.name, dataset.test) == ("real", "t.csv", None)


def test_csv_without_header(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b'\xef\xbb\xbf0,0.5\n"1",0.25\r\n\n')  # a BOM, a quoted cell, CRLF, blank line
    dataset = load_dataset(path)
    assert dataset.feature_names is None and dataset.y_train is None
    assert dataset.kind == "unit"
    np.testing.assert_array_equal(dataset.train, [[0, 0.5], [1, 0.25]])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a,b,c\n1,2,3\n4,5\n", "line 3 has 2 values, expected 3"),
        (b"a,b\n1,2\n3,x\n", r"line 3, column 2 \('b'\) holds 'x', which is not a number"),
        (b"1,2\n3,\n", r"line 2, column 2 holds a missing value \(''\); fill it in, or train with"),
        (b"a,b\n1,2\n3, NA\n", r"line 3, column 2 \('b'\) holds a missing value \(' NA'\)"),
        (
            b"a,b\n1,2\n3,nan\n4,inf\n",
            r"NaN or infinite values in 2 rows \(the first at line 3, column 2",
        ),
        (b"", "is empty"),
        (b"\n  \n", "is empty"),
        (b"a,b\n", "header but no data rows"),
        (b"a,b\n\xff\xfe,1\n", "not UTF-8"),
        (b"a,y,label\n1,2,3\n", "several label columns"),
        (b"a,target\n1,0.5\n", "not whole numbers"),
        (b"class\n1\n", "no feature columns"),
    ],
    ids=[
        "ragged",
        "non-numeric",
        "empty-cell",
        "na-cell",
        "nan",
        "empty",
        "blank",
        "header-only",
        "latin-1",
        "two-labels",
        "fractional-label",
        "only-labels",
    ],
)
def test_bad_csv_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(path)
    assert "bad.csv" in str(info.value)


# --- user image folders -----------------------------------------------------------------------


def save_image(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def test_grayscale_folder(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 5, 4), dtype=np.uint8)  # height 5, width 4
    for i, image in enumerate(images):
        save_image(tmp_path / "faces" / f"{i}.png", image)
    (tmp_path / "faces" / "notes.txt").write_text("not an image")
    (tmp_path / "faces" / ".DS_Store").write_bytes(b"\x00\x01")
    dataset = load_dataset(tmp_path / "faces")
    assert (dataset.name, dataset.image_shape, dataset.kind) == ("faces", (1, 5, 4), "unit")
    assert dataset.y_train is None and dataset.test is None
    np.testing.assert_allclose(dataset.train, images.reshape(3, -1) / 255, rtol=1e-6)


def test_colour_modes_are_read_as_rgb(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    folder = tmp_path / "colour"
    save_image(folder / "a.png", rgb)
    save_image(folder / "b.png", rng.integers(0, 256, (5, 4, 4)))  # RGBA
    Image.fromarray(rgb).convert("P").save(folder / "c.png")  # palette
    dataset = load_dataset(folder)
    assert dataset.image_shape == (3, 5, 4) and dataset.train.shape == (3, 60)
    np.testing.assert_allclose(dataset.train[0], rgb.transpose(2, 0, 1).ravel() / 255, rtol=1e-6)
    assert 0 <= dataset.train.min() and dataset.train.max() <= 1


@pytest.mark.parametrize(
    "second, message",
    [
        (np.zeros((9, 7)), "mixes image sizes: a.png is 4x5 but b.png is 7x9; resize them"),
        (np.zeros((5, 4, 3)), r"mixes grayscale and colour images \(a.png and b.png\)"),
    ],
    ids=["sizes", "modes"],
)
def test_a_folder_of_mixed_images_is_refused(tmp_path, second, message):
    save_image(tmp_path / "mixed" / "a.png", np.zeros((5, 4)))
    save_image(tmp_path / "mixed" / "b.png", second)
    with pytest.raises(DataError, match=message):
        load_dataset(tmp_path / "mixed")


def test_class_subfolders_give_sorted_labels(tmp_path):
    folder = tmp_path / "pets"
    save_image(folder / "dog" / "1.png", np.zeros((3, 3)))
    save_image(folder / "cat" / "2.png", np.full((3, 3), 255))
    save_image(folder / "dog" / "0.png", np.zeros((3, 3)))
    (folder / "empty").mkdir()
    dataset = load_dataset(folder)
    assert dataset.y_train.dtype == np.int64
    np.testing.assert_array_equal(dataset.y_train, [0, 1, 1])
    np.testing.assert_array_equal(dataset.train[:, 0], [1, 0, 0])
    assert dataset.kind == "binary"
    fixed = load_dataset(folder, binarize="fixed")
    np.testing.assert_array_equal(fixed.train, dataset.train)


def test_bad_image_folders_are_refused(tmp_path):
    save_image(tmp_path / "deep" / "a.png", np.zeros((3, 3)))
    Image.fromarray(np.full((3, 3), 4000, np.uint16)).save(tmp_path / "deep" / "b.png")
    with pytest.raises(DataError, match="b.png has I;16 pixels"):
        load_dataset(tmp_path / "deep")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no PNG or JPEG images"):
        load_dataset(tmp_path / "empty")
    save_image(tmp_path / "both" / "a.png", np.zeros((3, 3)))
    save_image(tmp_path / "both" / "cls" / "b.png", np.zeros((3, 3)))
    with pytest.raises(DataError, match="both at its top level and in subfolders"):
        load_dataset(tmp_path / "both")


def _zero_bytes(data, start, stop):
    return data[:start] + bytes(stop - start) + data[stop:]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: data[:20],  # inside the header chunk
        lambda data: data[:60],  # inside the pixel data
        lambda data: _zero_bytes(data, 100, 110),  # a broken compressed stream
        lambda data: _zero_bytes(data, 12, 16),  # no header chunk
    ],
    ids=["empty", "cut-header", "cut-data", "zeroed-data", "zeroed-header"],
)
def test_corrupt_png_is_refused_naming_the_file(tmp_path, damage):
    save_image(tmp_path / "imgs" / "good.png", np.zeros((16, 16)))
    save_image(tmp_path / "imgs" / "bad.png", np.random.default_rng(0).integers(0, 256, (16, 16)))
    data = (tmp_path / "imgs" / "bad.png").read_bytes()
    (tmp_path / "imgs" / "bad.png").write_bytes(damage(data))
    with pytest.raises(DataError, match="bad.png is not a readable image"):
        load_dataset(tmp_path / "imgs")


def test_binarize_applies_to_user_data(tmp_path):
    x = np.random.default_rng(0).random((50, 4))
    np.save(tmp_path / "unit.npy", x)
    fixed = load_dataset(tmp_path / "unit.npy", binarize="fixed", seed=3)
    assert fixed.kind == "binary" and set(np.unique(fixed.train)) == {0.0, 1.0}
    np.save(tmp_path / "real.npy", x * 5)
    with pytest.raises(DataError, match=r"values outside \[0, 1\]"):
        load_dataset(tmp_path / "real.npy", binarize="fixed")


# --- downloads from a local mirror ------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.lstrip("/")
        self.server.requests.append(name)
        body = self.server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: self.server.cut.get(name, len(body))])

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(monkeypatch):
    """An HTTP server on 127.0.0.1 serving ``files`` (a dict), MNIST's mirror for the test."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files, server.cut, server.requests = {}, {}, []
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    monkeypatch.setenv("VAEKIT_MIRROR_MNIST", f"http://127.0.0.1:{server.server_port}")
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def tiny_mnist(monkeypatch):
    """Tiny IDX files, with the checksum table pointing at them."""
    files, arrays = mnist_files()
    for name, data in files.items():
        monkeypatch.setitem(registry.MNIST.sha256, name, hashlib.sha256(data).hexdigest())
    return files, arrays


def test_download_verifies_and_loads(tmp_path, mirror, tiny_mnist):
    files, arrays = tiny_mnist
    mirror.files.update(files)
    assert_mnist_matches(load_dataset("mnist"), arrays)
    assert sorted(mirror.requests) == sorted(MNIST_FILES)
    cached = cache_dir(tmp_path)
    assert sorted(p.name for p in cached.iterdir()) == sorted(MNIST_FILES)  # no temporary files
    assert all((cached / name).read_bytes() == data for name, data in files.items())
    assert_mnist_matches(load_dataset("mnist"), arrays)
    assert len(mirror.requests) == 4  # the second load used the cache


def test_only_missing_files_are_downloaded(tmp_path, mirror, tiny_mnist):
    files, arrays = tiny_mnist
    mirror.files.update(files)
    write_files(cache_dir(tmp_path), {k: files[k] for k in MNIST_FILES[:3]})
    assert_mnist_matches(load_dataset("mnist"), arrays)
    assert mirror.requests == [MNIST_FILES[3]]


def test_checksum_mismatch_deletes_the_download(tmp_path, mirror, tiny_mnist):
    files, _ = tiny_mnist
    mirror.files.update(files)
    mirror.files["train-labels-idx1-ubyte.gz"] = idx_bytes(LABELS_MAGIC, (6,), bytes(6))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz .*does not match its SHA256"):
        load_dataset("mnist")
    assert [p.name for p in cache_dir(tmp_path).iterdir()] == ["train-images-idx3-ubyte.gz"]


def test_interrupted_download_leaves_no_file(tmp_path, mirror, tiny_mnist):
    files, _ = tiny_mnist
    mirror.files.update(files)
    mirror.cut["train-images-idx3-ubyte.gz"] = len(files["train-images-idx3-ubyte.gz"]) // 2
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist")
    assert list(cache_dir(tmp_path).iterdir()) == []


def test_http_error_is_a_data_error(tmp_path, mirror, tiny_mnist):
    with pytest.raises(DataError, match="Could not download .*train-images-idx3-ubyte.gz"):
        load_dataset("mnist")
    assert list(cache_dir(tmp_path).iterdir()) == []


def test_unreachable_mirror_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="Could not download http://127.0.0.1:9/"):
        load_dataset("binarized-mnist")
    assert list(cache_dir(tmp_path, "binarized-mnist").iterdir()) == []


def test_offline_the_error_names_every_file_to_put_in_place(tmp_path, mirror):
    with pytest.raises(DataError) as caught:  # the mirror serves nothing: every file missing
        load_dataset("mnist")
    for file in MNIST_FILES:
        assert file in str(caught.value), file
    assert str(cache_dir(tmp_path)) in str(caught.value)


# --- the real files ---------------------------------------------------------------------------


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="no shared copy of MNIST")
def test_real_mnist():
    dataset = load_dataset("mnist", data_dir=SHARED)
    assert dataset.train.shape == (60000, 784) and dataset.test.shape == (10000, 784)
    assert dataset.train.min() == 0 and dataset.train.max() == 1
    assert np.bincount(dataset.y_train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(dataset.y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "binarized-mnist").is_dir(), reason="no shared binarized MNIST")
def test_real_binarized_mnist_loads_fast():
    start = time.perf_counter()
    dataset = load_dataset("binarized-mnist", data_dir=SHARED)
    assert time.perf_counter() - start < 20  # about 2 s here: must stay seconds, not minutes
    assert dataset.train.shape == (50000, 784)
    assert dataset.valid.shape == (10000, 784) and dataset.test.shape == (10000, 784)
    for split in (dataset.train, dataset.valid, dataset.test):
        assert set(np.unique(split)) == {0.0, 1.0}
    assert 0.1 < dataset.train.mean() < 0.16
