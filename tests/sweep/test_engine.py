"""The Dask engine: the same numbers with any number of workers or through a scheduler
started separately; a worker killed mid-point has its point run again; a driver killed
mid-study loses nothing that finished."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from xbarlab.errors import ConfigError
from xbarlab.sweep.engine import Engine, default_chunk, machine_workers
from xbarlab.sweep.kinds import get_kind
from xbarlab.sweep.outputs import results_csv
from xbarlab.sweep.runner import PointStore, run_points
from xbarlab.sweep.study import parse_study

DRAW = {"study": {"kind": "draw", "seed": 11}, "settings": {"samples": 64},
        "grid": {"index": list(range(12))}}
CROSSBAR = {"study": {"kind": "crossbar", "seed": 2, "programmings": 2},
            "settings": {"vectors": 2}, "grid": {"n": [8, 16], "adc_bits": [4, 8]}}


def _metric_columns(study, results) -> list[str]:
    """results.csv without the wall time and worker columns (the last two)."""
    return [line.rsplit(",", 2)[0] for line in results_csv(study, results).splitlines()]


def _run(doc, engine):
    study = parse_study(doc)
    return study, _metric_columns(study, run_points(study.kind.run, study.points,
                                                    engine=engine, progress=False))


def test_engine_arguments_checked():
    """workers < 0, workers with a scheduler, and an empty address are refused."""
    with pytest.raises(ConfigError, match="workers"):
        Engine(workers=-1)
    with pytest.raises(ConfigError, match="already sized"):
        Engine(workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ConfigError, match="scheduler"):
        Engine(scheduler=" ")
    assert Engine().workers == machine_workers() >= 1


def test_in_process_map_keeps_order_and_raises_the_error():
    """workers=0: values in item order; the first failing item's own exception."""
    with Engine(workers=0) as e:
        assert e.map(lambda x: x * x, [3, 1, 2]) == [9, 1, 4]
        with pytest.raises(ZeroDivisionError):
            e.map(lambda x: 1 / x, [1, 0])


@pytest.mark.parametrize("workers", [1, 2])
def test_same_bytes_with_1_and_2_workers(workers):
    """The metric columns of a 12-point study equal those computed in this process; a
    task on a worker sees one Numba thread and BLAS/OpenMP pools of one thread."""
    def thread_counts(_):  # a closure: sent to the workers by value
        import numba
        from threadpoolctl import threadpool_info

        return numba.get_num_threads(), {p["num_threads"] for p in threadpool_info()}

    study, here = _run(DRAW, Engine(workers=0))
    with Engine(workers=workers) as e:
        _, there = _run(DRAW, e)
        numba_threads, pools = e.map(thread_counts, [0])[0]
    assert there == here
    assert numba_threads == 1 and pools <= {1}


