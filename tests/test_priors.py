"""The prior as a part: the registry, closed-form and Monte-Carlo KL, and a learned prior plugged
in with one class and one registry line, through the whole estimator."""

import numpy as np
import pytest
import torch
from torch import nn

import vaekit
from vaekit.exceptions import ConfigError
from vaekit.model.distributions import DiagonalGaussian
from vaekit.model.priors import PRIORS, Prior, StandardNormal, make_prior


class LearnedDiagonalGaussian(Prior):
    """N(m, diag(exp(v))) with learned m and v: its KL to q has a closed form, which this class
    does not give, so the modules estimate it by Monte Carlo."""

    name = "learned_diagonal_gaussian"

    def __init__(self, latent_dim):
        super().__init__(latent_dim)
        self.mean = nn.Parameter(torch.linspace(-0.5, 0.5, latent_dim))
        self.log_var = nn.Parameter(torch.linspace(-0.3, 0.4, latent_dim))

    def log_prob(self, z):
        return DiagonalGaussian(self.mean, self.log_var).log_prob(z)

    def sample(self, n, generator=None):
        eps = torch.randn((n, self.latent_dim), generator=generator, dtype=self.mean.dtype)
        return self.mean + torch.exp(0.5 * self.log_var) * eps


def closed_form_kl(q: DiagonalGaussian, mean: torch.Tensor, log_var: torch.Tensor):
    """KL(N(mq, vq) || N(mp, vp)) summed over units, written out independently."""
    vq, vp = torch.exp(q.log_var), torch.exp(log_var)
    return 0.5 * (log_var - q.log_var + (vq + (q.mean - mean) ** 2) / vp - 1.0).sum(-1)


def test_the_registry_builds_priors_by_name():
    assert isinstance(make_prior("standard_normal", 3), StandardNormal)
    with pytest.raises(ConfigError, match="Unknown prior 'nope'"):
        make_prior("nope", 3)


def test_standard_normal_kl_is_closed_form_and_matches_its_monte_carlo_estimate():
    torch.manual_seed(0)
    q = DiagonalGaussian(torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3).double())
    prior = StandardNormal(3)
    exact = prior.kl(q, z=None)
    zeros = torch.zeros(3, dtype=torch.float64)
    torch.testing.assert_close(exact, closed_form_kl(q, zeros, zeros))
    z = q.rsample(torch.randn(200_000, 4, 3, dtype=torch.float64))
    mc = _MonteCarlo(prior).kl(q, z)
    assert torch.allclose(mc, exact, atol=0.02)


class _MonteCarlo(Prior):
    """The standard normal without its closed form: forces the Monte-Carlo path."""

    def __init__(self, prior):
        super().__init__(prior.latent_dim)
        self.prior = prior

    def log_prob(self, z):
        return self.prior.log_prob(z)


def test_the_monte_carlo_kl_of_a_learned_prior_is_unbiased():
    torch.manual_seed(1)
    prior = LearnedDiagonalGaussian(3).double()
    q = DiagonalGaussian(torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3).double())
    exact = closed_form_kl(q, prior.mean.detach(), prior.log_var.detach())
    # 400 independent estimates from 50 draws each: their mean is within its standard error.
    estimates = torch.stack(
        [prior.kl(q, q.rsample(torch.randn(50, 5, 3, dtype=torch.float64))) for _ in range(400)]
    ).detach()
    error = (estimates.mean(0) - exact).abs()
    sem = estimates.std(0) / np.sqrt(len(estimates))
    assert (error < 4 * sem).all(), (error, sem)


def test_the_training_kl_comes_from_the_same_draws_as_the_reconstruction(small_vae_module):
    module = small_vae_module().train()
    module.prior = LearnedDiagonalGaussian(2).double()
    x = torch.randn(40, 6, dtype=torch.float64)
    terms = module(x, torch.Generator().manual_seed(4))
    eps = torch.randn((1, 40, 2), generator=torch.Generator().manual_seed(4), dtype=x.dtype)
    q = module.encode(x)
    z = q.rsample(eps)
    expected = (q.log_prob(z) - module.prior.log_prob(z)).mean()
    torch.testing.assert_close(terms["kl"], expected)
    terms["loss"].backward()
    assert module.prior.mean.grad is not None and module.prior.mean.grad.abs().sum() > 0


def test_free_bits_need_a_closed_form_kl(small_vae_module):
    module = small_vae_module()
    with pytest.raises(ConfigError, match="free_bits"):
        type(module)(
            module.encoder,
            module.decoder,
            module.likelihood,
            LearnedDiagonalGaussian(2),
            2,
            free_bits=1.0,
        )


def test_a_new_prior_is_one_class_and_one_registry_line(monkeypatch, digits, tmp_path):
    monkeypatch.setitem(PRIORS, LearnedDiagonalGaussian.name, LearnedDiagonalGaussian)
    X = digits[0][:300] / 16
    vae = vaekit.VAE(
        2, prior="learned_diagonal_gaussian", max_epochs=5, random_state=0, verbose=False
    ).fit(X)
    learned = vae.module_.prior
    assert not torch.allclose(learned.mean, torch.linspace(-0.5, 0.5, 2))  # it was trained
    scores = vae.score_samples(X[:20], n_samples=50)
    assert np.isfinite(scores).all()
    assert vae.sample(5).shape == (5, 64)
    assert vae.elbo(X[:20], n_samples=20).mean() < scores.mean()
    loaded = vaekit.load(vae.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.score_samples(X[:20], n_samples=50), scores)
    with pytest.raises(ConfigError, match="closed-form"):
        vae.kl_per_unit(X[:5])
