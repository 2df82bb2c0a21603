"""The catalogue of bad input: every case, its command, and the exact line it must print.

Each case runs through the real ``vaekit`` entry point in a fresh Python process (all cases in
one process, to keep the suite fast) and must exit with status 2, print exactly one line,
``vaekit: error: <message>``, and leave the case's folder as it found it. docs/bad-input.md is
generated from this list: ``python tests/test_bad_input.py`` rewrites it, and a test fails when
it is stale.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch
from PIL import Image
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

DOCS = Path(__file__).parents[1] / "docs" / "bad-input.md"
Setup = Callable[[Path], None]


@dataclass
class Case:
    group: str
    what: str
    argv: list
    message: str
    setup: Setup | None = None
    id: str = ""


# --- files the cases are made of ---------------------------------------------------------------


def write(name: str, data: bytes | str) -> Setup:
    def setup(folder: Path) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    return setup


HELD_LOCKS: list = []  # open for the life of the test process, as a training run holds one


def hold_lock(path: Path) -> None:
    """Hold ``path`` locked as a vaekit process training that run does."""
    import fcntl

    handle = open(path, "w")  # noqa: SIM115 (held open on purpose)
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    HELD_LOCKS.append(handle)


def npy(name: str, array: np.ndarray, cut: int = 0) -> Setup:
    def setup(folder: Path) -> None:
        np.save(folder / name, array, allow_pickle=array.dtype == object)
        if cut:
            data = (folder / name).read_bytes()
            (folder / name).write_bytes(data[:-cut])

    return setup


def npz(name: str, cut: int = 0, **arrays) -> Setup:
    def setup(folder: Path) -> None:
        np.savez(folder / name, **arrays)
        if cut:
            (folder / name).write_bytes((folder / name).read_bytes()[:cut])

    return setup


def images(folder_name: str, *shapes: tuple) -> Setup:
    def setup(folder: Path) -> None:
        (folder / folder_name).mkdir()
        for i, shape in enumerate(shapes):
            Image.fromarray(np.zeros(shape, dtype=np.uint8)).save(folder / folder_name / f"{i}.png")

    return setup


def idx_bytes(dims: tuple, magic_ndim: int | None = None, payload: bytes | None = None) -> bytes:
    ndim = len(dims) if magic_ndim is None else magic_ndim
    header = struct.pack(">HBB", 0, 8, ndim) + b"".join(struct.pack(">I", d) for d in dims)
    return header + (bytes(int(np.prod(dims))) if payload is None else payload)


MNIST_FILES = {
    "train-images-idx3-ubyte.gz": (4, 28, 28),
    "train-labels-idx1-ubyte.gz": (4,),
    "t10k-images-idx3-ubyte.gz": (2, 28, 28),
    "t10k-labels-idx1-ubyte.gz": (2,),
}


def mnist(file: str = "", data: bytes | None = None) -> Setup:
    """A data folder with tiny valid MNIST files, ``file`` replaced by ``data``."""

    def setup(folder: Path) -> None:
        (folder / "data" / "mnist").mkdir(parents=True)
        for name, dims in MNIST_FILES.items():
            content = data if name == file else gzip.compress(idx_bytes(dims))
            (folder / "data" / "mnist" / name).write_bytes(content)

    return setup


def sparse_npz(name: str, fmt: str) -> Setup:
    def setup(folder: Path) -> None:
        scipy.sparse.save_npz(folder / name, scipy.sparse.eye(30, 6, format=fmt))

    return setup


def h5ad(name: str) -> Setup:
    def setup(folder: Path) -> None:
        import anndata
        import pandas

        obs = pandas.DataFrame({"cell_type": pandas.Categorical(["B", "T"] * 15)})
        obs.index = obs.index.astype(str)
        anndata.AnnData(np.ones((30, 6), dtype=np.float32), obs=obs).write_h5ad(folder / name)

    return setup


AMAT_ROW = "0 " * 783 + "1\n"


def amat(train: str) -> Setup:
    def setup(folder: Path) -> None:
        (folder / "data" / "binarized-mnist").mkdir(parents=True)
        for split, text in (("train", train), ("valid", AMAT_ROW * 2), ("test", AMAT_ROW * 2)):
            (folder / "data" / "binarized-mnist" / f"binarized_mnist_{split}.amat").write_text(text)

    return setup


GOOD = np.random.default_rng(0).random((40, 6)).astype(np.float32)
REAL = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
with_nan, with_inf = GOOD.copy(), GOOD.copy()
with_nan[3, 2], with_inf[5, 1] = np.nan, np.inf


def run_folder(change: Callable[[Path], None] | None = None) -> Setup:
    """A copy of the run the ``results`` fixture trains beside the case folders, as ``run``, with
    ``change`` applied."""

    def setup(folder: Path) -> None:
        shutil.copytree(folder.parent / TRAINED, folder / "run")
        if change is not None:
            change(folder / "run")

    return setup


def autoencoder_run(folder: Path) -> None:
    """An autoencoder trained for one epoch on GOOD, as ``run``."""
    from vaekit.runs import train_run

    np.save(folder / "ae-rows.npy", GOOD)
    train_run(str(folder / "ae-rows.npy"), model="autoencoder", out=folder / "run",
              params={"max_epochs": 1}, pictures=False, verbose=False)  # fmt: skip


def arbitrary_conditional_run(folder: Path) -> None:
    """An arbitrary-conditioning VAE trained for one epoch on GOOD, as ``run``."""
    from vaekit.runs import train_run

    np.save(folder / "ac-rows.npy", GOOD)
    train_run(str(folder / "ac-rows.npy"), model="arbitrary_conditional", out=folder / "run",
              params={"max_epochs": 1}, pictures=False, verbose=False)  # fmt: skip


TABLE = "a,b,c,d,label\n" + "".join(
    f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{r[3]:.4f},{i % 2}\n" for i, r in enumerate(GOOD)
)


def conditional_run(condition: str) -> Setup:
    """A vae trained for one epoch on TABLE with ``--condition condition``, as ``run``."""

    def setup(folder: Path) -> None:
        from vaekit.runs import train_run

        (folder / "run-table.csv").write_text(TABLE)
        train_run(str(folder / "run-table.csv"), out=folder / "run", condition=condition,
                  params={"max_epochs": 1}, pictures=False, verbose=False)  # fmt: skip

    return setup


def edit_config(**changes) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        config = json.loads((run / "config.json").read_text())
        for key, value in changes.items():
            if key.startswith("params."):
                config["params"][key[len("params.") :]] = value
            else:
                config[key] = value
        (run / "config.json").write_text(json.dumps(config))

    return change


def edit_weights(edit: Callable[[dict], None], keep_sha: bool = False) -> Callable[[Path], None]:
    """Rewrite the weights; the config's SHA256 follows unless ``keep_sha``."""

    def change(run: Path) -> None:
        tensors = load_safetensors((run / "model.safetensors").read_bytes())
        edit(tensors)
        data = save_safetensors(tensors)
        (run / "model.safetensors").write_bytes(data)
        if not keep_sha:
            edit_config(weights_sha256=hashlib.sha256(data).hexdigest())(run)

    return change


