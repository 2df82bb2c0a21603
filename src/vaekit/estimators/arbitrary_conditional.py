"""The VAE with arbitrary conditioning (VAEAC, Ivanov et al. 2019) as an estimator: trained on
rows with missing values, it fills in any entries given the others."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.validation import check_is_fitted

from ..exceptions import ConfigError
from ..model.arbitrary_conditioning import ArbitraryConditioningModule
from ..model.nets import build_inpainting, build_networks
from ..model.priors import ConditionalGaussian
from .base import LatentEstimator, require, seed_from
from .params import document, is_int


class ArbitraryConditionalVAE(LatentEstimator):
    """A VAE of p(x_T | x_C) for any split of a row into given entries C and the rest T
    (VAEAC, Ivanov, Figurnov & Vetrov 2019), trained on rows with NaN where values are missing.

    Its decoder sees the given entries beside z, so it fills a missing value from the values
    around it as well as from the row's code: on images (``architecture="conv"``, whose decoder
    keeps the image's size and sees the given pixels in place) it imputes far better than a
    model that sees the row only through its code (``VAE(missing="ignore")``, MIWAE;
    BENCHMARKS.md). Training draws a fresh split of every row's observed entries at every step
    (each joins C with one probability per row, uniform in [0.5, 1)); the prior p(z | x_C) is a
    network of the given entries, of ``hidden_sizes``. ``impute`` fills the missing entries in
    with their mean under K draws of z ~ p(z | x_obs), or a draw; ``transform`` gives the prior
    mean of z given the observed entries. It is not a density model of x: it has no
    ``score_samples`` and no ``sample``. ``vaekit.VAEImputer(ArbitraryConditionalVAE(...))``
    wraps it in scikit-learn's imputer shape.

    With ``architecture="conv"`` the encoder is the ``conv`` one over three images (the targets,
    the given values and their mask), and ``channels`` are also the widths of the decoder's
    size-keeping 3x3 convolutions.

    Attributes
    ----------
    module_ : ArbitraryConditioningModule
        The trained torch module.
    history_ : list of dict
        Per-epoch loss, reconstruction (of the entries to fill in) and KL, and their
        validation counterparts (nats/example).
    n_epochs_ : int
        Epochs trained.
    stopped_by_ : {"early_stopping", "max_epochs", "max_time"}
        Why training stopped.
    best_epoch_ : int
        The epoch whose weights were kept.
    n_features_in_ : int
        Number of features seen in ``fit``.
    """

    density_model = False  # p(x_T | x_C), not p(x)
    can_sample = False
    regularizer = "kl"
    missing = "ignore"  # NaN is always a missing value
    decodes_codes = False  # the decoder needs the given entries beside the code
    encoder = decoder = None
    binarize = None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing value
        return tags

    def __init__(
        self,
        n_components: int = 16,
        *,
        architecture: str = "mlp",
        hidden_sizes: tuple[int, ...] = (256, 256),
        activation: str = "relu",
        image_shape: tuple[int, ...] | None = None,
        channels: tuple[int, ...] = (32, 32, 32, 32),
        likelihood: str = "gaussian",
        sigma: str = "fixed",
        sigma_value: float = 1.0,
        sigma_floor: float = 1e-3,
        standardize: bool = False,
        n_importance_samples: int = 100,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        learning_rate_schedule: str = "constant",
        max_epochs: int | None = 500,
        max_time: float | str | None = None,
        validation_fraction: float = 0.1,
        patience: int | None = 50,
        clip_grad_norm: float | None = None,
        ema_decay: float | None = None,
        precision: str = "fp32",
        device: str = "auto",
        random_state=None,
        verbose: bool = True,
    ):
        self.n_components = n_components
        self.architecture = architecture
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.image_shape = image_shape
        self.channels = channels
        self.likelihood = likelihood
        self.sigma = sigma
        self.sigma_value = sigma_value
        self.sigma_floor = sigma_floor
        self.standardize = standardize
        self.n_importance_samples = n_importance_samples
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.ema_decay = ema_decay
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _build_module(self, n_features: int) -> ArbitraryConditioningModule:
        likelihood = self._make_likelihood(n_features)
        options = dict(
            n_features=n_features,
            latent_dim=self.n_components,
            encoder_outputs=2 * self.n_components,
            decoder_outputs=likelihood.n_heads * n_features,
            hidden_sizes=self.hidden_sizes,
            activation=self.activation,
            image_shape=self.image_shape,
            channels=self.channels,
            condition_dim=2 * n_features,
        )
        if self.architecture == "conv":
            encoder, decoder = build_inpainting(**options)
        else:
            encoder, decoder = build_networks(self.architecture, **options)
        prior = ConditionalGaussian(
            self.n_components, 2 * n_features, self.hidden_sizes, self.activation
        )
        return ArbitraryConditioningModule(
            encoder, decoder, likelihood, prior, self.n_components, n_features
        )

    def inverse_transform(self, X, y=None) -> np.ndarray:
        """Refused: the decoder reads a code beside the entries it is given, so a code alone
        decodes to nothing; ``reconstruct`` and ``impute`` decode rows.

        Parameters
        ----------
        X : array-like of shape (n, n_components)
            Latent codes.
        y : None
            Ignored.

        Returns
        -------
        ndarray
            Never; this raises ConfigError.
        """
        raise ConfigError(
            "ArbitraryConditionalVAE decodes a code beside the entries it is given, so a code "
            "alone cannot be decoded; use reconstruct(X) or impute(X)."
        )

    def reconstruct(self, X, y=None) -> np.ndarray:
        """The decoder mean of every entry of each row given its observed entries, at the
        prior mean of z (``transform``).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            Rows, with NaN where values are missing.
        y : None
            Ignored.

        Returns
        -------
        ndarray of shape (n, n_features)
            The decoder means, in the data's units.
        """
        check_is_fitted(self)
        decoded = lambda m, b: m.likelihood.mean(m.decode(m.embed(b), m.split(b)[1]))  # noqa: E731
        return self._to_data_space(self._map_data(decoded, X))

    def impute(
        self, X, n_samples: int | None = None, *, y=None, sample: bool = False, random_state=None
    ) -> np.ndarray:
        """X with every NaN filled in: its mean given the row's observed entries, estimated
        with K draws of z ~ p(z | x_obs), or with ``sample`` a draw of p(x_mis | x_obs).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            Rows with NaN where a value is missing.
        n_samples : int, optional
            K, the draws of z per row; ``n_importance_samples`` when not given.
        y : None
            Ignored (the model takes no condition but the rows' own entries).
        sample : bool
            Draw the missing entries instead of taking their mean.
        random_state : int, RandomState or None
            Seeds the draws; the estimator's ``random_state`` when None.

        Returns
        -------
        ndarray of shape (n, n_features)
            The rows, complete; observed entries unchanged.
        """
        check_is_fitted(self)
        K = self.n_importance_samples if n_samples is None else n_samples
        require(is_int(K, 1), "n_samples must be a positive integer.")
        seed = seed_from(self.random_state if random_state is None else random_state)
        impute = lambda m, x: m.impute(x, K, seed, sample)  # noqa: E731
        filled = self._to_data_space(self._map_data(impute, X, dtype=torch.float32))
        original = np.asarray(X, dtype=np.float64) if not sp.issparse(X) else X.toarray()
        return np.where(np.isnan(original), filled, original)


document(ArbitraryConditionalVAE)
