"""Several processes training one model: torchrun's environment, the process group, the order
of the rows and the reductions, on top of ``torch.distributed``.

torchrun starts one process per device and tells each its place through the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). ``World`` reads it;
``start`` joins the process group (gloo on the CPU, nccl on CUDA) with a timeout, so that a lost
peer ends the job in bounded time. The rows are ordered once per epoch from the run's seed and
the epoch number, identically on every rank (``epoch_order``); ``training_rows`` gives each rank
its equal share without padding, so that step i of all ranks together reads the rows one
process would read at its step i. Evaluation splits the rows into contiguous blocks without
duplicates (``evaluation_block``) and ``gather_rows`` puts the results back together in the
input's order.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

#: How long a collective operation waits for a peer before the job fails.
TIMEOUT = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class World:
    """The processes of a job and this one's place among them (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

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
        ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as integers; rank 0 of 1 without them.
    """
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return World()
    return World(
        rank=int(environ.get("RANK", 0)),
        size=int(environ["WORLD_SIZE"]),
        local_rank=int(environ.get("LOCAL_RANK", 0)),
    )


def current_world() -> World:
    """The world of the process group this process has joined; a single process when none."""
    if not dist.is_available() or not dist.is_initialized():
        return World()
    return World(dist.get_rank(), dist.get_world_size(), from_environment().local_rank)


def start(world: World, device: torch.device) -> None:
    """Join the process group of ``world`` (no-op for one process or when already joined).

    Parameters
    ----------
    world : World
        From ``from_environment``; the rendezvous address comes from torchrun's variables.
    device : torch.device
        CUDA devices use nccl, everything else gloo.
    """
    if not world.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=TIMEOUT)


def epoch_order(n_rows: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the rows in ``epoch``: a permutation drawn from ``seed`` and ``epoch`` alone.

    Every rank computes the same order without talking to the others, a resumed run the same
    order as an uninterrupted one, and each epoch a different one.
    """
    entropy = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))
    return torch.randperm(n_rows, generator=generator)


def training_rows(order: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's rows of an epoch's order: every ``world.size``-th, without padding.

    The last ``len(order) % world.size`` rows of the order are left out of the epoch so that
    every rank has as many rows (and as many steps) as the others; the order changes every
    epoch, so the rows left out do too. Batches of ``batch_size // world.size`` rows of this
    rank's share, taken together across the ranks, are the batches of ``batch_size`` rows that
    one process reads from the same order.
    """
    usable = len(order) - len(order) % world.size
    return order[:usable].view(-1, world.size)[:, world.rank].contiguous()


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
