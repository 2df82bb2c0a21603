"""``python -m vaekit``: the ``vaekit`` command (so that ``torchrun -m vaekit train ...`` works)."""

import sys

from .cli import main

sys.exit(main())
