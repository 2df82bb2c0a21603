"""Linear baselines a VAE generalises: probabilistic PCA in closed form, and factor analysis.

A VAE with an affine encoder and decoder and a Gaussian likelihood with one shared sigma is
probabilistic PCA (Tipping & Bishop 1999); its ELBO optimum is the closed-form maximum-likelihood
solution below. ``principal_angles`` and ``linear_vae_parameters`` compare a trained linear model
with it. See docs/linear.md.
"""

from __future__ import annotations

import copy
import math
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.decomposition import FactorAnalysis
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .exceptions import ConfigError, DataError

__all__ = [
    "BASELINES",
    "FactorAnalysis",
    "ProbabilisticPCA",
    "factor_analysis",
    "linear_vae_parameters",
    "make_baseline",
    "principal_angles",
]

LOG_2PI = math.log(2.0 * math.pi)


def _is_int(value, low: int) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= low


class ProbabilisticPCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Probabilistic PCA fitted in closed form (Tipping & Bishop 1999).

    The model is z ~ N(0, I_q), x | z ~ N(W z + mu, sigma^2 I_D), so x ~ N(mu, W W^T + sigma^2 I).
    With S = U diag(lambda) U^T the eigendecomposition of the sample covariance (lambda
    descending), the maximum-likelihood solution is mu = the sample mean,
    sigma^2 = mean(lambda_{q+1}, ..., lambda_D) and W = U_q (Lambda_q - sigma^2 I)^(1/2) R,
    here with R = I, so the columns of W are orthogonal.

    Parameters
    ----------
    n_components : int, default=2
        q, the latent dimension; at most ``n_features - 1``.
    ddof : int, default=1
        S = X_c^T X_c / (n_samples - ddof). The default, 1, is scikit-learn's convention (its
        ``PCA.explained_variance_``), so ``score_samples`` equals ``PCA(q).score_samples`` and
        ``covariance_`` equals ``PCA(q).get_covariance()``. ``ddof=0`` gives the exact maximum
        of the training log-likelihood; the two differ by a factor n / (n - 1) in the variances.
        (With n_samples <= n_features the two also differ in sigma^2: scikit-learn averages
        eigenvalues q+1 to n_samples only; this class averages all D - q discarded ones.)

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    components_ : ndarray of shape (n_components, n_features)
        W^T: row i is sqrt(lambda_i - sigma^2) times the i-th eigenvector (like
        ``FactorAnalysis.components_``; unlike ``PCA.components_``, whose rows have unit norm).
    explained_variance_ : ndarray of shape (n_components,)
        lambda_1 >= ... >= lambda_q, the leading eigenvalues of S (and of ``covariance_``).
    noise_variance_ : float
        sigma^2, the mean of the n_features - n_components discarded eigenvalues.
    loadings_norms_ : ndarray of shape (n_components,)
        sqrt(lambda_i - sigma^2), descending: the singular values of W, which for the fitted W
        (orthogonal columns) are also its column norms.
    covariance_ : ndarray of shape (n_features, n_features)
        W W^T + sigma^2 I, the model covariance of x.
    """

    def __init__(self, n_components: int = 2, *, ddof: int = 1):
        self.n_components = n_components
        self.ddof = ddof

    def fit(self, X, y=None):
        """Fit the closed-form maximum-likelihood solution to the rows of X. Returns self."""
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        n, d = X.shape
        if not _is_int(self.n_components, 1):
            raise ConfigError("n_components must be a positive integer.")
        q = self.n_components
        if q >= d:
            raise ConfigError(
                f"Probabilistic PCA needs n_components below the number of features, to leave "
                f"room for the noise; got n_components={q} with n_features={d}, so use at most "
                f"{d - 1}."
            )
        if not (_is_int(self.ddof, 0) and self.ddof < n):
            raise ConfigError("ddof must be an integer >= 0 and below the number of rows.")
        mean = X.mean(axis=0)
        Xc = X - mean
        eigenvalues, eigenvectors = np.linalg.eigh(Xc.T @ Xc / (n - self.ddof))
        eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
        eigenvalues = np.maximum(eigenvalues, 0.0)  # round-off can make zero slightly negative
        sigma2 = float(eigenvalues[q:].mean())
        if not sigma2 > 1e-12 * max(float(eigenvalues[0]), np.finfo(float).tiny):
            raise DataError(
                f"The data lie in a subspace of at most {q} dimensions, so the noise variance is "
                "zero and the density is degenerate; use fewer components or add noise."
            )
        U = eigenvectors[:, :q]
        U = U * np.where(U[np.abs(U).argmax(axis=0), range(q)] < 0, -1.0, 1.0)  # fixed signs
        W = U * np.sqrt(np.maximum(eigenvalues[:q] - sigma2, 0.0))
        return self._set_parameters(W, mean, sigma2)

    @classmethod
    def from_parameters(cls, W, mean, noise_variance: float) -> ProbabilisticPCA:
        """The model N(mean, W W^T + noise_variance I) for given parameters, e.g. a linear VAE's.

        W has shape (n_features, n_components) and need not have orthogonal columns.
        """
        W = np.asarray(W, dtype=np.float64)
        mean = np.asarray(mean, dtype=np.float64)
        if W.ndim != 2 or mean.shape != (W.shape[0],) or W.shape[1] >= W.shape[0]:
            raise ConfigError(
                "W must have shape (n_features, n_components) with n_components < n_features, "
                f"and mean shape (n_features,); got {W.shape} and {mean.shape}."
            )
        if not float(noise_variance) > 0:
            raise ConfigError("noise_variance must be a positive number.")
        model = cls(n_components=W.shape[1])
        model.n_features_in_ = W.shape[0]
        return model._set_parameters(W, mean, float(noise_variance))

    def _set_parameters(self, W: np.ndarray, mean: np.ndarray, sigma2: float):
        singular_values = np.linalg.svd(W, compute_uv=False)
        self.mean_ = mean
        self.components_ = W.T.copy()
        self.noise_variance_ = sigma2
        self.loadings_norms_ = singular_values
        self.explained_variance_ = singular_values**2 + sigma2
        self.covariance_ = W @ W.T + sigma2 * np.eye(W.shape[0])
        return self

    @property
    def _n_features_out(self) -> int:
        return self.n_components

    def _centred(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype=np.float64, reset=False) - self.mean_

    def _posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """W (D, q) and the Cholesky factor of M = W^T W + sigma^2 I (q, q)."""
        W = self.components_.T
        M = W.T @ W + self.noise_variance_ * np.eye(W.shape[1])
        return W, np.linalg.cholesky(M)

    def score_samples(self, X) -> np.ndarray:
        """The exact log-density log N(x; mu, W W^T + sigma^2 I) of each row, in nats.

        Computed without forming the D x D covariance, and as a sum of squares, so nothing
        cancels: with m = M^{-1} W^T (x - mu), (x - mu)^T C^{-1} (x - mu) =
        |x - mu - W m|^2 / sigma^2 + |m|^2, and log|C| = (D - q) log sigma^2 + log|M|.
        """
        Xc = self._centred(X)
        W, L = self._posterior()
        sigma2 = self.noise_variance_
        d, q = W.shape
        m = _cholesky_solve(L, (Xc @ W).T).T
        mahalanobis = ((Xc - m @ W.T) ** 2).sum(axis=1) / sigma2 + (m**2).sum(axis=1)
        log_det = (d - q) * math.log(sigma2) + 2.0 * np.log(np.diag(L)).sum()
        return -0.5 * (mahalanobis + log_det + d * LOG_2PI)

    def score(self, X, y=None) -> float:
        """The mean log-density of the rows of X, in nats."""
        return float(np.mean(self.score_samples(X)))

    def transform(self, X) -> np.ndarray:
        """The posterior mean E[z | x] = M^{-1} W^T (x - mu): (n_samples, n_components)."""
        Xc = self._centred(X)
        W, L = self._posterior()
        return _cholesky_solve(L, (Xc @ W).T).T

    def inverse_transform(self, X) -> np.ndarray:
        """The mean of p(x | z) = W z + mu for each row of latent codes."""
        check_is_fitted(self)
        Z = np.asarray(X, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[1] != self.n_components:
            raise DataError(
                f"Latent codes must be a 2-D array with {self.n_components} columns; "
                f"got shape {Z.shape}."
            )
        return Z @ self.components_ + self.mean_

    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw rows x = W z + mu + sigma * eps with z, eps standard normal."""
        check_is_fitted(self)
        if not _is_int(n_samples, 1):
            raise ConfigError("n_samples must be a positive integer.")
        rng = check_random_state(random_state)
        z = rng.standard_normal((n_samples, self.n_components))
        noise = rng.standard_normal((n_samples, self.mean_.shape[0]))
        return self.inverse_transform(z) + math.sqrt(self.noise_variance_) * noise


