"""The installable package: light imports, console script, layout, error hierarchy."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import xbarlab
from xbarlab import errors

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "data" / "examples" / "rram_relaxation.csv"
HEAVY = ("numba", "torch")


def _modules_after(code: str) -> set[str]:
    """Top-level modules of HEAVY + h5py present in sys.modules after running ``code``."""
    probe = (f"{code}\nimport sys\n"
             "print(','.join(m for m in ('numba', 'torch', 'h5py') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300, cwd=str(ROOT.parent))
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.rstrip("\n").split("\n")[-1]
    return set(filter(None, last.split(",")))


def test_import_is_light():
    """`import xbarlab` (and xbarlab.formats, xbarlab.units, xbarlab.calibration) imports
    neither numba, torch nor h5py."""
    code = "import xbarlab, xbarlab.formats, xbarlab.units, xbarlab.errors, xbarlab.calibration"
    assert _modules_after(code) == set()


def test_help_and_inspect_are_light():
    """`xbarlab --help` and `xbarlab inspect FILE` on a CSV import neither numba nor torch."""
    help_code = ("from xbarlab.cli import main\n"
                 "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0")
    assert not _modules_after(help_code) & set(HEAVY)
    inspect_code = f"from xbarlab.cli import main\nassert main(['inspect', {str(EXAMPLE)!r}]) == 0"
    assert not _modules_after(inspect_code) & set(HEAVY)


def test_nn_has_no_top_level_numba():
    """`import xbarlab.nn` does not import numba (it may import torch)."""
    assert "numba" not in _modules_after("import xbarlab.nn")


def test_version_matches_pyproject_and_cli(capsys):
    """xbarlab.__version__ equals pyproject's version; `xbarlab --version` prints it."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert xbarlab.__version__ == version
    from xbarlab.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"xbarlab {version}\n"


def test_help_lists_inspect(capsys):
    """`xbarlab --help` lists the inspect subcommand; `xbarlab` alone prints the help on
    stderr and exits 2 (a command is missing)."""
    from xbarlab.cli import main

    assert main([]) == 2
    assert "inspect" in capsys.readouterr().err


def test_error_hierarchy():
    """Each error is an XbarlabError and the builtin a caller would catch."""
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.DataFormatError, ValueError)
    assert issubclass(errors.ConvergenceError, RuntimeError)
    assert issubclass(errors.OutputExistsError, FileExistsError)
    for cls in (errors.ConfigError, errors.DataFormatError, errors.ConvergenceError,
                errors.OutputExistsError):
        assert issubclass(cls, errors.XbarlabError)
    assert errors.ConvergenceError("x", residual=1e-3).residual == 1e-3


def test_layout():
    """The package-wide modules sit at the root; nothing there is a test or build helper
    (every root .py file is installed as xbarlab.<name>): no conftest.py, setup.py,
    noxfile.py or test_*.py; no tests/__init__.py; pyproject ships data/**/* and lists
    the subpackages."""
    root_py = {p.name for p in ROOT.glob("*.py")}
    assert {"__init__.py", "errors.py", "units.py"} <= root_py
    assert not {n for n in root_py if n in ("conftest.py", "setup.py", "noxfile.py")
                or n.startswith("test_")}
    assert not (ROOT / "tests" / "__init__.py").exists()
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert cfg["tool"]["setuptools"]["package-dir"] == {"xbarlab": "."}
    assert set(cfg["tool"]["setuptools"]["packages"]) == {
        "xbarlab", "xbarlab.devices", "xbarlab.crossbar", "xbarlab.nn", "xbarlab.calibration",
        "xbarlab.formats", "xbarlab.pipeline", "xbarlab.cli", "xbarlab.nn.figures",
        "xbarlab.energy", "xbarlab.sweep"}
    assert "data/**/*" in cfg["tool"]["setuptools"]["package-data"]["xbarlab"]
    for sub in ("devices", "crossbar", "energy", "nn", "calibration", "formats", "pipeline",
                "cli", "sweep"):
        assert (ROOT / sub / "__init__.py").exists()


@pytest.mark.slow
def test_wheel_contains_package_data(tmp_path):
    """A wheel built from the tree holds xbarlab/data/README.md, the example table and its
    generator, and every subpackage's __init__.py (no tests, no .ci)."""
    import zipfile

    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
           "-w", str(tmp_path), str(ROOT)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("xbarlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for need in ("xbarlab/data/README.md", "xbarlab/data/examples/rram_relaxation.csv",
                 "xbarlab/data/examples/make_examples.py", "xbarlab/units.py",
                 "xbarlab/cli/__init__.py", "xbarlab/cli/__main__.py",
                 "xbarlab/formats/__init__.py", "xbarlab/pipeline/__init__.py",
                 "xbarlab/devices/__init__.py", "xbarlab/crossbar/__init__.py",
                 "xbarlab/nn/__init__.py", "xbarlab/calibration/__init__.py"):
        assert need in names, need
    assert not any(n.startswith(("xbarlab/tests/", "xbarlab/.ci/")) for n in names)


def test_readme_install_lines_agree_with_ci():
    """README's install-and-run line pins the torch that .ci/run installs, and its CPU-only
    line is the same line with PyTorch's CPU wheel index added to the torch install."""
    import re

    lines = [ln.strip() for ln in (ROOT / "README.md").read_text().splitlines()
             if ln.strip().startswith("python3 -m venv .venv")]
    assert len(lines) == 2, lines
    default, cpu = lines
    pin = re.search(r"pip install (torch==\S+) &&", default).group(1)
    assert f"pip install {pin}\n" in (ROOT / ".ci" / "run").read_text()
    assert cpu == default.replace(
        f"pip install {pin} &&",
        f"pip install {pin} --index-url https://download.pytorch.org/whl/cpu &&")
    assert default.endswith('pip install ".[dev]" && xbarlab run -o xbarlab-run')
