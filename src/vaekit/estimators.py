"""The scikit-learn-style front: ``VAE`` and ``Autoencoder`` estimators, and ``load``.

Parameters live in ``__init__``, ``fit(X)`` returns self, learned state ends in ``_``. Inputs are
2-D arrays (n_samples, n_features); images are flat rows with ``image_shape`` describing them.
All computation is float32 on the CPU; results come back as float64 NumPy arrays.
"""

from __future__ import annotations

import copy
import inspect
import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from . import __version__
from .distributions import likelihood_class, make_likelihood
from .evaluate import elbo, log_likelihood
from .exceptions import ConfigError, ModelFileError
from .io import load_folder, save_folder
from .model import AutoencoderModule, LatentVariableModel, LossTerms, VAEModule
from .nets import build_networks
from .train import TrainingOptions, train

PREDICT_BATCH = 1024
TUPLE_PARAMS = ("hidden_sizes", "channels", "image_shape")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _is_int(value, low: int) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= low


def _seed(random_state) -> int:
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _seed_generator(random_state) -> torch.Generator:
    return torch.Generator().manual_seed(_seed(random_state))


class _LatentEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """What VAE and Autoencoder share: validation, networks, training, transforms, saving."""

    _module_class: type[LatentVariableModel]

    # ---- set-up -------------------------------------------------------------------------
    def _check_params(self) -> None:
        _require(_is_int(self.n_components, 1), "n_components must be a positive integer.")
        _require(_is_int(self.batch_size, 1), "batch_size must be a positive integer.")
        _require(_is_int(self.max_epochs, 1), "max_epochs must be a positive integer.")
        _require(
            isinstance(self.learning_rate, Real) and self.learning_rate > 0,
            "learning_rate must be a positive number.",
        )
        _require(
            isinstance(self.validation_fraction, Real) and 0 <= self.validation_fraction < 1,
            "validation_fraction must be a number in [0, 1).",
        )
        _require(
            self.patience is None or _is_int(self.patience, 1),
            "patience must be a positive integer, or None to train for max_epochs.",
        )
        _require(
            self.clip_grad_norm is None
            or (isinstance(self.clip_grad_norm, Real) and self.clip_grad_norm > 0),
            "clip_grad_norm must be a positive number or None.",
        )
        _require(
            self.binarize is None or isinstance(self.binarize, Real),
            "binarize must be None or a threshold (a number).",
        )
        _require(
            (self.encoder is None) == (self.decoder is None),
            "Pass both encoder and decoder modules, or neither.",
        )

    def _encoder_outputs(self) -> int:
        return self.n_components

    def _build_module(self, n_features: int) -> LatentVariableModel:
        likelihood = make_likelihood(
            self.likelihood,
            n_features,
            sigma=self.sigma,
            sigma_value=self.sigma_value,
            sigma_floor=self.sigma_floor,
        )
        decoder_outputs = likelihood.n_heads * n_features
        if self.encoder is not None:
            encoder, decoder = copy.deepcopy(self.encoder), copy.deepcopy(self.decoder)
        else:
            encoder, decoder = build_networks(
                self.architecture,
                n_features=n_features,
                latent_dim=self.n_components,
                encoder_outputs=self._encoder_outputs(),
                decoder_outputs=decoder_outputs,
                hidden_sizes=self.hidden_sizes,
                activation=self.activation,
                image_shape=self.image_shape,
                channels=self.channels,
            )
        _check_network_shapes(
            encoder,
            decoder,
            n_features,
            self._encoder_outputs(),
            decoder_outputs,
            self.n_components,
        )
        return self._module_class(encoder, decoder, likelihood, self.n_components)

    def _validate_input(self, X, reset: bool) -> np.ndarray:
        X = validate_data(self, X, reset=reset, dtype=[np.float32, np.float64])
        X = np.asarray(X, dtype=np.float32)
        if self.binarize is not None:
            X = (X > self.binarize).astype(np.float32)
        # A refit checks against the likelihood asked for now, not the one fitted before.
        likelihood = likelihood_class(self.likelihood) if reset else type(self.module_.likelihood)
        likelihood.validate(X)
        return X

    # ---- fitting --------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit the model to the rows of X (y is ignored). Returns self."""
        self._check_params()
        X = self._validate_input(X, reset=True)
        generator = _seed_generator(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            self.module_ = self._build_module(X.shape[1])
        options = TrainingOptions(
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            max_epochs=self.max_epochs,
            validation_fraction=self.validation_fraction,
            patience=self.patience,
            clip_grad_norm=self.clip_grad_norm,
            min_epochs=self._min_epochs(),
            verbose=self.verbose,
        )
        self.history_ = train(
            self.module_,
            torch.from_numpy(X),
            self._train_loss,
            self._validation_loss,
            options,
            generator,
            regularizer_name=self.module_.regularizer_name,
        )
        self.n_epochs_ = len(self.history_)
        return self

    def _min_epochs(self) -> int:
        return 0

    # ---- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def _map(self, fn, X: np.ndarray) -> np.ndarray:
        """Apply ``fn(module, batch)`` to batches of X in float64 and stack the results.

        Inference runs on a float64 copy of the module: the numbers are exact to far below a
        nat, and a row's result does not depend on which other rows share its batch.
        """
        module = copy.deepcopy(self.module_).double().eval()
        tensor = torch.from_numpy(np.asarray(X, dtype=np.float64))
        return torch.cat([fn(module, batch) for batch in tensor.split(PREDICT_BATCH)]).numpy()

    def transform(self, X) -> np.ndarray:
        """The deterministic latent code of each row: (n_samples, n_components)."""
        check_is_fitted(self)
        return self._map(lambda m, x: m.embed(x), self._validate_input(X, reset=False))

    def inverse_transform(self, X) -> np.ndarray:
        """The decoder mean E[x|z] for each row of latent codes: (n_samples, n_features)."""
        check_is_fitted(self)
        Z = _check_latent(X, self.n_components)
        return self._map(lambda m, z: m.likelihood.mean(m.decode(z)), Z)

    def reconstruct(self, X) -> np.ndarray:
        """Decode the code of each row: ``inverse_transform(transform(X))``."""
        return self.inverse_transform(self.transform(X))

    @property
    def _n_features_out(self) -> int:
        return self.n_components

    # ---- saving ------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Save to a folder (config.json, model.safetensors, metrics.jsonl); nothing is pickled."""
        check_is_fitted(self)
        params = self.get_params(deep=False)
        custom = params.pop("encoder") is not None
        params.pop("decoder")
        if not isinstance(params["random_state"], (Integral, type(None))):
            params["random_state"] = None
        config = {
            "vaekit_version": __version__,
            "estimator": type(self).__name__,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
            "n_features_in": int(self.n_features_in_),
            "custom_networks": custom,
        }
        return save_folder(folder, config, self.module_.state_dict(), self.history_)


def _check_latent(Z, n_components: int) -> np.ndarray:
    Z = check_array(Z, dtype=[np.float32, np.float64])
    if Z.shape[1] != n_components:
        raise ConfigError(
            f"Latent codes have {Z.shape[1]} columns; this model has n_components={n_components}."
        )
    return Z


def _check_network_shapes(
    encoder, decoder, n_features, encoder_outputs, decoder_outputs, latent_dim
) -> None:
    """Run two rows through the networks so a wrong user module fails here, with a sentence."""
    with torch.no_grad():
        try:
            e = encoder(torch.zeros(2, n_features))
            d = decoder(torch.zeros(2, latent_dim))
        except Exception as err:
            raise ConfigError(
                f"The encoder or decoder failed on a batch of two rows: {err}"
            ) from None
    if tuple(e.shape) != (2, encoder_outputs):
        raise ConfigError(
            f"The encoder must map (N, {n_features}) to (N, {encoder_outputs}); "
            f"it gave {tuple(e.shape)}."
        )
    if tuple(d.shape) != (2, decoder_outputs):
        raise ConfigError(
            f"The decoder must map (N, {latent_dim}) to (N, {decoder_outputs}); "
            f"it gave {tuple(d.shape)}."
        )


class VAE(_LatentEstimator):
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
    binarize : float, default=None
        If set, data are binarised as ``X > binarize`` before use (for ``bernoulli``).
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
        binarize: float | None = None,
        n_samples: int = 1,
        objective: str = "elbo",
        beta: float = 1.0,
        warmup_epochs: int = 0,
        free_bits: float = 0.0,
        n_importance_samples: int = 1000,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
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
        self.n_samples = n_samples
        self.objective = objective
        self.beta = beta
        self.warmup_epochs = warmup_epochs
        self.free_bits = free_bits
        self.n_importance_samples = n_importance_samples
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        _require(_is_int(self.n_samples, 1), "n_samples must be a positive integer.")
        _require(self.objective in ("elbo", "iwae"), "objective must be 'elbo' or 'iwae'.")
        _require(isinstance(self.beta, Real) and self.beta >= 0, "beta must be a number >= 0.")
        _require(_is_int(self.warmup_epochs, 0), "warmup_epochs must be an integer >= 0.")
        _require(
            isinstance(self.free_bits, Real) and self.free_bits >= 0,
            "free_bits must be a number >= 0.",
        )
        _require(
            _is_int(self.n_importance_samples, 1),
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
        eps = torch.randn((self.n_samples, x.shape[0], self.n_components), generator=generator)
        return self.module_.loss(x, eps, self._kl_weight(epoch), self.free_bits, self.objective)

    def _validation_loss(self, x: torch.Tensor) -> LossTerms:
        eps = torch.randn(
            (1, x.shape[0], self.n_components), generator=torch.Generator().manual_seed(0)
        )
        return self.module_.loss(x, eps)

    def score_samples(self, X, n_samples: int | None = None) -> np.ndarray:
        """Importance-sampled log p(x) of each row, in nats, with K = ``n_importance_samples``.

        A lower bound on average that rises towards log p(x) as K grows; the proposal is the
        encoder's q(z|x). Each row's draws are seeded by its content and ``random_state``, so
        its score does not depend on the other rows of the call.
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        K = self.n_importance_samples if n_samples is None else n_samples
        _require(_is_int(K, 1), "n_samples must be a positive integer.")
        seed = _seed(self.random_state)
        return self._map(lambda m, x: log_likelihood(m, x, K, seed), X)

    def score(self, X, y=None, n_samples: int | None = None) -> float:
        """Average importance-sampled log-likelihood of the rows of X, in nats."""
        return float(np.mean(self.score_samples(X, n_samples)))

    def elbo(self, X, n_samples: int = 1) -> np.ndarray:
        """The ELBO of each row in nats (analytic KL; the expectation over K latent samples)."""
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        _require(_is_int(n_samples, 1), "n_samples must be a positive integer.")
        seed = _seed(self.random_state)
        return self._map(lambda m, x: elbo(m, x, n_samples, seed), X)

    def sample(self, n_samples: int = 1, *, mean: bool = True, random_state=None) -> np.ndarray:
        """Generate rows: z ~ N(0, I), then the decoder mean (a draw of p(x|z) if not ``mean``)."""
        check_is_fitted(self)
        _require(_is_int(n_samples, 1), "n_samples must be a positive integer.")
        generator = _seed_generator(self.random_state if random_state is None else random_state)
        z = torch.randn((n_samples, self.n_components), generator=generator)
        if mean:
            return self._map(lambda m, b: m.likelihood.mean(m.decode(b)), z.numpy())
        return self._map(lambda m, b: m.likelihood.sample(m.decode(b), generator), z.numpy())


class Autoencoder(_LatentEstimator):
    """Classical autoencoder: a deterministic code trained on -log p(x | decoder(code)).

    Takes the same network and likelihood parameters as :class:`VAE` (``sigma`` defaults to
    ``"fixed"``, so the Gaussian loss is half the squared error plus a constant), and:

    denoising : {None, "gaussian", "masking"}, default=None
        Corrupt the input during training: add N(0, noise_level^2) noise, or set each feature
        to zero with probability ``noise_level``; the target stays the clean row.
    noise_level : float, default=0.1
        Noise standard deviation, or masking probability.
    sparsity : float, default=0.0
        Weight of an L1 penalty on the code (the mean over rows of sum |z|).
    """

    _module_class = AutoencoderModule

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
        sigma: str = "fixed",
        sigma_value: float = 1.0,
        sigma_floor: float = 1e-3,
        binarize: float | None = None,
        denoising: str | None = None,
        noise_level: float = 0.1,
        sparsity: float = 0.0,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
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
        self.denoising = denoising
        self.noise_level = noise_level
        self.sparsity = sparsity
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        _require(
            self.denoising in (None, "gaussian", "masking"),
            "denoising must be None, 'gaussian' or 'masking'.",
        )
        _require(
            isinstance(self.noise_level, Real) and self.noise_level >= 0,
            "noise_level must be a number >= 0.",
        )
        _require(
            self.denoising != "masking" or self.noise_level < 1,
            "noise_level is the masking probability and must be below 1.",
        )
        _require(
            isinstance(self.sparsity, Real) and self.sparsity >= 0,
            "sparsity must be a number >= 0.",
        )

    def _corrupt(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
        if self.denoising == "gaussian":
            return x + self.noise_level * torch.randn(x.shape, generator=generator)
        if self.denoising == "masking":
            keep = torch.rand(x.shape, generator=generator) >= self.noise_level
            return x * keep
        return None

    def _train_loss(self, x: torch.Tensor, epoch: int, generator: torch.Generator) -> LossTerms:
        return self.module_.loss(x, self._corrupt(x, generator), self.sparsity)

    def _validation_loss(self, x: torch.Tensor) -> LossTerms:
        return self.module_.loss(x, None, self.sparsity)


ESTIMATORS: dict[str, type[_LatentEstimator]] = {"VAE": VAE, "Autoencoder": Autoencoder}


def load(
    folder: str | os.PathLike,
    *,
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
) -> _LatentEstimator:
    """Load a model saved with ``.save(folder)``. Reads only JSON and safetensors.

    A model trained with your own networks needs fresh instances of them as ``encoder`` and
    ``decoder``; their weights come from the folder.
    """
    config, tensors, history = load_folder(folder)
    name = config.get("estimator")
    if name not in ESTIMATORS:
        raise ModelFileError(f"{folder} holds an unknown estimator {name!r}.")
    cls = ESTIMATORS[name]
    params = config.get("params")
    n_features = config.get("n_features_in")
    allowed = set(inspect.signature(cls).parameters) - {"encoder", "decoder"}
    if not isinstance(params, dict) or not _is_int(n_features, 1):
        raise ModelFileError(f"{folder}/config.json lacks its params or n_features_in.")
    if unknown := sorted(set(params) - allowed):
        raise ModelFileError(f"{folder}/config.json has unknown parameters: {', '.join(unknown)}.")
    if config.get("custom_networks") and (encoder is None or decoder is None):
        raise ModelFileError(
            f"{folder} was trained with custom networks; pass fresh instances as "
            "vaekit.load(folder, encoder=..., decoder=...)."
        )
    params = {
        k: tuple(v) if k in TUPLE_PARAMS and isinstance(v, list) else v for k, v in params.items()
    }
    estimator = cls(**params, encoder=encoder, decoder=decoder)
    try:
        estimator._check_params()
        module = estimator._build_module(n_features)
        module.load_state_dict(tensors, strict=True)
    except (ConfigError, RuntimeError, TypeError) as err:
        raise ModelFileError(
            f"{folder} cannot be rebuilt from its config and weights: {err}"
        ) from None
    module.eval()
    estimator.module_ = module
    estimator.n_features_in_ = n_features
    estimator.history_ = history
    estimator.n_epochs_ = len(history)
    return estimator
