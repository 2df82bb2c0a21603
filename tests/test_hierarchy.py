"""Stochastic layers above the first (Burda et al. 2016's two-layer VAE): the prior they make
over z1 against closed forms, the trivial second layer against the one-layer model, and the
whole estimator life cycle."""

import warnings

import numpy as np
import pytest
import torch
from conftest import assert_resume_is_bit_identical
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import check_estimator

import vaekit
from vaekit.estimators.vae import ACTIVE_UNIT_THRESHOLD, _warn_if_collapsed
from vaekit.exceptions import ConfigError, PosteriorCollapseWarning
from vaekit.model.hierarchy import StochasticLayer, stack_layers
from vaekit.model.modules import VAEModule
from vaekit.model.priors import StandardNormal

QUICK = dict(likelihood="bernoulli", binarize="dynamic", verbose=False, random_state=0)


def linear_gaussian_layer(seed=0) -> tuple[StochasticLayer, np.ndarray, np.ndarray]:
    """A layer with p(z|u) = N(W u + b, diag(d)) and u ~ N(0, I): p(z) = N(b, W W^T + diag(d))."""
    torch.manual_seed(seed)
    layer = StochasticLayer(3, 2, (), "tanh", StandardNormal(2)).double()
    generative = layer.generative[-1]
    with torch.no_grad():
        generative.weight[3:].zero_()  # the log-variances do not depend on u
        generative.bias[3:].copy_(torch.tensor([-0.5, 0.1, -1.0]))
    W = generative.weight[:3].detach().numpy()
    b = generative.bias[:3].detach().numpy()
    d = np.exp(generative.bias[3:].detach().numpy())
    return layer, b, W @ W.T + np.diag(d)


def test_the_layer_estimate_is_unbiased_for_the_marginal_prior():
    layer, mean, cov = linear_gaussian_layer()
    z = torch.tensor([[0.3, -0.2, 0.5], [-1.0, 0.4, 0.0]], dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn((40_000, 2, layer.noise_dim), generator=generator, dtype=torch.float64)
    with torch.no_grad():
        estimates = layer.log_prob_estimate(z.expand(40_000, 2, 3), noise)
    log_mean = torch.logsumexp(estimates, 0) - np.log(len(estimates))
    exact = multivariate_normal(mean, cov).logpdf(z.numpy())
    np.testing.assert_allclose(log_mean.numpy(), exact, atol=0.02)
    assert (estimates.mean(0).numpy() < exact).all()  # E log of the estimate: a lower bound


def test_layer_samples_follow_the_marginal_prior():
    layer, mean, cov = linear_gaussian_layer(seed=2)
    with torch.no_grad():
        z = layer.sample(100_000, torch.Generator().manual_seed(3)).numpy()
    np.testing.assert_allclose(z.mean(0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(z.T), cov, atol=0.03)


def one_and_two_layer_modules():
    """A one-layer module and a two-layer one with the same encoder and decoder, whose second
    layer is trivial: q(u|z) = N(0, I) = p(u) and p(z|u) = N(0, I)."""
    torch.manual_seed(0)
    encoder, decoder = torch.nn.Linear(6, 8), torch.nn.Linear(4, 6)
    likelihood = vaekit.model.likelihoods.make_likelihood("bernoulli", 6)
    prior = stack_layers(4, (3,), (5,), "tanh", StandardNormal(3))
    for net in (prior.inference, prior.generative):
        with torch.no_grad():
            net[-1].weight.zero_()
            net[-1].bias.zero_()
    one = VAEModule(encoder, decoder, likelihood, StandardNormal(4), 4).double()
    two = VAEModule(encoder, decoder, likelihood, prior, 4).double()
    return one, two


def test_a_trivial_second_layer_gives_the_one_layer_bounds():
    one, two = one_and_two_layer_modules()
    x = torch.bernoulli(torch.full((5, 6), 0.4, dtype=torch.float64))
    eps = torch.randn((7, 5, two.noise_dim), dtype=torch.float64)
    assert two.noise_dim == 4 + 3
    with torch.no_grad():
        q = one.encode(x)
        np.testing.assert_allclose(
            two.log_weights(x, q, eps).numpy(),
            one.log_weights(x, q, eps[..., :4]).numpy(),
            rtol=1e-12,
        )
        z = q.rsample(eps[..., :4])  # the KL of the stack: the one-layer MC KL of the draws
        one_mc = (q.log_prob(z) - one.prior.log_prob(z)).mean(0)
        np.testing.assert_allclose(two.prior.kl(q, z, eps[..., 4:]).numpy(), one_mc.numpy())


@pytest.fixture(scope="module")
def fitted(digits):
    X = digits[0][:600] / 16
    vae = vaekit.VAE(
        6,
        hidden_sizes=(64,),
        upper_layers=(3,),
        upper_hidden_sizes=(32,),
        activation="tanh",
        max_epochs=15,
        **QUICK,
    ).fit(X)
    return X, vae


def test_importance_sampling_over_both_layers_is_above_the_elbo_and_rises_with_k(fitted):
    X, vae = fitted
    rows = X[:100]
    elbo = vae.elbo(rows, n_samples=20).mean()
    by_k = [vae.score_samples(rows, n_samples=k).mean() for k in (1, 10, 100)]
    assert by_k[0] == pytest.approx(vae.elbo(rows, n_samples=1).mean(), abs=2.0)
    assert elbo < by_k[1] < by_k[2], (elbo, by_k)


def test_a_two_layer_model_samples_saves_and_reports_both_layers(fitted, tmp_path):
    X, vae = fitted
    assert vae.sample(5, random_state=1).shape == (5, 64)
    codes = vae.layer_codes(X[:50])
    assert [c.shape for c in codes] == [(50, 6), (50, 3)]
    np.testing.assert_array_equal(codes[0], vae.transform(X[:50]))
    loaded = vaekit.load(vae.save(tmp_path / "two"))
    np.testing.assert_array_equal(loaded.score_samples(X[:5], 10), vae.score_samples(X[:5], 10))
    result = vaekit.evaluate(vae, X[:100], n_samples=50)
    assert "kl_per_unit" not in result
    layers = result["active_units_per_layer"]
    assert len(layers) == 2 and layers[0] == result["active_units"] and 0 <= layers[1] <= 3
    assert result["reconstruction_nll"] == pytest.approx(-result["elbo"] - result["kl"])
    assert result["log_likelihood"] > result["elbo"]


def test_an_interrupted_two_layer_fit_resumes_bit_identically(digits, tmp_path):
    X = digits[0][:300] / 16
    params = dict(
        n_components=3,
        hidden_sizes=(16,),
        upper_layers=(2,),
        upper_hidden_sizes=(8,),
        max_epochs=6,
        **QUICK,
    )
    assert_resume_is_bit_identical(params, X, None, tmp_path)


def test_three_layers_stack_bottom_up(digits):
    X = digits[0][:200] / 16
    vae = vaekit.VAE(
        4, hidden_sizes=(16,), upper_layers=(3, 2), upper_hidden_sizes=(8,), max_epochs=2, **QUICK
    ).fit(X)
    assert vae.module_.noise_dim == 4 + 3 + 2
    assert [c.shape[1] for c in vae.layer_codes(X[:10])] == [4, 3, 2]
    assert np.isfinite(vae.score_samples(X[:10], 5)).all()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(upper_layers=(0,)), "upper_layers must be a tuple of positive integers"),
        (dict(upper_layers=(2,), prior="vamp"), "prior='vamp' puts the encoder's posteriors"),
        (dict(upper_layers=(2,), free_bits=0.5), "free_bits needs the closed-form KL per unit"),
        (dict(upper_layers=(2,), condition="label"), "upper_layers and a condition do not"),
        (dict(upper_hidden_sizes=(-1,)), "upper_hidden_sizes must be a tuple of positive"),
    ],
)
def test_layer_settings_that_cannot_work_are_refused(params, message):
    X = np.random.default_rng(0).random((30, 4))
    with pytest.raises(ConfigError, match=message):
        vaekit.VAE(2, max_epochs=1, **{**QUICK, **params}).fit(X, np.zeros(30, int))


