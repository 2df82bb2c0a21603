"""The torch modules: a VAE and a deterministic autoencoder over a decoder likelihood.

Both return their training objective as ``LossTerms`` (means over the batch, in nats per
example), so one training loop serves both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .distributions import DiagonalGaussian, Likelihood, standard_normal_log_prob

LOG_VAR_MIN, LOG_VAR_MAX = -30.0, 20.0


@dataclass
class LossTerms:
    """A batch's objective: ``loss`` is minimised; the others are reported (batch means)."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    regularizer: torch.Tensor


def log_mean_exp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log(mean(exp(values))) along ``dim``, computed stably."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


class LatentVariableModel(nn.Module):
    """What a VAE and an autoencoder share: an encoder, a decoder and a likelihood p(x|z)."""

    regularizer_name: str = ""  # what LossTerms.regularizer measures, for the history

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: Likelihood, latent_dim):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.latent_dim = int(latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters for latent codes z of shape (..., L)."""
        if z.dim() == 2:
            return self.decoder(z)
        return self.decoder(z.reshape(-1, z.shape[-1])).reshape(*z.shape[:-1], -1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic code of x: the posterior mean for a VAE."""
        raise NotImplementedError


class VAEModule(LatentVariableModel):
    """Gaussian prior N(0, I), diagonal Gaussian posterior q(z|x), decoder likelihood p(x|z)."""

    regularizer_name = "kl"

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x). Log-variances are clamped to [-30, 20]: far beyond any useful posterior,
        and exp() of them stays finite, so one wild encoder output cannot poison the loss."""
        mean, log_var = self.encoder(x).chunk(2, dim=-1)
        return DiagonalGaussian(mean, log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX))

    def embed(self, x):
        return self.encode(x).mean

    def log_weights(self, x: torch.Tensor, q: DiagonalGaussian, eps: torch.Tensor) -> torch.Tensor:
        """Importance log-weights log p(x|z_k) + log p(z_k) - log q(z_k|x), shape (K, N).

        ``q`` is ``encode(x)``; ``eps`` holds standard-normal draws of shape (K, N, L), or
        (K, 1, L) to share them across examples.
        """
        z = q.rsample(eps)
        return (
            self.likelihood.log_prob(x, self.decode(z))
            + standard_normal_log_prob(z)
            - q.log_prob(z)
        )

    def loss(
        self,
        x: torch.Tensor,
        eps: torch.Tensor,
        kl_weight: float = 1.0,
        free_bits: float = 0.0,
        objective: str = "elbo",
    ) -> LossTerms:
        """The negative ELBO (analytic KL, K = eps.shape[0] samples) or negative IWAE bound.

        ``kl_weight`` scales the KL term (beta, warm-up); ``free_bits`` is a floor in nats on
        each latent unit's batch-mean KL (Kingma et al. 2016). Both apply to the ELBO only.
        """
        q = self.encode(x)
        z = q.rsample(eps)
        log_px = self.likelihood.log_prob(x, self.decode(z))  # (K, N)
        kl_units = q.kl_per_unit()  # (N, L)
        reconstruction = log_px.mean()
        kl = kl_units.sum(-1).mean()
        if objective == "iwae":
            log_w = log_px + standard_normal_log_prob(z) - q.log_prob(z)
            loss = -log_mean_exp(log_w, dim=0).mean()
        else:
            penalty = kl_units.mean(0).clamp(min=free_bits).sum() if free_bits > 0 else kl
            loss = -reconstruction + kl_weight * penalty
        return LossTerms(loss, -reconstruction, kl)


class AutoencoderModule(LatentVariableModel):
    """A deterministic code z = f(x); the loss is -log p(x | g(z)) of the same likelihoods.

    With a fixed-sigma Gaussian this is half the squared error plus a constant; with a
    Bernoulli it is the cross-entropy. ``sparsity`` adds an L1 penalty on the code.
    """

    regularizer_name = "code_l1"

    def embed(self, x):
        return self.encoder(x)

    def loss(
        self, x: torch.Tensor, x_input: torch.Tensor | None = None, sparsity: float = 0.0
    ) -> LossTerms:
        """Reconstruct ``x`` from ``x_input`` (a corrupted copy for a denoising autoencoder)."""
        z = self.encoder(x if x_input is None else x_input)
        reconstruction = -self.likelihood.log_prob(x, self.decoder(z)).mean()
        penalty = z.abs().sum(-1).mean()
        loss = reconstruction + sparsity * penalty if sparsity > 0 else reconstruction
        return LossTerms(loss, reconstruction, penalty)
