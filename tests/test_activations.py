"""vaekit's tanh: the sigmoid form without a gradient in float32, torch.tanh everywhere else."""

import warnings

import numpy as np
import pytest
import torch

import vaekit
from vaekit.model.nets import Tanh, activation


@pytest.fixture
def inputs():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(20_000, generator=generator) * 4
    return torch.cat([x, torch.tensor([0.0, 1e-30, -1e-8, 9.0, -20.0, 100.0])])


def test_the_sigmoid_form_is_within_2e_7_of_tanh(inputs):
    with torch.no_grad():
        fast = Tanh()(inputs)
    exact = np.tanh(inputs.double().numpy())
    assert np.abs(fast.double().numpy() - exact).max() <= 2e-7
    assert not torch.equal(fast, torch.tanh(inputs))  # it is the other form, not tanh itself
    assert fast.abs().max() <= 1.0


def test_training_and_float64_keep_torch_tanh(inputs):
    trained = inputs.clone().requires_grad_()
    out = Tanh()(trained)
    assert torch.equal(out, torch.tanh(inputs))
    out.sum().backward()
    torch.testing.assert_close(trained.grad, 1 - torch.tanh(inputs) ** 2)
    with torch.no_grad():
        assert torch.equal(Tanh()(inputs.double()), torch.tanh(inputs.double()))


def test_the_registry_builds_it_and_it_is_still_a_tanh():
    assert isinstance(activation("tanh"), Tanh)
    assert isinstance(activation("tanh"), torch.nn.Tanh)


def test_an_exported_tanh_network_has_tanh_nodes(digits, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch: the convergence warning is expected
        vae = vaekit.VAE(
            2, hidden_sizes=(16,), activation="tanh", max_epochs=1, verbose=False, random_state=0
        ).fit(digits[0][:100])
    folder = vaekit.export_onnx(vae, tmp_path / "onnx")
    for part in ("encoder", "decoder"):
        ops = {node.op_type for node in onnx.load(folder / f"{part}.onnx").graph.node}
        assert "Tanh" in ops and "Sigmoid" not in ops
