"""Run independent tasks on a ``dask.distributed`` cluster, or in this process.

:class:`Engine` is the one way xbarlab spreads work over processes or machines: by default
a local cluster of worker processes sized to the machine (no setup), ``workers=N`` to size
it, ``scheduler=ADDRESS`` to use a cluster that already runs (``dask scheduler`` and ``dask
worker`` on a workstation, ``dask-jobqueue`` on Slurm), ``workers=0`` to run every task here,
one after another (no Dask at all).

Every task on a worker runs with one BLAS, one Numba and one torch thread (restored after
the task, so a shared worker keeps its own settings): the results do not depend on how
many workers ran them, and ``N`` workers use ``N`` cores. A local cluster's worker processes
inherit this process's environment, so they read the same Numba on-disk cache
(``NUMBA_CACHE_DIR`` or the ``__pycache__`` folders beside the kernels); the cluster is
started with ``NUMBA_NUM_THREADS=1`` and the Dask settings it needs are passed to it, never
written to Dask's global configuration.

Items travel in chunks: one Dask task runs several items one after another, so cheap
items do not each pay a scheduler round trip. By default (:func:`default_chunk`) each
worker gets about :data:`CHUNKS_PER_WORKER` chunks; ``chunk=1`` sends every item alone.
Chunking changes only how items travel: every item still gets its own :class:`Outcome`
(value or error, wall time, worker), and the values do not depend on the chunk size.

A task that raises becomes an :class:`Outcome` holding the error's text: the other tasks go
on. A worker that dies mid-chunk (killed, out of memory) has its chunk run again on another
worker by the scheduler, ``retries`` times at most.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ..errors import ConfigError

__all__ = ["Engine", "Outcome", "machine_workers", "single_thread", "run_task",
           "SingleThreadWorkers", "default_chunk", "check_chunk", "CHUNKS_PER_WORKER"]

#: Chunks each worker gets by default: enough that workers finishing at different times
#: stay busy (the last chunks balance the load), few enough that a scheduler round trip
#: (about 1 ms) is shared by many cheap items.
CHUNKS_PER_WORKER = 8


def default_chunk(items: int, workers: int) -> int:
    """Items per Dask task when none is given: ``ceil(items / (CHUNKS_PER_WORKER *
    workers))``, at least 1, so each of ``workers`` workers gets about
    :data:`CHUNKS_PER_WORKER` chunks."""
    return max(1, math.ceil(items / (CHUNKS_PER_WORKER * max(1, workers))))


def machine_workers() -> int:
    """The number of cores this process may run on (the default size of a local cluster)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run a block with one Numba thread and, where torch is loaded, one torch thread;
    restore both counts afterwards. A block that loads torch leaves it at one thread (the
    block runs in a worker, whose later tasks want the same). BLAS and OpenMP pools are
    limited once per worker process, by :class:`SingleThreadWorkers` and the local
    cluster's environment."""
    import sys

    import numba

    torch_loaded = "torch" in sys.modules
    with contextlib.ExitStack() as stack:
        before = numba.get_num_threads()
        if before != 1:
            numba.set_num_threads(1)
            stack.callback(numba.set_num_threads, before)
        if torch_loaded:
            import torch

            before_torch = torch.get_num_threads()
            if before_torch != 1:
                torch.set_num_threads(1)
                stack.callback(torch.set_num_threads, before_torch)
        yield
    if not torch_loaded and "torch" in sys.modules:
        import torch

        torch.set_num_threads(1)


class SingleThreadWorkers(WorkerPlugin):
    """A Dask worker plugin: at its start (and at the start of every worker that joins
    later) a worker limits the BLAS and OpenMP pools loaded in its process to one thread."""

    name = "xbarlab-single-thread"

    def setup(self, worker) -> None:  # noqa: D102 - the WorkerPlugin hook
        from threadpoolctl import ThreadpoolController

        ThreadpoolController().limit(limits=1)


@dataclass(frozen=True)
class Outcome:
    """What one task gave back."""

    #: The task's return value (None when it raised).
    value: Any
    #: ``"TypeName: message"`` of the exception the task raised, or None.
    error: str | None
    #: Wall time of the task on its worker [s].
    wall_s: float
    #: The worker that ran it (its name on the cluster; ``"local"`` in this process).
    worker: str
    #: The exception the task raised, or None.
    exception: BaseException | None = None


