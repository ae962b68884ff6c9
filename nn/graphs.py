"""Replaying a training step from a CUDA graph.

On a fast GPU a step of a small network is bound by the CPU launching its few hundred
kernels; captured once in a CUDA graph, every later step is one launch. :func:`capture_step`
holds what every captured step needs: static input buffers, eager warm-up steps on a side
stream (allocator, cuBLAS and cuDNN state), the caller's state restored afterwards so that
capturing does not train, the caller's ``torch.Generator`` registered with the graph (its
draws continue from where they stood), and a callable that copies each batch in and replays.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["capture_step"]


def capture_step(run: Callable[[Tensor, Tensor], Tensor], x: Tensor, y: Tensor, *,
                 warmup: int, generator: torch.Generator | None,
                 restore: Callable[[], None],
                 prewarm: Callable[[Tensor, Tensor], object] | None = None
                 ) -> Callable[[Tensor, Tensor], Tensor]:
    """Capture ``run(x, y) -> loss`` in a CUDA graph; return ``step(x, y) -> loss``.

    Parameters
    ----------
    run : callable
        One whole training step on a batch; it must not synchronise with the host.
    x, y : Tensor
        An example batch on the GPU; shapes and dtypes are fixed from then on.
    warmup : int
        Eager calls of ``run`` before the capture, on a side stream, >= 1.
    generator : torch.Generator or None
        The generator ``run`` draws from: its state before the warm-up is restored after
        the capture and it is registered with the graph, so that replays continue its
        stream.
    restore : callable
        Called after the warm-up: puts back every state the warm-up changed (weights,
        optimizer state, counters) and clears gradients (``zero_grad(set_to_none=True)``).
    prewarm : callable, optional
        Called once on the side stream before the warm-up (e.g. a step in another mode).

    Returns
    -------
    callable
        ``step(x, y)``: copies the batch into the graph's buffers, replays, and returns
        the loss tensor (overwritten by the next call). ``step.graph`` keeps the graph and
        its memory pool alive.
    """
    if not (x.is_cuda and y.is_cuda):
        raise ConfigError("a CUDA graph needs the batch on a CUDA device, got x on "
                          f"{x.device} and y on {y.device}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
        raise ConfigError(f"warmup must be an integer >= 1, got {warmup!r}")
    if generator is not None and not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        raise ConfigError("this torch cannot capture draws from a torch.Generator in a CUDA "
                          "graph (CUDAGraph.register_generator_state is missing)")
    static_x, static_y = x.detach().clone(), y.detach().clone()
    gen_state = None if generator is None else generator.get_state()
    here = torch.cuda.current_stream(x.device)
    side = torch.cuda.Stream(x.device)
    side.wait_stream(here)
    with torch.cuda.stream(side):
        if prewarm is not None:
            prewarm(static_x, static_y)
        for _ in range(warmup):
            run(static_x, static_y)
    here.wait_stream(side)
    restore()
    graph = torch.cuda.CUDAGraph()
    if generator is not None:
        graph.register_generator_state(generator)
    with torch.cuda.graph(graph, stream=side):
        static_loss = run(static_x, static_y)
    if generator is not None:  # the stream starts where it stood before the warm-up
        generator.set_state(gen_state)

    def step(xb: Tensor, yb: Tensor) -> Tensor:
        if xb.shape != static_x.shape or yb.shape != static_y.shape:
            raise ConfigError(f"the graph was captured for x {tuple(static_x.shape)} and "
                              f"y {tuple(static_y.shape)}, got {tuple(xb.shape)} and "
                              f"{tuple(yb.shape)}")
        static_x.copy_(xb)
        static_y.copy_(yb)
        graph.replay()
        return static_loss

    step.graph = graph
    return step
