"""Generate ``rram_relaxation.csv``, the small example measurement table xbarlab ships.

Run from the repository root: ``python data/examples/make_examples.py [--force]``.
The table is synthetic and fully specified here (seed 20261122), so its true
parameters are known (see data/README.md):

- 64 devices, 16 at each of 4 levels with targets 10, 20, 30, 40 µS;
- programming error: G0 = G_target + N(0, (0.5 µS)^2);
- drift: G(t) = G0 * (1 + t / 1 s)^(-nu), nu ~ N(0.02, 0.005^2) per device;
- read noise: N(0, (0.1 µS)^2) per read;
- reads at the nominal times 0 s, 1 s, 1 h, 1 d (column ``time_point``); the actual
  read time (column ``time``) is the nominal one times U(0.95, 1.05), rounded to 1 ms;
- conductances written in S with 6 significant digits, times in s.

It is written with :func:`xbarlab.formats.write_measurements`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from xbarlab.formats import Measurements, Provenance, write_measurements

SEED = 20261122
TARGETS = np.array([10e-6, 20e-6, 30e-6, 40e-6])  # S
DEVICES_PER_LEVEL = 16
SIGMA_PROG = 0.5e-6  # S
NU_MEAN, NU_STD = 0.02, 0.005
T0 = 1.0  # s
SIGMA_READ = 0.1e-6  # S
TIME_POINTS = np.array([0.0, 1.0, 3600.0, 86400.0])  # s


def make(rng: np.random.Generator) -> Measurements:
    """The example table drawn from ``rng`` (see the module docstring)."""
    n_dev = TARGETS.size * DEVICES_PER_LEVEL
    level = np.repeat(np.arange(TARGETS.size), DEVICES_PER_LEVEL)
    g_target = TARGETS[level]
    g0 = g_target + rng.normal(0.0, SIGMA_PROG, n_dev)
    nu = rng.normal(NU_MEAN, NU_STD, n_dev)
    dev = np.repeat(np.arange(n_dev), TIME_POINTS.size)
    tp = np.tile(TIME_POINTS, n_dev)
    t = np.round(tp * rng.uniform(0.95, 1.05, tp.size), 3)
    g = g0[dev] * (1.0 + t / T0) ** (-nu[dev]) + rng.normal(0.0, SIGMA_READ, t.size)
    return Measurements(g=g, device=dev, time=t, time_point=tp, g_target=g_target[dev],
                        level=level[dev], device_labels=np.arange(n_dev) + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace the existing file")
    args = parser.parse_args()
    out = Path(__file__).resolve().parent / "rram_relaxation.csv"
    m = make(np.random.default_rng(SEED))
    prov = Provenance(method="data/examples/make_examples.py", settings={"seed": SEED})
    write_measurements(out, m, force=args.force, provenance=prov, float_format="%.6g")
    print(f"wrote {out} ({m.n_reads} reads, {m.n_devices} devices)")


if __name__ == "__main__":
    main()
