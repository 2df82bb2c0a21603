"""Saying what training did: why it stopped, a budget that ended it too soon, a collapsed
posterior; in Python as warnings and attributes, in the shell as the summary's own lines, in the
report as a sentence, its warnings and the kept epoch and early stop marked on the curves."""

import html
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.exceptions import ConvergenceWarning

import vaekit
from vaekit import plots
from vaekit.exceptions import DataError, PosteriorCollapseWarning
from vaekit.runs.report import write_report

VAEKIT = Path(sys.executable).parent / "vaekit"


@pytest.fixture(scope="module")
def X(digits):
    return digits[0] / 16


def test_a_budget_that_ends_training_while_it_improves_warns(X):
    with pytest.warns(ConvergenceWarning, match=r"max_epochs after 3 epochs .* best at epoch 3"):
        vae = vaekit.VAE(2, max_epochs=3, random_state=0, verbose=False).fit(X)
    assert (vae.stopped_by_, vae.best_epoch_, vae.n_epochs_) == ("max_epochs", 3, 3)


def test_early_stopping_says_which_weights_it_kept_and_does_not_warn(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ae = vaekit.Autoencoder(
            2, learning_rate=0.01, patience=2, max_epochs=300, random_state=0, verbose=False
        ).fit(X)
    assert ae.stopped_by_ == "early_stopping"
    assert ae.best_epoch_ == ae.n_epochs_ - 2
    best = min(record["val_loss"] for record in ae.history_)
    assert ae.history_[ae.best_epoch_ - 1]["val_loss"] == best


def test_a_collapsed_posterior_warns_with_what_to_try(X):
    with pytest.warns(PosteriorCollapseWarning, match="No latent unit is active.*warmup_epochs"):
        vaekit.VAE(2, max_epochs=3, random_state=0, verbose=False).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PosteriorCollapseWarning)
        # 4 of 4 units active for seeds 0-3 (2 units at lr 0.01 collapse for half the seeds)
        vaekit.VAE(4, hidden_sizes=(128,), max_epochs=40, learning_rate=3e-3, random_state=0,
                   verbose=False).fit(X)  # fmt: skip


def test_the_shell_says_why_training_stopped_and_repeats_the_warnings(tmp_path):
    done = subprocess.run(
        [str(VAEKIT), "train", "digits", "--max-epochs", "3", "--quiet", "--no-pictures"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "  stopped at max_epochs (3 epochs)"
    assert lines[2].startswith("  warning: Training stopped at max_epochs after 3 epochs")
    assert lines[3].startswith("  warning: No latent unit is active")
    assert "Warning" not in done.stderr  # said once, in the summary's words
    info = json.loads((tmp_path / "runs" / "digits-vae" / "run.json").read_text())
    assert info["training"]["stopped_by"] == "max_epochs" and len(info["training"]["warnings"]) == 2


HISTORY = [
    {"epoch": e + 1, "loss": 50 - e, "kl": 5.0, "val_loss": 52 - e + 0.5 * max(0, e - 5) ** 2}
    for e in range(10)
]
HUES = {"green": (1, 0, 2), "red": (0, 1, 2)}  # (channel, the others): tab:green, tab:red


def _columns_of(path: Path, hue: str) -> np.ndarray:
    """The pixel columns (pairs, for antialiasing) where a vertical line of ``hue`` runs."""
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    main, a, b = (pixels[..., c] for c in HUES[hue])
    strong = (main > a + 60) & (main > b + 60) & (np.abs(a - b) < 30)  # not orange, not blue
    rows = strong.sum(0)
    return np.flatnonzero(rows + np.roll(rows, 1) >= 40)


def test_the_curves_mark_the_kept_epoch_and_the_early_stop(tmp_path):
    path = plots.training_curves(HISTORY, tmp_path / "c.png", best_epoch=6, stopped_early=True)
    kept, stop = _columns_of(path, "green"), _columns_of(path, "red")
    assert kept.size and stop.size
    width = Image.open(path).width
    first_panel = width // 2  # two panels: loss, KL
    assert kept[kept < first_panel].max() < stop[stop < first_panel].min()  # epoch 6, then 10
    assert (kept > first_panel).any() and (stop > first_panel).any()  # in every panel


def test_the_curves_mark_only_what_applies(tmp_path):
    plain = plots.training_curves(HISTORY, tmp_path / "plain.png")
    assert not _columns_of(plain, "green").size and not _columns_of(plain, "red").size
    kept = plots.training_curves(HISTORY, tmp_path / "kept.png", best_epoch=10)
    assert _columns_of(kept, "green").size and not _columns_of(kept, "red").size
    with pytest.raises(DataError, match="best_epoch 11 is not one of"):
        plots.training_curves(HISTORY, tmp_path / "bad.png", best_epoch=11)


@pytest.mark.parametrize(
    ("training", "sentence"),
    [
        (
            {"stopped_by": "early_stopping", "best_epoch": 8, "patience": 4},
            "Training stopped early at epoch 12: no better validation loss for 4 epochs; it "
            "kept the weights of epoch 8.",
        ),
        (
            {"stopped_by": "max_epochs", "best_epoch": 12, "patience": None},
            "Training stopped at max_epochs (12 epochs); it kept the weights of its last epoch.",
        ),
        (
            {"stopped_by": "max_time", "best_epoch": 11, "patience": 20},
            "Training stopped when max_time ran out; it kept the weights of epoch 11.",
        ),
    ],
)
def test_the_report_says_why_training_stopped_and_repeats_the_warnings(
    training, sentence, tmp_path
):
    warned = ["Training stopped at max_epochs after 12 epochs <while falling>", "No unit."]
    path = write_report(
        tmp_path,
        title="t",
        metrics={"epochs": 12, "training_seconds": 3.5},
        config={},
        training=training | {"warnings": warned},
    )
    text = path.read_text(encoding="utf-8")
    assert f'<p id="stopped">{html.escape(sentence)}</p>' in text
    assert text.count("<li>Warning: ") == 2
    assert html.escape(warned[0]) in text
    rows = re.findall(r"<tr><th scope=row>(.*?)</th><td[^>]*>(.*?)</td><td[^>]*>(.*?)</td>", text)
    assert rows == [("epochs trained", "12", "epochs"), ("training time", "3.50", "seconds")]
