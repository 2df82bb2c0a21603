"""When a float32 estimate may take the faster elementwise forms (the Bernoulli sum by products,
tanh by the sigmoid): an importance-sampled log p(x) runs its decoder K times a row."""

from __future__ import annotations

import torch


def float32_estimate(values: torch.Tensor) -> bool:
    """True for float32 work without a gradient that is not being traced into a graph
    (``torch.compile``, ONNX export): training, float64 references and exported graphs keep the
    plain forms."""
    return (
        values.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
        and not torch.onnx.is_in_onnx_export()
    )
