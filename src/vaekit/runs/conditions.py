"""What ``vaekit train --condition`` conditions a run on: the data's labels, or columns of a
table taken out of its features as covariates.

A run records its condition in run.json (``data.condition``), and every command that reads
rows for it gets the conditions of those rows the same way (``split_conditions``).
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError, DataError

LABEL = "label"


def condition_params(condition: str | None) -> dict:
    """The estimator parameters a ``--condition`` sets."""
    if condition is None:
        return {}
    return {"condition": "label" if condition == LABEL else "covariates"}


def condition_columns(condition: str | None) -> list[str]:
    """The column names of a ``--condition COLUMN[,COLUMN...]``; none for label or None."""
    if condition is None or condition == LABEL:
        return []
    columns = [name.strip() for name in condition.split(",")]
    if not all(columns) or len(set(columns)) != len(columns):
        raise ConfigError(
            f"--condition takes 'label' or distinct column names separated by commas; got "
            f"{condition!r}."
        )
    return columns


def split_conditions(
    condition: str | None,
    X: np.ndarray,
    y: np.ndarray | None,
    feature_names: tuple[str, ...] | list[str] | None,
    name: str,
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...] | None]:
    """(rows, their conditions, the remaining feature names) for a run's ``--condition``.

    Parameters
    ----------
    condition : str or None
        ``"label"``, comma-separated column names, or None.
    X : ndarray
        The rows with every column of the data.
    y : ndarray or None
        Their labels, as the data name them.
    feature_names : sequence of str or None
        The data's column names (a CSV header).
    name : str
        The data's name, for the error messages.

    Returns
    -------
    X : ndarray
        The rows without the condition's columns.
    conditions : ndarray or None
        The labels (``label``) or the columns' values, (n, C); None without a condition.
    feature_names : tuple of str or None
        The names of the columns left in X.
    """
    if condition is None:
        return X, None, None if feature_names is None else tuple(feature_names)
    if condition == LABEL:
        if y is None:
            raise DataError(
                f"--condition label needs labelled data, and {name} has no labels (a table "
                "needs a column named label, labels, target, class or y)."
            )
        return X, y, None if feature_names is None else tuple(feature_names)
    columns = condition_columns(condition)
    names = list(feature_names or ())
    missing = [c for c in columns if c not in names]
    if missing:
        have = f"its columns are {', '.join(names)}" if names else "its columns have no names"
        raise DataError(
            f"--condition names the column {missing[0]!r}, but {name} has none; {have}."
        )
    index = [names.index(c) for c in columns]
    if len(index) == X.shape[1]:
        raise DataError(f"--condition takes every column of {name}; leave some as features.")
    keep = [j for j in range(X.shape[1]) if j not in index]
    X = np.asarray(X)
    return X[:, keep], X[:, index], tuple(names[j] for j in keep)
