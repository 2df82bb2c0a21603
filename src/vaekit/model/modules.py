"""The torch modules: a VAE and a deterministic autoencoder over a decoder likelihood.

Each module's ``forward(x, generator)`` returns the loss terms of a batch as a dict of scalar
tensors (batch means, in nats per example): ``loss`` is minimised, the others are reported
under their own names. In training mode it is the training objective; in eval mode the
validation measure (a VAE's one-sample ELBO with the full KL; an autoencoder's clean-input
loss). All noise comes from ``generator``, so one call holds the whole objective and a wrapper
(DistributedDataParallel, ``torch.compile``) sees it whole.

A conditional model (``condition_dim`` C > 0) reads rows of D + C values: the data x, then its
condition c (a one-hot class or covariates). The encoder sees the whole row, the decoder z and
c side by side, and the prior is given c (a conditional prior uses it, the others ignore it).

A model with ``missing`` takes NaN as a missing value (MIWAE, Mattei & Frellsen 2019): the
encoder reads it as 0 (the feature's mean after standardisation), and log p(x|z), hence the ELBO
and the importance-weighted bounds, runs over the observed entries only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..exceptions import ConfigError
from .distributions import DiagonalGaussian, Likelihood
from .priors import Prior

LOG_VAR_MIN, LOG_VAR_MAX = -30.0, 20.0


def log_mean_exp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log(mean(exp(values))) along ``dim``, computed stably."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


def same_dtype(output: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A network's output in its input's dtype (float32 again after an autocast network)."""
    return output if output.dtype == like.dtype else output.to(like.dtype)


