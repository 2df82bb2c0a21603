"""What the estimators share: parameter checks, input preparation, training, inference, saving.

Parameters live in ``__init__``, ``fit(X)`` returns self, learned state ends in ``_``. Inputs are
2-D arrays (n_samples, n_features); images are flat rows with ``image_shape`` describing them.
Training runs in float32; inference on a float64 copy of the module; results are float64 arrays.
"""

from __future__ import annotations

import contextlib
import copy
import os
import warnings
from collections.abc import Callable
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn
from tqdm.auto import tqdm

from .. import __version__
from ..engine.checkpoint import Checkpoint, fingerprint
from ..engine.devices import check_precision, inference_device, resolve_device
from ..engine.distributed import (
    check_same,
    current_world,
    evaluation_block,
    gather_rows,
    join,
    local_device,
    on_main,
    together,
)
from ..engine.loop import TrainingOptions, TrainingResult, train
from ..engine.schedules import Warmup, parse_duration
from ..engine.sources import DataSource, as_source, count
from ..exceptions import ConfigError, DataError
from ..io import save_folder
from ..model.counts import CountLikelihood
from ..model.distributions import Likelihood
from ..model.likelihoods import likelihood_class, make_likelihood
from ..model.modules import LatentVariableModel
from ..model.nets import build_networks
from .conditions import condition_dim, conditions_config, fit_conditions, with_conditions
from .params import check_params
from .preprocessing import PreparedSource, checked_stats, validated_source

PREDICT_BATCH = 1024
TUPLE_PARAMS = ("hidden_sizes", "channels", "image_shape", "upper_layers", "upper_hidden_sizes")
SCALER_MEAN, SCALER_SCALE = "scaler.mean", "scaler.scale"  # saved beside the module's weights
EXTRA_PREFIXES = ("scaler.", "gmm.")  # the saved tensors that are not the module's
RUNTIME_PARAMS = ("verbose", "device")  # where and how loudly: not part of a fit's identity
NESTED_FOLDER = "saved_in"  # config.json's mark of a parameter saved as a model folder inside


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless ``condition`` holds."""
    if not condition:
        raise ConfigError(message)


def seed_from(random_state) -> int:
    """One integer seed from a scikit-learn ``random_state`` (None, int or RandomState)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def seeded_clone(template: BaseEstimator, random_state) -> BaseEstimator:
    """An unfitted clone of ``template`` for a wrapper to fit: seeded by the wrapper's
    ``random_state`` when given, else by the template's, else by one fresh seed (a model
    without one would draw new noise at every call)."""
    model = clone(template)
    if random_state is not None:
        seed = random_state if isinstance(random_state, Integral) else seed_from(random_state)
        model.set_params(random_state=seed)
    elif model.random_state is None:
        model.set_params(random_state=seed_from(None))
    return model


def seed_generator(random_state) -> torch.Generator:
    """A torch Generator seeded from a scikit-learn ``random_state``."""
    return torch.Generator().manual_seed(seed_from(random_state))


