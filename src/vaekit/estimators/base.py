"""What the estimators share: parameter checks, input preparation, training, inference, saving.

Parameters live in ``__init__``, ``fit(X)`` returns self, learned state ends in ``_``. Inputs are
2-D arrays (n_samples, n_features); images are flat rows with ``image_shape`` describing them.
Training runs in float32; inference on a float64 copy of the module; results are float64 arrays.
"""

from __future__ import annotations

import copy
import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import __version__
from ..checkpoint import Checkpoint, fingerprint
from ..distributions import likelihood_class, make_likelihood
from ..exceptions import ConfigError, DataError
from ..io import save_folder
from ..model import LatentVariableModel
from ..nets import build_networks
from ..train import TrainingOptions, train

PREDICT_BATCH = 1024
TUPLE_PARAMS = ("hidden_sizes", "channels", "image_shape")
SCALER_MEAN, SCALER_SCALE = "scaler.mean", "scaler.scale"  # saved beside the module's weights
EXTRA_PREFIXES = ("scaler.", "gmm.")  # the saved tensors that are not the module's


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless ``condition`` holds."""
    if not condition:
        raise ConfigError(message)


def is_int(value, low: int) -> bool:
    """True for an integer (not a bool) of at least ``low``."""
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= low


def seed_from(random_state) -> int:
    """One integer seed from a scikit-learn ``random_state`` (None, int or RandomState)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def seed_generator(random_state) -> torch.Generator:
    """A torch Generator seeded from a scikit-learn ``random_state``."""
    return torch.Generator().manual_seed(seed_from(random_state))


