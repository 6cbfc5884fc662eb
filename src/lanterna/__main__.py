"""``python -m lanterna``: the same as the ``lanterna`` command."""

import sys

from .cli import main

sys.exit(main())
