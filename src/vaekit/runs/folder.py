"""The run folder: train a run into it, resume an interrupted one, open a finished one.

The folder holds the saved model (config.json, model.safetensors, metrics.jsonl), ``run.json``
(the effective configuration: model, data, parameters, metrics), the PNG pictures,
``report.html`` and ``training_state/`` (the last training checkpoint). It is assembled in
``<folder>.partial`` beside the target and renamed into place at the end. A failed run leaves
nothing behind; a killed or interrupted one leaves the partial folder, with ``request.json``
(what was asked for) and its latest checkpoint, and ``resume_run`` finishes it; so does the same
request made again (a scheduler's or torchrun's restart).

Under torchrun every process runs the whole flow in step (the training and the sharded
evaluation need them all), but only rank 0 reads and writes the run folder: it decides whether
the run starts, resumes or is refused (``distributed.on_main``), and the other processes
assemble their copy in a temporary folder that is thrown away.
"""

from __future__ import annotations

import fcntl
import inspect
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning

from .. import __version__
from ..data import DATASETS, load_dataset
from ..engine.checkpoint import STATE_JSON
from ..engine.devices import resolve_device
from ..engine.distributed import current_world, on_main, together
from ..estimators import LatentEstimator, keep_labels, load
from ..estimators.registry import model_class
from ..evaluation import evaluate
from ..exceptions import (
    ConfigError,
    DataError,
    ModelFileError,
    PosteriorCollapseWarning,
    TrainingInterrupted,
)
from ..io import write_atomic
from .conditions import LABEL, condition_columns, condition_params, split_conditions
from .data import (
    binarize_settings,
    check_likelihood_fits,
    check_scaling,
    data_defaults,
    held_out,
    in_memory,
    named_labels,
)
from .pictures import build_report
from .reproduce import train_command
from .run import Run
from .shift import feature_range

