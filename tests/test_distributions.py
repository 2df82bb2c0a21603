"""Posterior, prior and likelihoods: log-densities, moments and samplers against scipy.

Every ``log_prob`` in :mod:`vaekit.model.distributions` returns nats per example, summed over
the last dimension; the references below are built independently with scipy (densities, quadrature,
Kolmogorov-Smirnov tests) in float64 unless a test is about float32.
"""

import functools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from scipy.special import expit, log_expit, logit

from vaekit.exceptions import ConfigError, DataError
from vaekit.model import distributions
from vaekit.model.distributions import (
    Bernoulli,
    ContinuousBernoulli,
    DiagonalGaussian,
    Gaussian,
    continuous_bernoulli_log_norm,
    product_log_prob,
    standard_normal_log_prob,
)
from vaekit.model.likelihoods import make_likelihood

F64 = torch.float64

# Includes lambdas within 1e-4 of 1/2, where the normaliser's closed form is 0/0.
CB_LAMBDAS = (0.01, 0.2, 0.499, 0.4995, 0.4999, 0.5, 0.5001, 0.5005, 0.501, 0.8, 0.99)
CB_XS = (0.0, 0.1, 0.37, 0.5, 0.9, 1.0)


def _t(values) -> torch.Tensor:
    return torch.tensor(np.asarray(values), dtype=F64)


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message and "\n" not in message


# --------------------------------------------------------------------------------------------
# DiagonalGaussian posterior
# --------------------------------------------------------------------------------------------

POSTERIORS = [
    ([1.5, -0.3, 0.0], [-2.0, 0.5, 0.0]),
    ([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]),
    ([-2.0, 0.7, 0.1, 3.0, -0.5], [1.0, -1.0, -3.0, 0.2, 0.0]),
]


@pytest.mark.parametrize(("mu", "log_var"), POSTERIORS)
def test_analytic_kl_matches_monte_carlo(mu, log_var):
    q = DiagonalGaussian(_t([mu]), _t([log_var]))
    generator = torch.Generator().manual_seed(0)
    eps = torch.randn((200_000, 1, len(mu)), generator=generator, dtype=F64)
    z = q.rsample(eps)
    diff = (q.log_prob(z) - standard_normal_log_prob(z))[:, 0]
    standard_error = diff.std().item() / math.sqrt(len(diff))
    kl = q.kl_per_unit().sum(-1)
    assert kl.shape == (1,)
    assert abs(kl.item() - diff.mean().item()) <= 3 * standard_error + 1e-12


