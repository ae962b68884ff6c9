"""Numba kernels compiled at their first call, and a notice when a call has to compile.

:func:`kernel` is ``numba.njit`` with declared signatures that compile when the kernel is
first called, not when its module is imported: a process compiles (or loads from Numba's
on-disk cache) only the kernels it calls, with exactly the declared types, so results are
those of an eager ``njit(signatures)``. Helper functions that kernels call stay plain
``numba.njit`` functions without signatures; they compile as part of their first caller.

A compile that misses the cache takes seconds to a minute; inside :func:`compile_notice`
the first such compile of the process calls the notice's callback once (the command line
prints one line on stderr), and a run served entirely from the cache calls nothing. This
module imports numba only when a kernel compiles, so importing it costs nothing.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["Kernel", "kernel", "compile_notice", "COMPILE_MESSAGE"]

#: What a command prints (once) when a kernel has to compile; every kernel a full
#: ``xbarlab run`` needs compiles in under a minute of CPU on a 2-core box (README,
#: Performance).
COMPILE_MESSAGE = ("compiling numerical kernels for first use (up to a minute on 2 cores; "
                   "cached afterwards)")

_LOCK = threading.RLock()
_state: dict[str, Any] = {"notice": None, "announced": False}


class Kernel:
    """A ``numba.njit`` kernel compiled for its declared signatures at its first call.

    Parameters
    ----------
    func : callable
        The Python function to compile (nopython mode).
    signatures : sequence of str
        Numba signatures, e.g. ``"void(float64[::1], int64)"``; a call whose arguments
        match none of them (after Numba's usual conversions) raises ``TypeError``.
    options : dict
        Keyword options of ``numba.njit`` (``cache``, ``parallel``, ``error_model``, ...).
    """

    def __init__(self, func: Callable, signatures: Sequence[str], options: dict[str, Any]):
        if isinstance(signatures, str):
            signatures = [signatures]
        self.py_func = func
        self.signatures = tuple(signatures)
        self.options = dict(options)
        self._dispatcher = None
        functools.update_wrapper(self, func)

    def __call__(self, *args):
        d = self._dispatcher
        if d is None:
            d = self.dispatcher()
        return d(*args)

    def dispatcher(self):
        """The compiled ``numba`` dispatcher: the declared signatures are compiled (or loaded
        from the cache) on the first use and no other signature is compiled after."""
        with _LOCK:
            if self._dispatcher is None:
                import numba
                from numba.core import event

                disp = numba.njit(**self.options)(self.py_func)
                keep = (_torch_threads_kept() if self.options.get("parallel")
                        else contextlib.nullcontext())
                with keep, event.install_listener("numba:compile", _listener()):
                    for sig in self.signatures:
                        disp.compile(sig)
                disp.disable_compile()
                self._dispatcher = disp
        return self._dispatcher

    @property
    def compiled(self) -> bool:
        """Whether the kernel has been compiled (or loaded from the cache) in this process."""
        return self._dispatcher is not None

    def __repr__(self):
        return f"<Kernel {self.__qualname__} ({len(self.signatures)} signature(s))>"


@contextlib.contextmanager
def _torch_threads_kept() -> Iterator[None]:
    # Numba starts its thread pool when it first compiles or runs a parallel kernel; its
    # OpenMP layer then sets the OpenMP thread count that torch shares, so a count the
    # caller gave torch (torch.set_num_threads) would silently become one per core. Start
    # the pool inside the block and give torch back its count.
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        yield
        import numba

        numba.get_num_threads()  # starts the pool if it is not running
    finally:
        if before is not None and torch.get_num_threads() != before:
            torch.set_num_threads(before)


def kernel(signatures: str | Sequence[str], **options) -> Callable[[Callable], Kernel]:
    """Decorator: ``numba.njit(signatures, **options)`` compiled at the first call.

    Parameters
    ----------
    signatures : str or sequence of str
        The Numba signatures to compile (all of them, at the first call).
    **options
        ``numba.njit`` options, e.g. ``cache=True, parallel=True``.

    Returns
    -------
    callable
        A decorator turning a function into a :class:`Kernel`.
    """
    def wrap(func: Callable) -> Kernel:
        return Kernel(func, signatures, options)

    return wrap


@contextlib.contextmanager
def compile_notice(callback: Callable[[str], Any]) -> Iterator[None]:
    """Call ``callback(COMPILE_MESSAGE)`` when a kernel compiles inside the block.

    Only the first compile of the process that misses Numba's cache calls it (once per
    process, whatever the number of blocks); kernels loaded from the cache never do. The
    previous callback is restored on leaving the block.

    Parameters
    ----------
    callback : callable
        Called with the one-line message, before the compile starts.
    """
    with _LOCK:
        before = _state["notice"]
        _state["notice"] = callback
    try:
        yield
    finally:
        with _LOCK:
            _state["notice"] = before


def _announce() -> None:
    with _LOCK:
        callback = _state["notice"]
        if callback is None or _state["announced"]:
            return
        _state["announced"] = True
    callback(COMPILE_MESSAGE)


@functools.cache
def _listener():
    """The ``numba.core.event`` listener that announces the first compile (built on first
    use, when numba is imported)."""
    from numba.core import event

    class Announcer(event.Listener):
        def on_start(self, event):
            _announce()

        def on_end(self, event):
            pass

    return Announcer()