def cut_file(name: str, keep: int) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        (run / name).write_bytes((run / name).read_bytes()[:keep])

    return change


def remove(name: str) -> Callable[[Path], None]:
    return lambda run: (run / name).unlink()


FIRST_BIAS = "decoder.0.bias"  # a weight every saved MLP VAE has
TRAINED = "trained"  # the run folder the ``results`` fixture writes beside the case folders

FAST = ["--max-epochs", "1", "--no-pictures", "--quiet"]  # added to train, kept out of the docs
DATA = ["--data-dir", "data"]


# --- the catalogue -----------------------------------------------------------------------------

CASES = [
    # files given to train (the same loaders serve every command's --data)
    Case(
        "files",
        "a sparse .npz (scipy.sparse.save_npz) in DIA format",
        ["train", "dia.npz"],
        "dia.npz holds a sparse matrix in 'dia' format; save it as CSR, CSC or COO.",
        sparse_npz("dia.npz", "dia"),
    ),
    Case(
        "files",
        "a file that does not exist",
        ["train", "missing.npy"],
        "missing.npy does not exist; check the path.",
    ),
    Case(
        "files",
        "an empty .npy file",
        ["train", "empty.npy"],
        "empty.npy is not a readable NumPy file (No data left in file); save a numeric array "
        "with numpy.save or numpy.savez.",
        write("empty.npy", b""),
    ),
    Case(
        "files",
        "an empty .csv file",
        ["train", "empty.csv"],
        "empty.csv is empty; give one example per row.",
        write("empty.csv", b""),
    ),
    Case(
        "files",
        "a truncated .npy file",
        ["train", "cut.npy"],
        "cut.npy is not a readable NumPy file (Failed to read all data for array. Expected "
        "(40, 6) = 240 elements, could only read 230 elements. (file seems not fully "
        "written?)); save a numeric array with numpy.save or numpy.savez.",
        npy("cut.npy", GOOD, cut=40),
    ),
    Case(
        "files",
        "a truncated .npz file",
        ["train", "cut.npz"],
        "cut.npz is not a readable NumPy file (File is not a zip file); save a numeric array "
        "with numpy.save or numpy.savez.",
        npz("cut.npz", cut=200, X=GOOD),
    ),
    Case(
        "files",
        "a .npy file that is not NumPy's format",
        ["train", "text.npy"],
        "text.npy is not a readable NumPy file (NumPy could only read it by unpickling, which "
        "vaekit never does); save a numeric array with numpy.save or numpy.savez.",
        write("text.npy", "hello, not an array"),
    ),
    Case(
        "files",
        "a .npy file of Python objects (a pickle)",
        ["train", "objects.npy"],
        "objects.npy is not a readable NumPy file (NumPy could only read it by unpickling, which "
        "vaekit never does); save a numeric array with numpy.save or numpy.savez.",
        npy("objects.npy", np.array([{"a": 1}] * 4, dtype=object)),
    ),
    Case(
        "files",
        "a compressed file (.gz) of an array",
        ["train", "rows.npy.gz"],
        "Cannot read rows.npy.gz: vaekit reads .npy, .npz, .csv and .h5ad files and folders of "
        "images.",
        write("rows.npy.gz", gzip.compress(b"rows")),
    ),
    Case(
        "files",
        "NaN in an array",
        ["train", "nan.npy"],
        "nan.npy contains NaN or infinite values in 1 row (the first at row index 3); clean or "
        "drop them.",
        npy("nan.npy", with_nan),
    ),
    Case(
        "files",
        "an infinite value in a CSV file",
        ["train", "inf.csv"],
        "inf.csv contains NaN or infinite values in 1 row (the first at line 3, column 2 "
        "('b')); clean or drop them.",
        write("inf.csv", "a,b\n1,2\n3,inf\n" + "1,2\n" * 10),
    ),
    Case(
        "files",
        "a non-numeric CSV cell",
        ["train", "text.csv"],
        "text.csv line 3, column 1 ('a') holds 'x', which is not a number; feature columns must "
        "be numeric (a column named label, labels, target, class or y may hold class names).",
        write("text.csv", "a,b\n1,2\nx,3\n" + "1,2\n" * 10),
    ),
    Case(
        "files",
        "a CSV cell marked missing (NA) in a run that takes no missing values",
        ["train", "na.csv"],
        "na.csv line 3, column 2 ('b') holds a missing value ('NA'); fill it in, or train with "
        "--missing ignore (missing='ignore') to learn from the observed entries.",
        write("na.csv", "a,b\n1,2\n3,NA\n" + "1,2\n" * 10),
    ),
    Case(
        "files",
        "a ragged CSV file",
        ["train", "ragged.csv"],
        "ragged.csv line 3 has 1 values, expected 2; every row needs the same number of columns.",
        write("ragged.csv", "a,b\n1,2\n3\n" + "1,2\n" * 10),
    ),
    Case(
        "files",
        "an array of one dimension",
        ["train", "flat.npy"],
        "flat.npy has shape (40,); give (n, features), (n, H, W), (n, H, W, C) or (n, C, H, W) "
        "with C = 1, 3 or 4.",
        npy("flat.npy", GOOD[:, 0]),
    ),
    Case(
        "files",
        "labels that do not match the rows",
        ["train", "labels.npz"],
        "labels.npz has 40 examples but labels of shape (39,); give one per row.",
        npz("labels.npz", X=GOOD, y=np.arange(39)),
    ),
    Case(
        "files",
        "images of mixed sizes",
        ["train", "faces"],
        "faces mixes image sizes: 0.png is 8x8 but 1.png is 8x9; resize them to one size.",
        images("faces", (8, 8), (9, 8), (8, 8)),
    ),
    Case(
        "files",
        "grayscale and colour images mixed",
        ["train", "faces"],
        "faces mixes grayscale and colour images (0.png and 1.png); convert them to one mode.",
        images("faces", (8, 8), (8, 8, 3)),
    ),
    Case(
        "files",
        "an image file that is not an image",
        ["train", "faces"],
        "faces/0.png is not a readable image (cannot identify image file 'faces/0.png'); fix or "
        "remove it.",
        write("faces/0.png", b"\x89PNG\r\n\x1a\nbroken"),
    ),
    Case(
        "files",
        "a folder with no images",
        ["train", "faces"],
        "faces holds no PNG or JPEG images; add some or give another path.",
        write("faces/notes.txt", "no images here"),
    ),
    # the MNIST files (IDX) and binarized MNIST (.amat), read from --data-dir
    Case(
        "datasets",
        "an MNIST file missing",
        ["train", "mnist", "--data-dir", "."],
        "MNIST files are missing: put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz in mnist/, or leave out --data-dir "
        "to download them into the cache.",
    ),
    Case(
        "datasets",
        "an empty IDX file",
        ["train", "mnist", *DATA],
        "data/mnist/train-images-idx3-ubyte.gz is too short for an IDX header (0 bytes); replace "
        "the file.",
        mnist("train-images-idx3-ubyte.gz", b""),
    ),
    Case(
        "datasets",
        "an IDX file that is not gzip-compressed",
        ["train", "mnist", *DATA],
        "data/mnist/train-images-idx3-ubyte.gz is not a readable gzip file (Not a gzipped file "
        "(b'\\x00\\x00')); delete it and download it again.",
        mnist("train-images-idx3-ubyte.gz", idx_bytes((4, 28, 28))),
    ),
    Case(
        "datasets",
        "a truncated gzip stream",
        ["train", "mnist", *DATA],
        "data/mnist/train-images-idx3-ubyte.gz is not a readable gzip file (Compressed file "
        "ended before the end-of-stream marker was reached); delete it and download it again.",
        mnist("train-images-idx3-ubyte.gz", gzip.compress(idx_bytes((4, 28, 28)))[:-20]),
    ),
    Case(
        "datasets",
        "an IDX header cut short",
        ["train", "mnist", *DATA],
        "data/mnist/train-images-idx3-ubyte.gz is too short for an IDX header (6 bytes); replace "
        "the file.",
        mnist("train-images-idx3-ubyte.gz", gzip.compress(idx_bytes((4, 28, 28))[:6])),
    ),
    Case(
        "datasets",
        "an IDX file with a wrong magic number",
        ["train", "mnist", *DATA],
        "data/mnist/train-images-idx3-ubyte.gz has IDX magic number 2049, expected 2051; check "
        "that it is the right file.",
        mnist("train-images-idx3-ubyte.gz", gzip.compress(idx_bytes((4, 28, 28), 1))),
    ),
    Case(
        "datasets",
        "an IDX file with wrong dimensions (a zero)",
        ["train", "mnist", *DATA],
        "data/mnist/train-images-idx3-ubyte.gz declares dimensions [4, 0, 28] with a zero; "
        "replace the file.",
        mnist("train-images-idx3-ubyte.gz", gzip.compress(idx_bytes((4, 0, 28)))),
    ),
    Case(
        "datasets",
        "an IDX file with a short payload",
        ["train", "mnist", *DATA],
        "data/mnist/train-images-idx3-ubyte.gz declares dimensions [4, 28, 28] (3136 bytes) but "
        "holds 3126 bytes of data; the file is truncated or corrupt, replace it.",
        mnist("train-images-idx3-ubyte.gz", gzip.compress(idx_bytes((4, 28, 28))[:-10])),
    ),
    Case(
        "datasets",
        "train and test images of different sizes",
        ["train", "mnist", *DATA],
        "The MNIST train images are (28, 28) but the test images are (28, 27); use files from "
        "the same release.",
        mnist("t10k-images-idx3-ubyte.gz", gzip.compress(idx_bytes((2, 28, 27)))),
    ),
    Case(
        "datasets",
        "fewer labels than images",
        ["train", "mnist", *DATA],
        "train-images-idx3-ubyte.gz holds 4 images but train-labels-idx1-ubyte.gz holds 3 "
        "labels; use files from the same release.",
        mnist("train-labels-idx1-ubyte.gz", gzip.compress(idx_bytes((3,)))),
    ),
    Case(
        "datasets",
        "a label outside 0-9",
        ["train", "mnist", *DATA],
        "data/mnist/train-labels-idx1-ubyte.gz holds the label 11; MNIST labels are 0 to 9, so "
        "check that it is the right file.",
        mnist("train-labels-idx1-ubyte.gz", gzip.compress(idx_bytes((4,), None, bytes([11] * 4)))),
    ),
    Case(
        "datasets",
        "a ragged .amat line",
        ["train", "binarized-mnist", *DATA],
        "data/binarized-mnist/binarized_mnist_train.amat line 3 has 3 values, expected 784; the "
        "file is corrupt, replace it.",
        amat(AMAT_ROW * 2 + "0 1 0\n"),
    ),
    Case(
        "datasets",
        "a value other than 0 or 1 in .amat",
        ["train", "binarized-mnist", *DATA],
        "data/binarized-mnist/binarized_mnist_train.amat line 2 holds the value '0.5'; every "
        "value must be 0 or 1.",
        amat(AMAT_ROW + "0 " * 783 + "0.5\n"),
    ),
    Case(
        "datasets",
        "an AnnData file without the obs column named",
        ["train", "cells.h5ad#tissue"],
        "cells.h5ad has no obs column 'tissue'; its obs columns: cell_type.",
        h5ad("cells.h5ad"),
    ),
    Case(
        "datasets",
        "an AnnData path with no obs column after '#'",
        ["train", "cells.h5ad#"],
        "'cells.h5ad#' names no obs column after '#'; write FILE.h5ad#COLUMN.",
        h5ad("cells.h5ad"),
    ),
    Case(
        "datasets",
        "a file named .h5ad that is not HDF5",
        ["train", "cells.h5ad"],
        "cells.h5ad is not a readable .h5ad file (Unable to synchronously open file (file "
        "signature not found)).",
        write("cells.h5ad", "not HDF5"),
    ),
    Case(
        "datasets",
        "an unknown dataset name",
        ["train", "imagenet"],
        "Unknown dataset 'imagenet'; use one of digits, mnist, fashion-mnist, binarized-mnist, or "
        "a path to a .npy, .npz, .csv, .h5ad file or an image folder.",
    ),
    # parameters
    Case(
        "parameters",
        "latent size 0",
        ["train", "rows.npy", "--n-components", "0"],
        "n_components must be a positive integer.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "more pseudo-inputs than rows",
        ["train", "rows.npy", "--prior", "vamp", "--prior-components", "100"],
        "prior='vamp' with 100 pseudo-inputs needs at least as many training rows, and there "
        "are 36 (its best mixture is the posteriors of the rows themselves); set "
        "prior_components to 36 or fewer.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "components for a prior without them",
        ["train", "rows.npy", "--prior-components", "5"],
        "prior_components is for a prior with components (mog, vamp); the standard_normal "
        "prior has none.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "free bits with a mixture prior",
        ["train", "rows.npy", "--prior", "mog", "--free-bits", "0.5"],
        "free_bits needs a prior whose KL has a closed form per unit; the mog prior has none.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "upper layers under a VampPrior",
        ["train", "rows.npy", "--upper-layers", "2", "--prior", "vamp"],
        "prior='vamp' puts the encoder's posteriors at pseudo-inputs on the first latent layer "
        "of an unconditional model; it takes neither condition nor upper_layers.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "free bits with upper layers",
        ["train", "rows.npy", "--upper-layers", "2", "--free-bits", "0.5"],
        "free_bits needs the closed-form KL per unit of one stochastic layer; with upper_layers "
        "the KL is estimated by Monte Carlo.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "an upper layer of size 0",
        ["train", "rows.npy", "--upper-layers", "2,0"],
        "upper_layers must be a tuple of positive integers (empty for one stochastic layer); "
        "got (2, 0).",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a conditional prior without a condition",
        ["train", "rows.npy", "--prior", "conditional"],
        "prior='conditional' is p(z|c): it needs condition='label' or 'covariates', and the "
        "rows' conditions as y in fit.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a label condition for data without labels",
        ["train", "rows.npy", "--condition", "label"],
        "--condition label needs labelled data, and rows.npy has no labels (a table needs a "
        "column named label, labels, target, class or y).",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a condition column the table does not have",
        ["train", "table.csv", "--condition", "dose"],
        "--condition names the column 'dose', but table.csv has none; its columns are a, b, c, d.",
        write("table.csv", TABLE),
    ),
    Case(
        "parameters",
        "a condition column named twice",
        ["train", "table.csv", "--condition", "a,a"],
        "--condition takes 'label' or distinct column names separated by commas; got 'a,a'.",
        write("table.csv", TABLE),
    ),
    Case(
        "parameters",
        "every column as the condition",
        ["train", "table.csv", "--condition", "a,b,c,d"],
        "--condition takes every column of table.csv; leave some as features.",
        write("table.csv", TABLE),
    ),
    Case(
        "parameters",
        "a condition for the autoencoder",
        ["train", "table.csv", "--model", "autoencoder", "--condition", "label"],
        "--condition trains a conditional vae; --model autoencoder takes none.",
        write("table.csv", TABLE),
    ),
    Case(
        "parameters",
        "batch size 0",
        ["train", "rows.npy", "--batch-size", "0"],
        "batch_size must be a positive integer.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a negative beta",
        ["train", "rows.npy", "--beta", "-1"],
        "beta must be a number >= 0.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "K = 0 importance samples (training)",
        ["train", "rows.npy", "--n-importance-samples", "0"],
        "n_importance_samples must be a positive integer.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a weight average's decay of 1 (it would never move)",
        ["train", "rows.npy", "--ema-decay", "1"],
        "ema_decay must be a number in (0, 1), or None.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "--missing for the arbitrary-conditioning model, which always takes NaN as missing",
        ["train", "rows.npy", "--model", "arbitrary_conditional", "--missing", "ignore"],
        "--model arbitrary_conditional fixes missing='ignore'; leave the option out.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a KL warm-up with the IWAE objective, which has no KL term to warm up",
        ["train", "rows.npy", "--objective", "iwae", "--warmup-epochs", "5"],
        "warmup_epochs shapes the ELBO's KL term, which objective='iwae' does not have; leave "
        "it at the default or train with objective='elbo'.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "learning rate 0",
        ["train", "rows.npy", "--learning-rate", "0"],
        "learning_rate must be a positive number.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a hidden layer of width 0",
        ["train", "rows.npy", "--hidden-sizes", "0"],
        "hidden_sizes must be positive integers; got (0,).",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "an unknown likelihood",
        ["train", "rows.npy", "--likelihood", "laplace"],
        "argument --likelihood: invalid choice: 'laplace' (choose from 'bernoulli', "
        "'continuous_bernoulli', 'gaussian', 'poisson', 'negative_binomial', 'zinb'); see "
        "'vaekit train --help'.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a device name that is none of auto, cpu, cuda, cuda:N, mps",
        ["train", "rows.npy", "--device", "gpu"],
        "device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "fp16 on the CPU",
        ["train", "rows.npy", "--precision", "fp16", "--device", "cpu"],
        "precision='fp16' needs a GPU (its gradient scaler guards against underflow there); "
        "on the CPU use 'bf16' or 'fp32'.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a time budget that is not a duration",
        ["train", "rows.npy", "--max-time", "soon"],
        "max_time must be a positive number of seconds or a duration such as '90s', '60m' or "
        "'1.5h'; got 'soon'.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "no epoch limit and no time budget",
        ["train", "rows.npy", "--max-epochs", "none"],
        "max_epochs=None needs max_time; give a training-time budget or a number of epochs.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "both kinds of KL warm-up",
        ["train", "rows.npy", "--warmup-epochs", "5", "--warmup-time", "1m"],
        "Give warmup_epochs or warmup_time, not both.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a validation fraction of 1.5",
        ["train", "rows.npy", "--validation-fraction", "1.5"],
        "validation_fraction must be a number in [0, 1).",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "K = 0 importance samples (evaluate)",
        ["evaluate", "run", "--samples", "0"],
        "argument --samples: expected a positive integer, got '0'; see 'vaekit evaluate --help'.",
        run_folder(),
    ),
    Case(
        "parameters",
        "an evaluation precision the shell does not offer",
        ["evaluate", "run", "--precision", "fp16"],
        "argument --precision: invalid choice: 'fp16' (choose from 'fp64', 'fp32'); "
        "see 'vaekit evaluate --help'.",
        run_folder(),
    ),
    Case(
        "parameters",
        "0 samples to draw",
        ["sample", "run", "-n", "0"],
        "argument -n: expected a positive integer, got '0'; see 'vaekit sample --help'.",
        run_folder(),
    ),
    Case(
        "parameters",
        "an unknown flag",
        ["train", "rows.npy", "--latent", "2"],
        "unrecognized arguments: --latent 2; see 'vaekit train --help'.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "data of the wrong width for a model",
        ["evaluate", "run", "--data", "wide.npy"],
        "wide.npy has 7 features per row, but this run's model was trained on 6; give data of the "
        "same kind as rows.npy.",
        lambda folder: (run_folder()(folder), npy("wide.npy", np.zeros((4, 7)))(folder)),
    ),
    Case(
        "parameters",
        "a binarize option that is neither a mode nor a threshold (compare)",
        ["compare", "rows.npy", "--binarize", "half"],
        "binarize must be one of none, dynamic, fixed or a threshold; got 'half'.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "the bernoulli likelihood on real values",
        ["train", "real.npy", "--likelihood", "bernoulli"],
        "real.npy has values outside [0, 1], but --likelihood bernoulli models 0 or 1; "
        "binarise it with a threshold such as --binarize 0.5, or use --likelihood "
        "gaussian.",
        npy("real.npy", REAL),
    ),
    Case(
        "parameters",
        "the continuous Bernoulli likelihood on real values",
        ["train", "real.npy", "--likelihood", "continuous_bernoulli"],
        "real.npy has values outside [0, 1], but --likelihood continuous_bernoulli models"
        " [0, 1]; rescale the data to [0, 1], binarise them with --binarize 0.5 and "
        "--likelihood bernoulli, or use --likelihood gaussian.",
        npy("real.npy", REAL),
    ),
    Case(
        "parameters",
        "the bernoulli likelihood on intensities in [0, 1]",
        ["train", "rows.npy", "--likelihood", "bernoulli"],
        "rows.npy has values between 0 and 1, but --likelihood bernoulli models 0 or 1; "
        "binarise it with a threshold such as --binarize 0.5 or --binarize dynamic, or "
        "use --likelihood continuous_bernoulli or gaussian.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a count likelihood on a count matrix with a negative entry",
        ["train", "counts.npy", "--likelihood", "negative_binomial"],
        "The negative_binomial likelihood needs counts (whole numbers >= 0); these data have "
        "negative values; round them to counts or use the gaussian likelihood.",
        npy("counts.npy", np.array([[0.0, 3.0, 1.0], [2.0, -1.0, 5.0], [0.0, 0.0, 7.0]] * 4)),
    ),
    Case(
        "parameters",
        "a count likelihood on values that are not whole numbers",
        ["train", "rows.npy", "--likelihood", "poisson"],
        "The poisson likelihood needs counts (whole numbers >= 0); these data have values "
        "that are not whole numbers; round them to counts or use the gaussian likelihood.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a library size without a count likelihood",
        ["train", "rows.npy", "--likelihood", "gaussian", "--library-size"],
        "library_size=True needs a count likelihood (poisson, negative_binomial or zinb); the "
        "gaussian likelihood has no library size.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "an unknown dispersion",
        ["train", "rows.npy", "--dispersion", "gene"],
        "argument --dispersion: invalid choice: 'gene' (choose from 'feature', 'decoder'); "
        "see 'vaekit train --help'.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "standardising for a Bernoulli likelihood",
        ["train", "rows.npy", "--likelihood", "bernoulli", "--standardize"],
        "--standardize needs --likelihood gaussian; bernoulli data need no scaling, so "
        "drop --standardize (or pass --no-standardize).",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "a misspelt flag",
        ["train", "rows.npy", "--epochs", "3"],
        "unrecognized arguments: --epochs 3 (did you mean --max-epochs?); see 'vaekit "
        "train --help'.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "parameters",
        "an unknown sampler",
        ["sample", "run", "--sampler", "vamp"],
        "argument --sampler: invalid choice: 'vamp' (choose from 'prior', 'gmm'); see "
        "'vaekit sample --help'.",
        run_folder(),
    ),
    # commands
    Case(
        "parameters",
        "a semi-supervised model on data without labels",
        ["train", "rows.npy", "--model", "semi_supervised"],
        "--model semi_supervised learns from labels, and rows.npy has none (a table needs a "
        "column named label, labels, target, class or y; -1 marks an unlabelled row).",
        npy("rows.npy", np.random.default_rng(0).random((20, 4))),
    ),
    Case(
        "parameters",
        "a semi-supervised model given a condition",
        ["train", "digits", "--model", "semi_supervised", "--condition", "label"],
        "--model semi_supervised learns from the data's labels and generates by class; it takes "
        "no --condition.",
    ),
    Case(
        "parameters",
        "labels kept for a model that uses none",
        ["train", "digits", "--labels-kept", "100"],
        "--labels-kept is for a model that learns from few labels (--model semi_supervised); "
        "--model vae uses no labels.",
    ),
    Case(
        "parameters",
        "fewer labels kept than there are classes",
        ["train", "digits", "--model", "semi_supervised", "--labels-kept", "5"],
        "Keeping 5 labels of 1347 rows in 10 classes needs at least one per class and at most "
        "one per row.",
    ),
    Case(
        "parameters",
        "no label kept",
        ["train", "digits", "--model", "semi_supervised", "--labels-kept", "0"],
        "argument --labels-kept: expected a positive integer, got '0'; see 'vaekit train --help'.",
    ),
    Case(
        "commands",
        "imputing with a run that takes no missing values",
        ["impute", "run", "--out", "filled.csv"],
        "vaekit impute needs a run trained with --missing ignore; this run's model takes no "
        "missing values.",
        run_folder(),
    ),
    Case(
        "commands",
        "imputed rows to a picture",
        ["impute", "run", "--out", "filled.png"],
        "Write the imputed rows to a .npy or .csv file, not filled.png.",
        run_folder(),
    ),
    Case(
        "commands",
        "a row with nothing observed, for a model of missing values",
        ["train", "holes.csv", "--missing", "ignore"],
        "holes.csv has 1 row with an infinite value or no observed value (the first at row "
        "index 1); a row needs an observed value and no infinity, so drop or fix them.",
        write("holes.csv", "a,b,c\n1,,3\n,,\n4,5,\n"),
    ),
    Case(
        "commands",
        "a class the conditional run has not seen",
        ["sample", "run", "--condition", "7", "--out", "s.csv"],
        "--condition '7' is not a class of this run; its classes: 0, 1.",
        conditional_run("label"),
    ),
    Case(
        "commands",
        "a condition for an unconditional run",
        ["sample", "run", "--condition", "1", "--out", "s.csv"],
        "--condition is for a conditional run; this run has none.",
        run_folder(),
    ),
    Case(
        "commands",
        "a covariate run sampled without its covariates",
        ["sample", "run", "--out", "s.csv"],
        "This run is conditioned on d; give the values to generate for as --condition, 1 "
        "number separated by commas.",
        conditional_run("d"),
    ),
    Case(
        "commands",
        "covariates that are not numbers",
        ["sample", "run", "--condition", "high", "--out", "s.csv"],
        "--condition needs 1 finite number separated by commas (for d); got 'high'.",
        conditional_run("d"),
    ),
    Case(
        "commands",
        "a traversal of a conditional run",
        ["traverse", "run", "--out", "t.png"],
        "vaekit traverse takes an unconditional run; this run's model is conditioned on label "
        "(--condition).",
        conditional_run("label"),
    ),
    Case(
        "commands",
        "a traversal of a model whose codes decode only beside the given entries",
        ["traverse", "run", "--out", "t.png"],
        "vaekit traverse decodes codes alone, and this run's arbitrary_conditional model "
        "decodes a code only beside the entries it is given; use vaekit reconstruct or vaekit "
        "impute.",
        arbitrary_conditional_run,
    ),
    Case(
        "commands",
        "the latent-space explorer for a model whose codes decode only beside the given entries",
        ["explore", "run"],
        "vaekit explore decodes points of the latent space, and this run's "
        "arbitrary_conditional model decodes a code only beside the entries it is given.",
        arbitrary_conditional_run,
    ),
    Case(
        "commands",
        "a density score for an autoencoder",
        ["score", "run", "--score-type", "elbo", "--out", "scores.csv"],
        "--score-type elbo needs a vae run; this run's autoencoder scores with --score-type "
        "reconstruction.",
        autoencoder_run,
    ),
    Case(
        "commands",
        "a contamination above one half",
        ["score", "run", "--contamination", "0.7", "--out", "scores.csv"],
        "argument --contamination: expected a number in (0, 0.5], got '0.7'; see 'vaekit score "
        "--help'.",
        run_folder(),
    ),
    Case(
        "commands",
        "train without data",
        ["train"],
        "Name the data to train on, a dataset (digits, mnist, ...) or a file: 'vaekit "
        "train digits', say.",
    ),
    Case(
        "commands",
        "resuming with other options",
        ["train", "--resume", "run", "--max-epochs", "3"],
        "--resume goes on with the options the run was started with; pass no others.",
        run_folder(),
    ),
    Case(
        "commands",
        "a run folder that exists",
        ["train", "rows.npy", "--out", "run"],
        "run already exists; choose another --out or pass --overwrite.",
        lambda folder: (run_folder()(folder), npy("rows.npy", GOOD)(folder)),
    ),
    Case(
        "commands",
        "an interrupted run in the way",
        ["train", "rows.npy", "--out", "run"],
        "run.partial holds an interrupted run of another request; finish it with 'vaekit "
        "train --resume run', or pass --overwrite to start afresh.",
        lambda folder: (
            npy("rows.npy", GOOD)(folder),
            write("run.partial/request.json", "{}")(folder),
        ),
    ),
    Case(
        "commands",
        "a run another process is training",
        ["train", "rows.npy", "--out", "run"],
        "run is being trained by another vaekit process right now; wait for it to finish, or "
        "choose another --out.",
        lambda folder: (npy("rows.npy", GOOD)(folder), hold_lock(folder / "run.lock")),
    ),
    Case(
        "commands",
        "no processes",
        ["train", "rows.npy", "--nproc", "0"],
        "argument --nproc: expected a positive integer, got '0'; see 'vaekit train --help'.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "commands",
        "a corrupt request of an interrupted run",
        ["train", "--resume", "run"],
        "run.partial/request.json is not a valid run request.",
        write("run.partial/request.json", "{"),
    ),
    Case(
        "commands",
        "a config file that does not exist",
        ["train", "rows.npy", "--config", "none.toml"],
        "No config file at none.toml.",
        npy("rows.npy", GOOD),
    ),
    Case(
        "commands",
        "a config file that is not TOML",
        ["train", "rows.npy", "--config", "bad.toml"],
        "bad.toml is not valid TOML (Invalid value (at line 1, column 16)).",
        lambda folder: (
            npy("rows.npy", GOOD)(folder),
            write("bad.toml", "n_components = \n")(folder),
        ),
    ),
    Case(
        "commands",
        "a file of one row",
        ["train", "one.npy"],
        "one.npy has 1 row; at least 2 are needed.",
        npy("one.npy", GOOD[:1]),
    ),
    Case(
        "commands",
        "an autoencoder asked to sample",
        ["sample", "run"],
        "This run's autoencoder cannot sample; train a vae to sample.",
        autoencoder_run,
    ),
    Case(
        "commands",
        "too few rows for the pairs asked",
        ["interpolate", "run", "--data", "two.npy", "--pairs", "2"],
        "--pairs 2 needs 4 rows; the data have 2.",
        lambda folder: (run_folder()(folder), npy("two.npy", GOOD[:2])(folder)),
    ),
    Case(
        "commands",
        "embeddings to a file that is neither .npy nor .csv",
        ["encode", "run", "--out", "codes.txt"],
        "Write embeddings to a .npy or .csv file, not codes.txt.",
        run_folder(),
    ),
    Case(
        "commands",
        "an output folder that does not exist",
        ["encode", "run", "--out", "nowhere/codes.csv"],
        "Cannot write nowhere/codes.csv: folder nowhere does not exist.",
        run_folder(),
    ),
    Case(
        "commands",
        "a picture to a file that is not .png",
        ["sample", "run", "--out", "samples.jpg"],
        "Write the picture to a .png file, not samples.jpg.",
        run_folder(),
    ),
    Case(
        "commands",
        "a picture of tabular data",
        ["sample", "run", "--out", "samples.png"],
        "This run's data are not images, so there is no picture to draw; write the rows "
        "to a table instead (--out samples.csv).",
        run_folder(),
    ),
    Case(
        "commands",
        "originals beside reconstructions in a picture",
        ["reconstruct", "run", "--with-originals", "--out", "pairs.png"],
        "--with-originals writes a table; give --out a .csv file, not pairs.png.",
        run_folder(),
    ),
    # model folders
    Case(
        "model folders",
        "no folder at all",
        ["evaluate", "nothing"],
        "nothing is not a vaekit run folder: run.json is missing.",
    ),
    Case(
        "model folders",
        "the weights file missing",
        ["evaluate", "run"],
        "run is not a vaekit model folder: its weights file model.safetensors is missing.",
        run_folder(remove("model.safetensors")),
    ),
    Case(
        "model folders",
        "a truncated weights file",
        ["evaluate", "run"],
        "run/model.safetensors does not match the SHA256 in config.json: the file is corrupt, "
        "truncated or was changed after saving.",
        run_folder(cut_file("model.safetensors", 100)),
    ),
    Case(
        "model folders",
        "tampered weights",
        ["evaluate", "run"],
        "run/model.safetensors does not match the SHA256 in config.json: the file is corrupt, "
        "truncated or was changed after saving.",
        run_folder(edit_weights(lambda t: t[FIRST_BIAS].add_(1), keep_sha=True)),
    ),
    Case(
        "model folders",
        "a pickle in place of the weights",
        ["evaluate", "run"],
        "run/model.safetensors does not match the SHA256 in config.json: the file is corrupt, "
        "truncated or was changed after saving.",
        run_folder(lambda run: (run / "model.safetensors").write_bytes(b"\x80\x04cos\nsystem\n.")),
    ),
    Case(
        "model folders",
        "weights of the wrong shape (with a matching SHA256)",
        ["evaluate", "run"],
        "run cannot be rebuilt from its config and weights: decoder.0.bias has shape (3,) where "
        "the model needs (128,).",
        run_folder(edit_weights(lambda t: t.update({FIRST_BIAS: torch.zeros(3)}))),
    ),
    Case(
        "model folders",
        "weights of the wrong dtype",
        ["evaluate", "run"],
        "run cannot be rebuilt from its config and weights: decoder.0.bias is torch.float16 where "
        "the model needs torch.float32.",
        run_folder(edit_weights(lambda t: t.update({FIRST_BIAS: t[FIRST_BIAS].half()}))),
    ),
    Case(
        "model folders",
        "a weight missing from the file",
        ["evaluate", "run"],
        "run cannot be rebuilt from its config and weights: the weights lack decoder.0.bias.",
        run_folder(edit_weights(lambda t: t.pop(FIRST_BIAS))),
    ),
    Case(
        "model folders",
        "config.json missing",
        ["evaluate", "run"],
        "run is not a vaekit model folder: its configuration config.json is missing.",
        run_folder(remove("config.json")),
    ),
    Case(
        "model folders",
        "config.json truncated",
        ["evaluate", "run"],
        "run/config.json is not valid JSON (Unterminated string starting at).",
        run_folder(cut_file("config.json", 40)),
    ),
    Case(
        "model folders",
        "an unknown key in config.json",
        ["evaluate", "run"],
        "run/config.json has unknown keys: surprise.",
        run_folder(edit_config(surprise=1)),
    ),
    Case(
        "model folders",
        "an unknown parameter in config.json",
        ["evaluate", "run"],
        "run/config.json has unknown parameters: colour.",
        run_folder(edit_config(**{"params.colour": "red"})),
    ),
    Case(
        "model folders",
        "a parameter of the wrong type",
        ["evaluate", "run"],
        "run cannot be rebuilt from its config and weights: n_components must be a positive "
        "integer.",
        run_folder(edit_config(**{"params.n_components": "two"})),
    ),
    Case(
        "model folders",
        "n_features_in of the wrong type",
        ["evaluate", "run"],
        "run/config.json has n_features_in='6'; it must be a positive integer.",
        run_folder(edit_config(n_features_in="6")),
    ),
    Case(
        "model folders",
        "a newer schema version",
        ["evaluate", "run"],
        "run has model schema version 2; this vaekit reads version 1, so upgrade vaekit or "
        "re-save the model.",
        run_folder(edit_config(schema_version=2)),
    ),
    Case(
        "model folders",
        "run.json corrupt",
        ["evaluate", "run"],
        "run/run.json is not a valid run description.",
        run_folder(lambda run: (run / "run.json").write_text("{")),
    ),
    # resuming
    Case(
        "resuming",
        "nothing to resume",
        ["train", "--resume", "run"],
        "There is nothing to resume at run: it is no interrupted run.",
    ),
    Case(
        "resuming",
        "a corrupt checkpoint",
        ["train", "--resume", "run"],
        "The checkpoint in run.partial/training_state is unreadable or corrupt; delete the "
        "folder to start training afresh.",
        lambda folder: (
            run_folder()(folder),
            (folder / "run").rename(folder / "run.partial"),
            cut_file("training_state/state.safetensors", 50)(folder / "run.partial"),
        ),
    ),
    # training logs (TensorBoard)
    Case(
        "training logs",
        "a --log-dir that is a file",
        ["train", "digits", "--log-dir", "logs"],
        "log_dir logs is a file; give a folder for the TensorBoard logs.",
        write("logs", "not a folder\n"),
    ),
    Case(
        "training logs",
        "a --log-dir inside a file",
        ["train", "digits", "--log-dir", "notes.txt/logs"],
        "log_dir notes.txt/logs lies inside notes.txt, which is a file; give a folder for the "
        "TensorBoard logs.",
        write("notes.txt", "not a folder\n"),
    ),
    Case(
        "training logs",
        "an image shape that does not hold the rows, to picture them",
        ["train", "digits", "--image-shape", "7,7", "--log-dir", "logs"],
        "image_shape (1, 7, 7) holds 49 values, but the rows have 64; give the (channels, "
        "height, width) they were flattened from.",
    ),
    Case(
        "training logs",
        "--log-dir with --resume (the run logs where it started)",
        ["train", "--resume", "run", "--log-dir", "logs"],
        "--resume goes on with the options the run was started with; pass no others.",
    ),
    # exporting
    Case(
        "exporting",
        "a folder that is not a run",
        ["export", "nothing"],
        "nothing is not a vaekit run folder: run.json is missing.",
    ),
    Case(
        "exporting",
        "a format other than ONNX",
        ["export", "run", "--format", "tflite"],
        "argument --format: invalid choice: 'tflite' (choose from 'onnx'); see 'vaekit export "
        "--help'.",
        run_folder(),
    ),
    Case(
        "exporting",
        "an export folder that exists",
        ["export", "run", "--out", "onnx"],
        "onnx already exists; choose another --out or pass --overwrite.",
        lambda folder: (run_folder()(folder), write("onnx/model.json", "{}")(folder)),
    ),
    Case(
        "exporting",
        "a run exported before, to the default folder",
        ["export", "run"],
        "run/onnx already exists; choose another --out or pass --overwrite.",
        run_folder(write("onnx/model.json", "{}")),
    ),
    # exploring
    Case(
        "exploring",
        "neither a run nor a pretrained model to explore",
        ["explore"],
        "Give vaekit explore one model: a run folder or --pretrained NAME.",
    ),
    Case(
        "exploring",
        "other data for a pretrained model",
        ["explore", "--pretrained", "mnist-vae-2d", "--data", "digits"],
        "--pretrained explores the test images shipped with the model.",
    ),
    Case(
        "exploring",
        "a pretrained model that is not shipped",
        ["explore", "--pretrained", "mnist-vae-3d"],
        "There is no pretrained model 'mnist-vae-3d'; vaekit ships mnist-vae-2d, mnist-vae-50d.",
    ),
    Case(
        "exploring",
        "a folder to explore that is not a run",
        ["explore", "nothing"],
        "nothing is not a vaekit run folder: run.json is missing.",
    ),
    Case(
        "exploring",
        "a port out of range",
        ["explore", "run", "--port", "70000"],
        "The port must be a whole number from 0 (any free port) to 65535; got 70000.",
    ),
    Case(
        "exploring",
        "a port that is not a number",
        ["explore", "run", "--port", "http"],
        "argument --port: invalid int value: 'http'; see 'vaekit explore --help'.",
    ),
    Case(
        "exploring",
        "a port another program listens on",
        ["explore", "run", "--port", "47813"],
        "Cannot listen on 127.0.0.1:47813 (Address already in use); choose another --port, or "
        "leave it out for a free one.",
        lambda folder: (
            run_folder()(folder),
            HELD_LOCKS.append(__import__("socket").create_server(("127.0.0.1", 47813))),
        ),
    ),
    Case(
        "exploring",
        "a semi_supervised run",
        ["explore", "run"],
        "vaekit explore takes a vae or an autoencoder run; a semi_supervised model decodes each "
        "code with a class it infers, which the explorer does not choose yet.",
        lambda folder: (
            (folder / "run-table.csv").write_text(TABLE),
            __import__("vaekit.runs").runs.train_run(
                str(folder / "run-table.csv"),
                model="semi_supervised",
                out=folder / "run",
                params={"max_epochs": 1},
                pictures=False,
                verbose=False,
            ),
        ),
    ),
]
for case in CASES:
    case.id = case.what.replace(" ", "-")


