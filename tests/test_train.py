"""The training loop on its own: early stopping, best weights, skipped steps."""

import math

import pytest
import torch
from torch import nn
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from vaekit.exceptions import TrainingError
from vaekit.model import LossTerms
from vaekit.train import TrainingOptions, split_validation, train


def _regression_losses(model):
    """A linear model fit to noisy targets kept in the last column of X."""

    def loss(x, *_):
        pred = model(x[:, :-1]).squeeze(-1)
        mse = ((pred - x[:, -1]) ** 2).mean()
        return LossTerms(mse, mse, torch.zeros(()))

    return loss


def test_early_stopping_restores_the_best_validation_weights():
    torch.manual_seed(0)
    X = torch.randn(60, 41)
    X[:, -1] = X[:, 0] + 0.5 * torch.randn(60)  # 40 features, 54 rows: it will overfit
    model = nn.Linear(40, 1)
    loss = _regression_losses(model)
    options = TrainingOptions(
        batch_size=8, learning_rate=0.05, max_epochs=300, patience=5, verbose=False
    )
    history = train(model, X, loss, loss, options, torch.Generator().manual_seed(1))
    assert len(history) < 300
    _, X_val = split_validation(X, 0.1, torch.Generator().manual_seed(1))
    best = min(record["val_loss"] for record in history)
    with torch.no_grad():
        assert loss(X_val).loss.item() == best
    assert history[-1]["val_loss"] > best  # it stopped after getting worse, then went back


def test_without_patience_it_trains_every_epoch_and_keeps_the_last_weights():
    model = nn.Linear(3, 1)
    loss = _regression_losses(model)
    options = TrainingOptions(max_epochs=7, patience=None, verbose=False)
    history = train(model, torch.randn(30, 4), loss, loss, options, torch.Generator())
    assert [r["epoch"] for r in history] == list(range(1, 8))
    assert {"loss", "reconstruction", "regularizer", "val_loss", "seconds"} <= set(history[0])


def test_non_finite_steps_are_skipped_and_counted():
    model = nn.Linear(3, 1)
    calls = {"n": 0}

    def sometimes_nan(x, *_):
        calls["n"] += 1
        scale = math.nan if calls["n"] % 3 == 0 else 1.0
        out = model(x[:, :-1]).pow(2).mean() * scale
        return LossTerms(out, out, torch.zeros(()))

    options = TrainingOptions(batch_size=10, max_epochs=2, patience=None, verbose=False)
    validation = _regression_losses(model)
    history = train(
        model, torch.randn(60, 4), sometimes_nan, validation, options, torch.Generator()
    )
    assert sum(r["skipped_steps"] for r in history) == 4  # 2 x 6 steps, every third is NaN
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_split_is_empty_when_too_small():
    X = torch.randn(5, 2)
    assert split_validation(X, 0.1, torch.Generator())[1] is None
    train_part, val = split_validation(torch.randn(100, 2), 0.2, torch.Generator())
    assert train_part.shape[0] == 80 and val.shape[0] == 20


def test_gradients_are_clipped_before_each_step():
    model = nn.Linear(3, 1)

    def steep(x, *_):
        out = 1000.0 * model(x[:, :-1]).sum()
        return LossTerms(out, out, torch.zeros(()))

    norms = []

    def record(optimizer, *_):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

    handle = register_optimizer_step_pre_hook(record)
    try:
        options = TrainingOptions(max_epochs=2, clip_grad_norm=0.5, patience=None, verbose=False)
        train(model, torch.randn(40, 4), steep, steep, options, torch.Generator())
    finally:
        handle.remove()
    assert norms and max(norms) <= 0.5 + 1e-5


def test_the_progress_bar_shows_only_when_verbose(capsys):
    model = nn.Linear(3, 1)
    loss = _regression_losses(model)
    for verbose in (False, True):
        options = TrainingOptions(max_epochs=2, patience=None, verbose=verbose)
        train(model, torch.randn(30, 4), loss, loss, options, torch.Generator())
        shown = "training" in capsys.readouterr().err
        assert shown == verbose


def test_cosine_schedule_anneals_the_learning_rate_to_zero():
    model = nn.Linear(3, 1)
    loss = _regression_losses(model)
    rates = []

    def record(optimizer, *_):
        rates.append(optimizer.param_groups[0]["lr"])

    handle = register_optimizer_step_pre_hook(record)
    try:
        options = TrainingOptions(
            batch_size=100,
            max_epochs=4,
            learning_rate=0.1,
            learning_rate_schedule="cosine",
            patience=None,
            verbose=False,
        )
        train(model, torch.randn(50, 4), loss, loss, options, torch.Generator())
    finally:
        handle.remove()
    expected = [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert rates == pytest.approx(expected)


def test_a_run_of_non_finite_steps_stops_training_and_restores_the_last_good_weights():
    model = nn.Linear(3, 1)
    calls = {"n": 0}

    def breaks_in_epoch_three(x, *_):
        calls["n"] += 1
        scale = math.nan if calls["n"] > 12 else 1.0  # 6 steps per epoch: epoch 3 is all NaN
        out = model(x[:, :-1]).pow(2).mean() * scale
        return LossTerms(out, out, torch.zeros(()))

    snapshots = []

    def record(optimizer, *_):
        if calls["n"] == 12:
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})

    handle = register_optimizer_step_post_hook(record)
    options = TrainingOptions(
        batch_size=10, max_epochs=5, patience=None, max_nonfinite_steps=6, verbose=False
    )
    try:
        with pytest.raises(TrainingError, match="restored"):
            train(
                model,
                torch.randn(60, 4),
                breaks_in_epoch_three,
                _regression_losses(model),
                options,
                torch.Generator(),
            )
    finally:
        handle.remove()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in snapshots[-1].items())
