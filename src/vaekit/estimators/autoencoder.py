"""The classical (deterministic) autoencoder estimator, with denoising and sparse options."""

from __future__ import annotations

from numbers import Real

import torch
from torch import nn

from ..model import AutoencoderModule, LossTerms
from .base import LatentEstimator, require


class Autoencoder(LatentEstimator):
    """Classical autoencoder: a deterministic code trained on -log p(x | decoder(code)).

    Takes the same network and likelihood parameters as :class:`VAE` (``sigma`` defaults to
    ``"fixed"``, so the Gaussian loss is half the squared error plus a constant), and:

    denoising : {None, "gaussian", "masking"}, default=None
        Corrupt the input during training: add N(0, noise_level^2) noise, or set each feature
        to zero with probability ``noise_level``; the target stays the clean row.
    noise_level : float, default=0.1
        Noise standard deviation, or masking probability.
    sparsity : float, default=0.0
        Weight of an L1 penalty on the code (the mean over rows of sum |z|).
    """

    _module_class = AutoencoderModule

    def __init__(
        self,
        n_components: int = 2,
        *,
        architecture: str = "mlp",
        hidden_sizes: tuple[int, ...] = (256, 128),
        activation: str = "relu",
        image_shape: tuple[int, ...] | None = None,
        channels: tuple[int, ...] = (32, 64),
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
        likelihood: str = "gaussian",
        sigma: str = "fixed",
        sigma_value: float = 1.0,
        sigma_floor: float = 1e-3,
        binarize: float | str | None = None,
        standardize: bool = False,
        denoising: str | None = None,
        noise_level: float = 0.1,
        sparsity: float = 0.0,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        learning_rate_schedule: str = "constant",
        max_epochs: int = 1000,
        validation_fraction: float = 0.1,
        patience: int | None = 20,
        clip_grad_norm: float | None = None,
        precision: str = "fp32",
        random_state=None,
        verbose: bool = True,
    ):
        self.n_components = n_components
        self.architecture = architecture
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.image_shape = image_shape
        self.channels = channels
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.sigma = sigma
        self.sigma_value = sigma_value
        self.sigma_floor = sigma_floor
        self.binarize = binarize
        self.standardize = standardize
        self.denoising = denoising
        self.noise_level = noise_level
        self.sparsity = sparsity
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        require(
            self.denoising in (None, "gaussian", "masking"),
            "denoising must be None, 'gaussian' or 'masking'.",
        )
        require(
            isinstance(self.noise_level, Real) and self.noise_level >= 0,
            "noise_level must be a number >= 0.",
        )
        require(
            self.denoising != "masking" or self.noise_level < 1,
            "noise_level is the masking probability and must be below 1.",
        )
        require(
            isinstance(self.sparsity, Real) and self.sparsity >= 0,
            "sparsity must be a number >= 0.",
        )

    def _corrupt(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
        if self.denoising == "gaussian":
            return x + self.noise_level * torch.randn(x.shape, generator=generator)
        if self.denoising == "masking":
            keep = torch.rand(x.shape, generator=generator) >= self.noise_level
            return x * keep
        return None

    def _train_loss(self, x: torch.Tensor, epoch: int, generator: torch.Generator) -> LossTerms:
        x = self._training_batch(x, generator)
        return self.module_.loss(x, self._corrupt(x, generator), self.sparsity)

    def _validation_loss(self, x: torch.Tensor) -> LossTerms:
        x = self._training_batch(x, torch.Generator().manual_seed(0))
        return self.module_.loss(x, None, self.sparsity)
