"""Run a block under a given Numba and BLAS thread count (tests of same-bits-whatever-the-
thread-count), restoring both counts after."""

from __future__ import annotations

from contextlib import contextmanager

import pytest


def thread_counts_available(counts) -> None:
    """Skip the calling test unless this process can run Numba with every count in
    ``counts`` (``NUMBA_NUM_THREADS`` caps it; one core gives one thread)."""
    import numba

    if max(counts) > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS} < {max(counts)}")


@contextmanager
def thread_count(n: int):
    """Numba's parallel loops and the BLAS libraries use ``n`` threads inside the block."""
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        numba.set_num_threads(before)
