"""What the commands print and write: labelled metrics and atomically written files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..exceptions import ConfigError
from ..io import write_atomic

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
