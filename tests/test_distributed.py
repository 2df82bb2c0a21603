"""The distributed primitives: torchrun's environment, the epoch order and its shards, and the
reductions, in real processes (gloo over loopback, 2 processes under torchrun)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from vaekit.engine.distributed import (
    World,
    epoch_batches,
    epoch_order,
    evaluation_block,
    from_environment,
)
from vaekit.engine.loop import check_shares
from vaekit.exceptions import ConfigError

TORCHRUN = Path(sys.executable).parent / "torchrun"


def test_the_world_comes_from_torchruns_environment():
    assert from_environment({}) == World(0, 1, 0)
    world = from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert world == World(3, 4, 1) and not world.main and world.distributed
    assert World().main and not World().distributed


def test_the_epoch_order_depends_on_the_seed_and_the_epoch_only():
    first = epoch_order(50, seed=7, epoch=0)
    assert sorted(first.tolist()) == list(range(50))
    assert torch.equal(first, epoch_order(50, seed=7, epoch=0))
    assert not torch.equal(first, epoch_order(50, seed=7, epoch=1))
    assert not torch.equal(first, epoch_order(50, seed=8, epoch=0))


@pytest.mark.parametrize(("n_rows", "batch_size", "size"), [(103, 16, 4), (100, 10, 2), (7, 3, 3)])
def test_ranks_read_each_row_once_an_epoch_without_padding(n_rows, batch_size, size):
    order = epoch_order(n_rows, seed=0, epoch=5)
    parts = [epoch_batches(order, batch_size, World(rank, size)) for rank in range(size)]
    assert len({len(p) for p in parts}) == 1  # every rank takes as many steps
    seen = [i for p in parts for rows, _ in p for i in rows.tolist()]
    assert len(set(seen)) == len(seen)  # no row twice
    last = len(order) % batch_size
    left_out = last if 0 < last < size else 0  # only a last batch smaller than the world
    assert sorted(seen) == sorted(order[: n_rows - left_out].tolist())


def test_the_rows_left_out_rotate_across_epochs():
    left_out = set()
    for epoch in range(20):
        order = epoch_order(103, seed=0, epoch=epoch)  # batches of 20: a last one of 3 rows
        kept = [
            i for r in range(4) for rows, _ in epoch_batches(order, 20, World(r, 4)) for i in rows
        ]
        left_out |= set(range(103)) - {int(i) for i in kept}
    assert len(left_out) > 30  # 3 rows an epoch, different ones


def test_shuffles_differ_between_epochs_and_across_ranks():
    first, second = (epoch_batches(epoch_order(64, 1, e), 16, World(0, 2)) for e in (0, 1))
    assert not torch.equal(first[0][0], second[0][0])
    other_rank = epoch_batches(epoch_order(64, 1, 0), 16, World(1, 2))
    assert not set(first[0][0].tolist()) & set(other_rank[0][0].tolist())


@pytest.mark.parametrize("batch_size", [16, 7])
def test_the_ranks_steps_together_read_one_process_batches(batch_size):
    order, size = epoch_order(64, seed=1, epoch=0), 4
    parts = [epoch_batches(order, batch_size, World(rank, size)) for rank in range(size)]
    one = epoch_batches(order, batch_size, World())
    assert len(one) - len(parts[0]) == (1 if 0 < len(order) % batch_size < size else 0)
    for step, (global_batch, n) in enumerate(one[: len(parts[0])]):
        together = torch.cat([part[step][0] for part in parts])
        assert sorted(together.tolist()) == sorted(global_batch.tolist())
        assert {part[step][1] for part in parts} == {n} == {len(global_batch)}
        lengths = [len(part[step][0]) for part in parts]
        assert max(lengths) - min(lengths) <= 1


@pytest.mark.parametrize(("n_rows", "size"), [(10, 3), (2, 4), (1000, 7)])
def test_evaluation_blocks_cover_every_row_once(n_rows, size):
    blocks = [evaluation_block(n_rows, World(rank, size)) for rank in range(size)]
    rows = [i for block in blocks for i in range(n_rows)[block]]
    assert rows == list(range(n_rows))
    lengths = [len(range(n_rows)[block]) for block in blocks]
    assert max(lengths) - min(lengths) <= 1


WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    from vaekit.engine.distributed import (
        all_reduce_sum, barrier, evaluation_block, from_environment, gather_rows, start, stop,
    )
    world = from_environment()
    start(world)
    rows = torch.arange(11 * 3, dtype=torch.float64).view(11, 3)
    mine = rows[evaluation_block(len(rows), world)] * 2
    gathered = gather_rows(mine, world)
    total = all_reduce_sum(torch.tensor([float(world.rank + 1)]), world)
    barrier(world)
    if world.main:
        with open(sys.argv[1], "w") as f:
            json.dump({"size": world.size, "gathered": gathered.tolist(), "total": total.item()}, f)
    stop(world)
    """
)


