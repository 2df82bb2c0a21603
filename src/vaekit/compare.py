"""Compare a VAE, an autoencoder, PCA and factor analysis at one latent size on held-out data.

Each model reports, where it defines one, the held-out log-likelihood in nats per example (the
VAE by importance sampling; PCA as probabilistic PCA and factor analysis in closed form), the
squared reconstruction error, and the accuracy of a k-nearest-neighbour classifier on its
embeddings when labels are known.
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.neighbors import KNeighborsClassifier

from .estimators import LatentEstimator
from .estimators.registry import MODELS
from .io import write_atomic

COLUMNS = ("model", "log_likelihood", "squared_error", "knn_accuracy", "fit_seconds")


def _accepted(cls, params: dict) -> dict:
    names = cls().get_params()
    return {k: v for k, v in params.items() if k in names}


def default_models(n_components: int, random_state: int = 0, **params) -> dict:
    """Every registered model and PCA and factor analysis at one latent size; ``params`` go to
    each registered model that takes them."""
    common = {"random_state": random_state, "verbose": False} | params
    return {
        **{cls.__name__: cls(n_components, **_accepted(cls, common)) for cls in MODELS.values()},
        "PCA": PCA(n_components, random_state=random_state),
        "FactorAnalysis": FactorAnalysis(n_components, random_state=random_state),
    }


def check_models(n_components: int, random_state: int = 0, **params) -> None:
    """Check the registered models' parameters as ``default_models`` would set them; raises
    ConfigError for the first bad one."""
    for model in default_models(n_components, random_state, **params).values():
        if isinstance(model, LatentEstimator):
            model._check_params()


def _reconstruct(model, X: np.ndarray) -> np.ndarray:
    if isinstance(model, FactorAnalysis):  # E[x | posterior mean of z]
        return model.transform(X) @ model.components_ + model.mean_
    if hasattr(model, "reconstruct"):
        return model.reconstruct(X)
    return model.inverse_transform(model.transform(X))


def _note(model) -> str | None:
    """What a reader must know to read a model's numbers, if anything."""
    noise = getattr(model, "noise_variance_", None)
    if isinstance(model, FactorAnalysis) and noise is not None and noise.min() < 1e-8:
        return (
            f"{int((noise < 1e-8).sum())} features are constant in the training data, so factor "
            "analysis gives them almost zero noise variance and any held-out variation there "
            "costs it a huge log-likelihood."
        )
    return None


def _log_likelihood(model, X: np.ndarray, n_samples: int) -> float | None:
    if isinstance(model, LatentEstimator):
        return model.score(X, n_samples=n_samples) if model.density_model else None
    return float(model.score(X))


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
    """Fit each model on X_train and measure it on X_test: one dict per model, with the
    COLUMNS and a ``note`` (a sentence, or None) that qualifies its numbers."""
    X_train, X_test = np.asarray(X_train, dtype=np.float64), np.asarray(X_test, dtype=np.float64)
    models = default_models(n_components, random_state) if models is None else models
    rows = []
    for name, template in models.items():
        model = clone(template)
        start = time.perf_counter()
        model.fit(X_train)
        seconds = time.perf_counter() - start
        recon = _reconstruct(model, X_test)
        accuracy = None
        if y_train is not None and y_test is not None:
            knn = KNeighborsClassifier(n_neighbors).fit(model.transform(X_train), y_train)
            accuracy = float(knn.score(model.transform(X_test), y_test))
        rows.append(
            {
                "model": name,
                "log_likelihood": _log_likelihood(model, X_test, n_samples),
                "squared_error": float(((recon - X_test) ** 2).sum(1).mean()),
                "knn_accuracy": accuracy,
                "fit_seconds": seconds,
                "note": _note(model),
            }
        )
    return rows


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def to_markdown(rows: list[dict]) -> str:
    """A markdown table of ``compare``'s rows."""
    header = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join(_cell(r[c]) for c in COLUMNS) + " |\n" for r in rows)
    notes = "".join(f"\n{r['model']}: {r['note']}\n" for r in rows if r.get("note"))
    return header + body + notes


def write_csv(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write ``compare``'s rows as CSV (empty cells where a model defines no number)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    path = Path(path)
    write_atomic(path, buffer.getvalue().encode())
    return path
