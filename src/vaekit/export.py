"""Export a fitted VAE or autoencoder to ONNX: the encoder and the decoder as two graphs with a
dynamic batch axis, and model.json, which says what goes in, what comes out and what it means.

The encoder takes rows as ``transform`` does, in the data's units: the graph applies the
estimator's preprocessing itself (threshold binarisation, standardisation; a count model's
log(1 + x) and a missing-value model's NaN -> 0 are the module's own), so a user feeds raw rows.
The one exception is ``binarize="dynamic"``, whose binarisation is a random draw: that encoder
takes the binary rows. The decoder gives the likelihood's parameters, named after what they
are, in the data's units (a standardised Gaussian's mean and sigma are scaled back). The prior
is not exported; only the standard normal is drawn from as N(0, I).

Everything is built in a staging folder beside the output and renamed into place, and each graph
is checked against PyTorch with onnxruntime on rows of another batch size first, so a failed
export leaves nothing behind. onnx, onnxscript and onnxruntime are the optional extra
``vaekit[onnx]``, imported only here, when an export runs.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import os
import shutil
import tempfile
import warnings
from numbers import Real
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from . import __version__
from .estimators import LatentEstimator, load
from .estimators.conditions import condition_dim, conditions_config
from .exceptions import ConfigError
from .io import UMASK
from .model.modules import LOG_VAR_MAX, LOG_VAR_MIN, LatentVariableModel, VAEModule

FORMAT_VERSION = 1
ENCODER_FILE, DECODER_FILE, DESCRIPTION_FILE = "encoder.onnx", "decoder.onnx", "model.json"
BATCH = "batch"  # the symbolic name of every input's and output's first axis
EXAMPLE_ROWS, CHECK_ROWS = 3, 5  # traced with one batch size, checked with another
TOLERANCE = 1e-4  # onnxruntime against PyTorch, both float32, relative and absolute


def export_onnx(
    model: LatentEstimator | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a fitted VAE's or autoencoder's encoder and decoder as ONNX graphs.

    ``out_dir`` receives ``encoder.onnx`` (rows ``x``, and ``condition`` for a conditional
    model -> ``mean`` and ``log_var`` of q(z|x), or an autoencoder's ``code``),
    ``decoder.onnx`` (``z``, and ``condition`` -> the likelihood's parameters, e.g. ``logits``
    or ``mean`` and ``sigma``) and ``model.json``, their description; every input and output
    has a dynamic first axis, ``batch``. See docs/export.md.

    Parameters
    ----------
    model : VAE, Autoencoder or path
        A fitted estimator, or a run or model folder to load one from.
    out_dir : path
        The folder to write; its parent folders are made as needed.
    overwrite : bool, default=False
        Replace ``out_dir`` if it exists (else an existing one is refused).

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    onnx, onnxruntime = _onnx_modules()
    estimator = load(model, device="cpu") if isinstance(model, str | os.PathLike) else model
    _check_exportable(estimator)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; choose another out_dir or pass overwrite=True.")
    module = copy.deepcopy(estimator.module_).to("cpu", torch.float32).eval()
    graphs = {
        ENCODER_FILE: EncoderGraph(module, estimator),
        DECODER_FILE: DecoderGraph(module, estimator),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        os.chmod(staging, 0o777 & ~UMASK)  # mkdtemp makes 0700; give the folder the usual mode
        described = {
            name: _export(graph, staging / name, onnx, onnxruntime)
            for name, graph in graphs.items()
        }
        text = json.dumps(_description(estimator, described), indent=2) + "\n"
        (staging / DESCRIPTION_FILE).write_text(text)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _onnx_modules():
    """(onnx, onnxruntime), imported now; onnxscript too, which torch's exporter needs."""
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401 (torch.onnx.export imports it itself)
    except ImportError:
        raise ConfigError(
            "Exporting to ONNX needs onnx, onnxscript and onnxruntime: pip install 'vaekit[onnx]'."
        ) from None
    return onnx, onnxruntime