@pytest.mark.slow
def test_two_processes_gather_rows_in_order_and_sum(tmp_path):
    (tmp_path / "worker.py").write_text(WORKER)
    out = tmp_path / "out.json"
    done = subprocess.run(
        [str(TORCHRUN), "--standalone", "--nproc-per-node", "2", "worker.py", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    expected = (torch.arange(33, dtype=torch.float64).view(11, 3) * 2).tolist()
    assert result == {"size": 2, "gathered": expected, "total": 3.0}


SHARDED_INFERENCE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    import vaekit
    from vaekit.engine.distributed import from_environment, start, stop
    world = from_environment()
    start(world)
    vae = vaekit.load(sys.argv[1])
    X = np.load(sys.argv[2])
    results = {
        "score_samples": vae.score_samples(X, n_samples=20),
        "transform": vae.transform(X),
        "elbo": vae.elbo(X, n_samples=3),
    }
    np.savez(f"{sys.argv[3]}-{world.rank}.npz", **results)
    stop(world)
    """
)


@pytest.mark.slow
def test_two_processes_score_every_row_as_one_does(tmp_path):
    import numpy as np

    import vaekit

    rng = np.random.default_rng(0)
    X = rng.random((37, 6)).astype(np.float32)  # 37 rows: blocks of 19 and 18
    vae = vaekit.VAE(2, binarize="dynamic", likelihood="bernoulli", hidden_sizes=(8,),
                     max_epochs=2, verbose=False, random_state=3).fit(X)  # fmt: skip
    vae.save(tmp_path / "model")
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "worker.py").write_text(SHARDED_INFERENCE)
    done = subprocess.run(
        [
            str(TORCHRUN),
            "--standalone",
            "--nproc-per-node",
            "2",
            "worker.py",
            "model",
            "X.npy",
            "out",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    expected = {
        "score_samples": vae.score_samples(X, n_samples=20),
        "transform": vae.transform(X),  # the dynamic binarisation's draws: advanced per block
        "elbo": vae.elbo(X, n_samples=3),
    }
    for rank in range(2):
        got = np.load(tmp_path / f"out-{rank}.npz")
        for name, values in expected.items():
            np.testing.assert_allclose(got[name], values, rtol=1e-12, err_msg=(rank, name))


def test_a_split_that_leaves_a_process_idle_is_refused():
    check_shares(100, 2, World(0, 2))
    with pytest.raises(ConfigError, match="batch_size=1 is the batch of all 2 processes"):
        check_shares(100, 1, World(0, 2))
    with pytest.raises(ConfigError, match="3 training rows cannot be shared by 4 processes"):
        check_shares(3, 8, World(0, 4))


def test_nproc_under_torchrun_must_name_the_processes_torchrun_started(monkeypatch):
    from vaekit.cli.commands import cmd_train
    from vaekit.cli.parser import build_parser

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    args = build_parser().parse_args(["train", "digits", "--nproc", "3"])
    with pytest.raises(ConfigError, match="--nproc 3 starts torchrun itself; under torchrun"):
        cmd_train(args)
