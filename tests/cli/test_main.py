"""The ``xbarlab`` entry point (xbarlab/cli/__init__.py): light help, ``python -m``."""

from __future__ import annotations

import subprocess
import sys


def test_help_imports_neither_torch_nor_numba():
    """`xbarlab --help` and `xbarlab train --help` exit 0 without importing torch or numba."""
    code = ("import sys\nfrom xbarlab.cli import main\n"
            "for a in (['--help'], ['train', '--help']):\n"
            "    try:\n        main(a)\n    except SystemExit as e:\n        assert e.code == 0\n"
            "print('torch' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"
    assert "--train-noise" in out.stdout


def test_python_m_runs_the_command_line():
    """`python -m xbarlab.cli --version` prints "xbarlab <version>" and exits 0, like the
    console script."""
    import xbarlab

    out = subprocess.run([sys.executable, "-m", "xbarlab.cli", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"xbarlab {xbarlab.__version__}"
