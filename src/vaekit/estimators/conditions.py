"""The conditions of a conditional VAE: class labels as one-hot columns, or covariates.

``fit(X, y)`` learns the encoding (``classes_`` for labels, ``n_covariates_`` for covariates)
and every later call that takes rows takes their conditions as ``y`` too, encoded the same way;
``sample(n, condition=...)`` takes one condition for all draws or one per draw. The encoded
conditions travel as columns after each row (``ColumnsBeside``), so the engine trains and maps a
conditional model exactly as any other.
"""

from __future__ import annotations

import numpy as np

from ..engine.sources import ColumnsBeside, DataSource
from ..exceptions import ConfigError, DataError

#: What ``condition=`` may name: class labels (one-hot) or continuous covariates.
CONDITIONS = ("label", "covariates")


def condition_dim(estimator) -> int:
    """The width C of the encoded conditions (0 for an unconditional model)."""
    if getattr(estimator, "condition", None) is None:
        return 0
    if estimator.condition == "label":
        return len(estimator.classes_)
    return estimator.n_covariates_


def _labels(y, n_rows: int | None, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or (n_rows is not None and len(y) != n_rows):
        raise DataError(
            f"{what} must hold one class label per row ({n_rows} of them); got shape {y.shape}."
        )
    if y.dtype.kind == "f":
        if not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise DataError(f"{what} holds labels that are not whole numbers or strings.")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iuUSO":
        raise DataError(f"{what} must hold class labels (integers or strings); got {y.dtype}.")
    return y.astype(str) if y.dtype.kind in "SO" else y


def _covariates(y, n_rows: int | None, width: int | None, what: str) -> np.ndarray:
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what} must hold numeric covariates.") from None
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or (n_rows is not None and len(y) != n_rows):
        raise DataError(
            f"{what} must hold one row of covariates per row of X ({n_rows} of them); "
            f"got shape {y.shape}."
        )
    if width is not None and y.shape[1] != width:
        raise DataError(f"{what} has {y.shape[1]} covariates; the model was fitted with {width}.")
    if not np.isfinite(y).all():
        raise DataError(f"{what} holds NaN or infinite covariates.")
    return y.astype(np.float32)


def fit_conditions(estimator, y, n_rows: int) -> np.ndarray:
    """Learn the encoding of ``fit``'s conditions and return them encoded, (n_rows, C)."""
    if y is None:
        raise DataError(
            f"condition={estimator.condition!r} needs the conditions of the rows: fit(X, y)."
        )
    if estimator.condition == "label":
        estimator.classes_ = np.unique(_labels(y, n_rows, "y"))
    else:
        estimator.n_covariates_ = _covariates(y, n_rows, None, "y").shape[1]
    return encode_conditions(estimator, y, n_rows)


def encode_conditions(estimator, y, n_rows: int | None, what: str = "y") -> np.ndarray:
    """Conditions as the model's float32 columns: one-hot classes, or the covariates."""
    if y is None:
        raise DataError(
            f"This model was fitted with condition={estimator.condition!r}; give the "
            f"conditions of the rows as {what}."
        )
    if estimator.condition == "covariates":
        return _covariates(y, n_rows, estimator.n_covariates_, what)
    labels = _labels(y, n_rows, what)
    classes = estimator.classes_
    if labels.dtype.kind != classes.dtype.kind and not (
        labels.dtype.kind in "iu" and classes.dtype.kind in "iu"
    ):
        raise DataError(
            f"{what} holds labels of another kind than fit's classes {_shown(classes)}."
        )
    index = np.searchsorted(classes, labels)
    index = np.clip(index, 0, len(classes) - 1)
    unseen = classes[index] != labels
    if unseen.any():
        raise DataError(
            f"{what} holds the class {labels[unseen][0].item()!r}, which fit did not see; its "
            f"classes are {_shown(classes)}."
        )
    return np.eye(len(classes), dtype=np.float32)[index]


def sample_conditions(estimator, condition, n_samples: int) -> np.ndarray | None:
    """``sample``'s ``condition`` (one for all draws, or one per draw) encoded, or None for an
    unconditional model, which takes none."""
    if estimator.condition is None:
        if condition is not None:
            raise ConfigError("This model was fitted without a condition; sample takes none.")
        return None
    if condition is None:
        raise ConfigError(
            f"This model was fitted with condition={estimator.condition!r}; give "
            "sample(..., condition=...) the condition to generate for."
        )
    one = np.ndim(condition) == (0 if estimator.condition == "label" else 1)
    if one:
        return np.repeat(encode_conditions(estimator, [condition], 1, "condition"), n_samples, 0)
    return encode_conditions(estimator, condition, n_samples, "condition")


def with_conditions(estimator, source: DataSource, y) -> DataSource:
    """``source`` with its rows' encoded conditions beside them (itself when unconditional)."""
    if estimator.condition is None:
        return source
    return ColumnsBeside(source, encode_conditions(estimator, y, len(source)))


def conditions_config(estimator) -> dict | None:
    """What the saved config.json records of the encoding."""
    condition = getattr(estimator, "condition", None)
    if condition == "label":
        return {"classes": estimator.classes_.tolist()}
    if condition == "covariates":
        return {"covariates": int(estimator.n_covariates_)}
    return None


def restore_conditions(estimator, saved) -> None:
    """Take back ``conditions_config``'s record; raise ConfigError if it does not fit."""
    if getattr(estimator, "condition", None) is None:
        if saved is not None:
            raise ConfigError("it records conditions for a model without condition")
        return
    if estimator.condition == "label":
        classes = saved.get("classes") if isinstance(saved, dict) else None
        if not isinstance(classes, list) or not classes:
            raise ConfigError("it lacks the classes of its condition")
        estimator.classes_ = np.asarray(classes)
        if estimator.classes_.dtype.kind not in "iuU":
            raise ConfigError("its classes must be integers or strings")
    else:
        width = saved.get("covariates") if isinstance(saved, dict) else None
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ConfigError("it lacks the number of covariates of its condition")
        estimator.n_covariates_ = width


def _shown(classes: np.ndarray) -> str:
    shown = ", ".join(repr(c.item()) for c in classes[:10])
    return shown + (", ..." if len(classes) > 10 else "")
