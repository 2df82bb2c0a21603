"""Partly labelled targets, in scikit-learn's semi-supervised convention: -1 marks a row whose
label is unknown (as for ``LabelSpreading`` and ``SelfTrainingClassifier``; "-1" in an array of
strings, which cannot hold the integer).

``partial_labels`` reads such a ``y``; ``keep_labels`` makes one from a fully labelled ``y``,
keeping a seeded, class-balanced few (the protocol of Kingma et al. 2014: 100 labels of MNIST,
10 per class).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import column_or_1d

from ..exceptions import DataError
from .conditions import _labels

#: The label of a row whose label is unknown.
UNLABELLED = -1


def partial_labels(y, n_rows: int, require_one: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(the known labels, which rows have one) of a ``y`` with -1 for unknown labels.

    Parameters
    ----------
    y : array-like of shape (n_rows,)
        Class labels (integers or strings), -1 where unknown ("-1" in an array of strings).
    n_rows : int
        The rows of X that ``y`` labels.
    require_one : bool
        Refuse a ``y`` without a labelled row (as ``fit`` must).

    Returns
    -------
    labels : ndarray of shape (n_labelled,)
        The known labels, as integers or strings.
    labelled : ndarray of bool, shape (n_rows,)
        True where the row's label is known.
    """
    if y is None:
        raise DataError(
            "A semi-supervised model requires y to be passed, but the target y is None; give "
            "the rows' labels, -1 where unknown."
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:  # a column: scikit-learn's DataConversionWarning
        y = column_or_1d(y, warn=True)
    if y.ndim != 1 or len(y) != n_rows:
        raise DataError(
            f"y must hold one class label per row ({n_rows} of them), -1 where unknown; got "
            f"shape {y.shape}."
        )
    # A string array cannot hold the integer -1: its unlabelled rows read "-1".
    marker = str(UNLABELLED) if y.dtype.kind in "US" else UNLABELLED
    labelled = np.array([label != marker for label in y], dtype=bool)
    if require_one and not labelled.any():
        raise DataError(
            "y has no labelled row (every label is -1); a semi-supervised model needs at least "
            "one labelled row."
        )
    known = y[labelled]
    if known.size and y.dtype.kind == "f" and type_of_target(known) == "continuous":
        raise DataError(
            "Unknown label type: continuous; y must hold class labels (integers or strings), "
            "-1 where unknown."
        )
    return _labels(known, None, "y"), labelled


def keep_labels(y, n_kept: int, random_state=None) -> np.ndarray:
    """``y`` with all but ``n_kept`` labels replaced by -1: the same number of each class (as
    near as ``n_kept`` allows), drawn by ``random_state``.

    Parameters
    ----------
    y : array-like of shape (n,)
        The full labels.
    n_kept : int
        How many labels to keep; at least the number of classes, at most len(y).
    random_state : int, RandomState or None
        Seeds the draw.

    Returns
    -------
    ndarray of shape (n,), dtype object for string labels
        The labels kept, -1 elsewhere.
    """
    y = np.asarray(y)
    classes, index = np.unique(y, return_inverse=True)
    if not (len(classes) <= n_kept <= len(y)):
        raise DataError(
            f"Keeping {n_kept} labels of {len(y)} rows in {len(classes)} classes needs at least "
            f"one per class and at most one per row."
        )
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))
    per_class = np.full(len(classes), n_kept // len(classes))
    per_class[rng.permutation(len(classes))[: n_kept % len(classes)]] += 1
    kept = []
    for k, n in enumerate(per_class):
        rows = np.flatnonzero(index == k)
        kept.append(rng.choice(rows, size=min(n, len(rows)), replace=False))
    dtype = object if y.dtype.kind in "USO" else np.float64 if y.dtype.kind == "f" else np.int64
    out = np.full(len(y), UNLABELLED, dtype=dtype)
    chosen = np.concatenate(kept)
    out[chosen] = y[chosen]
    return out
