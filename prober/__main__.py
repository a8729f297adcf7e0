"""``python -m prober``: the same as the ``prober`` command."""

import sys

from prober.cli import main

sys.exit(main())
