"""Whether data given to a trained run look like the data it was trained on.

A model of pixels in [0, 1] asked to score raw pixels 0..16 calls every row an outlier, and
its log-likelihood of them means nothing; the numbers come out all the same. A run keeps the
per-feature range of its held-out rows (``feature_range``), and the commands that take other
data warn (``warn_if_unlike``) when a good part of the features lie far outside it.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..exceptions import DataShiftWarning

#: Warn when at least this fraction of the features lies far outside the reference range.
SHIFTED_FRACTION = 0.1


def feature_range(X: np.ndarray) -> list[list[float]]:
    """The per-feature minimum and maximum of the rows of X, as two lists (JSON-ready)."""
    X = np.asarray(X, dtype=np.float64)
    return [X.min(axis=0).tolist(), X.max(axis=0).tolist()]


def excess(X: np.ndarray, reference: list[list[float]]) -> np.ndarray:
    """How far X's values leave the reference range, per feature, in widths of that range.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
        The rows to check.
    reference : list of two lists of float
        ``feature_range`` of the data the model knows.

    Returns
    -------
    ndarray of float, shape (n_features,)
        The larger of (reference minimum - X's minimum) and (X's maximum - reference maximum),
        divided by the reference range's width (a tenth of the widest for a feature that is
        constant there); 0 or less inside the range, above 1 far outside it.
    """
    low, high = (np.asarray(r, dtype=np.float64) for r in reference)
    width = high - low
    slack = np.where(width > 0, width, 0.1 * max(float(width.max()), 1e-12))
    X = np.asarray(X, dtype=np.float64)
    return np.maximum(low - X.min(axis=0), X.max(axis=0) - high) / slack


def warn_if_unlike(X: np.ndarray, reference: list[list[float]] | None, name: str) -> None:
    """Warn (``DataShiftWarning``) when X is grossly unlike the data of ``reference``.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
        The rows given to the model.
    reference : list of two lists of float or None
        ``feature_range`` of the run's held-out rows; None (a run written before vaekit kept
        it) checks nothing.
    name : str
        How the user named the data, for the message.
    """
    if reference is None or len(X) == 0:
        return
    beyond = excess(X, reference)
    outside = beyond > 1
    if outside.mean() < SHIFTED_FRACTION:
        return
    j = int(np.argmax(beyond))
    X = np.asarray(X)
    warnings.warn(
        f"{name} is unlike the data the model was trained on: {int(outside.sum())} of "
        f"{outside.size} features lie far outside the range of its held-out rows (feature "
        f"{j + 1} spans {X[:, j].min():.4g} to {X[:, j].max():.4g} here, "
        f"{reference[0][j]:.4g} to {reference[1][j]:.4g} there); scale the data as the "
        "training data were, or the scores and metrics say little.",
        DataShiftWarning,
        stacklevel=2,
    )
