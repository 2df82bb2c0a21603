"""The variational autoencoder estimator."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..bounds import elbo, log_likelihood
from ..model import LossTerms, VAEModule
from .base import LatentEstimator, is_int, require, seed_from, seed_generator


class VAE(LatentEstimator):
    """Variational autoencoder: a density model, a transformer and a generator.

    Parameters
    ----------
    n_components : int, default=2
        Size of the latent space.
    architecture : {"mlp", "conv", "linear"}, default="mlp"
        Encoder/decoder bodies; ignored when ``encoder`` and ``decoder`` are given.
    hidden_sizes : tuple of int, default=(256, 128)
        Hidden layer widths of the MLP encoder; the decoder mirrors them.
    activation : str, default="relu"
        One of relu, tanh, elu, gelu, silu, leaky_relu.
    image_shape : tuple of int, default=None
        (channels, height, width) of the flat rows, for ``architecture="conv"``; square
        single-channel images are inferred.
    channels : tuple of int, default=(32, 64)
        Convolution channels, for ``architecture="conv"``.
    encoder, decoder : torch.nn.Module, default=None
        Your own networks: the encoder maps (N, n_features) to (N, 2 * n_components) (means,
        then log-variances); the decoder maps (N, n_components) to (N, heads * n_features).
    likelihood : {"gaussian", "bernoulli", "continuous_bernoulli"}, default="gaussian"
        The decoder distribution p(x|z).
    sigma : {"shared", "per_feature", "fixed", "decoder"}, default="shared"
        How the Gaussian likelihood's standard deviation is chosen.
    sigma_value : float, default=1.0
        The fixed sigma, or the starting value of a learned one.
    sigma_floor : float, default=1e-3
        Learned sigmas never go below this.
    binarize : float or "dynamic", default=None
        A number binarises the data as ``X > binarize``; ``"dynamic"`` takes intensities in
        [0, 1] and draws a fresh Bernoulli binarisation of every training batch (other methods
        binarise their input once, seeded by ``random_state``).
    standardize : bool, default=False
        Centre and scale each feature before the model sees it (``mean_``, ``scale_``, saved with
        the model). Densities stay densities of the original data (the log-Jacobian is added),
        and decoded rows come back in the original units. Gaussian likelihood only.
    n_samples : int, default=1
        Latent samples per example in the training objective (K).
    objective : {"elbo", "iwae"}, default="elbo"
        The ELBO with analytic KL, or the importance-weighted bound with K samples.
    beta : float, default=1.0
        Weight on the KL term.
    warmup_epochs : int, default=0
        The KL weight ramps linearly from 0 to ``beta`` over this many epochs.
    free_bits : float, default=0.0
        Floor, in nats, on each latent unit's KL (batch mean).
    n_importance_samples : int, default=1000
        K for ``score_samples``: the importance-sampled log-likelihood.
    batch_size, learning_rate, max_epochs, validation_fraction, patience, clip_grad_norm
        Training: Adam on shuffled batches; early stopping on the validation negative ELBO
        after ``patience`` epochs without improvement, restoring the best weights.
    learning_rate_schedule : {"constant", "cosine"}, default="constant"
        "cosine" anneals the learning rate to zero over ``max_epochs``.
    random_state : int, RandomState or None, default=None
        Seeds weights, batches, noise and evaluation; the same seed gives the same model.
    verbose : bool, default=True
        Show a progress bar.

    Attributes
    ----------
    module_ : VAEModule
        The trained torch module.
    history_ : list of dict
        Per-epoch loss, reconstruction, kl and their validation counterparts (nats/example).
    n_epochs_ : int
        Epochs trained.
    n_features_in_ : int
        Number of features seen in ``fit``.
    """

    _module_class = VAEModule

    def __init__(
        self,
        n_components: int = 2,
        *,
        architecture: str = "mlp",
        hidden_sizes: tuple[int, ...] = (256, 128),
        activation: str = "relu",
        image_shape: tuple[int, ...] | None = None,
        channels: tuple[int, ...] = (32, 64),
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
        likelihood: str = "gaussian",
        sigma: str = "shared",
        sigma_value: float = 1.0,
        sigma_floor: float = 1e-3,
        binarize: float | str | None = None,
        standardize: bool = False,
        n_samples: int = 1,
        objective: str = "elbo",
        beta: float = 1.0,
        warmup_epochs: int = 0,
        free_bits: float = 0.0,
        n_importance_samples: int = 1000,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        learning_rate_schedule: str = "constant",
        max_epochs: int = 1000,
        validation_fraction: float = 0.1,
        patience: int | None = 20,
        clip_grad_norm: float | None = None,
        random_state=None,
        verbose: bool = True,
    ):
        self.n_components = n_components
        self.architecture = architecture
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.image_shape = image_shape
        self.channels = channels
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.sigma = sigma
        self.sigma_value = sigma_value
        self.sigma_floor = sigma_floor
        self.binarize = binarize
        self.standardize = standardize
        self.n_samples = n_samples
        self.objective = objective
        self.beta = beta
        self.warmup_epochs = warmup_epochs
        self.free_bits = free_bits
        self.n_importance_samples = n_importance_samples
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        require(is_int(self.n_samples, 1), "n_samples must be a positive integer.")
        require(self.objective in ("elbo", "iwae"), "objective must be 'elbo' or 'iwae'.")
        require(isinstance(self.beta, Real) and self.beta >= 0, "beta must be a number >= 0.")
        require(is_int(self.warmup_epochs, 0), "warmup_epochs must be an integer >= 0.")
        require(
            isinstance(self.free_bits, Real) and self.free_bits >= 0,
            "free_bits must be a number >= 0.",
        )
        require(
            is_int(self.n_importance_samples, 1),
            "n_importance_samples must be a positive integer.",
        )

    def _encoder_outputs(self) -> int:
        return 2 * self.n_components

    def _min_epochs(self) -> int:
        return self.warmup_epochs

    def _kl_weight(self, epoch: int) -> float:
        if self.warmup_epochs == 0:
            return float(self.beta)
        return float(self.beta) * min(1.0, epoch / self.warmup_epochs)

    def _train_loss(self, x: torch.Tensor, epoch: int, generator: torch.Generator) -> LossTerms:
        x = self._training_batch(x, generator)
        eps = torch.randn((self.n_samples, x.shape[0], self.n_components), generator=generator)
        return self.module_.loss(x, eps, self._kl_weight(epoch), self.free_bits, self.objective)

    def _validation_loss(self, x: torch.Tensor) -> LossTerms:
        generator = torch.Generator().manual_seed(0)  # the same draws every epoch
        x = self._training_batch(x, generator)
        eps = torch.randn((1, x.shape[0], self.n_components), generator=generator)
        return self.module_.loss(x, eps)

    def score_samples(self, X, n_samples: int | None = None) -> np.ndarray:
        """Importance-sampled log p(x) of each row, in nats, with K = ``n_importance_samples``.

        A lower bound on average that rises towards log p(x) as K grows; the proposal is the
        encoder's q(z|x). Each row's draws are seeded by its content and ``random_state``, so
        its score does not depend on the other rows of the call.
        """
        check_is_fitted(self)
        X = self._prepare(X, reset=False)
        K = self.n_importance_samples if n_samples is None else n_samples
        require(is_int(K, 1), "n_samples must be a positive integer.")
        seed = seed_from(self.random_state)
        return self._map(lambda m, x: log_likelihood(m, x, K, seed), X) + self._log_det_scaling()

    def score(self, X, y=None, n_samples: int | None = None) -> float:
        """Average importance-sampled log-likelihood of the rows of X, in nats."""
        return float(np.mean(self.score_samples(X, n_samples)))

    def elbo(self, X, n_samples: int = 1) -> np.ndarray:
        """The ELBO of each row in nats (analytic KL; the expectation over K latent samples)."""
        check_is_fitted(self)
        X = self._prepare(X, reset=False)
        require(is_int(n_samples, 1), "n_samples must be a positive integer.")
        seed = seed_from(self.random_state)
        return self._map(lambda m, x: elbo(m, x, n_samples, seed), X) + self._log_det_scaling()

    def sample(self, n_samples: int = 1, *, mean: bool = True, random_state=None) -> np.ndarray:
        """Generate rows: z ~ N(0, I), then the decoder mean (a draw of p(x|z) if not ``mean``)."""
        check_is_fitted(self)
        require(is_int(n_samples, 1), "n_samples must be a positive integer.")
        generator = seed_generator(self.random_state if random_state is None else random_state)
        z = torch.randn((n_samples, self.n_components), generator=generator)
        if mean:
            rows = self._map(lambda m, b: m.likelihood.mean(m.decode(b)), z.numpy())
        else:
            rows = self._map(lambda m, b: m.likelihood.sample(m.decode(b), generator), z.numpy())
        return self._to_data_space(rows)
