"""The scikit-learn-style front: ``VAE``, ``Autoencoder``, ``AnomalyDetector``, and ``load``."""

from .anomaly import AnomalyDetector
from .autoencoder import Autoencoder
from .base import LatentEstimator
from .loading import ESTIMATORS, load
from .vae import VAE

__all__ = ["ESTIMATORS", "VAE", "AnomalyDetector", "Autoencoder", "LatentEstimator", "load"]
