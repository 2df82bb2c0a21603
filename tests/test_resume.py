"""Checkpoints and exact resume: an interrupted fit ends exactly where an unbroken one does."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ctrl_c import restore_ctrl_c
from test_cli import VAEKIT, assert_clean_error, vaekit

import vaekit.engine.loop as training
from vaekit import VAE
from vaekit.exceptions import ConfigError, ModelFileError

# Early stopping fires at epoch 25 with these settings, after the interruption at epoch 20.
EARLY_STOPPING = dict(
    n_components=2, learning_rate=0.01, patience=2, max_epochs=200, batch_size=64, random_state=0
)


def fit_interrupted_at(X, epoch: int, folder: Path, **params) -> None:
    """Start a checkpointed fit and stop it with Ctrl-C during epoch ``epoch`` (1-based)."""
    original, calls = training.Trainer.train_epoch, []

    def interrupting(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    training.Trainer.train_epoch = interrupting
    try:
        with pytest.raises(KeyboardInterrupt):
            VAE(**params).fit(X, checkpoint_dir=folder, checkpoint_every=3)
    finally:
        training.Trainer.train_epoch = original


def assert_same_fit(a: VAE, b: VAE) -> None:
    left, right = a.module_.state_dict(), b.module_.state_dict()
    assert left.keys() == right.keys()
    assert all(torch.equal(left[k], right[k]) for k in left)
    drop_time = [{k: v for k, v in r.items() if k != "seconds"} for r in a.history_]
    assert drop_time == [{k: v for k, v in r.items() if k != "seconds"} for r in b.history_]
    np.testing.assert_array_equal(a.gmm_.means_, b.gmm_.means_)


@pytest.fixture(scope="module")
def X(digits):
    return digits[0][:600] / 16


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_an_interrupted_fit_resumes_bit_identically(X, tmp_path, ema_decay):
    params = dict(EARLY_STOPPING, verbose=False, learning_rate_schedule="cosine")
    params["ema_decay"] = ema_decay
    unbroken = VAE(**params).fit(X)
    assert 20 < unbroken.n_epochs_ < 200  # early stopping fires after the interruption
    fit_interrupted_at(X, 20, tmp_path / "ckpt", **params)
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["epoch"] == 18 and not state["finished"]
    resumed = VAE(**params).fit(X, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=3)
    assert_same_fit(unbroken, resumed)


def test_a_finished_checkpoint_is_not_trained_further(X, tmp_path):
    params = dict(n_components=2, max_epochs=4, random_state=0, verbose=False)
    first = VAE(**params).fit(X[:300], checkpoint_dir=tmp_path)
    assert json.loads((tmp_path / "state.json").read_text())["finished"]
    again = VAE(**params).fit(X[:300], checkpoint_dir=tmp_path)
    assert_same_fit(first, again)


def test_a_checkpoint_of_other_parameters_or_data_is_refused(X, tmp_path):
    VAE(n_components=2, max_epochs=2, verbose=False).fit(X[:300], checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match="other parameters or data"):
        VAE(n_components=3, max_epochs=2, verbose=False).fit(X[:300], checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match="other parameters or data"):
        VAE(n_components=2, max_epochs=2, verbose=False).fit(X[:301], checkpoint_dir=tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_checkpoint_is_refused(X, tmp_path, damage):
    VAE(n_components=2, max_epochs=2, verbose=False).fit(X[:300], checkpoint_dir=tmp_path)
    tensors = tmp_path / "state.safetensors"
    data = tensors.read_bytes()
    if damage == "truncate":
        tensors.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        tensors.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    else:
        tensors.unlink()
    with pytest.raises(ModelFileError, match="unreadable or corrupt"):
        VAE(n_components=2, max_epochs=2, verbose=False).fit(X[:300], checkpoint_dir=tmp_path)


def test_checkpoint_every_must_be_positive(X, tmp_path):
    with pytest.raises(ConfigError, match="checkpoint_every"):
        VAE(max_epochs=1, verbose=False).fit(X, checkpoint_dir=tmp_path, checkpoint_every=0)


TRAIN = ["train", "digits", "--max-epochs", 30, "--batch-size", 16, "--no-pictures", "--quiet"]
TRAIN += ["--checkpoint-every", 4, "--hidden-sizes", "48,24", "--learning-rate-schedule", "cosine"]


def start_training(out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [str(VAEKIT), *map(str, TRAIN), "--out", str(out)], env=env, preexec_fn=restore_ctrl_c
    )


def wait_for_checkpoint(process: subprocess.Popen, out: Path, epoch: int) -> None:
    """Wait until the checkpoint holds at least ``epoch`` epochs, while the run is training."""
    state = out.with_name(out.name + ".partial") / "training_state" / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if state.is_file() and json.loads(state.read_text())["epoch"] >= epoch:
            return
        time.sleep(0.01)
    raise AssertionError("training ended or stalled before the checkpoint was written")


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume") / "unbroken"
    assert start_training(folder).wait(timeout=300) == 0
    return folder


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_killed_run_resumes_to_the_same_weights(unbroken, tmp_path, sig):
    killed = tmp_path / "killed"
    process = start_training(killed)
    wait_for_checkpoint(process, killed, 8)
    time.sleep(0.15)  # into the next epochs: about 0.1 s each
    process.send_signal(sig)
    assert process.wait(timeout=60) == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    partial = tmp_path / "killed.partial"
    assert not killed.exists() and (partial / "request.json").is_file()
    assert json.loads((partial / "training_state" / "state.json").read_text())["epoch"] < 30

    refused = vaekit(*TRAIN, "--seed", 5, "--out", killed, check=False)
    assert_clean_error(refused, "interrupted run of another request", "--resume")
    # After SIGKILL, the same command again (a scheduler's restart); after Ctrl-C, --resume.
    again = [*map(str, TRAIN), "--out", str(killed)] if sig == signal.SIGKILL else []
    done = subprocess.run(
        [str(VAEKIT), *(again or ["train", "--resume", str(killed), "--quiet"])],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"run folder: {killed}" in done.stdout and not partial.exists()
    for name in ("model.safetensors", "metrics.jsonl"):
        assert (killed / name).is_file()
    weights = (killed / "model.safetensors").read_bytes()
    assert weights == (unbroken / "model.safetensors").read_bytes()


def test_an_interrupted_command_says_how_to_resume(tmp_path):
    process = subprocess.Popen(
        [str(VAEKIT), *map(str, TRAIN), "--out", str(tmp_path / "run")],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=restore_ctrl_c,
    )
    wait_for_checkpoint(process, tmp_path / "run", 4)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip() == (
        "vaekit: interrupted; the last checkpoint is kept; finish the run with "
        f"'vaekit train --resume {tmp_path / 'run'}'"
    )


def test_resume_refuses_what_it_cannot_resume(tmp_path):
    assert_clean_error(vaekit("train", "--resume", tmp_path / "none", check=False), "nothing")
    finished = tmp_path / "finished"
    vaekit("train", "digits", "--max-epochs", 1, "--no-pictures", "--quiet", "--out", finished)
    assert not (tmp_path / "finished.partial").exists()
    assert (finished / "training_state" / "state.json").is_file()
    done = vaekit("train", "--resume", finished)  # a scheduler's second issue of the command
    assert (
        done.returncode == 0 and "has finished training; there is nothing to resume" in done.stdout
    )
    done = vaekit("train", "--resume", finished, "--max-epochs", 3, check=False)
    assert_clean_error(done, "pass no others")
    broken = tmp_path / "broken.partial"
    broken.mkdir()
    (broken / "request.json").write_text("{}")
    assert_clean_error(vaekit("train", "--resume", broken, check=False), "not a valid run request")


def test_a_partial_folder_killed_before_its_request_is_replaced(tmp_path):
    (tmp_path / "run.partial").mkdir()  # killed before request.json was written
    vaekit(*TRAIN[:2], "--max-epochs", 1, "--no-pictures", "--quiet", "--out", tmp_path / "run")
    assert (tmp_path / "run" / "run.json").is_file()
    assert not (tmp_path / "run.partial").exists()


def test_overwrite_discards_an_interrupted_run(tmp_path):
    partial = tmp_path / "run.partial"
    partial.mkdir()
    (partial / "request.json").write_text("{}")
    out = tmp_path / "run"
    vaekit(*TRAIN[:3], 1, "--no-pictures", "--quiet", "--out", out, "--overwrite")
    assert (out / "run.json").is_file() and not partial.exists()


def test_a_second_process_cannot_train_into_a_run_in_progress(tmp_path):
    run, longer = tmp_path / "run", [*TRAIN, "--max-epochs", 100]  # still training when killed
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([str(VAEKIT), *map(str, longer), "--out", str(run)], env=env)
    wait_for_checkpoint(process, run, 2)
    second = vaekit(*longer, "--out", run, check=False)  # the same command, while it trains
    assert_clean_error(second, f"{run} is being trained by another vaekit process right now")
    assert process.poll() is None
    process.kill()
    process.wait(timeout=60)
    assert (tmp_path / "run.lock").exists()  # a killed process leaves the file, not the lock
    done = vaekit(*longer, "--out", run)  # so the same command again goes on with the run
    assert f"run folder: {run}" in done.stdout
    assert not (tmp_path / "run.lock").exists() and not (tmp_path / "run.partial").exists()
