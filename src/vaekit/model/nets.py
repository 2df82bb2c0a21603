"""Encoder and decoder bodies: MLP, convolutional and linear, built from names by a registry.

Every network works on flat tensors. An encoder maps ``(N, D)`` to ``(N, encoder_outputs)``
(``2 L`` for a VAE: means then log-variances; ``L`` for an autoencoder); a decoder maps
``(N, L)`` to ``(N, decoder_outputs)`` (``n_heads * D``, head-major). For a conditional model
with conditions of C values, the encoder reads ``(N, D + C)`` (the row, then its condition) and
the decoder ``(N, L + C)``. User-supplied modules that follow the same contract plug in
unchanged.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..exceptions import ConfigError
from .fast_paths import float32_estimate


class Tanh(nn.Tanh):
    """tanh; without a gradient in float32 (an importance-sampled log p(x) runs its decoder
    K times a row) as 2 sigmoid(2x) - 1, within 2e-7 of tanh (a test holds it there)
    in about half its time where the tanh kernel is slow (AVX2, one thread: 4.1 ns an element
    against 1.9 for the sigmoid, ``benchmarks/elementwise.py``). Training, float64 and exported
    graphs keep ``torch.tanh``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float32_estimate(x):
            return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)
        return torch.tanh(x)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module from its name."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()


def initialise(net: nn.Module, activation_name: str) -> nn.Module:
    """Start the weights of ``net`` as suits its activation; returns ``net``.

    Tanh networks get Glorot & Bengio (2010)'s uniform start (gain 5/3) and zero biases, as
    Burda et al.'s and Tomczak & Welling's did: PyTorch's default, U(+-1/sqrt(fan_in)), shrinks
    a tanh network's signal layer by layer, and on MNIST the model then spent its first epochs
    on the mean image, where a VampPrior or a second stochastic layer trapped the posterior for
    good (``benchmarks/first_epochs.py``). The ReLU family keeps PyTorch's default.
    """
    if activation_name == "tanh":
        gain = nn.init.calculate_gain("tanh")
        for layer in net.modules():
            if isinstance(layer, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
                nn.init.xavier_uniform_(layer.weight, gain=gain)
                nn.init.zeros_(layer.bias)
    return net


def mlp(sizes: Sequence[int], activation_name: str) -> nn.Sequential:
    """Linear layers of the given sizes with an activation between them (none after the last),
    started by ``initialise``."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if i > 0:
            layers.append(activation(activation_name))
        layers.append(nn.Linear(n_in, n_out))
    return initialise(nn.Sequential(*layers), activation_name)


def build_mlp(
    n_features: int,
    latent_dim: int,
    encoder_outputs: int,
    decoder_outputs: int,
    hidden_sizes: Sequence[int] = (256, 128),
    activation: str = "relu",
    condition_dim: int = 0,
    **_: object,
) -> tuple[nn.Module, nn.Module]:
    """An MLP pair; the decoder mirrors the encoder's hidden sizes."""
    hidden = [int(h) for h in hidden_sizes]
    if any(h < 1 for h in hidden):
        raise ConfigError(f"hidden_sizes must be positive integers; got {tuple(hidden_sizes)}.")
    encoder = mlp([n_features + condition_dim, *hidden, encoder_outputs], activation)
    decoder = mlp([latent_dim + condition_dim, *reversed(hidden), decoder_outputs], activation)
    return encoder, decoder


def build_linear(
    n_features: int,
    latent_dim: int,
    encoder_outputs: int,
    decoder_outputs: int,
    condition_dim: int = 0,
    **_: object,
) -> tuple[nn.Module, nn.Module]:
    """Affine encoder and decoder with no hidden layer: probabilistic PCA's shape."""
    encoder = nn.Linear(n_features + condition_dim, encoder_outputs)
    return encoder, nn.Linear(latent_dim + condition_dim, decoder_outputs)


def _image_shape(shape: Sequence[int] | None, n_features: int) -> tuple[int, int, int]:
    if shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ConfigError(
                f"architecture='conv' needs image_shape for {n_features} features "
                "that do not form a square image; pass image_shape=(channels, height, width)."
            )
        shape = (1, side, side)
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or math.prod(shape) != n_features or min(shape) < 1:
        raise ConfigError(
            f"image_shape {shape} does not hold the data's {n_features} features; "
            "pass (channels, height, width) whose product is the number of features."
        )
    return shape


def _channels(channels: Sequence[int]) -> list[int]:
    """Convolution widths as integers, refused unless every one is positive."""
    chans = [int(c) for c in channels]
    if not chans or min(chans) < 1:
        raise ConfigError(f"channels must be positive integers; got {tuple(channels)}.")
    return chans


def _halve(size: int) -> int:
    return (size - 1) // 2 + 1  # a 3x3 convolution with stride 2 and padding 1


class ConvEncoder(nn.Module):
    """Stride-2 3x3 convolutions, then a linear layer: (N, C*H*W) -> (N, outputs). With
    ``condition_dim`` the last values of a row are its condition, which joins the flattened
    feature maps at the linear layer."""

    def __init__(self, image_shape, channels, outputs, activation_name, condition_dim=0):
        super().__init__()
        c, h, w = image_shape
        self.n_pixels = math.prod(image_shape)
        layers: list[nn.Module] = [nn.Unflatten(1, image_shape)]
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1), activation(activation_name)]
            c, h, w = out, _halve(h), _halve(w)
        layers += [nn.Flatten(), nn.Linear(c * h * w + condition_dim, outputs)]
        self.net = initialise(nn.Sequential(*layers), activation_name)

    def forward(self, x):
        if x.shape[1] == self.n_pixels:
            return self.net(x)
        maps = self.net[:-1](x[:, : self.n_pixels])
        return self.net[-1](torch.cat([maps, x[:, self.n_pixels :]], dim=1))


