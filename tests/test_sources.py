"""Data sources: rows read by index from arrays, memory maps, sparse matrices and image caches."""

import os

import numpy as np
import pytest
import scipy.sparse as sp
from PIL import Image

from vaekit import DataError
from vaekit.data import dataset as dataset_module
from vaekit.data.arrays import open_npy
from vaekit.data.image_cache import image_folder_source
from vaekit.data.images import load_image_folder
from vaekit.engine import sources
from vaekit.engine.sources import (
    ArraySource,
    DataSource,
    SparseSource,
    SubsetSource,
    as_source,
    check_finite,
    scan,
)


def mapped(tmp_path, array, name="x.npy"):
    np.save(tmp_path / name, array)
    return np.load(tmp_path / name, mmap_mode="r")


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 7))
    x[rng.random(x.shape) < 0.6] = 0  # sparse enough to make CSR worth it
    return x


def test_rows_are_the_same_from_every_kind_of_source(tmp_path, X):
    kinds = [ArraySource(X), ArraySource(mapped(tmp_path, X)), SparseSource(sp.csr_matrix(X))]
    rng = np.random.default_rng(1)
    for index in (rng.integers(0, len(X), 500), np.arange(len(X))[::-1], [5, 5, 0], []):
        expected = X[np.asarray(index, dtype=np.intp)].astype(np.float32)
        for source in kinds:
            got = source.rows(index)
            assert got.dtype == np.float32 and got.flags.c_contiguous
            assert np.array_equal(got, expected)


def test_rows_are_new_arrays_never_views_of_the_storage():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    source = ArraySource(x)
    source.rows([0, 1])[:] = -1
    next(source.chunks())[1][:] = -1
    assert np.array_equal(x, np.arange(12, dtype=np.float32).reshape(4, 3))


def test_uint8_is_stored_as_uint8_and_divided_per_batch():
    x = np.random.default_rng(2).integers(0, 256, size=(50, 2, 3, 3), dtype=np.uint8)
    source = ArraySource(x, divisor=255)
    assert source.array.dtype == np.uint8 and np.shares_memory(source.array, x)
    assert (source.n_rows, source.n_features) == (50, 18)
    index = [7, 3, 3, 49]
    expected = x.reshape(50, -1)[index].astype(np.float32) / 255
    assert np.array_equal(source.rows(index), expected)
    assert np.array_equal(ArraySource(x).rows(index), x.reshape(50, -1)[index])


@pytest.mark.parametrize("dtype", [bool, np.int16, np.uint32, np.float16, np.float64])
def test_every_numeric_dtype_keeps_its_storage(dtype):
    x = (np.random.default_rng(3).random((20, 4)) * 3).astype(dtype)
    source = ArraySource(x)
    assert source.array.dtype == dtype
    assert np.array_equal(source.rows([3, 1]), x[[3, 1]].astype(np.float32))


@pytest.mark.parametrize(
    "array, match",
    [
        (np.array([["a", "b"]]), "holds <U1 values; give a numeric array"),
        (np.ones((2, 2), dtype=complex), "holds complex128 values"),
        (np.array([[None]]), "holds object values"),
        (np.ones(5), r"has shape \(5,\); give one example per row"),
        (np.ones((0, 3)), "holds no values"),
    ],
)
def test_unusable_arrays_are_refused(array, match):
    with pytest.raises(DataError, match=match):
        ArraySource(array)


def test_a_memory_map_stays_mapped_and_is_never_copied(tmp_path):
    x = np.arange(60, dtype=np.float32).reshape(10, 2, 3)
    mm = mapped(tmp_path, x)
    source = ArraySource(mm)
    assert isinstance(source.array, np.memmap) and np.shares_memory(source.array, mm)
    assert source.array.shape == (10, 6)
    assert np.array_equal(source.rows([9, 0]), x.reshape(10, 6)[[9, 0]])


