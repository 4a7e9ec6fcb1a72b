"""``python -m reglint``."""

import sys

from reglint.cli import main

sys.exit(main())
