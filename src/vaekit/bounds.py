"""Held-out numbers for a trained VAE: the ELBO and the importance-sampled log-likelihood.

Work is vectorised over the examples of a batch and chunked over the K samples, so memory
stays bounded for any K. Each row's noise is a function of its values and the caller's seed
(``row_noise``): draws are independent across rows, and a row's estimate does not depend on
which other rows share its call or batch.
"""

from __future__ import annotations

import math

import torch

from .model.modules import VAEModule
from .row_noise import RowNoise

#: Samples per step of the importance-sampling loop: bounds memory (the draws do not depend
#: on it).
SAMPLE_CHUNK = 128
#: The dtypes the networks may run in for the importance-sampled log p(x), by name.
PRECISIONS = {"fp64": torch.float64, "fp32": torch.float32}


def _batches(X: torch.Tensor, batch_size: int):
    for start in range(0, X.shape[0], batch_size):
        yield X[start : start + batch_size]


#: Rows per step of the importance-sampling loop: 16 rows of 128 samples (2,048 decoder rows a
#: step) were as fast as any of 8 to 64 rows of 4 to 128 samples on the zoo's 50-D MNIST model
#: (within 10%, one thread), and faster than 256 rows. A row's draws are its own, so the
#: numbers do not change.
LOG_LIKELIHOOD_BATCH = 16


@torch.no_grad()
def log_likelihood(
    module: VAEModule,
    X: torch.Tensor,
    n_samples: int,
    seed: int,
    batch_size: int = LOG_LIKELIHOOD_BATCH,
) -> torch.Tensor:
    """Per-example log p(x) ~ logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)], in nats.

    For K = 1 its expectation is the ELBO; it rises towards log p(x) as K grows. The log-weights
    are in the module's dtype (float32 for ``score_samples(precision="fp32")``); their
    log-sum-exp over K is always in float64, and so is the result.
    """
    out = []
    for x in _batches(X, batch_size):
        q = module.encode(x)
        noise = RowNoise(x, seed, module.noise_dim)
        total = torch.full((x.shape[0],), -torch.inf, dtype=torch.float64, device=X.device)
        for start in range(0, n_samples, SAMPLE_CHUNK):
            eps = noise.draw(min(SAMPLE_CHUNK, n_samples - start))
            log_w = module.log_weights(x, q, eps).to(torch.float64)
            total = torch.logaddexp(total, torch.logsumexp(log_w, 0))
        out.append(total - math.log(n_samples))
    return torch.cat(out)


@torch.no_grad()
def elbo(
    module: VAEModule,
    X: torch.Tensor,
    n_samples: int,
    seed: int,
    batch_size: int = 256,
) -> torch.Tensor:
    """Per-example ELBO: E_q[log p(x|z)] over K samples minus the KL to the prior (in closed
    form where it has one, else estimated from the same K draws), in nats."""
    out = []
    for batch in _batches(X, batch_size):
        q, z, noise = _draws(module, batch, n_samples, seed)
        x, condition = module.split(batch)
        log_px = module.data_log_prob(x, module.decode(z, condition))
        out.append(log_px.mean(0) - module.prior.kl(q, z, noise, condition))
    return torch.cat(out)


@torch.no_grad()
def kl(module: VAEModule, X: torch.Tensor, n_samples: int, seed: int, batch_size: int = 256):
    """Per-example KL(q(z|x) || p(z)) in nats: in closed form where the prior has one, else the
    mean of log q(z|x) - log p(z) over the K draws ``elbo`` takes (so ELBO = E_q log p(x|z) -
    this, exactly). With latent layers above z it is the KL of the joint posterior over all
    layers to the joint prior."""
    out = []
    for batch in _batches(X, batch_size):
        q, z, noise = _draws(module, batch, n_samples, seed)
        out.append(module.prior.kl(q, z, noise, module.split(batch)[1]))
    return torch.cat(out)


def _draws(module: VAEModule, batch: torch.Tensor, n_samples: int, seed: int):
    """q(z|x) of the batch, K draws of z from it and the rest of the draws (for the prior)."""
    q = module.encode(batch)
    eps = RowNoise(batch, seed, module.noise_dim).draw(n_samples)
    return q, q.rsample(eps[..., : module.latent_dim]), eps[..., module.latent_dim :]
