"""Linear models against closed forms: probabilistic PCA, and the linear VAE that reaches it.

A VAE with affine encoder and decoder and a Gaussian likelihood with one shared sigma is
probabilistic PCA; trained on Gaussian data it must land on Tipping & Bishop's closed-form
maximum-likelihood solution. A linear autoencoder must find the principal subspace.
"""

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from sklearn.decomposition import PCA
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

import vaekit
from vaekit.baselines import (
    BASELINES,
    FactorAnalysis,
    ProbabilisticPCA,
    factor_analysis,
    linear_vae_parameters,
    make_baseline,
    principal_angles,
)
from vaekit.exceptions import ConfigError, DataError

D, Q = 10, 3
SCALES = (3.0, 2.0, 1.4)  # true W column norms; orthogonal: eigenvalues 9.25, 4.25, 2.21, 0.25...


def true_w(rng, orthogonal=True):
    """A (D, Q) W whose columns have norms SCALES: orthogonal, or along random directions."""
    if orthogonal:
        basis, _ = np.linalg.qr(rng.standard_normal((D, D)))
        return basis[:, :Q] * np.array(SCALES)
    W = rng.standard_normal((D, Q))
    return W * (np.array(SCALES) / np.linalg.norm(W, axis=0))


def gaussian_data(n, noise=0.5, seed=0, orthogonal=True):
    """Rows of x = W z + mu + noise * eps, with W = true_w(rng, orthogonal)."""
    rng = np.random.default_rng(seed)
    W = true_w(rng, orthogonal)
    mu = rng.normal(0.0, 2.0, D)
    return rng.standard_normal((n, Q)) @ W.T + noise * rng.standard_normal((n, D)) + mu


@pytest.fixture(scope="module")
def split():
    X = gaussian_data(6000)
    return X[:4000], X[4000:]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small matrices: one thread is faster, and immune to a busy machine's other jobs (with
    two threads on two loaded cores, factor analysis here took 10 s instead of 0.05 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


def column_cosines(W):
    """The largest |cosine| between two different columns of W (0 for orthogonal columns)."""
    norms = np.linalg.norm(W, axis=0)
    return np.abs(W.T @ W / np.outer(norms, norms) - np.eye(W.shape[1])).max()


def numpy_eigen(X, ddof):
    """The sample covariance's eigenvalues (descending) and eigenvectors, straight from numpy."""
    values, vectors = np.linalg.eigh(np.cov(X, rowvar=False, ddof=ddof))
    return values[::-1], vectors[:, ::-1]


# ---- probabilistic PCA in closed form ------------------------------------------------------


def test_ppca_score_samples_equals_sklearn_pca(split):
    X_train, X_test = split
    ppca, pca = ProbabilisticPCA(Q).fit(X_train), PCA(Q).fit(X_train)
    np.testing.assert_allclose(ppca.score_samples(X_test), pca.score_samples(X_test), atol=1e-8)
    assert ppca.score(X_test) == pytest.approx(pca.score(X_test), abs=1e-9)
    np.testing.assert_allclose(ppca.covariance_, pca.get_covariance(), atol=1e-10)
    assert ppca.noise_variance_ == pytest.approx(pca.noise_variance_, rel=1e-10)
    np.testing.assert_allclose(ppca.explained_variance_, pca.explained_variance_, rtol=1e-10)
    assert principal_angles(ppca.components_.T, pca.components_.T).max() < 1e-6


def test_ppca_score_samples_is_the_gaussian_density(split):
    X_train, X_test = split
    ppca = ProbabilisticPCA(Q).fit(X_train)
    exact = scipy.stats.multivariate_normal(ppca.mean_, ppca.covariance_).logpdf(X_test)
    np.testing.assert_allclose(ppca.score_samples(X_test), exact, atol=1e-9)


