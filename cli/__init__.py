"""The ``xbarlab`` command line.

One module per command (:mod:`.inspect`, :mod:`.train`, :mod:`.crossbar`,
:mod:`.calibrate`, :mod:`.run`, :mod:`.export_noise`, :mod:`.evaluate`, :mod:`.sweep`,
:mod:`.ppa`, :mod:`.train_insitu`), each with its ``NAME``, ``SUMMARY`` (its line in
``xbarlab --help``), ``DESCRIPTION``,
``add_arguments(p)`` declaring its arguments and ``run(args)`` doing the work. Options
several commands share (measurement tables, output, device model, weight mapping, seed)
and the converters of their values live in :mod:`.options`. Handlers import what they
need lazily, so that ``xbarlab --help`` and ``xbarlab inspect`` import neither numba
kernels nor torch.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import warnings
from collections.abc import Collection

from .. import __version__
from ..errors import ConfigError, ConvergenceError, OutputExistsError, XbarlabError
from ..jit import compile_notice
from . import (
    calibrate,
    crossbar,
    evaluate,
    export_noise,
    inspect,
    ppa,
    run,
    sweep,
    train,
    train_insitu,
)
from .options import (
    add_measurement_options,
    add_output_options,
    measurement_options_from_args,
    read_measurements_from_args,
)

__all__ = [
    "main",
    "build_parser",
    "exit_status",
    "error_text",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "add_measurement_options",
    "measurement_options_from_args",
    "read_measurements_from_args",
    "add_output_options",
]

#: The commands, in the order ``xbarlab --help`` lists them.
COMMANDS = (inspect, train, train_insitu, crossbar, calibrate, run, export_noise, evaluate,
            sweep, ppa)

#: Exit status of a run that failed on its data, a file or a solver.
EXIT_FAILURE = 1
#: Exit status of a command line that is wrong (unknown or bad option values, a missing
#: argument, an output that exists without ``--force``).
EXIT_USAGE = 2


class UsageError(Exception):
    """A command line the parser refuses; ``str()`` is the one line to print."""


class Parser(argparse.ArgumentParser):
    """An ``argparse`` parser whose errors are one line (no usage block) and do not exit:
    :func:`main` prints them and returns :data:`EXIT_USAGE`."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        # "argument --grid: must be >= 2, got 1" -> "--grid must be >= 2, got 1"
        message = re.sub(r"^argument ([^:]+): (must be)", r"\1 \2", message)
        raise UsageError(f"{self.prog}: error: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``xbarlab`` with every command of :data:`COMMANDS`."""
    parser = Parser(
        prog="xbarlab",
        description="Analog NVM compute-in-memory simulator: calibrate, solve crossbars, train.",
    )
    parser.add_argument("--version", action="version", version=f"xbarlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_arguments(sub.add_parser(command.NAME, help=command.SUMMARY,
                                             description=command.DESCRIPTION))
    return parser


#: Spins of a waiting OpenMP thread before it sleeps (libgomp's ``GOMP_SPINCOUNT``; its
#: default spins about 300,000 times when threads are fewer than cores, 1,000 otherwise).
OPENMP_SPINS = 1000


def short_openmp_spin() -> bool:
    """Set ``GOMP_SPINCOUNT`` to :data:`OPENMP_SPINS` for this process and its children,
    unless ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` is set already or torch (which loads
    OpenMP, reading the variable once) is loaded. Returns whether it was set.

    A thread that spins while it waits takes a core from the other threads of its own
    team whenever another process holds a core: with libgomp's default, two-thread
    training on a busy 2-core machine was up to ten times slower than one thread. A short
    spin keeps two threads as fast as the default on an idle machine and as fast as one
    thread on a busy one (README, "Threads"). libgomp is the OpenMP of torch's Linux
    builds and of Numba's OpenMP layer; other OpenMP runtimes ignore the variable.
    """
    if any(v in os.environ for v in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")) or (
            "torch" in sys.modules):
        return False
    os.environ["GOMP_SPINCOUNT"] = str(OPENMP_SPINS)
    return True


