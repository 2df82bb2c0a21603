"""Estimator parameters as command-line flags and TOML keys, and argparse value types.

The flags are read from the estimators' signatures and docstrings, so a new parameter is a new
flag and a new config key with no change here.
"""

from __future__ import annotations

import argparse
import inspect
import re

from ..estimators import VAE, Autoencoder
from ..exceptions import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RUN_OPTIONS = (
    "model",
    "data",
    "out",
    "data_dir",
    "binarize",
    "test_fraction",
    "seed",
    "checkpoint_every",
)


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _optional(convert):
    def parse(text: str):
        return None if text.lower() == "none" else convert(text)

    parse.__name__ = convert.__name__
    return parse


def _float_or_dynamic(text: str):
    return text if text == "dynamic" else float(text)


#: Converters for parameters whose default (None) does not tell their type.
OPTIONAL_TYPES = {
    "image_shape": _optional(_int_tuple),
    "binarize": _optional(_float_or_dynamic),
    "patience": _optional(int),
    "clip_grad_norm": _optional(float),
    "denoising": _optional(str),
}
SKIPPED_PARAMS = {"encoder", "decoder", "random_state", "verbose", "binarize"}


def estimator_params() -> dict[str, inspect.Parameter]:
    """Every parameter of VAE and Autoencoder that a flag or a config file can set."""
    params: dict[str, inspect.Parameter] = {}
    for cls in (VAE, Autoencoder):
        for name, p in inspect.signature(cls).parameters.items():
            if name not in SKIPPED_PARAMS:
                params.setdefault(name, p)
    return params


def _param_help() -> dict[str, str]:
    """First sentence of each parameter's description in the estimators' docstrings."""
    helps: dict[str, str] = {}
    for cls in (VAE, Autoencoder):
        for names, text in re.findall(
            r"\n    (\w[\w, ]*) : [^\n]*\n((?:        [^\n]*\n)+)", cls.__doc__
        ):
            sentence = " ".join(text.split()).split(". ")[0].rstrip(".")
            for name in names.split(", "):
                helps.setdefault(name, sentence)
    return helps


def _converter(p: inspect.Parameter):
    if p.name in OPTIONAL_TYPES:
        return OPTIONAL_TYPES[p.name]
    if isinstance(p.default, tuple):
        return _int_tuple
    return type(p.default)


def add_estimator_flags(parser: argparse.ArgumentParser) -> None:
    """Add a --flag for every estimator parameter, with its docstring's first sentence as help."""
    group = parser.add_argument_group("model parameters (as in vaekit.VAE / vaekit.Autoencoder)")
    helps = _param_help()
    for name, p in estimator_params().items():
        flag = "--" + name.replace("_", "-")
        text = f"{helps.get(name, '')} (default: {p.default})".lstrip()
        if isinstance(p.default, bool):
            group.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            group.add_argument(
                flag, dest=name, type=_converter(p), default=None, metavar=name.upper(), help=text
            )


def read_config(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            options = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"No config file at {path}.") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML ({err}).") from None
    known = set(RUN_OPTIONS) | set(estimator_params())
    if unknown := sorted(set(options) - known):
        raise ConfigError(f"{path} has unknown keys: {', '.join(unknown)}.")
    params = estimator_params()
    return {k: tuple(v) if isinstance(v, list) and k in params else v for k, v in options.items()}
