"""The classical (deterministic) autoencoder estimator, with denoising and sparse options."""

from __future__ import annotations

from torch import nn

from ..model.modules import AutoencoderModule
from .base import LatentEstimator, require
from .params import document


class Autoencoder(LatentEstimator):
    """Classical autoencoder: a deterministic code trained on -log p(x | decoder(code)).

    It takes the network and likelihood parameters of :class:`VAE`; ``sigma`` defaults to
    ``"fixed"``, so the Gaussian loss is half the squared error plus a constant.

    Attributes
    ----------
    module_ : AutoencoderModule
        The trained torch module.
    history_ : list of dict
        Per-epoch loss, reconstruction, code_l1 and their validation counterparts
        (nats/example).
    n_epochs_ : int
        Epochs trained.
    stopped_by_ : {"early_stopping", "max_epochs", "max_time"}
        Why training stopped.
    best_epoch_ : int
        The epoch whose weights were kept.
    n_features_in_ : int
        Number of features seen in ``fit``.
    """

    density_model = False  # no score_samples: not a density model
    can_sample = False
    regularizer = "code_l1"

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
        max_epochs: int | None = 1000,
        max_time: float | str | None = None,
        validation_fraction: float = 0.1,
        patience: int | None = 20,
        clip_grad_norm: float | None = None,
        ema_decay: float | None = None,
        precision: str = "fp32",
        device: str = "auto",
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
        self.max_time = max_time
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.ema_decay = ema_decay
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        require(
            self.denoising != "masking" or self.noise_level < 1,
            "noise_level is the masking probability and must be below 1.",
        )

    def _make_module(self, encoder, decoder, likelihood, n_features) -> AutoencoderModule:
        return AutoencoderModule(
            encoder,
            decoder,
            likelihood,
            self.n_components,
            denoising=self.denoising,
            noise_level=float(self.noise_level),
            sparsity=float(self.sparsity),
            dynamic_binarization=self.binarize == "dynamic",
        )


document(Autoencoder)
