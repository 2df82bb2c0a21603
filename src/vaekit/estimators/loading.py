"""Loading a saved model folder back into an estimator, rebuilding it from registered names."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch
from sklearn.base import clone
from torch import nn

from ..engine.devices import resolve_device
from ..exceptions import ConfigError, ModelFileError
from ..io import load_folder
from .base import EXTRA_PREFIXES, NESTED_FOLDER, TUPLE_PARAMS, LatentEstimator
from .conditions import restore_conditions
from .params import is_int
from .registry import class_by_estimator_name

CONFIG_KEYS = {"format", "schema_version", "vaekit_version", "estimator", "params"}
CONFIG_KEYS |= {"n_features_in", "custom_networks", "weights_sha256", "conditions"}


def load(
    folder: str | os.PathLike,
    *,
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
    device: str | None = None,
) -> LatentEstimator:
    """Load a model saved with ``.save(folder)``. Reads only JSON and safetensors.

    Parameters
    ----------
    folder : path
        The saved model folder.
    encoder, decoder : torch.nn.Module, optional
        A model trained with your own networks needs fresh instances of them; their weights
        come from the folder.
    device : str, optional
        Where the model goes ("auto", "cpu", "cuda", "cuda:N", "mps"); it becomes the
        estimator's ``device``. None keeps the device the model was saved with. Weights are
        saved device-free, so a model trained on a GPU loads on a CPU and back.

    Returns
    -------
    VAE or Autoencoder
        The fitted estimator.
    """
    config, tensors, history = load_folder(folder)
    name = config.get("estimator")
    cls = class_by_estimator_name(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelFileError(f"{folder} holds an unknown estimator {name!r}.")
    if unknown := sorted(set(config) - CONFIG_KEYS):
        raise ModelFileError(f"{folder}/config.json has unknown keys: {', '.join(unknown)}.")
    params = config.get("params")
    n_features = config.get("n_features_in")
    signature = set(inspect.signature(cls).parameters)
    allowed = signature - {"encoder", "decoder"}
    if not isinstance(params, dict):
        raise ModelFileError(f"{folder}/config.json lacks its params.")
    if not is_int(n_features, 1):
        raise ModelFileError(
            f"{folder}/config.json has n_features_in={n_features!r}; it must be a positive integer."
        )
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
    if device is not None:
        params["device"] = device
    nested = _load_nested(folder, params, device)
    params |= {name: clone(model) for name, model in nested.items()}
    networks = {"encoder": encoder, "decoder": decoder} if "encoder" in signature else {}
    estimator = cls(**params, **networks)
    for name, model in nested.items():
        setattr(estimator, f"{name}_", model)
    extra = {k: tensors.pop(k) for k in list(tensors) if k.startswith(EXTRA_PREFIXES)}
    estimator.n_features_in_ = n_features
    try:
        estimator._check_params()
        restore_conditions(estimator, config.get("conditions"))
        module = estimator._build_module(n_features)
        _check_tensors(tensors, module.state_dict())
        module.load_state_dict(tensors, strict=True)
        estimator._restore_extra(extra)
        if extra:
            raise ConfigError(f"unexpected tensors {', '.join(sorted(extra))}")
    except (ConfigError, RuntimeError, TypeError) as err:
        raise ModelFileError(
            f"{folder} cannot be rebuilt from its config and weights: {str(err).rstrip('.')}."
        ) from None
    try:
        device = resolve_device(estimator.device)
    except ConfigError:
        raise ConfigError(
            f"{folder} was saved to run on device={estimator.device!r}, which this machine does "
            "not have; load it with vaekit.load(folder, device='cpu') or device='auto'."
        ) from None
    estimator.module_ = module.to(device).eval()
    estimator.history_ = history
    estimator.n_epochs_ = len(history)
    return estimator


def _load_nested(folder, params: dict, device: str | None) -> dict[str, LatentEstimator]:
    """The fitted estimators saved as model folders inside ``folder``, by parameter name."""
    nested = {}
    for name, value in params.items():
        if isinstance(value, dict) and value == {NESTED_FOLDER: name}:
            nested[name] = load(Path(folder) / name, device=device)
        elif isinstance(value, dict):
            raise ModelFileError(f"{folder}/config.json has a malformed parameter {name}.")
    return nested


def _check_tensors(saved: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Refuse weights whose names, shapes or dtypes are not the rebuilt module's."""
    if missing := sorted(set(expected) - set(saved)):
        raise ConfigError(f"the weights lack {', '.join(missing)}")
    if unexpected := sorted(set(saved) - set(expected)):
        raise ConfigError(f"unexpected tensors {', '.join(unexpected)}")
    for name, tensor in saved.items():
        want = expected[name]
        if tensor.shape != want.shape:
            raise ConfigError(
                f"{name} has shape {tuple(tensor.shape)} where the model needs {tuple(want.shape)}"
            )
        if tensor.dtype != want.dtype:
            raise ConfigError(f"{name} is {tensor.dtype} where the model needs {want.dtype}")
