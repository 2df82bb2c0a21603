"""Held-out evaluation of a fitted estimator: the numbers that say how good a model is.

Densities are in nats per example (summed over features, averaged over examples), with the
standard error of the mean over examples; bits per dimension = -log p(x) / (D ln 2).
"""

from __future__ import annotations

import numpy as np

from .estimators import LatentEstimator
from .estimators.labels import partial_labels
from .estimators.vae import ACTIVE_UNIT_THRESHOLD


def _mean_and_sem(values: np.ndarray) -> tuple[float, float]:
    sem = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(sem)


def _accuracy(estimator: LatentEstimator, X: np.ndarray, y) -> dict:
    """The classifier's accuracy on the rows whose label is known (not -1), and their count."""
    labelled = partial_labels(y, len(X), require_one=False)[1]
    if not labelled.any():
        return {}
    accuracy = estimator.score(X[labelled], np.asarray(y)[labelled])
    return {"accuracy": float(accuracy), "n_labelled": int(labelled.sum())}


def evaluate(
    estimator: LatentEstimator,
    X,
    y=None,
    *,
    n_samples: int = 1000,
    elbo_samples: int = 10,
    precision: str = "fp64",
) -> dict:
    """Evaluate a fitted VAE or autoencoder on the rows of X.

    For a VAE: the importance-sampled log-likelihood with K = ``n_samples`` and its standard
    error, the ELBO (its expectation over q estimated with ``elbo_samples`` draws), the
    reconstruction term -E_q[log p(x|z)], the KL in total and per latent unit (per unit only for
    a prior with a closed-form KL; a mixture prior's is estimated from the ELBO's draws), the
    active units (per stochastic layer too, with ``upper_layers``),
    bits per dimension. For both models: the squared reconstruction error (over the observed
    entries, for a model of missing values) and the reconstruction log-likelihood at the code,
    -log p(x | decoder(code)). A conditional model takes the rows' conditions as ``y``, and its
    densities are of x given them. A classifier (the semi-supervised VAE) takes the rows' true
    labels as ``y`` (-1 where unknown): its accuracy is over the labelled rows, and its
    densities are of x alone (log p(x) sums over the classes). ``precision`` is
    ``score_samples``'s: where the networks of the importance-sampled log-likelihood run.

    Parameters
    ----------
    estimator : VAE, Autoencoder or SemiSupervisedVAE
        A fitted model.
    X : array-like of shape (n, n_features)
        Held-out rows.
    y : array-like, optional
        A conditional model's conditions of the rows, or a classifier's true labels (-1 where
        unknown); ignored by other models.
    n_samples : int, default=1000
        K, the importance samples per row of the log-likelihood.
    elbo_samples : int, default=10
        Draws of z per row for the ELBO (and a KL without a closed form).
    precision : {"fp64", "fp32"}, default="fp64"
        The dtype the networks of the importance-sampled log-likelihood run in.

    Returns
    -------
    dict
        ``n_examples`` and ``squared_error`` (summed over features, averaged over rows) for
        every model; ``reconstruction_nll_at_code`` (nats) for every model but the M1+M2
        stack; for a VAE also ``log_likelihood`` and ``log_likelihood_sem``,
        ``importance_samples``, ``elbo`` and ``elbo_sem``, ``reconstruction_nll``, ``kl``
        (nats per row), ``kl_per_unit`` (a list, for a prior with a closed-form KL per unit),
        ``active_units`` (and ``active_units_per_layer`` with ``upper_layers``),
        ``posterior_mean_variance`` (a list) and ``bits_per_dim``; for a classifier given
        labels, ``accuracy`` and ``n_labelled``.
    """
    X = np.asarray(X)
    result: dict = {"n_examples": len(X)}
    if estimator.needs_labels:
        if y is not None:
            result |= _accuracy(estimator, X, y)
        y = None
    recon = estimator.reconstruct(X, y)
    result["squared_error"] = float(np.nansum((recon - X) ** 2, axis=1).mean())  # observed
    if estimator.needs_labels and not estimator.density_model:
        return result  # the M1+M2 stack classifies M1's codes and has no density of x
    result["reconstruction_nll_at_code"] = float(-estimator.reconstruction_log_prob(X, y).mean())
    if not estimator.density_model:
        return result
    log_px = estimator.score_samples(X, n_samples, y=y, precision=precision)
    log_px, log_px_sem = _mean_and_sem(log_px)
    elbo, elbo_sem = _mean_and_sem(estimator.elbo(X, elbo_samples, y=y))
    activity = estimator.layer_activity(X, y)
    spread = estimator.transform(X, y).var(0)
    if estimator.module_.prior.closed_form_kl and not estimator.needs_labels:
        kl_units = estimator.kl_per_unit(X, y).mean(0)
        kl, per_unit = float(kl_units.sum()), {"kl_per_unit": kl_units.tolist()}
    else:  # a mixture, latent layers above, or M2's (y, z): no split over units
        kl, per_unit = float(estimator.kl_divergence(X, elbo_samples, y=y).mean()), {}
    if len(activity) > 1:
        per_unit["active_units_per_layer"] = [
            int((layer > ACTIVE_UNIT_THRESHOLD).sum()) for layer in activity
        ]
    result |= {
        "log_likelihood": log_px,
        "log_likelihood_sem": log_px_sem,
        "importance_samples": n_samples,
        "elbo": elbo,
        "elbo_sem": elbo_sem,
        "reconstruction_nll": float(-elbo - kl),
        "kl": kl,
        **per_unit,
        "active_units": int((activity[0] > ACTIVE_UNIT_THRESHOLD).sum()),
        "posterior_mean_variance": spread.tolist(),
        "bits_per_dim": float(-log_px / (X.shape[1] * np.log(2))),
    }
    return result
