"""The one training loop: a module, a data source and options in; the per-epoch history out.

The loop knows nothing of what a VAE is. It reads shuffled batches of rows from a source,
moves them to the device, calls ``module(x, generator)`` (whose forward returns the loss terms),
steps Adam, and records every term by its name. A non-finite loss or gradient skips the step;
too many in a row stop training. Schedules advance at every step, by epochs or by time. With
``ema_decay`` it keeps an average of the weights (``averaging``), which validation, early
stopping, the callback and the end of the fit see in place of the raw weights that Adam steps.

Under torchrun the module is wrapped in ``DistributedDataParallel`` and each process reads its
part of every batch (``distributed.epoch_batches``): ``batch_size`` is the batch of all the
processes together, so one process and N processes train the same recipe. The history, the
validation loss and so early stopping are sums over all processes; rank 0 alone writes the
checkpoint, which holds every process's noise generator.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..exceptions import ConfigError, ModelFileError, TrainingError, VaekitWarning
from .averaging import WeightAverage
from .checkpoint import Checkpoint, TrainingState
from .devices import autocast, gradient_scaler, to_device
from .distributed import (
    World,
    all_reduce_sum,
    barrier,
    broadcast,
    current_world,
    epoch_batches,
    epoch_order,
    evaluation_block,
    gather,
    on_main,
)
from .progress import EpochProgress
from .schedules import LEARNING_RATE_SCHEDULES, Budget, Clock, Warmup
from .sources import DataSource

#: Rows per validation batch at least: validation needs no gradients, so bigger is faster.
VALIDATION_BATCH = 1024
#: The alignment, in bytes, of torch's CPU allocations (and so of the batches it trains on).
ALIGNMENT = 64


@dataclass
class TrainingOptions:
    """How to train: what every model shares.

    ``annealed`` names module attributes set before every step from a warm-up (the KL weight);
    early stopping waits until each has reached its target. ``callback`` is called with each
    epoch's history record, outside the epoch's timing, with the weights as the fit would
    return them then (the average, with ``ema_decay``). The record holds the epoch, every loss
    term, ``skipped_steps``, the ``val_`` terms, ``learning_rate`` (the rate of the epoch's last
    step) and ``seconds``.
    """

    batch_size: int = 128
    learning_rate: float = 1e-3
    learning_rate_schedule: str = "constant"  # or "cosine": to 0 over the budget, per step
    max_epochs: int | None = 100
    max_time: float | None = None  # seconds of training
    validation_fraction: float = 0.1
    patience: int | None = 10
    clip_grad_norm: float | None = None
    ema_decay: float | None = None  # keep and return an average of the weights
    max_nonfinite_steps: int = 10
    precision: str = "fp32"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    annealed: dict[str, Warmup] = field(default_factory=dict)
    callback: Callable[[dict], None] | None = None
    verbose: bool = True

    @property
    def budget(self) -> Budget:
        return Budget(self.max_epochs, self.max_time)


@dataclass
class TrainingResult:
    """What a fit did: its per-epoch ``history``, why it stopped (``stopped_by``:
    ``"early_stopping"``, ``"max_epochs"`` or ``"max_time"``) and the epoch whose weights it
    kept (``best_epoch``: the best one after early stopping, else the last)."""

    history: list[dict[str, float]]
    stopped_by: str
    best_epoch: int


def split_validation(
    n_rows: int, fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Row indices (train, validation) of a random split; no validation rows when it would be
    empty."""
    n_val = math.floor(fraction * n_rows)
    if n_val < 1 or n_val >= n_rows:
        return torch.arange(n_rows), None
    perm = torch.randperm(n_rows, generator=generator)
    return perm[n_val:], perm[:n_val]


def draw_seed(generator: torch.Generator) -> int:
    """A 62-bit seed drawn from ``generator``."""
    return int(torch.randint(2**62, (1,), generator=generator))


