"""Parameters declared once: the checks, the docstrings and the command-line flags agree."""

import argparse
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vaekit import VAE
from vaekit.cli.flags import DATA_DEFAULTS, SKIPPED_PARAMS, _shown, estimator_params
from vaekit.cli.parser import build_parser
from vaekit.estimators.params import PARAMS, check_params
from vaekit.estimators.registry import MODELS
from vaekit.exceptions import ConfigError
from vaekit.runs import DATA_BINARIZE, data_defaults

VAEKIT = Path(sys.executable).parent / "vaekit"
ESTIMATOR_COMMANDS = ("train", "compare")

#: A value each parameter must refuse.
BAD = {
    "n_components": 0,
    "architecture": "transformer",
    "hidden_sizes": (0,),
    "activation": "sine",
    "image_shape": (0, 8),
    "channels": (),
    "encoder": "net",
    "decoder": "net",
    "m1": "vae",
    "likelihood": "laplace",
    "sigma": "huge",
    "sigma_value": 0.0,
    "sigma_floor": -1.0,
    "dispersion": "gene",
    "library_size": "yes",
    "binarize": "always",
    "standardize": "yes",
    "prior": "laplace",
    "prior_components": 0,
    "upper_layers": (2, 0),
    "upper_hidden_sizes": (-1,),
    "condition": "colour",
    "missing": "impute",
    "n_samples": 0,
    "objective": "kl",
    "beta": -1.0,
    "classifier_weight": -0.5,
    "warmup_epochs": -1,
    "warmup_time": "soon",
    "free_bits": -0.5,
    "n_importance_samples": 0,
    "gmm_components": 0,
    "batch_size": 0,
    "learning_rate": 0.0,
    "learning_rate_schedule": "step",
    "max_epochs": 0,
    "max_time": "forever",
    "validation_fraction": 1.0,
    "patience": 0,
    "clip_grad_norm": -1.0,
    "ema_decay": 1.0,
    "precision": "fp8",
    "device": "gpu",
    "random_state": -1,
    "verbose": "loud",
    "denoising": "salt",
    "noise_level": -0.1,
    "sparsity": -1.0,
}


def signature_params() -> dict[str, dict[str, inspect.Parameter]]:
    """Parameter name -> {model name: its signature entry}, over the registered models."""
    params: dict[str, dict[str, inspect.Parameter]] = {}
    for model, cls in MODELS.items():
        for name, p in inspect.signature(cls).parameters.items():
            params.setdefault(name, {})[model] = p
    return params


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def estimator_flags(command: str) -> dict[str, argparse.Action]:
    sub = subcommands(build_parser())[command]
    return {a.dest: a for a in sub._actions if a.dest in set(PARAMS) - SKIPPED_PARAMS}


# ---- the declarations ------------------------------------------------------------------------


def test_every_parameter_of_every_model_is_declared_exactly():
    assert set(PARAMS) == set(signature_params())
    assert set(BAD) == set(PARAMS)


def test_signature_defaults_pass_their_own_checks():
    for name, by_model in signature_params().items():
        for model, p in by_model.items():
            assert PARAMS[name].check(p.default), f"{model}'s default {name}={p.default!r}"
    for cls in MODELS.values():
        check_params(cls())
        cls()._check_params()


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_is_refused_with_the_declared_sentence(name):
    cls = next(cls for cls in MODELS.values() if name in inspect.signature(cls).parameters)
    param, bad = PARAMS[name], BAD[name]
    assert not _accepts(param, bad)
    with pytest.raises(ConfigError) as err:
        check_params(cls(**{name: bad}))
    if param.message is None:  # the check raises its own sentence (durations)
        assert str(err.value).startswith(f"{name} must be ")
    else:
        assert str(err.value) == param.message.format(value=bad)


def _accepts(param, value) -> bool:
    try:
        return bool(param.check(value))
    except ConfigError:
        return False


@pytest.mark.parametrize(
    "name, value",
    [
        ("device", "cuda:1"),
        ("device", "mps"),
        ("max_time", "1.5h"),
        ("max_time", 90),
        ("warmup_time", "60m"),
        ("max_epochs", None),
        ("image_shape", (28, 28)),
        ("image_shape", (3, 32, 32)),
        ("binarize", 0.5),
        ("binarize", "dynamic"),
        ("denoising", "masking"),
        ("random_state", np.random.RandomState(0)),
    ],
)
def test_good_values_pass(name, value):
    assert _accepts(PARAMS[name], value)


