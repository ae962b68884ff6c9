"""The ``xbarlab`` command line.

One module per command (:mod:`.inspect`, :mod:`.train`, :mod:`.crossbar`,
:mod:`.calibrate`, :mod:`.run`, :mod:`.export_noise`, :mod:`.evaluate`), each with its
``NAME``, ``SUMMARY`` (its line in ``xbarlab --help``), ``DESCRIPTION``,
``add_arguments(p)`` declaring its arguments and ``run(args)`` doing the work. Options
several commands share (measurement tables, output, device model, weight mapping, seed)
and the converters of their values live in :mod:`.options`. Handlers import what they
need lazily, so that ``xbarlab --help`` and ``xbarlab inspect`` import neither numba
kernels nor torch.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import OutputExistsError, XbarlabError
from . import calibrate, crossbar, evaluate, export_noise, inspect, run, train
from .options import (
    add_measurement_options,
    add_output_options,
    measurement_options_from_args,
    read_measurements_from_args,
)

__all__ = [
    "main",
    "build_parser",
    "add_measurement_options",
    "measurement_options_from_args",
    "read_measurements_from_args",
    "add_output_options",
]

#: The commands, in the order ``xbarlab --help`` lists them.
COMMANDS = (inspect, train, crossbar, calibrate, run, export_noise, evaluate)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``xbarlab`` with every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="xbarlab",
        description="Analog NVM compute-in-memory simulator: calibrate, solve crossbars, train.",
    )
    parser.add_argument("--version", action="version", version=f"xbarlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_arguments(sub.add_parser(command.NAME, help=command.SUMMARY,
                                             description=command.DESCRIPTION))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``xbarlab`` with the words ``argv`` (default: the command line).

    Returns
    -------
    int
        The exit status: 0 on success, 2 with one ``error:`` line on stderr for a bad
        option, input or file, 130 when interrupted.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    args.argv = argv  # the words as typed, which output manifests record
    try:
        return int(args.handler(args) or 0)
    except OutputExistsError as exc:  # the library's force=True is the command's --force
        print(f"xbarlab {args.command}: error: {str(exc).replace('force=True', '--force')}",
              file=sys.stderr)
        return 2
    # a bad option or input, an unreadable file, a full disk: one line, no traceback
    except (XbarlabError, OSError) as exc:
        print(f"xbarlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xbarlab {args.command}: interrupted", file=sys.stderr)
        return 130
