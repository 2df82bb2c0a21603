"""The training loop on its own: any module whose forward returns its loss terms."""

import itertools
import math
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from vaekit.engine.loop import TrainingOptions, split_validation, train
from vaekit.engine.schedules import Warmup
from vaekit.engine.sources import ArraySource
from vaekit.exceptions import TrainingError


class Regression(nn.Module):
    """A linear model fit to noisy targets kept in the last column of x; ``scale`` multiplies
    the loss of each call (NaN to make a step non-finite), ``weight`` is an annealable factor."""

    def __init__(self, n_features: int, scale=lambda call: 1.0):
        super().__init__()
        self.linear = nn.Linear(n_features, 1)
        self.scale, self.calls, self.weight = scale, 0, 1.0

    def forward(self, x, generator):
        self.calls += self.training
        pred = self.linear(x[:, :-1]).squeeze(-1)
        mse = ((pred - x[:, -1]) ** 2).mean()
        loss = mse * (self.scale(self.calls) if self.training else 1.0)
        return {"loss": loss, "mse": mse, "weight": torch.tensor(float(self.weight))}


def _source(X: torch.Tensor) -> ArraySource:
    return ArraySource(X.numpy())


def test_early_stopping_restores_the_best_validation_weights():
    torch.manual_seed(0)
    X = torch.randn(60, 41)
    X[:, -1] = X[:, 0] + 0.5 * torch.randn(60)  # 40 features, 54 rows: it will overfit
    model = Regression(40)
    options = TrainingOptions(
        batch_size=8, learning_rate=0.05, max_epochs=300, patience=5, verbose=False
    )
    result = train(model, _source(X), options, torch.Generator().manual_seed(1))
    history = result.history
    assert len(history) < 300 and result.stopped_by == "early_stopping"
    assert result.best_epoch == len(history) - 5  # patience 5: kept the epoch before the five
    _, val = split_validation(len(X), 0.1, torch.Generator().manual_seed(1))
    best = min(record["val_loss"] for record in history)
    with torch.no_grad():
        assert model.eval()(X[val], None)["loss"].item() == pytest.approx(best, rel=1e-6)
    assert history[-1]["val_loss"] > best  # it stopped after getting worse, then went back


def test_without_patience_it_trains_every_epoch_and_records_every_term_by_name():
    model = Regression(3)
    options = TrainingOptions(max_epochs=7, patience=None, verbose=False)
    history = train(model, _source(torch.randn(30, 4)), options, torch.Generator()).history
    assert [r["epoch"] for r in history] == list(range(1, 8))
    result = train(Regression(3), _source(torch.randn(30, 4)), options, torch.Generator())
    assert (result.stopped_by, result.best_epoch) == ("max_epochs", 7)
    assert {"loss", "mse", "weight", "val_loss", "val_mse", "seconds"} <= set(history[0])


def test_non_finite_steps_are_skipped_and_counted():
    model = Regression(3, scale=lambda call: math.nan if call % 3 == 0 else 1.0)
    options = TrainingOptions(batch_size=10, max_epochs=2, patience=None, verbose=False)
    history = train(model, _source(torch.randn(60, 4)), options, torch.Generator()).history
    assert sum(r["skipped_steps"] for r in history) == 4  # 2 x 6 steps, every third is NaN
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_split_is_empty_when_too_small():
    assert split_validation(5, 0.1, torch.Generator())[1] is None
    train_rows, val = split_validation(100, 0.2, torch.Generator())
    assert len(train_rows) == 80 and len(val) == 20
    assert sorted(torch.cat([train_rows, val]).tolist()) == list(range(100))


def test_gradients_are_clipped_before_each_step():
    model = Regression(3, scale=lambda call: 1000.0)
    norms = []

    def record(optimizer, *_):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

    handle = register_optimizer_step_pre_hook(record)
    try:
        options = TrainingOptions(max_epochs=2, clip_grad_norm=0.5, patience=None, verbose=False)
        train(model, _source(torch.randn(40, 4)), options, torch.Generator())
    finally:
        handle.remove()
    assert norms and max(norms) <= 0.5 + 1e-5


