"""``xbarlab sweep``: run a study file's points on a Dask cluster."""

from __future__ import annotations

import argparse

from ..checks import number_type
from .options import add_output_options, command_line

#: The command's name on the command line.
NAME = "sweep"
#: Its line in ``xbarlab --help``.
SUMMARY = "parameter sweep or Monte Carlo study from a study file, on a Dask cluster"
#: The text atop ``xbarlab sweep --help``.
DESCRIPTION = (
    "Run every point of STUDY.toml (a grid or list over the settings of a point kind, "
    "each point seeded from the study seed and its own settings) on a local Dask cluster "
    "or an existing one. Finished points are kept in OUT/points.jsonl: a rerun computes "
    "only what is missing. Writes OUT/results.csv (one row per point, sorted by key), "
    "OUT/plots/<metric>.png and OUT/report.md/.html. Exit status 1 when a point failed."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``xbarlab sweep``."""
    p.add_argument("study", metavar="STUDY.toml", help="study file (schema: README, Sweeps)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=number_type(integer=True, lo=1), default=None,
                       metavar="N", help="worker processes of a local Dask cluster, one "
                       "thread each (default: one per core)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="address of a running Dask scheduler, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--retries", type=number_type(integer=True, lo=0), default=2, metavar="K",
                   help="runs again of a point whose worker died (default 2)")
    p.add_argument("--chunk", type=number_type(integer=True, lo=1), default=None, metavar="N",
                   help="points per Dask task (default: about 8 tasks per worker, "
                   "ceil(points / (8 x workers))); results do not depend on it")
    p.add_argument("--yes", action="store_true",
                   help="run a study with more points than its max_points")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop at the first point that fails (default: record it, go on)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_output_options(p, metavar="OUT", what="output folder (reused: finished points kept)",
                       force_help="use a non-empty folder that xbarlab did not create")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xbarlab sweep`` with the parsed ``args``; return the exit status."""
    import time

    from .. import formats
    from ..errors import ConfigError
    from ..sweep.engine import Engine
    from ..sweep.outputs import write_results
    from ..sweep.runner import PointStore, run_points
    from ..sweep.study import load_study

    if args.scheduler is not None and not args.scheduler.strip():
        raise ConfigError("--scheduler must be an address such as tcp://127.0.0.1:8786, "
                          "got ''")
    try:
        study = load_study(args.study, yes=args.yes)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("pass yes=True", "pass --yes")) from None
    formats.check_output_path(args.out, folder=True, what="output folder")
    out = formats.prepare_output_dir(args.out, force=args.force, command=command_line(args))
    store = PointStore(out / "points.jsonl")
    done = {k for k, rec in store.load().items() if rec.get("error") is None}
    todo = sum(p.key not in done for p in study.points)
    t0 = time.perf_counter()
    engine = (Engine(workers=0) if todo == 0 else
              Engine(workers=args.workers, scheduler=args.scheduler, retries=args.retries))
    with engine:
        size = engine.size if todo else 0
        results = run_points(study.kind.run, study.points, store=store, engine=engine,
                             fail_fast=args.fail_fast,
                             progress=False if args.no_progress else None, name="point",
                             chunk=args.chunk)
    elapsed = time.perf_counter() - t0
    paths = write_results(study, results, out, command=command_line(args), elapsed_s=elapsed,
                          workers=size)
    failed = [r for r in results if r.error is not None]
    missing = len(study.points) - len(results)
    print(f"{len(study.points)} points: {sum(not r.cached for r in results)} computed on "
          f"{size} workers in {elapsed:.1f} s, {sum(r.cached for r in results)} from "
          f"{store.path}, {len(failed)} failed" + (f", {missing} not run" if missing else ""))
    for r in failed[:10]:
        print(f"failed: {r.point.key[:12]} {dict(r.point.settings)}: {r.error}")
    print(f"wrote {paths['csv']}, {paths['md']} and {len(paths['plots'])} plots")
    return 1 if failed or missing else 0
