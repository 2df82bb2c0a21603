"""Several processes training one model: torchrun's environment, the process group, the order
of the rows and the reductions, on top of ``torch.distributed``.

torchrun starts one process per device and tells each its place through the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). ``World`` reads it;
``start`` joins the process group (gloo on the CPU, nccl on CUDA) with a timeout, so that a lost
peer ends the job in bounded time. The rows are ordered once per epoch from the run's seed and
the epoch number, identically on every rank (``epoch_order``); ``epoch_batches`` gives each rank
its part of every batch without padding, so that step i of all ranks together reads the rows
one process reads at its step i. Decisions that read files (is there a run to resume? a
checkpoint?) are taken by rank 0 alone and sent to the others (``on_main``), so the machines
need no shared file system. Evaluation splits the rows into contiguous blocks without
duplicates (``evaluation_block``) and ``gather_rows`` puts the results back together in the
input's order.
"""

from __future__ import annotations

import atexit
import datetime
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist

from ..exceptions import ConfigError, VaekitError
from .quiet_threads import wait_until_idle

T = TypeVar("T")

#: How long a collective operation waits for a peer before the job fails.
TIMEOUT = datetime.timedelta(minutes=5)

#: The name of gloo's worker threads, which must be idle before the interpreter finalizes.
GLOO_WORKERS = "pt_gloo"


@dataclass(frozen=True)
class World:
    """The processes of a job and this one's place among them (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1  # the processes on this machine

    @property
    def main(self) -> bool:
        """True for the process that writes files (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.size > 1


def from_environment(environ: dict | None = None) -> World:
    """The world torchrun describes in the environment, or a single process when it does not.

    Parameters
    ----------
    environ : dict, optional
        The environment to read; ``os.environ`` by default.

    Returns
    -------
    World
        ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` as integers; rank 0
        of 1 without them.
    """
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return World()
    return World(
        rank=int(environ.get("RANK", 0)),
        size=int(environ["WORLD_SIZE"]),
        local_rank=int(environ.get("LOCAL_RANK", 0)),
        local_size=int(environ.get("LOCAL_WORLD_SIZE", 1)),
    )


def current_world() -> World:
    """The world of the process group this process has joined; a single process when none."""
    if not dist.is_available() or not dist.is_initialized():
        return World()
    local = from_environment()
    return World(dist.get_rank(), dist.get_world_size(), local.local_rank, local.local_size)


def start(world: World) -> None:
    """Join the process group of ``world`` (no-op for one process or when already joined).

    The group serves CPU tensors through gloo and, where PyTorch sees CUDA, CUDA tensors
    through nccl, so it can start before the training device is known; each process uses the
    GPU of its local rank. The rendezvous address comes from torchrun's variables.
    """
    if not world.distributed or dist.is_initialized():
        return
    backend = "gloo"
    if torch.cuda.is_available():
        backend = "cpu:gloo,cuda:nccl"
        torch.cuda.set_device(world.local_rank % torch.cuda.device_count())
    dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=TIMEOUT)


def join() -> World:
    """The world of this process, with the process group joined when torchrun started it.

    Idempotent. A group vaekit started is left at exit after a barrier (``stop``), unless the
    process is ending on an uncaught exception: then it leaves at once, and torchrun stops the
    other processes.
    """
    world = from_environment()
    if world.distributed and not dist.is_initialized():
        start(world)
        _watch_failures()
        atexit.register(_leave, world)
    return current_world()


_failed = False


def _watch_failures() -> None:
    """Note an uncaught exception, so that leaving at exit does not wait for the peers."""
    previous = sys.excepthook

    def hook(*info):
        mark_failed()
        previous(*info)

    sys.excepthook = hook


def mark_failed() -> None:
    """This process is ending on an error: at exit it leaves the group without a barrier."""
    global _failed
    _failed = True


def _leave(world: World) -> None:
    if not dist.is_initialized():
        return
    if _failed:
        dist.destroy_process_group()
    else:
        stop(world)
    wait_until_idle(GLOO_WORKERS)


def local_device(device: torch.device, world: World) -> torch.device:
    """The device this process trains on: ``cuda`` without an index means its local rank's GPU."""
    if device.type == "cuda" and device.index is None and world.distributed:
        return torch.device("cuda", world.local_rank % torch.cuda.device_count())
    return device


