"""Anomaly detection with a VAE or an autoencoder, in scikit-learn's outlier-detector shape.

A row's score is how well the model explains it (higher = more normal): the importance-sampled
log p(x), the ELBO, or minus the squared reconstruction error. ``offset_`` is the
``100 * contamination`` percentile of the scores of the reference rows (the training rows in
``fit``), so about that fraction of them is flagged.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted, validate_data

from ..exceptions import ConfigError, DataError
from .base import LatentEstimator, require, seeded_clone
from .params import is_int
from .vae import VAE

SCORE_TYPES = ("log_likelihood", "elbo", "reconstruction")


class AnomalyDetector(OutlierMixin, BaseEstimator):
    """Flag rows that a VAE (or an autoencoder) trained on normal data explains badly.

    Parameters
    ----------
    estimator : VAE or Autoencoder, default=None
        An unfitted template; ``fit`` trains a clone of it (the template is never fitted).
        None means ``VAE(verbose=False)``.
    score_type : {"log_likelihood", "elbo", "reconstruction"}, default="log_likelihood"
        The score of a row: its importance-sampled log p(x) in nats (VAE), its ELBO in nats
        (VAE), or minus its squared reconstruction error summed over features (VAE or
        Autoencoder).
    contamination : float, default=0.1
        The expected fraction of outliers, in (0, 0.5]: ``offset_`` is this quantile of the
        training scores.
    n_importance_samples : int, default=1000
        K for ``score_type="log_likelihood"``.
    random_state : int, RandomState or None, default=None
        Seeds the clone (its weights, training and scoring noise). None keeps the template's
        ``random_state``, or draws one seed if the template has none, so that a fitted detector
        always gives a row the same score.

    Attributes
    ----------
    estimator_ : VAE or Autoencoder
        The fitted model.
    offset_ : float
        The ``100 * contamination`` percentile of the reference scores; ``decision_function``
        is ``score_samples - offset_``.
    reference_scores_ : ndarray of shape (n_reference,)
        The scores ``offset_`` was taken from: the training rows in ``fit``, ``X_reference``
        in ``from_fitted``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    """

    def __init__(
        self,
        estimator: LatentEstimator | None = None,
        *,
        score_type: str = "log_likelihood",
        contamination: float = 0.1,
        n_importance_samples: int = 1000,
        random_state=None,
    ):
        self.estimator = estimator
        self.score_type = score_type
        self.contamination = contamination
        self.n_importance_samples = n_importance_samples
        self.random_state = random_state

    # ---- set-up -------------------------------------------------------------------------
    def _check_params(self, estimator) -> None:
        require(
            isinstance(estimator, LatentEstimator),
            "estimator must be a vaekit VAE or Autoencoder (or None for a default VAE).",
        )
        require(
            self.score_type in SCORE_TYPES,
            "score_type must be 'log_likelihood', 'elbo' or 'reconstruction'.",
        )
        require(
            self.score_type == "reconstruction" or estimator.density_model,
            f"the {self.score_type} score needs a VAE; "
            "use score_type='reconstruction' for an autoencoder.",
        )
        require(
            isinstance(self.contamination, Real)
            and not isinstance(self.contamination, bool)
            and 0 < self.contamination <= 0.5,
            "contamination must be a number in (0, 0.5].",
        )
        require(
            is_int(self.n_importance_samples, 1),
            "n_importance_samples must be a positive integer.",
        )

    def _validate(self, X, reset: bool) -> np.ndarray:
        try:
            return validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        except ValueError as err:  # scikit-learn's sentence, as vaekit's own error
            raise DataError(str(err)) from None

    def _template(self) -> LatentEstimator:
        return VAE(verbose=False) if self.estimator is None else self.estimator

    # ---- fitting --------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train a clone of ``estimator`` on the rows of X (y is ignored) and set ``offset_``.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            Rows assumed mostly normal.
        y : None
            Ignored, as in scikit-learn's outlier detectors.

        Returns
        -------
        self
        """
        self._fit(X)
        return self

    def fit_predict(self, X, y=None) -> np.ndarray:
        """``fit(X).predict(X)``, reusing the training scores: +1 inlier, -1 outlier.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            Rows assumed mostly normal.
        y : None
            Ignored.

        Returns
        -------
        ndarray of shape (n,)
            +1 for the training rows scored at or above ``offset_``, -1 for the others.
        """
        return self._predict_from(self._fit(X))

    def _fit(self, X) -> np.ndarray:
        template = self._template()
        self._check_params(template)
        X = self._validate(X, reset=True)
        self.estimator_ = seeded_clone(template, self.random_state).fit(X)
        self.reference_scores_ = self._scores(X)
        self.offset_ = float(np.percentile(self.reference_scores_, 100 * self.contamination))
        return self.reference_scores_

    @classmethod
    def from_fitted(
        cls,
        fitted_estimator: LatentEstimator,
        X_reference,
        *,
        score_type: str = "log_likelihood",
        contamination: float = 0.1,
        n_importance_samples: int = 1000,
    ) -> AnomalyDetector:
        """A detector around an already trained model; no training.

        ``estimator_`` is ``fitted_estimator`` itself (also kept as the ``estimator``
        parameter, so a refit trains a fresh clone), and ``offset_`` is the
        ``100 * contamination`` percentile of the scores of ``X_reference`` (rows assumed
        mostly normal, e.g. held-out rows of the training data). Scores are reproducible when
        the model has an integer ``random_state``.

        Parameters
        ----------
        fitted_estimator : VAE or Autoencoder
            A fitted model (``vaekit.load(folder)``, say).
        X_reference : array-like of shape (n_reference, n_features)
            Rows assumed mostly normal, from which ``offset_`` is taken.
        score_type : {"log_likelihood", "elbo", "reconstruction"}, default="log_likelihood"
            The score of a row, as in ``AnomalyDetector``.
        contamination : float, default=0.1
            The expected fraction of outliers, in (0, 0.5].
        n_importance_samples : int, default=1000
            K for ``score_type="log_likelihood"``.

        Returns
        -------
        AnomalyDetector
            A fitted detector.
        """
        detector = cls(
            fitted_estimator,
            score_type=score_type,
            contamination=contamination,
            n_importance_samples=n_importance_samples,
        )
        detector._check_params(fitted_estimator)
        try:
            check_is_fitted(fitted_estimator)
        except NotFittedError:
            raise ConfigError(
                "from_fitted needs a fitted model; call its fit first, or use "
                "AnomalyDetector(estimator).fit(X)."
            ) from None
        detector.estimator_ = fitted_estimator
        detector.n_features_in_ = fitted_estimator.n_features_in_
        if hasattr(fitted_estimator, "feature_names_in_"):
            detector.feature_names_in_ = fitted_estimator.feature_names_in_
        detector.reference_scores_ = detector.score_samples(X_reference)
        detector.offset_ = float(np.percentile(detector.reference_scores_, 100 * contamination))
        return detector

    # ---- scoring --------------------------------------------------------------------------
    def _scores(self, X: np.ndarray) -> np.ndarray:
        model = self.estimator_
        if self.score_type == "log_likelihood":
            return model.score_samples(X, n_samples=self.n_importance_samples)
        if self.score_type == "elbo":
            return model.elbo(X)
        error = X.astype(np.float64) - model.reconstruct(X)
        return -np.einsum("ij,ij->i", error, error)

    def score_samples(self, X) -> np.ndarray:
        """The score of each row; higher means more normal (nats, or minus squared error).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows to score.

        Returns
        -------
        ndarray of shape (n,)
            log p(x) or the ELBO in nats, or minus the squared reconstruction error summed
            over features, as ``score_type`` says.
        """
        check_is_fitted(self)
        return self._scores(self._validate(X, reset=False))

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows to score.

        Returns
        -------
        ndarray of shape (n,)
            Each row's score minus ``offset_``, in the score's units.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for inliers, -1 for outliers (``decision_function(X) < 0``).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows to classify.

        Returns
        -------
        ndarray of shape (n,)
            +1 or -1 for each row.
        """
        return self._predict_from(self.score_samples(X))

    def _predict_from(self, scores: np.ndarray) -> np.ndarray:
        return np.where(scores - self.offset_ < 0, -1, 1)
