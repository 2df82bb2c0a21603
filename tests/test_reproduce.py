"""The command a run's report shows: it spells the run as ``vaekit train`` takes it, and running
it trains the same estimator again."""

import inspect
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from vaekit.cli.parser import build_parser
from vaekit.estimators.registry import MODELS
from vaekit.runs import REQUEST_FILE, RUN_FILE, train_run
from vaekit.runs.reproduce import RUN_FLAGS, UNFLAGGED, train_command

BIN = Path(sys.executable).parent
DEFAULTS = {
    "source": "digits",
    "model": "vae",
    "params": {},
    "data_dir": None,
    "binarize": "none",
    "test_fraction": 0.1,
    "seed": 0,
    "pictures": True,
    "checkpoint_every": 1,
}


def test_options_at_their_defaults_are_left_out():
    assert train_command(DEFAULTS) == "vaekit train digits"


def test_the_run_options_follow_train_run_and_the_flags_the_cli():
    signature = inspect.signature(train_run).parameters
    assert {key: signature[key].default for key, _, _ in RUN_FLAGS} == {
        key: default for key, _, default in RUN_FLAGS
    }
    assert signature["pictures"].default is True


def test_values_are_spelt_as_flags_and_quoted_for_the_shell():
    request = DEFAULTS | {
        "source": "/data/my rows.csv",
        "model": "autoencoder",
        "binarize": "0.5",
        "seed": 7,
        "pictures": False,
        "params": {
            "hidden_sizes": [256, 128],
            "standardize": True,
            "gmm_components": None,
            "learning_rate": 0.003,
            "max_time": "60m",
        },
    }
    command = train_command(request)
    assert command == (
        "vaekit train '/data/my rows.csv' --model autoencoder --binarize 0.5 --seed 7 "
        "--no-pictures --hidden-sizes 256,128 --standardize --gmm-components none "
        "--learning-rate 0.003 --max-time 60m"
    )
    assert shlex.split(command)[2] == "/data/my rows.csv"
    no = train_command(DEFAULTS | {"params": {"standardize": False}})
    assert no.endswith("--no-standardize")


def test_verbose_is_left_out_and_a_parameter_without_a_flag_gives_no_command():
    assert train_command(DEFAULTS | {"params": {"verbose": False}}) == "vaekit train digits"
    for name in ("random_state", "binarize"):
        assert train_command(DEFAULTS | {"params": {name: 1}}) is None


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_parameter_parses_back_to_its_value(model):
    """All of a model's parameters in one command: the real parser reads each one back."""
    params = {k: v for k, v in MODELS[model]().get_params().items() if k not in UNFLAGGED}
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    command = train_command(DEFAULTS | {"model": model, "params": params})
    args = vars(build_parser().parse_args(shlex.split(command)[1:]))
    parsed = {k: list(args[k]) if isinstance(args[k], tuple) else args[k] for k in params}
    assert parsed == params
    assert (args["model"] or "vae") == model  # vae, the default, needs no --model


def test_running_the_command_trains_the_same_run_again(tmp_path):
    first = train_run(
        "digits",
        params={
            "hidden_sizes": (32, 16),
            "standardize": False,
            "patience": None,
            "max_epochs": 2,
            "learning_rate": 0.005,
        },
        out=tmp_path / "first",
        data_dir=str(tmp_path / "my data"),
        binarize="0.5",
        test_fraction=0.2,
        seed=3,
        pictures=False,
        checkpoint_every=2,
        verbose=False,
    )
    command = train_command(json.loads((first.folder / REQUEST_FILE).read_text()))
    assert "--max-epochs 2" in command and "--no-pictures" in command
    again = tmp_path / "again"
    again.mkdir()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        command, shell=True, cwd=again, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    info = json.loads((again / "runs" / "digits-vae" / RUN_FILE).read_text())
    assert info["params"] == first.info["params"] | {"verbose": True}
    assert info["data"] == first.info["data"]
    assert info["metrics"] == first.info["metrics"]  # the same seed: the same weights
