"""Test-suite setup: make ``tests/_shared.py`` importable (``from _shared import shared_path``).

With ``--import-mode=importlib`` pytest does not put test folders on ``sys.path``.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