@pytest.mark.parametrize(("mu", "log_var"), POSTERIORS)
def test_kl_per_unit_is_the_closed_form(mu, log_var):
    mu, log_var = np.array(mu), np.array(log_var)
    q = DiagonalGaussian(_t([mu]), _t([log_var]))
    expected = 0.5 * (mu**2 + np.exp(log_var) - 1.0 - log_var)
    np.testing.assert_allclose(q.kl_per_unit().numpy()[0], expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(q.kl_per_unit().sum(-1).numpy(), [expected.sum()], rtol=1e-12)


def test_kl_of_the_prior_itself_is_zero():
    q = DiagonalGaussian(torch.zeros(2, 4, dtype=F64), torch.zeros(2, 4, dtype=F64))
    np.testing.assert_array_equal(q.kl_per_unit().sum(-1).numpy(), [0.0, 0.0])


def test_posterior_log_prob_and_entropy_match_scipy():
    mu = np.array([[1.5, -0.3, 0.0], [-2.0, 0.7, 0.1]])
    log_var = np.array([[-2.0, 0.5, 0.0], [1.0, -1.0, -3.0]])
    std = np.exp(0.5 * log_var)
    q = DiagonalGaussian(_t(mu), _t(log_var))
    z = torch.randn((5, 2, 3), generator=torch.Generator().manual_seed(1), dtype=F64) * 2
    expected = stats.norm.logpdf(z.numpy(), mu, std).sum(-1)
    assert q.log_prob(z).shape == (5, 2)
    np.testing.assert_allclose(q.log_prob(z).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(q.std.numpy(), std, rtol=1e-12)
    np.testing.assert_allclose(
        q.entropy().numpy(), stats.norm(mu, std).entropy().sum(-1), rtol=1e-5, atol=1e-5
    )


def test_standard_normal_log_prob_matches_scipy():
    z = torch.randn((7, 4), generator=torch.Generator().manual_seed(2), dtype=F64) * 3
    expected = stats.norm.logpdf(z.numpy()).sum(-1)
    np.testing.assert_allclose(standard_normal_log_prob(z).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_rsample_is_mean_plus_std_times_eps():
    q = DiagonalGaussian(_t([[1.0, -2.0]]), _t([[np.log(4.0), 0.0]]))
    eps = _t([[[0.5, -1.0]], [[2.0, 3.0]]])
    np.testing.assert_allclose(q.rsample(eps).numpy(), [[[2.0, -3.0]], [[5.0, 1.0]]])


# --------------------------------------------------------------------------------------------
# Bernoulli
# --------------------------------------------------------------------------------------------


def test_bernoulli_log_prob_matches_scipy():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn((6, 5), generator=generator, dtype=F64) * 3
    x = torch.bernoulli(torch.full((6, 5), 0.5, dtype=F64), generator=generator)
    expected = stats.bernoulli.logpmf(x.numpy(), expit(logits.numpy())).sum(-1)
    got = Bernoulli(5).log_prob(x, logits)
    assert got.shape == (6,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_bernoulli_log_prob_is_stable_for_extreme_logits():
    logits = _t([[-60.0, -30.0, 30.0, 60.0]])
    for x_row in ([0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]):
        x = _t([x_row])
        # log p(x) = x log sigmoid(l) + (1 - x) log sigmoid(-l), per feature, by scipy's
        # stable log_expit (x l - log(1 + e^l) cancels to a few digits when p(x) is near 1).
        lg, xs = logits.numpy(), x.numpy()
        expected = (xs * log_expit(lg) + (1 - xs) * log_expit(-lg)).sum(-1)
        np.testing.assert_allclose(Bernoulli(4).log_prob(x, logits).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("n_features", [1, 5, 112, 113, 784, 1000])
def test_the_product_form_of_the_bernoulli_sum_matches_scipy_in_float32(n_features):
    """One logarithm per 112 features, in float32: within 1e-6 of scipy's float64 log-pmf
    relative to the sum of |log p| per feature, for any width (whole groups and a remainder),
    logits up to +-80 and both values of x at each."""
    generator = torch.Generator().manual_seed(n_features)
    logits = torch.randn((3, 4, n_features), generator=generator, dtype=F64) * 8
    logits[0, 0, :] = torch.linspace(-80.0, 80.0, n_features, dtype=F64)
    x = torch.bernoulli(torch.full((4, n_features), 0.3, dtype=F64), generator=generator)
    per_feature = stats.bernoulli.logpmf(x.numpy(), expit(logits.numpy()))
    got = product_log_prob(x.float(), logits.float())
    assert got.dtype == torch.float32 and got.shape == (3, 4)
    scale = np.abs(per_feature).sum(-1)
    assert np.all(np.abs(got.double().numpy() - per_feature.sum(-1)) <= 1e-6 * scale + 1e-5)


def test_a_group_of_112_of_the_worst_fitted_features_does_not_overflow_or_underflow():
    """Every factor sigmoid(|y|) at 1/2 (logit 0) or at 1 (huge logits): the product of 112
    stays a normal float32 number, and the sum is exact to float32's rounding."""
    x = torch.zeros((1, 224))
    logits = torch.cat([torch.zeros(112), torch.full((112,), -1e4)]).view(1, 224)
    got = product_log_prob(x, logits).item()
    assert got == pytest.approx(-112 * math.log(2.0), rel=1e-6)


def test_the_bernoulli_sum_takes_the_product_form_only_for_a_float32_estimate(monkeypatch):
    """Without a gradient, in float32 and fully observed (an importance-sampled log p(x)) the
    sum is the product form's; with a gradient (training), in float64 (the reference) and with
    a mask of observed entries it is the softplus's, and the gradient still reaches the
    logits."""
    calls = []

    def counted(x, logits):
        calls.append(logits.dtype)
        return product_log_prob(x, logits)

    monkeypatch.setattr(distributions, "product_log_prob", counted)
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn((2, 300), generator=generator) * 5
    x = torch.bernoulli(torch.full((2, 300), 0.5), generator=generator)
    likelihood = Bernoulli(300)
    with torch.no_grad():
        fast = likelihood.log_prob(x, logits)
        likelihood.log_prob(x.double(), logits.double())
        likelihood.log_prob(x, logits, torch.ones_like(x, dtype=torch.bool))
    assert calls == [torch.float32]
    torch.testing.assert_close(fast, likelihood.log_prob_entries(x, logits).sum(-1))
    trained = logits.clone().requires_grad_()
    likelihood.log_prob(x, trained).sum().backward()
    assert calls == [torch.float32]
    torch.testing.assert_close(trained.grad, x - torch.sigmoid(logits))


def test_bernoulli_mean_and_sample():
    likelihood = Bernoulli(3)
    logits = _t([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(likelihood.mean(logits).numpy(), expit(logits.numpy()))
    n = 20_000
    draws = likelihood.sample(logits.expand(n, 3), torch.Generator().manual_seed(4)).numpy()
    assert set(np.unique(draws)) <= {0.0, 1.0}
    p = expit(logits.numpy())
    assert np.all(np.abs(draws.mean(0) - p) < 5 * np.sqrt(p * (1 - p) / n))


# --------------------------------------------------------------------------------------------
# Gaussian
# --------------------------------------------------------------------------------------------

D = 4
SIGMA_FLOOR = 1e-3


def _gaussian(mode: str) -> Gaussian:
    """A float64 Gaussian likelihood whose sigma is not trivially 1."""
    if mode == "fixed":
        return Gaussian(D, sigma="fixed", sigma_value=0.7).double()
    likelihood = Gaussian(D, sigma=mode, sigma_value=1.3, sigma_floor=SIGMA_FLOOR).double()
    with torch.no_grad():
        if mode == "shared":
            likelihood.raw_sigma.fill_(-0.4)
        elif mode == "per_feature":
            likelihood.raw_sigma.copy_(_t([-2.0, -0.5, 0.3, 1.7]))
    return likelihood


def _gaussian_params(likelihood: Gaussian, leading=(3,), seed=5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((*leading, likelihood.n_heads * D), generator=generator, dtype=F64)


def _softplus(v):
    return np.logaddexp(0.0, v)


def _expected_sigma(likelihood: Gaussian, params: torch.Tensor) -> np.ndarray:
    """sigma computed from the documented formulas, without calling the module."""
    if likelihood.sigma_mode == "fixed":
        return np.full((*params.shape[:-1], D), 0.7)
    if likelihood.sigma_mode == "decoder":
        offset = np.log(np.expm1(1.3 - SIGMA_FLOOR))  # softplus(offset) == sigma_value - floor
        return SIGMA_FLOOR + _softplus(params.numpy()[..., D:] + offset)
    raw = likelihood.raw_sigma.detach().numpy()
    return np.broadcast_to(SIGMA_FLOOR + _softplus(raw), (*params.shape[:-1], D))


GAUSSIAN_MODES = ("fixed", "shared", "per_feature", "decoder")


@pytest.mark.parametrize("mode", GAUSSIAN_MODES)
def test_gaussian_sigma_follows_the_documented_formula(mode):
    likelihood = _gaussian(mode)
    params = _gaussian_params(likelihood)
    sigma = likelihood.sigma(params).detach().numpy()
    np.testing.assert_allclose(
        np.broadcast_to(sigma, (*params.shape[:-1], D)),
        _expected_sigma(likelihood, params),
        rtol=1e-12,
    )


@pytest.mark.parametrize("mode", ("shared", "per_feature", "decoder"))
def test_learned_sigma_starts_at_sigma_value(mode):
    likelihood = Gaussian(D, sigma=mode, sigma_value=1.3, sigma_floor=SIGMA_FLOOR).double()
    params = torch.zeros((2, likelihood.n_heads * D), dtype=F64)
    sigma = np.broadcast_to(likelihood.sigma(params).detach().numpy(), (2, D))
    # shared / per_feature keep raw_sigma as a float32 parameter until .double(): 1e-7 relative.
    np.testing.assert_allclose(sigma, 1.3, rtol=1e-6)


def test_decoder_sigma_never_falls_below_the_floor():
    likelihood = Gaussian(D, sigma="decoder", sigma_value=1.3, sigma_floor=0.05).double()
    params = torch.cat([torch.zeros(1, D, dtype=F64), _t([[-1e3, -50.0, 0.0, 50.0]])], -1)
    sigma = likelihood.sigma(params).detach().numpy()[0]
    assert np.all(sigma >= 0.05)
    np.testing.assert_allclose(sigma[0], 0.05, rtol=1e-12)
    np.testing.assert_allclose(sigma[3], 0.05 + 50.0 + np.log(np.expm1(1.3 - 0.05)), rtol=1e-12)


@pytest.mark.parametrize("mode", GAUSSIAN_MODES)
def test_gaussian_log_prob_matches_scipy(mode):
    likelihood = _gaussian(mode)
    params = _gaussian_params(likelihood)
    x = torch.randn((3, D), generator=torch.Generator().manual_seed(6), dtype=F64)
    mean = params.numpy()[..., :D]
    sigma = _expected_sigma(likelihood, params)
    expected = stats.norm.logpdf(x.numpy(), mean, sigma).sum(-1)
    got = likelihood.log_prob(x, params).detach()
    assert got.shape == (3,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", GAUSSIAN_MODES)
def test_gaussian_mean_is_the_first_head(mode):
    likelihood = _gaussian(mode)
    params = _gaussian_params(likelihood)
    np.testing.assert_array_equal(likelihood.mean(params).numpy(), params.numpy()[..., :D])


@pytest.mark.parametrize("mode", GAUSSIAN_MODES)
def test_gaussian_sample_has_the_right_moments(mode):
    likelihood = _gaussian(mode)
    n = 20_000
    params = _gaussian_params(likelihood, leading=(1,)).expand(n, -1)
    with torch.no_grad():
        draws = likelihood.sample(params, torch.Generator().manual_seed(7)).numpy()
    assert draws.shape == (n, D)
    mean = params.numpy()[0, :D]
    sigma = _expected_sigma(likelihood, params)[0]
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * sigma / np.sqrt(n))
    assert np.all(np.abs(draws.std(0) - sigma) < 5 * sigma / np.sqrt(2 * n))


# --------------------------------------------------------------------------------------------
# Continuous Bernoulli
# --------------------------------------------------------------------------------------------


def _quad(f) -> float:
    return integrate.quad(f, 0.0, 1.0, epsabs=0.0, epsrel=1e-13, limit=200)[0]


@functools.lru_cache
def _cb_log_norm_quad(lam: float) -> float:
    """log C(lambda) with 1 / C = integral over [0, 1] of lambda^x (1 - lambda)^(1 - x)."""
    return -math.log(_quad(lambda x: lam**x * (1 - lam) ** (1 - x)))


def _cb_mean_quad(lam: float) -> float:
    c = math.exp(_cb_log_norm_quad(lam))
    return c * _quad(lambda x: x * lam**x * (1 - lam) ** (1 - x))


def _cb_cdf(x: np.ndarray, lam: float) -> np.ndarray:
    """Closed-form CDF; the uniform one at lambda = 1/2."""
    if lam == 0.5:
        return np.clip(x, 0.0, 1.0)
    return (lam**x * (1 - lam) ** (1 - x) + lam - 1) / (2 * lam - 1)


@pytest.mark.parametrize("lam", CB_LAMBDAS)
def test_cb_log_norm_matches_quadrature_float64(lam):
    got = continuous_bernoulli_log_norm(_t([logit(lam)])).item()
    assert math.isfinite(got)
    assert got == pytest.approx(_cb_log_norm_quad(lam), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("lam", CB_LAMBDAS)
def test_cb_log_norm_matches_quadrature_float32(lam):
    eta = torch.tensor([logit(lam)], dtype=torch.float32)
    got = continuous_bernoulli_log_norm(eta)
    assert got.dtype == torch.float32
    assert torch.isfinite(got).all()
    # Compare at the lambda the float32 logit actually represents.
    reference = _cb_log_norm_quad(float(expit(float(eta.item()))))
    assert got.item() == pytest.approx(reference, rel=1e-5)


@pytest.mark.parametrize("eta", (1e-2, -1e-2, 0.0099999, -0.0099999, 1e-6, 0.0))
def test_cb_log_norm_is_accurate_at_the_series_switch(eta):
    got = continuous_bernoulli_log_norm(_t([eta])).item()
    assert got == pytest.approx(_cb_log_norm_quad(float(expit(eta))), rel=1e-10)


@pytest.mark.parametrize("lam", CB_LAMBDAS)
def test_cb_log_prob_matches_quadrature_density(lam):
    x = _t(CB_XS)[:, None]  # one feature per example, so each value is checked on its own
    params = torch.full_like(x, logit(lam))
    got = ContinuousBernoulli(1).log_prob(x, params)
    xs = np.array(CB_XS)
    expected = _cb_log_norm_quad(lam) + xs * math.log(lam) + (1 - xs) * math.log(1 - lam)
    assert got.shape == (len(CB_XS),)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_cb_log_prob_sums_over_features():
    lams = np.array([0.01, 0.4999, 0.5, 0.8, 0.99])
    xs = np.array([0.3, 0.0, 0.77, 1.0, 0.5])
    got = ContinuousBernoulli(5).log_prob(_t([xs]), _t([logit(lams)])).item()
    expected = sum(
        _cb_log_norm_quad(lam) + x * math.log(lam) + (1 - x) * math.log(1 - lam)
        for lam, x in zip(lams, xs, strict=True)
    )
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("lam", (0.01, 0.2, 0.8, 0.99))
def test_cb_density_integrates_to_one(lam):
    likelihood = ContinuousBernoulli(1)
    eta = _t([[logit(lam)]])
    total = _quad(lambda x: math.exp(likelihood.log_prob(_t([[x]]), eta).item()))
    assert total == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("lam", CB_LAMBDAS)
def test_cb_mean_matches_quadrature(lam):
    got = ContinuousBernoulli(1).mean(_t([logit(lam)])).item()
    assert got == pytest.approx(_cb_mean_quad(lam), rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("dtype", (torch.float64, torch.float32))
@pytest.mark.parametrize("lam", (0.1, 0.5, 0.7, 0.999))
def test_cb_sampler_passes_a_ks_test(lam, dtype):
    n = 5_000
    params = torch.full((n, 1), logit(lam), dtype=dtype)
    draws = ContinuousBernoulli(1).sample(params, torch.Generator().manual_seed(8))
    assert draws.shape == (n, 1)
    assert draws.dtype == dtype
    draws = draws.double().numpy()[:, 0]
    assert np.all((draws >= 0.0) & (draws <= 1.0))
    lam_used = float(expit(float(params[0, 0])))
    assert stats.kstest(draws, lambda x: _cb_cdf(x, lam_used)).pvalue > 1e-3


@pytest.mark.parametrize("dtype", (torch.float64, torch.float32))
@pytest.mark.parametrize("eta", (40.0, -40.0))
def test_cb_sampler_is_finite_for_large_logits(eta, dtype):
    n = 5_000
    likelihood = ContinuousBernoulli(1)
    params = torch.full((n, 1), eta, dtype=dtype)
    draws = likelihood.sample(params, torch.Generator().manual_seed(9)).double().numpy()
    assert np.all(np.isfinite(draws))
    assert np.all((draws >= 0.0) & (draws <= 1.0))
    # The density is proportional to e^(eta x): mean 1 - 1/40 (or 1/40), sd about 1/40.
    expected = likelihood.mean(_t([eta])).item()
    assert expected == pytest.approx(1 - 1 / 40 if eta > 0 else 1 / 40, rel=1e-6)
    assert abs(draws.mean() - expected) < 5 * (1 / 40) / math.sqrt(n)
    assert np.median(draws) == pytest.approx(
        0.5 + math.copysign(0.5 - math.log(2) / 40, eta), abs=2e-3
    )


# --------------------------------------------------------------------------------------------
# Validation and configuration errors
# --------------------------------------------------------------------------------------------


def _validate(likelihood, X):
    """What the estimators hand a likelihood: the data's range, whether it is binary and whether
    it holds whole numbers only."""
    integer = bool((X == np.round(X)).all())
    likelihood.validate(X.min(), X.max(), bool(np.isin(X, (0.0, 1.0)).all()), integer)


def test_bernoulli_validate():
    _validate(Bernoulli(3), np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(DataError) as info:
        _validate(Bernoulli(3), np.array([[0.0, 0.5, 1.0]]))
    assert "bernoulli" in str(info.value)
    assert _one_sentence(str(info.value))


@pytest.mark.parametrize("bad", (-0.01, 1.01, -5.0, 3.0))
def test_continuous_bernoulli_validate_rejects_values_outside_the_unit_interval(bad):
    X = np.array([[0.2, 0.7], [bad, 0.5]])
    with pytest.raises(DataError) as info:
        _validate(ContinuousBernoulli(2), X)
    assert "continuous_bernoulli" in str(info.value)
    assert _one_sentence(str(info.value))


@pytest.mark.parametrize(
    "X", (np.array([[0.0, 1.0], [0.25, 0.75]]), np.array([[0.6, 0.9]]), np.array([[0.0, 0.0]]))
)
def test_continuous_bernoulli_validate_accepts_the_unit_interval(X):
    _validate(ContinuousBernoulli(2), X)


def test_make_likelihood_rejects_unknown_names():
    with pytest.raises(ConfigError) as info:
        make_likelihood("nope", 3)
    message = str(info.value)
    assert "'nope'" in message
    for name in ("bernoulli", "continuous_bernoulli", "gaussian"):
        assert name in message
    assert _one_sentence(message)


@pytest.mark.parametrize(
    ("name", "options", "cls", "n_heads"),
    [
        ("bernoulli", {}, Bernoulli, 1),
        ("continuous_bernoulli", {}, ContinuousBernoulli, 1),
        ("gaussian", {}, Gaussian, 1),
        ("gaussian", {"sigma": "decoder"}, Gaussian, 2),
    ],
)
def test_make_likelihood_builds_registered_names(name, options, cls, n_heads):
    likelihood = make_likelihood(name, 3, **options)
    assert type(likelihood) is cls
    assert likelihood.name == name
    assert likelihood.n_features == 3
    assert likelihood.n_heads == n_heads


def test_gaussian_rejects_unknown_sigma_mode():
    with pytest.raises(ConfigError) as info:
        Gaussian(3, sigma="weird")
    message = str(info.value)
    assert "'weird'" in message
    for mode in GAUSSIAN_MODES:
        assert mode in message
    assert _one_sentence(message)


@pytest.mark.parametrize(
    "options",
    [
        {"sigma_value": 0.0},
        {"sigma_value": -1.0},
        {"sigma_floor": 0.0},
        {"sigma": "shared", "sigma_value": 1e-3, "sigma_floor": 1e-2},
    ],
)
def test_gaussian_rejects_bad_sigma_values(options):
    with pytest.raises(ConfigError) as info:
        Gaussian(3, **options)
    assert _one_sentence(str(info.value))


# --------------------------------------------------------------------------------------------
# Broadcasting over leading sample dimensions
# --------------------------------------------------------------------------------------------

K, N = 3, 5

BROADCAST_CASES = {
    "bernoulli": lambda: Bernoulli(D),
    "continuous_bernoulli": lambda: ContinuousBernoulli(D),
    **{f"gaussian-{mode}": functools.partial(_gaussian, mode) for mode in GAUSSIAN_MODES},
}


@pytest.mark.parametrize("case", list(BROADCAST_CASES))
def test_log_prob_broadcasts_over_sample_dimension(case):
    likelihood = BROADCAST_CASES[case]()
    generator = torch.Generator().manual_seed(10)
    if case == "bernoulli":
        x = torch.bernoulli(torch.full((N, D), 0.5, dtype=F64), generator=generator)
    elif case == "continuous_bernoulli":
        x = torch.rand((N, D), generator=generator, dtype=F64)
    else:
        x = torch.randn((N, D), generator=generator, dtype=F64)
    params = torch.randn((K, N, likelihood.n_heads * D), generator=generator, dtype=F64)
    with torch.no_grad():
        got = likelihood.log_prob(x, params)
        per_k = torch.stack([likelihood.log_prob(x, params[k]) for k in range(K)])
    assert got.shape == (K, N)
    np.testing.assert_allclose(got.numpy(), per_k.numpy(), rtol=1e-12)