def _cholesky_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve (L L^T) X = B for a lower-triangular L."""
    return np.linalg.solve(L.T, np.linalg.solve(L, B))


def factor_analysis(n_components: int, **kwargs) -> FactorAnalysis:
    """scikit-learn's FactorAnalysis: probabilistic PCA with one noise variance per feature."""
    return FactorAnalysis(n_components=n_components, **kwargs)


#: Linear baselines by name; each takes ``n_components`` and has score_samples and transform.
BASELINES: dict[str, type[BaseEstimator]] = {
    "probabilistic_pca": ProbabilisticPCA,
    "factor_analysis": FactorAnalysis,
}


def make_baseline(name: str, n_components: int, **kwargs) -> BaseEstimator:
    """An unfitted baseline from its registered name."""
    if name not in BASELINES:
        raise ConfigError(f"Unknown baseline {name!r}; choose one of {', '.join(BASELINES)}.")
    return BASELINES[name](n_components=n_components, **kwargs)


def _orthonormal_basis(A: np.ndarray) -> np.ndarray:
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    tol = max(A.shape) * np.finfo(float).eps * (s[0] if s.size else 0.0)
    return U[:, s > tol]


def principal_angles(A, B) -> np.ndarray:
    """Principal angles in degrees between the column spaces of A and B, largest first.

    Cosines come from the singular values of Q_A^T Q_B, sines from the part of the smaller
    space's basis outside the larger space; each angle is taken from whichever is accurate
    (arcsin below 45 degrees, arccos above), as in Knyazev & Argentati (2002).
    """
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[0]:
        raise DataError(
            f"A and B must be 2-D with the same number of rows; got {A.shape} and {B.shape}."
        )
    QA, QB = _orthonormal_basis(A), _orthonormal_basis(B)
    if min(QA.shape[1], QB.shape[1]) == 0:
        return np.zeros(0)
    if QA.shape[1] < QB.shape[1]:
        QA, QB = QB, QA  # QB spans the smaller space
    cross = QA.T @ QB
    cosines = np.linalg.svd(cross, compute_uv=False)[::-1]  # ascending: largest angle first
    sines = np.linalg.svd(QB - QA @ cross, compute_uv=False)  # descending: largest angle first
    angles = np.where(
        cosines**2 <= 0.5,
        np.arccos(np.clip(cosines, -1.0, 1.0)),
        np.arcsin(np.clip(sines, -1.0, 1.0)),
    )
    return np.degrees(angles)


