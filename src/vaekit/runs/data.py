"""What a run reads: its held-out split, the parameters that suit the data, and the checks that
refuse, in the shell's words, a likelihood or a binarisation the data cannot take."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from ..data import Dataset
from ..engine.sources import DataSource, SubsetSource
from ..exceptions import ConfigError, DataError

DATA_BINARIZE = ("none", "dynamic", "fixed")


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