def test_a_fortran_order_memory_map_is_refused_and_an_in_memory_one_is_copied(tmp_path):
    x = np.asfortranarray(np.arange(12.0).reshape(4, 3))
    with pytest.raises(DataError, match="order other than C"):
        ArraySource(mapped(tmp_path, x))
    assert np.array_equal(ArraySource(x).rows([2, 0]), x[[2, 0]].astype(np.float32))


def test_bad_indices_are_refused(X):
    source = ArraySource(X)
    with pytest.raises(IndexError, match=r"outside \[0, 300\)"):
        source.rows([0, 300])
    with pytest.raises(IndexError):
        source.rows([-1])
    with pytest.raises(TypeError, match="integers"):
        source.rows([0.5])


def test_a_subset_reads_the_rows_of_its_parent_and_subsets_compose(X):
    labels = np.arange(len(X)) % 5
    outer = np.random.default_rng(4).permutation(len(X))[:100]
    inner = np.array([99, 0, 0, 42, 7])
    source = SubsetSource(SubsetSource(ArraySource(X, labels=labels), outer), inner)
    assert (source.n_rows, len(source), source.n_features) == (5, 5, 7)
    assert np.array_equal(source.labels, labels[outer][inner])
    expected = X[outer][inner].astype(np.float32)
    assert np.array_equal(source.rows(np.arange(5)), expected)
    assert np.array_equal(source.rows([4, 1]), expected[[4, 1]])
    assert np.array_equal(np.concatenate([c for _, c in source.chunks(2)]), expected)


def test_a_subset_keeps_its_own_copy_of_the_index(X):
    index = np.array([1, 2, 3])
    source = SubsetSource(ArraySource(X), index)
    index[:] = 0
    assert np.array_equal(source.rows([0, 1, 2]), X[[1, 2, 3]].astype(np.float32))
    with pytest.raises(IndexError):
        SubsetSource(ArraySource(X), [len(X)])


@pytest.mark.parametrize("make", [ArraySource, lambda x: SparseSource(sp.csr_matrix(x))])
def test_chunks_cover_every_row_once_in_order(X, make):
    source = make(X)
    starts, parts = zip(*source.chunks(64), strict=True)
    assert starts == (0, 64, 128, 192, 256)
    assert max(len(p) for p in parts) == 64
    assert np.array_equal(np.concatenate(parts), X.astype(np.float32))
    with pytest.raises(ValueError, match="chunk_rows is 0"):
        next(source.chunks(0))


def test_the_default_chunk_is_bounded_in_bytes(monkeypatch, X):
    monkeypatch.setattr(sources, "CHUNK_BYTES", 4 * 7 * 10)  # ten float32 rows of 7
    assert {len(c) for _, c in ArraySource(X).chunks()} == {10}


def test_the_fingerprint_depends_on_the_values_the_dtype_and_the_shape(tmp_path):
    x = np.random.default_rng(5).random((40, 6)).astype(np.float32)
    base = ArraySource(x).fingerprint()
    assert len(base) == 64
    assert ArraySource(mapped(tmp_path, x)).fingerprint() == base
    changed = x.copy()
    changed[39, 5] += 1
    assert ArraySource(changed).fingerprint() != base
    assert ArraySource(x.astype(np.float64)).fingerprint() != base
    assert ArraySource(x.reshape(60, 4)).fingerprint() != base
    assert ArraySource(x, divisor=2).fingerprint() != base
    assert ArraySource(x.reshape(40, 2, 3)).fingerprint() == base  # the same rows


def test_the_fingerprint_streams_in_chunks(monkeypatch):
    x = np.random.default_rng(6).integers(0, 256, size=(100, 5), dtype=np.uint8)
    whole = ArraySource(x).fingerprint()
    monkeypatch.setattr(sources, "CHUNK_BYTES", 7)
    assert ArraySource(x).fingerprint() == whole
    assert ArraySource(x.astype(np.uint16)).fingerprint() != whole