def linear_vae_parameters(model) -> dict[str, np.ndarray | float]:
    """W, mu and sigma^2 of a fitted linear Gaussian VAE or autoencoder, as float64.

    ``model`` is a ``vaekit.VAE`` (or ``vaekit.Autoencoder``) fitted with
    ``architecture="linear"``, ``likelihood="gaussian"``, ``sigma="shared"`` (or ``"fixed"``)
    and ``standardize=False``: its decoder is x = W z + mu with noise sigma^2 I, a probabilistic
    PCA. Returns {"W": (n_features, n_components), "mean": (n_features,), "noise_variance": float}.
    """
    check_is_fitted(model)
    if (
        model.encoder is not None
        or model.architecture != "linear"
        or model.likelihood != "gaussian"
        or model.sigma not in ("shared", "fixed")
        or model.standardize
    ):
        raise ConfigError(
            "linear_vae_parameters needs a model fitted with architecture='linear', "
            "likelihood='gaussian', sigma='shared' or 'fixed', and standardize=False."
        )
    module = copy.deepcopy(model.module_).double()  # as the estimators' inference sees it
    with torch.no_grad():
        decoder = module.decoder
        sigma = float(module.likelihood.sigma(decoder.weight))
        return {
            "W": decoder.weight.numpy().copy(),
            "mean": decoder.bias.numpy().copy(),
            "noise_variance": sigma**2,
        }
