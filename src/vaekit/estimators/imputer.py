"""Missing values filled in by a VAE of the observed entries (MIWAE), in scikit-learn's imputer
shape: ``missing_values``, ``fit``, ``transform``, ``fit_transform`` and, as
``IterativeImputer`` has, ``sample_posterior`` for multiple imputation."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted, validate_data

from ..exceptions import ConfigError, DataError
from .arbitrary_conditional import ArbitraryConditionalVAE
from .base import require, seeded_clone
from .params import is_int
from .vae import VAE


def default_vae() -> VAE:
    """The model a VAEImputer trains when given none: a Gaussian VAE of standardised features."""
    return VAE(
        n_components=8,
        hidden_sizes=(128, 128),
        likelihood="gaussian",
        sigma="per_feature",
        standardize=True,
        max_epochs=500,
        verbose=False,
    )


class VAEImputer(TransformerMixin, BaseEstimator):
    """Impute missing values with a VAE trained on the observed entries only (MIWAE).

    ``fit`` trains a clone of ``estimator`` with ``missing="ignore"``: its ELBO runs over each
    row's observed entries. ``transform`` fills each missing entry with its mean given the
    row's observed entries, estimated by self-normalised importance sampling with K =
    ``n_importance_samples`` draws of z (Mattei & Frellsen 2019), or with
    ``sample_posterior=True`` a draw from p(x_mis|x_obs), so that several ``random_state``
    values give multiple imputations. Observed entries are returned unchanged.

    Parameters
    ----------
    estimator : VAE or ArbitraryConditionalVAE, default=None
        An unfitted template; ``fit`` trains a clone (a VAE's with ``missing="ignore"``). None
        means a VAE with 8 latent units, hidden layers of 128 and 128, a Gaussian likelihood
        with one sigma per feature, the features standardised, and up to 500 epochs with early
        stopping. An ``ArbitraryConditionalVAE`` (VAEAC), whose decoder sees the given entries,
        imputes images far better (BENCHMARKS.md).
    missing_values : float or int, default=np.nan
        The placeholder of a missing value; every entry equal to it (every NaN for np.nan)
        is imputed.
    n_importance_samples : int, default=1000
        K, the importance samples per row (for an ``ArbitraryConditionalVAE``, the draws of z
        from its prior given the observed entries).
    sample_posterior : bool, default=False
        Draw the missing entries from their posterior predictive instead of taking its mean.
    random_state : int, RandomState or None, default=None
        Seeds the clone (its weights and training) and the imputation's draws. None keeps the
        template's ``random_state``, or draws one seed if it has none, so that a fitted imputer
        always fills a row the same way.

    Attributes
    ----------
    estimator_ : VAE
        The fitted model of the observed entries; it saves and loads as any VAE
        (``VAEImputer.from_fitted(vaekit.load(folder))`` wraps it again).
    n_features_in_ : int
        Number of features seen in ``fit``.
    """

    def __init__(
        self,
        estimator: VAE | None = None,
        *,
        missing_values: float | int = np.nan,
        n_importance_samples: int = 1000,
        sample_posterior: bool = False,
        random_state=None,
    ):
        self.estimator = estimator
        self.missing_values = missing_values
        self.n_importance_samples = n_importance_samples
        self.sample_posterior = sample_posterior
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _check_params(self, estimator) -> None:
        require(
            isinstance(estimator, (VAE, ArbitraryConditionalVAE)),
            "estimator must be a vaekit VAE or ArbitraryConditionalVAE (or None for the default "
            "one).",
        )
        require(
            isinstance(self.missing_values, Real) and not isinstance(self.missing_values, bool),
            "missing_values must be a number, or np.nan.",
        )
        require(
            is_int(self.n_importance_samples, 1),
            "n_importance_samples must be a positive integer.",
        )
        require(
            isinstance(self.sample_posterior, (bool, np.bool_)),
            "sample_posterior must be True or False.",
        )

    def _with_nan(self, X, reset: bool) -> np.ndarray:
        """X as float64 with every missing value as NaN."""
        try:
            X = validate_data(
                self, X, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite=False
            )
        except ValueError as err:  # scikit-learn's sentence, as vaekit's own error
            raise DataError(str(err)) from None
        X = X.astype(np.float64)
        if not np.isnan(self.missing_values):
            if np.isnan(X).any():
                raise DataError(
                    f"X holds NaN, but missing_values={self.missing_values!r}; give NaN as "
                    "missing_values, or replace the NaN."
                )
            X[X == self.missing_values] = np.nan
        if np.isinf(X).any():
            raise DataError("X holds infinite values; an imputer fills in missing ones only.")
        return X

    def fit(self, X, y=None, **fit_params):
        """Train a clone of ``estimator`` on the observed entries of X (y is ignored).

        ``fit_params`` go to the VAE's ``fit`` (``checkpoint_dir`` to resume a long fit).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            Rows with missing values (``missing_values``).
        y : None
            Ignored.
        **fit_params
            Keyword arguments of ``VAE.fit``.

        Returns
        -------
        self
        """
        template = default_vae() if self.estimator is None else self.estimator
        self._check_params(template)
        X = self._with_nan(X, reset=True)
        model = seeded_clone(template, self.random_state)
        if "missing" in model.get_params():  # a VAE models missing values when told to
            model.set_params(missing="ignore")
        self.estimator_ = model.fit(X, **fit_params)
        return self

    @classmethod
    def from_fitted(cls, fitted_estimator: VAE, **params) -> VAEImputer:
        """An imputer around a VAE already trained with ``missing="ignore"``; no training.

        ``params`` are the imputer's other parameters (``n_importance_samples``, ...).

        Parameters
        ----------
        fitted_estimator : VAE
            A VAE fitted with ``missing="ignore"`` (``vaekit.load(folder)``, say).
        **params
            The imputer's other parameters.

        Returns
        -------
        VAEImputer
            A fitted imputer around ``fitted_estimator``.
        """
        imputer = cls(fitted_estimator, **params)
        imputer._check_params(fitted_estimator)
        try:
            check_is_fitted(fitted_estimator)
        except NotFittedError:
            raise ConfigError("from_fitted needs a fitted VAE; call its fit first.") from None
        require(
            fitted_estimator.missing == "ignore",
            "from_fitted needs a VAE trained with missing='ignore'.",
        )
        imputer.estimator_ = fitted_estimator
        imputer.n_features_in_ = fitted_estimator.n_features_in_
        return imputer

    def transform(self, X) -> np.ndarray:
        """X with every missing value filled in: (n_samples, n_features) float64.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            Rows with missing values (``missing_values``); every row needs an observed entry.

        Returns
        -------
        ndarray of shape (n, n_features)
            The rows, complete: observed entries unchanged, missing ones filled in.
        """
        check_is_fitted(self)
        X = self._with_nan(X, reset=False)
        return self.estimator_.impute(
            X,
            n_samples=self.n_importance_samples,
            sample=bool(self.sample_posterior),
            random_state=self.random_state,
        )

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """``fit(X).transform(X)``.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            Rows with missing values (``missing_values``).
        y : None
            Ignored.
        **fit_params
            Keyword arguments of ``VAE.fit``.

        Returns
        -------
        ndarray of shape (n, n_features)
            The rows, complete.
        """
        return self.fit(X, **fit_params).transform(X)
