"""What each rank runs in the multi-process HA-SGD tests (module-level: pickled by spawn)."""

from __future__ import annotations

import torch
from _toy import _batch, _net
from torch.nn.parallel import DistributedDataParallel
from xbarlab.nn import HASGD, GaussianNoise

#: (mode, L, antithetic) of the one-step comparisons
CASES = (("sequential", 4, False), ("vmap", 4, False), ("parallel", 4, True), ("auto", 2, True))


def one_step(mode: str, samples: int, antithetic: bool, wrap=None):
    """One SGD + HA-SGD step of the toy conv net with BatchNorm (float64, σ = 0.2, seed 3);
    return (loss, {name: grad}, state_dict after the step, forward calls of the network,
    {name: Δω} drawn by a second HASGD with the same seed)."""
    def make():
        net = _net()
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        return net, HASGD(net if wrap is None else wrap(net), opt,
                          GaussianNoise(0.2, shift=0.05), samples=samples,
                          antithetic=antithetic, mode=mode,
                          generator=torch.Generator().manual_seed(3))

    net, h = make()
    calls = []
    net.register_forward_pre_hook(lambda *a: calls.append(1))
    net.train()
    x, y = _batch()
    loss = h.step(x, y)
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    return loss, grads, state, len(calls), make()[1].draw_perturbations()


def steps_on_rank(rank: int, path: str) -> None:
    """Run every case of :data:`CASES` on this rank (DDP-wrapped); save the results."""
    torch.set_num_threads(1)  # a process of its own: nothing to restore
    out = [one_step(*case, wrap=DistributedDataParallel)
           for case in CASES]
    torch.save(out, f"{path}.{rank}")
