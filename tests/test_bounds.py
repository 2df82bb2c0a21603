"""The bounds: ELBO, IWAE, and the importance-sampled log-likelihood against exact values."""

import numpy as np
import torch

import vaekit
from vaekit.bounds import elbo, log_likelihood
from vaekit.model.modules import log_mean_exp


def _iwae(module, x, K, generator):
    """Per-example IWAE bounds with independent draws for each example."""
    eps = torch.randn((K, x.shape[0], module.latent_dim), generator=generator, dtype=x.dtype)
    with torch.no_grad():
        return log_mean_exp(module.log_weights(x, module.encode(x), eps), dim=0)


def test_iwae_bound_grows_with_k_and_stays_above_the_elbo(small_vae_module):
    module = small_vae_module()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3000, 6, generator=generator, dtype=torch.float64)
    bounds = {K: _iwae(module, x, K, generator) for K in (1, 5, 50)}
    analytic_elbo = elbo(module, x, 200, seed=0)
    for small, large in ((1, 5), (5, 50)):
        gain = bounds[large] - bounds[small]
        assert gain.mean() > 3 * gain.std() / np.sqrt(len(gain))
    gain = bounds[5] - analytic_elbo
    assert gain.mean() > 3 * gain.std() / np.sqrt(len(gain))


def test_iwae_with_one_sample_is_an_unbiased_elbo(small_vae_module):
    module = small_vae_module()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4000, 6, generator=generator, dtype=torch.float64)
    diff = _iwae(module, x, 1, generator) - elbo(module, x, 100, seed=1)
    assert abs(diff.mean()) < 3 * diff.std() / np.sqrt(len(diff))


def test_training_losses_agree_at_k_equal_one(small_vae_module):
    module = small_vae_module().train()
    x = torch.randn(500, 6, dtype=torch.float64)
    eps = torch.randn((1, 500, 2), generator=torch.Generator().manual_seed(3), dtype=x.dtype)
    module.objective = "iwae"
    iwae = module(x, torch.Generator().manual_seed(3))["loss"]
    q = module.encode(x)
    z = q.rsample(eps)
    log_px = module.likelihood.log_prob(x, module.decode(z))
    mc_kl = q.log_prob(z) - vaekit.model.distributions.standard_normal_log_prob(z)
    torch.testing.assert_close(iwae, -(log_px - mc_kl).mean())
    module.objective = "elbo"
    elbo_loss = module(x, torch.Generator().manual_seed(3))["loss"]
    torch.testing.assert_close(elbo_loss, -(log_px.mean() - q.kl_per_unit().sum(-1).mean()))


def test_score_samples_is_exact_when_the_encoder_is_the_true_posterior(
    linear_model, linear_gaussian_vae
):
    W, b, sigma, X, exact = linear_model
    vae = linear_gaussian_vae(W, b, sigma)
    # With q(z|x) = p(z|x) every importance weight equals p(x): exact even with K = 1.
    np.testing.assert_allclose(vae.score_samples(X, n_samples=1), exact, atol=1e-4)
    np.testing.assert_allclose(vae.score_samples(X, n_samples=100), exact, atol=1e-4)


def test_score_samples_matches_exact_marginal_within_its_error(linear_model, linear_gaussian_vae):
    W, b, sigma, X, exact = linear_model
    vae = linear_gaussian_vae(W, b, sigma, exact_posterior=False)
    estimates = {K: vae.score_samples(X, n_samples=K) for K in (1, 10, 2000)}
    gap = exact - estimates[2000]
    assert abs(gap.mean()) < max(3 * gap.std() / np.sqrt(len(gap)), 1e-3)
    assert estimates[1].mean() < estimates[10].mean() < estimates[2000].mean() + 1e-9
    assert vae.elbo(X, n_samples=200).mean() < estimates[10].mean()


def test_a_rows_estimate_does_not_depend_on_its_batch(small_vae_module):
    module = small_vae_module()
    x = torch.randn(50, 6, dtype=torch.float64)
    whole = log_likelihood(module, x, 300, seed=5)
    parts = log_likelihood(module, x, 300, seed=5, batch_size=7)
    torch.testing.assert_close(whole, parts)
    alone = torch.cat([log_likelihood(module, row[None], 300, seed=5) for row in x[:5]])
    torch.testing.assert_close(whole[:5], alone)
    assert not torch.allclose(whole, log_likelihood(module, x, 300, seed=6))


def test_the_float32_path_agrees_with_the_float64_reference(digits):
    X = digits[0] / 16
    vae = vaekit.VAE(8, hidden_sizes=(64,), max_epochs=20, random_state=0, verbose=False)
    vae.set_params(likelihood="continuous_bernoulli").fit(X[:1000])
    reference = vae.score_samples(X[1000:], 500)
    fast = vae.score_samples(X[1000:], 500, precision="fp32")
    assert fast.dtype == np.float64
    assert abs(fast.mean() - reference.mean()) < 0.01
    assert np.abs(fast - reference).max() < 0.05
    # the same draws, rounded: far closer than another seed's estimate
    vae.set_params(random_state=1)
    assert np.abs(vae.score_samples(X[1000:], 500) - reference).max() > 0.05
    vae.set_params(random_state=0)
    alone = np.concatenate([vae.score_samples(X[i : i + 1], 500, precision="fp32")
                            for i in (1000, 1500)])  # fmt: skip
    np.testing.assert_allclose(alone, fast[[0, 500]], atol=1e-4)