@pytest.mark.slow
def test_same_bytes_with_4_workers_on_the_crossbar_kind():
    """Circuit solves (BLAS, Numba) on 1, 2 and 4 workers give the same bytes."""
    cols = []
    for w in (1, 2, 4):
        with Engine(workers=w) as e:
            cols.append(_run(CROSSBAR, e)[1])
    assert cols[0] == cols[1] == cols[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


@pytest.fixture(scope="module")
def scheduler():
    """A Dask cluster (scheduler on 127.0.0.1, 2 workers) started in another process."""
    port = _free_port()
    code = textwrap.dedent(f"""
        import sys
        from distributed import LocalCluster
        if __name__ == "__main__":
            with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                              scheduler_port={port}, dashboard_address=None,
                              scheduler_kwargs={{"dashboard_address": "127.0.0.1:0"}}) as c:
                print(c.scheduler_address, flush=True)
                sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=_child_env())
    try:
        address = proc.stdout.readline().strip()
        assert address.startswith("tcp://127.0.0.1:"), address
        yield address
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_same_bytes_through_a_scheduler_started_separately(scheduler):
    """The study run through tcp://127.0.0.1:PORT gives the bytes computed here."""
    _, here = _run(DRAW, Engine(workers=0))
    with Engine(scheduler=scheduler) as e:
        assert e.size == 2
        _, there = _run(DRAW, e)
    assert there == here


def test_chunk_sizes_give_the_same_bytes(scheduler):
    """100 points on 2 workers in chunks of 1, 3 and the default (7): the metric columns
    equal those computed here point by point; a point that raises inside a chunk is the
    only one recorded with an error."""
    doc = {**DRAW, "grid": {"index": list(range(100))}}
    study, here = _run(doc, Engine(workers=0))
    assert default_chunk(100, 2) == 7

    def failing_at_41(settings, rng):  # a closure: sent to the workers by value
        if settings["index"] == 41:
            raise ValueError("index 41")
        return get_kind("draw").run(settings, rng)

    with Engine(scheduler=scheduler) as e:
        for chunk in (1, 3, None):
            res = run_points(study.kind.run, study.points, engine=e, progress=False,
                             chunk=chunk)
            assert _metric_columns(study, res) == here, chunk
        res = run_points(failing_at_41, study.points, engine=e, progress=False, chunk=3)
    assert [r.point.settings["index"] for r in res if r.error] == [41]
    assert all(r.metrics for r in res if not r.error) and len(res) == 100


def test_default_chunk_gives_each_worker_several_chunks():
    """ceil(items / (8 x workers)), never below 1; a chunk that is not an integer >= 1
    is refused before anything runs."""
    assert default_chunk(1000, 2) == 63 and default_chunk(16, 2) == 1
    assert default_chunk(0, 4) == 1 and default_chunk(17, 1) == 3
    for bad in (0, 2.0, True):
        with pytest.raises(ConfigError, match="chunk"):
            run_points(lambda s, r: {}, [], engine=Engine(workers=0), chunk=bad)


@pytest.mark.slow
def test_crossbar_kind_through_a_scheduler(scheduler):
    """Circuit solves through the separate scheduler equal those of one local worker."""
    with Engine(workers=1) as e:
        _, local = _run(CROSSBAR, e)
    with Engine(scheduler=scheduler) as e:
        _, there = _run(CROSSBAR, e)
    assert there == local


def test_unreachable_scheduler_is_a_config_error():
    """An address nobody listens on -> ConfigError naming it."""
    addr = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(ConfigError, match="cannot be reached"):
        with Engine(scheduler=addr, timeout=1.0):
            pass


def _killing(flag):
    """The draw kind's point function, except that index 5 kills its worker process with
    SIGKILL the first time it runs (``flag`` marks that it did)."""
    run = get_kind("draw").run

    def f(settings, rng):
        if settings["index"] == 5 and not os.path.exists(flag):
            open(flag, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return run(settings, rng)

    return f


@pytest.mark.slow
def test_worker_killed_mid_point_reruns_it(tmp_path):
    """A worker SIGKILLed inside point 5: the point runs again elsewhere, the study
    completes, and its bytes equal an undisturbed run."""
    study, here = _run(DRAW, Engine(workers=0))
    flag = tmp_path / "killed"
    with Engine(workers=2, retries=2) as e:
        res = run_points(_killing(str(flag)), study.points, engine=e, progress=False)
    assert flag.exists()
    assert all(r.error is None for r in res)
    assert _metric_columns(study, res) == here


DRIVER = """
import sys, time
from xbarlab.sweep.engine import Engine
from xbarlab.sweep.kinds import get_kind
from xbarlab.sweep.runner import PointStore, run_points
from xbarlab.sweep.study import parse_study

def slow(settings, rng):
    time.sleep(0.15)
    with open(sys.argv[2], "a") as fh:
        fh.write(f"{settings['index']}\\n")
    return get_kind("draw").run(settings, rng)

if __name__ == "__main__":
    study = parse_study({"study": {"kind": "draw", "seed": 11}, "settings": {"samples": 64},
                         "grid": {"index": list(range(12))}})
    with Engine(workers=1) as e:
        run_points(slow, study.points, engine=e, store=PointStore(sys.argv[1]),
                   progress=False)
"""


def test_driver_killed_then_rerun_runs_only_missing_points(tmp_path):
    """The driver (and its cluster) killed with SIGKILL after 3 points finished; the
    rerun calls exactly the points the store lacks, and the bytes equal an undisturbed
    run."""
    store, calls = tmp_path / "points.jsonl", tmp_path / "calls"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(store), str(calls)],
                            env=_child_env(), start_new_session=True,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not store.exists() or
                                               len(store.read_text().splitlines()) < 3):
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    kept = PointStore(store).load()
    assert 3 <= len(kept) < 12
    study = parse_study(DRAW)
    rerun_calls = tmp_path / "rerun_calls"

    def counted(settings, rng):
        with open(rerun_calls, "a") as fh:
            fh.write(f"{settings['index']}\n")
        return get_kind("draw").run(settings, rng)

    res = run_points(counted, study.points, store=PointStore(store), engine=Engine(workers=0),
                     progress=False)
    ran = sorted(int(v) for v in rerun_calls.read_text().split())
    assert ran == sorted(p.settings["index"] for p in study.points if p.key not in kept)
    assert _metric_columns(study, res) == _run(DRAW, Engine(workers=0))[1]


def test_on_every_worker_runs_here_without_a_cluster():
    """workers=0: on_every_worker calls the function once, in this process."""
    calls = []
    with Engine(workers=0) as e:
        e.on_every_worker(lambda: calls.append(1))
    assert calls == [1]