@pytest.mark.parametrize("ddof", [0, 1])
def test_ppca_is_tipping_bishop_closed_form(split, ddof):
    X_train, _ = split
    ppca = ProbabilisticPCA(Q, ddof=ddof).fit(X_train)
    eigenvalues, eigenvectors = numpy_eigen(X_train, ddof)
    sigma2 = eigenvalues[Q:].mean()
    assert ppca.noise_variance_ == pytest.approx(sigma2, rel=1e-10)
    np.testing.assert_allclose(ppca.mean_, X_train.mean(0), atol=1e-12)
    np.testing.assert_allclose(ppca.loadings_norms_, np.sqrt(eigenvalues[:Q] - sigma2), rtol=1e-9)
    W = ppca.components_.T
    # W = U_q (Lambda_q - sigma^2 I)^(1/2): orthogonal columns along the leading eigenvectors.
    np.testing.assert_allclose(W.T @ W, np.diag(eigenvalues[:Q] - sigma2), atol=1e-9)
    assert principal_angles(W, eigenvectors[:, :Q]).max() < 1e-6
    np.testing.assert_allclose(W @ W.T + sigma2 * np.eye(D), ppca.covariance_, atol=1e-12)


def test_ppca_with_ddof_0_maximises_the_training_likelihood(split):
    X_train, _ = split
    ppca = ProbabilisticPCA(Q, ddof=0).fit(X_train)
    best = ppca.score(X_train)
    W, mu, sigma2 = ppca.components_.T, ppca.mean_, ppca.noise_variance_
    rng = np.random.default_rng(1)
    for _ in range(5):
        step = 1e-3 * rng.standard_normal(W.shape)
        for sign in (1, -1):
            moved = ProbabilisticPCA.from_parameters(W + sign * step, mu, sigma2)
            assert moved.score(X_train) < best
    for factor in (0.99, 1.01):
        assert ProbabilisticPCA.from_parameters(W, mu, factor * sigma2).score(X_train) < best
    assert ProbabilisticPCA.from_parameters(W, mu + 0.01, sigma2).score(X_train) < best
    # W is identified only up to a rotation R: W R gives the same density.
    R, _ = np.linalg.qr(rng.standard_normal((Q, Q)))
    rotated = ProbabilisticPCA.from_parameters(W @ R, mu, sigma2)
    assert rotated.score(X_train) == pytest.approx(best, abs=1e-10)
    # The default (ddof=1, scikit-learn's) differs from it by a factor n / (n - 1) only.
    n = X_train.shape[0]
    ddof1 = ProbabilisticPCA(Q).fit(X_train)
    assert ddof1.noise_variance_ == pytest.approx(sigma2 * n / (n - 1), rel=1e-10)
    assert ddof1.score(X_train) == pytest.approx(best, abs=1e-6)


def test_ppca_transform_is_the_posterior_mean(split):
    X_train, X_test = split
    ppca = ProbabilisticPCA(Q).fit(X_train)
    W, mu, C = ppca.components_.T, ppca.mean_, ppca.covariance_
    # E[z|x] = Cov(z, x) Cov(x)^-1 (x - mu) = W^T C^-1 (x - mu), by Gaussian conditioning.
    expected = np.linalg.solve(C, (X_test - mu).T).T @ W
    np.testing.assert_allclose(ppca.transform(X_test), expected, atol=1e-10)
    Z = np.random.default_rng(0).standard_normal((5, Q))
    np.testing.assert_allclose(ppca.inverse_transform(Z), Z @ W.T + mu, atol=1e-12)
    n = 100_000
    samples = ppca.sample(n, random_state=0)
    np.testing.assert_array_equal(ppca.sample(3, random_state=1), ppca.sample(3, random_state=1))
    variances = np.diag(C)
    assert (np.abs(samples.mean(0) - mu) < 5 * np.sqrt(variances / n)).all()
    # The standard error of a sample covariance entry is sqrt((C_ii C_jj + C_ij^2) / n).
    standard_errors = np.sqrt((np.outer(variances, variances) + C**2) / n)
    assert (np.abs(np.cov(samples, rowvar=False) - C) < 5 * standard_errors).all()


