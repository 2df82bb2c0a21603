"""The count likelihoods against scipy.stats, their samplers' moments, and a VAE on counts.

References are scipy's ``poisson`` and ``nbinom`` (n = theta, p = theta / (theta + mu)), and a
zero-inflated mixture built by hand from ``nbinom``; all in float64.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import assert_resume_is_bit_identical
from scipy import stats

import vaekit
from vaekit.exceptions import DataError
from vaekit.model.counts import NegativeBinomial, Poisson, ZeroInflatedNegativeBinomial
from vaekit.model.likelihoods import make_likelihood

F64 = torch.float64
# Zero counts, small and huge counts; means from 1e-3 to 1e6.
COUNTS = np.array([0.0, 0.0, 1.0, 3.0, 17.0, 250.0, 1e4, 1e6])
MEANS = np.array([1e-3, 5.0, 0.5, 3.0, 20.0, 1.0, 1e4, 1e6])
# Inverse dispersions theta from very overdispersed (1e-3) to a dispersion of 1e-6 (near Poisson).
THETAS = (1e-3, 0.1, 1.0, 10.0, 1e3, 1e6)


def _t(values) -> torch.Tensor:
    return torch.tensor(np.asarray(values), dtype=F64)


def _nbinom(theta, mu) -> stats.rv_discrete:
    return stats.nbinom(theta, theta / (theta + mu))


def _set_theta(likelihood: NegativeBinomial, theta) -> None:
    with torch.no_grad():
        likelihood.log_theta.copy_(torch.log(_t(np.broadcast_to(theta, COUNTS.shape))))


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message and "\n" not in message


def test_poisson_log_prob_matches_scipy():
    likelihood = Poisson(len(COUNTS)).double()
    got = likelihood.log_prob(_t(COUNTS)[None], torch.log(_t(MEANS))[None]).item()
    assert got == pytest.approx(stats.poisson(MEANS).logpmf(COUNTS).sum(), abs=1e-6)


@pytest.mark.parametrize("theta", THETAS)
def test_negative_binomial_log_prob_matches_scipy_entry_by_entry(theta):
    likelihood = NegativeBinomial(1).double().requires_grad_(False)
    for x, mu in zip(COUNTS, MEANS, strict=True):
        with torch.no_grad():
            likelihood.log_theta.fill_(np.log(theta))
        got = likelihood.log_prob(_t([[x]]), torch.log(_t([[mu]]))).item()
        assert got == pytest.approx(_nbinom(theta, mu).logpmf(x), abs=1e-6), (x, mu)


@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("pi", (1e-4, 0.3, 0.99))
def test_zinb_log_prob_matches_a_hand_built_mixture(theta, pi):
    likelihood = ZeroInflatedNegativeBinomial(len(COUNTS)).double()
    _set_theta(likelihood, theta)
    logits = np.full(COUNTS.shape, np.log(pi / (1 - pi)))
    params = torch.cat([torch.log(_t(MEANS)), _t(logits)])[None]
    nb = _nbinom(theta, MEANS).logpmf(COUNTS)
    expected = np.where(COUNTS == 0, np.log(pi + (1 - pi) * np.exp(nb)), np.log1p(-pi) + nb)
    assert likelihood.log_prob(_t(COUNTS)[None], params).item() == pytest.approx(
        expected.sum(), abs=1e-6
    )


def test_decoder_dispersion_reads_log_theta_from_the_second_head():
    likelihood = make_likelihood("negative_binomial", 3, dispersion="decoder").double()
    assert likelihood.n_heads == 2 and not list(likelihood.parameters())
    x, mu, theta = np.array([0.0, 4.0, 9.0]), np.array([1.0, 3.0, 8.0]), np.array([0.5, 2, 40])
    params = torch.cat([torch.log(_t(mu)), torch.log(_t(theta))])[None]
    expected = _nbinom(theta, mu).logpmf(x).sum()
    assert likelihood.log_prob(_t(x)[None], params).item() == pytest.approx(expected, abs=1e-9)
    assert make_likelihood("zinb", 3, dispersion="decoder").n_heads == 3


def test_library_size_scales_proportions_by_each_rows_total():
    likelihood = NegativeBinomial(3, library_size=True).double()
    x = _t([[2.0, 0.0, 8.0], [0.0, 0.0, 0.0]])
    head = _t([[0.3, -1.0, 2.0], [0.0, 0.0, 0.0]])
    proportions = torch.softmax(head, -1).numpy()
    # The first row's mean is 10 times its proportions; an all-zero row counts as a total of 1.
    mu = proportions * np.array([[10.0], [1.0]])
    expected = _nbinom(1.0, mu).logpmf(x.numpy()).sum(-1)
    got = likelihood.log_prob(x, head).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_decoding_without_data_uses_the_fitted_log_normal_of_the_totals():
    totals = np.array([100.0, 1000.0, 10000.0])
    likelihood = Poisson(2, library_size=True).double()
    likelihood.fit_library(totals)
    loc, scale = likelihood.log_library.tolist()
    assert loc == pytest.approx(np.log(totals).mean()) and scale == pytest.approx(
        np.log(totals).std()
    )
    head = _t([[0.0, np.log(3.0)]])
    expected = np.array([[0.25, 0.75]]) * np.exp(loc)
    np.testing.assert_allclose(likelihood.mean(head).numpy(), expected)
    draws = likelihood.sample(head.expand(20000, 2), torch.Generator().manual_seed(0))
    log_totals = np.log(np.maximum(draws.sum(-1).numpy(), 1))
    assert log_totals.mean() == pytest.approx(loc, abs=0.05)


@pytest.mark.parametrize("theta", (0.5, 5.0))
def test_negative_binomial_samples_have_its_mean_and_variance(theta):
    mu, n = 6.0, 200_000
    likelihood = NegativeBinomial(1).double().requires_grad_(False)
    with torch.no_grad():
        likelihood.log_theta.fill_(np.log(theta))
    draws = likelihood.sample(_t(np.full((n, 1), np.log(mu))), torch.Generator().manual_seed(1))
    draws = draws.numpy().ravel()
    assert np.all(draws == np.round(draws)) and draws.min() >= 0
    variance = mu + mu**2 / theta
    assert abs(draws.mean() - mu) < 5 * np.sqrt(variance / n)
    assert draws.var() == pytest.approx(variance, rel=0.05)
    # The whole law, not only two moments: a chi-square test over the first counts.
    observed = np.bincount(draws.astype(int), minlength=12)[:12]
    expected = _nbinom(theta, mu).pmf(np.arange(12)) * n
    assert stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue > 1e-3


def test_zinb_samples_have_the_extra_zeros_and_its_mean():
    mu, theta, pi, n = 4.0, 2.0, 0.3, 200_000
    likelihood = ZeroInflatedNegativeBinomial(1).double().requires_grad_(False)
    with torch.no_grad():
        likelihood.log_theta.fill_(np.log(theta))
    params = _t(np.tile([np.log(mu), np.log(pi / (1 - pi))], (n, 1)))
    draws = likelihood.sample(params, torch.Generator().manual_seed(2)).numpy().ravel()
    zero = pi + (1 - pi) * _nbinom(theta, mu).pmf(0)
    assert (draws == 0).mean() == pytest.approx(zero, abs=5 * np.sqrt(zero * (1 - zero) / n))
    assert likelihood.mean(params[:1]).item() == pytest.approx((1 - pi) * mu)
    assert draws.mean() == pytest.approx((1 - pi) * mu, rel=0.02)


@pytest.mark.parametrize("name", ("poisson", "negative_binomial", "zinb"))
@pytest.mark.parametrize(
    ("values", "words"),
    (([[0.0, 2.0], [-1.0, 3.0]], "negative values"), ([[0.5, 2.0]], "not whole numbers")),
)
def test_count_likelihoods_refuse_what_is_not_counts(name, values, words):
    with pytest.raises(DataError) as info:
        vaekit.VAE(likelihood=name, max_epochs=1, verbose=False).fit(np.array(values))
    message = str(info.value)
    assert name in message and words in message and _one_sentence(message)


# --------------------------------------------------------------------------------------------
# A VAE on counts
# --------------------------------------------------------------------------------------------


def _counts(n=240, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Negative-binomial counts from two clusters with different profiles and library sizes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    profiles = rng.dirichlet(np.ones(12), size=2)
    totals = rng.lognormal(np.log(200), 0.5, n)
    mu = profiles[labels] * totals[:, None]
    theta = 2.0
    return rng.negative_binomial(theta, theta / (theta + mu)).astype(np.float32), labels


def _count_params(**options) -> dict:
    defaults = dict(
        n_components=2,
        hidden_sizes=(32,),
        max_epochs=15,
        batch_size=32,
        validation_fraction=0,
        patience=None,
        random_state=0,
        verbose=False,
    )
    return defaults | options


def _count_vae(**options) -> vaekit.VAE:
    return vaekit.VAE(**_count_params(**options))


@pytest.mark.parametrize("likelihood", ("poisson", "negative_binomial", "zinb"))
def test_a_vae_on_counts_gives_honest_bounds_and_count_samples(likelihood):
    X, _ = _counts()
    vae = _count_vae(likelihood=likelihood, library_size=True).fit(X)
    elbo = vae.elbo(X[:20], n_samples=50)
    log_px = vae.score_samples(X[:20])
    assert np.all(log_px >= elbo - 0.5)  # IS with K=1000 sits above the ELBO
    samples = vae.sample(50, mean=False, random_state=0)
    assert samples.shape == (50, 12) and np.all(samples >= 0)
    np.testing.assert_array_equal(samples, np.round(samples))


def test_negative_binomial_fits_overdispersed_counts_better_than_poisson():
    X, _ = _counts(400)
    scores = {
        name: _count_vae(likelihood=name, library_size=True, max_epochs=40).fit(X).score(X)
        for name in ("poisson", "negative_binomial")
    }
    assert scores["negative_binomial"] > scores["poisson"] + 1.0


def test_sparse_counts_train_without_densifying_and_match_the_dense_fit():
    X, _ = _counts(120)
    dense = _count_vae(likelihood="negative_binomial", max_epochs=3).fit(X)
    sparse = _count_vae(likelihood="negative_binomial", max_epochs=3).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.transform(X), dense.transform(X), atol=1e-6)


def test_a_count_vae_saves_and_loads_with_its_library_fit(tmp_path):
    X, _ = _counts(120)
    vae = _count_vae(likelihood="zinb", library_size=True, max_epochs=3).fit(X)
    loaded = vaekit.load(vae.save(tmp_path / "model"))
    torch.testing.assert_close(
        loaded.module_.likelihood.log_library, vae.module_.likelihood.log_library
    )
    np.testing.assert_allclose(loaded.score_samples(X[:10]), vae.score_samples(X[:10]))
    codes = np.zeros((2, 2))
    np.testing.assert_allclose(loaded.inverse_transform(codes), vae.inverse_transform(codes))


def test_a_count_vae_resumes_bit_identically(tmp_path):
    X, _ = _counts(120)
    params = _count_params(likelihood="negative_binomial", dispersion="decoder", max_epochs=5)
    assert_resume_is_bit_identical(params, X, None, tmp_path)
