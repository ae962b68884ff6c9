"""Processes for data-parallel HA-SGD: start N ranks on this host and join them in a group.

:func:`run_ranks` starts ``nproc`` fresh Python processes with
:func:`torch.multiprocessing.spawn`, joins them in a :mod:`torch.distributed` process
group over TCP on 127.0.0.1 (a free port chosen here) with :func:`backend_for`'s backend
(gloo on the CPU, NCCL on CUDA devices), calls ``fn(rank, *args)`` in each and leaves the
group afterwards. Scripts started by ``torchrun`` join the group themselves
(``torch.distributed.init_process_group()`` reads torchrun's environment) and need none
of this. How :class:`~xbarlab.nn.hasgd.HASGD` splits its passes over the ranks: its
module docstring.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..errors import ConfigError

__all__ = ["backend_for", "free_port", "run_ranks"]

#: Backends by device type.
_BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


def backend_for(device: torch.device | str) -> str:
    """The :mod:`torch.distributed` backend for replicas on ``device``: ``"gloo"`` on the
    CPU, ``"nccl"`` on CUDA devices."""
    kind = torch.device(device).type
    if kind not in _BACKENDS:
        raise ConfigError(f"device {device!r} has no process-group backend here; expected one "
                          f"of {sorted(_BACKENDS)}")
    return _BACKENDS[kind]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_entry(rank: int, fn: Callable, nproc: int, port: int, backend: str,
                args: tuple) -> None:
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=nproc)
    try:
        fn(rank, *args)
    finally:
        dist.destroy_process_group()


def run_ranks(fn: Callable, nproc: int, *args, device: torch.device | str = "cpu") -> None:
    """Run ``fn(rank, *args)`` in ``nproc`` new processes joined in one process group.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled into the new processes); it runs inside
        the default process group of ``nproc`` ranks (``torch.distributed`` calls work).
    nproc : int
        Processes (ranks) >= 1; on CUDA, rank ``r`` uses ``cuda:r`` (at least ``nproc``
        GPUs needed).
    *args
        Arguments after the rank (pickled).
    device : torch.device or str
        Where the replicas live: picks the backend (:func:`backend_for`).

    Raises
    ------
    ConfigError
        ``nproc`` is not an integer >= 1, or more CUDA ranks than GPUs.
    torch.multiprocessing.ProcessRaisedException
        A rank raised (its traceback in the message); the others are stopped.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"nproc must be an integer >= 1, got {nproc!r}")
    backend = backend_for(device)
    if backend == "nccl" and torch.cuda.device_count() < nproc:
        raise ConfigError(f"nproc={nproc} CUDA ranks need as many GPUs; this host has "
                          f"{torch.cuda.device_count()}")
    mp.spawn(_rank_entry, args=(fn, nproc, free_port(), backend, args), nprocs=nproc,
             join=True)
