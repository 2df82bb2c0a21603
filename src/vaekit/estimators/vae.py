"""The variational autoencoder estimator."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..bounds import elbo, log_likelihood
from ..exceptions import ConfigError, TrainingError
from ..model import LossTerms, VAEModule
from .base import LatentEstimator, finite_array, is_int, require, seed_from, seed_generator


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
    gmm_components : int, default=10
        Components of the Gaussian mixture fitted, after training, to the posterior means of the
        training rows (the aggregate posterior): ``sample(sampler="gmm")`` draws z from it.
    batch_size, learning_rate, max_epochs, validation_fraction, patience, clip_grad_norm
        Training: Adam on shuffled batches; early stopping on the validation negative ELBO
        after ``patience`` epochs without improvement, restoring the best weights.
    learning_rate_schedule : {"constant", "cosine"}, default="constant"
        "cosine" anneals the learning rate to zero over ``max_epochs``.
    precision : {"fp32", "bf16"}, default="fp32"
        "bf16" runs the training forward pass under CPU bfloat16 autocast (faster at large
        batches on CPUs with AMX or AVX512-BF16); weights, optimiser and evaluation stay float32.
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
    gmm_ : sklearn.mixture.GaussianMixture
        The mixture over the posterior means of the training rows (full covariances).
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
        gmm_components: int = 10,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        learning_rate_schedule: str = "constant",
        max_epochs: int = 1000,
        validation_fraction: float = 0.1,
        patience: int | None = 20,
        clip_grad_norm: float | None = None,
        precision: str = "fp32",
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
        self.gmm_components = gmm_components
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.precision = precision
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
        log_px = self._map(
            lambda m, x: log_likelihood(m, x, K, seed, progress=self.verbose), X, batched=False
        )
        return log_px + self._log_det_scaling()

    def posterior(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The diagonal Gaussian q(z|x) of each row: (means, variances), each (n, n_components)."""
        check_is_fitted(self)
        X = self._prepare(X, reset=False)
        both = self._map(lambda m, x: _mean_and_log_var(m.encode(x)), X)
        return both[:, : self.n_components], np.exp(both[:, self.n_components :])

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

    def sample(
        self,
        n_samples: int = 1,
        *,
        sampler: str = "prior",
        mean: bool = True,
        random_state=None,
    ) -> np.ndarray:
        """Generate rows: z from the prior N(0, I) or from ``gmm_`` (``sampler="gmm"``), then the
        decoder mean, or a draw of p(x|z) when ``mean`` is False."""
        z = self.sample_latent(n_samples, sampler=sampler, random_state=random_state)
        generator = seed_generator(self.random_state if random_state is None else random_state)
        if mean:
            rows = self._map(lambda m, b: m.likelihood.mean(m.decode(b)), z)
        else:
            rows = self._map(lambda m, b: m.likelihood.sample(m.decode(b), generator), z)
        return self._to_data_space(rows)

    def sample_latent(self, n_samples: int = 1, *, sampler: str = "prior", random_state=None):
        """Latent codes z: (n_samples, n_components) from the prior or the fitted mixture."""
        check_is_fitted(self)
        require(is_int(n_samples, 1), "n_samples must be a positive integer.")
        require(sampler in ("prior", "gmm"), "sampler must be 'prior' or 'gmm'.")
        seed = seed_from(self.random_state if random_state is None else random_state)
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((n_samples, self.n_components))
        if sampler == "prior":
            return eps
        gmm = self.gmm_
        component = rng.choice(len(gmm.weights_), size=n_samples, p=gmm.weights_)
        chol = np.linalg.cholesky(gmm.covariances_)
        return gmm.means_[component] + np.einsum("nij,nj->ni", chol[component], eps)

    def _fit_extra(self, X: np.ndarray, generator: torch.Generator) -> None:
        means = self._map(lambda m, x: m.embed(x), X)
        if not np.isfinite(means).all():
            raise TrainingError(
                "Training ended with non-finite latent codes; try a lower learning_rate or "
                "clip_grad_norm."
            )
        k = min(self.gmm_components, len(means))
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        self.gmm_ = GaussianMixture(k, covariance_type="full", random_state=seed).fit(means)

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        gmm = self.gmm_
        arrays = {"weights": gmm.weights_, "means": gmm.means_, "covariances": gmm.covariances_}
        return super()._extra_tensors() | {
            f"gmm.{k}": torch.from_numpy(v) for k, v in arrays.items()
        }

    def _restore_extra(self, tensors: dict[str, torch.Tensor]) -> None:
        super()._restore_extra(tensors)
        if "gmm.weights" not in tensors:
            raise ConfigError("the latent mixture (gmm.*) is missing")
        k, L = len(tensors["gmm.weights"]), self.n_components
        arrays = {
            name: finite_array(tensors.pop(f"gmm.{name}", None), shape, f"gmm.{name}")
            for name, shape in (("weights", (k,)), ("means", (k, L)), ("covariances", (k, L, L)))
        }
        self.gmm_ = mixture_from_arrays(**arrays)


def _mean_and_log_var(q) -> torch.Tensor:
    return torch.cat([q.mean, q.log_var], dim=1)


def mixture_from_arrays(weights, means, covariances) -> GaussianMixture:
    """A fitted full-covariance GaussianMixture rebuilt from its three arrays (no pickle)."""
    try:
        chol = np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        raise ConfigError("gmm.covariances must be positive definite") from None
    k = len(weights)
    if k == 0 or abs(weights.sum() - 1) > 1e-6 or (weights < 0).any():
        raise ConfigError("gmm.weights must be probabilities that sum to one")
    gmm = GaussianMixture(k, covariance_type="full")
    gmm.weights_, gmm.means_, gmm.covariances_ = weights, means, covariances
    identity = np.eye(means.shape[1])
    gmm.precisions_cholesky_ = np.stack([np.linalg.solve(c, identity).T for c in chol])
    gmm.precisions_ = np.einsum("kij,klj->kil", gmm.precisions_cholesky_, gmm.precisions_cholesky_)
    gmm.converged_, gmm.n_iter_, gmm.lower_bound_ = True, 0, -np.inf
    return gmm
