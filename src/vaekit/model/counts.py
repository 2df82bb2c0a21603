"""Decoder likelihoods for counts: Poisson, negative binomial and zero-inflated negative binomial.

Each is parametrised by the log of its mean, as scVI (Lopez et al. 2018) does for gene
expression. With ``library_size=True`` the decoder's first head gives proportions instead (a
softmax over the features) and the mean of a row is its proportions times the row's observed
total, so the model spends no capacity on sequencing depth; ``log_prob`` is then log p(x | z,
total). The decoded mean and ``sample`` of a row with no data (decoded from a code alone) take
the total from the log-normal fitted to the training rows' totals (``fit_library``).

The negative binomial has mean mu and inverse dispersion theta (variance mu + mu^2 / theta,
scipy's ``nbinom(theta, theta / (theta + mu))``); theta is learned per feature
(``dispersion='feature'``) or given by a decoder head (``'decoder'``). Decoder heads are
head-major: the mean, then log theta (``'decoder'``), then the zero-inflation logits (ZINB).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import ConfigError, DataError
from .distributions import Likelihood

DISPERSIONS = ("feature", "decoder")
LOG_MEAN_MAX = 30.0  # e^30 ~ 1e13: far above any count, and exp() of it stays finite in float32
# theta from e^-20 (all but a point mass at 0) to e^20 (a Poisson to within 1e-8 of its variance).
LOG_THETA_MIN, LOG_THETA_MAX = -20.0, 20.0


class CountLikelihood(Likelihood):
    """What the count likelihoods share: the log mean of each feature, with or without the
    library-size offset, and the refusal of data that are not counts."""

    transforms_input = True

    def __init__(self, n_features: int, library_size: bool = False):
        super().__init__(n_features)
        self.library_size = bool(library_size)
        # Location and scale of log(total) over the training rows; fit_library sets them.
        self.register_buffer("log_library", torch.tensor([0.0, 1.0]))

    def encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        """log(1 + x): counts span orders of magnitude, their logarithm suits a network."""
        return torch.log1p(x)

    def fit_library(self, totals: np.ndarray) -> None:
        """Fit the log-normal of the row totals that ``mean`` and ``sample`` use without data.

        Parameters
        ----------
        totals : numpy.ndarray of shape (n,)
            The training rows' sums of counts; a total below 1 counts as 1.
        """
        logs = np.log(np.maximum(np.asarray(totals, dtype=np.float64), 1.0))
        self.log_library.copy_(torch.tensor([logs.mean(), max(logs.std(), 1e-6)]))

    def log_mean(self, head: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """log E[x|z] from the decoder's first head; with ``library_size`` the log proportions
        plus log(total) of x (or of the typical training row when x is None)."""
        if not self.library_size:
            return head.clamp(max=LOG_MEAN_MAX)
        if x is None:
            log_total = self.log_library[0].to(head.dtype)
        else:
            log_total = torch.log(x.sum(-1, keepdim=True).clamp(min=1.0))
        return F.log_softmax(head, dim=-1) + log_total

    def library_draw(
        self, head: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor | None:
        """log(total) of each decoded row, drawn from the fitted log-normal (None without the
        library-size offset)."""
        if not self.library_size:
            return None
        noise = torch.randn(
            (*head.shape[:-1], 1), generator=generator, dtype=head.dtype, device=head.device
        )
        loc, scale = self.log_library.to(head.dtype)
        return loc + scale * noise

    def sampled_log_mean(self, head: torch.Tensor, generator) -> torch.Tensor:
        """log E[x|z] of decoded rows, with a library size drawn for each row."""
        log_total = self.library_draw(head, generator)
        if log_total is None:
            return self.log_mean(head)
        return F.log_softmax(head, dim=-1) + log_total

    @classmethod
    def validate(cls, low, high, binary, integer):
        if not (low >= 0 and integer):
            raise DataError(
                f"The {cls.name} likelihood needs counts (whole numbers >= 0); these data have "
                + ("negative values" if low < 0 else "values that are not whole numbers")
                + "; round them to counts or use the gaussian likelihood."
            )


def poisson_log_prob(x: torch.Tensor, log_mean: torch.Tensor) -> torch.Tensor:
    """log Poisson(x; exp(log_mean)) of each entry."""
    return x * log_mean - torch.exp(log_mean) - torch.lgamma(x + 1.0)


def negative_binomial_log_prob(
    x: torch.Tensor, log_mean: torch.Tensor, log_theta: torch.Tensor
) -> torch.Tensor:
    """log NB(x; mean exp(log_mean), inverse dispersion exp(log_theta)) of each entry.

    theta log(theta / (theta + mu)) + x log(mu / (theta + mu)) + the log binomial coefficient,
    with log(theta + mu) as a log-sum-exp so that neither mu nor theta overflows it.
    """
    theta = torch.exp(log_theta)
    log_sum = torch.logaddexp(log_theta, log_mean)
    return (
        torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1.0)
        + theta * (log_theta - log_sum)
        + x * (log_mean - log_sum)
    )


class Poisson(CountLikelihood):
    """Independent Poisson counts per feature, with log mean from the decoder."""

    name = "poisson"
    mean_formula = "exp(log_mean)"

    def log_prob_entries(self, x, params):
        return poisson_log_prob(x, self.log_mean(params, x))

    def mean(self, params):
        return torch.exp(self.log_mean(params))

    def distribution_params(self, params):
        return {"log_mean": self.log_mean(params)}

    def sample(self, params, generator=None):
        return torch.poisson(torch.exp(self.sampled_log_mean(params, generator)), generator)


class NegativeBinomial(CountLikelihood):
    """Independent negative-binomial counts per feature (mean and inverse dispersion theta).

    ``dispersion='feature'`` learns one theta per feature (it starts at 1); ``'decoder'``
    takes log theta(z) from a second decoder head.
    """

    name = "negative_binomial"
    mean_formula = "exp(log_mean)"

    def __init__(self, n_features: int, dispersion: str = "feature", library_size: bool = False):
        super().__init__(n_features, library_size)
        if dispersion not in DISPERSIONS:
            raise ConfigError(
                f"dispersion must be one of {', '.join(DISPERSIONS)}; got {dispersion!r}."
            )
        self.dispersion = dispersion
        self.n_heads = 2 if dispersion == "decoder" else 1
        if dispersion == "feature":
            self.log_theta = nn.Parameter(torch.zeros(n_features))

    def parts(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """(mean head, log theta, the heads after them); log theta is clamped to [-20, 20]."""
        heads = self.split(params)
        if self.dispersion == "decoder":
            log_theta, rest = heads[1], heads[2:]
        else:
            log_theta, rest = self.log_theta.to(params.dtype), heads[1:]
        return heads[0], log_theta.clamp(LOG_THETA_MIN, LOG_THETA_MAX), rest

    def log_prob_entries(self, x, params):
        head, log_theta, _ = self.parts(params)
        return negative_binomial_log_prob(x, self.log_mean(head, x), log_theta)

    def mean(self, params):
        return torch.exp(self.log_mean(self.parts(params)[0]))

    def distribution_params(self, params):
        head, log_theta, _ = self.parts(params)
        return {"log_mean": self.log_mean(head), "log_theta": log_theta.expand_as(head)}

    def draw(self, log_mean: torch.Tensor, log_theta: torch.Tensor, generator) -> torch.Tensor:
        """Gamma-Poisson draws: rate ~ Gamma(theta, scale mu / theta), counts ~ Poisson(rate)."""
        theta = torch.exp(log_theta).expand_as(log_mean)
        rate = torch._standard_gamma(theta, generator=generator) * torch.exp(log_mean) / theta
        return torch.poisson(rate, generator)

    def sample(self, params, generator=None):
        head, log_theta, _ = self.parts(params)
        return self.draw(self.sampled_log_mean(head, generator), log_theta, generator)


class ZeroInflatedNegativeBinomial(NegativeBinomial):
    """A negative binomial whose every count is zero instead with probability pi(z), given as
    logits by the last decoder head (the dropouts of single-cell data)."""

    name = "zinb"
    mean_formula = "sigmoid(-zero_logits) * exp(log_mean)"

    def __init__(self, n_features: int, dispersion: str = "feature", library_size: bool = False):
        super().__init__(n_features, dispersion, library_size)
        self.n_heads += 1

    def log_prob_entries(self, x, params):
        head, log_theta, (logits,) = self.parts(params)
        log_nb = negative_binomial_log_prob(x, self.log_mean(head, x), log_theta)
        log_pi, log_not_pi = -F.softplus(-logits), -F.softplus(logits)
        zero = torch.logaddexp(log_pi, log_not_pi + log_nb)
        return torch.where(x == 0, zero, log_not_pi + log_nb)

    def mean(self, params):
        head, _, (logits,) = self.parts(params)
        return torch.sigmoid(-logits) * torch.exp(self.log_mean(head))

    def distribution_params(self, params):
        return super().distribution_params(params) | {"zero_logits": self.parts(params)[2][0]}

    def sample(self, params, generator=None):
        head, log_theta, (logits,) = self.parts(params)
        counts = self.draw(self.sampled_log_mean(head, generator), log_theta, generator)
        uniform = torch.rand(
            logits.shape, generator=generator, dtype=logits.dtype, device=logits.device
        )
        return torch.where(uniform < torch.sigmoid(logits), torch.zeros_like(counts), counts)
