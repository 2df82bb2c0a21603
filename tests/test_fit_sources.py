"""The estimators on data sources: the same seed gives the same model whatever holds the rows."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import vaekit
from vaekit.engine.sources import ArraySource
from vaekit.exceptions import DataError

PARAMS = dict(n_components=2, max_epochs=3, batch_size=32, random_state=0, verbose=False)


def _timeless(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def _weights(vae):
    return {k: v.clone() for k, v in vae.module_.state_dict().items()}


@pytest.mark.parametrize("model", [vaekit.VAE, vaekit.Autoencoder])
def test_an_array_a_memmap_and_a_sparse_matrix_train_bit_identical_models(model, digits, tmp_path):
    X = digits[0][:300]  # float32 counts 0..16, a quarter of them zero
    path = tmp_path / "X.npy"
    np.save(path, X)
    fits = {
        "array": model(**PARAMS).fit(X),
        "memmap": model(**PARAMS).fit(np.load(path, mmap_mode="r")),
        "csr": model(**PARAMS).fit(sp.csr_matrix(X)),
        "source": model(**PARAMS).fit(ArraySource(X)),
    }
    reference = _weights(fits["array"])
    for name, fitted in fits.items():
        weights = _weights(fitted)
        assert all(torch.equal(reference[k], weights[k]) for k in reference), name
        assert _timeless(fitted.history_) == _timeless(fits["array"].history_), name
    np.testing.assert_array_equal(
        fits["csr"].transform(sp.csr_matrix(X[:10])), fits["array"].transform(X[:10])
    )


def test_a_uint8_array_is_trained_on_without_a_float_copy(digits, monkeypatch):
    X = digits[0][:200].astype(np.uint8)
    seen = []
    original = ArraySource.__init__

    def spy(self, array, *args, **kwargs):
        original(self, array, *args, **kwargs)
        seen.append(self.array)

    monkeypatch.setattr(ArraySource, "__init__", spy)
    vae = vaekit.VAE(**PARAMS).fit(X)
    assert seen and seen[0].dtype == np.uint8 and np.shares_memory(seen[0], X)
    as_float = vaekit.VAE(**PARAMS).fit(X.astype(np.float32))
    np.testing.assert_array_equal(vae.transform(X), as_float.transform(X))


def test_a_bad_value_deep_in_a_memmap_is_refused_with_its_row(tmp_path):
    X = np.random.default_rng(0).random((50_000, 8)).astype(np.float32)
    X[49_321, 3] = np.nan
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(DataError, match="the first at row index 49321"):
        vaekit.VAE(**PARAMS).fit(np.load(tmp_path / "X.npy", mmap_mode="r"))


def test_the_likelihood_range_check_reads_every_row(tmp_path):
    X = (np.random.default_rng(0).random((20_000, 4)) > 0.5).astype(np.float32)
    X[-1, 0] = 0.5
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(DataError, match="bernoulli likelihood needs binary data"):
        vaekit.VAE(likelihood="bernoulli", **PARAMS).fit(np.load(tmp_path / "X.npy", mmap_mode="r"))