@dataclass
class PythonCase:
    """A refusal only Python callers meet: ``call`` runs with ``X`` (GOOD), ``y`` (its labels,
    0 and 1), ``vae`` (a VAE fitted on them with ``condition="label"``) and ``vaekit``."""

    what: str
    call: str
    error: str
    message: str


PYTHON_CASES = [
    PythonCase(
        "a condition of the wrong length",
        "vae.transform(X, y[:5])",
        "DataError",
        "y must hold one class label per row (40 of them); got shape (5,).",
    ),
    PythonCase(
        "rows without their conditions",
        "vae.score_samples(X)",
        "DataError",
        "This model was fitted with condition='label'; give the conditions of the rows as y.",
    ),
    PythonCase(
        "an unseen class at sample time",
        "vae.sample(4, condition=7)",
        "DataError",
        "condition holds the class 7, which fit did not see; its classes are 0, 1.",
    ),
    PythonCase(
        "a conditional model sampled without a condition",
        "vae.sample(4)",
        "ConfigError",
        "This model was fitted with condition='label'; give sample(..., condition=...) the "
        "condition to generate for.",
    ),
    PythonCase(
        "labels of another kind than fit's",
        "vae.transform(X, y.astype(str))",
        "DataError",
        "y holds labels of another kind than fit's classes 0, 1.",
    ),
    PythonCase(
        "fit without the conditions",
        "vaekit.VAE(condition='label').fit(X)",
        "DataError",
        "condition='label' needs the conditions of the rows: fit(X, y).",
    ),
    PythonCase(
        "covariates with NaN",
        "vaekit.VAE(condition='covariates').fit(X, np.full(40, np.nan))",
        "DataError",
        "y holds NaN or infinite covariates.",
    ),
    PythonCase(
        "covariates of the wrong width",
        "vaekit.VAE(condition='covariates', max_epochs=1, verbose=False).fit(X, X[:, :2])"
        ".sample(2, condition=[1.0, 2.0, 3.0])",
        "DataError",
        "condition has 3 covariates; the model was fitted with 2.",
    ),
    PythonCase(
        "a prior that needs more pseudo-inputs than rows",
        "vaekit.VAE(prior='vamp', prior_components=100).fit(X)",
        "ConfigError",
        "prior='vamp' with 100 pseudo-inputs needs at least as many training rows, and there "
        "are 40 (its best mixture is the posteriors of the rows themselves); set "
        "prior_components to 40 or fewer.",
    ),
    PythonCase(
        "an evaluation precision that is not fp64 or fp32",
        "vae.score_samples(X, 10, y=y, precision='fp16')",
        "ConfigError",
        "precision must be one of fp64, fp32; got 'fp16'.",
    ),
    PythonCase(
        "a sample condition for an unconditional model",
        "vaekit.VAE(max_epochs=1, verbose=False).fit(X).sample(2, condition=1)",
        "ConfigError",
        "This model was fitted without a condition; sample takes none.",
    ),
    PythonCase(
        "TensorBoard log rows of another width",
        "vaekit.VAE(verbose=False).fit(X, log_dir='logs', log_rows=X[:, :3])",
        "DataError",
        "log_rows: X has 3 features, but VAE is expecting 6 features as input.",
    ),
    PythonCase(
        "TensorBoard log rows with another number of labels",
        "vaekit.VAE(verbose=False).fit(X, log_dir='logs', log_rows=(X, y[:5]))",
        "DataError",
        "log_rows has 40 rows but 5 values of y.",
    ),
]


