"""Binarization of [0, 1] intensities by seeded Bernoulli draws (none, dynamic, fixed)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..engine.sources import DataSource
from ..exceptions import DataError
from .dataset import Dataset

BINARIZE_MODES = ("none", "dynamic", "fixed")


def check_mode(mode: str) -> None:
    """Refuse an unknown binarize option before any file is read."""
    if mode not in BINARIZE_MODES:
        raise DataError(
            f"Unknown binarize option {mode!r}; use one of {', '.join(BINARIZE_MODES)}."
        )


def binarize(dataset: Dataset, mode: str, seed: int) -> Dataset:
    """Apply a binarize option.

    ``"fixed"`` draws train and test once each; ``"dynamic"`` keeps train as intensities (the model
    redraws it every epoch) and draws the evaluation splits once, as in the IWAE protocol. Train,
    test and validation draw from independent streams spawned from ``seed``, so a split's draw is
    the same whatever the mode.
    """
    check_mode(mode)
    if mode == "none":
        return dataset
    if dataset.kind == "binary":
        if mode == "dynamic":
            raise DataError(
                f"{dataset.name} is already binary, so dynamic binarization does not apply; "
                "use binarize='none'."
            )
        return dataset
    if mode == "fixed" and isinstance(dataset.train, DataSource):
        raise DataError(
            f"{dataset.name} is read from disk, too large for a fixed binarization in memory; "
            "use binarize='dynamic' or a threshold."
        )
    if dataset.kind != "unit":
        raise DataError(
            f"{dataset.name} has values outside [0, 1], so it cannot be binarized; "
            "use binarize='none'."
        )
    train_rng, test_rng, valid_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    test = _draw(dataset.test, test_rng)
    valid = _draw(dataset.valid, valid_rng)
    if mode == "dynamic":
        return replace(dataset, test=test, valid=valid)
    return replace(
        dataset, train=_draw(dataset.train, train_rng), test=test, valid=valid, kind="binary"
    )


def _draw(x: np.ndarray | None, rng: np.random.Generator) -> np.ndarray | None:
    return None if x is None else (rng.random(x.shape) < x).astype(np.float32)
