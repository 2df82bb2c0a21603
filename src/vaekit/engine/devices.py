"""Devices and precisions: resolved once, refused clearly, never a silent fallback."""

from __future__ import annotations

import contextlib
import re

import torch

from ..exceptions import ConfigError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """The torch device for ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    ``auto`` is CUDA when PyTorch can use it, else the CPU (MPS only when asked for).

    Raises
    ------
    ConfigError
        For a malformed name or a device this machine does not have.
    """
    if not isinstance(name, str) or not DEVICE_PATTERN.match(name):
        raise ConfigError("device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(
                f"device={name!r} was asked for, but PyTorch sees no CUDA device on this "
                "machine; use device='cpu' or 'auto'."
            )
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"device={name!r} was asked for, but PyTorch sees {count} CUDA device(s), "
                f"numbered from 0; use cuda:0 to cuda:{count - 1}."
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "device='mps' was asked for, but this machine has no Apple GPU that PyTorch can "
            "use; use device='cpu' or 'auto'."
        )
    return device


def inference_device(device: torch.device) -> torch.device:
    """Where float64 inference runs: the training device, or the CPU for MPS (no float64)."""
    return torch.device("cpu") if device.type == "mps" else device


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot train in."""
    if precision not in PRECISIONS:
        raise ConfigError("precision must be 'fp32', 'bf16' or 'fp16'.")
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError(
            "precision='fp16' needs a GPU (its gradient scaler guards against underflow there); "
            "on the CPU use 'bf16' or 'fp32'."
        )


def autocast(device: torch.device, precision: str):
    """The autocast context of a training forward pass (a no-op for fp32)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def gradient_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 training, None otherwise."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU batch on ``device``: through pinned memory and a non-blocking copy on CUDA."""
    if device.type == "cpu":
        return batch
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)
