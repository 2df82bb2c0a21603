"""One training loop for every model: in-memory batches, Adam, validation, early stopping.

The data is one tensor, batched by shuffled indices. Metrics are accumulated as tensors and read
once per epoch. A non-finite loss or gradient skips the step; too many in a row stop training.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import Checkpoint, TrainingState
from .exceptions import ModelFileError, TrainingError
from .model import LossTerms

#: (batch, epoch, generator) -> the batch's LossTerms, with gradients.
TrainLoss = Callable[[torch.Tensor, int, torch.Generator], LossTerms]
#: batch -> LossTerms, evaluated without gradients on validation data.
ValidationLoss = Callable[[torch.Tensor], LossTerms]


@dataclass
class TrainingOptions:
    """How to train: the estimator parameters that every model shares."""

    batch_size: int = 128
    learning_rate: float = 1e-3
    learning_rate_schedule: str = "constant"  # or "cosine": decays to 0 over max_epochs
    max_epochs: int = 100
    validation_fraction: float = 0.1
    patience: int | None = 10
    clip_grad_norm: float | None = None
    max_nonfinite_steps: int = 10
    precision: str = "fp32"  # or "bf16": CPU autocast of the forward pass
    min_epochs: int = 0  # early stopping is not checked before this many epochs (KL warm-up)
    verbose: bool = True


def split_validation(
    X: torch.Tensor, fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A random (train, validation) split; no validation set when it would be empty."""
    n_val = math.floor(fraction * X.shape[0])
    if n_val < 1 or n_val >= X.shape[0]:
        return X, None
    perm = torch.randperm(X.shape[0], generator=generator)
    return X[perm[n_val:]], X[perm[:n_val]]


@torch.no_grad()
def _validation_terms(
    loss_fn: ValidationLoss, X: torch.Tensor, batch_size: int
) -> dict[str, float]:
    totals = torch.zeros(3)
    for start in range(0, X.shape[0], batch_size):
        x = X[start : start + batch_size]
        t = loss_fn(x)
        totals += torch.stack([t.loss, t.reconstruction, t.regularizer]).detach() * x.shape[0]
    loss, rec, reg = (totals / X.shape[0]).tolist()
    return {"loss": loss, "reconstruction": rec, "regularizer": reg}


def make_optimizer(module: nn.Module, learning_rate: float) -> torch.optim.Adam:
    """Adam, fused into one kernel per step where PyTorch supports it (CPU and CUDA floats)."""
    params = [p for p in module.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=learning_rate, fused=True)
    except RuntimeError:
        return torch.optim.Adam(params, lr=learning_rate)


def _step(optimizer: torch.optim.Adam, bad: torch.Tensor) -> None:
    """Take the step unless ``bad``; the fused kernel decides without a host synchronisation."""
    if optimizer.defaults.get("fused"):
        optimizer.found_inf = bad.float()  # the flag GradScaler uses: fused Adam skips the step
        optimizer.step()
    elif not bool(bad):
        optimizer.step()


def train_epoch(
    module: nn.Module,
    optimizer: torch.optim.Adam,
    X: torch.Tensor,
    train_loss: TrainLoss,
    epoch: int,
    options: TrainingOptions,
    generator: torch.Generator,
    streak: torch.Tensor,
) -> dict[str, float]:
    """One pass over shuffled batches of X. Metrics stay tensors until the end of the epoch.

    ``streak`` counts the non-finite steps in a row, across epochs; it is updated in place.
    """
    module.train()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    totals, used, skipped = torch.zeros(3), torch.zeros(()), torch.zeros(())
    longest = streak.clone()
    bf16 = options.precision == "bf16"
    perm = torch.randperm(X.shape[0], generator=generator)
    for batch in perm.split(options.batch_size):
        x = X[batch]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            terms = train_loss(x, epoch, generator)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        if options.clip_grad_norm is None:
            norm = nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        else:
            norm = nn.utils.clip_grad_norm_(params, options.clip_grad_norm)
        bad = ~(torch.isfinite(terms.loss) & torch.isfinite(norm))
        _step(optimizer, bad)
        stacked = torch.stack([terms.loss, terms.reconstruction, terms.regularizer]).detach()
        totals += torch.where(bad, 0.0, stacked.float() * len(batch))
        used += (~bad) * len(batch)
        skipped += bad
        streak.add_(1).mul_(bad)
        longest = torch.maximum(longest, streak)
    if longest.item() >= options.max_nonfinite_steps:
        raise TrainingError(
            f"The loss or its gradient was not finite for {int(longest.item())} steps in a row "
            f"(epoch {epoch + 1}); try a lower learning_rate, clip_grad_norm, or another "
            "likelihood."
        )
    loss, rec, reg = (totals / used.clamp(min=1)).tolist()
    return {"loss": loss, "reconstruction": rec, "regularizer": reg, "skipped_steps": int(skipped)}


