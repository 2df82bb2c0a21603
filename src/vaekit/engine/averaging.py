"""An exponential moving average of the weights, for the model a fit returns.

Each optimiser step moves the average toward the new weights: after step n,
``average = d_n * average + (1 - d_n) * weights`` with ``d_n = min(decay, (n - 1) / n)``, so the
first steps give the plain mean of the weights so far (the starting weights do not linger in a
short fit) and later steps an exponential average over about ``1 / (1 - decay)`` steps, which
averages out the noise of the recent steps. The optimiser still steps the raw weights, so
training itself does not change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class WeightAverage:
    """The running average of ``params`` (a model's trainable parameters, in a fixed order)."""

    def __init__(self, params: list[nn.Parameter], decay: float):
        self.params, self.decay = params, decay
        self.tensors = [p.detach().clone() for p in params]
        self.count = 0

    @torch.no_grad()
    def update(self) -> None:
        """Take the parameters after one more step into the average."""
        self.count += 1
        weight = 1.0 - min(self.decay, (self.count - 1) / self.count)
        for average, param in zip(self.tensors, self.params, strict=True):
            average.lerp_(param.detach(), weight)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The averaged weights in the parameters for the block; the raw ones back after it."""
        raw = [p.detach().clone() for p in self.params]
        self.copy_to_params()
        try:
            yield
        finally:
            with torch.no_grad():
                for param, weights in zip(self.params, raw, strict=True):
                    param.copy_(weights)

    @torch.no_grad()
    def copy_to_params(self) -> None:
        """Leave the averaged weights in the parameters (at the end of a fit)."""
        for param, average in zip(self.params, self.tensors, strict=True):
            param.copy_(average)

    def state(self) -> dict[str, torch.Tensor]:
        """The average's tensors and its step count, for a checkpoint."""
        tensors = {str(i): t.detach().cpu() for i, t in enumerate(self.tensors)}
        return tensors | {"count": torch.tensor(self.count, dtype=torch.int64)}

    @torch.no_grad()
    def restore(self, state: dict[str, torch.Tensor]) -> None:
        """Take back what ``state`` gave; ValueError when it does not fit these parameters."""
        if set(state) != {str(i) for i in range(len(self.tensors))} | {"count"}:
            raise ValueError("the weight average has other parameters")
        for i, average in enumerate(self.tensors):
            if state[str(i)].shape != average.shape:
                raise ValueError(f"the weight average's tensor {i} has another shape")
            average.copy_(state[str(i)])
        self.count = int(state["count"])
