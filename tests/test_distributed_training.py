"""Data-parallel training in real processes: torchrun, gloo over loopback, 2 processes, few
epochs. Gradients against one process on the whole batch, one recipe on 1 or 2 processes, a
rank killed and resumed bit for bit, a rank that fails, two "machines" on 127.0.0.1."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_cli import VAEKIT

pytestmark = pytest.mark.slow
TORCHRUN = Path(sys.executable).parent / "torchrun"
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*args, cwd, timeout=240, env=ONE_THREAD):
    """``torchrun --standalone --nproc-per-node 2 ARGS``; the CompletedProcess."""
    command = [str(TORCHRUN), "--standalone", "--nproc-per-node", "2", *map(str, args)]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def vaekit(*args, cwd, env=ONE_THREAD, timeout=240):
    done = subprocess.run(
        [str(VAEKIT), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


GRADIENTS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    from vaekit import Autoencoder
    from vaekit.engine.distributed import gather, join
    from vaekit.engine.loop import Trainer, TrainingOptions
    from vaekit.engine.sources import as_source

    world = join()
    X = np.random.default_rng(0).random((20, 6)).astype(np.float32)
    torch.manual_seed(0)
    module = Autoencoder(2, hidden_sizes=(8,))._build_module(6)
    options = TrainingOptions(batch_size=7, validation_fraction=0.0, verbose=False)
    trainer = Trainer(module, as_source(X), options, torch.Generator().manual_seed(1))
    batch = torch.arange(7)  # a batch of 7 rows: 4 on rank 0, 3 on rank 1
    mine = batch[world.rank :: world.size]
    trainer.step(torch.from_numpy(X[mine.numpy()]), len(batch))
    grads = torch.cat([p.grad.flatten() for p in trainer.params]).double().numpy()
    seeds = gather(trainer.noise.initial_seed(), world)
    # A non-finite loss on the last process only: every process skips the step.
    before = [p.detach().clone() for p in trainer.params]
    x = torch.from_numpy(X[mine.numpy()])
    if world.rank == world.size - 1:
        x[0, 0] = float("nan")
    _, bad = trainer.step(x, len(batch))
    unchanged = all(torch.equal(a, p) for a, p in zip(before, trainer.params))
    skipped = gather((bool(bad), unchanged), world)
    if world.main:
        np.save(sys.argv[1], grads)
        np.save(sys.argv[2], np.array(seeds, dtype=np.uint64))
        np.save(sys.argv[3], np.array(skipped))
    """
)


