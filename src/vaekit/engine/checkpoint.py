"""Training checkpoints: everything a fit needs to go on exactly where it stopped.

A checkpoint folder holds ``state.safetensors`` (the weights, the optimiser's moments, the best
weights so far, the average of the weights when one is kept, the random generators' states: the
run's and every process's noise) and
``state.json`` (epoch, seconds of training, history, early-stopping counters, the number of
processes, and a fingerprint of the parameters and data it belongs to;
the schedules are functions of the epoch and the seconds, so they need no state of their own).
Each file is written atomically, tensors first, and ``state.json`` carries the tensors' SHA256,
so a kill at any moment leaves the previous checkpoint or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ..exceptions import ConfigError, ModelFileError
from ..io import write_atomic

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
CHECKPOINT_VERSION = 3


@dataclass
class TrainingState:
    """Where a fit stands after ``epoch`` complete epochs and ``seconds`` of training."""

    epoch: int
    seconds: float
    finished: bool  # early stopping fired, or the budget is spent
    history: list[dict]
    model: dict[str, torch.Tensor]
    optimizer: dict
    generator: torch.Tensor
    noise: list[torch.Tensor]  # the state of each process's noise generator, in rank order
    streak: torch.Tensor
    best_loss: float
    since_best: int
    best_model: dict[str, torch.Tensor] | None
    best_epoch: int | None = None  # the epoch whose weights best_model holds
    average: dict[str, torch.Tensor] = field(default_factory=dict)  # WeightAverage.state()

    @classmethod
    def fresh(cls) -> TrainingState:
        """The state before the first epoch."""
        return cls(
            epoch=0,
            seconds=0.0,
            finished=False,
            history=[],
            model={},
            optimizer={},
            generator=torch.zeros(0, dtype=torch.uint8),
            noise=[],
            streak=torch.zeros(()),
            best_loss=math.inf,
            since_best=0,
            best_model=None,
        )

    def capture(self, module, optimizer, generator, noise: list[torch.Tensor]) -> None:
        """Take the module's weights, the optimiser's state, the run's generator's state and
        ``noise``, the states of every process's noise generator in rank order."""
        self.model = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        self.optimizer = optimizer.state_dict()
        self.generator = generator.get_state()
        self.noise = [state.cpu() for state in noise]

    def restore(self, module, optimizer, generator, noise, rank: int) -> None:
        """Put the weights, the optimiser's state and the generators' states back in place.

        ``noise`` is process ``rank``'s noise generator; it is left as it is when the
        checkpoint has no state for that rank, or one from another kind of device (a run
        resumed with more processes, or on another device: correct, not bit-identical).
        """
        try:
            module.load_state_dict(self.model)
            optimizer.load_state_dict(self.optimizer)
            generator.set_state(self.generator)
        except (RuntimeError, ValueError, KeyError) as err:
            raise ModelFileError(f"The checkpoint does not fit this model ({err}).") from None
        if rank < len(self.noise):
            # a CUDA generator's state does not fit a CPU generator, nor the reverse
            with contextlib.suppress(RuntimeError):
                noise.set_state(self.noise[rank])


class Checkpoint:
    """A folder that a fit saves its ``TrainingState`` to every ``every`` epochs and at the end.

    ``fingerprint`` names the parameters and data the state belongs to; loading a checkpoint
    written with another fingerprint is refused, so a resumed fit is the fit that was started.
    """

    def __init__(self, folder: str | os.PathLike, fingerprint: str, every: int = 1):
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ConfigError("checkpoint_every must be a positive integer.")
        self.folder, self.fingerprint, self.every = Path(folder), fingerprint, every

    def due(self, epoch: int) -> bool:
        """True when the state after ``epoch`` complete epochs should be saved."""
        return epoch % self.every == 0

    def save(self, state: TrainingState) -> None:
        """Write the state atomically: tensors first, then the JSON that vouches for them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v for k, v in state.model.items()}
        tensors |= {f"best.{k}": v for k, v in (state.best_model or {}).items()}
        tensors |= {f"average.{k}": v for k, v in state.average.items()}
        for index, values in state.optimizer["state"].items():
            tensors |= {f"optimizer.{index}.{k}": v.cpu() for k, v in values.items()}
        tensors |= {"generator": state.generator, "streak": state.streak.cpu()}
        tensors |= {f"noise.{rank}": noise for rank, noise in enumerate(state.noise)}
        data = save_safetensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        write_atomic(self.folder / STATE_TENSORS, data)
        meta = {
            "checkpoint_version": CHECKPOINT_VERSION,
            "fingerprint": self.fingerprint,
            "tensors_sha256": hashlib.sha256(data).hexdigest(),
            "epoch": state.epoch,
            "seconds": state.seconds,
            "processes": len(state.noise),
            "finished": state.finished,
            "history": state.history,
            "optimizer_groups": state.optimizer["param_groups"],
            "best_loss": None if math.isinf(state.best_loss) else state.best_loss,
            "since_best": state.since_best,
            "has_best": state.best_model is not None,
            "best_epoch": state.best_epoch,
        }
        write_atomic(self.folder / STATE_JSON, (json.dumps(meta) + "\n").encode())

    def load(self) -> TrainingState | None:
        """The saved state, or None when the folder holds none yet."""
        path = self.folder / STATE_JSON
        if not path.is_file():
            return None
        try:
            meta = json.loads(path.read_text())
            if meta.get("checkpoint_version") != CHECKPOINT_VERSION:
                raise KeyError
            data = (self.folder / STATE_TENSORS).read_bytes()
            if hashlib.sha256(data).hexdigest() != meta["tensors_sha256"]:
                raise ValueError
            state = _state_from(meta, load_safetensors(data))
        except (OSError, KeyError, TypeError, ValueError, AttributeError, SafetensorError):
            raise ModelFileError(
                f"The checkpoint in {self.folder} is unreadable or corrupt; delete the folder to "
                "start training afresh."
            ) from None
        if meta["fingerprint"] != self.fingerprint:
            raise ConfigError(
                f"The checkpoint in {self.folder} belongs to a fit with other parameters or data; "
                "delete it or choose another checkpoint folder."
            )
        return state


def _state_from(meta: dict, tensors: dict[str, torch.Tensor]) -> TrainingState:
    def group(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    moments: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in group("optimizer.").items():
        index, name = key.split(".", 1)
        moments.setdefault(int(index), {})[name] = value
    best_loss = meta["best_loss"]
    return TrainingState(
        epoch=meta["epoch"],
        seconds=meta["seconds"],
        finished=meta["finished"],
        history=meta["history"],
        model=group("model."),
        optimizer={"state": moments, "param_groups": meta["optimizer_groups"]},
        generator=tensors["generator"],
        noise=[tensors[f"noise.{rank}"] for rank in range(meta["processes"])],
        streak=tensors["streak"],
        best_loss=math.inf if best_loss is None else best_loss,
        since_best=meta["since_best"],
        best_model=group("best.") if meta["has_best"] else None,
        best_epoch=meta.get("best_epoch"),
        average=group("average."),
    )


def fingerprint(params: dict, data: str) -> str:
    """A SHA256 naming estimator parameters (JSON-able) and the data's own fingerprint together."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=repr).encode())
    digest.update(data.encode())
    return digest.hexdigest()