def finite_array(tensor: torch.Tensor | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A saved tensor as a NumPy array, checked for presence, shape and finiteness."""
    if tensor is None or tuple(tensor.shape) != shape or not torch.isfinite(tensor).all():
        raise ConfigError(f"{name} must be a finite array of shape {shape}")
    return tensor.numpy()


def bernoulli_draw(X: np.ndarray, seed: int) -> np.ndarray:
    """One seeded binarisation of intensities in [0, 1]; binary data come back unchanged."""
    return (np.random.default_rng(seed).random(X.shape) < X).astype(np.float32)


class LatentEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """What VAE and Autoencoder share: validation, networks, training, transforms, saving."""

    _module_class: type[LatentVariableModel]

    # ---- set-up -------------------------------------------------------------------------
    def _check_params(self) -> None:
        require(is_int(self.n_components, 1), "n_components must be a positive integer.")
        require(is_int(self.batch_size, 1), "batch_size must be a positive integer.")
        require(is_int(self.max_epochs, 1), "max_epochs must be a positive integer.")
        require(
            isinstance(self.learning_rate, Real) and self.learning_rate > 0,
            "learning_rate must be a positive number.",
        )
        require(self.precision in ("fp32", "bf16"), "precision must be 'fp32' or 'bf16'.")
        require(
            self.learning_rate_schedule in ("constant", "cosine"),
            "learning_rate_schedule must be 'constant' or 'cosine'.",
        )
        require(
            isinstance(self.validation_fraction, Real) and 0 <= self.validation_fraction < 1,
            "validation_fraction must be a number in [0, 1).",
        )
        require(
            self.patience is None or is_int(self.patience, 1),
            "patience must be a positive integer, or None to train for max_epochs.",
        )
        require(
            self.clip_grad_norm is None
            or (isinstance(self.clip_grad_norm, Real) and self.clip_grad_norm > 0),
            "clip_grad_norm must be a positive number or None.",
        )
        require(
            self.binarize is None or self.binarize == "dynamic" or isinstance(self.binarize, Real),
            "binarize must be None, a threshold (a number) or 'dynamic'.",
        )
        require(
            not self.standardize or self.likelihood == "gaussian",
            "standardize=True needs likelihood='gaussian'; binary or [0, 1] data need no scaling.",
        )
        require(
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

    def _prepare(self, X, reset: bool) -> np.ndarray:
        """Check X and bring it to the model's space (binarised, standardised), as float32.

        With ``reset`` (in ``fit``) the scaler is fitted; with ``binarize="dynamic"`` the
        training data stay intensities, and each batch is binarised afresh during training.
        """
        try:
            X = validate_data(self, X, reset=reset, dtype=[np.float32, np.float64])
        except ValueError as err:  # scikit-learn's sentence, as vaekit's own error
            raise DataError(str(err)) from None
        X = np.asarray(X, dtype=np.float32)
        if self.binarize == "dynamic":
            if X.min() < 0 or X.max() > 1:
                raise DataError("binarize='dynamic' needs intensities in [0, 1]; rescale the data.")
            if reset:
                return X
            X = bernoulli_draw(X, seed_from(self.random_state))
        elif self.binarize is not None:
            X = (X > self.binarize).astype(np.float32)
        if reset and self.standardize:
            std = X.std(0)
            self.mean_, self.scale_ = X.mean(0), np.where(std > 0, std, 1.0).astype(np.float32)
        if self.standardize:
            X = (X - self.mean_) / self.scale_
        # A refit checks against the likelihood asked for now, not the one fitted before.
        likelihood = likelihood_class(self.likelihood) if reset else type(self.module_.likelihood)
        likelihood.validate(X)
        return X

    def _to_data_space(self, values: np.ndarray) -> np.ndarray:
        """Undo the standardisation of model-space rows."""
        return values * self.scale_ + self.mean_ if self.standardize else values

    def _log_det_scaling(self) -> float:
        """log |d x_model / d x| summed over features: densities of x add it to the model's."""
        return -float(np.log(self.scale_.astype(np.float64)).sum()) if self.standardize else 0.0

    def _training_batch(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A training batch as the model sees it: a fresh binarisation when dynamic."""
        return torch.bernoulli(x, generator=generator) if self.binarize == "dynamic" else x

    # ---- fitting --------------------------------------------------------------------------
    def fit(
        self,
        X,
        y=None,
        *,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
    ):
        """Fit the model to the rows of X (y is ignored). Returns self.

        With ``checkpoint_dir``, the training state is saved there every ``checkpoint_every``
        epochs and at the end; a fit whose ``checkpoint_dir`` already holds a state for the same
        parameters and data continues from it and ends with the same weights, bit for bit, as
        a fit that was never interrupted.
        """
        self._check_params()
        X = self._prepare(X, reset=True)
        checkpoint = None
        if checkpoint_dir is not None:
            params = {k: v for k, v in self.get_params(deep=False).items() if k != "verbose"}
            checkpoint = Checkpoint(checkpoint_dir, fingerprint(params, X), checkpoint_every)
        generator = seed_generator(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            self.module_ = self._build_module(X.shape[1])
        options = TrainingOptions(
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            learning_rate_schedule=self.learning_rate_schedule,
            max_epochs=self.max_epochs,
            validation_fraction=self.validation_fraction,
            patience=self.patience,
            clip_grad_norm=self.clip_grad_norm,
            precision=self.precision,
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
            checkpoint=checkpoint,
        )
        self.n_epochs_ = len(self.history_)
        self._fit_extra(X, generator)
        return self

    def _fit_extra(self, X: np.ndarray, generator: torch.Generator) -> None:
        """Fit what comes after the networks (the VAE's latent mixture); X is in model space."""

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        """State saved beside the module's weights: the scaler when ``standardize``."""
        if not self.standardize:
            return {}
        return {
            SCALER_MEAN: torch.from_numpy(self.mean_),
            SCALER_SCALE: torch.from_numpy(self.scale_),
        }

    def _restore_extra(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take back what ``_extra_tensors`` saved; raise ConfigError if it is missing or wrong."""
        if self.standardize:
            n = self.n_features_in_
            self.mean_, self.scale_ = (
                finite_array(tensors.pop(key, None), (n,), key).astype(np.float32)
                for key in (SCALER_MEAN, SCALER_SCALE)
            )

    def _min_epochs(self) -> int:
        return 0

    # ---- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def _map(self, fn, X: np.ndarray, batched: bool = True) -> np.ndarray:
        """Apply ``fn(module, batch)`` to batches of X in float64 and stack the results.

        Inference runs on a float64 copy of the module: the numbers are exact to far below a
        nat, and a row's result does not depend on which other rows share its batch. With
        ``batched=False``, ``fn`` gets all rows at once (it batches them itself).
        """
        module = copy.deepcopy(self.module_).double().eval()
        tensor = torch.from_numpy(np.asarray(X, dtype=np.float64))
        if not batched:
            return fn(module, tensor).numpy()
        return torch.cat([fn(module, batch) for batch in tensor.split(PREDICT_BATCH)]).numpy()

    def transform(self, X) -> np.ndarray:
        """The deterministic latent code of each row: (n_samples, n_components)."""
        check_is_fitted(self)
        return self._map(lambda m, x: m.embed(x), self._prepare(X, reset=False))

    def inverse_transform(self, X) -> np.ndarray:
        """The decoder mean E[x|z] for each row of latent codes: (n_samples, n_features)."""
        check_is_fitted(self)
        Z = _check_latent(X, self.n_components)
        return self._to_data_space(self._map(lambda m, z: m.likelihood.mean(m.decode(z)), Z))

    def reconstruct(self, X) -> np.ndarray:
        """Decode the code of each row: ``inverse_transform(transform(X))``."""
        return self.inverse_transform(self.transform(X))

    def reconstruction_log_prob(self, X) -> np.ndarray:
        """log p(x | decoder(code of x)) of each row in nats: how well the code explains x.

        Not a density of x (the code depends on x); a density of the data's units, as
        ``score_samples`` is, when ``standardize=True``.
        """
        check_is_fitted(self)
        X = self._prepare(X, reset=False)
        log_p = self._map(lambda m, x: m.likelihood.log_prob(x, m.decode(m.embed(x))), X)
        return log_p + self._log_det_scaling()

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
        tensors = dict(self.module_.state_dict()) | self._extra_tensors()
        return save_folder(folder, config, tensors, self.history_)


def _check_latent(Z, n_components: int) -> np.ndarray:
    try:
        Z = check_array(Z, dtype=[np.float32, np.float64])
    except ValueError as err:
        raise DataError(f"Latent codes: {err}") from None
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
