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

from .exceptions import TrainingError
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


def train(
    module: nn.Module,
    X: torch.Tensor,
    train_loss: TrainLoss,
    validation_loss: ValidationLoss,
    options: TrainingOptions,
    generator: torch.Generator,
    regularizer_name: str = "regularizer",
) -> list[dict[str, float]]:
    """Fit ``module`` on the rows of X and return the per-epoch history.

    With ``patience`` set, training stops after that many epochs without a better validation
    loss (training loss when there is no validation split) and the best weights are restored.
    """
    X_train, X_val = split_validation(X, options.validation_fraction, generator)
    optimizer = torch.optim.Adam(module.parameters(), lr=options.learning_rate)
    schedule = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=options.max_epochs)
        if options.learning_rate_schedule == "cosine"
        else None
    )
    n = X_train.shape[0]
    history: list[dict[str, float]] = []
    best_loss, best_state, since_best = math.inf, None, 0
    nonfinite_in_a_row = 0
    epochs = tqdm(
        range(options.max_epochs), desc="training", unit="epoch", disable=not options.verbose
    )
    for epoch in epochs:
        start = time.perf_counter()
        module.train()
        totals = torch.zeros(3)
        n_used, n_skipped = 0, 0
        perm = torch.randperm(n, generator=generator)
        for batch_start in range(0, n, options.batch_size):
            x = X_train[perm[batch_start : batch_start + options.batch_size]]
            terms = train_loss(x, epoch, generator)
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            max_norm = options.clip_grad_norm or math.inf
            grad_norm = nn.utils.clip_grad_norm_(module.parameters(), max_norm)
            if not bool(torch.isfinite(terms.loss) & torch.isfinite(grad_norm)):
                n_skipped += 1
                nonfinite_in_a_row += 1
                if nonfinite_in_a_row >= options.max_nonfinite_steps:
                    raise TrainingError(
                        f"The loss or its gradient was not finite for {nonfinite_in_a_row} "
                        f"steps in a row (epoch {epoch + 1}); try a lower learning_rate, "
                        "clip_grad_norm, or another likelihood."
                    )
                continue
            nonfinite_in_a_row = 0
            optimizer.step()
            stacked = torch.stack([terms.loss, terms.reconstruction, terms.regularizer])
            totals += stacked.detach() * x.shape[0]
            n_used += x.shape[0]
        if schedule is not None:
            schedule.step()
        loss, rec, reg = (totals / max(n_used, 1)).tolist()
        record = {
            "epoch": epoch + 1,
            "loss": loss,
            "reconstruction": rec,
            regularizer_name: reg,
            "skipped_steps": n_skipped,
        }
        if X_val is not None:
            module.eval()
            val = _validation_terms(validation_loss, X_val, max(options.batch_size, 1024))
            record.update({f"val_{key}": value for key, value in val.items()})
            record[f"val_{regularizer_name}"] = record.pop("val_regularizer")
        record["seconds"] = time.perf_counter() - start
        history.append(record)
        monitored = record.get("val_loss", loss)
        val_text = f"{record.get('val_loss', math.nan):.3f}"
        epochs.set_postfix(loss=f"{loss:.3f}", val=val_text, refresh=False)
        if options.patience is None or epoch + 1 < options.min_epochs:
            continue
        if monitored < best_loss:
            best_loss, since_best = monitored, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            since_best += 1
            if since_best >= options.patience:
                break
    epochs.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history
