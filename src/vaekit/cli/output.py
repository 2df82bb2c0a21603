"""What the commands print and write: labelled metrics and atomically written files."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np

from ..exceptions import ConfigError
from ..io import write_atomic
from ..runs import TRAINING_WARNINGS

METRIC_LABELS = {
    "n_examples": "examples",
    "log_likelihood": "log p(x), nats/example",
    "elbo": "ELBO, nats/example",
    "kl": "KL(q||p), nats/example",
    "active_units": "active latent units",
    "bits_per_dim": "bits/dim (-log p(x))",
    "squared_error": "squared error/example",
    "reconstruction_nll_at_code": "-log p(x|code), nats",
}


def print_metrics(metrics: dict) -> None:
    """The numbers a person reads first, labelled with their units."""
    for key, label in METRIC_LABELS.items():
        if key not in metrics:
            continue
        value = metrics[key]
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        if key == "log_likelihood":
            text += f" ± {metrics['log_likelihood_sem']:.3f} (K={metrics['importance_samples']})"
        if key == "active_units":
            text += f" of {len(metrics['kl_per_unit'])}"
        print(f"  {label:<24}{text}")


def print_training(info: dict) -> None:
    """Why training stopped, and the warnings about how it went (run.json's ``training``)."""
    training = info.get("training")
    if not training:
        return
    epochs, stopped_by = info["epochs"], training["stopped_by"]
    if stopped_by == "early_stopping":
        patience = info["params"]["patience"]
        line = (
            f"stopped early at epoch {epochs}: no better validation loss for {patience} epochs; "
            f"kept the weights of epoch {training['best_epoch']}"
        )
    elif stopped_by == "max_epochs":
        line = f"stopped at max_epochs ({epochs} epochs)"
    else:
        line = (
            f"stopped when max_time ran out ({info['training_seconds'] / 60:.1f} min of training)"
        )
    print(f"  {line}")
    for message in training["warnings"]:
        print(f"  warning: {message}")


@contextlib.contextmanager
def quiet_training_warnings():
    """Silence the warnings about training that the summary repeats in its own words."""
    with warnings.catch_warnings():
        for category in TRAINING_WARNINGS:
            warnings.simplefilter("ignore", category)
        yield


def write_output(path: Path, data: bytes) -> None:
    if not path.parent.is_dir():
        raise ConfigError(f"Cannot write {path}: folder {path.parent} does not exist.")
    write_atomic(path, data)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def csv_bytes(array: np.ndarray, header: str, fmt) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, array, delimiter=",", header=header, comments="", fmt=fmt)
    return buffer.getvalue().encode()


def save_image(path: Path, run, draw) -> None:
    if path.suffix != ".png":
        raise ConfigError(f"Write the picture to a .png file, not {path.name}.")
    if run.image_shape is None:
        raise ConfigError("This run's data are not images, so there is no picture to draw.")
    if not path.parent.is_dir():
        raise ConfigError(f"Cannot write {path}: folder {path.parent} does not exist.")
    print(f"wrote {draw(path)}")


def save_rows(rows: np.ndarray, path: Path, run, draw) -> None:
    if path.suffix == ".npy":
        write_output(path, npy_bytes(rows))
    elif path.suffix == ".csv":
        write_output(
            path, csv_bytes(rows, ",".join(f"x{i + 1}" for i in range(rows.shape[1])), "%.6g")
        )
    else:
        save_image(path, run, draw)
        return
    print(f"wrote {len(rows)} rows to {path}")