def test_a_sparse_fingerprint_ignores_how_the_matrix_was_built():
    dense = np.array([[0, 3.0, 0, 1.0], [0, 0, 0, 0], [2.0, 0, 5.0, 0]])
    canonical = SparseSource(sp.csr_matrix(dense)).fingerprint()
    rows, cols = np.nonzero(dense)
    order = np.random.default_rng(7).permutation(len(rows))
    coo = sp.coo_matrix((dense[rows, cols][order], (rows[order], cols[order])), shape=dense.shape)
    assert SparseSource(coo).fingerprint() == canonical
    assert SparseSource(sp.csc_array(dense)).fingerprint() == canonical
    # unsorted columns and a repeated entry (1 + 2 = 3) in row 0
    indices = np.array([3, 1, 1, 2, 0], dtype=np.int32)
    messy = sp.csr_matrix(
        (np.array([1.0, 1.0, 2.0, 5.0, 2.0]), indices, np.array([0, 3, 3, 5])), shape=(3, 4)
    )
    messy_source = SparseSource(messy)
    assert messy_source.fingerprint() == canonical
    assert np.array_equal(messy.indices, [3, 1, 1, 2, 0])  # the caller's matrix is untouched
    assert np.array_equal(messy_source.rows([2, 0]), dense[[2, 0]].astype(np.float32))
    assert SparseSource(sp.csr_matrix(dense * 2)).fingerprint() != canonical
    assert SparseSource(sp.csr_matrix(dense.astype(np.float32))).fingerprint() != canonical


def test_a_canonical_csr_matrix_is_kept_as_it_is():
    matrix = sp.csr_matrix(np.eye(3))
    assert SparseSource(matrix).matrix is matrix
    with pytest.raises(DataError, match="holds complex128 values"):
        SparseSource(sp.csr_matrix(np.eye(3, dtype=complex)))


def test_scan_matches_numpy_in_float64():
    x = (np.random.default_rng(8).normal(size=(1000, 5)) * [1, 10, 100, 1e3, 1e-3] + 50).astype(
        np.float32
    )
    stats = scan(ArraySource(x), chunk_rows=97)
    exact = x.astype(np.float64)
    assert stats.mean.dtype == np.float64
    np.testing.assert_allclose(stats.mean, exact.mean(0), rtol=1e-10)
    np.testing.assert_allclose(stats.std, exact.std(0), rtol=1e-10)
    assert (stats.min, stats.max) == (float(x.min()), float(x.max()))
    assert (stats.n_rows, stats.n_features, stats.all_binary) == (1000, 5, False)
    assert (stats.first_nonfinite_row, stats.n_nonfinite_rows) == (None, 0)
    check_finite(stats, "x.npy")  # nothing to refuse


def test_scan_sees_binary_data():
    x = np.random.default_rng(9).integers(0, 2, size=(50, 3)).astype(bool)
    assert scan(ArraySource(x)).all_binary
    assert not scan(ArraySource(x * 0.5)).all_binary


def test_scan_finds_a_nan_in_the_last_row_of_a_large_memory_map(tmp_path):
    x = np.random.default_rng(10).random((200_000, 4)).astype(np.float32)
    x[-1, 2] = np.nan
    x[1234, 0] = np.inf
    stats = scan(ArraySource(mapped(tmp_path, x)), chunk_rows=4096)
    assert (stats.first_nonfinite_row, stats.n_nonfinite_rows) == (1234, 2)
    finite = x[np.isfinite(x).all(1)].astype(np.float64)
    np.testing.assert_allclose(stats.mean, finite.mean(0), rtol=1e-10)
    with pytest.raises(DataError) as ours:
        check_finite(stats, "x.npy")
    with pytest.raises(DataError) as in_memory:
        dataset_module.check_finite(x, "x.npy")
    assert str(ours.value) == str(in_memory.value)
    assert "in 2 rows (the first at row index 1234); clean or drop them." in str(ours.value)