def test_the_progress_bar_shows_only_when_verbose(capsys):
    for verbose in (False, True):
        options = TrainingOptions(max_epochs=2, patience=None, verbose=verbose)
        train(Regression(3), _source(torch.randn(30, 4)), options, torch.Generator())
        shown = "training" in capsys.readouterr().err
        assert shown == verbose


def _rates_and_weights(options, n_rows=50):
    model = Regression(3)
    rates, weights = [], []

    def record(optimizer, *_):
        rates.append(optimizer.param_groups[0]["lr"])
        weights.append(model.weight)

    handle = register_optimizer_step_pre_hook(record)
    try:
        history = train(model, _source(torch.randn(n_rows, 4)), options, torch.Generator()).history
    finally:
        handle.remove()
    return rates, weights, history


def test_cosine_schedule_anneals_the_learning_rate_at_every_step():
    options = TrainingOptions(
        batch_size=10,
        max_epochs=4,
        learning_rate=0.1,
        learning_rate_schedule="cosine",
        validation_fraction=0,
        patience=None,
        verbose=False,
    )
    rates, _, _ = _rates_and_weights(options)
    steps = [epoch + i / 5 for epoch in range(4) for i in range(5)]  # 5 batches per epoch
    assert rates == pytest.approx([0.1 * (1 + math.cos(math.pi * s / 4)) / 2 for s in steps])


def test_a_warmup_moves_its_attribute_per_step_and_holds_early_stopping_until_done():
    options = TrainingOptions(
        batch_size=10,
        max_epochs=6,
        validation_fraction=0,
        patience=1,
        annealed={"weight": Warmup(2.0, 3, "epochs")},
        verbose=False,
    )
    _, weights, history = _rates_and_weights(options)
    steps = [epoch + i / 5 for epoch in range(len(history)) for i in range(5)]
    assert weights == pytest.approx([2.0 * min(1.0, s / 3) for s in steps])
    assert len(history) >= 3  # patience 1 could not stop it during the warm-up
    assert history[0]["weight"] == pytest.approx(np.mean(weights[:5]), rel=1e-6)


def test_a_time_budget_ends_training_and_drives_the_cosine(monkeypatch):
    clock = {"now": 0.0}

    def fake_perf_counter():
        clock["now"] += 0.01  # every reading of the clock is 10 ms later
        return clock["now"]

    monkeypatch.setattr(time, "perf_counter", fake_perf_counter)
    options = TrainingOptions(
        batch_size=10,
        max_epochs=None,
        max_time=1.0,
        learning_rate=0.1,
        learning_rate_schedule="cosine",
        validation_fraction=0,
        patience=None,
        verbose=False,
    )
    rates, _, history = _rates_and_weights(options)
    seconds = np.cumsum([r["seconds"] for r in history])
    assert seconds[-1] >= 1.0 > seconds[-2]  # it stopped at the end of the epoch that spent it
    assert rates[0] == pytest.approx(0.1, rel=1e-3) and rates[-1] < 0.1 * 0.05
    options.learning_rate_schedule = "constant"
    model = Regression(3)
    result = train(model, _source(torch.randn(50, 4)), options, torch.Generator())
    assert result.stopped_by == "max_time"
    assert all(a >= b for a, b in itertools.pairwise(rates))


def test_the_callback_sees_every_record():
    seen = []
    options = TrainingOptions(max_epochs=3, patience=None, callback=seen.append, verbose=False)
    history = train(Regression(3), _source(torch.randn(30, 4)), options, torch.Generator()).history
    assert seen == history


def test_a_run_of_non_finite_steps_stops_training_and_restores_the_last_good_weights():
    model = Regression(3, scale=lambda call: math.nan if call > 12 else 1.0)  # epoch 3 all NaN
    snapshots = []

    def record(optimizer, *_):
        if model.calls == 12:
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})

    handle = register_optimizer_step_post_hook(record)
    options = TrainingOptions(
        batch_size=10, max_epochs=5, patience=None, max_nonfinite_steps=6, verbose=False
    )
    try:
        with pytest.raises(TrainingError, match="restored"):
            train(model, _source(torch.randn(60, 4)), options, torch.Generator())
    finally:
        handle.remove()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in snapshots[-1].items())