class LatentVariableModel(nn.Module):
    """What a VAE and an autoencoder share: an encoder, a decoder and a likelihood p(x|z).

    Network outputs come back in the dtype of their input, so under autocast only the
    networks run in reduced precision: every log-density is computed in float32 or better.
    With ``dynamic_binarization`` a training batch of intensities in [0, 1] is binarised by a
    fresh Bernoulli draw at every call (the data columns only, never the condition).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        latent_dim: int,
        dynamic_binarization: bool = False,
        condition_dim: int = 0,
        missing: bool = False,
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.latent_dim = int(latent_dim)
        self.dynamic_binarization = dynamic_binarization
        self.condition_dim = int(condition_dim)
        self.missing = missing

    def split(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x, c) of rows that hold the data and then the condition; c is None without one."""
        if not self.condition_dim:
            return batch, None
        return batch[..., : -self.condition_dim], batch[..., -self.condition_dim :]

    def encoder_input(self, batch: torch.Tensor) -> torch.Tensor:
        """What the encoder reads: the likelihood's view of the data columns (log(1 + x) for
        counts), then the condition as it is; the batch itself when neither changes it."""
        if not (self.missing or self.likelihood.transforms_input):
            return batch
        x, condition = self.split(batch)
        x = self.likelihood.encoder_input(torch.nan_to_num(x, nan=0.0) if self.missing else x)
        return x if condition is None else torch.cat([x, condition], dim=-1)

    def data_log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x|z) of each row: over its observed (not NaN) entries for a ``missing`` model."""
        if not self.missing:
            return self.likelihood.log_prob(x, params)
        observed = ~torch.isnan(x)
        return self.likelihood.log_prob(torch.nan_to_num(x, nan=0.0), params, observed)

    def decode(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Likelihood parameters for latent codes z of shape (..., L), beside each row's
        condition (N, C) for a conditional model."""
        if condition is not None:
            z = torch.cat([z, condition.expand(*z.shape[:-1], condition.shape[-1])], dim=-1)
        if z.dim() == 2:
            return same_dtype(self.decoder(z), z)
        flat = same_dtype(self.decoder(z.reshape(-1, z.shape[-1])), z)
        return flat.reshape(*z.shape[:-1], -1)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """The deterministic code of each row: the posterior mean for a VAE."""
        raise NotImplementedError

    def reconstruction_log_prob(self, batch: torch.Tensor) -> torch.Tensor:
        """log p(x | decoder(code of x)) of each row."""
        x, condition = self.split(batch)
        return self.data_log_prob(x, self.decode(self.embed(batch), condition))

    def observed(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The batch as the model sees it: a fresh binarisation with ``dynamic_binarization``."""
        if not self.dynamic_binarization:
            return batch
        x, condition = self.split(batch)
        drawn = torch.bernoulli(torch.nan_to_num(x, nan=0.0), generator=generator)
        x = torch.where(torch.isnan(x), x, drawn) if self.missing else drawn
        return x if condition is None else torch.cat([x, condition], dim=-1)


class VAEModule(LatentVariableModel):
    """Prior p(z), diagonal Gaussian posterior q(z|x), decoder likelihood p(x|z).

    The training objective is the negative ELBO with ``n_samples`` draws of z (the KL weighted
    by ``kl_weight``, each unit's batch-mean KL floored at ``free_bits`` nats), or the negative
    importance-weighted bound (``objective="iwae"``). ``kl_weight`` is an attribute so that a
    schedule (a KL warm-up) can move it between steps.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        prior: Prior,
        latent_dim: int,
        *,
        n_samples: int = 1,
        objective: str = "elbo",
        kl_weight: float = 1.0,
        free_bits: float = 0.0,
        dynamic_binarization: bool = False,
        condition_dim: int = 0,
        missing: bool = False,
    ):
        super().__init__(
            encoder, decoder, likelihood, latent_dim, dynamic_binarization, condition_dim, missing
        )
        if free_bits > 0 and not prior.closed_form_kl:
            raise ConfigError(
                f"free_bits needs a prior whose KL has a closed form per unit; the {prior.name} "
                "prior has none."
            )
        self.prior = prior
        prior.attach(self)
        self.n_samples = n_samples
        self.objective = objective
        self.kl_weight = kl_weight
        self.free_bits = free_bits

    @property
    def noise_dim(self) -> int:
        """Standard-normal draws per sample: the L of z, then what the prior's estimate reads."""
        return self.latent_dim + self.prior.noise_dim

    def encode(self, batch: torch.Tensor) -> DiagonalGaussian:
        """q(z|x). Log-variances are clamped to [-30, 20]: far beyond any useful posterior,
        and exp() of them stays finite, so one wild encoder output cannot poison the loss."""
        return self.posterior(same_dtype(self.encoder(self.encoder_input(batch)), batch))

    @staticmethod
    def posterior(outputs: torch.Tensor) -> DiagonalGaussian:
        """q(z|x) from the encoder's outputs, means then log-variances (clamped as ``encode``
        says)."""
        mean, log_var = outputs.chunk(2, dim=-1)
        return DiagonalGaussian(mean, log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX))

    def embed(self, batch):
        return self.encode(batch).mean

    def kl_per_unit(
        self, q: DiagonalGaussian, condition: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """The prior's closed-form KL per unit (None without one); a condition is passed only
        to a model that has one, so a user's prior may leave it out of its methods."""
        if condition is None:
            return self.prior.kl_per_unit(q)
        return self.prior.kl_per_unit(q, condition)

    def log_weights(
        self, batch: torch.Tensor, q: DiagonalGaussian, eps: torch.Tensor
    ) -> torch.Tensor:
        """Importance log-weights log p(x|z_k) + log p(z_k) - log q(z_k|x), shape (K, N).

        ``q`` is ``encode(batch)``; ``eps`` holds standard-normal draws of shape (K, N,
        noise_dim), or (K, 1, noise_dim) to share them across examples. With latent layers
        above z, log p(z_k) is the log of its unbiased estimate from the rest of the draws.
        """
        x, condition = self.split(batch)
        z = q.rsample(eps[..., : self.latent_dim])
        log_prior = self.prior.log_prob_estimate(z, eps[..., self.latent_dim :], condition)
        return self.data_log_prob(x, self.decode(z, condition)) + log_prior - q.log_prob(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The batch's loss terms: ``loss``, ``reconstruction`` (-E_q log p(x|z)) and ``kl``."""
        batch = self.observed(x, generator)
        x, condition = self.split(batch)
        n_samples = self.n_samples if self.training else 1
        eps = torch.randn(
            (n_samples, x.shape[0], self.noise_dim),
            generator=generator,
            dtype=x.dtype,
            device=x.device,
        )
        q = self.encode(batch)
        z, noise = q.rsample(eps[..., : self.latent_dim]), eps[..., self.latent_dim :]
        log_px = self.data_log_prob(x, self.decode(z, condition))  # (K, N)
        kl_units = self.kl_per_unit(q, condition)  # (N, L), or None without a closed form
        iwae = self.training and self.objective == "iwae"
        if kl_units is None or iwae:
            log_ratio = self.prior.log_prob_estimate(z, noise, condition) - q.log_prob(z)
        kl_rows = kl_units.sum(-1) if kl_units is not None else -log_ratio.mean(0)
        reconstruction = log_px.mean()
        kl = kl_rows.mean()
        if not self.training:
            loss = -reconstruction + kl
        elif iwae:
            loss = -log_mean_exp(log_px + log_ratio, dim=0).mean()
        else:
            penalty = kl
            if self.free_bits > 0:
                penalty = kl_units.mean(0).clamp(min=self.free_bits).sum()
            loss = -reconstruction + self.kl_weight * penalty
        return {"loss": loss, "reconstruction": -reconstruction, "kl": kl}


class AutoencoderModule(LatentVariableModel):
    """A deterministic code z = f(x); the loss is -log p(x | g(z)) of the same likelihoods.

    With a fixed-sigma Gaussian this is half the squared error plus a constant; with a
    Bernoulli it is the cross-entropy. ``sparsity`` adds an L1 penalty on the code;
    ``denoising`` ("gaussian" noise of standard deviation ``noise_level``, or "masking" each
    feature to zero with probability ``noise_level``) corrupts the input in training while the
    target stays the clean row.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        latent_dim: int,
        *,
        denoising: str | None = None,
        noise_level: float = 0.1,
        sparsity: float = 0.0,
        dynamic_binarization: bool = False,
    ):
        super().__init__(encoder, decoder, likelihood, latent_dim, dynamic_binarization)
        self.denoising = denoising
        self.noise_level = noise_level
        self.sparsity = sparsity

    def embed(self, x):
        return same_dtype(self.encoder(self.encoder_input(x)), x)

    def corrupt(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The encoder's input in training: x with the denoising noise, or x itself."""
        if self.denoising == "gaussian":
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            return x + self.noise_level * noise
        if self.denoising == "masking":
            uniform = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            return x * (uniform >= self.noise_level)
        return x

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The batch's loss terms: ``loss``, ``reconstruction`` (-log p(x|g(f(x)))), ``code_l1``."""
        x = self.observed(x, generator)
        z = self.embed(self.corrupt(x, generator) if self.training else x)
        reconstruction = -self.data_log_prob(x, self.decode(z)).mean()
        penalty = z.abs().sum(-1).mean()
        loss = reconstruction + self.sparsity * penalty if self.sparsity > 0 else reconstruction
        return {"loss": loss, "reconstruction": reconstruction, "code_l1": penalty}
