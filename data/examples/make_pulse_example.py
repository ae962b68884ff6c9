"""Generate ``pulse_ramps.csv``, the small example of pulse data xbarlab ships.

Run from the repository root: ``python data/examples/make_pulse_example.py [--force]``.
Synthetic and fully specified here (seed 20261206), so the true device is known (see
data/README.md): one soft-bounds cell between G_MIN = 10 uS and G_MAX = 50 uS,

- a pulse at G moves it by +A_UP (1 - x) up or -A_DOWN x down, x = (G - G_MIN) /
  (G_MAX - G_MIN), A_UP = 0.6 uS, A_DOWN = 0.4 uS, each step times (1 + C2C xi),
  xi ~ N(0, 1), C2C = 0.2, clipped to the bounds (xbarlab's ``PulsedDevice`` with a
  ``SoftBounds`` rule, its symmetric point at x = 0.6, 34 uS);
- 16 up and 16 down ramps of 100 pulses, alternating, each starting where the last ended
  (the first at G_MIN);
- every read adds N(0, (50 nS)^2) read noise;
- rows ``pulse, direction, g, ramp`` (g in S with 6 significant digits, direction up/down).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from xbarlab.devices.pulsed import PulsedDevice, SoftBounds
from xbarlab.formats import write_text_atomic

SEED = 20261206
G_MIN, G_MAX = 10e-6, 50e-6  # S
A_UP, A_DOWN = 0.6e-6, 0.4e-6  # S
C2C = 0.2
READ_NOISE = 50e-9  # S
RAMPS, PULSES = 32, 100


def device() -> PulsedDevice:
    """The generating device."""
    return PulsedDevice(SoftBounds(A_UP, A_DOWN), G_MIN, G_MAX, c2c=C2C)


def make(rng: np.random.Generator) -> str:
    """The example file's text drawn from ``rng`` (see the module docstring)."""
    dev = device()
    lines = ["pulse,direction,g,ramp"]
    g = G_MIN
    for r in range(RAMPS):
        d = 1 if r % 2 == 0 else -1
        ramp = dev.simulate_ramps([g], [d], PULSES, rng)[0]
        read = ramp + READ_NOISE * rng.standard_normal(PULSES)
        lines += [f"{k + 1},{'up' if d > 0 else 'down'},{v:.6g},{r}"
                  for k, v in enumerate(read)]
        g = float(ramp[-1])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace the existing file")
    args = parser.parse_args()
    out = Path(__file__).resolve().parent / "pulse_ramps.csv"
    write_text_atomic(out, make(np.random.default_rng(SEED)), force=args.force)
    print(f"wrote {out} ({RAMPS} ramps of {PULSES} pulses)")


if __name__ == "__main__":
    main()
