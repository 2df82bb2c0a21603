"""The mixture priors: a learned mixture of Gaussians ('mog') and the VampPrior ('vamp'),
against scipy and their defining identities, and through the whole estimator."""

import numpy as np
import pytest
import torch
from conftest import assert_resume_is_bit_identical
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.utils.estimator_checks import check_estimator

import vaekit
from vaekit.exceptions import ConfigError
from vaekit.model.distributions import DiagonalGaussian
from vaekit.model.priors import MixtureOfGaussians, VampPrior, make_prior

QUICK = dict(likelihood="bernoulli", binarize="dynamic", verbose=False, random_state=0)


def mog(latent_dim=3, n_mixture=4, seed=0) -> MixtureOfGaussians:
    torch.manual_seed(seed)
    prior = MixtureOfGaussians(latent_dim, n_mixture).double()
    with torch.no_grad():
        prior.log_vars.copy_(torch.randn(n_mixture, latent_dim) * 0.5)
        prior.logits.copy_(torch.randn(n_mixture))
    return prior


def scipy_mixture_log_prob(z: np.ndarray, prior: MixtureOfGaussians) -> np.ndarray:
    means, variances = prior.means.detach().numpy(), np.exp(prior.log_vars.detach().numpy())
    log_w = torch.log_softmax(prior.logits.detach(), 0).numpy()
    per_component = np.stack(
        [
            multivariate_normal(means[m], np.diag(variances[m])).logpdf(z) + log_w[m]
            for m in range(len(means))
        ],
        axis=-1,
    )
    return logsumexp(per_component, axis=-1)


def test_the_mixture_log_density_is_scipys():
    prior = mog()
    z = torch.randn(7, 5, 3, dtype=torch.float64) * 2  # (K, N, L), far tails included
    expected = scipy_mixture_log_prob(z.reshape(-1, 3).numpy(), prior).reshape(7, 5)
    np.testing.assert_allclose(prior.log_prob(z).detach().numpy(), expected, rtol=1e-10)


def test_a_narrow_component_keeps_its_precision_in_float32():
    prior = mog(latent_dim=2, n_mixture=2, seed=4)
    with torch.no_grad():
        prior.log_vars.fill_(-20.0)  # standard deviations of 4.5e-5: a near-deterministic code
    z = prior.means.detach()[:1] + 1e-5  # a point close to the first mean
    expected = scipy_mixture_log_prob(z.numpy(), prior)
    got = prior.float().log_prob(z.float())
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-5)


def test_the_mog_kl_is_the_mean_of_log_q_minus_the_exact_log_prior_over_the_draws():
    prior = mog(seed=1)
    torch.manual_seed(2)
    q = DiagonalGaussian(torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3).double() * 0.3)
    z = q.rsample(torch.randn(50, 4, 3, dtype=torch.float64))
    log_p = scipy_mixture_log_prob(z.reshape(-1, 3).numpy(), prior).reshape(50, 4)
    expected = (q.log_prob(z).numpy() - log_p).mean(0)
    np.testing.assert_allclose(prior.kl(q, z).detach().numpy(), expected, rtol=1e-10)
    assert not prior.closed_form_kl and prior.kl_per_unit(q) is None


def test_mog_samples_follow_the_mixture():
    prior = mog(latent_dim=2, n_mixture=3, seed=3)
    draws = prior.sample(200_000, torch.Generator().manual_seed(0)).detach().numpy()
    weights = torch.softmax(prior.logits.detach(), 0).numpy()
    means = prior.means.detach().numpy()
    np.testing.assert_allclose(draws.mean(0), weights @ means, atol=0.02)


def test_a_vamp_prior_with_one_pseudo_input_at_x_is_q_of_x():
    torch.manual_seed(0)
    vae = vaekit.VAE(3, hidden_sizes=(16,), prior="vamp", prior_components=1, **QUICK)
    module = vae._build_module(6).double()
    x = torch.rand(1, 6, dtype=torch.float64)
    with torch.no_grad():
        module.prior.pseudo_inputs.copy_(x)
    q = module.encode(x)
    z = torch.randn(20, 1, 3, dtype=torch.float64)
    torch.testing.assert_close(module.prior.log_prob(z), q.log_prob(z), rtol=1e-12, atol=1e-12)
    assert module.prior.kl(q, q.rsample(z)).abs().max() < 1e-12  # q is its own prior: no KL


def test_the_vamp_prior_follows_the_encoder_it_belongs_to():
    vae = vaekit.VAE(2, hidden_sizes=(8,), prior="vamp", prior_components=4, **QUICK)
    module = vae._build_module(5).double()
    with torch.no_grad():
        module.prior.pseudo_inputs.copy_(torch.rand(4, 5, dtype=torch.float64))
    z = torch.randn(3, 2, dtype=torch.float64)
    before = module.prior.log_prob(z)
    with torch.no_grad():
        next(module.encoder.parameters()).add_(0.5)
    assert not torch.allclose(before, module.prior.log_prob(z))
    assert not any(k.startswith("prior.encoder") for k in module.state_dict())  # not a copy


