"""TensorBoard logs of a fit (``fit(..., log_dir=)``): scalars every epoch, pictures now and then,
and at the end the codes of held-out rows for the projector.

Events are written by ``torch.utils.tensorboard.SummaryWriter``, from the optional
``tensorboard`` package (``pip install 'vaekit[tensorboard]'``), imported only when a fit asks
for logs. The steps are epoch numbers. A resumed fit appends a new event file to the same folder
whose first event marks the epoch it resumes from, so TensorBoard drops what the interrupted fit
logged after its last checkpoint and the curves go on. Under torchrun every process computes the
pictures and the codes (inference is shared between them) and rank 0 alone writes.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .. import plots
from ..engine.distributed import current_world, together
from ..engine.sources import as_source
from ..exceptions import ConfigError, DataError

#: Pictures at epoch 1, every this many epochs, and of the weights the fit keeps.
IMAGES_EVERY = 10
SAMPLES = 64  # generated rows in the samples picture
RECONSTRUCTED = 32  # rows beside their reconstructions
GRID_COLUMNS = 8
#: At most this many rows (evenly spaced over those given) are pictured and embedded.
EMBEDDED_ROWS = 2000
SPRITE_PIXELS = 8192  # the projector's largest sprite, in pixels a side
EMBEDDING_TAG = "latent"
#: Tags of the history record's entries that are neither a training nor a validation term.
TAGS = {"learning_rate": "schedule/learning_rate", "seconds": "time/epoch_seconds"}


def summary_writer() -> type:
    """``SummaryWriter``, or a ConfigError saying how to install it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "log_dir needs the tensorboard package: pip install 'vaekit[tensorboard]'."
        ) from None
    return SummaryWriter


def check_log_dir(log_dir: str | os.PathLike) -> None:
    """Refuse, before any training, logs that cannot be written: no tensorboard package, or a
    ``log_dir`` that is a file, lies inside one or in a folder that is not writable."""
    summary_writer()
    path = Path(log_dir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"log_dir {log_dir} is a file; give a folder for the TensorBoard logs.")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(
            f"log_dir {log_dir} lies inside {existing}, which is a file; give a folder for the "
            "TensorBoard logs."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"log_dir {log_dir} cannot be written: {existing} is read-only.")


def scalar_tag(key: str) -> str:
    """The TensorBoard tag of a history record's entry: ``train/loss``, ``validation/loss``,
    ``schedule/learning_rate``, ``time/epoch_seconds``."""
    if key.startswith("val_"):
        return f"validation/{key.removeprefix('val_')}"
    return TAGS.get(key, f"train/{key}")


def picture_shape(estimator) -> tuple[int, int, int] | None:
    """The (C, H, W) the estimator's rows are pictured in: its ``image_shape`` (a convolutional
    model's square default without one); None for tables and for images of other than 1, 3
    or 4 channels."""
    n_features = estimator.n_features_in_
    shape = estimator.image_shape
    if shape is None and estimator.architecture == "conv":  # the nets' default: one channel
        shape = (math.isqrt(n_features),) * 2
    if shape is None:
        return None
    shape = tuple(int(s) for s in shape)
    shape = (1, *shape) if len(shape) == 2 else shape
    if math.prod(shape) != n_features:
        raise ConfigError(
            f"image_shape {shape} holds {math.prod(shape)} values, but the rows have "
            f"{n_features}; give the (channels, height, width) they were flattened from."
        )
    return shape if shape[0] in (1, 3, 4) else None


def projector_metadata(y: np.ndarray | None) -> tuple[list | None, list[str] | None]:
    """(metadata, header) of ``add_embedding``: one column of labels, or a column per
    covariate."""
    if y is None:
        return None, None
    if y.ndim == 1 or y.shape[1] == 1:
        return [str(v) for v in y.ravel()], None
    columns = [f"condition_{j + 1}" for j in range(y.shape[1])]
    return [[str(v) for v in row] for row in y], columns


