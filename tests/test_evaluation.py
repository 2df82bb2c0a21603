"""vaekit.evaluate against closed forms, and the mixture sampler over the aggregate posterior."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import vaekit

FAST = dict(max_epochs=3, verbose=False, random_state=0)


def test_evaluate_matches_closed_forms_of_a_linear_gaussian_model(
    linear_model, linear_gaussian_vae
):
    W, b, sigma, X, exact = linear_model
    vae = linear_gaussian_vae(W, b, sigma)
    result = vaekit.evaluate(vae, X, n_samples=50)
    # The encoder is the exact posterior, so the importance weights are all p(x).
    assert result["log_likelihood"] == pytest.approx(exact.mean(), abs=1e-6)
    assert result["log_likelihood_sem"] == pytest.approx(exact.std(ddof=1) / np.sqrt(len(X)))
    assert result["bits_per_dim"] == pytest.approx(-exact.mean() / (X.shape[1] * np.log(2)))
    # ...and the ELBO equals log p(x) in expectation (KL(q || p(z|x)) = 0).
    assert abs(result["elbo"] - exact.mean()) < 3 * result["elbo_sem"] + 0.05
    # KL per unit and active units from the posterior written down independently.
    L = W.shape[1]
    cov = np.linalg.inv(np.eye(L) + W.T @ W / sigma**2)
    means = (X - b) @ W @ cov / sigma**2
    variances = np.diag(cov)
    kl = 0.5 * (means**2 + variances - 1 - np.log(variances)).mean(0)
    np.testing.assert_allclose(result["kl_per_unit"], kl, rtol=1e-6)
    assert result["kl"] == pytest.approx(kl.sum(), rel=1e-6)
    np.testing.assert_allclose(result["posterior_mean_variance"], means.var(0), rtol=1e-6)
    assert result["active_units"] == int((means.var(0) > 0.01).sum()) == 2
    recon = b + means @ W.T
    assert result["squared_error"] == pytest.approx(((X - recon) ** 2).sum(1).mean(), rel=1e-6)
    nll = -multivariate_normal(np.zeros(X.shape[1]), sigma**2 * np.eye(X.shape[1])).logpdf(
        X - recon
    )
    assert result["reconstruction_nll_at_code"] == pytest.approx(nll.mean(), rel=1e-6)


def test_an_unused_latent_unit_is_not_active(linear_model, linear_gaussian_vae):
    W, b, sigma, X, _ = linear_model
    padded = np.hstack([W, np.zeros((W.shape[0], 1))])  # a third unit the decoder ignores
    result = vaekit.evaluate(linear_gaussian_vae(padded, b, sigma), X, n_samples=10)
    assert result["active_units"] == 2 and result["kl_per_unit"][2] == pytest.approx(0, abs=1e-9)


def test_evaluate_an_autoencoder_reports_reconstruction_only(digits):
    ae = vaekit.Autoencoder(3, **FAST).fit(digits[0][:200])
    result = vaekit.evaluate(ae, digits[0][200:300])
    assert set(result) == {"n_examples", "squared_error", "reconstruction_nll_at_code"}
    recon = ae.reconstruct(digits[0][200:300])
    assert result["squared_error"] == pytest.approx(
        ((recon - digits[0][200:300]) ** 2).sum(1).mean()
    )


def test_log_likelihood_rises_with_k_and_stays_above_the_elbo(digits):
    X = digits[0]
    vae = vaekit.VAE(2, max_epochs=30, verbose=False, random_state=0).fit(X[:1000])
    held_out = X[1000:1300]
    ll = {K: vae.score_samples(held_out, K) for K in (1, 10, 200)}
    for small, large in ((1, 10), (10, 200)):
        gain = ll[large] - ll[small]
        assert gain.mean() > 3 * gain.std() / np.sqrt(len(gain))
    assert ll[200].mean() > vaekit.evaluate(vae, held_out, n_samples=10)["elbo"]


@pytest.fixture(scope="module")
def digits_vae(digits):
    return vaekit.VAE(2, max_epochs=60, learning_rate=3e-3, verbose=False, random_state=0).fit(
        digits[0][:1200]
    )


def test_the_mixture_models_the_aggregate_posterior_better_than_the_prior(digits, digits_vae):
    means, _ = digits_vae.posterior(digits[0][1200:])
    prior = multivariate_normal(np.zeros(2), np.eye(2)).logpdf(means).mean()
    assert digits_vae.gmm_.score(means) > prior + 0.1
    assert digits_vae.gmm_.n_components == 10


def test_gmm_sampler_draws_from_the_mixture(digits_vae):
    gmm = digits_vae.gmm_
    z = digits_vae.sample_latent(20000, sampler="gmm", random_state=3)
    mixture_mean = gmm.weights_ @ gmm.means_
    sem = z.std(0) / np.sqrt(len(z))
    assert np.all(np.abs(z.mean(0) - mixture_mean) < 4 * sem)
    prior = digits_vae.sample_latent(20000, random_state=3)
    assert np.all(np.abs(prior.mean(0)) < 4 / np.sqrt(20000))
    rows = digits_vae.sample(5, sampler="gmm", random_state=3)
    assert rows.shape == (5, 64) and not np.allclose(rows, digits_vae.sample(5, random_state=3))
    with pytest.raises(vaekit.ConfigError, match="sampler"):
        digits_vae.sample(5, sampler="flow")


def test_the_mixture_is_saved_without_pickle_and_comes_back(digits_vae, tmp_path):
    loaded = vaekit.load(digits_vae.save(tmp_path / "m"))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(loaded.gmm_, name), getattr(digits_vae.gmm_, name))
    np.testing.assert_array_equal(
        loaded.sample(8, sampler="gmm", random_state=1),
        digits_vae.sample(8, sampler="gmm", random_state=1),
    )
    z = digits_vae.sample_latent(50, random_state=2)
    np.testing.assert_allclose(loaded.gmm_.score_samples(z), digits_vae.gmm_.score_samples(z))