@pytest.fixture(scope="module")
def fitted(digits):
    X = digits[0][:600] / 16
    models = {
        prior: vaekit.VAE(
            4, hidden_sizes=(64,), prior=prior, prior_components=20, max_epochs=15, **QUICK
        ).fit(X)
        for prior in ("mog", "vamp")
    }
    return X, models


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_importance_sampling_is_above_the_elbo_and_rises_with_k(fitted, prior):
    X, models = fitted
    vae, rows = models[prior], X[:100]
    elbo = vae.elbo(rows, n_samples=20).mean()
    by_k = [vae.score_samples(rows, n_samples=k).mean() for k in (1, 10, 100)]
    assert by_k[0] == pytest.approx(vae.elbo(rows, n_samples=1).mean(), abs=2.0)
    assert elbo < by_k[1] < by_k[2], (elbo, by_k)


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_a_mixture_prior_model_samples_saves_and_evaluates(fitted, prior, tmp_path):
    X, models = fitted
    vae = models[prior]
    assert vae.sample(5, random_state=1).shape == (5, 64)
    loaded = vaekit.load(vae.save(tmp_path / prior))
    np.testing.assert_array_equal(loaded.score_samples(X[:5], 10), vae.score_samples(X[:5], 10))
    result = vaekit.evaluate(vae, X[:50], n_samples=50)
    assert "kl_per_unit" not in result  # a mixture's KL does not split over units
    assert result["kl"] > 0 and result["reconstruction_nll"] == pytest.approx(
        -result["elbo"] - result["kl"]
    )
    assert result["log_likelihood"] > result["elbo"]


def test_pseudo_inputs_start_as_the_papers_and_are_learned(fitted):
    X, models = fitted
    pseudo = models["vamp"].pseudo_inputs_
    assert pseudo.shape == (20, 64)
    assert models["mog"].pseudo_inputs_ is None
    fresh = vaekit.VAE(4, hidden_sizes=(64,), prior="vamp", prior_components=20, max_epochs=1,
                       learning_rate=1e-9, **QUICK).fit(X)  # fmt: skip
    start = fresh.pseudo_inputs_
    assert abs(start.mean() - 0.05) < 0.002 and abs(start.std() - 0.01) < 0.002
    assert not np.allclose(pseudo, start, atol=1e-3)  # training moved them


def test_the_vamp_prior_keeps_its_latent_units_active(digits):
    """Started at training rows, the pseudo-inputs let the posterior collapse on these digits
    in every seed tried (no active unit); started as the paper's, it does not."""
    X = digits[0][:1500] / 16
    vae = vaekit.VAE(8, hidden_sizes=(128, 128), activation="tanh", prior="vamp",
                     prior_components=100, max_epochs=40, warmup_epochs=10, batch_size=100,
                     validation_fraction=0, patience=None, **QUICK).fit(X)  # fmt: skip
    assert (vae.layer_activity(X[:500])[0] > 0.01).sum() >= 4


def test_an_interrupted_vamp_fit_resumes_bit_identically(digits, tmp_path):
    X = digits[0][:300] / 16
    params = dict(n_components=2, hidden_sizes=(16,), prior="vamp", prior_components=10,
                  max_epochs=6, **QUICK)  # fmt: skip
    assert_resume_is_bit_identical(params, X, None, tmp_path)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(prior="vamp", prior_components=50), "with 50 pseudo-inputs needs at least as many"),
        (dict(prior_components=5), "prior_components is for a prior with components"),
        (dict(prior="mog", prior_components=0), "prior_components must be a positive integer"),
        (dict(prior="mog", free_bits=0.1), "free_bits needs a prior whose KL has a closed form"),
    ],
)
def test_mixture_prior_settings_that_cannot_work_are_refused(params, message):
    X = np.random.default_rng(0).random((30, 4))
    with pytest.raises(ConfigError, match=message):
        vaekit.VAE(2, max_epochs=1, **{**QUICK, **params}).fit(X)


def test_the_registry_builds_the_mixture_priors():
    assert isinstance(make_prior("mog", 3, 10, 7), MixtureOfGaussians)
    assert make_prior("mog", 3).means.shape == (10, 3)
    vamp = make_prior("vamp", 3, 10)
    assert isinstance(vamp, VampPrior) and vamp.pseudo_inputs.shape == (500, 10)


@pytest.mark.slow
@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_scikit_learn_conventions_with_a_mixture_prior(prior):
    check_estimator(vaekit.VAE(verbose=False, max_epochs=3, prior=prior, prior_components=1))


def test_the_shell_trains_a_vamp_prior_and_shows_its_pseudo_inputs(tmp_path):
    from test_cli import vaekit as shell

    shell("train", "digits", "--prior", "vamp", "--prior-components", 16, "--max-epochs", 3,
          "--quiet", "--out", tmp_path / "run")  # fmt: skip
    run = tmp_path / "run"
    assert (run / "pseudo_inputs.png").is_file()
    report = (run / "report.html").read_text()
    assert "pseudo-inputs u_k (all 16)" in report
    assert vaekit.load(run).pseudo_inputs_.shape == (16, 64)