def main(argv: list[str] | None = None) -> int:
    """Run ``xbarlab`` with the words ``argv`` (default: the command line).

    Returns
    -------
    int
        The exit status: 0 on success; 1 (:data:`EXIT_FAILURE`) with one ``error:`` line
        on stderr when the data, a file or a solver fails; 2 (:data:`EXIT_USAGE`) with one
        line for a wrong command line (bad option value, an existing output without
        ``--force``) and for a bare ``xbarlab`` (after the help); 130 when interrupted.
        ``--help`` and ``--version`` print and raise ``SystemExit(0)``, as argparse does.

    When stderr is a terminal, the first Numba compile of the process (a kernel missing
    from the on-disk cache, as on the first run after installing) prints one line,
    ``xbarlab COMMAND: compiling numerical kernels ...``, before it starts.

    Unless the environment already sets it, and when torch is not yet loaded, waiting
    OpenMP threads spin only briefly before they sleep (:func:`short_openmp_spin`; child
    processes inherit the setting).
    """
    short_openmp_spin()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    args.argv = argv  # the words as typed, which output manifests record
    options = [name for name in vars(args) if name not in ("command", "handler", "argv")]

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"xbarlab {args.command}: warning: {error_text(message, options=options)}",
              file=sys.stderr)

    def show_compiling(message):
        # progress news for a person at a terminal, as the progress bars of train and
        # export-noise: a log or a pipe gets only results, warnings and errors
        if sys.stderr is not None and sys.stderr.isatty():
            from tqdm import tqdm  # clears and redraws a progress bar around the line

            tqdm.write(f"xbarlab {args.command}: {message}", file=sys.stderr)

    # the filters as found; only the display is one line
    with warnings.catch_warnings(), compile_notice(show_compiling):
        warnings.showwarning = show_warning
        try:
            return int(args.handler(args) or 0)
        except KeyboardInterrupt:
            print(f"xbarlab {args.command}: interrupted", file=sys.stderr)
            return 130
        except BaseException as exc:  # noqa: BLE001 - one line per failure, status by kind
            status = exit_status(exc)
            if status is None:
                raise
            print(f"xbarlab {args.command}: error: {error_text(exc, options=options)}",
                  file=sys.stderr)
            return status


def exit_status(exc: BaseException) -> int | None:
    """The exit status for ``exc``: :data:`EXIT_USAGE` for a bad option value or an
    existing output, :data:`EXIT_FAILURE` for any other xbarlab error or an OSError,
    None for anything else (a bug: its traceback is shown)."""
    if isinstance(exc, (ConfigError, OutputExistsError)):
        return EXIT_USAGE
    if isinstance(exc, (XbarlabError, OSError)):
        return EXIT_FAILURE
    return None


def error_text(exc: BaseException | Warning, *, options: Collection[str] = ()) -> str:
    """The one-line message of an error or warning ``exc``.

    Line breaks are folded and control characters escaped (a file name or file content in
    a message cannot drive the terminal); the library's ``force=True`` reads ``--force``
    and a keyword ``name='value'`` (or ``name='a' or 'b'``) whose ``name`` is one of
    ``options`` (the command's option names, as in its parsed arguments) reads as the
    option, ``--name value``; a ConvergenceError shows its residual (``nan`` where it was
    NaN).
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    if isinstance(exc, OutputExistsError):
        text = text.replace("force=True", "--force")
    if options:
        text = _OPTION_WORDS.sub(lambda m: _as_option(m, options), text)
    if isinstance(exc, ConvergenceError) and exc.residual is not None:
        r = float(exc.residual)
        shown = "nan" if math.isnan(r) else f"{r:.3e}"
        if "residual" not in text:
            text += f" (residual {shown})"
    return text


#: A library keyword with its quoted value(s) in a message: ``units='g=uS'``,
#: ``duplicates='first' or 'mean'``.
_OPTION_WORDS = re.compile(r"\b([a-z][a-z_]*)=('[^']*'(?: or '[^']*')*)")


def _as_option(match: re.Match, options: Collection[str]) -> str:
    name = match.group(1)
    if name not in options:
        return match.group(0)
    values = re.findall(r"'([^']*)'", match.group(2))
    return f"--{name.replace('_', '-')} {' or '.join(values)}"
