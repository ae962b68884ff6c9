"""``python -m xbarlab.cli``: the ``xbarlab`` command."""

import sys

from . import main

sys.exit(main())
