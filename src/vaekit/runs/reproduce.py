"""The shell command that trains a run again, from the run folder's ``request.json``.

``request.json`` holds the arguments of ``runs.train_run``; the command spells them as
``vaekit train`` takes them, leaving out the options at their defaults.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

__all__ = ["RUN_FLAGS", "UNFLAGGED", "train_command"]

#: The run options of ``runs.train_run``: request key, flag, the default that needs no flag.
RUN_FLAGS = (
    ("model", "--model", "vae"),
    ("data_dir", "--data-dir", None),
    ("binarize", "--binarize", "none"),
    ("test_fraction", "--test-fraction", 0.1),
    ("seed", "--seed", 0),
    ("checkpoint_every", "--checkpoint-every", 1),
    ("condition", "--condition", None),
    ("labels_kept", "--labels-kept", None),
)
#: Estimator parameters that no flag of ``vaekit train`` sets (networks cannot be typed; the
#: run sets the others from --binarize, --seed, --quiet and --condition); ``cli.flags`` skips
#: them.
UNFLAGGED = frozenset(
    {"encoder", "decoder", "m1", "random_state", "verbose", "binarize", "condition"}
)
_NO_EFFECT = {"verbose"}  # changes the progress bar, not the model


def train_command(request: Mapping) -> str | None:
    """The ``vaekit train`` command line that trains the requested run again.

    Parameters
    ----------
    request : Mapping
        A run's ``request.json``: ``source``, ``model``, ``params`` (the estimator parameters
        that were given), ``data_dir``, ``binarize``, ``test_fraction``, ``seed``, ``pictures``
        and ``checkpoint_every``.

    Returns
    -------
    str or None
        One shell line, each word quoted with ``shlex.quote`` where it needs it: the source,
        the run options that differ from their defaults, then every given parameter as its
        flag (``--hidden-sizes 256,128``, ``--standardize`` / ``--no-standardize``,
        ``--patience none``). Without ``--out``, the command writes a new folder under
        ``runs/``. None when a parameter has no flag (a run started from Python with
        ``random_state`` or ``binarize`` among its parameters).
    """
    params = {k: v for k, v in request["params"].items() if k not in _NO_EFFECT}
    if UNFLAGGED & set(params):
        return None
    words = ["vaekit", "train", str(request["source"])]
    for key, flag, default in RUN_FLAGS:
        if request.get(key, default) != default:
            words += [flag, _flag_value(request[key])]
    if not request["pictures"]:
        words.append("--no-pictures")
    for name, value in params.items():
        flag = name.replace("_", "-")
        if isinstance(value, bool):
            words.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            words += [f"--{flag}", _flag_value(value)]
    return shlex.join(words)


def _flag_value(value) -> str:
    """A value as a flag takes it: none, comma-separated integers, or the number or text."""
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)