class ConvDecoder(nn.Module):
    """A linear layer, then stride-2 transposed convolutions back to (N, heads*C*H*W)."""

    def __init__(self, latent_dim, image_shape, channels, outputs, activation_name):
        super().__init__()
        _, h, w = image_shape
        sizes = [(h, w)]  # the encoder's feature-map sizes, largest first
        for _ in channels:
            sizes.append((_halve(sizes[-1][0]), _halve(sizes[-1][1])))
        chans = [*reversed(channels), outputs // (h * w)]  # the last layer emits heads * C
        sizes.reverse()
        layers: list[nn.Module] = [
            nn.Linear(latent_dim, chans[0] * sizes[0][0] * sizes[0][1]),
            activation(activation_name),
            nn.Unflatten(1, (chans[0], *sizes[0])),
        ]
        for i, ((ih, iw), (th, tw)) in enumerate(itertools.pairwise(sizes)):
            pad = (th - (2 * ih - 1), tw - (2 * iw - 1))  # hits the encoder's size exactly
            layers.append(nn.ConvTranspose2d(chans[i], chans[i + 1], 3, 2, 1, output_padding=pad))
            if i + 1 < len(channels):
                layers.append(activation(activation_name))
        layers.append(nn.Flatten())
        self.net = initialise(nn.Sequential(*layers), activation_name)

    def forward(self, z):
        return self.net(z)


def build_conv(
    n_features: int,
    latent_dim: int,
    encoder_outputs: int,
    decoder_outputs: int,
    image_shape: Sequence[int] | None = None,
    channels: Sequence[int] = (32, 64),
    activation: str = "relu",
    condition_dim: int = 0,
    **_: object,
) -> tuple[nn.Module, nn.Module]:
    """A convolutional pair for images given as flat rows of channels x height x width."""
    shape = _image_shape(image_shape, n_features)
    chans = _channels(channels)
    encoder = ConvEncoder(shape, chans, encoder_outputs, activation, condition_dim)
    decoder = ConvDecoder(latent_dim + condition_dim, shape, chans, decoder_outputs, activation)
    return encoder, decoder


ARCHITECTURES: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {
    "mlp": build_mlp,
    "linear": build_linear,
    "conv": build_conv,
}


def build_networks(architecture: str, **options) -> tuple[nn.Module, nn.Module]:
    """Build an (encoder, decoder) pair from a registered architecture name."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(
            f"Unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}."
        )
    return ARCHITECTURES[architecture](**options)


class InpaintingDecoder(nn.Module):
    """For a model that is given some pixels (arbitrary conditioning): z, broadcast over the
    image, beside the condition's two images (the given values, 0 elsewhere, and their mask),
    through 3x3 convolutions that keep the image's size: (N, L + 2 C H W) -> (N, heads C H W)."""

    def __init__(self, latent_dim, image_shape, channels, outputs, activation_name):
        super().__init__()
        c, h, w = image_shape
        self.latent_dim, self.maps = latent_dim, (2 * c, h, w)
        sizes = [latent_dim + 2 * c, *channels, outputs // (h * w)]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            if i > 0:
                layers.append(activation(activation_name))
            layers.append(nn.Conv2d(n_in, n_out, 3, padding=1))
        self.net = initialise(nn.Sequential(*layers), activation_name)

    def forward(self, zc):
        z, condition = zc[:, : self.latent_dim], zc[:, self.latent_dim :]
        _, h, w = self.maps
        spread = z[:, :, None, None].expand(-1, -1, h, w)
        maps = torch.cat([spread, condition.reshape(-1, *self.maps)], dim=1)
        return self.net(maps).flatten(1)


def build_inpainting(
    n_features: int,
    latent_dim: int,
    encoder_outputs: int,
    decoder_outputs: int,
    image_shape: Sequence[int] | None = None,
    channels: Sequence[int] = (32, 64),
    activation: str = "relu",
    **_: object,
) -> tuple[nn.Module, nn.Module]:
    """A convolutional pair for arbitrary conditioning on images: the encoder reads a row's
    targets, given values and mask as three images (stride-2 convolutions, as ``conv``); the
    decoder is an ``InpaintingDecoder``."""
    c, h, w = _image_shape(image_shape, n_features)
    chans = _channels(channels)
    encoder = ConvEncoder((3 * c, h, w), chans, encoder_outputs, activation)
    decoder = InpaintingDecoder(latent_dim, (c, h, w), chans, decoder_outputs, activation)
    return encoder, decoder
