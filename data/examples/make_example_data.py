"""Generate ``pcm_drift.csv``, the measured-data example that ``xbarlab run`` starts from.

Run from the repository root: ``python data/examples/make_example_data.py [--force]``.

The table is what a lab would measure on a batch of PCM cells, but drawn from
xbarlab's own device physics: the ``pcm-ibm-2020`` preset (Nandakumar et al., ICECS
2019; Joshi et al., Nat. Commun. 11, 2473, 2020; see ``data/presets/pcm-ibm-2020.json``)
sampled with :meth:`CompositeDevice.program` / :meth:`CompositeDevice.read`, seed
:data:`SEED`. So the calibration stage of the example has a known truth:

- 17 programming levels over the preset's range (g_max = 25 µS): g_T = 0.3125, 0.625, ...,
  2.5 µS (8 steps of 0.3125 µS) and 5, 7.5, ..., 25 µS (9 steps of 2.5 µS),
  :data:`DEVICES_PER_LEVEL` cells each (2,550 cells). A weight mapping over all targets
  (``xbarlab run``'s default, 0.3125-25 µS) is the realistic operating point: the
  programming error is ~0.3-1.1 µS against a 24.7 µS range. Its first eight levels are a
  reduced range, 0.3125-2.5 µS, where the error (~0.3-0.46 µS against 2.2 µS) limits a
  network and HA-SGD keeps clearly more accuracy than plain SGD; ``xbarlab run``
  evaluates both (``[mapping] compare``);
- programming error σ_p(x) = 0.26348 + 1.9650 x − 1.1731 x² µS with x = g_T / 25 µS (the
  preset's g_max; normal, clamped at 0 S, so some reads of the lowest targets are exactly
  0 S);
- power-law drift g(t) = g_prog ((t + 20 s)/20 s)^(−ν) with a per-cell ν ~ |N(μ_ν(x), σ_ν(x))|;
- accumulated 1/f read noise, one trajectory per cell across the read times;
- every cell read once at each nominal time 1 s, 10 s, 100 s, 1000 s, 10^4 s and 1 d
  after programming (``time`` = ``time_point``: the batch is read together).

Columns (long layout, one row per read, SI units, written by
:func:`xbarlab.formats.write_measurements`): ``device`` (label 1..2550), ``g`` [S],
``time`` [s], ``time_point`` [s], ``g_target`` [S], ``level`` (0..16). Conductances
carry 6 significant digits (100 pS resolution at 25 µS, far below the read noise).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from xbarlab import devices
from xbarlab.formats import Measurements, Provenance, write_measurements

#: Seed of the numpy generator that programs and reads the cells.
SEED = 20261122
#: The preset whose physics generates the data.
PRESET = "pcm-ibm-2020"
#: Highest target of the reduced range [S] (a tenth of the preset's g_max, 25 µS).
G_MAX_REDUCED = 2.5e-6
#: Programming targets [S]: the reduced range in 8 steps, then up to 25 µS in steps of 2.5 µS.
TARGETS = np.concatenate([G_MAX_REDUCED * np.arange(1, 9) / 8,
                          G_MAX_REDUCED * np.arange(2, 11)])
DEVICES_PER_LEVEL = 150
TIME_POINTS = np.array([1.0, 10.0, 100.0, 1000.0, 1e4, 86400.0])  # s
FILE_NAME = "pcm_drift.csv"


def make(rng: np.random.Generator) -> Measurements:
    """The example table drawn from ``rng`` (see the module docstring)."""
    model = devices.load(PRESET)
    n_dev = TARGETS.size * DEVICES_PER_LEVEL
    level = np.repeat(np.arange(TARGETS.size), DEVICES_PER_LEVEL)
    g_target = TARGETS[level]
    state = model.program(g_target, rng)
    reads = model.read(state, TIME_POINTS, rng)  # (T, n_dev): one trajectory per cell
    # rows grouped by device, times ascending within a device
    g = reads.T.ravel()
    dev = np.repeat(np.arange(n_dev), TIME_POINTS.size)
    tp = np.tile(TIME_POINTS, n_dev)
    return Measurements(g=g, device=dev, time=tp.copy(), time_point=tp,
                        g_target=g_target[dev], level=level[dev],
                        device_labels=np.arange(n_dev) + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace the existing file")
    args = parser.parse_args()
    out = Path(__file__).resolve().parent / FILE_NAME
    m = make(np.random.default_rng(SEED))
    prov = Provenance(method="data/examples/make_example_data.py",
                      settings={"seed": SEED, "preset": PRESET})
    write_measurements(out, m, force=args.force, provenance=prov, float_format="%.6g")
    print(f"wrote {out} ({m.n_reads} reads, {m.n_devices} devices)")


if __name__ == "__main__":
    main()
