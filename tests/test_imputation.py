"""Missing values: the MIWAE bounds and imputations against a linear Gaussian model's closed
forms, and VAEImputer in scikit-learn's imputer conventions."""

import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import assert_resume_is_bit_identical
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits
from sklearn.impute import SimpleImputer
from sklearn.utils.estimator_checks import check_estimator

import vaekit
from vaekit.exceptions import ConfigError, DataError


def _missing_model(linear_gaussian_vae, linear_model):
    """The linear model's VAE, made a model of missing values whose encoder gives the prior
    (a proposal wide enough for any part of a row), and rows with NaN."""
    W, b, sigma, X, _ = linear_model
    vae = linear_gaussian_vae(W, b, sigma)
    vae.missing, vae.module_.missing, vae.random_state = "ignore", True, 0
    with torch.no_grad():
        vae.module_.encoder.weight.zero_()
        vae.module_.encoder.bias.zero_()
    mask = np.random.default_rng(4).random(X.shape) < 0.4
    mask[:, 0] = False  # every row keeps an observed entry
    X_missing = np.where(mask, np.nan, X)
    return vae, X_missing, mask


def _conditional(W, b, sigma, x, mask):
    """Mean and covariance of x_mis given x_obs under x ~ N(b, W W^T + sigma^2 I)."""
    cov = W @ W.T + sigma**2 * np.eye(len(b))
    o, m = ~mask, mask
    gain = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
    mean = b[m] + gain @ (x[o] - b[o])
    return mean, cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)]


def test_log_p_of_the_observed_entries_is_their_gaussian_marginal(
    linear_gaussian_vae, linear_model
):
    W, b, sigma, _, _ = linear_model
    vae, X, mask = _missing_model(linear_gaussian_vae, linear_model)
    cov = W @ W.T + sigma**2 * np.eye(len(b))
    rows = range(20)
    exact = [
        multivariate_normal(b[~mask[i]], cov[np.ix_(~mask[i], ~mask[i])]).logpdf(X[i, ~mask[i]])
        for i in rows
    ]
    # The prior as the proposal: within a tenth of a nat at K = 20000 (leaving out the missing
    # entries' integral, or counting them, would be off by nats).
    np.testing.assert_allclose(vae.score_samples(X[:20], n_samples=20000), exact, atol=0.1)
    assert np.all(vae.elbo(X[:20], n_samples=200) <= np.asarray(exact) + 0.1)


def test_the_imputation_is_the_conditional_mean(linear_gaussian_vae, linear_model):
    W, b, sigma, _, _ = linear_model
    vae, X, mask = _missing_model(linear_gaussian_vae, linear_model)
    filled = vae.impute(X[:20], n_samples=20000)
    for i in range(20):
        if mask[i].any():
            mean, _ = _conditional(W, b, sigma, X[i], mask[i])
            np.testing.assert_allclose(filled[i, mask[i]], mean, atol=0.03)
    np.testing.assert_array_equal(filled[~mask[:20]], X[:20][~mask[:20]])


def test_multiple_imputations_are_draws_of_the_conditional(linear_gaussian_vae, linear_model):
    W, b, sigma, _, _ = linear_model
    vae, X, mask = _missing_model(linear_gaussian_vae, linear_model)
    i = int(np.flatnonzero(mask.sum(1) == 2)[0])
    draws = np.stack(
        [
            vae.impute(X[i : i + 1], n_samples=500, sample=True, random_state=s)[0]
            for s in range(400)
        ]
    )[:, mask[i]]
    mean, cov = _conditional(W, b, sigma, X[i], mask[i])
    assert np.all(np.abs(draws.mean(0) - mean) < 4 * np.sqrt(np.diag(cov) / len(draws)))
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.25 * np.abs(cov).max())
    assert len({tuple(d) for d in draws}) == len(draws)  # each seed its own draw


def test_a_model_without_missing_values_refuses_to_impute(linear_gaussian_vae, linear_model):
    W, b, sigma, X, _ = linear_model
    vae = linear_gaussian_vae(W, b, sigma)
    with pytest.raises(ConfigError, match="fit it with missing='ignore'"):
        vae.impute(X)


def _digits_with_holes(fraction=0.5, seed=0):
    X, _ = load_digits(return_X_y=True)
    X = X / 16
    mask = np.random.default_rng(seed).random(X.shape) < fraction
    return X, np.where(mask, np.nan, X), mask


def _small_imputer(**params) -> vaekit.VAEImputer:
    vae = vaekit.VAE(
        4,
        hidden_sizes=(64,),
        likelihood="gaussian",
        sigma="per_feature",
        standardize=True,
        max_epochs=params.pop("max_epochs", 3),
        verbose=False,
    )
    return vaekit.VAEImputer(vae, n_importance_samples=50, random_state=0, **params)


