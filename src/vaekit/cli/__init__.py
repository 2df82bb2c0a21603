"""The ``vaekit`` command: parses arguments and calls the estimators and runs. Nothing else.

Every failure the user can fix prints one line, ``vaekit: error: ...``, and exits with status 2;
outputs are written atomically, so a failed command leaves nothing half-written behind. Under
torchrun, every process runs the command; rank 0 alone prints, except a process's own error.
"""

from __future__ import annotations

import os
import sys
import warnings

from ..engine.distributed import from_environment, join, lost_peer, mark_failed
from ..exceptions import VaekitError, VaekitWarning
from .parser import build_parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """vaekit's own warnings as one line, ``vaekit: warning: ...``; others as Python shows them."""
    if issubclass(category, VaekitWarning):
        print(f"vaekit: warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vaekit`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    warnings.showwarning = _show_warning
    world = from_environment()
    try:
        join()
        if not world.main:  # the same output as rank 0's: once is enough
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
            warnings.simplefilter("ignore", VaekitWarning)
        args.handler(args)
    except VaekitError as err:
        mark_failed()
        if world.main:
            print(f"vaekit: error: {err}", file=sys.stderr)
        elif not getattr(err, "everywhere", False):  # its own: say which process
            print(f"vaekit: error: process {world.rank} of {world.size}: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        mark_failed()
        print(
            f"vaekit: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 2
    except RuntimeError as err:  # torch.distributed's errors are RuntimeErrors
        if not (world.distributed and lost_peer(err)):
            raise
        mark_failed()
        print(
            f"vaekit: error: process {world.rank} of {world.size} lost contact with the others: "
            "one of them failed or was stopped, and its own message says why.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt as err:
        mark_failed()
        if world.main:
            print(f"vaekit: interrupted{f'; {err}' if str(err) else ''}", file=sys.stderr)
        return 130
    return 0