def test_messages_keep_their_wording():
    assert PARAMS["likelihood"].message.format(value="laplace") == (
        "Unknown likelihood 'laplace'; choose one of bernoulli, continuous_bernoulli, gaussian, "
        "poisson, negative_binomial, zinb."
    )
    assert PARAMS["precision"].message == "precision must be 'fp32', 'bf16' or 'fp16'."
    assert PARAMS["denoising"].message == "denoising must be None, 'gaussian' or 'masking'."
    assert PARAMS["device"].message == "device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."


@pytest.mark.parametrize(
    "params, message",
    [
        (
            dict(max_epochs=None),
            "max_epochs=None needs max_time; give a training-time budget or a number of epochs.",
        ),
        (dict(warmup_epochs=5, warmup_time="1m"), "Give warmup_epochs or warmup_time, not both."),
        (
            dict(likelihood="bernoulli", standardize=True),
            "standardize=True needs likelihood='gaussian'; binary or [0, 1] data need no scaling.",
        ),
    ],
)
def test_rules_across_parameters(params, message):
    with pytest.raises(ConfigError) as err:
        VAE(**params)._check_params()
    assert str(err.value) == message
    VAE(max_epochs=None, max_time="10s")._check_params()


def test_parameters_are_checked_before_the_data_are_read():
    unreadable = np.full((4, 3), np.nan)  # a DataError, were the rows looked at first
    with pytest.raises(ConfigError, match=r"^beta must be a number >= 0\.$"):
        VAE(beta=-1.0, verbose=False).fit(unreadable)


# ---- the docstrings ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", list(MODELS.values()), ids=list(MODELS))
def test_the_docstring_lists_each_parameter_once_with_its_default(cls):
    doc = cls.__doc__
    assert doc.count("Parameters\n----------\n") == 1
    for name, p in inspect.signature(cls).parameters.items():
        entries = re.findall(rf"^{name} : (.*)$", doc, flags=re.MULTILINE)
        assert entries == [f"{PARAMS[name].kind}, default={p.default!r}"], name
    assert doc.index("Parameters\n") < doc.index("Attributes\n")


# ---- the flags --------------------------------------------------------------------------------


def test_every_option_of_every_command_has_help():
    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                missing.extend(f"{path} {c.dest}" for c in action._choices_actions if not c.help)
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif not (action.help or "").strip():
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "vaekit")
    assert not missing


def test_flags_cover_the_models_parameters_but_the_run_options():
    assert set(estimator_params()) == set(signature_params()) - SKIPPED_PARAMS
    for command in ESTIMATOR_COMMANDS:
        assert set(estimator_flags(command)) == set(estimator_params())


@pytest.mark.parametrize("command", ESTIMATOR_COMMANDS)
def test_each_flag_shows_its_choices_and_the_default_the_command_uses(command):
    by_model = signature_params()
    for name, action in estimator_flags(command).items():
        param, text = PARAMS[name], action.help.replace("%%", "%")
        assert text.startswith(param.summary()), name
        if param.choices is not None:
            assert action.choices == param.choices, name
            assert f"choices: {', '.join(_shown(c) for c in param.choices)}" in text, name
        if name in DATA_DEFAULTS:
            assert f"default: {DATA_DEFAULTS[name]})" in text, name
        else:
            for model, p in by_model[name].items():
                assert _shown(p.default) in text.split("default: ")[1], (name, model)
        if len(by_model[name]) < len(MODELS):
            assert f"{' and '.join(by_model[name])} only" in text, name


def test_the_data_dependent_defaults_are_the_ones_described():
    for kind in ("binary", "unit", "real"):
        for binarize in DATA_BINARIZE:
            dataset = SimpleNamespace(kind=kind, image_shape=(1, 8, 8))
            assert set(data_defaults(dataset, binarize)) - {"binarize"} <= set(DATA_DEFAULTS)


def _option_help(help_text: str, flag: str) -> str:
    """The help of one option in ``--help`` output: from its line to the next option's."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(flag + " "))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("  -")), len(lines))
    return " ".join(" ".join(lines[start:end]).split()[2:])


def test_train_help_explains_every_flag():
    env = {**os.environ, "COLUMNS": "100"}
    done = subprocess.run(
        [str(VAEKIT), "train", "--help"], capture_output=True, text=True, env=env, check=True
    )
    for flag in ("--likelihood", "--beta", "--learning-rate"):
        text = _option_help(done.stdout, flag)
        assert len(text.split("(")[0].split()) >= 4, (flag, text)
    assert "default: shared for vae, fixed for autoencoder" in _option_help(done.stdout, "--sigma")
