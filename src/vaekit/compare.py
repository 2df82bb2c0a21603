"""Compare a VAE, an autoencoder, PCA and factor analysis at one latent size on held-out data.

Each model reports, where it defines one, the held-out log-likelihood in nats per example (the
VAE by importance sampling; PCA as probabilistic PCA and factor analysis in closed form), the
squared reconstruction error, and the accuracy of a k-nearest-neighbour classifier on its
embeddings when labels are known.

The comparison is fair in three ways.

- **The same input.** Binarisation is part of the data: with a threshold every model reads
  ``X > threshold`` (vaekit's models through their ``binarize`` parameter, PCA and factor
  analysis through a ``Binarizer`` in front of them); with ``binarize="dynamic"`` vaekit's
  models draw the training rows afresh every batch and PCA and factor analysis fit one seeded
  draw (``BernoulliDraw``, the draw vaekit's models read at inference). Standardisation is part
  of a model: with ``standardize=True`` vaekit's models centre and scale every feature by the
  training rows' mean and standard deviation, and PCA and factor analysis get the same from a
  ``StandardScaler`` in front of them (``baseline``), so k-NN reads embeddings of one input.
- **Densities of one space.** Every log-likelihood is a density of the data as given (after
  any binarisation): a standardised model adds the scaling's log-Jacobian, ``-sum(log
  scale)``, to the density it fits in standardised units, as vaekit's models do themselves.
- **Errors in one unit.** Squared errors are summed over the features of an example and
  averaged over examples, in the data's own units (binary rows when binarised): reconstructions
  of a standardised model are mapped back before they are compared. That unit is the fairest
  one common to all models: it is the unit the reader's data come in and that
  ``vaekit.evaluate`` reports, and it does not depend on a scaler that one model fits and
  another may not. (Standardised units would weigh every feature alike, but by statistics of
  the training rows that a model without a scaler never sees.)
"""

from __future__ import annotations

import csv
import io
import os
import time
from numbers import Real
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Binarizer, StandardScaler

from .estimators import LatentEstimator
from .estimators.base import seed_from
from .estimators.registry import MODELS
from .exceptions import ConfigError
from .io import write_atomic

COLUMNS = ("model", "log_likelihood", "squared_error", "knn_accuracy", "fit_seconds")
_KINDS = {"binary": "values 0 or 1", "unit": "values in [0, 1]", "real": "real values"}


class BernoulliDraw(TransformerMixin, BaseEstimator):
    """Binarise intensities in [0, 1] by one Bernoulli draw seeded by ``random_state``.

    The draw is the one vaekit's models make of their input at inference with
    ``binarize="dynamic"`` (the same seed, the same stream), so a model behind it reads the rows
    they read; binary rows pass unchanged.

    Parameters
    ----------
    random_state : int, RandomState or None, default=0
        Seeds the draw; every call of ``transform`` draws from the start of the same stream.
    """

    def __init__(self, random_state=0):
        self.random_state = random_state

    def fit(self, X, y=None) -> BernoulliDraw:
        """Nothing to learn; returns self."""
        return self

    def transform(self, X) -> np.ndarray:
        """The rows of X as 0/1 draws with probabilities X: (n_samples, n_features)."""
        X = np.asarray(X, dtype=np.float64)
        rng = np.random.default_rng(seed_from(self.random_state))
        return (rng.random(X.shape) < X).astype(np.float64)


_BINARIZERS = (Binarizer, BernoulliDraw)


def baseline(
    estimator, *, binarize: float | str | None = None, standardize: bool = False, random_state=0
):
    """``estimator`` behind the preprocessing that vaekit's models with these parameters apply.

    Parameters
    ----------
    estimator : scikit-learn estimator
        PCA or factor analysis (anything with ``fit``, ``transform`` and ``score``).
    binarize : float, "dynamic" or None, default=None
        A threshold puts a ``Binarizer`` first, "dynamic" a ``BernoulliDraw``.
    standardize : bool, default=False
        Put a ``StandardScaler`` (mean and standard deviation of the training rows) in front.
    random_state : int, default=0
        Seeds the ``BernoulliDraw``.

    Returns
    -------
    estimator or sklearn.pipeline.Pipeline
        ``estimator`` itself when there is nothing to do, else a pipeline ending in it.
    """
    steps = []
    if isinstance(binarize, Real):
        steps.append(("binarize", Binarizer(threshold=float(binarize))))
    elif binarize == "dynamic":
        steps.append(("binarize", BernoulliDraw(random_state)))
    if standardize:
        steps.append(("standardize", StandardScaler()))
    return Pipeline([*steps, ("model", estimator)]) if steps else estimator