class TensorBoardLog:
    """The TensorBoard log of one fit of ``estimator`` into ``log_dir``.

    Made once the module is built (the rows to picture and embed are checked then, before any
    training), called with every epoch's history record, finished with the weights the fit
    keeps, and closed as a context manager.

    Parameters
    ----------
    estimator : LatentEstimator
        The estimator being fitted.
    log_dir : path
        The folder of the event files and the projector's files.
    data : rows, or (rows, y)
        The rows to reconstruct and embed (up to ``EMBEDDED_ROWS`` of them, evenly spaced)
        with what ``y`` is to ``fit`` for them: a conditional model's conditions, else labels
        for the projector (a DataSource's own labels when no y is given).
    """

    def __init__(self, estimator, log_dir: str | os.PathLike, data):
        rows, y = data if isinstance(data, tuple) else (data, None)
        source = as_source(rows)
        y = source.labels if y is None else np.asarray(y)
        if y is not None and len(y) != len(source):
            raise DataError(f"log_rows has {len(source)} rows but {len(y)} values of y.")
        self.estimator, self.log_dir = estimator, Path(log_dir)
        self.shape = picture_shape(estimator)
        most = EMBEDDED_ROWS
        if self.shape is not None:  # the sprite of all the pictures must fit the projector
            most = min(most, (SPRITE_PIXELS // max(self.shape[1:])) ** 2)
        n = len(source)
        index = np.arange(n) if n <= most else np.linspace(0, n - 1, most).round().astype(int)
        self.rows = source.rows(index)
        self.y = None if y is None else y[index]
        together(self._check_rows)
        self.main = current_world().main  # the one process that writes
        self.writer = None
        self.pictured: set[int] = set()

    def _check_rows(self) -> None:
        """Refuse rows that do not suit the model now, not after training."""
        try:
            self.estimator._prepare(self.rows, reset=False, y=self.y)
        except DataError as err:
            raise DataError(f"log_rows: {err}") from None

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.close()

    def before(self, callback: Callable[[dict], None] | None) -> Callable[[dict], None]:
        """The loop's callback: log the record, then call ``callback`` (if any) with it."""

        def log_then_call(record: dict) -> None:
            self.epoch(record)
            if callback is not None:
                callback(record)

        return log_then_call

    def epoch(self, record: dict) -> None:
        """Log an epoch's history record, its KL weight and, every ``IMAGES_EVERY`` epochs,
        its pictures; flushed, so TensorBoard shows it now and a kill loses nothing."""
        step = int(record["epoch"])
        if self.main:
            writer = self._writer(purge_step=step)  # the first epoch of this fit
            for key, value in record.items():
                if key != "epoch":
                    writer.add_scalar(scalar_tag(key), float(value), step)
            kl_weight = getattr(self.estimator.module_, "kl_weight", None)
            if kl_weight is not None:  # the last step's weight: a warm-up moves it every step
                writer.add_scalar("schedule/kl_weight", float(kl_weight), step)
        if step == 1 or step % IMAGES_EVERY == 0:
            self._pictures(step)
        if self.main:
            self.writer.flush()

    def finish(self) -> None:
        """The pictures of the weights the fit kept (its best epoch's, as logged at that
        epoch) and the codes of the rows, with their labels and pictures, for the projector."""
        step = self.estimator.best_epoch_
        self._pictures(step)
        codes = self.estimator.transform(self.rows, self.y)
        if not self.main:
            return
        sprite = None
        if self.shape is not None:
            tiles = plots.image_tiles(np.nan_to_num(self.rows), self.shape)
            sprite = torch.from_numpy(np.ascontiguousarray(tiles.transpose(0, 3, 1, 2)))
        metadata, header = projector_metadata(self.y)
        writer = self._writer()
        # A refit into the same folder replaces the codes its epoch held (add_embedding warns).
        shutil.rmtree(self.log_dir / f"{step:05d}" / EMBEDDING_TAG, ignore_errors=True)
        writer.add_embedding(
            codes,
            metadata=metadata,
            label_img=sprite,
            global_step=step,
            tag=EMBEDDING_TAG,
            metadata_header=header,
        )
        writer.flush()

    def _writer(self, purge_step: int | None = None):
        """The SummaryWriter, opened at the first event; its purge step hides the events of an
        earlier fit into the folder from that epoch on."""
        if self.writer is None:
            self.writer = summary_writer()(str(self.log_dir), purge_step=purge_step)
        return self.writer

    def _pictures(self, step: int) -> None:
        """Samples and reconstructions of image data, once per epoch (every process computes
        them; rank 0 writes)."""
        if self.shape is None or step in self.pictured:
            return
        self.pictured.add(step)
        est = self.estimator
        shown = self.rows[:RECONSTRUCTED]
        y = None if self.y is None else self.y[:RECONSTRUCTED]
        pictures = {
            "images/reconstructions": plots.pairs_mosaic(
                np.nan_to_num(shown), est.reconstruct(shown, y), self.shape, ncols=GRID_COLUMNS
            )
        }
        if est.can_sample:  # the same draws every time: the pictures show the model change
            drawn = est.sample(SAMPLES, condition=self._conditions(SAMPLES), random_state=0)
            pictures["images/samples"] = plots.image_mosaic(drawn, self.shape, ncols=GRID_COLUMNS)
        if self.main:
            for tag, picture in pictures.items():
                self._writer().add_image(tag, picture, step, dataformats="HWC")

    def _conditions(self, n: int) -> np.ndarray | None:
        """What a conditional model generates for: its classes in turn, else the rows'
        covariates in turn; None for a model without conditions."""
        if getattr(self.estimator, "condition", None) is None:
            return None
        given = getattr(self.estimator, "classes_", None)
        given = self.y if given is None else given
        return given[np.arange(n) % len(given)]
