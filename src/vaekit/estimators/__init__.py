"""The scikit-learn-style front: ``VAE``, ``Autoencoder``, ``AnomalyDetector``, ``VAEImputer``,
``ArbitraryConditionalVAE``, ``SemiSupervisedVAE``, ``keep_labels`` and ``load``."""

from .anomaly import AnomalyDetector
from .arbitrary_conditional import ArbitraryConditionalVAE
from .autoencoder import Autoencoder
from .base import LatentEstimator
from .imputer import VAEImputer
from .labels import keep_labels
from .loading import load
from .registry import MODELS
from .semi_supervised import SemiSupervisedVAE
from .vae import VAE

__all__ = [
    "MODELS",
    "VAE",
    "AnomalyDetector",
    "ArbitraryConditionalVAE",
    "Autoencoder",
    "LatentEstimator",
    "SemiSupervisedVAE",
    "VAEImputer",
    "keep_labels",
    "load",
]
