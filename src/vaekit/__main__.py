"""``python -m vaekit``: the ``vaekit`` command (so that ``torchrun -m vaekit train ...`` works).

Importing this module runs nothing (the API reference's inspection imports every module).
"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
