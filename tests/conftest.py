"""Test-suite setup: make the helper modules in tests/ importable (``from _shared import
shared_path``, ``from _tiny_run import ...``), and the fixtures more than one test folder uses.

With ``--import-mode=importlib`` pytest does not put test folders on ``sys.path``.
"""

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished tiny ``xbarlab run`` (tests/_tiny_run.py): (config path, OUT). The run
    leaves torch's deterministic-algorithms flag as it found it."""
    import torch
    from _tiny_run import ALL, run, setup

    root = tmp_path_factory.mktemp("pipeline")
    cfg = setup(root)
    out = root / "out"
    deterministic = torch.are_deterministic_algorithms_enabled()
    res = run(cfg, out)
    assert res["status"] == {s: "ran" for s in ALL}
    assert torch.are_deterministic_algorithms_enabled() is deterministic
    return cfg, out