def flat_weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def regression_rows() -> torch.Tensor:
    torch.manual_seed(0)
    X = torch.randn(64, 6)
    X[:, -1] = X[:, 0] - X[:, 1] + 0.3 * torch.randn(64)
    return X


def fit_recording_steps(ema_decay, seen=None, **options):
    """A Regression fit of ``regression_rows``; (model, history, the weights after every
    optimiser step), and the weights that the callback saw after each epoch appended to
    ``seen``."""
    X = regression_rows()
    torch.manual_seed(0)
    model = Regression(5)
    steps = []
    handle = register_optimizer_step_post_hook(lambda *_: steps.append(flat_weights(model)))
    callback = None if seen is None else lambda record: seen.append(flat_weights(model))
    settings = dict(batch_size=8, learning_rate=0.05, max_epochs=3, patience=None)
    options = TrainingOptions(
        **(settings | options), ema_decay=ema_decay, callback=callback, verbose=False
    )
    try:
        result = train(model, _source(X), options, torch.Generator().manual_seed(1))
    finally:
        handle.remove()
    return model, result.history, steps


def expected_average(steps: list[torch.Tensor], decay: float) -> torch.Tensor:
    """The average after ``steps``, by its recursion in float64."""
    average = steps[0].double()
    for n, weights in enumerate(steps[1:], start=2):
        d = min(decay, (n - 1) / n)
        average = d * average + (1 - d) * weights.double()
    return average


def test_the_weight_average_is_the_plain_mean_over_fewer_steps_than_its_span():
    model, _, steps = fit_recording_steps(0.99, validation_fraction=0)  # a span of 100 steps
    assert len(steps) == 24
    mean = torch.stack(steps).double().mean(0)
    torch.testing.assert_close(flat_weights(model).double(), mean, rtol=0, atol=1e-6)


def test_the_weight_average_is_exponential_past_its_span():
    decay = 0.8  # the plain mean over the first 5 steps, then an exponential average
    model, _, steps = fit_recording_steps(decay, validation_fraction=0)
    got = flat_weights(model).double()
    torch.testing.assert_close(got, expected_average(steps, decay), rtol=0, atol=1e-6)
    assert (got - steps[-1].double()).abs().max() > 1e-3  # not the last step's weights


def test_averaging_leaves_training_alone_and_is_what_validation_and_the_callback_see():
    plain_model, plain, plain_steps = fit_recording_steps(None)
    assert torch.equal(flat_weights(plain_model), plain_steps[-1])
    seen = []
    model, averaged, steps = fit_recording_steps(0.9, seen)
    assert [r["loss"] for r in averaged] == [r["loss"] for r in plain]  # the same raw steps
    assert all(torch.equal(a, b) for a, b in zip(steps, plain_steps, strict=True))
    assert all(a["val_loss"] != b["val_loss"] for a, b in zip(averaged, plain, strict=True))
    X = regression_rows()
    _, val = split_validation(len(X), 0.1, torch.Generator().manual_seed(1))
    per_epoch = len(steps) // 3
    for epoch, weights in enumerate(seen, start=1):  # the average after the epoch's steps
        expected = expected_average(steps[: epoch * per_epoch], 0.9)
        torch.testing.assert_close(weights.double(), expected, rtol=0, atol=1e-6)
        assert not torch.equal(weights, steps[epoch * per_epoch - 1])
        with torch.no_grad():  # validation scored these weights
            nn.utils.vector_to_parameters(weights, plain_model.parameters())
            val_loss = plain_model.eval()(X[val], None)["loss"].item()
        assert averaged[epoch - 1]["val_loss"] == pytest.approx(val_loss, rel=1e-6)
    assert torch.equal(seen[-1], flat_weights(model))  # and the fit returns it