def finite_array(tensor: torch.Tensor | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A saved tensor as a NumPy array, checked for presence, shape and finiteness."""
    if tensor is None or tuple(tensor.shape) != shape or not torch.isfinite(tensor).all():
        raise ConfigError(f"{name} must be a finite array of shape {shape}")
    return tensor.numpy()


class LatentEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """What VAE and Autoencoder share: validation, networks, training, transforms, saving."""

    density_model: bool  # score_samples gives log p(x)
    can_sample: bool  # sample() draws new rows
    regularizer: str  # the name of the loss term beside the reconstruction, in history_
    needs_labels = False  # fit needs y, the rows' (partly known) labels: a classifier
    decodes_codes = True  # inverse_transform decodes a code alone (with its condition)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified one batch at a time, never whole
        return tags

    # ---- set-up -------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_params(self)
        require(
            self.max_epochs is not None or self.max_time is not None,
            "max_epochs=None needs max_time; give a training-time budget or a number of epochs.",
        )
        require(
            not self.standardize or self.likelihood == "gaussian",
            "standardize=True needs likelihood='gaussian'; binary or [0, 1] data need no scaling.",
        )
        require(
            not getattr(self, "library_size", False)
            or issubclass(likelihood_class(self.likelihood), CountLikelihood),
            f"library_size=True needs a count likelihood (poisson, negative_binomial or zinb); "
            f"the {self.likelihood} likelihood has no library size.",
        )
        require(
            (self.encoder is None) == (self.decoder is None),
            "Pass both encoder and decoder modules, or neither.",
        )

    def _encoder_outputs(self) -> int:
        return self.n_components

    def _make_module(
        self, encoder: nn.Module, decoder: nn.Module, likelihood: Likelihood, n_features: int
    ) -> LatentVariableModel:
        """The model's torch module around its networks and likelihood."""
        raise NotImplementedError

    def _check_rows(self, source: DataSource) -> None:
        """Refuse training rows too few for the model (a VampPrior with more pseudo-inputs)."""

    def _make_likelihood(self, n_features: int) -> Likelihood:
        """p(x|z) of the estimator's likelihood parameters."""
        return make_likelihood(
            self.likelihood,
            n_features,
            sigma=self.sigma,
            sigma_value=self.sigma_value,
            sigma_floor=self.sigma_floor,
            dispersion=getattr(self, "dispersion", "feature"),
            library_size=getattr(self, "library_size", False),
        )

    def _build_module(self, n_features: int) -> LatentVariableModel:
        likelihood = self._make_likelihood(n_features)
        decoder_outputs = likelihood.n_heads * n_features
        conditions = condition_dim(self)
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
                condition_dim=conditions,
            )
        _check_network_shapes(
            encoder,
            decoder,
            n_features + conditions,
            self._encoder_outputs(),
            decoder_outputs,
            self.n_components + conditions,
        )
        return self._make_module(encoder, decoder, likelihood, n_features)

    def _prepare(self, X, reset: bool, y=None) -> DataSource:
        """X as a source of rows in the model's space (binarised, standardised), checked, with
        the encoded conditions ``y`` after each row for a conditional model.

        With ``reset`` (in ``fit``) the scaler and the encoding of the conditions are fitted.
        The checks read X in chunks: NaN and infinities (naming the first bad row), and
        whether the values suit the likelihood. With
        ``binarize="dynamic"`` the rows stay intensities: training draws a fresh binarisation of
        every batch, inference one seeded draw (``_map``).
        """
        source = validated_source(self, X, reset)
        threshold = self.binarize if isinstance(self.binarize, Real) else None
        missing = getattr(self, "missing", None) == "ignore"
        stats = checked_stats(PreparedSource(source, threshold), missing, fitting=reset)
        if self.binarize == "dynamic" and (stats.min < 0 or stats.max > 1):
            raise DataError("binarize='dynamic' needs intensities in [0, 1]; rescale the data.")
        if reset and self.standardize:
            self.mean_ = stats.mean.astype(np.float32)
            self.scale_ = np.where(stats.std > 0, stats.std, 1.0).astype(np.float32)
        # A refit checks against the likelihood asked for now, not the one fitted before.
        likelihood = likelihood_class(self.likelihood) if reset else type(self.module_.likelihood)
        if not self.standardize:
            binary = stats.all_binary or self.binarize == "dynamic"
            likelihood.validate(stats.min, stats.max, binary, stats.all_integer or binary)
        if self.standardize:
            prepared = PreparedSource(source, threshold, self.mean_, self.scale_)
        else:
            prepared = PreparedSource(source, threshold)
        return self._beside(prepared, y, reset)

    def _beside(self, prepared: DataSource, y, reset: bool) -> DataSource:
        """The model's rows with what goes after them: a conditional model's encoded
        conditions ``y`` (their encoding fitted when ``reset``); the rows alone otherwise."""
        if getattr(self, "condition", None) is None:
            return prepared
        if reset:
            fit_conditions(self, y, len(prepared))
        return with_conditions(self, prepared, y)

    def _to_data_space(self, values: np.ndarray) -> np.ndarray:
        """Undo the standardisation of model-space rows."""
        return values * self.scale_ + self.mean_ if self.standardize else values

    def _log_det_scaling(self) -> float:
        """log |d x_model / d x| summed over features: densities of x add it to the model's."""
        return -float(np.log(self.scale_.astype(np.float64)).sum()) if self.standardize else 0.0

    # ---- fitting --------------------------------------------------------------------------
    def fit(
        self,
        X,
        y=None,
        *,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        callback: Callable[[dict], None] | None = None,
        log_dir: str | os.PathLike | None = None,
        log_rows=None,
    ):
        """Fit the model to the rows of X (and their conditions y). Returns self.

        Parameters
        ----------
        X : array-like, memory map, scipy.sparse matrix or DataSource of shape (n, n_features)
            The training rows. Arrays keep their dtype (uint8 stays uint8) and are converted
            one batch at a time; a memory map (``np.load(path, mmap_mode="r")``) is never
            read whole into memory; a sparse matrix is densified one batch at a time.
        y : array-like of shape (n,) or (n, n_covariates), optional
            The rows' conditions for a conditional model (``condition="label"``: one class
            label per row; ``"covariates"``: one row of numbers per row); ignored otherwise,
            as in a scikit-learn transformer.
        checkpoint_dir : path, optional
            The training state is saved there every ``checkpoint_every`` epochs and at the end;
            a fit whose ``checkpoint_dir`` already holds a state for the same parameters and
            data continues from it and ends with the same weights, bit for bit, as a fit that
            was never interrupted (on the same device, torch build and thread count; with
            ``max_time`` it goes on with the training time already spent).
        checkpoint_every : int, default=1
            Epochs between checkpoints.
        callback : callable, optional
            Called after every epoch with that epoch's history record (a dict); the time it
            takes does not count as training time.
        log_dir : path, optional
            Write TensorBoard logs into this folder (it needs ``pip install
            'vaekit[tensorboard]'``): every epoch's history record as scalars, with the KL
            weight, at steps that are epoch numbers (a resumed fit continues the curves);
            pictures of samples and reconstructions for image data (``image_shape``, or a
            convolutional model) at epoch 1, every 10 epochs and of the weights kept; and the
            codes of ``log_rows`` for the projector. See docs/tensorboard.md.
        log_rows : array-like, or tuple (rows, y), optional
            With ``log_dir``: the rows (held-out ones, say) whose reconstructions are pictured
            and whose codes go to the projector (up to 2000, evenly spaced), with what ``y``
            is to ``fit`` for them: a conditional model's conditions, else labels for the
            projector. Default: X and y.

        Returns
        -------
        self

        Notes
        -----
        Started by torchrun, every process calling ``fit`` on the same rows trains one model
        data-parallel: ``batch_size`` is the batch of all the processes together, the history
        and early stopping are computed from all of them, rank 0 alone writes the checkpoints
        (with every process's random state), and with ``device="cuda"`` (or ``"auto"``) each
        process takes the GPU of its local rank. See docs/distributed.md.
        """
        self._check_params()
        if log_dir is not None:
            from .tensorboard import TensorBoardLog, check_log_dir  # tensorboard is optional

            on_main(lambda: check_log_dir(log_dir))
        world = join()  # under torchrun: the process group, one GPU per process
        device = local_device(resolve_device(self.device), world)
        check_precision(self.precision, device)
        max_time = parse_duration(self.max_time, "max_time")
        source = together(lambda: self._prepare(X, reset=True, y=y))  # a bad row stops all
        self._check_rows(source)
        checkpoint = None
        if checkpoint_dir is not None or world.distributed:
            params = self.get_params(deep=False)
            params = {k: v for k, v in params.items() if k not in RUNTIME_PARAMS}
            identity = fingerprint(params, source.fingerprint())
            check_same(identity, "parameters or data", world)
        if checkpoint_dir is not None:
            checkpoint = Checkpoint(checkpoint_dir, identity, checkpoint_every)
        generator = seed_generator(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            self.module_ = self._build_module(self.n_features_in_)
            _fit_library(self.module_.likelihood, source, self.n_features_in_)
            self.module_.to(device)
        log = None
        if log_dir is not None:
            log = TensorBoardLog(self, log_dir, (X, y) if log_rows is None else log_rows)
        options = TrainingOptions(
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            learning_rate_schedule=self.learning_rate_schedule,
            max_epochs=self.max_epochs,
            max_time=max_time,
            validation_fraction=self.validation_fraction,
            patience=self.patience,
            clip_grad_norm=self.clip_grad_norm,
            ema_decay=self.ema_decay,
            precision=self.precision,
            device=device,
            annealed=self._annealed(),
            callback=callback if log is None else log.before(callback),
            verbose=self.verbose,
        )
        with contextlib.nullcontext() if log is None else log:
            result = train(self.module_, source, options, generator, checkpoint)
            self.history_, self.n_epochs_ = result.history, len(result.history)
            self.stopped_by_, self.best_epoch_ = result.stopped_by, result.best_epoch
            _warn_if_still_improving(result)
            self._fit_extra(source, generator)
            if log is not None:
                log.finish()
        return self

    def _annealed(self) -> dict[str, Warmup]:
        """Module attributes that a warm-up moves during training (the VAE's KL weight)."""
        return {}

    def _fit_extra(self, source: DataSource, generator: torch.Generator) -> None:
        """Fit what comes after the networks (the VAE's latent mixture) on the training rows."""

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

    # ---- inference --------------------------------------------------------------------------
    def _inference_device(self) -> torch.device:
        return inference_device(next(self.module_.parameters()).device)

    @torch.no_grad()
    def _map(
        self,
        fn,
        data,
        *,
        draw: bool = False,
        progress: str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> np.ndarray:
        """Apply ``fn(module, batch)`` to batches of ``data`` in ``dtype`` and stack the results.

        Inference runs on a float64 copy of the module (or one in ``dtype``), on the training
        device (the CPU for MPS, which has no float64): the numbers are exact to far below a
        nat, and a row's result does not depend on which other rows share its batch. ``data``
        is a source or an array; with ``draw``, its intensities get one binarisation seeded by
        ``random_state`` (``binarize="dynamic"``). ``progress`` labels a progress bar over the
        rows. Under
        torchrun, with the process group joined, each process maps its block of the rows and
        every process gets all the results, in the rows' order, the same as one process's.
        """
        device = self._inference_device()
        module = copy.deepcopy(self.module_).to(device, dtype).eval()
        source = data if isinstance(data, DataSource) else as_source(data)
        world = current_world()  # under torchrun each process maps its block of rows
        block = evaluation_block(len(source), world)
        rng = np.random.default_rng(seed_from(self.random_state)) if draw else None
        n_data = source.n_features - condition_dim(self)
        if rng is not None:  # the draws of the rows before this block, as one process makes them
            rng.bit_generator.advance(block.start * n_data)
        out = []
        bar = tqdm(
            total=len(source), desc=progress, unit="row", disable=True if progress is None else None
        )
        for _, rows in source.chunks(PREDICT_BATCH, block):
            if rng is not None:  # the data columns only, never a condition after them
                data = rows[:, :n_data]  # a missing value (NaN) stays missing
                drawn = rng.random(data.shape) < data
                rows[:, :n_data] = np.where(np.isnan(data), data, drawn)
            batch = torch.from_numpy(rows).to(device, dtype)
            out.append(fn(module, batch))
            bar.update(len(rows) * world.size)
        bar.close()
        if not out:  # more processes than rows: this one's block is empty, of the results' shape
            first = torch.from_numpy(source.rows(np.arange(1))).to(device, dtype)
            out.append(fn(module, first)[:0])
        return gather_rows(torch.cat(out), world).cpu().numpy()

    def _map_data(
        self, fn, X, progress: str | None = None, y=None, dtype: torch.dtype = torch.float64
    ) -> np.ndarray:
        """``_map`` over the rows of X in the model's space (with their conditions ``y``)."""
        source = self._prepare(X, reset=False, y=y)
        draw = self.binarize == "dynamic"
        return self._map(fn, source, draw=draw, progress=progress, dtype=dtype)

    def transform(self, X, y=None) -> np.ndarray:
        """The deterministic latent code of each row: (n_samples, n_components).

        A conditional model takes the rows' conditions as ``y``; others ignore it.

        Parameters
        ----------
        X : array-like, memory map, scipy.sparse matrix or DataSource of shape (n, n_features)
            The rows to encode, in the units ``fit`` saw.
        y : array-like, optional
            The rows' conditions, for a conditional model; ignored otherwise.

        Returns
        -------
        ndarray of shape (n, n_components)
            The posterior means (a VAE) or the codes (an autoencoder), float64.
        """
        check_is_fitted(self)
        return self._map_data(lambda m, b: m.embed(b), X, y=y)

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """``fit(X, y)``, then the codes of X (given their conditions y, if conditional).

        Parameters
        ----------
        X : array-like, memory map, scipy.sparse matrix or DataSource of shape (n, n_features)
            The training rows, as in ``fit``.
        y : array-like, optional
            The rows' conditions, for a conditional model; ignored otherwise.
        **fit_params
            ``fit``'s keyword arguments (``checkpoint_dir``, ``callback``, ...).

        Returns
        -------
        ndarray of shape (n, n_components)
            ``transform(X, y)`` of the fitted model.
        """
        return self.fit(X, y, **fit_params).transform(X, y)

    def inverse_transform(self, X, y=None) -> np.ndarray:
        """The decoder mean E[x|z] for each row of latent codes: (n_samples, n_features).

        A conditional model decodes each code with its condition, given as ``y``.

        Parameters
        ----------
        X : array-like of shape (n, n_components)
            Latent codes z.
        y : array-like, optional
            The codes' conditions, for a conditional model; ignored otherwise.

        Returns
        -------
        ndarray of shape (n, n_features)
            E[x|z] in the data's units (a standardisation undone), float64.
        """
        check_is_fitted(self)
        Z = check_latent(X, self.n_components)
        if getattr(self, "condition", None) is not None:
            Z = with_conditions(self, as_source(Z.astype(np.float32)), y)
        return self._to_data_space(
            self._map(lambda m, b: m.likelihood.mean(m.decode(*m.split(b))), Z)
        )

    def reconstruct(self, X, y=None) -> np.ndarray:
        """Decode the code of each row: ``inverse_transform(transform(X, y), y)``.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows to reconstruct.
        y : array-like, optional
            The rows' conditions, for a conditional model; ignored otherwise.

        Returns
        -------
        ndarray of shape (n, n_features)
            The decoder mean at each row's code, in the data's units.
        """
        return self.inverse_transform(self.transform(X, y), y)

    def reconstruction_log_prob(self, X, y=None) -> np.ndarray:
        """log p(x | decoder(code of x)) of each row in nats: how well the code explains x.

        Not a density of x (the code depends on x); a density of the data's units, as
        ``score_samples`` is, when ``standardize=True``. A conditional model takes the rows'
        conditions as ``y``.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        y : array-like, optional
            The rows' conditions, for a conditional model; ignored otherwise.

        Returns
        -------
        ndarray of shape (n,)
            log p(x | decoder(code of x)) of each row, in nats.
        """
        check_is_fitted(self)
        log_p = self._map_data(lambda m, b: m.reconstruction_log_prob(b), X, y=y)
        return log_p + self._log_det_scaling()

    @property
    def _n_features_out(self) -> int:
        return self.n_components

    # ---- saving ------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Save to a folder (config.json, model.safetensors, metrics.jsonl); nothing is pickled.

        A parameter that is itself an estimator (the M1 of an M1+M2 stack) is saved fitted, as
        its own model folder inside this one, named after the parameter.

        Parameters
        ----------
        folder : path
            The folder to write; it is created if missing, and files of an earlier save there
            are replaced (each through a temporary file and a rename).

        Returns
        -------
        pathlib.Path
            The folder. ``vaekit.load(folder)`` reads it back.
        """
        check_is_fitted(self)
        params = self.get_params(deep=False)
        for name, value in params.items():
            if isinstance(value, BaseEstimator):
                getattr(self, f"{name}_").save(Path(folder) / name)
                params[name] = {NESTED_FOLDER: name}
        custom = params.pop("encoder", None) is not None
        params.pop("decoder", None)
        if not isinstance(params["random_state"], (Integral, type(None))):
            params["random_state"] = None
        config = {
            "vaekit_version": __version__,
            "estimator": type(self).__name__,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
            "n_features_in": int(self.n_features_in_),
            "custom_networks": custom,
        }
        if (conditions := conditions_config(self)) is not None:
            config["conditions"] = conditions
        weights = {k: v.cpu() for k, v in self.module_.state_dict().items()}
        tensors = weights | self._extra_tensors()
        return save_folder(folder, config, tensors, self.history_)


def _warn_if_still_improving(result: TrainingResult) -> None:
    """ConvergenceWarning when the budget ended training while the monitored loss was still
    falling: its best value came in the last tenth of the epochs."""
    if result.stopped_by == "early_stopping":
        return
    key = "val_loss" if "val_loss" in result.history[0] else "loss"
    losses = [record[key] for record in result.history]
    best = int(np.argmin(losses)) + 1
    if best <= len(losses) - max(1, len(losses) // 10):
        return
    budget = "max_epochs" if result.stopped_by == "max_epochs" else "max_time"
    what = "validation loss" if key == "val_loss" else "training loss"
    warnings.warn(
        f"Training stopped at {budget} after {count(len(losses), 'epoch')} while the {what} "
        f"was still falling (its best at epoch {best}); raise {budget} for a better fit.",
        ConvergenceWarning,
        stacklevel=3,
    )


def _fit_library(likelihood: Likelihood, source: DataSource, n_features: int) -> None:
    """Give a count likelihood with the library-size offset the training rows' totals."""
    if getattr(likelihood, "library_size", False):
        totals = [rows[:, :n_features].sum(axis=1) for _, rows in source.chunks()]
        likelihood.fit_library(np.concatenate(totals))


def check_latent(Z, n_components: int) -> np.ndarray:
    """Latent codes as a checked float array of ``n_components`` columns; DataError or
    ConfigError in one sentence otherwise."""
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
