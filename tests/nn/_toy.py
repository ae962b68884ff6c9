"""Toy networks, batches and constants the nn tests share."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

H, D, Y = 3600.0, 86400.0, 365.25 * 86400.0

KS_C = 1.95



def _net(dtype=torch.float64, bn=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
        layers = [nn.Conv2d(1, 4, 3, padding=1)]
        if bn:
            layers.append(nn.BatchNorm2d(4))
        layers += [nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 12), nn.ReLU(),
                   nn.Linear(12, 5)]
        return nn.Sequential(*layers).to(dtype)


def _batch(n=16, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 1, 6, 6, generator=g, dtype=dtype),
            torch.randint(0, 5, (n,), generator=g))


def _torch_draws(noise, u: float, n: int, seed: int) -> np.ndarray:
    """Δw/max|W| drawn on the torch side for weight u (the tensor's max|w| is 1)."""
    w = torch.full((n + 1,), u, dtype=torch.float64)
    w[0] = 1.0
    z = torch.randn(w.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return noise.perturbation(w, z)[1:].numpy()