@pytest.fixture(scope="module")
def python_namespace():
    import vaekit

    y = np.arange(len(GOOD)) % 2
    vae = vaekit.VAE(condition="label", max_epochs=1, verbose=False).fit(GOOD, y)
    return {"X": GOOD, "y": y, "vae": vae, "vaekit": vaekit, "np": np}


@pytest.mark.parametrize("case", PYTHON_CASES, ids=[c.what for c in PYTHON_CASES])
def test_python_callers_get_one_sentence(python_namespace, case):
    import vaekit

    with pytest.raises(getattr(vaekit, case.error)) as caught:
        exec(case.call, dict(python_namespace))
    assert str(caught.value) == case.message


DRIVER = """
import contextlib, io, json, os, sys, warnings
from vaekit.cli import main
warnings.simplefilter("always")
results = []
for cwd, argv in json.load(sys.stdin):
    os.chdir(cwd)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
    results.append([code, err.getvalue()])
json.dump(results, sys.stdout)
"""


def fast(argv: list) -> list[str]:
    """Flags that keep a train command short should it wrongly succeed."""
    if argv[0] != "train" or "--resume" in argv:
        return []
    return FAST[2:] if "--max-epochs" in argv else FAST  # a case's own --max-epochs stays


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def results(tmp_path_factory, digits):
    """Set up every case in its own folder, then run them all in one fresh process."""
    from vaekit.runs import train_run

    base = tmp_path_factory.mktemp("bad-input")
    np.save(base / "rows.npy", GOOD)
    train_run(str(base / "rows.npy"), out=base / TRAINED, params={"max_epochs": 2},
              pictures=False, verbose=False)  # fmt: skip
    folders, before = {}, {}
    for case in CASES:
        folders[case.id] = base / case.id
        folders[case.id].mkdir()
        if case.setup is not None:
            case.setup(folders[case.id])
        before[case.id] = listing(folders[case.id])
    jobs = [[str(folders[c.id]), [*map(str, c.argv), *fast(c.argv)]] for c in CASES]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    outcomes = dict(zip([c.id for c in CASES], json.loads(done.stdout), strict=True))
    after = {c.id: listing(folders[c.id]) for c in CASES}
    return outcomes, before, after


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_its_one_line_and_leaves_nothing(results, case):
    outcomes, before, after = results
    code, stderr = outcomes[case.id]
    assert stderr == f"vaekit: error: {case.message}\n"
    assert code == 2
    assert after[case.id] == before[case.id]


