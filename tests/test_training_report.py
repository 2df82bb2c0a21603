"""Saying what training did: why it stopped, a budget that ended it too soon, a collapsed
posterior; in Python as warnings and attributes, in the shell as the summary's own lines."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from sklearn.exceptions import ConvergenceWarning

import vaekit
from vaekit.exceptions import PosteriorCollapseWarning

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
        vaekit.VAE(2, max_epochs=10, learning_rate=0.01, random_state=0, verbose=False).fit(X)


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