def _accepted(cls, params: dict) -> dict:
    names = cls().get_params()
    return {k: v for k, v in params.items() if k in names}


def default_models(n_components: int, random_state: int = 0, **params) -> dict:
    """Every registered model and PCA and factor analysis at one latent size.

    Parameters
    ----------
    n_components : int
        The latent size of every model.
    random_state : int, default=0
        Seeds every model.
    **params
        Go to each registered model that takes them; its ``binarize`` and ``standardize`` also
        set the preprocessing in front of PCA and factor analysis (``baseline``).

    Returns
    -------
    dict
        {name: unfitted model}.
    """
    common = {"random_state": random_state, "verbose": False} | params
    prepare = {
        "binarize": params.get("binarize"),
        "standardize": params.get("standardize", False),
        "random_state": random_state,
    }
    return {
        **{
            cls.__name__: cls(n_components, **_accepted(cls, common))
            for cls in MODELS.values()
            # models of x through a code: not a classifier, nor a model whose decoder is also
            # given the row's entries (its reconstruction would copy them)
            if not cls.needs_labels and cls.decodes_codes
        },
        "PCA": baseline(PCA(n_components, random_state=random_state), **prepare),
        "FactorAnalysis": baseline(
            FactorAnalysis(n_components, random_state=random_state), **prepare
        ),
    }


def check_models(n_components: int, random_state: int = 0, **params) -> None:
    """Check the registered models' parameters as ``default_models`` would set them; raises
    ConfigError for the first bad one."""
    for model in default_models(n_components, random_state, **params).values():
        if isinstance(model, LatentEstimator):
            model._check_params()


def _parts(model) -> tuple[list, StandardScaler | None, object]:
    """A baseline's (binarising steps, scaler or None, the model itself)."""
    if not isinstance(model, Pipeline):
        return [], None, model
    *steps, core = (step for _, step in model.steps)
    if any(not isinstance(s, (*_BINARIZERS, StandardScaler)) for s in steps):
        raise ConfigError(
            "compare reads pipelines of a Binarizer or BernoulliDraw, a StandardScaler and a "
            "model (see vaekit.compare.baseline)."
        )
    scaler = next((s for s in steps if isinstance(s, StandardScaler)), None)
    return [s for s in steps if s is not scaler], scaler, core


def _data_units(model, X: np.ndarray) -> np.ndarray:
    """The rows of X as the model describes them: binarised if it binarises, not scaled."""
    if isinstance(model, LatentEstimator):
        if isinstance(model.binarize, Real):
            return (X > model.binarize).astype(np.float64)
        return BernoulliDraw(model.random_state).transform(X) if model.binarize else X
    for step in _parts(model)[0]:
        X = step.transform(X)
    return X


def _reconstruct(model, X: np.ndarray) -> np.ndarray:
    """Reconstructions of the rows of X in the data's units (``_data_units``)."""
    if isinstance(model, LatentEstimator):
        return model.reconstruct(X)  # decoded back into the data's units
    _, scaler, core = _parts(model)
    X = _data_units(model, X)
    X = X if scaler is None else scaler.transform(X)
    if isinstance(core, FactorAnalysis):  # E[x | posterior mean of z]
        recon = core.transform(X) @ core.components_ + core.mean_
    else:
        recon = core.inverse_transform(core.transform(X))
    return recon if scaler is None else scaler.inverse_transform(recon)


def _note(model) -> str | None:
    """What a reader must know to read a model's numbers, if anything."""
    core = _parts(model)[2]
    noise = getattr(core, "noise_variance_", None)
    if isinstance(core, FactorAnalysis) and noise is not None and noise.min() < 1e-8:
        return (
            f"{int((noise < 1e-8).sum())} features are constant in the training data, so factor "
            "analysis gives them almost zero noise variance and any held-out variation there "
            "costs it a huge log-likelihood."
        )
    return None


def _log_likelihood(model, X: np.ndarray, n_samples: int) -> float | None:
    """Mean log-density of the rows of X in the data's units, nats per example."""
    if isinstance(model, LatentEstimator):
        return model.score(X, n_samples=n_samples) if model.density_model else None
    scaler = _parts(model)[1]
    log_jacobian = 0.0 if scaler is None else -float(np.log(scaler.scale_).sum())
    return float(model.score(X)) + log_jacobian


