"""Data too big to load, from the shell: a large .npy stays a memory map and a large image folder
becomes a uint8 cache; the run is the one an in-memory file gives, bit for bit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from PIL import Image
from safetensors.numpy import load_file

from vaekit.data import load_dataset
from vaekit.engine.sources import DataSource
from vaekit.exceptions import ConfigError, DataError

VAEKIT = Path(sys.executable).parent / "vaekit"
TRAIN = ["--max-epochs", "3", "--n-components", "2", "--quiet", "--no-pictures"]


def vaekit(*args, cwd: Path, memmap_bytes: int | None = None):
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "xdg")}
    env.pop("VAEKIT_MEMMAP_BYTES", None)
    if memmap_bytes is not None:
        env["VAEKIT_MEMMAP_BYTES"] = str(memmap_bytes)
    done = subprocess.run(
        [str(VAEKIT), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env
    )
    assert done.returncode == 0, done.stderr
    return done


def weights(run: Path) -> dict[str, np.ndarray]:
    return load_file(run / "model.safetensors")


@pytest.fixture(scope="module")
def images(digits):
    return (digits[0][:400] * 15).astype(np.uint8).reshape(-1, 8, 8)  # 0..240 as 8-bit pixels


def test_a_large_npy_is_memory_mapped_and_trains_the_same_run(images, tmp_path, monkeypatch):
    np.save(tmp_path / "images.npy", images)
    monkeypatch.setenv("VAEKIT_MEMMAP_BYTES", "1000")
    mapped = load_dataset(tmp_path / "images.npy")
    assert isinstance(mapped.train, DataSource) and mapped.image_shape == (1, 8, 8)
    assert mapped.train.mapped and isinstance(mapped.train.array, np.memmap)
    vaekit("train", "images.npy", *TRAIN, "--out", "in-memory", cwd=tmp_path)
    vaekit("train", "images.npy", *TRAIN, "--out", "mapped", cwd=tmp_path, memmap_bytes=1000)
    a, b = weights(tmp_path / "in-memory"), weights(tmp_path / "mapped")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    metrics = [
        json.loads((tmp_path / run / "run.json").read_text())["metrics"]
        for run in ("in-memory", "mapped")
    ]
    assert metrics[0] == metrics[1]
    done = vaekit("evaluate", "mapped", "--samples", 10, cwd=tmp_path, memmap_bytes=1000)
    assert "log p(x)" in done.stdout


def test_a_large_image_folder_is_decoded_once_into_the_cache(images, tmp_path):
    folder = tmp_path / "pictures"
    for label in (0, 1):
        (folder / f"class{label}").mkdir(parents=True)
        for i, pixels in enumerate(images[label * 40 : (label + 1) * 40]):
            Image.fromarray(pixels).save(folder / f"class{label}" / f"{i:03d}.png")
    vaekit("train", "pictures", *TRAIN, "--out", "in-memory", cwd=tmp_path)
    vaekit("train", "pictures", *TRAIN, "--out", "cached", cwd=tmp_path, memmap_bytes=1000)
    caches = list((tmp_path / "xdg" / "vaekit" / "images").glob("images-*.npy"))
    assert len(caches) == 1 and np.load(caches[0]).shape == (80, 1, 8, 8)
    a, b = weights(tmp_path / "in-memory"), weights(tmp_path / "cached")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_a_sparse_npz_stays_sparse_and_trains_the_same_run_as_its_dense_rows(digits, tmp_path):
    X = digits[0][:300]  # counts 0..16, a third of them zero
    sp.save_npz(tmp_path / "counts.npz", sp.csr_matrix(X))
    np.save(tmp_path / "dense.npy", X)
    loaded = load_dataset(tmp_path / "counts.npz")
    assert isinstance(loaded.train, DataSource) and loaded.kind == "real"
    np.testing.assert_array_equal(loaded.train.rows(np.arange(300)), X)
    vaekit("train", "counts.npz", *TRAIN, "--out", "sparse", cwd=tmp_path)
    vaekit("train", "dense.npy", *TRAIN, "--out", "dense", cwd=tmp_path)
    a, b = weights(tmp_path / "sparse"), weights(tmp_path / "dense")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    sp.save_npz(tmp_path / "bad.npz", sp.eye(300, 64, format="dia"))
    with pytest.raises(DataError, match="'dia' format"):
        load_dataset(tmp_path / "bad.npz")


def test_a_malformed_memmap_threshold_is_a_one_sentence_error(images, tmp_path, monkeypatch):
    np.save(tmp_path / "images.npy", images)
    monkeypatch.setenv("VAEKIT_MEMMAP_BYTES", "1 GB")
    with pytest.raises(ConfigError, match="VAEKIT_MEMMAP_BYTES must be a whole number of bytes"):
        load_dataset(tmp_path / "images.npy")