def noise_generator(seed: int, rank: int, device: torch.device) -> torch.Generator:
    """The generator of process ``rank``'s noise on ``device``: each process draws its own."""
    entropy = np.random.SeedSequence([seed, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device).manual_seed(int(entropy[0]) << 31 | int(entropy[1]) >> 1)


def make_optimizer(module: nn.Module, learning_rate: float) -> torch.optim.Adam:
    """Adam, fused into one kernel per step where PyTorch supports it (CPU and CUDA floats)."""
    params = [p for p in module.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=learning_rate, fused=True)
    except RuntimeError:
        return torch.optim.Adam(params, lr=learning_rate)


def read_batch(source: DataSource, index: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The rows ``index`` of ``source`` as a float32 tensor on ``device``.

    NumPy may hand back memory aligned to 16 bytes only; the first layer's matrix product is a
    few percent slower on it than on torch's 64-byte-aligned memory, so such a batch is copied.
    """
    batch = torch.from_numpy(source.rows(index.numpy()))
    if batch.data_ptr() % ALIGNMENT:
        batch = batch.clone()
    return to_device(batch, device)


class Trainer:
    """One fit: the module, its optimiser, the state that a checkpoint saves, and the epochs."""

    def __init__(
        self,
        module: nn.Module,
        source: DataSource,
        options: TrainingOptions,
        generator: torch.Generator,
        checkpoint: Checkpoint | None = None,
    ):
        self.module, self.source, self.options = module, source, options
        self.generator, self.checkpoint = generator, checkpoint
        self.device = options.device
        self.world = current_world()
        self.train_rows, self.val_rows = split_validation(
            len(source), options.validation_fraction, generator
        )
        check_shares(len(self.train_rows), options.batch_size, self.world)
        self.order_seed = draw_seed(generator)
        self.noise = noise_generator(draw_seed(generator), self.world.rank, self.device)
        self.network = module
        if self.world.distributed:  # the same weights everywhere: DDP sends rank 0's
            ids = None if self.device.type != "cuda" else [self.device.index or 0]
            self.network = DistributedDataParallel(
                module, device_ids=ids, gradient_as_bucket_view=True
            )
        self.optimizer = make_optimizer(module, options.learning_rate)
        self.scaler = gradient_scaler(self.device, options.precision)
        self.lr_factor = LEARNING_RATE_SCHEDULES[options.learning_rate_schedule]
        self.budget = options.budget
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.average = None
        if options.ema_decay is not None:
            self.average = WeightAverage(self.params, options.ema_decay)
        self.term_names: list[str] | None = None
        self.learning_rate = options.learning_rate  # the last step's, for the record
        self.step_seconds = 0.0  # rank 0's mean step time in the last epoch (see elapsed)
        self.state = self.load_state()
        self.state.streak = self.state.streak.to(self.device)

    def load_state(self) -> TrainingState:
        """The checkpoint's state (read by rank 0, sent to every rank), put in place; else fresh."""
        if self.checkpoint is None:
            return TrainingState.fresh()
        state = on_main(self.checkpoint.load)  # a corrupt one stops every rank, in one line
        if state is None:
            return TrainingState.fresh()
        state.restore(self.module, self.optimizer, self.generator, self.noise, self.world.rank)
        if self.average is not None:
            try:
                self.average.restore(state.average)
            except (ValueError, KeyError) as err:
                raise ModelFileError(f"The checkpoint does not fit this model ({err}).") from None
        if len(state.noise) != self.world.size and self.world.main:
            warnings.warn(
                f"This run was checkpointed by {_processes(len(state.noise))} and goes on with "
                f"{_processes(self.world.size)}: it trains correctly, but not bit for bit as "
                "an uninterrupted run would.",
                VaekitWarning,
                stacklevel=4,
            )
        return state

    def save_state(self) -> None:
        """Rank 0 writes the checkpoint, with every rank's noise; the others wait for it."""
        noise = gather(self.noise.get_state(), self.world)
        self.state.capture(self.module, self.optimizer, self.generator, noise)
        self.state.average = {} if self.average is None else self.average.state()
        if self.world.main:
            self.checkpoint.save(self.state)
        barrier(self.world)

    # ---- one step and one epoch ---------------------------------------------------------
    def apply_schedules(self, clock: Clock) -> None:
        """Set the learning rate and every annealed attribute for the next step."""
        lr = self.options.learning_rate * self.lr_factor(self.budget.progress(clock))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.learning_rate = float(lr)
        for name, schedule in self.options.annealed.items():
            setattr(self.module, name, schedule(clock))

    def step(
        self, x: torch.Tensor, batch_rows: int | None = None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Forward, backward and (unless non-finite) an optimiser step; (terms, bad).

        ``x`` is this process's part of a batch of ``batch_rows`` rows (all of it by default).
        Its loss is weighted by its share, so that the gradient DDP averages over the processes
        is the gradient of the whole batch's mean loss; the step is skipped on every process
        when any process's loss is not finite.
        """
        with autocast(self.device, self.options.precision):
            terms = self.network(x, self.noise)
        self.optimizer.zero_grad(set_to_none=True)
        loss = terms["loss"]
        if self.world.distributed:
            loss = loss * (len(x) * self.world.size / (batch_rows or len(x)))
            # A process whose loss is not finite puts NaN into one gradient: after DDP's
            # all-reduce every process sees a non-finite norm and skips the step, with no
            # collective of its own (one costs about a millisecond on gloo).
            poison = torch.where(torch.isfinite(loss), 0.0, math.nan).detach()
            loss = loss + poison * self.params[-1].sum()
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.options.clip_grad_norm is None:
            grads = [p.grad for p in self.params if p.grad is not None]
            norm = nn.utils.get_total_norm(grads)
        else:
            norm = nn.utils.clip_grad_norm_(self.params, self.options.clip_grad_norm)
        if self.scaler is not None:  # the scaler skips overflowing steps and lowers its scale
            self.scaler.step(self.optimizer)
            self.scaler.update()
            return terms, ~torch.isfinite(norm if self.world.distributed else loss)
        bad = ~(torch.isfinite(loss) & torch.isfinite(norm))
        if self.world.distributed:  # this process's loss is its own; the norm is everyone's
            bad = ~torch.isfinite(norm)
        if self.optimizer.defaults.get("fused"):
            self.optimizer.found_inf = bad.float()  # GradScaler's flag: fused Adam skips the step
            self.optimizer.step()
        elif not bool(bad):
            self.optimizer.step()
        return terms, bad

    def train_epoch(self, epoch: int, seconds_before: float) -> dict[str, float]:
        """One pass over shuffled batches. Metrics stay tensors until the epoch ends."""
        self.network.train()
        streak = self.state.streak
        names, totals = None, None
        used = torch.zeros((), device=self.device)
        skipped = torch.zeros((), device=self.device)
        longest = streak.clone()
        order = epoch_order(len(self.train_rows), self.order_seed, epoch)
        batches = epoch_batches(order, self.options.batch_size, self.world)
        start = time.perf_counter()
        for i, (batch, batch_rows) in enumerate(batches):
            clock = Clock(epoch + i / len(batches), seconds_before + self.elapsed(i, start))
            self.apply_schedules(clock)
            x = read_batch(self.source, self.train_rows[batch], self.device)
            terms, bad = self.step(x, batch_rows)
            if self.average is not None:
                self.average.update()
            if names is None:
                names = self.term_names = list(terms)
                totals = torch.zeros(len(names), device=self.device)
            stacked = torch.stack([terms[name] for name in names]).detach().float()
            totals += torch.where(bad, 0.0, stacked * len(batch))
            used += (~bad) * len(batch)
            skipped += bad
            streak.add_(1).mul_(bad)
            longest = torch.maximum(longest, streak)
        all_reduce_sum(totals, self.world)
        all_reduce_sum(used, self.world)
        self.step_seconds = broadcast(time.perf_counter() - start, self.world) / len(batches)
        if longest.item() >= self.options.max_nonfinite_steps:
            raise TrainingError(
                f"The loss or its gradient was not finite for {int(longest.item())} steps in a "
                f"row (epoch {epoch + 1}); try a lower learning_rate, clip_grad_norm, or another "
                "likelihood."
            )
        means = (totals / used.clamp(min=1)).tolist()
        return dict(zip(names, means, strict=True)) | {"skipped_steps": int(skipped)}

    def elapsed(self, step: int, start: float) -> float:
        """Seconds into the epoch before ``step``, for the schedules that follow time.

        Under torchrun every process must set the same learning rate and weights, so the time
        is counted in steps of rank 0's mean step time in the epoch before (the first epoch
        runs on its starting time).
        """
        if self.world.distributed:
            return step * self.step_seconds
        return time.perf_counter() - start

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The module's eval-mode terms on the validation rows, with the same noise every epoch;
        each process takes a block of the rows and the sums are added up."""
        self.module.eval()
        size = max(self.options.batch_size, VALIDATION_BATCH)
        names = self.term_names
        totals = torch.zeros(len(names), device=self.device)
        block = self.val_rows[evaluation_block(len(self.val_rows), self.world)]
        for index in block.split(size):
            x = read_batch(self.source, index, self.device)
            noise = torch.Generator(self.device).manual_seed(0)
            terms = self.module(x, noise)
            totals += torch.stack([terms[n].detach().float() for n in names]) * len(index)
        means = (all_reduce_sum(totals, self.world) / len(self.val_rows)).tolist()
        return {f"val_{name}": value for name, value in zip(names, means, strict=True)}

    # ---- the run ------------------------------------------------------------------------
    def run(self) -> TrainingResult:
        """Train until the budget is spent or early stopping fires; restore the best weights."""
        state, options = self.state, self.options
        verbose = options.verbose and self.world.main
        progress = EpochProgress(state.epoch, options.max_epochs, verbose)
        torch.set_flush_denormal(True)
        try:
            while not state.finished:
                self.run_epoch(progress)
        finally:
            torch.set_flush_denormal(False)
            progress.close()
        early = options.patience is not None and state.since_best >= options.patience
        if early:
            stopped_by = "early_stopping"
        elif options.max_epochs is not None and state.epoch >= options.max_epochs:
            stopped_by = "max_epochs"
        else:
            stopped_by = "max_time"
        best_epoch = state.epoch
        if state.best_model is not None:
            self.module.load_state_dict(state.best_model)
            best_epoch = state.best_epoch or state.epoch
        elif self.average is not None:
            self.average.copy_to_params()
        self.module.eval()
        return TrainingResult(state.history, stopped_by, best_epoch)

    def run_epoch(self, progress: EpochProgress) -> None:
        """One epoch, its validation, its record, early stopping and the checkpoint."""
        state, options = self.state, self.options
        epoch = state.epoch
        start = time.perf_counter()
        record: dict = {"epoch": epoch + 1}
        last_good = copy.deepcopy(self.module.state_dict())
        try:
            record |= self.train_epoch(epoch, state.seconds)
        except TrainingError as err:
            self.module.load_state_dict(last_good)
            raise TrainingError(f"{err} The weights of epoch {epoch} were restored.") from None
        with self.averaged():
            if self.val_rows is not None:
                record |= self.validate()
            record["learning_rate"] = self.learning_rate
            record["seconds"] = broadcast(time.perf_counter() - start, self.world)  # one budget
            state.history.append(record)
            state.epoch = epoch + 1
            state.seconds += record["seconds"]
            progress.update(record)
            clock = Clock(state.epoch, state.seconds)
            stop = self.early_stopping(record, clock)
        state.finished = stop or self.budget.spent(clock)
        if self.checkpoint is not None and (state.finished or self.checkpoint.due(state.epoch)):
            self.save_state()
        if options.callback is not None:
            with self.averaged():
                options.callback(record)

    def averaged(self) -> contextlib.AbstractContextManager:
        """The weights a fit returns, in place for a block: the average when one is kept."""
        return contextlib.nullcontext() if self.average is None else self.average.swapped_in()

    def early_stopping(self, record: dict, clock: Clock) -> bool:
        """Track the best monitored loss and its weights; True when patience has run out.

        Not checked while an annealed weight (a KL warm-up) is still on its way.
        """
        state, options = self.state, self.options
        if options.patience is None:
            return False
        if not all(schedule.done(clock) for schedule in options.annealed.values()):
            return False
        monitored = record.get("val_loss", record["loss"])
        if monitored < state.best_loss:
            state.best_loss, state.since_best = monitored, 0
            state.best_model = copy.deepcopy(self.module.state_dict())
            state.best_epoch = state.epoch
            return False
        state.since_best += 1
        return state.since_best >= options.patience


def check_shares(n_rows: int, batch_size: int, world: World) -> None:
    """Refuse a split of the training rows that leaves a process without rows to train on."""
    if batch_size < world.size:
        raise ConfigError(
            f"batch_size={batch_size} is the batch of all {world.size} processes together; "
            f"it must be at least {world.size}."
        )
    if n_rows < world.size:
        raise ConfigError(
            f"{n_rows} training rows cannot be shared by {world.size} processes; use fewer."
        )


def _processes(n: int) -> str:
    return "1 process" if n == 1 else f"{n} processes"


def train(
    module: nn.Module,
    source: DataSource,
    options: TrainingOptions,
    generator: torch.Generator,
    checkpoint: Checkpoint | None = None,
) -> TrainingResult:
    """Fit ``module`` on the rows of ``source``; the per-epoch history and why it stopped.

    ``module(x, generator)`` must return a dict of scalar loss terms with a ``loss`` to
    minimise. With ``patience`` set, training stops after that many epochs without a better
    validation loss (training loss when there is no validation split) and the best weights are
    restored. Denormal floats are flushed to zero while training (they slow late epochs by
    20-30%). With a ``checkpoint``, the whole training state is saved every
    ``checkpoint.every`` epochs and at the end, and a fit whose checkpoint holds a state
    continues from it, bit for bit when the schedules count epochs (a time budget resumes with
    the training time already spent).
    """
    return Trainer(module, source, options, generator, checkpoint).run()