def epoch_order(n_rows: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the rows in ``epoch``: a permutation drawn from ``seed`` and ``epoch`` alone.

    Every rank computes the same order without talking to the others, a resumed run the same
    order as an uninterrupted one, and each epoch a different one.
    """
    entropy = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))
    return torch.randperm(n_rows, generator=generator)


def epoch_batches(
    order: torch.Tensor, batch_size: int, world: World
) -> list[tuple[torch.Tensor, int]]:
    """This rank's part of every batch of an epoch: ``(its rows, the batch's rows)`` per step.

    Step i reads the i-th ``batch_size`` rows of ``order``, as one process does; rank r takes
    every ``world.size``-th of them, from the r-th. The ranks' parts of a step differ in length
    by one row at most, and ``Trainer.step`` weights each rank's loss by its share, so the
    averaged gradient is the one process's gradient on the whole batch. Without padding: a
    last batch with fewer rows than processes is left out of the epoch, and since the order
    changes every epoch, so do the rows left out.
    """
    batches = []
    for rows in order.split(batch_size):
        if len(rows) < world.size:
            break
        batches.append((rows[world.rank :: world.size], len(rows)))
    return batches


def evaluation_block(n_rows: int, world: World) -> slice:
    """This rank's contiguous block of ``n_rows`` rows; the blocks cover each row once."""
    bounds = np.linspace(0, n_rows, world.size + 1).round().astype(int)
    return slice(int(bounds[world.rank]), int(bounds[world.rank + 1]))


def all_reduce_sum(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """``tensor`` summed over the ranks, in place (unchanged for one process)."""
    if world.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_rows(local: torch.Tensor, world: World) -> torch.Tensor:
    """Every rank's block of rows (``evaluation_block``), concatenated in rank order.

    The blocks may differ in length by one row; each is padded to the longest for the
    collective and cut back before it is concatenated, so the result holds each row once.
    """
    if not world.distributed:
        return local
    lengths = [torch.zeros((), dtype=torch.int64, device=local.device) for _ in range(world.size)]
    dist.all_gather(lengths, torch.tensor(len(local), device=local.device))
    longest = int(max(lengths))
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=local.device)
    padded[: len(local)] = local
    blocks = [torch.empty_like(padded) for _ in range(world.size)]
    dist.all_gather(blocks, padded)
    return torch.cat([block[: int(n)] for block, n in zip(blocks, lengths, strict=True)])


def barrier(world: World) -> None:
    """Wait for every rank (for instance until rank 0 has written a file)."""
    if world.distributed:
        dist.barrier()


def stop(world: World) -> None:
    """Leave the process group once every rank is done: a process that exits while a peer still
    holds its connections makes gloo abort that peer."""
    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def broadcast(value: T, world: World) -> T:
    """Rank 0's ``value`` on every rank (any picklable object; unchanged for one process)."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))
    return box[0]


def gather(value: T, world: World) -> list[T]:
    """Every rank's ``value``, in rank order (``[value]`` for one process)."""
    if not world.distributed:
        return [value]
    values = [None] * world.size
    dist.all_gather_object(values, value)
    return values


def on_main(fn: Callable[[], T]) -> T:
    """``fn()`` run by rank 0 alone; every rank gets its result, or raises its ``VaekitError``.

    For the decisions that read files: under torchrun on several machines, only rank 0's
    machine need hold the run folder.
    """
    world = join()
    if not world.distributed:
        return fn()
    outcome: tuple = (None, None)
    if world.main:
        try:
            outcome = (fn(), None)
        except VaekitError as err:
            outcome = (None, err)
    result, error = broadcast(outcome, world)
    if error is not None:
        error.everywhere = True  # every rank raises it: rank 0 alone need say it
        raise error
    return result


def together(fn: Callable[[], T]) -> T:
    """``fn()`` run by every rank; when it fails on any, every rank raises the first failure.

    For the steps each process takes on its own files or rows (loading and checking the
    data): a process that fails stops every process with its one-line error, named by its
    rank, instead of leaving the others waiting for it.
    """
    world = join()
    if not world.distributed:
        return fn()
    result, error = None, None
    try:
        result = fn()
    except (VaekitError, OSError) as err:
        error = err
    for rank, failure in enumerate(gather(error, world)):
        if failure is not None:
            if rank != 0 and isinstance(failure, VaekitError):
                failure = type(failure)(f"process {rank} of {world.size}: {failure}")
            failure.everywhere = True
            raise failure
    return result


def lost_peer(error: BaseException) -> bool:
    """True for the error a collective operation raises when a peer is gone (it crashed, was
    killed, or did not answer within ``TIMEOUT``)."""
    text = str(error)
    return isinstance(error, dist.DistError) or any(
        mark in text for mark in ("gloo", "NCCL", "Connection closed", "timed out")
    )


def check_same(value: str, what: str, world: World) -> None:
    """Raise ConfigError on every rank unless every rank holds the same ``value``."""
    values = gather(value, world)
    if differing := [rank for rank, v in enumerate(values) if v != values[0]]:
        error = ConfigError(
            f"Process {differing[0]} of {world.size} was given other {what} than process 0; "
            "every process must run the same command on the same data."
        )
        error.everywhere = True
        raise error
