"""Held-out numbers for a trained VAE: the ELBO and the importance-sampled log-likelihood.

Work is vectorised over examples and chunked over both examples and samples, so memory stays
bounded for any K. The same K standard-normal draws serve every example of a call (common
random numbers): an example's estimate then does not depend on which others share its batch.
"""

from __future__ import annotations

import math

import torch

from .model import VAEModule


def _batches(X: torch.Tensor, batch_size: int):
    for start in range(0, X.shape[0], batch_size):
        yield X[start : start + batch_size]


def shared_noise(n_samples: int, latent_dim: int, generator: torch.Generator) -> torch.Tensor:
    """Standard-normal draws of shape (K, 1, L), shared by the examples of one evaluation."""
    return torch.randn((n_samples, 1, latent_dim), generator=generator)


@torch.no_grad()
def log_likelihood(
    module: VAEModule,
    X: torch.Tensor,
    n_samples: int,
    generator: torch.Generator,
    batch_size: int = 256,
    sample_chunk: int = 128,
) -> torch.Tensor:
    """Per-example log p(x) ~ logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)], in nats.

    For K = 1 its expectation is the ELBO; it rises towards log p(x) as K grows.
    """
    eps = shared_noise(n_samples, module.latent_dim, generator).to(X.dtype)
    out = []
    for x in _batches(X, batch_size):
        q = module.encode(x)
        total = torch.full((x.shape[0],), -torch.inf, dtype=X.dtype)
        for chunk in eps.split(sample_chunk):
            total = torch.logaddexp(total, torch.logsumexp(module.log_weights(x, q, chunk), 0))
        out.append(total - math.log(n_samples))
    return torch.cat(out)


@torch.no_grad()
def elbo(
    module: VAEModule,
    X: torch.Tensor,
    n_samples: int,
    generator: torch.Generator,
    batch_size: int = 256,
) -> torch.Tensor:
    """Per-example ELBO: E_q[log p(x|z)] over K samples minus the analytic KL, in nats."""
    eps = shared_noise(n_samples, module.latent_dim, generator).to(X.dtype)
    out = []
    for x in _batches(X, batch_size):
        q = module.encode(x)
        log_px = module.likelihood.log_prob(x, module.decode(q.rsample(eps)))
        out.append(log_px.mean(0) - q.kl_standard_normal())
    return torch.cat(out)
