"""What the commands print and write: labelled metrics and atomically written files."""

from __future__ import annotations

import contextlib
import csv
import io
import warnings
from pathlib import Path

import numpy as np

from ..engine.distributed import current_world
from ..engine.sources import count
from ..exceptions import ConfigError
from ..io import write_atomic
from ..runs import TRAINING_WARNINGS
from ..runs.metric_text import METRICS, value_text


def print_metrics(metrics: dict) -> None:
    """The numbers a person reads first, labelled with their units (``metric_text.METRICS``)."""
    for key, metric in METRICS.items():
        if metric.label is not None and key in metrics:
            print(f"  {metric.label:<24}{value_text(key, metrics, _number)}")


def _number(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def print_training(info: dict) -> None:
    """Why training stopped, and the warnings about how it went (run.json's ``training``)."""
    training = info.get("training")
    if not training:
        return
    epochs, stopped_by = info["epochs"], training["stopped_by"]
    if stopped_by == "early_stopping":
        patience = info["params"]["patience"]
        line = (
            f"stopped early at epoch {epochs}: no better validation loss for "
            f"{count(patience, 'epoch')}; "
            f"kept the weights of epoch {training['best_epoch']}"
        )
    elif stopped_by == "max_epochs":
        line = f"stopped at max_epochs ({count(epochs, 'epoch')})"
    else:
        seconds = info["training_seconds"]
        spent = f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"
        line = f"stopped when max_time ran out ({spent} of training)"
    print(f"  {line}")
    for message in training["warnings"]:
        print(f"  warning: {message}")
    if names := info["data"].get("label_names"):
        shown = ", ".join(f"{i} = {name}" for i, name in enumerate(names[:10]))
        more = f" and {len(names) - 10} more" if len(names) > 10 else ""
        print(f"  class labels by id: {shown}{more} (kept in run.json)")


@contextlib.contextmanager
def quiet_training_warnings():
    """Silence the warnings about training that the summary repeats in its own words."""
    with warnings.catch_warnings():
        for category in TRAINING_WARNINGS:
            warnings.simplefilter("ignore", category)
        yield


def write_output(path: Path, data: bytes) -> None:
    """Write a command's output file (under torchrun, rank 0 alone)."""
    if not path.parent.is_dir():
        raise ConfigError(f"Cannot write {path}: folder {path.parent} does not exist.")
    if current_world().main:
        write_atomic(path, data)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def table_bytes(columns: dict[str, np.ndarray]) -> bytes:
    """A CSV table with a header: floats as %.6g, whole numbers and class names as they are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*(_cells(values) for values in columns.values()), strict=True))
    return buffer.getvalue().encode()


def _cells(values: np.ndarray) -> list[str]:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return [f"{v:.6g}" for v in values.tolist()]
    return [str(v) for v in values.tolist()]


def feature_columns(run, rows: np.ndarray, suffix: str = "") -> dict[str, np.ndarray]:
    """The rows' columns, named as the training table's header named them (else x1, x2, ...)."""
    names = run.feature_names or [f"x{i + 1}" for i in range(rows.shape[1])]
    return {f"{name}{suffix}": rows[:, j] for j, name in enumerate(names)}


def save_image(path: Path, run, draw) -> None:
    if path.suffix != ".png":
        raise ConfigError(f"Write the picture to a .png file, not {path.name}.")
    if run.image_shape is None:
        raise ConfigError(
            "This run's data are not images, so there is no picture to draw; write the rows "
            f"to a table instead (--out {path.with_suffix('.csv').name})."
        )
    if not path.parent.is_dir():
        raise ConfigError(f"Cannot write {path}: folder {path.parent} does not exist.")
    if current_world().main:
        print(f"wrote {draw(path)}")


def as_images(rows: np.ndarray, run) -> np.ndarray:
    """Rows of an image run in the shape its images came in: (n, H, W) for one channel, else
    (n, H, W, C) or (n, C, H, W) as the training array had them; tables stay rows."""
    if run.image_shape is None:
        return rows
    channels, height, width = run.image_shape
    images = rows.reshape(len(rows), channels, height, width)
    if channels == 1:
        return images[:, 0]
    return images.transpose(0, 2, 3, 1) if run.info["data"].get("channels_last") else images


def save_rows(rows: np.ndarray, path: Path, run, draw, labels: np.ndarray | None = None) -> None:
    """Rows to .npy (images in their own shape), .csv (the table's column names, and the rows'
    ``labels`` in a last column, ``label``, when given) or a picture."""
    if path.suffix == ".npy":
        write_output(path, npy_bytes(as_images(rows, run)))
    elif path.suffix == ".csv":
        labelled = {} if labels is None else {"label": labels}
        write_output(path, table_bytes(feature_columns(run, rows) | labelled))
    else:
        save_image(path, run, draw)
        return
    print(f"wrote {len(rows)} rows to {path}")
