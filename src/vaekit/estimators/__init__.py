"""The scikit-learn-style front: ``VAE``, ``Autoencoder``, ``AnomalyDetector``, ``VAEImputer``
and ``load``."""

from .anomaly import AnomalyDetector
from .autoencoder import Autoencoder
from .base import LatentEstimator
from .imputer import VAEImputer
from .loading import load
from .registry import MODELS
from .vae import VAE

__all__ = [
    "MODELS",
    "VAE",
    "AnomalyDetector",
    "Autoencoder",
    "LatentEstimator",
    "VAEImputer",
    "load",
]