def test_ppca_component_limits(split):
    X_train, X_test = split
    with pytest.raises(ConfigError, match="n_components below the number of features"):
        ProbabilisticPCA(D).fit(X_train)
    with pytest.raises(ConfigError, match="positive integer"):
        ProbabilisticPCA(0).fit(X_train)
    most = ProbabilisticPCA(D - 1).fit(X_train)
    eigenvalues, _ = numpy_eigen(X_train, 1)
    assert most.noise_variance_ == pytest.approx(eigenvalues[-1], rel=1e-9)
    np.testing.assert_allclose(
        most.score_samples(X_test), PCA(D - 1).fit(X_train).score_samples(X_test), atol=1e-8
    )
    flat = np.random.default_rng(0).standard_normal((50, 2)) @ np.ones((2, D))  # rank 1
    with pytest.raises(DataError, match="subspace"):
        ProbabilisticPCA(1).fit(flat)


@parametrize_with_checks([ProbabilisticPCA(n_components=1)])
def test_ppca_passes_sklearn_checks(estimator, check):
    check(estimator)


def test_principal_angles_match_scipy():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((D, 3)), rng.standard_normal((D, 5))
    expected = np.degrees(scipy.linalg.subspace_angles(A, B))
    np.testing.assert_allclose(principal_angles(A, B), expected, atol=1e-10)
    np.testing.assert_allclose(principal_angles(B, A), expected, atol=1e-10)
    # The same span, mixed and rescaled, is at angle zero, and a tiny tilt is resolved exactly.
    assert principal_angles(A, A @ rng.standard_normal((3, 3))).max() < 1e-6
    tilted = A.copy()
    basis, _ = np.linalg.qr(A)
    outside = rng.standard_normal(D)
    outside -= basis @ (basis.T @ outside)
    tilted[:, 0] = np.cos(1e-7) * basis[:, 0] + np.sin(1e-7) * outside / np.linalg.norm(outside)
    angles = principal_angles(np.column_stack([tilted[:, 0], basis[:, 1:]]), basis)
    assert angles[0] == pytest.approx(np.degrees(1e-7), rel=1e-6)
    assert principal_angles(np.eye(D)[:, :2], np.eye(D)[:, 2:4]) == pytest.approx([90, 90])


# ---- the linear VAE reaches the probabilistic-PCA optimum ----------------------------------

#: Adam on batches of 500 for 400 epochs with a cosine-annealed 5e-2: ~3200 steps, a few seconds.
TRAINING = dict(
    batch_size=500,
    learning_rate=5e-2,
    learning_rate_schedule="cosine",
    max_epochs=400,
    patience=None,
    validation_fraction=0,
    random_state=0,
    verbose=False,
)


@pytest.fixture(scope="module")
def linear_vae(split):
    X_train, _ = split
    vae = vaekit.VAE(
        Q, architecture="linear", likelihood="gaussian", sigma="shared", n_samples=10, **TRAINING
    )
    return vae.fit(X_train)


def assert_at_the_ppca_optimum(vae, X_train):
    optimum = ProbabilisticPCA(Q, ddof=0).fit(X_train)  # what maximising the likelihood gives
    learned = linear_vae_parameters(vae)
    W = learned["W"]
    assert learned["noise_variance"] == pytest.approx(optimum.noise_variance_, rel=0.02)
    singular_values = np.linalg.svd(W, compute_uv=False)
    np.testing.assert_allclose(singular_values, optimum.loadings_norms_, rtol=0.02)
    assert principal_angles(W, optimum.components_.T).max() < 2.0
    np.testing.assert_allclose(learned["mean"], optimum.mean_, atol=0.02)
    # The diagonal posterior makes the ELBO optimum the one with orthogonal columns of W.
    assert column_cosines(W) < 0.02


def test_linear_vae_reaches_the_ppca_parameters(split, linear_vae):
    assert_at_the_ppca_optimum(linear_vae, split[0])