def _worker_name() -> str:
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        return "local"
    return str(w.name)


def _single_threaded_call(function: Callable) -> None:
    with single_thread():
        function()


def run_task(function: Callable, item, shared=None, *, limit_threads: bool = True) -> Outcome:
    """Call ``function(item)`` (or ``function(shared, item)`` when ``shared`` is given) and
    wrap its value or its exception in an :class:`Outcome` (the worker side of
    :class:`Engine`; with ``limit_threads``, inside :func:`single_thread`)."""
    t0 = time.perf_counter()
    with single_thread() if limit_threads else contextlib.nullcontext():
        try:
            value = function(item) if shared is None else function(shared, item)
            error, caught = None, None
        except Exception as exc:  # noqa: BLE001 - recorded with the point, the study goes on
            value, caught = None, exc
            text = " ".join(str(exc).split())
            error = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            if not isinstance(exc, ValueError | ArithmeticError | RuntimeError | OSError):
                # an unexpected kind: keep where it came from
                tb = traceback.extract_tb(exc.__traceback__)
                if tb:
                    error += f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})"
    return Outcome(value=value, error=error, wall_s=time.perf_counter() - t0,
                   worker=_worker_name(), exception=caught)


def _run_chunk(function: Callable, items: Sequence, shared=None) -> list[Outcome]:
    """:func:`run_task` on each of ``items`` in turn, inside one :func:`single_thread`."""
    with single_thread():
        return [run_task(function, item, shared, limit_threads=False) for item in items]


def check_chunk(chunk) -> None:
    """ConfigError unless ``chunk`` is None or an integer >= 1 (items per Dask task)."""
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int)
                              or chunk < 1):
        raise ConfigError(f"chunk must be an integer >= 1 (items per task), got {chunk!r}")


