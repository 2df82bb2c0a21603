"""Trained models shipped inside the package, loaded offline by name.

Each model is a folder under ``vaekit/pretrained/``: the saved model (config.json,
model.safetensors, metrics.jsonl, as ``VAE.save`` writes it) and ``card.json``, which says what
the model is, the ``vaekit train`` command that trained it, the SHA256 of each of its files, its
test NLL in the paper protocol, and a check figure: log p(x) of the rows of
``pretrained/mnist-test.npz`` (the first MNIST test images, binarised once as vaekit binarises
the test set, with their labels) that the model must reproduce. ``load_pretrained`` refuses a
model whose files do not match their SHA256.
"""

from __future__ import annotations

import hashlib
import json
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np

from .estimators import LatentEstimator, load
from .exceptions import ConfigError, ModelFileError

#: The card of each model: its keys.
CARD_FILE = "card.json"
CARD_KEYS = {"name", "description", "command", "data", "image_shape", "sha256", "test_nll"}
CARD_KEYS |= {"check", "training"}
#: The rows every MNIST model's check figure is computed on, and the explorer shows.
TEST_ROWS_FILE = "mnist-test.npz"


def _folder() -> Path:
    with as_file(files("vaekit") / "pretrained") as path:
        return Path(path)


def pretrained_models() -> dict[str, dict]:
    """The models shipped with vaekit, by name: each one's card.

    Returns
    -------
    dict of str to dict
        ``card.json`` of each model: ``description``, ``command`` (the ``vaekit train`` line
        that trained it), ``sha256`` of its files, ``test_nll`` (nats, its standard error, K,
        rows), ``check`` (the log p(x) it gives on the shipped test rows) and ``training``
        (epochs, seconds, the machine's matmul peak).
    """
    cards = {}
    for card in sorted(_folder().glob(f"*/{CARD_FILE}")):
        cards[card.parent.name] = json.loads(card.read_text())
    return cards


def load_pretrained(name: str, *, device: str | None = None) -> LatentEstimator:
    """A trained model shipped with vaekit, loaded offline.

    Parameters
    ----------
    name : str
        One of ``pretrained_models()``, such as ``"mnist-vae-50d"``.
    device : str, optional
        Where the model goes ("auto", "cpu", "cuda", ...); the CPU by default.

    Returns
    -------
    VAE
        The fitted estimator.
    """
    cards = pretrained_models()
    if name not in cards:
        raise ConfigError(
            f"There is no pretrained model {name!r}; vaekit ships {', '.join(cards) or 'none'}."
        )
    folder = _folder() / name
    for file, digest in cards[name]["sha256"].items():
        if hashlib.sha256((folder / file).read_bytes()).hexdigest() != digest:
            raise ModelFileError(
                f"The pretrained model {name}'s {file} does not match its SHA256; reinstall vaekit."
            )
    return load(folder, device=device or "cpu")


def pretrained_test_rows() -> tuple[np.ndarray, np.ndarray]:
    """(X, y): the MNIST test images shipped for the check figures and the explorer.

    Returns
    -------
    X : ndarray of shape (n, 784), float32
        The first n test images, binarised once (seed 0) as ``vaekit.data.load_dataset("mnist",
        binarize="dynamic")`` binarises the test set.
    y : ndarray of shape (n,), int64
        Their labels.
    """
    with np.load(_folder() / TEST_ROWS_FILE, allow_pickle=False) as saved:
        return np.unpackbits(saved["bits"], axis=1)[:, :784].astype(np.float32), saved["y"]
