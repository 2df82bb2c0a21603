"""vaekit: variational autoencoders with exact likelihoods, a scikit-learn API and safe saving."""

__version__ = "0.1.0"

from .estimators import (
    VAE,
    AnomalyDetector,
    ArbitraryConditionalVAE,
    Autoencoder,
    SemiSupervisedVAE,
    VAEImputer,
    keep_labels,
    load,
)
from .evaluation import evaluate
from .exceptions import ConfigError, DataError, ModelFileError, TrainingError, VaekitError
from .export import export_onnx
from .zoo import load_pretrained, pretrained_models

__all__ = [
    "VAE",
    "AnomalyDetector",
    "ArbitraryConditionalVAE",
    "Autoencoder",
    "ConfigError",
    "DataError",
    "ModelFileError",
    "SemiSupervisedVAE",
    "TrainingError",
    "VAEImputer",
    "VaekitError",
    "evaluate",
    "export_onnx",
    "keep_labels",
    "load",
    "load_pretrained",
    "pretrained_models",
]
