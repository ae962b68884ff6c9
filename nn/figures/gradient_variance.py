"""HA-SGD gradient-estimate variance vs L, independent draws vs antithetic pairs.

    python -m xbarlab.nn.figures.gradient_variance --out runs/nn-exp

For the plain-trained digits MLP (shared with :mod:`~xbarlab.nn.figures.noise_level_sweep`,
``OUT/exp1/digits/plain``) at a fixed minibatch. Writes ``variance.md`` and
``variance.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..data import load_dataset
from ..hasgd import HASGD
from ..noise import GaussianNoise
from ..train import deterministic_algorithms, load_trained
from .common import trained_run, write_outputs

__all__ = ["run", "main"]


def run(out: Path, sigmas=(0.05, 0.1, 0.3), Ls=(1, 2, 4, 8), K=64) -> dict:
    """Gradient-estimate variance vs L, independent vs antithetic, trained digits MLP.

    Variance = E‖ĝ - E ĝ‖² (summed over all parameters), estimated from K independent
    HA-SGD estimates at the same weights and minibatch (the first 32 training images).
    """
    folder = out / "exp1" / "digits" / "plain"
    trained_run(folder, "digits", 0.0, 0)
    net, _ = load_trained(folder)
    net.train()
    data = load_dataset("digits")
    x, y = data.x_train[:32], data.y_train[:32]
    res, md = {}, ["## Gradient-estimate variance vs L (digits MLP, plain-trained, batch 32, "
                   f"K = {K})", "", "| σ | draws | " + " | ".join(f"L={L}" for L in Ls) + " |",
                   "|---|---|" + "---|" * len(Ls)]
    for s in sigmas:
        for anti in (False, True):
            row = {}
            for L in Ls:
                if anti and L % 2:
                    continue
                g = torch.Generator().manual_seed(1)
                h = HASGD(net, torch.optim.SGD(net.parameters(), lr=0.0), GaussianNoise(s),
                          samples=L, antithetic=anti, generator=g, mode="sequential")
                est = []
                for _ in range(K):
                    net.zero_grad()
                    h.gradient(x, y)
                    est.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
                e = torch.stack(est).double()
                row[L] = float(((e - e.mean(0)) ** 2).sum(1).mean() * K / (K - 1))
            res[f"sigma={s:g}/{'anti' if anti else 'indep'}"] = row
            md.append(f"| {s:g} | {'antithetic' if anti else 'independent'} | " + " | ".join(
                f"{row[L]:.3g}" if L in row else "–" for L in Ls) + " |")
    write_outputs(out, "variance", md, res)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m xbarlab.nn.figures.gradient_variance")
    ap.add_argument("--out", default="runs/nn-exp")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with deterministic_algorithms():
        run(out)
    print((out / "variance.md").read_text())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