def test_linear_vae_reaches_the_ppca_parameters_from_a_general_w():
    """The true W's orthogonality plays no part: x ~ N(mu, W W^T + sigma^2 I) depends on W only
    through W W^T, so the VAE's decoder ends with orthogonal columns all the same."""
    assert column_cosines(true_w(np.random.default_rng(0), orthogonal=False)) > 0.4
    X = gaussian_data(4000, orthogonal=False)
    vae = vaekit.VAE(
        Q, architecture="linear", likelihood="gaussian", sigma="shared", n_samples=10, **TRAINING
    ).fit(X)
    assert_at_the_ppca_optimum(vae, X)
    # Its diagonal q(z|x) is then the true posterior: the ELBO is the exact log-likelihood.
    own = ProbabilisticPCA.from_parameters(**linear_vae_parameters(vae))
    assert vae.elbo(X, n_samples=100).mean() == pytest.approx(own.score(X), abs=0.01)


def test_linear_vae_log_likelihood_is_the_exact_ppca_one(split, linear_vae):
    X_train, X_test = split
    exact = PCA(Q).fit(X_train).score(X_test)
    rows = linear_vae.score_samples(X_test, n_samples=1000)
    assert linear_vae.score(X_test, n_samples=1000) == pytest.approx(rows.mean(), abs=1e-12)
    assert abs(rows.mean() - exact) < 0.005 * abs(exact)
    # Row by row against the exact density: within 3 standard errors plus 0.01 nats.
    difference = rows - ProbabilisticPCA(Q).fit(X_train).score_samples(X_test)
    standard_error = difference.std(ddof=1) / np.sqrt(len(difference))
    assert abs(difference.mean()) < 3 * standard_error + 0.01
    # Its own model N(mu, W W^T + sigma^2 I), in closed form: the estimate is exact when q(z|x)
    # is the true posterior, which for a linear Gaussian model is diagonal at the optimum.
    own = ProbabilisticPCA.from_parameters(**linear_vae_parameters(linear_vae))
    gap = own.score_samples(X_test) - rows
    assert gap.mean() > -3 * gap.std(ddof=1) / np.sqrt(len(gap))  # a lower bound on average
    assert gap.mean() < 1e-3
    assert linear_vae.elbo(X_test, n_samples=100).mean() == pytest.approx(rows.mean(), abs=0.01)


def test_linear_vae_parameters_refuses_other_models(split):
    X_train, _ = split
    mlp = vaekit.VAE(Q, hidden_sizes=(4,), max_epochs=1, random_state=0, verbose=False)
    with pytest.raises(ConfigError, match="architecture='linear'"):
        linear_vae_parameters(mlp.fit(X_train[:200]))


# ---- the linear autoencoder finds the principal subspace ------------------------------------


def test_linear_autoencoder_spans_the_pca_subspace(split):
    X_train, _ = split
    ae = vaekit.Autoencoder(
        Q, architecture="linear", likelihood="gaussian", sigma="fixed", **TRAINING
    ).fit(X_train)
    W = linear_vae_parameters(ae)["W"]
    top = PCA(Q).fit(X_train).components_.T
    assert principal_angles(W, top).max() < 2.0
    random_subspace = np.random.default_rng(0).standard_normal((D, Q))
    assert principal_angles(W, random_subspace).max() > 10.0
    assert principal_angles(W, PCA(Q + 1).fit(X_train).components_.T[:, 1:]).max() > 10.0


# ---- factor analysis --------------------------------------------------------------------------


def test_factor_analysis_beats_ppca_only_when_the_noise_differs_by_feature():
    registry = make_baseline("factor_analysis", Q, random_state=0)
    assert (
        isinstance(registry, FactorAnalysis) and BASELINES["probabilistic_pca"] is ProbabilisticPCA
    )
    with pytest.raises(ConfigError, match="Unknown baseline"):
        make_baseline("ica", Q)
    for noise, better in ((np.linspace(0.2, 1.5, D), True), (0.5, False)):
        X = gaussian_data(6000, noise=noise, seed=1)
        X_train, X_test = X[:4000], X[4000:]
        fa = factor_analysis(Q, random_state=0).fit(X_train)
        ppca = ProbabilisticPCA(Q).fit(X_train)
        difference = fa.score_samples(X_test) - ppca.score_samples(X_test)
        standard_error = difference.std(ddof=1) / np.sqrt(len(difference))
        if better:
            assert difference.mean() > 0.5 and difference.mean() > 10 * standard_error
        else:
            assert abs(difference.mean()) < 0.01
