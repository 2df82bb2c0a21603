"""The ``vaekit`` command: parses arguments and calls the estimators and runs. Nothing else.

Every failure the user can fix prints one line, ``vaekit: error: ...``, and exits with status 2;
outputs are written atomically, so a failed command leaves nothing half-written behind.
"""

from __future__ import annotations

import sys
import warnings

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
    warnings.showwarning = _show_warning
    try:
        args.handler(args)
    except VaekitError as err:
        print(f"vaekit: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(
            f"vaekit: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt as err:
        print(f"vaekit: interrupted{f'; {err}' if str(err) else ''}", file=sys.stderr)
        return 130
    return 0