class Engine:
    """Where tasks run: a local ``dask.distributed`` cluster, an existing one, or here.

    Use it as a context manager: the cluster starts on entry and stops on exit (an
    existing cluster is only disconnected from).

    Parameters
    ----------
    workers : int, optional
        Worker processes of a local cluster, >= 1 (default: :func:`machine_workers`);
        ``0`` runs every task in this process, one after another, with this process's
        thread settings. Not used with ``scheduler``.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://127.0.0.1:8786"``.
    retries : int
        How many times a task whose worker died (or that failed on the way) is run
        again, >= 0.
    timeout : float
        How long to wait for ``scheduler`` to answer [s].
    """

    def __init__(self, *, workers: int | None = None, scheduler: str | None = None,
                 retries: int = 2, timeout: float = 20.0):
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                    or workers < 0):
            raise ConfigError(f"workers must be an integer >= 0, got {workers!r}")
        if scheduler is not None and workers is not None:
            raise ConfigError(f"workers ({workers}) sizes a local cluster; with scheduler "
                              f"{scheduler!r} the cluster is already sized")
        if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
            raise ConfigError(f"scheduler must be an address such as "
                              f"'tcp://127.0.0.1:8786', got {scheduler!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries must be an integer >= 0, got {retries!r}")
        self.workers = machine_workers() if workers is None and scheduler is None else workers
        self.scheduler = scheduler
        self.retries = retries
        self.timeout = float(timeout)
        self._client = None
        self._cluster = None
        self._stack = None

    @property
    def local(self) -> bool:
        """Whether tasks run in this process (``workers=0``)."""
        return self.scheduler is None and self.workers == 0

    def __enter__(self) -> Engine:
        if self.local:
            return self
        from distributed import Client, LocalCluster

        self._stack = contextlib.ExitStack()
        try:
            if self.scheduler is None:
                self._cluster = self._stack.enter_context(LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address=None, silence_logs=logging.CRITICAL,
                    # the scheduler's HTTP endpoints on a free port, never a busy :8787
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                         "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}))
                self._client = self._stack.enter_context(Client(self._cluster))
            else:
                try:
                    self._client = self._stack.enter_context(
                        Client(self.scheduler, timeout=f"{self.timeout}s"))
                except OSError as exc:
                    raise ConfigError(f"scheduler {self.scheduler!r} cannot be reached: "
                                      f"{exc}") from None
            self._client.register_plugin(SingleThreadWorkers())
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            self._client = self._cluster = None
            stack.close()

    @property
    def size(self) -> int:
        """Workers available now (1 in this process)."""
        if self._client is None:
            return 1
        return max(1, len(self._client.scheduler_info()["workers"]))

    def on_every_worker(self, function: Callable) -> None:
        """Call ``function()`` once in every worker process (here, with ``workers=0``),
        with the workers' one thread: e.g. to load Numba kernels before a timed run."""
        if self._client is None:
            function()
            return
        self._client.run(_single_threaded_call, function)

    def stream(self, function: Callable, items: Sequence, *, shared=None,
               name: str = "task", chunk: int | None = None
               ) -> Iterator[tuple[int, Outcome]]:
        """Run ``function`` on every item; yield ``(index, outcome)`` as tasks finish.

        Parameters
        ----------
        function : callable
            ``function(item)``, or ``function(shared, item)`` when ``shared`` is given; a
            module-level function (a worker imports it) or a closure (sent by value).
        items : sequence
            The tasks' arguments (each sent to its worker).
        shared : object, optional
            One argument every task receives, sent to each worker once.
        name : str
            Prefix of the tasks' names on the cluster's dashboard.
        chunk : int, optional
            Items per Dask task (consecutive items), >= 1; None:
            :func:`default_chunk` of the items and the workers available now. The values
            do not depend on it.

        Yields
        ------
        (int, Outcome)
            The item's index and what its item gave back, every item of a chunk when the
            chunk finishes; a chunk that could not run (its worker died more often than
            the cluster allows) yields an Outcome with the error for each of its items.
            Leaving the loop early cancels what has not run.
        """
        check_chunk(chunk)
        items = list(items)
        if self._client is None and not self.local:
            raise ConfigError("Engine.stream needs the engine entered: use "
                              "'with Engine(...) as engine:'")
        if self.local:
            for i, item in enumerate(items):
                yield i, run_task(function, item, shared, limit_threads=False)
            return
        if chunk is None:
            chunk = default_chunk(len(items), self.size)
        yield from self._stream_dask(function, items, shared, name, chunk)

    def _stream_dask(self, function, items, shared, name, chunk):
        from distributed import as_completed

        client = self._client
        token = uuid.uuid4().hex[:8]
        starts = range(0, len(items), chunk)
        chunks = [items[a:a + chunk] for a in starts]
        keys = [f"xbarlab-{name}-{token}-{a}" for a in starts]
        index = {k: a for a, k in zip(starts, keys, strict=True)}
        extra = {}
        if shared is not None:
            extra["shared"] = client.scatter(shared, broadcast=True, hash=False)
        # one callable for every task: Dask serializes it once, not once per task
        futures = client.map(functools.partial(_run_chunk, function), chunks, key=keys,
                             retries=self.retries, pure=False, **extra)
        done = set()
        try:
            for batch in as_completed(futures, with_results=True,
                                      raise_errors=False).batches():
                for fut, outcomes in batch:
                    a = index[fut.key]
                    n = min(chunk, len(items) - a)
                    if not isinstance(outcomes, list):  # the chunk could not run
                        exc = outcomes if isinstance(outcomes, BaseException) else \
                            RuntimeError(str(outcomes))
                        outcomes = [Outcome(value=None, error=f"{type(exc).__name__}: {exc}",
                                            wall_s=float("nan"), worker="", exception=exc)
                                    ] * n
                    done.add(fut.key)
                    fut.release()
                    for j, outcome in enumerate(outcomes):
                        yield a + j, outcome
        finally:
            pending = [f for f in futures if f.key not in done]
            if pending:
                with contextlib.suppress(Exception):
                    client.cancel(pending)

    def map(self, function: Callable, items: Iterable, *, shared=None, name: str = "task",
            progress=None, chunk: int | None = None) -> list:
        """Values of ``function`` over ``items``, in the order of ``items``.

        As :meth:`stream` (``chunk`` as there), but the first item that raises stops the
        run: its exception is raised here, after the remaining tasks are cancelled.
        ``progress`` (a callable of no arguments) is called once per finished item.
        """
        items = list(items)
        values: list = [None] * len(items)
        for i, out in self.stream(function, items, shared=shared, name=name, chunk=chunk):
            if out.error is not None:
                raise out.exception
            values[i] = out.value
            if progress is not None:
                progress()
        return values
