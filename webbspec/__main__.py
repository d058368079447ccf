"""``python -m webbspec`` = the ``webbspec`` command."""

import sys

from .cli import main

sys.exit(main())