def markdown() -> str:
    """docs/bad-input.md, from the catalogue."""
    lines = [
        "# Bad input: what vaekit says",
        "",
        "Every case below is a test (`tests/test_bad_input.py`, which also writes this page): the",
        "command exits with status 2, prints exactly the one line shown after `vaekit: error: `,",
        "and leaves its folder as it was (the test adds `--max-epochs 1 --no-pictures --quiet` to",
        "`train`). Paths are as the user typed them. Python callers get the loaders' and the",
        "estimators' sentences as a `vaekit.DataError`, `ConfigError` or `ModelFileError`; the",
        "refusals that only the shell can meet (a flag, a likelihood asked for on the command",
        "line, an output file) speak in flags. A test checks that every refusal in `cli/`,",
        "`runs/` and `compare.py` has a case here.",
    ]
    for group in dict.fromkeys(c.group for c in CASES):
        lines += ["", f"## {group.capitalize()}", "", "| input | command | message |"]
        lines.append("| --- | --- | --- |")
        for case in (c for c in CASES if c.group == group):
            command = " ".join(["vaekit", *map(str, case.argv)])
            message = case.message.replace("|", "\\|")
            lines.append(f"| {case.what} | `{command}` | {message} |")
    lines += ["", "## From Python", "", "The calls run with `X` of 40 rows, `y` their labels (0 "
              "and 1) and `vae = vaekit.VAE(condition='label').fit(X, y)`.", "",
              "| input | call | error: message |", "| --- | --- | --- |"]  # fmt: skip
    for case in PYTHON_CASES:
        message = case.message.replace("|", "\\|")
        lines.append(f"| {case.what} | `{case.call}` | {case.error}: {message} |")
    return "\n".join(lines) + "\n"