RUN_FILE = "run.json"
REQUEST_FILE = "request.json"
CHECKPOINT_FOLDER = "training_state"
PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"
REQUEST_KEYS = {"source", "model", "params", "data_dir", "binarize", "test_fraction", "seed"}
REQUEST_KEYS |= {"pictures", "checkpoint_every", "condition", "labels_kept"}
REQUEST_KEYS |= {"log_dir"}
#: Warnings about how training went, kept in run.json and repeated by the CLI's summary.
TRAINING_WARNINGS = (ConvergenceWarning, PosteriorCollapseWarning)
REPORT_SAMPLES = 100  # importance samples for the log-likelihood shown in a run's report


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
    log_dir: str | os.PathLike | None = None,
    condition: str | None = None,
    labels_kept: int | None = None,
    verbose: bool = True,
    resume: bool = False,
) -> Run:
    """Train ``model`` on ``source`` and write the run folder; returns the Run.

    The training state is checkpointed every ``checkpoint_every`` epochs; with ``resume`` the
    interrupted run whose partial folder is beside ``out`` goes on from its last checkpoint
    (``resume_run`` reads the other arguments back from that folder). An interrupted run whose
    request is this one goes on too: the same command, issued again, finishes its own run.
    With ``log_dir`` the fit writes TensorBoard logs there (the held-out rows' codes and labels
    go to the projector), and a resumed run goes on logging there.
    ``condition`` (``"label"``, or a table's column names separated by commas) trains a
    conditional VAE on the labels or on those columns, taken out of the features. A model that
    learns from labels (``semi_supervised``) trains on the training rows' labels, of which
    ``labels_kept`` (a seeded, class-balanced few) keep theirs and the others count as
    unlabelled; -1 in the data marks an unlabelled row too.
    """
    # The parameters, the device and a given output folder are checked before any data is read
    # (under torchrun by rank 0, for all).
    given = (params or {}) | condition_params(condition)
    condition_columns(condition)  # a malformed list of columns is refused before any work
    mode, binarized = on_main(
        lambda: _check_request(model, given, binarize, seed, condition, labels_kept)
    )
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
        "log_dir": None if log_dir is None else str(Path(log_dir).resolve()),
        "condition": condition,
        "labels_kept": labels_kept,
    }
    if out is not None:
        resume = on_main(lambda: _claim(Path(out), request, overwrite, resume))
    dataset = together(lambda: _load_checked(source, data_dir, mode, seed, params, binarize, model))
    (X_train, y_train), (X_test, y_test) = held_out(dataset, test_fraction, seed)
    names = dataset.label_names
    learns_labels = model_class(model).needs_labels
    if learns_labels:  # the labels go to fit as y, as a label-conditioned model's do
        _require_labels(dataset, model)
        condition = LABEL
    if condition_columns(condition):  # a table, in memory: its condition columns come out
        X_train = in_memory(X_train)
    X_train, c_train, features = split_conditions(
        condition, X_train, named_labels(y_train, names), dataset.feature_names, dataset.name
    )
    X_test, c_test, _ = split_conditions(
        condition, in_memory(X_test), named_labels(y_test, names), dataset.feature_names, ""
    )
    if learns_labels and labels_kept is not None:
        c_train = keep_labels(c_train, labels_kept, random_state=seed)
    effective = data_defaults(dataset, mode, (params or {}).get("likelihood")) | binarized
    effective |= {"random_state": seed, "verbose": verbose} | given
    estimator = _make_estimator(model, effective)
    target = Path(out) if out is not None else on_main(lambda: _default_folder(dataset.name, model))
    if out is None:
        resume = on_main(lambda: _claim(target, request, overwrite, resume))
    with _staging(target, resume) as staging:
        if not resume:
            write_atomic(staging / REQUEST_FILE, (json.dumps(request, indent=2) + "\n").encode())
        with warnings.catch_warnings(record=True) as caught:
            for category in TRAINING_WARNINGS:
                warnings.simplefilter("always", category)
            estimator.fit(
                X_train,
                c_train,
                checkpoint_dir=staging / CHECKPOINT_FOLDER,
                checkpoint_every=checkpoint_every,
                log_dir=log_dir,  # as given (on resume: as request.json keeps it, absolute)
                log_rows=(X_test, named_labels(y_test, names) if c_test is None else c_test),
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
                "feature_names": _list(features),
                "condition": condition,
                "labels_kept": labels_kept,
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
        info["metrics"] = evaluate(estimator, X_test, c_test, n_samples=REPORT_SAMPLES)
        write_atomic(staging / RUN_FILE, (json.dumps(info, indent=2) + "\n").encode())
        if pictures:
            build_report(run, X_test, named_labels(y_test, names), c_test)
    return Run(target, estimator, info)


def _load_checked(source, data_dir, mode, seed, params, binarize, model):
    """The dataset, refused when the likelihood asked for cannot have produced it. NaN is a
    missing value for ``--missing ignore`` and for a model that always takes them."""
    always = getattr(model_class(model), "missing", None) == "ignore"
    missing = always or (params or {}).get("missing") == "ignore"
    dataset = load_dataset(source, data_dir=data_dir, binarize=mode, seed=seed, missing=missing)
    check_likelihood_fits(dataset, (params or {}).get("likelihood"), binarize)
    return dataset


def _check_request(
    model: str,
    params: dict,
    binarize: str,
    seed: int,
    condition: str | None = None,
    labels_kept: int | None = None,
) -> tuple[str, dict]:
    """The binarize settings of a request whose options have been checked."""
    learns_labels = model_class(model).needs_labels
    if learns_labels and condition is not None:
        raise ConfigError(
            f"--model {model} learns from the data's labels and generates by class; it takes "
            "no --condition."
        )
    if (
        "condition" in params
        and "condition" not in inspect.signature(model_class(model)).parameters
    ):
        raise ConfigError(f"--condition trains a conditional vae; --model {model} takes none.")
    if labels_kept is not None and not learns_labels:
        raise ConfigError(
            f"--labels-kept is for a model that learns from few labels (--model "
            f"semi_supervised); --model {model} uses no labels."
        )
    settings = binarize_settings(binarize)
    check_scaling(params)
    _make_estimator(model, {**params, "random_state": seed})._check_params()
    resolve_device(params.get("device", "auto"))
    return settings


def _require_labels(dataset, model: str) -> None:
    """Refuse data without labels for a model that learns from them."""
    if dataset.y_train is None:
        raise DataError(
            f"--model {model} learns from labels, and {dataset.name} has none (a table needs a "
            "column named label, labels, target, class or y; -1 marks an unlabelled row)."
        )


def is_finished(folder: str | os.PathLike) -> bool:
    """True when ``folder`` (a run folder or its ``.partial`` folder) holds a finished run and
    no interrupted one: there is nothing left to resume. Under torchrun, rank 0 looks."""
    folder = Path(folder)
    target = folder.with_name(folder.name.removesuffix(PARTIAL_SUFFIX))
    partial = partial_folder(target)
    return on_main(lambda: (target / RUN_FILE).is_file() and not (partial / REQUEST_FILE).is_file())


def resume_run(folder: str | os.PathLike, *, verbose: bool = True) -> Run:
    """Finish an interrupted run: ``folder`` is the run's folder or its ``.partial`` folder."""
    folder = Path(folder)
    target = folder.with_name(folder.name.removesuffix(PARTIAL_SUFFIX))
    request = on_main(lambda: _interrupted_request(target))
    return train_run(request.pop("source"), out=target, verbose=verbose, resume=True, **request)


def partial_folder(target: Path) -> Path:
    """Where the run for ``target`` is assembled, and where an interrupted one waits."""
    return target.with_name(target.name + PARTIAL_SUFFIX)


def _interrupted_request(target: Path) -> dict:
    """The request of the interrupted run at ``target``; ConfigError when there is none."""
    partial = partial_folder(target)
    if not (partial / REQUEST_FILE).is_file():
        what = "a finished run" if (target / RUN_FILE).is_file() else "no interrupted run"
        raise ConfigError(f"There is nothing to resume at {target}: it is {what}.")
    try:
        request = json.loads((partial / REQUEST_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        request = None
    if isinstance(request, dict):
        request.setdefault("condition", None)  # a request of vaekit 0.x before conditions
        request.setdefault("labels_kept", None)  # ... and before semi-supervised runs
        request.setdefault("log_dir", None)  # ... and before TensorBoard logs
    if not isinstance(request, dict) or set(request) != REQUEST_KEYS:
        raise ModelFileError(f"{partial / REQUEST_FILE} is not a valid run request.")
    return request


def _claim(target: Path, request: dict, overwrite: bool, resume: bool) -> bool:
    """Whether the run at ``target`` goes on from its checkpoint (True) or starts (False).

    An interrupted run there goes on when ``resume`` is asked for or its request is
    ``request`` (the same command again); another interrupted run or a finished one is
    refused unless ``overwrite``.
    """
    if resume:
        return True
    partial = partial_folder(target)
    if (partial / REQUEST_FILE).is_file() and not overwrite:
        if _stored_request(partial) == json.loads(json.dumps(request)):
            return True
        raise ConfigError(
            f"{partial} holds an interrupted run of another request; finish it with 'vaekit "
            f"train --resume {target}', or pass --overwrite to start afresh."
        )
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} already exists; choose another --out or pass --overwrite.")
    return False


def _stored_request(partial: Path) -> dict | None:
    try:
        return json.loads((partial / REQUEST_FILE).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


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


def _source_text(source) -> str:
    """A dataset name as is; a file or folder as an absolute path, so runs work from anywhere."""
    path = Path(source)
    return str(path.resolve()) if str(source) not in DATASETS and path.exists() else str(source)


def _make_estimator(model: str, params: dict) -> LatentEstimator:
    cls = model_class(model)
    accepted = cls().get_params()
    if unknown := sorted(set(params) - set(accepted)):
        fixed = [name for name in unknown if _fixed_on(cls, name)]
        if fixed:  # a setting the model's class pins, as the semi-supervised model pins objective
            settings = ", ".join(f"{name}={getattr(cls, name)!r}" for name in fixed)
            raise ConfigError(f"--model {model} fixes {settings}; leave the option out.")
        raise ConfigError(f"Unknown {model} parameter(s): {', '.join(unknown)}.")
    return cls(**params)


def _fixed_on(cls: type, name: str) -> bool:
    """Whether the class pins ``name`` as a setting (a class attribute that is not a method)."""
    return hasattr(cls, name) and not callable(getattr(cls, name))


def _list(names: tuple[str, ...] | None) -> list[str] | None:
    return None if names is None else list(names)


def _jsonable(params: dict) -> dict:
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in params.items()
        if k not in ("encoder", "decoder")
    }


def _default_folder(name: str, model: str) -> Path:
    """runs/NAME-MODEL, or the first of runs/NAME-MODEL-2, -3, ... that does not exist."""
    base = Path("runs") / f"{name}-{model}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


class _staging:
    """``target.partial``: replaces ``target`` on success and vanishes on a failure before the
    first checkpoint; from then on it is kept (on Ctrl-C, a kill or an error) for resume_run.

    Under torchrun, a process other than rank 0 stages into a temporary folder of its own,
    removed at the end, whatever happens.
    """

    def __init__(self, target: Path, resume: bool):
        self.target, self.resume = target, resume
        self.path = partial_folder(target)
        self.private = not current_world().main
        self.lock = target.with_name(target.name + LOCK_SUFFIX)
        self.lock_fd: int | None = None

    def __enter__(self) -> Path:
        if self.private:
            self.path = Path(tempfile.mkdtemp(prefix="vaekit-run-"))
            return self.path
        self._hold_lock()
        if not self.resume:  # a partial folder discarded, or killed before it held a request
            shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True, exist_ok=self.resume)
        return self.path

    def _hold_lock(self) -> None:
        """Hold ``RUN.lock`` while training: a second process training into the same folder
        is refused. The kernel lets go of it when the process ends, killed or not."""
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(
                f"{self.target} is being trained by another vaekit process right now; wait for "
                "it to finish, or choose another --out."
            ) from None
        self.lock_fd = fd

    def _let_go(self) -> None:
        self.lock.unlink(missing_ok=True)
        os.close(self.lock_fd)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.private:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self._let_go()
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            raise TrainingInterrupted(
                f"the last checkpoint is kept; finish the run with 'vaekit train --resume "
                f"{self.target}'"
            ) from None
        if self.private:
            return
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
