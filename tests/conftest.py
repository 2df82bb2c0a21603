"""Shared fixtures: small data sets and a tiny untrained VAE module."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from vaekit.distributions import make_likelihood
from vaekit.model import VAEModule
from vaekit.nets import build_networks


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
    return VAEModule(encoder, decoder, lik, latent_dim).double().eval()
