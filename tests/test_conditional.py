"""The conditional VAE (Sohn et al. 2015): conditions as one-hot labels or covariates, the
conditional prior p(z|c) against closed forms, and the whole estimator life cycle."""

import numpy as np
import pytest
import torch
from conftest import assert_resume_is_bit_identical
from sklearn.linear_model import LogisticRegression

import vaekit
from vaekit.engine.sources import ArraySource, ColumnsBeside
from vaekit.exceptions import ConfigError, DataError
from vaekit.model.distributions import DiagonalGaussian
from vaekit.model.priors import ConditionalGaussian, make_prior

QUICK = dict(likelihood="bernoulli", binarize="dynamic", verbose=False, random_state=0)


def test_the_gaussian_kl_per_unit_is_torchs():
    torch.manual_seed(0)
    q = DiagonalGaussian(torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3).double())
    p = DiagonalGaussian(torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3).double())
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(q.mean, q.std), torch.distributions.Normal(p.mean, p.std)
    )
    torch.testing.assert_close(q.kl_per_unit_to(p), expected)


def test_the_conditional_prior_is_a_gaussian_of_the_condition():
    torch.manual_seed(1)
    prior = make_prior("conditional", 2, condition_dim=3, hidden_sizes=(8,)).double()
    assert isinstance(prior, ConditionalGaussian) and prior.needs_condition
    c = torch.eye(3, dtype=torch.float64)
    p = prior.given(c)
    z = torch.randn(4, 3, 2, dtype=torch.float64)
    torch.testing.assert_close(prior.log_prob(z, c), p.log_prob(z))
    q = DiagonalGaussian(torch.randn(3, 2, dtype=torch.float64), torch.zeros(3, 2).double())
    draws = q.rsample(torch.randn(200_000, 3, 2, dtype=torch.float64))
    monte_carlo = (q.log_prob(draws) - prior.log_prob(draws, c)).mean(0)
    torch.testing.assert_close(prior.kl_per_unit(q, c).sum(-1), monte_carlo, atol=0.02, rtol=0)
    with torch.no_grad():
        samples = prior.sample(3, torch.Generator().manual_seed(0), c)
    assert samples.shape == (3, 2)


def test_columns_beside_a_source_come_after_each_row_in_any_order():
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    columns = np.eye(4, 2, dtype=np.float32)
    source = ColumnsBeside(ArraySource(rows), columns)
    assert source.n_features == 5
    np.testing.assert_array_equal(source.rows([2, 0]), np.hstack([rows, columns])[[2, 0]])
    chunks = np.vstack([chunk for _, chunk in source.chunks(3)])
    np.testing.assert_array_equal(chunks, np.hstack([rows, columns]))
    other = ColumnsBeside(ArraySource(rows), columns[::-1].copy())
    assert source.fingerprint() != other.fingerprint()


def test_dynamic_binarisation_leaves_the_condition_alone(digits):
    X = digits[0][:100] / 16
    vae = vaekit.VAE(2, hidden_sizes=(8,), condition="covariates", max_epochs=1, **QUICK)
    vae.fit(X, np.full((100, 1), 0.5))
    batch = torch.cat([torch.full((3, 64), 0.5), torch.full((3, 1), 0.5)], dim=1)
    seen = vae.module_.observed(batch, torch.Generator().manual_seed(0))
    assert set(seen[:, :64].unique().tolist()) == {0.0, 1.0}
    assert (seen[:, 64] == 0.5).all()


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits[0] / 16, digits[1]
    models = {
        prior: vaekit.VAE(
            4, hidden_sizes=(128,), condition="label", prior=prior, max_epochs=60, **QUICK
        ).fit(X, y)
        for prior in ("standard_normal", "conditional")
    }
    return X, y, models


