"""Priors p(z) over the latent space, in a registry.

A prior gives ``log_prob_estimate(z, noise)``: the log of an unbiased estimate of p(z) (nats,
summed over latent units), which is log p(z) itself for a prior with a density and reads
``noise_dim`` standard-normal draws for one with latent layers of its own above z
(``model.hierarchy``); and ``sample``. Its KL to the encoder's diagonal Gaussian q(z|x) is in
closed form when ``kl_per_unit`` returns one, and otherwise a Monte-Carlo estimate from the same
draws of z that the reconstruction term uses: log q(z|x) - log p(z). Every bound, the
importance-sampled log p(x), free bits, the KL per unit and ``sample`` go through the prior. A
conditional model passes each row's condition c to every method; priors that do not depend on
it ignore it.

Four are registered: ``standard_normal`` (N(0, I)), ``mog`` (a learned mixture of diagonal
Gaussians), ``vamp`` (the VampPrior of Tomczak & Welling 2018: the mixture of the encoder's
posteriors at learned pseudo-inputs) and ``conditional`` (a Gaussian p(z|c) whose mean and
variance a network computes from the condition, Sohn et al. 2015). A prior is built by
``make_prior`` from the latent size, the number of features, the condition's width and its
number of components; one that needs the model's encoder gets it from ``attach``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..exceptions import ConfigError
from .distributions import DiagonalGaussian, standard_normal_log_prob
from .nets import mlp

LOG_2PI = math.log(2 * math.pi)
#: Where the VampPrior's pseudo-inputs start: N(0.05, 0.01^2), Tomczak & Welling's MNIST setting.
PSEUDO_INPUT_MEAN, PSEUDO_INPUT_STD = 0.05, 0.01


def mixture_log_prob(
    z: torch.Tensor, means: torch.Tensor, log_vars: torch.Tensor, log_weights: torch.Tensor
) -> torch.Tensor:
    """log sum_m w_m N(z; mu_m, diag(exp(log_var_m))), summed over units: shape z.shape[:-1].

    ``means`` and ``log_vars`` are (M, L), ``log_weights`` (M,) normalised. The squares are
    expanded into matrix products, so memory grows with z's rows times M, not times M x L. The
    expansion subtracts large numbers when a component is narrow, so it runs in float64 (but
    on MPS, which has none) and the result comes back in z's dtype.
    """
    wide = z.dtype if z.device.type == "mps" else torch.float64
    z64, means, log_vars = z.to(wide), means.to(wide), log_vars.to(wide)
    precision = torch.exp(-log_vars)  # (M, L)
    quadratic = (
        (z64 * z64) @ precision.T
        - 2 * z64 @ (means * precision).T
        + (means * means * precision).sum(-1)
    )  # (..., M)
    log_norm = -0.5 * (log_vars.sum(-1) + z.shape[-1] * LOG_2PI)  # (M,)
    log_p = torch.logsumexp(log_weights.to(wide) + log_norm - 0.5 * quadratic, dim=-1)
    return log_p.to(z.dtype)


def mixture_sample(
    n: int,
    means: torch.Tensor,
    log_vars: torch.Tensor,
    log_weights: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``n`` draws from the mixture of ``mixture_log_prob``: a component, then its Gaussian."""
    component = torch.multinomial(log_weights.exp(), n, replacement=True, generator=generator)
    eps = torch.randn(
        (n, means.shape[-1]), generator=generator, dtype=means.dtype, device=means.device
    )
    return means[component] + torch.exp(0.5 * log_vars[component]) * eps


