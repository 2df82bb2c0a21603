"""Posterior, prior and decoder likelihoods with exact, normalised log-densities.

Every ``log_prob`` returns nats per example: summed over the features (or latent units) of one
example, never averaged over them. Tensors are flat: data ``(..., D)``, latents ``(..., L)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import ConfigError, DataError
from .fast_paths import float32_estimate

LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


class DiagonalGaussian:
    """N(mean, diag(exp(log_var))): the encoder's posterior q(z|x)."""

    def __init__(self, mean: torch.Tensor, log_var: torch.Tensor):
        self.mean = mean
        self.log_var = log_var

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.log_var)

    def rsample(self, eps: torch.Tensor) -> torch.Tensor:
        """Reparametrised sample mean + std * eps; eps broadcasts, e.g. (K, N, L) or (K, 1, L)."""
        return self.mean + self.std * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) summed over latent units; z may carry leading sample dimensions."""
        return -0.5 * (
            ((z - self.mean) ** 2) * torch.exp(-self.log_var) + self.log_var + LOG_2PI
        ).sum(-1)

    def entropy(self) -> torch.Tensor:
        """Differential entropy, summed over latent units."""
        return 0.5 * (self.log_var + 1.0 + LOG_2PI).sum(-1)

    def kl_per_unit(self) -> torch.Tensor:
        """KL(q || N(0, I)) for each latent unit, in closed form: shape (N, L)."""
        return 0.5 * (self.mean.pow(2) + torch.exp(self.log_var) - 1.0 - self.log_var)

    def kl_per_unit_to(self, other: DiagonalGaussian) -> torch.Tensor:
        """KL(self || other) for each unit, in closed form: shape (N, L)."""
        log_ratio = other.log_var - self.log_var
        spread = (torch.exp(self.log_var) + (self.mean - other.mean).pow(2)) * torch.exp(
            -other.log_var
        )
        return 0.5 * (spread - 1.0 + log_ratio)


class Likelihood(nn.Module):
    """A decoder distribution p(x|z). The decoder emits ``n_heads * D`` numbers per example."""

    name: str = ""
    n_heads: int = 1
    transforms_input: bool = False  # True where encoder_input is not the identity
    mean_formula: str = ""  # E[x|z] in distribution_params' names, with exp, sigmoid and tanh

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = n_features

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return params.chunk(self.n_heads, dim=-1) if self.n_heads > 1 else (params,)

    def log_prob_entries(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x_d|z) of every feature d: shape (..., D)."""
        raise NotImplementedError

    def log_prob(
        self, x: torch.Tensor, params: torch.Tensor, observed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log p(x|z), summed over the features; with the boolean mask ``observed`` over
        those it marks only (the others are integrated out: a missing value, MIWAE)."""
        entries = self.log_prob_entries(x, params)
        if observed is not None:
            entries = torch.where(observed, entries, torch.zeros_like(entries))
        return entries.sum(-1)

    def encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        """The data as the encoder reads them (the likelihood itself is given x unchanged)."""
        return x

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x|z]."""
        raise NotImplementedError

    def distribution_params(self, params: torch.Tensor) -> dict[str, torch.Tensor]:
        """The distribution's parameters of every feature, by name, each of shape (..., D):
        the decoder's heads as the likelihood reads them (what an exported decoder emits)."""
        raise NotImplementedError

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A draw x ~ p(x|z)."""
        raise NotImplementedError

    @classmethod
    def validate(cls, low: float, high: float, binary: bool, integer: bool) -> None:
        """Raise DataError if data with these smallest and largest values (``binary``: every
        value 0 or 1; ``integer``: every value a whole number) cannot come from this
        likelihood."""


class Bernoulli(Likelihood):
    """Independent Bernoulli per feature, parametrised by logits; for binary data."""

    name = "bernoulli"
    mean_formula = "sigmoid(logits)"

    def log_prob_entries(self, x, params):
        """log p(x_d|l_d) = -softplus((1 - 2 x_d) l_d) for binary x: one pass over the logits
        after the product, stable at any logit (the cross-entropy's kernel makes six passes,
        most of an evaluation's time outside the matrix products)."""
        return -F.softplus(params * (1.0 - 2.0 * x))

    def log_prob(self, x, params, observed=None):
        """log p(x|z), summed over the features. Without a gradient, in float32 and with every
        feature observed (an importance-sampled log p(x)), the sum is ``product_log_prob``'s,
        which takes 60% of the time; the float64 reference keeps the softplus."""
        if observed is None and float32_estimate(params):
            return product_log_prob(x, params)
        return super().log_prob(x, params, observed)

    def mean(self, params):
        return torch.sigmoid(params)

    def distribution_params(self, params):
        return {"logits": params}

    def sample(self, params, generator=None):
        return torch.bernoulli(torch.sigmoid(params), generator=generator)

    @classmethod
    def validate(cls, low, high, binary, integer):
        if not binary:
            raise DataError(
                "The bernoulli likelihood needs binary data (0 or 1); "
                "pass binarize=<threshold> or use likelihood='continuous_bernoulli' or 'gaussian'."
            )


#: Factors per product in ``product_log_prob``: each lies in [1/2, 1), so a product of up to
#: 126 of them stays above float32's smallest normal number, 2**-126.
PRODUCT_GROUP = 112


def product_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The Bernoulli log p(x|logits) of binary x, summed over the last dimension, with one
    logarithm per ``PRODUCT_GROUP`` features instead of one per feature.

    With y = (1 - 2 x) logits, log p = -sum softplus(y), and softplus(y) = relu(y) -
    log sigmoid(|y|): the log-sigmoids' sum is the logarithm of the product of the
    sigmoid(|y|), each in [1/2, 1), taken over groups small enough not to underflow. Where the
    softplus kernel is slow (AVX2, one thread: 6.0 ns an element against 1.9 for the sigmoid,
    ``benchmarks/elementwise.py``) this takes 60% of the softplus pass's time. Every term is
    non-negative, so nothing cancels: in float32 each factor carries a relative rounding error
    of at most 6e-8, about 1e-5 nats over 784 features.
    """
    y = logits * (1.0 - 2.0 * x)
    relu_sum = torch.relu(y).sum(-1)
    factors = y.abs_().sigmoid_()
    whole = factors.shape[-1] // PRODUCT_GROUP * PRODUCT_GROUP
    groups = factors[..., :whole].unflatten(-1, (-1, PRODUCT_GROUP)).prod(-1)
    log_product = groups.log_().sum(-1) + factors[..., whole:].prod(-1).log_()
    return log_product - relu_sum


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda) of the continuous Bernoulli, as a function of eta = logit(lambda).

    C = 2 artanh(1 - 2 lambda) / (1 - 2 lambda) = eta / tanh(eta / 2), which tends to 2 at
    eta = 0; a Taylor series is used for |eta| < 1e-2, where the ratio is 0/0 in floating point.
    """
    small = logits.abs() < 1e-2
    safe = torch.where(small, torch.ones_like(logits), logits)
    direct = torch.log(safe.abs()) - torch.log(torch.tanh(safe.abs() / 2))
    eta2 = logits * logits
    series = math.log(2.0) + eta2 / 12.0 - 7.0 * eta2 * eta2 / 1440.0
    return torch.where(small, series, direct)


class ContinuousBernoulli(Likelihood):
    """The continuous Bernoulli of Loaiza-Ganem & Cunningham (2019), for data in [0, 1]."""

    name = "continuous_bernoulli"
    mean_formula = "sigmoid(logits) / tanh(logits / 2) - 1 / logits"  # 1/2 at logits = 0

    def distribution_params(self, params):
        return {"logits": params}

    def log_prob_entries(self, x, params):
        bernoulli = -F.binary_cross_entropy_with_logits(
            params, x.expand_as(params), reduction="none"
        )
        return bernoulli + continuous_bernoulli_log_norm(params)

    def mean(self, params):
        small = params.abs() < 1e-2
        safe = torch.where(small, torch.ones_like(params), params)
        direct = torch.sigmoid(safe) / torch.tanh(safe / 2) - 1.0 / safe
        series = 0.5 + params / 12.0 - params.pow(3) / 720.0
        return torch.where(small, series, direct)

    def sample(self, params, generator=None):
        u = torch.rand(params.shape, generator=generator, dtype=params.dtype, device=params.device)
        # Inverse CDF x = log(1 + u (e^eta - 1)) / eta, written to stay finite for large |eta|.
        small = params.abs() < 1e-4
        eta = torch.where(small, torch.ones_like(params), params)
        pos = eta > 0
        a = torch.where(pos, eta, -eta)
        v = torch.where(pos, u, 1 - u)
        x = (a + torch.log(v + (1 - v) * torch.exp(-a))) / a
        x = torch.where(pos, x, 1 - x)
        return torch.where(small, u, x).clamp(0.0, 1.0)

    @classmethod
    def validate(cls, low, high, binary, integer):
        if low < 0.0 or high > 1.0:
            raise DataError(
                "The continuous_bernoulli likelihood needs data in [0, 1]; "
                "rescale the data or use likelihood='gaussian'."
            )


SIGMA_MODES = ("fixed", "shared", "per_feature", "decoder")


def _softplus_inverse(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class Gaussian(Likelihood):
    """Independent Gaussian per feature with mean from the decoder and sigma by ``sigma``:

    ``fixed`` (``sigma_value``), ``shared`` (one learned scalar), ``per_feature`` (one learned
    sigma per feature) or ``decoder`` (sigma(z) from a second decoder head). Learned sigmas are
    ``sigma_floor + softplus(raw)``, so they never fall below the floor.
    """

    name = "gaussian"
    mean_formula = "mean"

    def __init__(
        self,
        n_features: int,
        sigma: str = "shared",
        sigma_value: float = 1.0,
        sigma_floor: float = 1e-3,
    ):
        super().__init__(n_features)
        if sigma not in SIGMA_MODES:
            raise ConfigError(f"sigma must be one of {', '.join(SIGMA_MODES)}; got {sigma!r}.")
        if not sigma_value > 0 or not sigma_floor > 0:
            raise ConfigError("sigma_value and sigma_floor must be positive numbers.")
        if sigma != "fixed" and sigma_value <= sigma_floor:
            raise ConfigError("sigma_value must be larger than sigma_floor for a learned sigma.")
        self.sigma_mode = sigma
        self.sigma_value = float(sigma_value)
        self.sigma_floor = float(sigma_floor)
        self.n_heads = 2 if sigma == "decoder" else 1
        raw = _softplus_inverse(self.sigma_value - self.sigma_floor) if sigma != "fixed" else 0.0
        if sigma == "shared":
            self.raw_sigma = nn.Parameter(torch.tensor(raw))
        elif sigma == "per_feature":
            self.raw_sigma = nn.Parameter(torch.full((n_features,), raw))
        self.decoder_sigma_offset = raw  # starts a decoder sigma head near sigma_value

    def sigma(self, params: torch.Tensor) -> torch.Tensor:
        """The standard deviation, broadcastable against the mean."""
        if self.sigma_mode == "fixed":
            return torch.full((), self.sigma_value, dtype=params.dtype, device=params.device)
        if self.sigma_mode == "decoder":
            raw = self.split(params)[1] + self.decoder_sigma_offset
        else:
            raw = self.raw_sigma
        return self.sigma_floor + F.softplus(raw)

    def log_prob_entries(self, x, params):
        mean = self.split(params)[0]
        sigma = self.sigma(params)
        z = (x - mean) / sigma
        return (-0.5 * (z * z + LOG_2PI) - torch.log(sigma)).expand_as(mean)

    def mean(self, params):
        return self.split(params)[0]

    def distribution_params(self, params):
        mean = self.split(params)[0]
        return {"mean": mean, "sigma": self.sigma(params).expand_as(mean)}

    def sample(self, params, generator=None):
        mean = self.split(params)[0]
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + self.sigma(params) * noise