@pytest.mark.parametrize("prior", ["standard_normal", "conditional"])
def test_conditional_samples_are_the_class_asked_for(fitted, prior):
    X, y, models = fitted
    classifier = LogisticRegression(max_iter=2000).fit(X, y)
    vae = models[prior]
    asked = np.repeat(np.arange(10), 30)
    samples = vae.sample(len(asked), condition=asked, random_state=1)
    agreement = (classifier.predict(samples) == asked).mean()
    assert agreement > 0.8, agreement
    one = vae.sample(4, condition=7, random_state=2)
    assert (classifier.predict(one) == 7).sum() >= 3


@pytest.mark.parametrize("prior", ["standard_normal", "conditional"])
def test_conditional_importance_sampling_is_above_the_elbo_and_rises_with_k(fitted, prior):
    X, y, models = fitted
    vae, rows, labels = models[prior], X[:100], y[:100]
    elbo = vae.elbo(rows, n_samples=100, y=labels).mean()
    # Each K's estimate averaged over four seeds (a seed's K draws begin with its draws for a
    # smaller K): from K = 10 on, the bound rises by hundredths of a nat, about one seed's
    # Monte Carlo error, and the ELBO of this short-trained model is as close below it.
    by_k, spread = [], []
    for k in (1, 10, 1000):
        estimates = []
        for seed in range(4):
            vae.set_params(random_state=seed)
            estimates.append(vae.score_samples(rows, n_samples=k, y=labels).mean())
        by_k.append(np.mean(estimates))
        spread.append(np.std(estimates, ddof=1) / 2)  # the standard error of the mean
    vae.set_params(random_state=0)
    assert by_k[0] < by_k[1] < by_k[2], by_k
    assert elbo < by_k[2] + 3 * spread[2], (elbo, by_k, spread)
    by_100 = vae.score_samples(rows, n_samples=100, y=labels).mean()
    assert vae.score(rows, labels, n_samples=100) == pytest.approx(by_100)
    wrong = vae.score_samples(rows, n_samples=100, y=(labels + 1) % 10).mean()
    assert wrong < by_100 - 5  # the right class explains the image better


def test_a_conditional_model_saves_loads_and_evaluates(fitted, tmp_path):
    X, y, models = fitted
    vae = models["conditional"]
    loaded = vaekit.load(vae.save(tmp_path / "cvae"))
    np.testing.assert_array_equal(loaded.classes_, vae.classes_)
    np.testing.assert_array_equal(
        loaded.score_samples(X[:5], 10, y=y[:5]), vae.score_samples(X[:5], 10, y=y[:5])
    )
    np.testing.assert_array_equal(
        loaded.sample(3, condition=2, random_state=0), vae.sample(3, condition=2, random_state=0)
    )
    result = vaekit.evaluate(vae, X[:100], y[:100], n_samples=50)
    assert len(result["kl_per_unit"]) == 4
    assert result["log_likelihood"] > result["elbo"]
    Z = vae.transform(X[:5], y[:5])
    np.testing.assert_array_equal(vae.inverse_transform(Z, y[:5]), vae.reconstruct(X[:5], y[:5]))
    np.testing.assert_array_equal(vae.fit_transform(X[:50], y[:50]), vae.transform(X[:50], y[:50]))


def test_string_labels_and_covariates_condition_too(digits, tmp_path):
    X, y = digits[0][:200] / 16, digits[1][:200]
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )[y]
    vae = vaekit.VAE(2, hidden_sizes=(16,), condition="label", max_epochs=2, **QUICK)
    vae.fit(X, names)
    assert list(vae.classes_[:2]) == ["eight", "five"]
    loaded = vaekit.load(vae.save(tmp_path / "named"))
    assert loaded.sample(2, condition="six").shape == (2, 64)
    covariates = np.stack([y / 9, (y % 2).astype(float)], axis=1)
    cvae = vaekit.VAE(
        2, hidden_sizes=(16,), condition="covariates", prior="conditional", max_epochs=2, **QUICK
    ).fit(X, covariates)
    assert cvae.n_covariates_ == 2
    assert cvae.sample(3, condition=[0.5, 1.0]).shape == (3, 64)
    assert cvae.sample(2, condition=covariates[:2]).shape == (2, 64)
    conv = vaekit.VAE(
        2, architecture="conv", channels=(4,), condition="label", max_epochs=1, **QUICK
    ).fit(X, y)
    assert np.isfinite(conv.score_samples(X[:4], 3, y=y[:4])).all()


