"""Shared fixtures: small data sets and a tiny untrained VAE module."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits

import vaekit
from vaekit.model.likelihoods import make_likelihood
from vaekit.model.modules import VAEModule
from vaekit.model.nets import build_networks
from vaekit.model.priors import StandardNormal


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return data.data.astype(np.float32), data.target


@pytest.fixture
def small_vae_module():
    """A factory of tiny, untrained float64 VAE modules."""
    return _small_vae_module


def _small_vae_module(n_features=6, latent_dim=2, likelihood="gaussian", seed=0, **options):
    torch.manual_seed(seed)
    lik = make_likelihood(likelihood, n_features, **options)
    encoder, decoder = build_networks(
        "mlp",
        n_features=n_features,
        latent_dim=latent_dim,
        encoder_outputs=2 * latent_dim,
        decoder_outputs=lik.n_heads * n_features,
        hidden_sizes=(16,),
        activation="tanh",
    )
    prior = StandardNormal(latent_dim)
    return VAEModule(encoder, decoder, lik, prior, latent_dim).double().eval()


@pytest.fixture
def linear_gaussian_vae():
    """A factory of fitted linear VAEs whose decoder is x = W z + b + sigma * noise, set by hand."""
    return _linear_gaussian_vae


def _linear_gaussian_vae(W, b, sigma, exact_posterior=True):
    """With ``exact_posterior`` the encoder is p(z|x) itself, else a shrunken version."""
    D, L = W.shape
    vae = vaekit.VAE(
        L, architecture="linear", sigma="fixed", sigma_value=sigma, max_epochs=1, verbose=False
    )
    vae.fit(np.random.default_rng(0).normal(size=(20, D)))
    precision = np.eye(L) + W.T @ W / sigma**2
    cov = np.linalg.inv(precision)
    A = cov @ W.T / sigma**2
    if not exact_posterior:
        A = A * 0.8
    with torch.no_grad():
        enc, dec = vae.module_.encoder, vae.module_.decoder
        enc.weight.copy_(torch.from_numpy(np.vstack([A, np.zeros((L, D))])))
        enc.bias.copy_(torch.from_numpy(np.concatenate([-A @ b, np.log(np.diag(cov))])))
        dec.weight.copy_(torch.from_numpy(W))
        dec.bias.copy_(torch.from_numpy(b))
    return vae


@pytest.fixture
def linear_model():
    """(W, b, sigma, X, exact log p(X)) of a linear Gaussian model with a diagonal posterior."""
    rng = np.random.default_rng(3)
    D, L, sigma = 5, 2, 0.5
    Q, _ = np.linalg.qr(rng.normal(size=(D, L)))
    W = Q * np.array([2.0, 1.0])  # orthogonal columns: the exact posterior is diagonal
    b = rng.normal(size=D)
    X = rng.multivariate_normal(b, W @ W.T + sigma**2 * np.eye(D), size=300)
    exact = multivariate_normal(b, W @ W.T + sigma**2 * np.eye(D)).logpdf(X)
    return W, b, sigma, X, exact


def assert_resume_is_bit_identical(params: dict, X, y, checkpoint_dir) -> None:
    """A VAE fit interrupted after its third epoch and fitted again from ``checkpoint_dir``
    ends with the weights, bit for bit, of a fit never interrupted."""
    unbroken = vaekit.VAE(**params).fit(X, y)

    def stop_after_three(record):
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vaekit.VAE(**params).fit(X, y, checkpoint_dir=checkpoint_dir, callback=stop_after_three)
    resumed = vaekit.VAE(**params).fit(X, y, checkpoint_dir=checkpoint_dir)
    for key, value in unbroken.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key]), key
