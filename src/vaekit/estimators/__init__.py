"""The scikit-learn-style front: ``VAE`` and ``Autoencoder`` estimators, and ``load``."""

from .autoencoder import Autoencoder
from .base import LatentEstimator
from .loading import ESTIMATORS, load
from .vae import VAE

__all__ = ["ESTIMATORS", "VAE", "Autoencoder", "LatentEstimator", "load"]