def test_the_imputer_beats_the_column_means_on_digits():
    X, X_missing, mask = _digits_with_holes()
    filled = _small_imputer(max_epochs=200).fit_transform(X_missing)
    means = SimpleImputer().fit_transform(X_missing)
    rmse = [np.sqrt(np.mean((A - X)[mask] ** 2)) for A in (filled, means)]
    assert rmse[0] < 0.85 * rmse[1]
    np.testing.assert_array_equal(filled[~mask], X[~mask])


def test_the_imputer_passes_check_estimator():
    check_estimator(_small_imputer(max_epochs=2))


def test_a_placeholder_other_than_nan_is_imputed():
    X, X_missing, mask = _digits_with_holes(0.3)
    placeholder = np.where(mask, -1.0, X)
    with_nan = _small_imputer().fit(X_missing).transform(X_missing)
    with_placeholder = _small_imputer(missing_values=-1).fit(placeholder).transform(placeholder)
    np.testing.assert_allclose(with_placeholder, with_nan)
    with pytest.raises(DataError, match="holds NaN, but missing_values=-1"):
        _small_imputer(missing_values=-1).fit(X_missing)


def test_rows_with_nothing_observed_are_refused_in_one_sentence():
    _, X_missing, _ = _digits_with_holes(0.3)
    X_missing[7] = np.nan
    with pytest.raises(DataError) as info:
        _small_imputer().fit(X_missing)
    assert str(info.value) == (
        "X has 1 row with an infinite value or no observed value (the first at row index 7); a "
        "row needs an observed value and no infinity, so drop or fix them."
    )


def test_a_saved_imputer_model_imputes_the_same_after_loading(tmp_path):
    _, X_missing, _ = _digits_with_holes(0.3)
    imputer = _small_imputer().fit(X_missing)
    loaded = vaekit.load(imputer.estimator_.save(tmp_path / "model"))
    again = vaekit.VAEImputer.from_fitted(loaded, n_importance_samples=50)
    np.testing.assert_allclose(again.transform(X_missing[:30]), imputer.transform(X_missing[:30]))
    with pytest.raises(ConfigError, match="trained with missing='ignore'"):
        vaekit.VAEImputer.from_fitted(vaekit.VAE(max_epochs=1, verbose=False).fit(np.ones((20, 3))))


def test_a_fit_with_missing_values_resumes_bit_identically(tmp_path):
    _, X_missing, _ = _digits_with_holes(0.3)
    params = dict(
        n_components=2,
        hidden_sizes=(16,),
        missing="ignore",
        max_epochs=5,
        random_state=0,
        verbose=False,
    )
    assert_resume_is_bit_identical(params, X_missing[:200], None, tmp_path)


def test_a_table_with_empty_cells_trains_and_is_imputed_from_the_shell(tmp_path):
    X, X_missing, mask = _digits_with_holes(0.3)
    X_missing, mask, X = X_missing[:300, :10], mask[:300, :10], X[:300, :10]
    header = ",".join(f"p{j}" for j in range(10))
    markers = itertools.cycle(["", "NA", "nan", "N/A", "null"])  # what spreadsheets and R write
    labels = [str(i % 3) if i != 7 else "" for i in range(300)]  # row 7's label is unknown
    lines = [
        ",".join([*(next(markers) if np.isnan(v) else f"{v:.6f}" for v in row), label])
        for row, label in zip(X_missing, labels, strict=True)
    ]
    text = header + ",label\n" + "\n".join(lines) + "\n"
    (tmp_path / "holes.csv").write_text(text)
    vaekit_cli = [sys.executable, "-m", "vaekit"]
    train = ["train", str(tmp_path / "holes.csv"), "--missing", "ignore", "--max-epochs", "30"]
    train += ["--n-components", "2", "--out", str(tmp_path / "run")]
    done = subprocess.run(vaekit_cli + train, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "report.html").is_file()  # its pictures show the rows imputed
    impute = ["impute", str(tmp_path / "run"), "--data", str(tmp_path / "holes.csv")]
    impute += ["--samples", "100", "--out", str(tmp_path / "filled.csv")]
    done = subprocess.run(vaekit_cli + impute, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"filled {int(mask.sum())} missing values" in done.stdout
    table = np.loadtxt(tmp_path / "filled.csv", delimiter=",", skiprows=1)
    assert (tmp_path / "filled.csv").read_text().startswith(header + ",label\n")
    np.testing.assert_array_equal(table[:, -1], [-1 if not c else int(c) for c in labels])
    table = table[:, :-1]
    np.testing.assert_allclose(table[~mask], X[~mask], atol=1e-6)
    assert np.isfinite(table).all()