def _check_exportable(estimator: LatentEstimator) -> None:
    """Refuse, in one sentence, what has no encoder and decoder to export on their own."""
    if not isinstance(estimator, LatentEstimator):
        raise ConfigError(
            "export_onnx takes a fitted VAE or Autoencoder, or a folder saved from one; got "
            f"{type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    if estimator.needs_labels:
        raise ConfigError(
            f"A {type(estimator).__name__} cannot be exported to ONNX: its encoder q(z|x, y) "
            "needs the class its classifier q(y|x) gives, which the export does not cover; "
            "export a VAE or an Autoencoder."
        )


def _scaling(estimator: LatentEstimator) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The standardisation's (mean, scale) as tensors, or (None, None) without one."""
    if not estimator.standardize:
        return None, None
    return torch.from_numpy(estimator.mean_), torch.from_numpy(estimator.scale_)


class EncoderGraph(nn.Module):
    """Raw rows (and their encoded conditions) -> the posterior's mean and clamped
    log-variance, or an autoencoder's code.

    The rows go through the estimator's preprocessing first: binarisation at a threshold (a
    missing value, NaN, stays missing), then standardisation.
    """

    def __init__(self, module: LatentVariableModel, estimator: LatentEstimator):
        super().__init__()
        self.module = module
        binarize = estimator.binarize
        self.threshold = float(binarize) if isinstance(binarize, Real) else None
        mean, scale = _scaling(estimator)
        self.register_buffer("scaler_mean", mean)
        self.register_buffer("scaler_scale", scale)
        self.inputs = _with_condition([("x", estimator.n_features_in_)], estimator)
        names = ("mean", "log_var") if isinstance(module, VAEModule) else ("code",)
        self.outputs = [(name, estimator.n_components) for name in names]

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None):
        if self.threshold is not None:
            x = torch.where(torch.isnan(x), x, (x > self.threshold).to(x.dtype))
        if self.scaler_mean is not None:
            x = (x - self.scaler_mean) / self.scaler_scale
        batch = x if condition is None else torch.cat([x, condition], dim=-1)
        if not isinstance(self.module, VAEModule):
            return self.module.embed(batch)
        q = self.module.encode(batch)
        return q.mean, q.log_var


class DecoderGraph(nn.Module):
    """Latent codes (and their encoded conditions) -> the likelihood's parameters of every
    feature, in the data's units: a standardised Gaussian's mean and sigma are scaled back."""

    def __init__(self, module: LatentVariableModel, estimator: LatentEstimator):
        super().__init__()
        self.module = module
        mean, scale = _scaling(estimator)
        self.register_buffer("scaler_mean", mean)
        self.register_buffer("scaler_scale", scale)
        self.inputs = _with_condition([("z", estimator.n_components)], estimator)
        with torch.no_grad():
            names = self.named(*(torch.zeros(1, width) for _, width in self.inputs))
        self.outputs = [(name, estimator.n_features_in_) for name in names]

    def named(self, z: torch.Tensor, condition: torch.Tensor | None = None):
        """The likelihood's parameters by name (``Likelihood.distribution_params``)."""
        params = self.module.likelihood.distribution_params(self.module.decode(z, condition))
        if self.scaler_mean is not None:  # standardize=True is for the Gaussian likelihood only
            params["mean"] = params["mean"] * self.scaler_scale + self.scaler_mean
            params["sigma"] = params["sigma"] * self.scaler_scale
        return params

    def forward(self, z: torch.Tensor, condition: torch.Tensor | None = None):
        return tuple(self.named(z, condition).values())


def _with_condition(inputs: list[tuple[str, int]], estimator) -> list[tuple[str, int]]:
    """A conditional model's graphs take the encoded conditions as a second input."""
    width = condition_dim(estimator)
    return [*inputs, ("condition", width)] if width else inputs


def _export(graph: EncoderGraph | DecoderGraph, path: Path, onnx, onnxruntime) -> dict:
    """Write ``graph`` to ``path``, check it, and describe its inputs and outputs.

    The exporter is torch.export's (``dynamo=True``), torch's default, though it takes about
    2 s a graph where the TorchScript one (``dynamo=False``) takes 0.1 s: that one is
    deprecated, and it traces Python branches on shapes into constants with no more than a
    TracerWarning, where torch.export keeps the batch axis symbolic or refuses (and the check
    on another batch size below confirms it).
    """
    example = tuple(torch.zeros(EXAMPLE_ROWS, width) for _, width in graph.inputs)
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                graph,
                example,
                dynamo=True,
                input_names=[name for name, _ in graph.inputs],
                output_names=[name for name, _ in graph.outputs],
                dynamic_shapes=tuple({0: BATCH} for _ in example),
                verbose=False,
            )
            program.save(path)
    except Exception as err:  # a user's own network that torch.export cannot follow
        first = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(".")
        raise ConfigError(f"The {path.stem} could not be exported to ONNX: {first}.") from None
    onnx.checker.check_model(str(path))
    _check_against_torch(graph, path, onnxruntime)
    return {
        "file": path.name,
        "inputs": [_tensor(name, width) for name, width in graph.inputs],
        "outputs": [_tensor(name, width) for name, width in graph.outputs],
    }