def test_an_interrupted_conditional_fit_resumes_bit_identically(digits, tmp_path):
    X, y = digits[0][:300] / 16, digits[1][:300]
    params = dict(
        n_components=2,
        hidden_sizes=(16,),
        condition="label",
        prior="conditional",
        max_epochs=6,
        **QUICK,
    )
    assert_resume_is_bit_identical(params, X, y, tmp_path)
    with pytest.raises(ConfigError, match="another"):  # other conditions: another fit
        vaekit.VAE(**params).fit(X, (y + 1) % 10, checkpoint_dir=tmp_path)


@pytest.fixture(scope="module")
def small(digits):
    X, y = digits[0][:100] / 16, digits[1][:100]
    vae = vaekit.VAE(2, hidden_sizes=(8,), condition="label", max_epochs=1, **QUICK).fit(X, y)
    return X, y, vae


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda v, X, y: v.transform(X), DataError, "give the conditions of the rows as y"),
        (lambda v, X, y: v.transform(X, y[:5]), DataError, "one class label per row"),
        (lambda v, X, y: v.score_samples(X, 2, y=y + 20), DataError, "which fit did not see"),
        (lambda v, X, y: v.sample(2), ConfigError, "give sample.*the condition to generate"),
        (lambda v, X, y: v.sample(2, condition=12), DataError, "the class 12, which fit"),
        (lambda v, X, y: v.sample(3, condition=[1, 2]), DataError, "one class label per row"),
        (lambda v, X, y: v.transform(X, y.astype(str)), DataError, "another kind"),
        (lambda v, X, y: v.transform(X, y + 0.5), DataError, "not whole numbers"),
    ],
)
def test_wrong_conditions_are_refused_in_one_sentence(small, call, error, message):
    X, y, vae = small
    with pytest.raises(error, match=message):
        call(vae, X, y)


@pytest.mark.parametrize(
    ("params", "y", "error", "message"),
    [
        (dict(condition="label"), None, DataError, r"needs the conditions of the rows: fit\(X"),
        (dict(condition="label"), np.zeros(7), DataError, "one class label per row"),
        (dict(condition="covariates"), np.full(30, np.nan), DataError, "NaN or infinite"),
        (dict(condition="covariates"), np.zeros((29, 2)), DataError, "one row of covariates"),
        (dict(condition="colour"), np.zeros(30), ConfigError, "condition must be None, 'label'"),
        (dict(prior="conditional"), None, ConfigError, "it needs condition='label' or"),
        (dict(prior="vamp", condition="label"), np.zeros(30), ConfigError, "takes neither"),
    ],
)
def test_condition_settings_that_cannot_work_are_refused(params, y, error, message):
    X = np.random.default_rng(0).random((30, 4))
    with pytest.raises(error, match=message):
        vaekit.VAE(2, max_epochs=1, **{**QUICK, **params}).fit(X, y)


def test_an_unconditional_model_ignores_y_and_refuses_a_sample_condition(digits):
    X, y = digits[0][:100] / 16, digits[1][:100]
    vae = vaekit.VAE(2, hidden_sizes=(8,), max_epochs=1, **QUICK).fit(X, y)  # y ignored
    np.testing.assert_array_equal(vae.transform(X[:5], y[:5]), vae.transform(X[:5]))
    with pytest.raises(ConfigError, match="fitted without a condition"):
        vae.sample(2, condition=3)
