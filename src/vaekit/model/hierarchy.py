"""Stochastic layers above the first: Burda et al. (2016)'s two-layer VAE, and deeper stacks.

A model with latent layers z1 (next to the data), z2, ..., zT has the generative path
p(zT) p(z_{T-1} | zT) ... p(x | z1) and the inference path q(z1 | x) q(z2 | z1) ... q(zT | z_{T-1}).
Everything above z1 is, for the rest of the model, a prior over z1 whose density is an integral:
p(z1) = E_{q(z2|z1)}[p(z1 | z2) p(z2) / q(z2 | z1)]. ``StochasticLayer`` is that prior: one
layer z_{l+1} above z_l, with its two Gaussian networks and the prior of the layer above it
(another ``StochasticLayer``, or the top prior). Its ``log_prob_estimate`` draws z_{l+1} from
q(z_{l+1} | z_l) with the model's noise and returns the log of the ratio inside the expectation,
an unbiased estimate of p(z_l). The ELBO and the IWAE bound of the whole stack, and the
importance-sampled log p(x) with the joint proposal q(z1|x) q(z2|z1) ..., are then the one-layer
formulas of ``model.modules`` unchanged.
"""

from __future__ import annotations

import itertools

import torch

from .distributions import DiagonalGaussian
from .nets import mlp
from .priors import Prior

LOG_VAR_MIN, LOG_VAR_MAX = -30.0, 20.0


def _gaussian(net: torch.nn.Module, inputs: torch.Tensor) -> DiagonalGaussian:
    out = net(inputs)
    out = out if out.dtype == inputs.dtype else out.to(inputs.dtype)
    mean, log_var = out.chunk(2, dim=-1)
    return DiagonalGaussian(mean, log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX))


class StochasticLayer(Prior):
    """p(z) through a layer of ``upper_dim`` latent units above z.

    Parameters
    ----------
    latent_dim : int
        Units of the layer below (z).
    upper_dim : int
        Units of this layer (u).
    hidden_sizes : tuple of int
        Hidden widths of q(u | z); p(z | u) mirrors them.
    activation : str
        The nonlinearity of both networks.
    top : Prior
        p(u): the standard normal, a mixture, or the next ``StochasticLayer``.
    """

    name = "stochastic_layer"

    def __init__(
        self,
        latent_dim: int,
        upper_dim: int,
        hidden_sizes: tuple[int, ...],
        activation: str,
        top: Prior,
    ):
        super().__init__(latent_dim)
        self.upper_dim = int(upper_dim)
        self.inference = mlp([latent_dim, *hidden_sizes, 2 * upper_dim], activation)  # q(u|z)
        self.generative = mlp([upper_dim, *reversed(hidden_sizes), 2 * latent_dim], activation)
        self.top = top
        self.noise_dim = self.upper_dim + top.noise_dim

    def posterior(self, z: torch.Tensor) -> DiagonalGaussian:
        """q(u | z), for z of any leading shape."""
        return _gaussian(self.inference, z)

    def conditional(self, u: torch.Tensor) -> DiagonalGaussian:
        """p(z | u)."""
        return _gaussian(self.generative, u)

    def log_prob_estimate(self, z, noise, condition=None):
        q = self.posterior(z)
        u = q.rsample(noise[..., : self.upper_dim])
        log_top = self.top.log_prob_estimate(u, noise[..., self.upper_dim :])
        return self.conditional(u).log_prob(z) + log_top - q.log_prob(u)

    def sample(self, n, generator=None, condition=None):
        return self.sample_path(n, generator)[0]

    def sample_path(self, n: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """``n`` draws of the generative path, bottom up: z, then u, then the layers above."""
        above = prior_path(self.top, n, generator)
        u = above[0].to(self.generative[-1].weight.dtype)
        p = self.conditional(u)
        eps = torch.randn(p.mean.shape, generator=generator, dtype=u.dtype, device=u.device)
        return [p.rsample(eps), *above]

    def codes(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The posterior means of every layer above z, bottom up, each from the mean below:
        E q(z2 | z1), then E q(z3 | E q(z2 | z1)), ... (what the active units per layer use)."""
        u = self.posterior(z).mean
        above = self.top.codes(u) if isinstance(self.top, StochasticLayer) else []
        return [u, *above]


def prior_path(
    prior: Prior,
    n: int,
    generator: torch.Generator | None = None,
    condition: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """``n`` draws of every latent layer from the generative path of ``prior``, bottom up (one
    layer for a prior without layers above)."""
    if isinstance(prior, StochasticLayer):
        return prior.sample_path(n, generator)
    if condition is None:
        return [prior.sample(n, generator)]
    return [prior.sample(n, generator, condition)]


def layer_priors(prior: Prior) -> list[Prior]:
    """The prior of each latent layer's units given the layers above, bottom up: the stack's
    layers, then the top prior."""
    layers = [prior]
    while isinstance(layers[-1], StochasticLayer):
        layers.append(layers[-1].top)
    return layers


def stack_layers(
    latent_dim: int,
    upper_layers: tuple[int, ...],
    hidden_sizes: tuple[int, ...],
    activation: str,
    top: Prior,
) -> Prior:
    """The prior over the first layer's ``latent_dim`` units given the layers above it
    (``upper_layers``, bottom up) and the prior ``top`` over the last of them."""
    sizes = [latent_dim, *upper_layers]
    prior = top
    for below, above in reversed(list(itertools.pairwise(sizes))):
        prior = StochasticLayer(below, above, hidden_sizes, activation, prior)
    return prior
