"""The ``vaekit`` command: parses arguments and calls the estimators and runs. Nothing else.

Every failure the user can fix prints one line, ``vaekit: error: ...``, and exits with status 2;
outputs are written atomically, so a failed command leaves nothing half-written behind.
"""

from __future__ import annotations

import sys

from ..exceptions import VaekitError
from .parser import build_parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vaekit`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
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