@contextlib.contextmanager
def _quiet_exporter():
    """torch.onnx's warnings and log lines (torchvision's absence, deprecations) kept from the
    user, who can do nothing about them."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _check_against_torch(graph: EncoderGraph | DecoderGraph, path: Path, onnxruntime) -> None:
    """Run the saved graph with onnxruntime on CHECK_ROWS rows in [0, 1) (data any likelihood
    takes) and refuse it unless every output agrees with PyTorch's to ``TOLERANCE``."""
    rng = np.random.default_rng(0)
    inputs = {name: rng.random((CHECK_ROWS, width), np.float32) for name, width in graph.inputs}
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([name for name, _ in graph.outputs], inputs)
    with torch.no_grad():
        expected = graph(*(torch.from_numpy(a) for a in inputs.values()))
    expected = expected if isinstance(expected, tuple) else (expected,)
    for (name, _), a, b in zip(graph.outputs, got, expected, strict=True):
        b = b.numpy()
        if a.shape != b.shape or not np.allclose(a, b, TOLERANCE, TOLERANCE, equal_nan=True):
            raise ConfigError(
                f"The exported {path.stem} gives another {name} than PyTorch on a batch of "
                f"{CHECK_ROWS} rows; please report it with the model's parameters."
            )


def _tensor(name: str, width: int) -> dict:
    return {"name": name, "shape": [BATCH, width], "dtype": "float32"}


def _description(estimator: LatentEstimator, graphs: dict[str, dict]) -> dict:
    """model.json: the graphs' inputs and outputs, what the encoder's x holds, the latent
    space, the likelihood, and how its parameters give the data's mean."""
    likelihood = estimator.module_.likelihood
    params = estimator.get_params(deep=False)
    accepted = inspect.signature(type(likelihood).__init__).parameters
    conditions = conditions_config(estimator)
    described = {
        "format": "vaekit-onnx",
        "format_version": FORMAT_VERSION,
        "vaekit_version": __version__,
        "estimator": type(estimator).__name__,
        "n_features": int(estimator.n_features_in_),
        "n_components": int(estimator.n_components),
        "image_shape": _image_shape(params["image_shape"]),
        "dtype": "float32",
        "batch_axis": BATCH,
        "encoder": graphs[ENCODER_FILE],
        "decoder": graphs[DECODER_FILE],
        "preprocessing": _preprocessing(estimator),
        "condition": None if conditions is None else {"kind": params["condition"], **conditions},
        "latent": _latent(estimator),
        "likelihood": {
            "name": likelihood.name,
            "parameters": {k: params[k] for k in accepted if k in params},
            "outputs": [output["name"] for output in graphs[DECODER_FILE]["outputs"]],
            "units": "data",
            "data_mean": likelihood.mean_formula,
        },
    }
    if getattr(likelihood, "library_size", False):
        loc, scale = likelihood.log_library.tolist()
        described["likelihood"]["library"] = {
            "log_total_mean": loc,
            "log_total_std": scale,
            "note": "log_mean is for a row of total exp(log_total_mean); for a row of total T "
            "add log(T) - log_total_mean",
        }
    return described


def _image_shape(shape) -> list[int] | None:
    """(channels, height, width) of an image row; (height, width) means one channel."""
    if not shape:
        return None
    return [1, *shape] if len(shape) == 2 else list(shape)


def _preprocessing(estimator: LatentEstimator) -> dict:
    """What the encoder's x holds, and what the graph does to it before the network."""
    if estimator.binarize == "dynamic":
        what = (
            "binary rows (0 or 1): the model was trained on random binarisations of "
            "intensities in [0, 1], so draw x ~ Bernoulli(intensity) before encoding"
        )
    else:
        what = "rows in the data's units, as transform takes them"
    if getattr(estimator, "missing", None) == "ignore":
        what += "; NaN marks a missing value"
    threshold = estimator.binarize if isinstance(estimator.binarize, Real) else None
    mean, scale = _scaling(estimator)
    return {
        "in_graph": True,
        "input": what,
        "binarize_threshold": threshold,
        "standardize": None if mean is None else {"mean": mean.tolist(), "scale": scale.tolist()},
    }


def _latent(estimator: LatentEstimator) -> dict:
    """What the encoder's outputs mean, and where codes to decode come from."""
    if not isinstance(estimator.module_, VAEModule):
        return {"code": "the autoencoder's deterministic code", "prior": None}
    latent = {
        "posterior": f"N(mean, exp(log_var)), log_var clamped to [{LOG_VAR_MIN:g}, "
        f"{LOG_VAR_MAX:g}]",
        "prior": estimator.prior,
    }
    if estimator.upper_layers:  # the graphs are the first layer's: q(z1|x) and p(x|z1)
        latent["upper_layers"] = list(estimator.upper_layers)
    if estimator.prior == "standard_normal" and not estimator.upper_layers:
        latent["sample"] = "z ~ N(0, I), then decode"
    else:
        latent["sample"] = "this prior is not exported; decode the encoder's codes"
    return latent


def _replace(staging: Path, out: Path) -> None:
    """Put the staging folder at ``out``, the old one (if any) set aside and removed after."""
    old = None
    if out.exists():
        old = staging.with_name(staging.name + ".old")
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
