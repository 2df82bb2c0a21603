"""The one registry of models: a name for the shell -> the estimator class.

What a model can do is declared on its class (``density_model``, ``can_sample``,
``regularizer``, ``needs_labels``, ``decodes_codes``); pictures, evaluation, the CLI,
``compare`` and loading ask the class.
A new model is one new class and one line here.
"""

from __future__ import annotations

from ..exceptions import ConfigError
from .arbitrary_conditional import ArbitraryConditionalVAE
from .autoencoder import Autoencoder
from .base import LatentEstimator
from .semi_supervised import SemiSupervisedVAE
from .vae import VAE

MODELS: dict[str, type[LatentEstimator]] = {
    "vae": VAE,
    "autoencoder": Autoencoder,
    "semi_supervised": SemiSupervisedVAE,
    "arbitrary_conditional": ArbitraryConditionalVAE,
}


def model_class(name: str) -> type[LatentEstimator]:
    """The estimator class registered under ``name`` (as the CLI's ``--model`` spells it)."""
    if name not in MODELS:
        raise ConfigError(f"Unknown model {name!r}; choose one of {', '.join(MODELS)}.")
    return MODELS[name]


def class_by_estimator_name(name: str) -> type[LatentEstimator] | None:
    """The registered class whose ``__name__`` is ``name`` (as a saved config.json spells it)."""
    return next((cls for cls in MODELS.values() if cls.__name__ == name), None)


def model_name(estimator: LatentEstimator | type[LatentEstimator]) -> str:
    """The registry name of an estimator or estimator class."""
    cls = estimator if isinstance(estimator, type) else type(estimator)
    return next(name for name, registered in MODELS.items() if issubclass(cls, registered))