def test_one_step_on_two_processes_has_the_gradients_of_one_on_the_whole_batch(tmp_path):
    (tmp_path / "worker.py").write_text(GRADIENTS)
    done = torchrun("worker.py", "two.npy", "seeds.npy", "skipped.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    env = {k: v for k, v in ONE_THREAD.items() if k not in ("WORLD_SIZE", "RANK")}
    one = subprocess.run(
        [sys.executable, "worker.py", "one.npy", "one-seeds.npy", "one-skipped.npy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two, single = np.load(tmp_path / "two.npy"), np.load(tmp_path / "one.npy")
    assert np.abs(single).max() > 1e-3  # a real gradient
    np.testing.assert_allclose(two, single, rtol=0, atol=1e-6)
    seeds = np.load(tmp_path / "seeds.npy")
    assert len(set(seeds.tolist())) == 2  # each process draws its own noise
    assert np.load(tmp_path / "skipped.npy").tolist() == [[True, True], [True, True]]


def test_two_processes_and_one_train_the_same_recipe(tmp_path):
    common = ["digits", "--max-epochs", 20, "--no-pictures", "--quiet", "--seed", 1]
    vaekit("train", *common, "--nproc", 2, "--out", "two", cwd=tmp_path)
    vaekit(
        "train", *common, "--out", "one", cwd=tmp_path, env={**ONE_THREAD, "OMP_NUM_THREADS": "2"}
    )
    two, one = (json.loads((tmp_path / name / "run.json").read_text()) for name in ("two", "one"))
    assert two["epochs"] == one["epochs"] == 20
    assert two["metrics"]["elbo"] == pytest.approx(one["metrics"]["elbo"], rel=0.005)
    state = json.loads((tmp_path / "two" / "training_state" / "state.json").read_text())
    assert state["processes"] == 2


def test_two_processes_train_the_semi_supervised_recipe_of_one(tmp_path):
    """M2's batches mix labelled rows, their classifier-only copies and unlabelled rows
    enumerated over the classes: each process's share of them still adds up to one batch."""
    common = ["digits", "--model", "semi_supervised", "--labels-kept", 50, "--max-epochs", 5]
    common += ["--likelihood", "bernoulli", "--binarize", "dynamic", "--no-pictures", "--quiet"]
    vaekit("train", *common, "--nproc", 2, "--out", "two", cwd=tmp_path)
    vaekit(
        "train", *common, "--out", "one", cwd=tmp_path, env={**ONE_THREAD, "OMP_NUM_THREADS": "2"}
    )
    two, one = (json.loads((tmp_path / name / "run.json").read_text()) for name in ("two", "one"))
    assert two["epochs"] == one["epochs"] == 5
    assert two["metrics"]["elbo"] == pytest.approx(one["metrics"]["elbo"], rel=0.01)
    assert abs(two["metrics"]["accuracy"] - one["metrics"]["accuracy"]) < 0.1


def wait_for_epoch(state: Path, epoch: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(state.read_text())["epoch"] >= epoch:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of epoch {epoch} in {timeout} s")


def workers_of(pid: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in children.stdout.split()]


def test_a_rank_killed_mid_epoch_resumes_bit_identically_under_torchrun(tmp_path):
    rows = np.random.default_rng(0).random((4000, 64)).astype(np.float32)
    np.save(tmp_path / "rows.npy", rows)  # epochs long enough to kill one in the middle
    common = ["rows.npy", "--max-epochs", 8, "--patience", 50, "--no-pictures", "--quiet"]
    common += ["--nproc", 2, "--hidden-sizes", "64"]
    vaekit("train", *common, "--out", "unbroken", cwd=tmp_path)

    launcher = subprocess.Popen(
        [str(VAEKIT), "train", *map(str, common), "--out", "broken"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        env=ONE_THREAD,
    )
    wait_for_epoch(tmp_path / "broken.partial" / "training_state" / "state.json", 3)
    time.sleep(0.1)  # into epoch 4
    os.kill(workers_of(launcher.pid)[-1], signal.SIGKILL)
    _, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode == 2
    assert "was killed by SIGKILL" in stderr and "Traceback" not in stderr, stderr
    state = json.loads((tmp_path / "broken.partial/training_state/state.json").read_text())
    assert 3 <= state["epoch"] < 8  # the last checkpoint is intact, training not finished

    done = torchrun("-m", "vaekit", "train", "--resume", "broken", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    unbroken, resumed = weights(tmp_path / "unbroken"), weights(tmp_path / "broken")
    assert unbroken.keys() == resumed.keys()
    assert all(torch.equal(unbroken[k], resumed[k]) for k in unbroken)


INTERRUPTED = textwrap.dedent(
    """
    import sys
    import numpy as np
    from vaekit import VAE

    X = np.random.default_rng(0).random((400, 8)).astype(np.float32)

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    try:
        VAE(2, hidden_sizes=(8,), max_epochs=5, verbose=False, random_state=0).fit(
            X, checkpoint_dir=sys.argv[1], callback=stop_after_two
        )
    except KeyboardInterrupt:
        pass
    """
)


def test_resuming_with_another_number_of_processes_warns_and_finishes(tmp_path):
    from vaekit import VAE

    (tmp_path / "worker.py").write_text(INTERRUPTED)
    done = torchrun("worker.py", "state", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "state" / "state.json").read_text())["processes"] == 2
    X = np.random.default_rng(0).random((400, 8)).astype(np.float32)
    with pytest.warns(UserWarning, match="checkpointed by 2 processes and goes on with 1"):
        vae = VAE(2, hidden_sizes=(8,), max_epochs=5, verbose=False, random_state=0)
        vae.fit(X, checkpoint_dir=tmp_path / "state")
    assert vae.n_epochs_ == 5 and [r["epoch"] for r in vae.history_] == [1, 2, 3, 4, 5]


FAILING = textwrap.dedent(
    """
    import os
    import numpy as np
    from vaekit import VAE

    X = np.random.default_rng(0).random((200, 8)).astype(np.float32)
    if os.environ["RANK"] == "1" and os.environ.get("FAULT") == "nan":
        X[57, 3] = np.nan  # bad data on one process only
    if os.environ["RANK"] == "1" and os.environ.get("FAULT") == "other":
        X = X[::-1].copy()  # other data on one process
    VAE(2, hidden_sizes=(8,), max_epochs=3, verbose=False).fit(X)
    """
)


@pytest.mark.parametrize(
    ("fault", "words"),
    [("nan", "process 1 of 2: "), ("other", "Process 1 of 2 was given other parameters or data")],
)
def test_a_process_that_fails_stops_every_process_with_its_error(tmp_path, fault, words):
    (tmp_path / "worker.py").write_text(FAILING)
    start = time.monotonic()
    done = torchrun("worker.py", cwd=tmp_path, env={**ONE_THREAD, "FAULT": fault})
    assert done.returncode != 0
    assert time.monotonic() - start < 60  # not a hang until the collective timeout
    assert words in done.stderr, done.stderr[-3000:]
    if fault == "nan":
        assert "row index 57" in done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines_on_loopback_train_one_model(tmp_path):
    machines = [tmp_path / "machine-a", tmp_path / "machine-b"]  # no shared run folder
    for folder in machines:
        folder.mkdir()
    port = free_port()
    launches = [
        subprocess.Popen(
            [
                str(TORCHRUN),
                "--nnodes",
                "2",
                "--node-rank",
                str(rank),
                "--nproc-per-node",
                "1",
                "--master-addr",
                "127.0.0.1",
                "--master-port",
                str(port),
                "-m",
                "vaekit",
                "train",
                "digits",
                "--max-epochs",
                "3",
                "--no-pictures",
                "--quiet",
                "--out",
                "runs/together",
            ],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ONE_THREAD,
        )
        for rank, folder in enumerate(machines)
    ]
    outputs = [launch.communicate(timeout=240) for launch in launches]
    for launch, (_, stderr) in zip(launches, outputs, strict=True):
        assert launch.returncode == 0, stderr[-3000:]
    run = machines[0] / "runs" / "together"
    state = json.loads((run / "training_state" / "state.json").read_text())
    assert state["processes"] == 2 and state["epoch"] == 3
    assert "trained vae on digits: 3 epochs" in outputs[0][0]
    assert not (machines[1] / "runs").exists()  # rank 0 alone writes
    assert outputs[1][0] == ""  # and alone prints


TIMED = textwrap.dedent(
    """
    import sys
    import numpy as np
    from vaekit import VAE
    from vaekit.engine.distributed import current_world, gather

    X = np.random.default_rng(0).random((2000, 16)).astype(np.float32)
    vae = VAE(2, hidden_sizes=(16,), max_epochs=None, max_time=3, verbose=False,
              learning_rate_schedule="cosine", warmup_epochs=0)
    vae.fit(X)
    weights = [float(v.double().sum()) for v in vae.module_.state_dict().values()]
    seen = gather((vae.n_epochs_, weights), current_world())
    if current_world().main:
        np.save(sys.argv[1], np.array([seen[0] == seen[1], seen[0][0]]))
    """
)


def test_a_time_budget_ends_every_process_at_the_same_epoch_with_the_same_weights(tmp_path):
    (tmp_path / "worker.py").write_text(TIMED)
    done = torchrun("worker.py", "out.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    same, epochs = np.load(tmp_path / "out.npy").tolist()
    assert same and epochs >= 2  # the learning rate followed one clock on both processes