def train(
    module: nn.Module,
    X: torch.Tensor,
    train_loss: TrainLoss,
    validation_loss: ValidationLoss,
    options: TrainingOptions,
    generator: torch.Generator,
    regularizer_name: str = "regularizer",
    checkpoint: Checkpoint | None = None,
) -> list[dict[str, float]]:
    """Fit ``module`` on the rows of X and return the per-epoch history.

    With ``patience`` set, training stops after that many epochs without a better validation
    loss (training loss when there is no validation split) and the best weights are restored.
    Denormal floats are flushed to zero while training (they slow late epochs by 20-30%).
    With a ``checkpoint``, the whole training state is saved every ``checkpoint.every`` epochs
    and at the end, and a fit whose checkpoint holds a state continues from it, bit for bit.
    """
    X_train, X_val = split_validation(X, options.validation_fraction, generator)
    optimizer = make_optimizer(module, options.learning_rate)
    schedule = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=options.max_epochs)
        if options.learning_rate_schedule == "cosine"
        else None
    )
    state = checkpoint.load() if checkpoint is not None else None
    if state is None:
        state = TrainingState(
            epoch=0,
            finished=False,
            history=[],
            model={},
            optimizer={},
            schedule=None,
            generator=generator.get_state(),
            streak=torch.zeros(()),
            best_loss=math.inf,
            since_best=0,
            best_model=None,
        )
    else:
        _restore(state, module, optimizer, schedule, generator)

    def save(finished: bool) -> None:
        state.finished = finished
        state.model = module.state_dict()
        state.optimizer = optimizer.state_dict()
        state.schedule = schedule.state_dict() if schedule is not None else None
        state.generator = generator.get_state()
        checkpoint.save(state)

    epochs = tqdm(
        range(state.epoch, options.max_epochs if not state.finished else state.epoch),
        desc="training",
        unit="epoch",
        initial=state.epoch,
        total=options.max_epochs,
        disable=not options.verbose,
    )
    torch.set_flush_denormal(True)
    try:
        for epoch in epochs:
            start = time.perf_counter()
            record = {"epoch": epoch + 1}
            last_good = copy.deepcopy(module.state_dict())
            try:
                record |= train_epoch(
                    module, optimizer, X_train, train_loss, epoch, options, generator, state.streak
                )
            except TrainingError as err:
                module.load_state_dict(last_good)
                raise TrainingError(f"{err} The weights of epoch {epoch} were restored.") from None
            if schedule is not None:
                schedule.step()
            if X_val is not None:
                module.eval()
                val = _validation_terms(validation_loss, X_val, max(options.batch_size, 1024))
                record |= {f"val_{key}": value for key, value in val.items()}
            record = {k.replace("regularizer", regularizer_name): v for k, v in record.items()}
            record["seconds"] = time.perf_counter() - start
            state.history.append(record)
            state.epoch = epoch + 1
            val_text = f"{record.get('val_loss', math.nan):.3f}"
            epochs.set_postfix(loss=f"{record['loss']:.3f}", val=val_text, refresh=False)
            stop = _early_stopping(state, record, module, options)
            last = stop or state.epoch == options.max_epochs
            if checkpoint is not None and (last or checkpoint.due(state.epoch)):
                save(finished=last)
            if stop:
                break
    finally:
        torch.set_flush_denormal(False)
        epochs.close()
    if state.best_model is not None:
        module.load_state_dict(state.best_model)
    module.eval()
    return state.history


def _early_stopping(
    state: TrainingState, record: dict, module: nn.Module, options: TrainingOptions
) -> bool:
    """Track the best monitored loss and its weights; True when patience has run out."""
    if options.patience is None or state.epoch < options.min_epochs:
        return False
    monitored = record.get("val_loss", record["loss"])
    if monitored < state.best_loss:
        state.best_loss, state.since_best = monitored, 0
        state.best_model = copy.deepcopy(module.state_dict())
        return False
    state.since_best += 1
    return state.since_best >= options.patience


def _restore(state: TrainingState, module, optimizer, schedule, generator) -> None:
    """Put a checkpoint's weights, optimiser, schedule and generator back in place."""
    try:
        module.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
        if (schedule is None) != (state.schedule is None):
            raise ValueError("the learning-rate schedule differs")
        if schedule is not None:
            schedule.load_state_dict(state.schedule)
        generator.set_state(state.generator)
    except (RuntimeError, ValueError, KeyError) as err:
        raise ModelFileError(f"The checkpoint does not fit this model ({err}).") from None
