"""What each metric is, in words and units: one table for a run's report and the shell's summary.

The names are those of ``vaekit.evaluate`` (held-out measures) and of a run's training record
(``epochs``, ``training_seconds``). ``METRICS`` lists them in the order a person reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["METRICS", "QUALIFIERS", "Metric", "value_text"]


@dataclass(frozen=True)
class Metric:
    """How one number is named and shown.

    Attributes
    ----------
    words : str
        What it is, in words (the report's row).
    unit : str
        Its unit; empty for a count.
    label : str or None
        The shell summary's short label, with its unit; None when the summary leaves it out.
    held_out : bool
        True for a measure on held-out rows, False for a fact of training.
    sem : str or None
        The name of its standard error, shown after it as ``± SEM``.
    """

    words: str
    unit: str = ""
    label: str | None = None
    held_out: bool = True
    sem: str | None = None


_NATS = "nats per example"

METRICS: dict[str, Metric] = {
    "n_examples": Metric("rows evaluated", "rows", "examples"),
    "log_likelihood": Metric(
        "log-likelihood log p(x), importance-sampled",
        _NATS,
        "log p(x), nats/example",
        sem="log_likelihood_sem",
    ),
    "elbo": Metric("evidence lower bound (ELBO)", _NATS, "ELBO, nats/example", sem="elbo_sem"),
    "reconstruction_nll": Metric("reconstruction term −E_q[log p(x | z)]", _NATS),
    "accuracy": Metric("accuracy of the predicted classes on the labelled rows", "", "accuracy"),
    "n_labelled": Metric("labelled rows the accuracy is over", "rows"),
    "kl": Metric("KL divergence KL(q(z | x) ‖ p(z))", _NATS, "KL(q||p), nats/example"),
    "kl_per_unit": Metric("KL of each latent unit", _NATS),
    "active_units": Metric(
        "active latent units (whose posterior mean varies across rows by more than 1% of the "
        "prior's variance)",
        "",
        "active latent units",
    ),
    "active_units_per_layer": Metric(
        "active units of each stochastic layer, bottom up", "", "active units per layer"
    ),
    "posterior_mean_variance": Metric("variance of each unit's posterior mean across rows"),
    "bits_per_dim": Metric("bits per dimension, −log₂ p(x) / D", "bits", "bits/dim (-log p(x))"),
    "squared_error": Metric(
        "squared reconstruction error ‖x − x̂‖², summed over features",
        "data units² per example",
        "squared error/example",
    ),
    "reconstruction_nll_at_code": Metric(
        "reconstruction −log p(x | z) at z = the posterior mean (an autoencoder's code)",
        _NATS,
        "-log p(x|code), nats",
    ),
    "epochs": Metric("epochs trained", "epochs", held_out=False),
    "training_seconds": Metric("training time", "seconds", held_out=False),
}

#: Numbers shown inside another metric's text (standard errors, K), never on a line of their own.
QUALIFIERS = frozenset({"importance_samples"} | {m.sem for m in METRICS.values() if m.sem})


def value_text(name: str, metrics: Mapping, number: Callable[[object], str] = str) -> str:
    """``metrics[name]`` as it is shown, with what qualifies it.

    Parameters
    ----------
    name : str
        The metric to show; ``metrics`` must hold it.
    metrics : Mapping
        Every number of the evaluation (``vaekit.evaluate``'s dict), for the qualifiers.
    number : callable, default str
        Formats one number (a list is shown as its numbers joined by commas).

    Returns
    -------
    str
        The number, then ``± SEM`` where there is a standard error, ``(K=100)`` after the
        importance-sampled log-likelihood, ``of L`` after the count of active units.
    """
    value = metrics[name]
    text = ", ".join(map(number, value)) if isinstance(value, list) else number(value)
    sem = METRICS[name].sem if name in METRICS else None
    if sem is not None and sem in metrics:
        text += f" ± {number(metrics[sem])}"
    if name == "log_likelihood" and "importance_samples" in metrics:
        text += f" (K={metrics['importance_samples']})"
    units = metrics.get("posterior_mean_variance", metrics.get("kl_per_unit"))
    if name == "active_units" and units is not None:
        text += f" of {len(units)}"
    return text
