"""How vaekit's own networks start: Glorot's uniform for tanh, PyTorch's default for ReLU."""

import math

import pytest
import torch
from torch import nn

import vaekit
from vaekit.model.nets import build_conv, mlp

TANH_GAIN = 5 / 3


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear or convolution weight, in PyTorch's convention."""
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def weighted_layers(net: nn.Module) -> list[nn.Module]:
    kinds = nn.Linear | nn.Conv2d | nn.ConvTranspose2d
    return [m for m in net.modules() if isinstance(m, kinds)]


def assert_glorot(net: nn.Module) -> None:
    for layer in weighted_layers(net):
        fan_in, fan_out = fans(layer.weight)
        expected = TANH_GAIN**2 * 2 / (fan_in + fan_out)
        assert layer.weight.var().item() == pytest.approx(expected, rel=0.1)
        bound = TANH_GAIN * math.sqrt(6 / (fan_in + fan_out))
        assert layer.weight.abs().max().item() <= bound
        assert torch.count_nonzero(layer.bias) == 0


def test_a_tanh_mlp_starts_as_glorot_and_a_relu_one_as_pytorch_does():
    torch.manual_seed(0)
    assert_glorot(mlp([784, 400, 300, 100], "tanh"))
    for layer in weighted_layers(mlp([784, 400, 300, 100], "relu")):
        fan_in, _ = fans(layer.weight)
        # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
        assert layer.weight.var().item() == pytest.approx(1 / (3 * fan_in), rel=0.1)
        assert torch.count_nonzero(layer.bias) == len(layer.bias)


def test_tanh_convolutions_start_as_glorot_too():
    torch.manual_seed(0)
    encoder, decoder = build_conv(784, 8, 16, 784, channels=(32, 64), activation="tanh")
    assert_glorot(encoder)
    assert_glorot(decoder)


def test_every_network_of_a_tanh_vae_starts_as_glorot(digits):
    X = digits[0][:200] / 16
    vae = vaekit.VAE(
        4,
        hidden_sizes=(128, 128),
        upper_layers=(3,),
        upper_hidden_sizes=(64,),
        activation="tanh",
        max_epochs=1,
        random_state=0,
        verbose=False,
    )
    module = vae._build_module(X.shape[1])
    assert_glorot(module.encoder)
    assert_glorot(module.decoder)
    assert_glorot(module.prior)  # the second layer's inference and generative networks
