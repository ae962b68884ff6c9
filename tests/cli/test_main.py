"""The ``xbarlab`` entry point (xbarlab/cli/__init__.py): light help, ``python -m``, one-line
errors and warnings."""

from __future__ import annotations

import subprocess
import sys

import pytest


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


def test_exit_status_and_message_by_error_kind():
    """Bad option values and existing outputs are usage errors (2), data, file and solver
    failures runtime errors (1), anything else is not swallowed (None: its traceback shows);
    a ConvergenceError with a NaN residual prints nan, force=True reads --force."""
    import math

    from xbarlab.cli import error_text, exit_status
    from xbarlab.errors import ConfigError, ConvergenceError, DataFormatError, OutputExistsError

    assert exit_status(ConfigError("x")) == 2 and exit_status(OutputExistsError("x")) == 2
    assert exit_status(DataFormatError("x")) == 1 and exit_status(OSError(28, "full")) == 1
    assert exit_status(ConvergenceError("x")) == 1 and exit_status(ValueError("x")) is None
    assert error_text(ConvergenceError("solver stopped", residual=math.nan)) == (
        "solver stopped (residual nan)")
    assert error_text(OutputExistsError("a exists; pass force=True")) == "a exists; pass --force"
    assert error_text(DataFormatError("bad\x1b]0;title\x07 file\nline 2")) == (
        "bad\\x1b]0;title\\x07 file line 2")


def test_library_keywords_read_as_the_command_options():
    """A message's `duplicates='first' or 'mean'` and `units='g=uS'` read as the options
    `--duplicates first or mean` and `--units g=uS` when the command has them; other
    keywords stay as written."""
    from xbarlab.cli import error_text
    from xbarlab.errors import DataFormatError

    exc = DataFormatError("Pass duplicates='first' or 'mean'; units='g=uS'; layout='wide'")
    assert error_text(exc, options=("duplicates", "units")) == (
        "Pass --duplicates first or mean; --units g=uS; layout='wide'")
    assert error_text(exc) == str(exc)


@pytest.mark.filterwarnings("always::xbarlab.errors.PlausibilityWarning")
def test_warning_is_one_line_naming_the_option(tmp_path, capsys):
    """Conductances of 12-15 S (µS without a unit): `inspect` exits 0 and stderr is one
    line 'xbarlab inspect: warning: ...' naming `--units g=uS` (no source line of code)."""
    from xbarlab.cli import main

    path = tmp_path / "w.csv"
    path.write_text("device,time,g\n0,1,12\n1,1,15\n")
    assert main(["inspect", str(path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"xbarlab inspect: warning: {path}: ")
    assert "conductances up to 15 S" in err[0] and "(--units g=uS)?" in err[0]


def test_cli_shortens_the_openmp_spin_unless_told_otherwise():
    """`xbarlab` sets GOMP_SPINCOUNT=1000 before torch loads OpenMP (long spins made
    two-thread training ~10x slower than one thread on a busy machine); a spin count or
    wait policy the user set is kept, and nothing is set once torch is loaded (OpenMP read
    the environment already)."""
    import os
    import subprocess
    import sys

    code = ("import os, sys; from xbarlab.cli import main\n"
            "{pre}\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY",
                                                              "GOMP_SPINCOUNT")}

    def spins(pre="", **extra):
        out = subprocess.run([sys.executable, "-c", code.format(pre=pre)], env={**env, **extra},
                             capture_output=True, text=True, check=True).stdout
        return out.split()[-1]

    assert spins() == "1000"
    assert spins(GOMP_SPINCOUNT="50") == "50"
    assert spins(OMP_WAIT_POLICY="ACTIVE") == "None"
    # torch loaded (a stand-in module: importing torch only to check this costs seconds)
    assert spins(pre="import types; sys.modules['torch'] = types.ModuleType('torch')") == "None"
