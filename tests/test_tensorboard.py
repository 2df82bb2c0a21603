"""TensorBoard logs (``fit(..., log_dir=)``, ``vaekit train --log-dir``), read back from the event
files: the scalars equal the history, the pictures have their sizes, the projector holds the
held-out rows' codes, a resumed fit continues the steps, and a missing package is one sentence."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
import vaekit.engine.loop as training
from vaekit.exceptions import ConfigError, TrainingInterrupted
from vaekit.runs import resume_run, train_run

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

DOCS = Path(__file__).parents[1] / "docs" / "tensorboard.md"
TINY = dict(n_components=2, hidden_sizes=(32,), verbose=False, random_state=0)
VAE_TAGS = {
    "train/loss",
    "train/reconstruction",
    "train/kl",
    "train/skipped_steps",
    "validation/loss",
    "validation/reconstruction",
    "validation/kl",
    "schedule/learning_rate",
    "schedule/kl_weight",
    "time/epoch_seconds",
}


def events(log_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def assert_scalars_are_the_history(accumulator: EventAccumulator, history: list[dict]) -> None:
    """Every entry of every record under its tag, at its epoch, as float32 (what events hold)."""
    steps = [record["epoch"] for record in history]
    for key in history[0]:
        if key == "epoch":
            continue
        tag = f"validation/{key[4:]}" if key.startswith("val_") else f"train/{key}"
        tag = {"learning_rate": "schedule/learning_rate", "seconds": "time/epoch_seconds"}.get(
            key, tag
        )
        logged = accumulator.Scalars(tag)
        assert [e.step for e in logged] == steps, tag
        assert [e.value for e in logged] == [float(np.float32(r[key])) for r in history], tag


def tsv_rows(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture(scope="module")
def split(digits):
    X, y = digits
    return X[:1500] / 16, y[:1500], X[1500:] / 16, y[1500:]


@pytest.fixture(scope="module")
def logged(split, tmp_path_factory):
    """A VAE of 8x8 digits fitted for 3 epochs with a 2-epoch KL warm-up, logged."""
    X, y, X_test, y_test = split
    log_dir = tmp_path_factory.mktemp("tb") / "logs"
    vae = vaekit.VAE(**TINY, image_shape=(1, 8, 8), max_epochs=3, warmup_epochs=2)
    vae.fit(X, y, log_dir=log_dir, log_rows=(X_test, y_test))
    return vae, log_dir


def test_every_number_of_the_history_is_a_scalar_at_its_epoch(logged):
    vae, log_dir = logged
    accumulator = events(log_dir)
    assert set(accumulator.Tags()["scalars"]) == VAE_TAGS
    assert_scalars_are_the_history(accumulator, vae.history_)
    # The KL weight of each epoch's last step: 1350 training rows make 11 batches of 128.
    kl_weight = [e.value for e in accumulator.Scalars("schedule/kl_weight")]
    expected = [min(1.0, (epoch + 10 / 11) / 2) for epoch in range(3)]
    assert kl_weight == pytest.approx(expected, rel=1e-6)
    assert [r["learning_rate"] for r in vae.history_] == [1e-3] * 3


def test_samples_and_reconstructions_are_pictured_at_epoch_1_and_the_kept_one(logged):
    vae, log_dir = logged
    accumulator = events(log_dir)
    assert set(accumulator.Tags()["images"]) == {"images/samples", "images/reconstructions"}
    for tag in ("images/samples", "images/reconstructions"):
        pictures = accumulator.Images(tag)
        assert [p.step for p in pictures] == sorted({1, vae.best_epoch_})
        # 64 samples, or 32 rows under their reconstructions: 8 rows of eight 8x8 tiles, with
        # a one-pixel gutter around each.
        assert {(p.width, p.height) for p in pictures} == {(8 * 9 + 1, 8 * 9 + 1)}


def test_the_projector_holds_the_codes_labels_and_pictures_of_the_rows(logged, split):
    vae, log_dir = logged
    _, _, X_test, y_test = split
    step = f"{vae.best_epoch_:05d}"  # the codes of the weights kept
    config = (log_dir / "projector_config.pbtxt").read_text()
    assert f'tensor_path: "{step}/latent/tensors.tsv"' in config
    assert f'metadata_path: "{step}/latent/metadata.tsv"' in config
    folder = log_dir / step / "latent"
    codes = np.loadtxt(folder / "tensors.tsv", delimiter="\t")
    np.testing.assert_allclose(codes, vae.transform(X_test), rtol=1e-12)
    assert tsv_rows(folder / "metadata.tsv") == [str(label) for label in y_test]
    side = math.ceil(math.sqrt(len(X_test))) * 8  # the sprite: every row's 8x8 picture
    assert (folder / "sprite.png").read_bytes()[16:24] == side.to_bytes(4, "big") * 2


def test_logging_leaves_the_fit_as_it_was(logged, split):
    vae, _ = logged
    X, y, _, _ = split
    plain = vaekit.VAE(**TINY, image_shape=(1, 8, 8), max_epochs=3, warmup_epochs=2).fit(X, y)
    for key, value in plain.module_.state_dict().items():
        assert torch.equal(value, vae.module_.state_dict()[key]), key


def test_a_resumed_fit_continues_the_steps(split, tmp_path):
    X, _, _, _ = split
    params = dict(TINY, max_epochs=5)
    log_dir, checkpoint = tmp_path / "logs", tmp_path / "state"

    def stop_after_epoch_3(record):  # logged by then; the checkpoint holds epoch 2
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vaekit.VAE(**params).fit(
            X, checkpoint_dir=checkpoint, checkpoint_every=2, log_dir=log_dir,
            callback=stop_after_epoch_3,
        )  # fmt: skip
    resumed = vaekit.VAE(**params).fit(X, checkpoint_dir=checkpoint, log_dir=log_dir)
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 2
    accumulator = events(log_dir)  # epoch 3 of the first fit is dropped, not shown twice
    assert_scalars_are_the_history(accumulator, resumed.history_)
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3, 4, 5]


def test_tables_get_scalars_and_codes_without_pictures(tmp_path):
    X = np.random.default_rng(0).normal(size=(120, 5))
    ae = vaekit.Autoencoder(**TINY, max_epochs=2).fit(X, log_dir=tmp_path)
    accumulator = events(tmp_path)
    assert accumulator.Tags()["images"] == []
    scalars = set(accumulator.Tags()["scalars"])
    assert {"train/code_l1", "validation/loss", "schedule/learning_rate"} <= scalars
    assert not any("kl" in tag for tag in scalars)  # an autoencoder has no KL weight
    folder = tmp_path / f"{ae.best_epoch_:05d}" / "latent"
    assert sorted(p.name for p in folder.iterdir()) == ["tensors.tsv"]  # no labels, no sprite
    assert len(tsv_rows(folder / "tensors.tsv")) == 120


def test_a_conditional_model_pictures_its_classes_and_embeds_by_condition(split, tmp_path):
    X, y, X_test, y_test = split
    vae = vaekit.VAE(**TINY, image_shape=(8, 8), condition="label", max_epochs=1)
    vae.fit(X, y, log_dir=tmp_path, log_rows=(X_test, y_test))
    assert [p.step for p in events(tmp_path).Images("images/samples")] == [1]
    codes = np.loadtxt(tmp_path / "00001" / "latent" / "tensors.tsv", delimiter="\t")
    np.testing.assert_allclose(codes, vae.transform(X_test, y_test), rtol=1e-12)


def test_rows_that_do_not_suit_the_model_are_refused_before_training(split, tmp_path):
    X, _, _, _ = split
    seen = []
    with pytest.raises(vaekit.DataError, match="64"):
        vaekit.VAE(**TINY).fit(
            X, log_dir=tmp_path / "logs", log_rows=X[:, :3], callback=seen.append
        )
    with pytest.raises(ConfigError, match=re.escape("image_shape (1, 7, 7) holds 49 values")):
        vaekit.VAE(**TINY, image_shape=(7, 7)).fit(X, log_dir=tmp_path / "logs")
    assert seen == [] and not (tmp_path / "logs").exists()


def test_without_the_package_fit_says_how_to_install_it(split, tmp_path, monkeypatch):
    X, _, _, _ = split
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    seen = []
    with pytest.raises(ConfigError) as caught:
        vaekit.VAE(**TINY).fit(X, log_dir=tmp_path / "logs", callback=seen.append)
    assert str(caught.value) == (
        "log_dir needs the tensorboard package: pip install 'vaekit[tensorboard]'."
    )
    assert seen == [] and not (tmp_path / "logs").exists()


def test_the_shell_refuses_without_the_package_in_one_line(tmp_path):
    code = (
        "import sys; sys.modules['torch.utils.tensorboard'] = None\n"
        "from vaekit.cli import main\n"
        "sys.exit(main(['train', 'digits', '--max-epochs', '1', '--quiet', '--out', 'run', "
        "'--log-dir', 'logs']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2
    assert done.stderr == (
        "vaekit: error: log_dir needs the tensorboard package: pip install 'vaekit[tensorboard]'.\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_vaekit_train_logs_the_held_out_rows(tmp_path):
    run, logs = tmp_path / "run", tmp_path / "logs"
    command = [sys.executable, "-m", "vaekit", "train", "digits", "--max-epochs", "2"]
    command += ["--hidden-sizes", "32", "--no-pictures", "--quiet", "--out", str(run)]
    done = subprocess.run(
        [*command, "--log-dir", "logs"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    accumulator = events(logs)
    assert_scalars_are_the_history(accumulator, history)
    info = json.loads((run / "run.json").read_text())
    best = info["training"]["best_epoch"]
    assert [p.step for p in accumulator.Images("images/samples")] == sorted({1, best})
    folder = logs / f"{best:05d}" / "latent"
    labels = tsv_rows(folder / "metadata.tsv")
    assert len(labels) == len(tsv_rows(folder / "tensors.tsv")) == info["data"]["n_test"]
    assert set(labels) == {str(digit) for digit in range(10)}
    request = json.loads((run / "request.json").read_text())
    assert request["log_dir"] == str(logs.resolve())  # absolute: a resume from anywhere logs here


def test_a_resumed_run_goes_on_logging_where_it_started(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    original, calls = training.Trainer.train_epoch, []

    def stop_in_epoch_3(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    params = {"max_epochs": 4, "hidden_sizes": (32,)}
    monkeypatch.setattr(training.Trainer, "train_epoch", stop_in_epoch_3)
    with pytest.raises(TrainingInterrupted):
        train_run("digits", params=params, out="run", log_dir="logs", pictures=False,
                  verbose=False)  # fmt: skip
    monkeypatch.setattr(training.Trainer, "train_epoch", original)
    run = resume_run(tmp_path / "run", verbose=False)
    assert_scalars_are_the_history(events(tmp_path / "logs"), run.estimator.history_)
    assert [r["epoch"] for r in run.estimator.history_] == [1, 2, 3, 4]


TWO_PROCESSES = """
import numpy as np, vaekit
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
vae = vaekit.VAE(2, hidden_sizes=(32,), image_shape=(8, 8), max_epochs=3, verbose=False)
vae.fit(X[:1500] / 16, y[:1500], log_dir="logs", log_rows=(X[1500:] / 16, y[1500:]))
"""


@pytest.mark.slow
def test_under_torchrun_rank_0_alone_writes(tmp_path):
    (tmp_path / "fit.py").write_text(TWO_PROCESSES)
    torchrun = Path(sys.executable).parent / "torchrun"
    done = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", "fit.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    logs = tmp_path / "logs"
    assert len(list(logs.glob("events.out.tfevents.*"))) == 1
    accumulator = events(logs)
    assert [e.step for e in accumulator.Scalars("train/loss")] == [1, 2, 3]
    assert len(accumulator.Images("images/samples")) >= 1
    (codes,) = logs.glob("0000*/latent/tensors.tsv")  # every held-out row, gathered in order
    assert len(tsv_rows(codes)) == len(tsv_rows(codes.with_name("metadata.tsv"))) == 297


def test_the_docs_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    block = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(block, str(DOCS), "exec"), namespace)
    accumulator = events(tmp_path / "logs" / "digits")
    assert "validation/loss" in accumulator.Tags()["scalars"]
    assert set(accumulator.Tags()["images"]) == {"images/reconstructions", "images/samples"}
    assert (tmp_path / "logs" / "digits" / "projector_config.pbtxt").is_file()
