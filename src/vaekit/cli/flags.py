"""Estimator parameters as command-line flags and TOML keys, and argparse value types.

Each flag comes from a declaration in ``vaekit.estimators.params`` and the signatures of the
registered models, so a new parameter is a new flag and a new config key with no change here.
"""

from __future__ import annotations

import argparse
import inspect
import math

from ..estimators.params import PARAMS, Param
from ..estimators.registry import MODELS
from ..exceptions import ConfigError
from ..runs.reproduce import UNFLAGGED

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
    "log_dir",
    "condition",
    "labels_kept",
)

#: Parameters that are no flag: networks cannot be typed, and the run sets the others from
#: its own options (--binarize, --seed, --quiet). The reproduce command relies on the same set.
SKIPPED_PARAMS = UNFLAGGED

#: The defaults that ``runs.data_defaults`` picks from the data when the flag is not given.
DATA_DEFAULTS = {
    "likelihood": "bernoulli for binary data or with a --binarize other than none, "
    "gaussian otherwise",
    "standardize": "on when the data have values outside [0, 1], --binarize is none and the "
    "likelihood gaussian, off otherwise",
    "image_shape": "the shape of image data unless their values fall outside [0, 1], "
    "none for tables",
}


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


def _number_in(text: str, accepted, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not accepted(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    return _number_in(text, lambda v: 0 < v < 1, "a number between 0 and 1")


def outlier_fraction(text: str) -> float:
    """An argparse type: a number in (0, 0.5], as an outlier detector's contamination."""
    return _number_in(text, lambda v: 0 < v <= 0.5, "a number in (0, 0.5]")


def _optional(convert):
    def parse(text: str):
        return None if text.lower() == "none" else convert(text)

    parse.__name__ = convert.__name__
    return parse


def _flagged():
    """(model name, signature entry) for every parameter of the registered models with a flag."""
    for model, cls in MODELS.items():
        for p in inspect.signature(cls).parameters.values():
            if p.name not in SKIPPED_PARAMS:
                yield model, p


def estimator_params() -> dict[str, inspect.Parameter]:
    """Every parameter of the registered models that a flag or a config file can set.

    Returns
    -------
    dict of str to inspect.Parameter
        In signature order, the first model's parameters first; each with the signature
        entry of the first model that takes it.
    """
    params: dict[str, inspect.Parameter] = {}
    for _, p in _flagged():
        params.setdefault(p.name, p)
    return params


def _model_defaults() -> dict[str, dict[str, object]]:
    """For each flagged parameter, its default in each registered model that takes it."""
    defaults: dict[str, dict[str, object]] = {}
    for model, p in _flagged():
        defaults.setdefault(p.name, {})[model] = p.default
    return defaults


def _shown(value) -> str:
    """A value as it is typed on the command line."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _help(param: Param, defaults: dict[str, object]) -> str:
    """The declaration's first sentence, then which models, the choices and the default."""
    notes = []
    if len(defaults) < len(MODELS):
        notes.append(f"{' and '.join(defaults)} only")
    if param.choices is not None:
        notes.append(f"choices: {', '.join(_shown(c) for c in param.choices)}")
    if param.name in DATA_DEFAULTS:
        default = DATA_DEFAULTS[param.name]
    elif len({_shown(v) for v in defaults.values()}) == 1:
        default = _shown(next(iter(defaults.values())))
    else:
        default = ", ".join(f"{_shown(v)} for {model}" for model, v in defaults.items())
    notes.append(f"default: {default}")
    return f"{param.summary()} ({'; '.join(notes)})".replace("%", "%%")


def _metavar(param: Param) -> str:
    """``{mlp,linear,conv}`` for a closed set of choices, else the name in capitals."""
    if param.choices is None:
        return param.name.upper()
    return "{" + ",".join(_shown(c) for c in param.choices) + "}"


def _converter(param: Param, default):
    kind = param.cli or (str if param.choices else type(default))
    convert = _int_tuple if kind is tuple else kind
    return _optional(convert) if param.check(None) else convert


def add_estimator_flags(parser: argparse.ArgumentParser) -> None:
    """Add a --flag for every parameter of the registered models.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser; the flags go into their own group, each with the first sentence
        of its declaration, its choices and the default the command uses.
    """
    names = " / ".join(f"vaekit.{cls.__name__}" for cls in MODELS.values())
    group = parser.add_argument_group(f"model parameters (as in {names})")
    for name, defaults in _model_defaults().items():
        param = PARAMS[name]
        flag = "--" + name.replace("_", "-")
        default = next(iter(defaults.values()))
        if isinstance(default, bool):
            group.add_argument(
                flag,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=_help(param, defaults),
            )
        else:
            group.add_argument(
                flag,
                dest=name,
                type=_converter(param, default),
                choices=param.choices,
                default=argparse.SUPPRESS,
                metavar=_metavar(param),
                help=_help(param, defaults),
            )


def read_config(path: str) -> dict:
    """The options of a TOML config file, with lists of parameters as tuples.

    Parameters
    ----------
    path : str
        The TOML file; its keys are run options and estimator parameters, spelt as in Python.

    Returns
    -------
    dict
        Option name to value.

    Raises
    ------
    ConfigError
        When the file is missing, is not TOML or has unknown keys.
    """
    try:
        with open(path, "rb") as f:
            options = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"No config file at {path}.") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML ({err}).") from None
    params = estimator_params()
    if unknown := sorted(set(options) - set(RUN_OPTIONS) - set(params)):
        raise ConfigError(f"{path} has unknown keys: {', '.join(unknown)}.")
    return {k: tuple(v) if isinstance(v, list) and k in params else v for k, v in options.items()}
