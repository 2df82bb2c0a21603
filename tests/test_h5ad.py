"""AnnData .h5ad files: dense and sparse X, in memory and backed, an obs column as labels."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from vaekit.data import load_dataset
from vaekit.data.h5ad import BackedAnnDataSource
from vaekit.engine.sources import SparseSource
from vaekit.exceptions import ConfigError, DataError

anndata = pytest.importorskip("anndata")
pd = pytest.importorskip("pandas")


def _counts(n=60, d=8, seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    types = rng.choice(["B cell", "T cell", "monocyte"], n)
    X = rng.poisson(np.where(types[:, None] == "T cell", 6.0, 1.0), (n, d)).astype(np.float32)
    return X, types


def _write(path, X, types, sparse: bool) -> None:
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(types), "batch": np.arange(len(X)) % 2},
        index=[f"cell{i}" for i in range(len(X))],
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(X.shape[1])])
    anndata.AnnData(sp.csr_matrix(X) if sparse else X, obs=obs, var=var).write_h5ad(path)


@pytest.mark.parametrize("sparse", (False, True))
def test_rows_labels_and_gene_names_come_from_the_file(tmp_path, sparse):
    X, types = _counts()
    _write(tmp_path / "cells.h5ad", X, types, sparse)
    dataset = load_dataset(f"{tmp_path / 'cells.h5ad'}#cell_type")
    rows = dataset.train.rows(np.arange(len(X))) if sparse else dataset.train
    np.testing.assert_array_equal(rows, X)
    assert isinstance(dataset.train, SparseSource) == sparse
    assert dataset.label_names == ("B cell", "T cell", "monocyte")
    np.testing.assert_array_equal(np.asarray(dataset.label_names)[dataset.y_train], types)
    assert dataset.feature_names == tuple(f"gene{j}" for j in range(8))
    assert load_dataset(tmp_path / "cells.h5ad").y_train is None
    batch = load_dataset(f"{tmp_path / 'cells.h5ad'}#batch")
    np.testing.assert_array_equal(batch.y_train, np.arange(len(X)) % 2)


@pytest.mark.parametrize("sparse", (False, True))
def test_a_large_file_is_read_backed_a_batch_at_a_time(tmp_path, monkeypatch, sparse):
    X, types = _counts()
    _write(tmp_path / "cells.h5ad", X, types, sparse)
    monkeypatch.setenv("VAEKIT_MEMMAP_BYTES", "1")
    dataset = load_dataset(f"{tmp_path / 'cells.h5ad'}#cell_type")
    assert isinstance(dataset.train, BackedAnnDataSource)
    index = np.array([5, 0, 5, 59, 3])  # any order, with a repeat
    np.testing.assert_array_equal(dataset.train.rows(index), X[index])
    np.testing.assert_array_equal(np.concatenate([c for _, c in dataset.train.chunks(7)]), X)
    assert dataset.train.labels is not None and dataset.kind == "real"


def test_bad_obs_columns_are_refused_with_a_sentence(tmp_path):
    X, types = _counts()
    _write(tmp_path / "cells.h5ad", X, types, sparse=False)
    with pytest.raises(DataError, match="has no obs column 'tissue'; its obs columns: cell_type"):
        load_dataset(f"{tmp_path / 'cells.h5ad'}#tissue")
    with pytest.raises(ConfigError, match="names no obs column"):
        load_dataset(f"{tmp_path / 'cells.h5ad'}#")
    (tmp_path / "broken.h5ad").write_bytes(b"not an HDF5 file")
    with pytest.raises(DataError, match="is not a readable .h5ad file"):
        load_dataset(tmp_path / "broken.h5ad")


def test_a_conditional_count_run_trains_on_an_h5ad_file_from_the_shell(tmp_path):
    X, types = _counts(120)
    _write(tmp_path / "cells.h5ad", X, types, sparse=True)
    argv = [
        sys.executable,
        "-m",
        "vaekit",
        "train",
        f"{tmp_path / 'cells.h5ad'}#cell_type",
        "--likelihood",
        "negative_binomial",
        "--library-size",
        "--condition",
        "label",
        "--max-epochs",
        "2",
        "--no-pictures",
        "--out",
        str(tmp_path / "run"),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    sample = [sys.executable, "-m", "vaekit", "sample", str(tmp_path / "run"), "-n", "6"]
    sample += ["--condition", "T cell", "--out", str(tmp_path / "t.csv")]
    done = subprocess.run(sample, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    header, *rows = (tmp_path / "t.csv").read_text().splitlines()
    assert header.split(",")[:2] == ["gene0", "gene1"] and len(rows) == 6
