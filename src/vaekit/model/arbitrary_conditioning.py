"""A VAE with arbitrary conditioning (VAEAC, Ivanov, Figurnov & Vetrov 2019): it models
p(x_T | x_C) for any split of a row into entries C it is given and entries T it fills in.

The prior p(z | x_C) is a network of the given entries and of which entries they are (the
condition c = (x_C with 0 elsewhere, the mask of C)); the proposal q(z | x_T, c) reads the row's
observed entries; the decoder p(x | z, c) sees z beside c, so it can copy what is given and
draw what is not. Training maximises the ELBO of log p(x_T | x_C) over fresh splits of every
batch: each observed entry of a row joins C with one probability per row, drawn uniformly in
[KEEP_MIN, 1), and the others form T (data missing from the start are in neither). In use, C is
every observed entry, so the decoder's mean under z ~ p(z | x_obs) imputes the missing ones.

The module reads rows of D values (NaN where missing) and expands them to D + 2D values, the
targets x_T (NaN outside T) and then c, as the conditional VAE's rows are laid out: its encoder,
decoder, likelihood and closed-form KL are the conditional VAE's with c as the condition.
"""

from __future__ import annotations

import torch

from ..row_noise import RowNoise
from .distributions import Likelihood
from .modules import VAEModule
from .priors import ConditionalGaussian

#: The smallest share of a row's observed entries that a training split gives the model.
KEEP_MIN = 0.5
#: Rows, and draws of z per row, that ``impute`` decodes at once.
IMPUTE_ROWS, IMPUTE_CHUNK = 64, 32


class ArbitraryConditioningModule(VAEModule):
    """VAEAC over rows of ``n_features`` values with NaN where missing; see the module's text.

    Rows of D values are conditioned on all their observed entries (``split``); ``observed``
    draws a training split of them. ``impute`` fills the missing entries in.
    """

    def __init__(
        self,
        encoder: torch.nn.Module,
        decoder: torch.nn.Module,
        likelihood: Likelihood,
        prior: ConditionalGaussian,
        latent_dim: int,
        n_features: int,
    ):
        super().__init__(
            encoder,
            decoder,
            likelihood,
            prior,
            latent_dim,
            condition_dim=2 * n_features,
            missing=True,
        )
        self.n_features = int(n_features)

    def given(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The condition c of rows x given the entries ``keep`` (bool, NaN never kept): the
        kept values with 0 elsewhere, then the mask."""
        return torch.cat([torch.where(keep, x, 0.0), keep.to(x.dtype)], dim=-1)

    def split(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, c): expanded rows' targets and condition, or for rows of D values the rows and
        the condition of all their observed entries."""
        if batch.shape[-1] == self.n_features:
            return batch, self.given(torch.nan_to_num(batch), ~torch.isnan(batch))
        return batch[..., : self.n_features], batch[..., self.n_features :]

    def observed(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Rows of D values expanded to (x_T, c) by a fresh split of their observed entries
        (validation too draws one, from its own generator)."""
        observed = ~torch.isnan(batch)
        share = torch.rand((batch.shape[0], 1), generator=generator, device=batch.device)
        share = KEEP_MIN + (1 - KEEP_MIN) * share
        draws = torch.rand(batch.shape, generator=generator, device=batch.device)
        keep = observed & (draws < share)
        targets = torch.where(observed & ~keep, batch, torch.nan)
        return torch.cat([targets, self.given(torch.nan_to_num(batch), keep)], dim=-1)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """The prior mean of z given each row's observed entries."""
        return self.prior.given(self.split(batch)[1]).mean

    @torch.no_grad()
    def impute(self, batch: torch.Tensor, n_samples: int, seed: int, draw: bool) -> torch.Tensor:
        """Rows of D values with their NaN filled in: the mean of the decoder means over K
        draws of z ~ p(z | x_obs) (an estimate of E[x_mis | x_obs]), or with ``draw`` a draw of
        x ~ p(x | z, x_obs) for one z. A row's draws are its own (seeded by its content and
        ``seed``), so its imputation does not depend on the other rows of the batch."""
        if len(batch) > IMPUTE_ROWS:  # K draws of a convolutional decoder's maps per row
            return torch.cat(
                [
                    self.impute(batch[start : start + IMPUTE_ROWS], n_samples, seed, draw)
                    for start in range(0, len(batch), IMPUTE_ROWS)
                ]
            )
        x, condition = self.split(batch)
        p = self.prior.given(condition)
        noise = RowNoise(batch, seed, self.latent_dim)
        if draw:
            params = self.decode(p.rsample(noise.draw(1)), condition)[0]
            filled = torch.stack(
                [
                    self.likelihood.sample(params[i : i + 1], _on_device(noise, i, x.device))[0]
                    for i in range(len(batch))
                ]
            ).to(x.dtype)
        else:
            total = torch.zeros_like(x, dtype=torch.float64)
            for start in range(0, n_samples, IMPUTE_CHUNK):
                z = p.rsample(noise.draw(min(IMPUTE_CHUNK, n_samples - start)))
                total += self.likelihood.mean(self.decode(z, condition)).to(torch.float64).sum(0)
            filled = (total / n_samples).to(x.dtype)
        return torch.where(torch.isnan(x), filled, x)


def _on_device(noise: RowNoise, row: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded from row ``row``'s own: the same draw on any batch."""
    seed = int(torch.randint(2**62, (1,), generator=noise.generator(row)))
    return torch.Generator(device).manual_seed(seed)