SRC = Path(__file__).parents[1] / "src" / "vaekit"
#: The modules whose refusals reach the shell as they are (the estimators' own are reached
#: through the parameter and data cases above).
SHELL_MODULES = [
    *sorted((SRC / "cli").glob("*.py")),
    *sorted((SRC / "runs").glob("*.py")),
    SRC / "compare.py",
]
#: Refusals in those modules that the shell cannot reach, and why.
PYTHON_ONLY = {
    "test_fraction must be a number in (0, 1).": "--test-fraction is checked by argparse",
    " parameter(s): ": "config keys are checked against the parameters first",
    "compare reads pipelines of a Binarizer": "the shell builds the pipelines itself",
    "starts torchrun itself": "needs torchrun's environment (tests/test_distributed.py)",
}


def _refusals(path: Path):
    """(line, longest literal part) of every ``raise ConfigError/DataError/...(message)``."""
    for node in ast.walk(ast.parse(path.read_text())):
        call = node.exc if isinstance(node, ast.Raise) else None
        if not isinstance(call, ast.Call) or not call.args:
            continue
        if getattr(call.func, "id", "") not in ("ConfigError", "DataError", "ModelFileError"):
            continue
        message = call.args[0]
        values = message.values if isinstance(message, ast.JoinedStr) else [message]
        parts = [v.value for v in values if isinstance(v, ast.Constant)]
        yield node.lineno, max(parts, key=len)


def test_every_refusal_the_shell_can_meet_is_in_the_catalogue():
    messages = [case.message for case in CASES]
    missing = [
        f"{path.name}:{line}: {part!r}"
        for path in SHELL_MODULES
        for line, part in _refusals(path)
        if not any(part in m for m in messages) and not any(k in part for k in PYTHON_ONLY)
    ]
    assert not missing, "add a case for each of:\n" + "\n".join(missing)


def test_the_docs_table_is_the_catalogue():
    assert DOCS.read_text() == markdown(), "run: python tests/test_bad_input.py"


if __name__ == "__main__":
    DOCS.write_text(markdown())