def test_scan_of_rows_that_are_all_nan():
    stats = scan(ArraySource(np.full((3, 2), np.nan)))
    assert stats.n_nonfinite_rows == 3 and np.isnan(stats.min) and np.isnan(stats.mean).all()


def test_open_npy_maps_the_file_and_finds_images(tmp_path):
    images = np.random.default_rng(11).integers(0, 256, size=(6, 5, 7), dtype=np.uint8)
    np.save(tmp_path / "im.npy", images)
    source, shape = open_npy(tmp_path / "im.npy")
    assert isinstance(source.array, np.memmap) and shape == (1, 5, 7)
    assert np.array_equal(source.rows([1]), images[[1]].reshape(1, -1).astype(np.float32) / 255)
    np.save(tmp_path / "chw.npy", images[:, None].repeat(3, axis=1))
    assert open_npy(tmp_path / "chw.npy")[1] == (3, 5, 7)
    np.save(tmp_path / "hw1.npy", images[..., None])
    assert open_npy(tmp_path / "hw1.npy")[1] == (1, 5, 7)
    np.save(tmp_path / "table.npy", images.reshape(6, 35))
    table, no_shape = open_npy(tmp_path / "table.npy")
    assert no_shape is None and table.rows([0]).max() > 1  # tabular uint8 is not rescaled


@pytest.mark.parametrize(
    "write, match",
    [
        (lambda f: np.save(f, np.zeros((2, 5, 4, 3), np.uint8)), "save them channels-first"),
        (lambda f: np.save(f, np.array([{}], dtype=object)), "holds Python objects"),
        (lambda f: f.write(b"\x93NUMPY\x01\x00garbage"), "is not a readable NumPy file"),
        (lambda f: np.save(f, np.zeros((2, 2, 2, 2, 2))), "has shape"),
        (lambda f: np.savez(f, x=np.zeros(3)), r"is a \.npz archive"),
    ],
)
def test_open_npy_refuses_what_it_cannot_map(tmp_path, write, match):
    path = tmp_path / "bad.npy"
    with path.open("wb") as f:
        write(f)
    with pytest.raises(DataError, match=match) as raised:
        open_npy(path)
    assert "bad.npy" in str(raised.value)


def save_image(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


@pytest.fixture
def gray_folder(tmp_path):
    rng = np.random.default_rng(12)
    folder = tmp_path / "gray"
    for label in ("cat", "dog"):
        for i in range(3):
            save_image(folder / label / f"{i}.png", rng.integers(0, 256, (5, 4), dtype=np.uint8))
    return folder


def test_an_image_folder_source_equals_load_image_folder(tmp_path, gray_folder):
    rng = np.random.default_rng(13)
    rgb = tmp_path / "rgb"
    for i in range(3):
        save_image(rgb / f"{i}.png", rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 256, (6, 5), dtype=np.uint8), mode="L").convert("P").save(
        rgb / "palette.png"
    )
    for folder, shape in ((gray_folder, (1, 5, 4)), (rgb, (3, 6, 5))):
        dataset = load_image_folder(folder)
        source, image_shape = image_folder_source(folder, tmp_path / "cache", progress=False)
        assert image_shape == dataset.image_shape == shape
        assert source.array.dtype == np.uint8 and isinstance(source.array, np.memmap)
        assert np.array_equal(source.rows(np.arange(source.n_rows)), dataset.train)
        labels = dataset.y_train
        assert source.labels is None if labels is None else np.array_equal(source.labels, labels)
    labelled, _ = image_folder_source(gray_folder, tmp_path / "cache", progress=False)
    assert np.array_equal(labelled.labels, [0, 0, 0, 1, 1, 1])


