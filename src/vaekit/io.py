"""The on-disk format of a saved model: a folder with config.json and model.safetensors.

Only JSON and safetensors are ever read, so loading cannot run code. config.json carries a
schema version and the SHA256 of the weights file; each file is written to a temporary name and
renamed into place, weights first, so an interrupted save never leaves a half-written file and a
mismatched pair is refused on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .exceptions import ModelFileError

SCHEMA_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.jsonl"
UMASK = os.umask(0o022)
os.umask(UMASK)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_folder(
    folder: str | os.PathLike,
    config: dict,
    tensors: dict[str, torch.Tensor],
    history: list[dict] | None = None,
) -> Path:
    """Write a model folder: weights, then metrics, then the config that vouches for them."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ModelFileError(f"Cannot save the model to {folder}: it exists and is not a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    weights = save_safetensors({k: v.detach().contiguous() for k, v in tensors.items()})
    write_atomic(folder / WEIGHTS_FILE, weights)
    if history is not None:
        lines = "".join(json.dumps(record) + "\n" for record in history)
        write_atomic(folder / METRICS_FILE, lines.encode())
    full = {
        "format": "vaekit",
        "schema_version": SCHEMA_VERSION,
        **config,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    write_atomic(folder / CONFIG_FILE, (json.dumps(full, indent=2) + "\n").encode())
    return folder


def _read(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise ModelFileError(
            f"{path.parent} is not a vaekit model folder: {what} {path.name} is missing."
        )
    return path.read_bytes()


def load_folder(folder: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor], list[dict]]:
    """Read and verify a model folder; return (config, tensors, history)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFileError(f"No model folder at {folder}.")
    try:
        config = json.loads(_read(folder / CONFIG_FILE, "its configuration"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(
            f"{folder / CONFIG_FILE} is not valid JSON ({err.msg if hasattr(err, 'msg') else err})."
        ) from None
    if not isinstance(config, dict) or config.get("format") != "vaekit":
        raise ModelFileError(f"{folder / CONFIG_FILE} is not a vaekit model configuration.")
    version = config.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelFileError(
            f"{folder} has model schema version {version!r}; this vaekit reads version "
            f"{SCHEMA_VERSION}, so upgrade vaekit or re-save the model."
        )
    weights = _read(folder / WEIGHTS_FILE, "its weights file")
    if hashlib.sha256(weights).hexdigest() != config.get("weights_sha256"):
        raise ModelFileError(
            f"{folder / WEIGHTS_FILE} does not match the SHA256 in config.json: "
            "the file is corrupt, truncated or was changed after saving."
        )
    try:
        tensors = load_safetensors(weights)
    except (SafetensorError, ValueError) as err:
        raise ModelFileError(
            f"{folder / WEIGHTS_FILE} is not a readable safetensors file ({err})."
        ) from None
    history = []
    metrics = folder / METRICS_FILE
    if metrics.is_file():
        try:
            history = [json.loads(line) for line in metrics.read_text().splitlines() if line]
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ModelFileError(f"{metrics} is not valid JSON lines.") from None
    return config, tensors, history
