"""``python -m cogrl``: the same as the ``cogrl`` command."""

import sys

from cogrl.cli import main

sys.exit(main())
