"""A run: an estimator trained on a dataset, in a folder with its model, metrics, pictures, report.

The folder holds the saved model (config.json, model.safetensors, metrics.jsonl), ``run.json``
(the effective configuration: model, data, parameters, metrics), the PNG pictures,
``report.html`` and ``training_state/`` (the last training checkpoint). It is assembled in
``<folder>.partial`` beside the target and renamed into place at the end. A failed run leaves
nothing behind; a killed or interrupted one leaves the partial folder, with ``request.json``
(what was asked for) and its latest checkpoint, and ``resume_run`` finishes it.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from . import __version__, plots
from .data import DATASETS, Dataset, load_dataset
from .engine.checkpoint import STATE_JSON
from .engine.devices import resolve_device
from .engine.sources import DataSource, SubsetSource
from .estimators import LatentEstimator, load
from .estimators.registry import model_class
from .evaluation import evaluate
from .exceptions import (
    ConfigError,
    DataError,
    ModelFileError,
    PosteriorCollapseWarning,
    TrainingInterrupted,
)
from .io import write_atomic
from .report import write_report
from .reproduce import train_command
from .shift import feature_range, warn_if_unlike

RUN_FILE = "run.json"
REQUEST_FILE = "request.json"
CHECKPOINT_FOLDER = "training_state"
PARTIAL_SUFFIX = ".partial"
REQUEST_KEYS = {"source", "model", "params", "data_dir", "binarize", "test_fraction", "seed"}
REQUEST_KEYS |= {"pictures", "checkpoint_every"}
DATA_BINARIZE = ("none", "dynamic", "fixed")
#: Warnings about how training went, kept in run.json and repeated by the CLI's summary.
TRAINING_WARNINGS = (ConvergenceWarning, PosteriorCollapseWarning)
REPORT_SAMPLES = 100  # importance samples for the log-likelihood shown in a run's report


@dataclass
class Run:
    """A trained run folder: the estimator, the data description and the effective config."""

    folder: Path
    estimator: LatentEstimator
    info: dict

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        shape = self.info["data"].get("image_shape")
        return tuple(shape) if shape else None

    def load_data(self, source: str | None = None, data_dir: str | None = None):
        """(X, y) to work on: ``source`` if given, else the test split of the training data.

        ``y`` holds the labels as the data name them: class names where the file gave names.
        """
        data = self.info["data"]
        if source is None:
            dataset = load_dataset(
                data["source"],
                data_dir=data_dir or data.get("data_dir"),
                binarize=data["binarize"],
                seed=data["seed"],
            )
            X, y = held_out(dataset, data["test_fraction"], data["seed"])[1]
            return X, named_labels(y, dataset.label_names)
        dataset = load_dataset(
            source, data_dir=data_dir, binarize=data["binarize"], seed=data["seed"]
        )
        parts = [(in_memory(dataset.train), dataset.y_train)]
        if dataset.test is not None:
            parts.append((dataset.test, dataset.y_test))
        X = np.concatenate([p[0] for p in parts])
        expected = self.estimator.n_features_in_
        if X.shape[1] != expected:
            raise DataError(
                f"{source} has {X.shape[1]} features per row, but this run's model was trained "
                f"on {expected}; give data of the same kind as {data['name']}."
            )
        warn_if_unlike(X, data.get("held_out_range"), source)
        labelled = all(p[1] is not None for p in parts)
        y = np.concatenate([p[1] for p in parts]) if labelled else None
        return X, named_labels(y, dataset.label_names)

    @property
    def feature_names(self) -> list[str] | None:
        """The training table's column names, if it had a header."""
        return self.info["data"].get("feature_names")


def named_labels(y: np.ndarray | None, names: tuple[str, ...] | None) -> np.ndarray | None:
    """Class ids as the class names the data gave (unchanged when they gave none)."""
    return y if y is None or names is None else np.asarray(names)[y]