def test_the_image_cache_is_reused_and_renewed_when_the_folder_changes(
    tmp_path, gray_folder, monkeypatch
):
    cache = tmp_path / "new" / "cache"
    first, _ = image_folder_source(gray_folder, cache, progress=False)
    (cached,) = cache.iterdir()
    assert cached.name.startswith("images-") and cached.suffix == ".npy"

    def refuse(*args, **kwargs):
        raise AssertionError("an image was opened")

    with monkeypatch.context() as patch:
        patch.setattr(Image, "open", refuse)
        again, shape = image_folder_source(gray_folder, cache, progress=False)
    assert shape == (1, 5, 4) and np.array_equal(again.rows([0, 5]), first.rows([0, 5]))
    assert list(cache.iterdir()) == [cached]

    save_image(gray_folder / "dog" / "9.png", np.zeros((5, 4), np.uint8))
    grown, _ = image_folder_source(gray_folder, cache, progress=False)
    assert grown.n_rows == 7 and len(list(cache.iterdir())) == 2
    os.utime(gray_folder / "cat" / "0.png", ns=(0, 0))
    image_folder_source(gray_folder, cache, progress=False)
    assert len(list(cache.iterdir())) == 3
    assert all(p.suffix == ".npy" and not p.name.startswith(".") for p in cache.iterdir())


def test_a_damaged_cache_is_decoded_again(tmp_path, gray_folder):
    source, _ = image_folder_source(gray_folder, tmp_path, progress=False)
    expected = source.rows(np.arange(6))
    (cached,) = tmp_path.glob("images-*.npy")
    del source
    cached.write_bytes(b"not a numpy file")
    again, _ = image_folder_source(gray_folder, tmp_path, progress=True)
    assert np.array_equal(again.rows(np.arange(6)), expected)


def test_a_failed_decode_leaves_no_file_behind(tmp_path, gray_folder):
    path = gray_folder / "dog" / "2.png"
    path.write_bytes(path.read_bytes()[:60])  # the header survives, the pixels do not
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="2.png is not a readable image"):
        image_folder_source(gray_folder, cache, progress=False)
    assert list(cache.iterdir()) == []


def test_image_folder_errors_match_load_image_folder(tmp_path, gray_folder):
    save_image(gray_folder / "dog" / "big.png", np.zeros((6, 4), np.uint8))
    with pytest.raises(DataError) as ours:
        image_folder_source(gray_folder, tmp_path / "cache", progress=False)
    with pytest.raises(DataError) as theirs:
        load_image_folder(gray_folder)
    assert str(ours.value) == str(theirs.value) and "mixes image sizes" in str(ours.value)


def test_as_source_takes_anything_that_holds_rows(X):
    from_list = as_source([[1, 2], [3, 4]], labels=[0, 1])
    assert isinstance(from_list, ArraySource) and np.array_equal(from_list.labels, [0, 1])
    assert np.array_equal(from_list.rows([1]), [[3.0, 4.0]])
    from_array = as_source(X)
    assert isinstance(from_array, ArraySource) and np.shares_memory(from_array.array, X)
    assert isinstance(as_source(sp.coo_matrix(X)), SparseSource)
    assert as_source(from_array) is from_array
    assert isinstance(from_array, DataSource)
    with pytest.raises(DataError, match="carries its own labels"):
        as_source(from_array, labels=np.zeros(len(X)))
    with pytest.raises(DataError, match="holds <U1 values"):
        as_source([["a"]])
    with pytest.raises(DataError, match="labels"):
        as_source(X, labels=[0, 1])


def test_a_memory_map_is_read_without_read_ahead_for_rows_and_with_it_for_chunks(tmp_path):
    import mmap

    np.save(tmp_path / "x.npy", np.arange(4000, dtype=np.uint8).reshape(1000, 4))
    source = ArraySource(np.load(tmp_path / "x.npy", mmap_mode="r"))
    source.rows([5, 900, 17])
    assert source._advice == mmap.MADV_RANDOM  # shuffled rows: one page each, no read-ahead
    list(source.chunks(100))
    assert source._advice == mmap.MADV_SEQUENTIAL  # a scan: read ahead
    in_memory = ArraySource(np.arange(4000).reshape(1000, 4))
    in_memory.rows([5, 900])
    assert in_memory._advice is None and not in_memory.mapped
