"""Priors p(z) over the latent space, in a registry.

A prior gives ``log_prob(z)`` (nats, summed over latent units) and ``sample``. Its KL to the
encoder's diagonal Gaussian q(z|x) is in closed form when ``kl_per_unit`` returns one (a prior
that factorises over units with a known form), and otherwise a Monte-Carlo estimate from the
same draws of z that the reconstruction term uses: log q(z|x) - log p(z). Every bound, the
importance-sampled log p(x), free bits, the KL per unit and ``sample`` go through the prior.
"""

from __future__ import annotations

import torch
from torch import nn

from ..exceptions import ConfigError
from .distributions import DiagonalGaussian, standard_normal_log_prob


class Prior(nn.Module):
    """p(z) over ``latent_dim`` units; a subclass gives ``log_prob`` and ``sample``."""

    name: str = ""
    closed_form_kl: bool = False  # whether kl_per_unit gives the KL to q in closed form

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = int(latent_dim)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), summed over the last dimension."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws of z, shape (n, latent_dim), on the prior's device."""
        raise NotImplementedError

    def kl_per_unit(self, q: DiagonalGaussian) -> torch.Tensor | None:
        """KL(q || p) of each latent unit in closed form, shape (N, L); None when there is none."""
        return None

    def kl(self, q: DiagonalGaussian, z: torch.Tensor) -> torch.Tensor:
        """KL(q || p) of each example, shape (N,): closed form, or the mean over the K draws
        ``z`` of shape (K, N, L) of log q(z|x) - log p(z) (unbiased for the KL)."""
        units = self.kl_per_unit(q)
        if units is not None:
            return units.sum(-1)
        return (q.log_prob(z) - self.log_prob(z)).mean(0)


class StandardNormal(Prior):
    """N(0, I): the plain VAE's prior, with its KL to q in closed form."""

    name = "standard_normal"
    closed_form_kl = True

    def log_prob(self, z):
        return standard_normal_log_prob(z)

    def sample(self, n, generator=None):
        device = generator.device if generator is not None else None
        return torch.randn((n, self.latent_dim), generator=generator, device=device)

    def kl_per_unit(self, q):
        return q.kl_per_unit()


PRIORS: dict[str, type[Prior]] = {cls.name: cls for cls in (StandardNormal,)}


def make_prior(name: str, latent_dim: int) -> Prior:
    """Build a prior from its registered name."""
    if name not in PRIORS:
        raise ConfigError(f"Unknown prior {name!r}; choose one of {', '.join(PRIORS)}.")
    return PRIORS[name](latent_dim)