def held_out(dataset: Dataset, test_fraction: float, seed: int):
    """((X_train, y_train), (X_test, y_test)): the dataset's own split, or a seeded one."""
    if dataset.test is not None:
        return (dataset.train, dataset.y_train), (dataset.test, dataset.y_test)
    if not 0 < test_fraction < 1:
        raise ConfigError("test_fraction must be a number in (0, 1).")
    if len(dataset.train) < 2:
        raise DataError(f"{dataset.name} has {len(dataset.train)} row; at least 2 are needed.")
    y = dataset.y_train
    if isinstance(dataset.train, DataSource):  # the same rows as for an array, without a copy
        train, test = train_test_split(
            np.arange(len(dataset.train)), test_size=test_fraction, random_state=seed
        )
        labels = (None, None) if y is None else (y[train], y[test])
        X_test = in_memory(SubsetSource(dataset.train, test))
        return (SubsetSource(dataset.train, train), labels[0]), (X_test, labels[1])
    parts = train_test_split(
        dataset.train, *([] if y is None else [y]), test_size=test_fraction, random_state=seed
    )
    if y is None:
        return (parts[0], None), (parts[1], None)
    return (parts[0], parts[2]), (parts[1], parts[3])


def in_memory(X: np.ndarray | DataSource) -> np.ndarray:
    """The rows of a source as one float32 array (for held-out rows and commands on files)."""
    return X.rows(np.arange(len(X))) if isinstance(X, DataSource) else X


def data_defaults(dataset: Dataset, binarize: str, likelihood: str | None = None) -> dict:
    """Estimator parameters that suit the data: likelihood, scaling, image shape.

    ``likelihood`` is the one asked for, if any: real-valued data are standardised only for
    the Gaussian likelihood, the one that can model them.
    """
    if binarize == "dynamic":
        return {
            "likelihood": "bernoulli",
            "binarize": "dynamic",
            "image_shape": dataset.image_shape,
        }
    if dataset.kind == "binary":
        return {"likelihood": "bernoulli", "image_shape": dataset.image_shape}
    if dataset.kind == "real":
        scaled = likelihood in (None, "gaussian")
        return {"likelihood": "gaussian", **({"standardize": True} if scaled else {})}
    return {"likelihood": "gaussian", "image_shape": dataset.image_shape}


def check_scaling(params: dict) -> None:
    """Refuse, in the shell's words, ``standardize`` with a likelihood other than the Gaussian."""
    likelihood = params.get("likelihood")
    if params.get("standardize") and likelihood not in (None, "gaussian"):
        raise ConfigError(
            f"--standardize needs --likelihood gaussian; {likelihood} data need no scaling, "
            "so drop --standardize (or pass --no-standardize)."
        )


def check_likelihood_fits(dataset: Dataset, likelihood: str | None, binarize: str) -> None:
    """Refuse, in the shell's words, a likelihood asked for that the data cannot come from.

    Parameters
    ----------
    dataset : Dataset
        The data to train on, before any binarisation by threshold.
    likelihood : str or None
        The likelihood asked for (``--likelihood``), None when left to the data.
    binarize : str
        ``--binarize``: 'none', 'dynamic', 'fixed' or a threshold.

    Raises
    ------
    DataError
        For the Bernoulli likelihoods on data outside their range, naming the flags that fix it.
    """
    if binarize != "none" or dataset.kind == "binary":
        return
    if likelihood == "bernoulli":
        what = "values outside [0, 1]" if dataset.kind == "real" else "values between 0 and 1"
        unit = dataset.kind == "unit"
        dynamic = " or --binarize dynamic" if unit else ""
        other = "continuous_bernoulli or gaussian" if unit else "gaussian"
        raise DataError(
            f"{dataset.name} has {what}, but --likelihood bernoulli models 0 or 1; binarise it "
            f"with a threshold such as --binarize 0.5{dynamic}, or use --likelihood {other}."
        )
    if likelihood == "continuous_bernoulli" and dataset.kind == "real":
        raise DataError(
            f"{dataset.name} has values outside [0, 1], but --likelihood continuous_bernoulli "
            "models [0, 1]; rescale the data to [0, 1], binarise them with --binarize 0.5 and "
            "--likelihood bernoulli, or use --likelihood gaussian."
        )


