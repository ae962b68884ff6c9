"""The ``xbarlab`` command line.

Each subcommand has an ``_add_<name>`` function that declares its arguments and a
``_run_<name>`` handler. Handlers import what they need lazily, so that
``xbarlab --help`` and ``xbarlab inspect`` import neither numba kernels nor torch.
A subcommand is listed only once it works.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import XbarlabError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xbarlab",
        description="Analog NVM compute-in-memory simulator: calibrate, solve crossbars, train.",
    )
    parser.add_argument("--version", action="version", version=f"xbarlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


# --------------------------------------------------------------------------- subcommands
# (each issue adds its own _add_<name>/_run_<name> pair and appends _add_<name> below)

_SUBCOMMANDS: list = []


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except XbarlabError as exc:
        print(f"xbarlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xbarlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
