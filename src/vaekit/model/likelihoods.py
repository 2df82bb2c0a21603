"""The registry of decoder likelihoods p(x|z): a new likelihood is one class and one line here."""

from __future__ import annotations

import inspect

from ..exceptions import ConfigError
from .counts import NegativeBinomial, Poisson, ZeroInflatedNegativeBinomial
from .distributions import Bernoulli, ContinuousBernoulli, Gaussian, Likelihood

LIKELIHOODS: dict[str, type[Likelihood]] = {
    cls.name: cls
    for cls in (
        Bernoulli,
        ContinuousBernoulli,
        Gaussian,
        Poisson,
        NegativeBinomial,
        ZeroInflatedNegativeBinomial,
    )
}


def likelihood_class(name: str) -> type[Likelihood]:
    """The likelihood registered under ``name``."""
    if name not in LIKELIHOODS:
        raise ConfigError(f"Unknown likelihood {name!r}; choose one of {', '.join(LIKELIHOODS)}.")
    return LIKELIHOODS[name]


def make_likelihood(name: str, n_features: int, **options) -> Likelihood:
    """Build a likelihood from its registered name; options it does not take are ignored."""
    cls = likelihood_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    return cls(n_features, **{k: v for k, v in options.items() if k in accepted})