def train_run(
    source: str,
    *,
    model: str = "vae",
    params: dict | None = None,
    out: str | os.PathLike | None = None,
    data_dir: str | None = None,
    binarize: str = "none",
    test_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
    pictures: bool = True,
    checkpoint_every: int = 1,
    verbose: bool = True,
    resume: bool = False,
) -> Run:
    """Train ``model`` on ``source`` and write the run folder; returns the Run.

    The training state is checkpointed every ``checkpoint_every`` epochs; with ``resume`` the
    interrupted run whose partial folder is beside ``out`` goes on from its last checkpoint
    (``resume_run`` reads the other arguments back from that folder).
    """
    # The parameters, the device and a given output folder are checked before any data is read.
    mode, binarized = binarize_settings(binarize)
    check_scaling(params or {})
    _make_estimator(model, {**(params or {}), "random_state": seed})._check_params()
    resolve_device((params or {}).get("device", "auto"))
    if out is not None and not resume:
        _check_target(Path(out), partial_folder(Path(out)), overwrite)
    dataset = load_dataset(source, data_dir=data_dir, binarize=mode, seed=seed)
    check_likelihood_fits(dataset, (params or {}).get("likelihood"), binarize)
    (X_train, _), (X_test, y_test) = held_out(dataset, test_fraction, seed)
    effective = data_defaults(dataset, mode, (params or {}).get("likelihood")) | binarized
    effective |= {"random_state": seed, "verbose": verbose} | (params or {})
    estimator = _make_estimator(model, effective)
    target = (
        Path(out) if out is not None else _free_folder(Path("runs") / f"{dataset.name}-{model}")
    )
    if out is None and not resume:
        _check_target(target, partial_folder(target), overwrite)
    request = {
        "source": _source_text(source),
        "model": model,
        "params": _jsonable(params or {}),
        "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
        "binarize": binarize,
        "test_fraction": test_fraction,
        "seed": seed,
        "pictures": pictures,
        "checkpoint_every": checkpoint_every,
    }
    with _staging(target, resume) as staging:
        if not resume:
            write_atomic(staging / REQUEST_FILE, (json.dumps(request, indent=2) + "\n").encode())
        with warnings.catch_warnings(record=True) as caught:
            for category in TRAINING_WARNINGS:
                warnings.simplefilter("always", category)
            estimator.fit(
                X_train,
                checkpoint_dir=staging / CHECKPOINT_FOLDER,
                checkpoint_every=checkpoint_every,
            )
        for w in caught:  # recorded for run.json, and passed on to the caller
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        estimator.save(staging)
        info = {
            "vaekit_version": __version__,
            "model": model,
            "command": train_command(request),
            "data": {
                "source": request["source"],
                "name": dataset.name,
                "data_dir": request["data_dir"],
                "binarize": mode,
                "seed": seed,
                "test_fraction": test_fraction,
                "kind": dataset.kind,
                "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
                "n_train": len(X_train),
                "n_test": len(X_test),
                "held_out_range": feature_range(in_memory(X_test)),
                "feature_names": _list(dataset.feature_names),
                "label_names": _list(dataset.label_names),
                "channels_last": dataset.channels_last,
            },
            "params": _jsonable(estimator.get_params()),
            "training_seconds": round(sum(r["seconds"] for r in estimator.history_), 2),
            "epochs": estimator.n_epochs_,
            "training": {
                "stopped_by": estimator.stopped_by_,
                "best_epoch": estimator.best_epoch_,
                "warnings": [
                    str(w.message) for w in caught if issubclass(w.category, TRAINING_WARNINGS)
                ],
            },
        }
        run = Run(staging, estimator, info)
        info["metrics"] = evaluate(estimator, X_test, n_samples=REPORT_SAMPLES)
        write_atomic(staging / RUN_FILE, (json.dumps(info, indent=2) + "\n").encode())
        if pictures:
            build_report(run, X_test, named_labels(y_test, dataset.label_names))
    return Run(target, estimator, info)