def compare(
    X_train,
    X_test,
    y_train=None,
    y_test=None,
    *,
    n_components: int = 2,
    models: dict | None = None,
    n_samples: int = 1000,
    n_neighbors: int = 5,
    random_state: int = 0,
) -> list[dict]:
    """Fit each model on X_train and measure it on X_test.

    Parameters
    ----------
    X_train, X_test : array-like of shape (n, n_features)
        Training and held-out rows, as every model receives them.
    y_train, y_test : array-like of shape (n,), optional
        Labels for the k-NN accuracy on the embeddings.
    n_components : int, default=2
        The latent size of ``default_models`` when ``models`` is None.
    models : dict, optional
        {name: unfitted model}; default: ``default_models(n_components, random_state)``.
    n_samples : int, default=1000
        Importance samples for vaekit's log-likelihoods.
    n_neighbors : int, default=5
        k of the k-NN classifier.
    random_state : int, default=0
        Seeds the default models.

    Returns
    -------
    list of dict
        One per model, with the COLUMNS and a ``note`` (a sentence, or None) that qualifies its
        numbers. ``squared_error`` is summed over features in the data's units, averaged over
        examples; ``log_likelihood`` is a density of those units.
    """
    X_train, X_test = np.asarray(X_train, dtype=np.float64), np.asarray(X_test, dtype=np.float64)
    models = default_models(n_components, random_state) if models is None else models
    rows = []
    for name, template in models.items():
        model = clone(template)
        start = time.perf_counter()
        model.fit(X_train)
        seconds = time.perf_counter() - start
        error = _reconstruct(model, X_test) - _data_units(model, X_test)
        accuracy = None
        if y_train is not None and y_test is not None:
            knn = KNeighborsClassifier(n_neighbors).fit(model.transform(X_train), y_train)
            accuracy = float(knn.score(model.transform(X_test), y_test))
        rows.append(
            {
                "model": name,
                "log_likelihood": _log_likelihood(model, X_test, n_samples),
                "squared_error": float((error**2).sum(1).mean()),
                "knn_accuracy": accuracy,
                "fit_seconds": seconds,
                "note": _note(model),
            }
        )
    return rows


def _binarized(binarize: str | float | None) -> str | None:
    """How a binarize option turned the data into binary rows, or None."""
    if binarize in (None, "none"):
        return None
    if binarize == "fixed":
        return "binarised by one seeded Bernoulli draw of its intensities"
    if binarize == "dynamic":
        return (
            "binarised by Bernoulli draws of its intensities (the held-out rows once; the "
            "training rows afresh every batch for vaekit's models, once for PCA and factor "
            "analysis)"
        )
    return f"binarised as x > {float(binarize):g}"


def describe_preprocessing(
    data: str,
    kind: str,
    n_features: int,
    *,
    binarize: str | float | None = "none",
    standardize: bool = False,
) -> str:
    """The sentences under a comparison table: what every model saw, and the units of its numbers.

    Parameters
    ----------
    data : str
        The data's name.
    kind : {"binary", "unit", "real"}
        The kind of its values, as loaded.
    n_features : int
        Features per example.
    binarize : str, float or None, default="none"
        The binarize option: none, fixed, dynamic or a threshold.
    standardize : bool, default=False
        Whether the models standardised every feature.

    Returns
    -------
    str
    """
    how = _binarized(binarize)
    binary = how is not None or kind == "binary"
    seen = f"{data}, {how}" if how else f"{data} ({_KINDS[kind]})"
    scaling = (
        "standardised per feature (mean and standard deviation of the training rows; a constant "
        "feature keeps scale 1)"
        if standardize
        else "not standardised"
    )
    if binary:
        density = (
            "vaekit's models give log-probabilities of the binary rows, PCA and factor analysis "
            "Gaussian log-densities, which do not compare with them"
        )
    elif standardize:
        density = "densities of the original units (the scaling's log-Jacobian added)"
    else:
        density = "densities of those values"
    units = "against the binary rows" if binary else "in the original units"
    return (
        f"Every model saw: {seen}, {scaling}. Log-likelihoods are in nats per example: "
        f"{density}. Squared errors are summed over the {n_features} features of an example, "
        f"{units}; k-NN reads every model's embeddings of that same input."
    )


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def to_markdown(rows: list[dict], preprocessing: str | None = None) -> str:
    """A markdown table of ``compare``'s rows.

    Parameters
    ----------
    rows : list of dict
        ``compare``'s rows.
    preprocessing : str, optional
        A line under the table (``describe_preprocessing``); every model's note follows it.

    Returns
    -------
    str
    """
    header = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join(_cell(r[c]) for c in COLUMNS) + " |\n" for r in rows)
    caption = f"\n{preprocessing}\n" if preprocessing else ""
    notes = "".join(f"\n{r['model']}: {r['note']}\n" for r in rows if r.get("note"))
    return header + body + caption + notes


def write_csv(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write ``compare``'s rows as CSV (empty cells where a model defines no number)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    path = Path(path)
    write_atomic(path, buffer.getvalue().encode())
    return path
