"""Missing values filled in by a VAE trained on the observed entries (MIWAE).

Mattei & Frellsen (2019): with K draws z_k ~ q(z|x_obs) and importance weights w_k proportional
to p(x_obs|z_k) p(z_k) / q(z_k|x_obs), self-normalised over k, the single imputation of a missing
entry is sum_k w_k E[x_mis|z_k], an estimate of E[x_mis|x_obs]; a multiple imputation is a draw
of x_mis from p(x|z_k) with k drawn by the weights (sampling importance resampling), a draw of
p(x_mis|x_obs) as K grows. Each row's noise is its own (seeded by its content and the caller's
seed, as for log p(x)), so a row's imputation does not depend on the other rows of the call.
"""

from __future__ import annotations

import torch

from .bounds import SAMPLE_CHUNK
from .model.modules import VAEModule
from .row_noise import RowNoise

#: Rows per step: K latent draws of each row are kept until its weights are known.
IMPUTE_BATCH = 16


def _weights_and_codes(
    module: VAEModule, batch: torch.Tensor, n_samples: int, noise: RowNoise
) -> tuple[torch.Tensor, torch.Tensor]:
    """The self-normalised importance weights (K, N) of K draws of z per row, and the draws."""
    q = module.encode(batch)
    log_weights, codes = [], []
    for start in range(0, n_samples, SAMPLE_CHUNK):
        eps = noise.draw(min(SAMPLE_CHUNK, n_samples - start))
        codes.append(q.rsample(eps[..., : module.latent_dim]))
        log_weights.append(module.log_weights(batch, q, eps).to(torch.float64))
    return torch.softmax(torch.cat(log_weights), dim=0), torch.cat(codes)


@torch.no_grad()
def impute(
    module: VAEModule, X: torch.Tensor, n_samples: int, seed: int, draw: bool = False
) -> torch.Tensor:
    """The rows of X (model space, NaN where missing) with every missing entry filled in.

    Parameters
    ----------
    module : VAEModule
        A model of missing values (``module.missing``).
    X : torch.Tensor of shape (n, D [+ C])
        Rows, then their conditions for a conditional model.
    n_samples : int
        K, the importance samples per row.
    seed : int
        Seeds every row's draws, with the row's content.
    draw : bool
        A multiple imputation (a draw of p(x_mis|x_obs)) instead of the posterior mean.

    Returns
    -------
    torch.Tensor of shape (n, D)
        The data columns, observed entries unchanged.
    """
    out = []
    for start in range(0, X.shape[0], IMPUTE_BATCH):
        batch = X[start : start + IMPUTE_BATCH]
        x, condition = module.split(batch)
        noise = RowNoise(batch, seed, module.noise_dim)
        weights, codes = _weights_and_codes(module, batch, n_samples, noise)
        if draw:
            filled = torch.stack(
                [
                    _draw_row(module, weights[:, i], codes[:, i], condition, i, noise.generator(i))
                    for i in range(len(batch))
                ]
            ).to(x.device, x.dtype)
        else:
            filled = torch.zeros_like(x, dtype=torch.float64)
            for k in range(0, n_samples, SAMPLE_CHUNK):
                chunk = slice(k, k + SAMPLE_CHUNK)
                means = module.likelihood.mean(module.decode(codes[chunk], condition))
                filled += (weights[chunk, :, None] * means).sum(0)
            filled = filled.to(x.dtype)
        out.append(torch.where(torch.isnan(x), filled, x))
    return torch.cat(out)


def _draw_row(module, weights, codes, condition, row, generator) -> torch.Tensor:
    """One row's draw: k by its weights, then x ~ p(x|z_k), from the row's own generator."""
    k = torch.multinomial(weights.cpu(), 1, generator=generator).to(codes.device)
    c = None if condition is None else condition[row : row + 1]
    params = module.decode(codes[k], c)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    on_device = torch.Generator(params.device).manual_seed(seed)
    return module.likelihood.sample(params, on_device)[0]