class Prior(nn.Module):
    """p(z) over ``latent_dim`` units; a subclass gives ``log_prob`` (or ``log_prob_estimate``)
    and ``sample``."""

    name: str = ""
    closed_form_kl: bool = False  # whether kl_per_unit gives the KL to q in closed form
    needs_condition: bool = False  # whether p(z|c) depends on a condition c
    default_components: int | None = None  # None: the prior has no components to choose
    noise_dim: int = 0  # standard-normal draws per sample of z that log_prob_estimate reads

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = int(latent_dim)

    @classmethod
    def build(
        cls,
        latent_dim: int,
        n_features: int,
        components: int | None,
        condition_dim: int = 0,
        hidden_sizes: tuple[int, ...] = (),
        activation: str = "relu",
    ) -> Prior:
        """The prior for a model of ``latent_dim`` units over ``n_features`` features, with
        ``components`` mixture components (None: the prior's default), conditions of
        ``condition_dim`` values and, for a prior with a network, its hidden layers."""
        return cls(latent_dim)

    def attach(self, model: nn.Module) -> None:
        """Called once by the model that holds the prior (a VampPrior keeps its encoder)."""

    def log_prob(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """log p(z), summed over the last dimension."""
        raise NotImplementedError(f"The {self.name} prior has no closed-form density.")

    def log_prob_estimate(
        self, z: torch.Tensor, noise: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The log of an unbiased estimate of p(z) from ``noise`` (z's leading shape by
        ``noise_dim``): log p(z) itself for a prior with a density. Substituted for log p(z),
        it keeps the ELBO a lower bound and the importance-sampled p(x) unbiased."""
        return self.log_prob(z) if condition is None else self.log_prob(z, condition)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``n`` draws of z, shape (n, latent_dim), on the prior's device (``condition``:
        one row per draw)."""
        raise NotImplementedError

    def kl_per_unit(
        self, q: DiagonalGaussian, condition: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """KL(q || p) of each latent unit in closed form, shape (N, L); None when there is none."""
        return None

    def kl(
        self,
        q: DiagonalGaussian,
        z: torch.Tensor,
        noise: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """KL(q || p) of each example, shape (N,): closed form, or the mean over the K draws
        ``z`` of shape (K, N, L) of log q(z|x) - log p(z) (unbiased for the KL; ``noise`` is
        what the prior's estimate reads, None for a prior with a density)."""
        units = self.kl_per_unit(q) if condition is None else self.kl_per_unit(q, condition)
        if units is not None:
            return units.sum(-1)
        return (q.log_prob(z) - self.log_prob_estimate(z, noise, condition)).mean(0)


class StandardNormal(Prior):
    """N(0, I): the plain VAE's prior, with its KL to q in closed form."""

    name = "standard_normal"
    closed_form_kl = True

    def log_prob(self, z, condition=None):
        return standard_normal_log_prob(z)

    def sample(self, n, generator=None, condition=None):
        device = generator.device if generator is not None else None
        return torch.randn((n, self.latent_dim), generator=generator, device=device)

    def kl_per_unit(self, q, condition=None):
        return q.kl_per_unit()


class MixtureOfGaussians(Prior):
    """A learned mixture of ``n_mixture`` diagonal Gaussians: means, log-variances and weights
    are trained with the networks. The means start as draws from N(0, I), the variances at 1,
    the weights equal."""

    name = "mog"
    default_components = 10

    def __init__(self, latent_dim: int, n_mixture: int = 10):
        super().__init__(latent_dim)
        self.means = nn.Parameter(torch.randn(n_mixture, latent_dim))
        self.log_vars = nn.Parameter(torch.zeros(n_mixture, latent_dim))
        self.logits = nn.Parameter(torch.zeros(n_mixture))

    @classmethod
    def build(cls, latent_dim, n_features, components, **_):
        return cls(latent_dim, components or cls.default_components)

    def log_prob(self, z, condition=None):
        return mixture_log_prob(z, self.means, self.log_vars, self.logits.log_softmax(0))

    def sample(self, n, generator=None, condition=None):
        return mixture_sample(n, self.means, self.log_vars, self.logits.log_softmax(0), generator)


class VampPrior(Prior):
    """The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) sum_k q(z | u_k), the encoder's
    posteriors at K learned pseudo-inputs u_k.

    The pseudo-inputs start as the paper's do, N(0.05, 0.01^2) in every feature of the model's
    space. Started at random training rows (or at their mean) instead, the posterior collapsed
    on MNIST and on digits in every run; so it did on MNIST with tanh networks in PyTorch's
    default start, which ``nets.initialise`` replaces (BENCHMARKS.md). The encoder is the
    model's own (``attach``), not a copy: the prior moves with it.
    """

    name = "vamp"
    default_components = 500

    def __init__(self, latent_dim: int, n_features: int, n_pseudo_inputs: int = 500):
        super().__init__(latent_dim)
        start = PSEUDO_INPUT_MEAN + PSEUDO_INPUT_STD * torch.randn(n_pseudo_inputs, n_features)
        self.pseudo_inputs = nn.Parameter(start)

    @classmethod
    def build(cls, latent_dim, n_features, components, **_):
        return cls(latent_dim, n_features, components or cls.default_components)

    def attach(self, model):
        self.__dict__["encode"] = model.encode  # not a submodule: its weights are the model's

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(means, log-variances, log-weights) of the mixture: q(z | u_k) for every k."""
        q = self.encode(self.pseudo_inputs)
        log_weights = torch.full(
            (len(q.mean),), -math.log(len(q.mean)), dtype=q.mean.dtype, device=q.mean.device
        )
        return q.mean, q.log_var, log_weights

    def log_prob(self, z, condition=None):
        return mixture_log_prob(z, *self.components())

    def sample(self, n, generator=None, condition=None):
        return mixture_sample(n, *self.components(), generator)


class ConditionalGaussian(Prior):
    """p(z|c) = N(mu(c), diag(exp(log_var(c)))): a network of the condition gives the mean and
    log-variance (Sohn et al. 2015's prior network); its KL to q is in closed form per unit."""

    name = "conditional"
    closed_form_kl = True
    needs_condition = True

    def __init__(self, latent_dim, condition_dim, hidden_sizes, activation):
        super().__init__(latent_dim)
        self.net = mlp([condition_dim, *hidden_sizes, 2 * latent_dim], activation)

    @classmethod
    def build(cls, latent_dim, n_features, components, condition_dim=0, hidden_sizes=(), **kw):
        return cls(latent_dim, condition_dim, hidden_sizes, kw.get("activation", "relu"))

    def given(self, condition: torch.Tensor) -> DiagonalGaussian:
        """p(z|c) for each row of ``condition``."""
        out = self.net(condition)
        out = out if out.dtype == condition.dtype else out.to(condition.dtype)
        mean, log_var = out.chunk(2, dim=-1)
        return DiagonalGaussian(mean, log_var.clamp(-30.0, 20.0))

    def log_prob(self, z, condition=None):
        return self.given(condition).log_prob(z)

    def sample(self, n, generator=None, condition=None):
        p = self.given(condition)
        eps = torch.randn(
            p.mean.shape, generator=generator, dtype=p.mean.dtype, device=p.mean.device
        )
        return p.rsample(eps)

    def kl_per_unit(self, q, condition=None):
        return q.kl_per_unit_to(self.given(condition))


PRIORS: dict[str, type[Prior]] = {
    cls.name: cls for cls in (StandardNormal, MixtureOfGaussians, VampPrior, ConditionalGaussian)
}


def make_prior(
    name: str,
    latent_dim: int,
    n_features: int = 0,
    components: int | None = None,
    *,
    condition_dim: int = 0,
    hidden_sizes: tuple[int, ...] = (),
    activation: str = "relu",
) -> Prior:
    """Build a prior from its registered name.

    Parameters
    ----------
    name : str
        A key of ``PRIORS``.
    latent_dim, n_features : int
        The model's latent units and features.
    components : int, optional
        Mixture components (``mog``) or pseudo-inputs (``vamp``); None for the prior's default.
    condition_dim : int, default=0
        Values in a row's condition (0: an unconditional model).
    hidden_sizes : tuple of int, default=()
        Hidden layers of a prior's network (``conditional``).
    activation : str, default="relu"
        The nonlinearity of that network.

    Returns
    -------
    Prior
    """
    if name not in PRIORS:
        raise ConfigError(f"Unknown prior {name!r}; choose one of {', '.join(PRIORS)}.")
    return PRIORS[name].build(
        latent_dim,
        n_features,
        components,
        condition_dim=condition_dim,
        hidden_sizes=tuple(hidden_sizes),
        activation=activation,
    )