@pytest.mark.slow
def test_scikit_learn_conventions_with_two_stochastic_layers():
    check_estimator(vaekit.VAE(verbose=False, max_epochs=3, upper_layers=(2,)))


def test_the_shell_trains_two_stochastic_layers(tmp_path):
    from test_cli import vaekit as shell

    shell(
        "train",
        "digits",
        "--n-components",
        4,
        "--upper-layers",
        2,
        "--upper-hidden-sizes",
        "16,16",
        "--max-epochs",
        2,
        "--quiet",
        "--out",
        tmp_path / "run",
    )
    vae = vaekit.load(tmp_path / "run")
    assert vae.upper_layers == (2,) and vae.upper_hidden_sizes == (16, 16)
    metrics = (tmp_path / "run" / "report.html").read_text()
    assert "active latent units" in metrics


def test_a_collapsed_upper_layer_warns_and_an_active_one_does_not():
    X = load_digits().data / 16
    layers = dict(hidden_sizes=(64,), upper_layers=(3,), upper_hidden_sizes=(16,), verbose=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vae = vaekit.VAE(4, max_epochs=30, learning_rate=3e-3, random_state=0, **layers).fit(X)
    said = [str(w.message) for w in caught if w.category is PosteriorCollapseWarning]
    z1, z2 = vae.layer_activity(X)
    assert (z1 > ACTIVE_UNIT_THRESHOLD).any() and (z2 <= ACTIVE_UNIT_THRESHOLD).all()
    assert len(said) == 1 and said[0].startswith("No unit of latent layer 2 is active")
    assert "objective='iwae'" in said[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PosteriorCollapseWarning)
        iwae = vaekit.VAE(
            4, max_epochs=60, learning_rate=3e-3, objective="iwae", n_samples=10, random_state=0,
            **layers,
        ).fit(X)  # fmt: skip
    assert (iwae.layer_activity(X)[1] > ACTIVE_UNIT_THRESHOLD).any()


def test_the_collapse_warning_names_only_remedies_the_objective_takes():
    still = [np.zeros((20, 3)), np.zeros((20, 2))]  # no unit of either layer varies
    for iwae in (False, True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _warn_if_collapsed(still, [np.ones(3), np.ones(2)], iwae)
        z1, z2 = (str(w.message) for w in caught)
        if iwae:  # the KL remedies come with the objective that has them
            assert "objective='elbo' with a KL warm-up" in z1
            assert "warmup_epochs" not in z2 and "objective='iwae'" not in z2
        else:
            assert "a KL warm-up (warmup_epochs), free_bits" in z1
            assert "objective='iwae'" in z2