def resume_run(folder: str | os.PathLike, *, verbose: bool = True) -> Run:
    """Finish an interrupted run: ``folder`` is the run's folder or its ``.partial`` folder."""
    folder = Path(folder)
    target = folder.with_name(folder.name.removesuffix(PARTIAL_SUFFIX))
    partial = partial_folder(target)
    if not (partial / REQUEST_FILE).is_file():
        what = "a finished run" if (target / RUN_FILE).is_file() else "no interrupted run"
        raise ConfigError(f"There is nothing to resume at {target}: it is {what}.")
    try:
        request = json.loads((partial / REQUEST_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        request = None
    if not isinstance(request, dict) or set(request) != REQUEST_KEYS:
        raise ModelFileError(f"{partial / REQUEST_FILE} is not a valid run request.")
    return train_run(request.pop("source"), out=target, verbose=verbose, resume=True, **request)


def partial_folder(target: Path) -> Path:
    """Where the run for ``target`` is assembled, and where an interrupted one waits."""
    return target.with_name(target.name + PARTIAL_SUFFIX)


def _check_target(target: Path, partial: Path, overwrite: bool) -> None:
    if (partial / REQUEST_FILE).is_file() and not overwrite:
        raise ConfigError(
            f"{partial} holds an interrupted run; finish it with 'vaekit train --resume "
            f"{target}', or pass --overwrite to start afresh."
        )
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} already exists; choose another --out or pass --overwrite.")
    shutil.rmtree(partial, ignore_errors=True)  # discarded, or killed before it held a request


def open_run(folder: str | os.PathLike) -> Run:
    """Load a run folder written by ``train_run``."""
    folder = Path(folder)
    path = folder / RUN_FILE
    if not path.is_file():
        raise ModelFileError(f"{folder} is not a vaekit run folder: {RUN_FILE} is missing.")
    try:
        info = json.loads(path.read_text())
        info["data"]["source"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise ModelFileError(f"{path} is not a valid run description.") from None
    return Run(folder, load(folder), info)


def build_report(run: Run, X: np.ndarray, y: np.ndarray | None) -> Path:
    """Draw the run's pictures from held-out rows and write report.html.

    Parameters
    ----------
    run : Run
        The trained run; its folder receives the pictures and the page.
    X, y : ndarray
        Its held-out rows and their labels (None when unlabelled).

    Returns
    -------
    Path
        The report's path.
    """
    info = run.info
    images = draw_pictures(run, X, y)
    training = info.get("training", {})
    return write_report(
        run.folder,
        title=f"vaekit {info['model']} on {info['data']['name']}",
        metrics={
            **info["metrics"],
            "epochs": info["epochs"],
            "training_seconds": info["training_seconds"],
        },
        held_out=info["data"]["n_test"],
        training={**training, "patience": info["params"].get("patience")},
        command=info.get("command"),
        config=report_config(info),
        history=run.estimator.history_,
        images=images,
        captions=figure_captions(run, X, y),
    )


def draw_curves(run: Run) -> Path:
    """curves.png: the training curves, marking the weights kept and an early stop."""
    training = run.info.get("training", {})
    return plots.training_curves(
        run.estimator.history_,
        run.folder / "curves.png",
        best_epoch=training.get("best_epoch"),
        stopped_early=training.get("stopped_by") == "early_stopping",
    )


def report_config(info: dict) -> dict[str, dict]:
    """run.json's configuration as the report's sections: the run, the data, the parameters."""
    data = info["data"]
    shape = data.get("image_shape")
    return {
        "Run": {
            "model": f"{info['model']} (vaekit.{model_class(info['model']).__name__})",
            "vaekit version": info["vaekit_version"],
        },
        "Data": {
            "name": data["name"],
            "source": data["source"],
            **({"data folder": data["data_dir"]} if data.get("data_dir") else {}),
            "values": _KIND_WORDS.get(data["kind"], data["kind"]),
            "image shape": " × ".join(map(str, shape)) if shape else "none (rows of features)",
            "rows": f"{data['n_train']} for training, {data['n_test']} held out",
            "binarize": data["binarize"],
            "test fraction": f"{data['test_fraction']} (for data without a test split)",
            "seed": data["seed"],
        },
        "Estimator parameters": info["params"],
    }


_KIND_WORDS = {"binary": "binary, 0 or 1", "unit": "in [0, 1]", "real": "real numbers"}


def figure_captions(run: Run, X: np.ndarray, y: np.ndarray | None) -> dict[str, str]:
    """What each picture of ``draw_pictures`` shows, in a sentence, by its title."""
    est, n = run.estimator, len(X)
    code = "posterior mean" if est.density_model else "code"
    codes = f"{code}s"
    dims = est.n_components
    layout = {1: " as a histogram", 2: ""}.get(dims, " on their two leading principal directions")
    features = X.shape[1]
    axes = {1: "as histograms", 2: "on the two features"}.get(
        features, "on the data's two leading principal components"
    )
    span = inspect.signature(traverse).parameters["span"].default
    return {
        "samples": "Draws z ~ p(z) from the prior, each decoded to its mean E[x | z]; none "
        "picked or sorted.",
        "samples against data": f"The {n} held-out rows (dots) and {n} draws from the model "
        f"(crosses), {axes}.",
        "reconstructions": "Held-out images, each above its reconstruction: the decoder's mean "
        f"at its {code}.",
        "latent space": f"The {codes} of the {n} held-out rows{layout}, "
        + ("coloured by label." if y is not None else "uncoloured (the rows have no labels)."),
        "manifold": "The decoder's mean E[x | z] across the 2-D latent space, at evenly spaced "
        "quantiles of the standard-normal prior on each axis.",
        "interpolations": f"Each row decodes a straight line between the {codes} of two "
        "held-out rows, from start to end.",
        "latent traversals": f"Each row sweeps one latent unit from −{span} to {span} with the "
        "others at 0, decoded to the mean.",
        "training curves": _curves_caption(run),
    }


def _curves_caption(run: Run) -> str:
    validated = any("val_loss" in record for record in run.estimator.history_)
    rows = (
        "the training rows (blue) and the validation rows (orange)"
        if validated
        else "the training rows"
    )
    text = f"The training objective and its terms per epoch, on {rows}, in nats per example."
    training = run.info.get("training", {})
    if training.get("best_epoch") is not None:
        text += (
            f" The dashed green line marks epoch {training['best_epoch']}, whose weights were kept"
        )
        if training.get("stopped_by") == "early_stopping":
            text += "; the dotted red line marks where early stopping ended training"
        text += "."
    return text


def draw_pictures(run: Run, X: np.ndarray, y: np.ndarray | None) -> dict[str, Path]:
    """Every picture that suits the model and data, as {caption: path}."""
    est, shape, folder = run.estimator, run.image_shape, run.folder
    sampler = est.can_sample
    images: dict[str, Path] = {}
    if sampler and shape:
        images["samples"] = plots.image_grid(est.sample(64), shape, folder / "samples.png")
    if sampler and not shape:
        images["samples against data"] = plots.tabular_samples(
            X, est.sample(len(X)), folder / "samples.png"
        )
    if shape:
        originals = X[:16]
        images["reconstructions"] = plots.reconstruction_pairs(
            originals, est.reconstruct(originals), shape, folder / "reconstructions.png"
        )
    what = "posterior means" if est.density_model else "codes"
    images["latent space"] = plots.latent_scatter(
        est.transform(X), folder / "latent.png", labels=y, what=what
    )
    if sampler and shape and est.n_components == 2:
        grid = plots.standard_normal_grid(15)
        images["manifold"] = plots.manifold_grid(
            est.inverse_transform(grid), shape, folder / "manifold.png"
        )
    if shape and len(X) >= 2:
        images["interpolations"] = plots.interpolation_strips(
            interpolate(est, X[:8:2], X[1:8:2], 10), shape, folder / "interpolation.png"
        )
    if sampler and shape:
        n_dims = min(est.n_components, 8)
        images["latent traversals"] = plots.traversal_grid(
            traverse(est, n_dims, 9), shape, folder / "traversal.png", n_dims=n_dims, n_steps=9
        )
    images["training curves"] = draw_curves(run)
    return images


def interpolate(
    est: LatentEstimator, X_from: np.ndarray, X_to: np.ndarray, steps: int
) -> np.ndarray:
    """Decoded straight lines between the codes of paired rows: (pairs, steps, n_features)."""
    z_from, z_to = est.transform(X_from), est.transform(X_to)
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    path = (1 - t) * z_from[:, None, :] + t * z_to[:, None, :]
    decoded = est.inverse_transform(path.reshape(-1, est.n_components))
    return decoded.reshape(len(X_from), steps, -1)


def traverse(est: LatentEstimator, n_dims: int, steps: int, span: float = 2.5) -> np.ndarray:
    """Decode z = 0 with one unit at a time swept over [-span, span]: (n_dims * steps, D)."""
    values = np.linspace(-span, span, steps)
    Z = np.zeros((n_dims, steps, est.n_components))
    for d in range(n_dims):
        Z[d, :, d] = values
    return est.inverse_transform(Z.reshape(-1, est.n_components))


def _source_text(source) -> str:
    """A dataset name as is; a file or folder as an absolute path, so runs work from anywhere."""
    path = Path(source)
    return str(path.resolve()) if str(source) not in DATASETS and path.exists() else str(source)


def _threshold(binarize: str) -> float | None:
    if binarize in DATA_BINARIZE:
        return None
    try:
        return float(binarize)
    except ValueError:
        raise ConfigError(
            f"binarize must be one of {', '.join(DATA_BINARIZE)} or a threshold; got {binarize!r}."
        ) from None


def binarize_settings(binarize: str) -> tuple[str, dict]:
    """How a ``--binarize`` option reaches the data and the estimator.

    Parameters
    ----------
    binarize : str
        none, dynamic, fixed, or a threshold such as ``"0.5"``.

    Returns
    -------
    mode : str
        The binarize mode to load the data with: the option itself, or ``"none"`` for a
        threshold, which the estimator applies (``X > threshold``).
    params : dict
        The estimator parameters the option sets: for a threshold, ``likelihood="bernoulli"``,
        ``binarize=threshold`` and ``standardize=False`` (binary rows need no scaling); else
        none.

    Raises
    ------
    ConfigError
        For an option that is neither a mode nor a number.
    """
    threshold = _threshold(binarize)
    if threshold is None:
        return binarize, {}
    return "none", {"likelihood": "bernoulli", "binarize": threshold, "standardize": False}


def _make_estimator(model: str, params: dict) -> LatentEstimator:
    cls = model_class(model)
    accepted = cls().get_params()
    if unknown := sorted(set(params) - set(accepted)):
        raise ConfigError(f"Unknown {model} parameter(s): {', '.join(unknown)}.")
    return cls(**params)


def _list(names: tuple[str, ...] | None) -> list[str] | None:
    return None if names is None else list(names)


def _jsonable(params: dict) -> dict:
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in params.items()
        if k not in ("encoder", "decoder")
    }


def _free_folder(base: Path) -> Path:
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


class _staging:
    """``target.partial``: replaces ``target`` on success and vanishes on a failure before the
    first checkpoint; from then on it is kept (on Ctrl-C, a kill or an error) for resume_run."""

    def __init__(self, target: Path, resume: bool):
        self.target, self.resume = target, resume
        self.path = partial_folder(target)

    def __enter__(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=self.resume)
        return self.path

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            raise TrainingInterrupted(
                f"the last checkpoint is kept; finish the run with 'vaekit train --resume "
                f"{self.target}'"
            ) from None
        if exc_type is not None:
            if not (self.path / CHECKPOINT_FOLDER / STATE_JSON).is_file():
                shutil.rmtree(self.path, ignore_errors=True)
            return
        old = None
        if self.target.exists():
            old = self.path.with_name(self.path.name + ".old")
            os.replace(self.target, old)
        os.replace(self.path, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
