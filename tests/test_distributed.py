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
    epoch_order,
    evaluation_block,
    from_environment,
    training_rows,
)

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


@pytest.mark.parametrize(("n_rows", "size"), [(103, 4), (100, 2), (7, 3)])
def test_ranks_share_an_epoch_equally_without_padding(n_rows, size):
    order = epoch_order(n_rows, seed=0, epoch=5)
    shares = [training_rows(order, World(rank, size)) for rank in range(size)]
    assert {len(share) for share in shares} == {n_rows // size}
    seen = torch.cat(shares).tolist()
    assert len(set(seen)) == len(seen)  # no row twice
    assert sorted(seen) == sorted(order[: n_rows - n_rows % size].tolist())


def test_the_rows_left_out_rotate_across_epochs():
    left_out = set()
    for epoch in range(20):
        order = epoch_order(103, seed=0, epoch=epoch)
        kept = torch.cat([training_rows(order, World(r, 4)) for r in range(4)])
        left_out |= set(range(103)) - set(kept.tolist())
    assert len(left_out) > 30  # 3 rows an epoch, different ones


def test_the_ranks_steps_together_read_one_process_batches():
    order, batch, size = epoch_order(64, seed=1, epoch=0), 16, 4
    shares = [training_rows(order, World(rank, size)).split(batch // size) for rank in range(size)]
    for step, global_batch in enumerate(order.split(batch)):
        together = torch.cat([share[step] for share in shares])
        assert sorted(together.tolist()) == sorted(global_batch.tolist())


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
    start(world, torch.device("cpu"))
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
    start(world, torch.device("cpu"))
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
