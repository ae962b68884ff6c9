"""Synthetic conductance ramps from the published step equations, written out here (not
xbarlab's simulator): soft bounds (aihwkit SoftBoundsDevice / LinearStepDevice, the
asymmetric linear device of Wu et al. 2024) and power step (aihwkit PowStepDevice).

With x = (G - G_min) / (G_max - G_min) a pulse moves G by

- soft bounds: up  +a_up (1 - x) (1 + c2c xi),   down  -a_down x (1 + c2c xi);
- power step:  up  +a_up (1 - x)^gamma_up (1 + c2c xi),  down  -a_down x^gamma_down (...);

xi ~ N(0, 1) per pulse; every read adds an independent N(0, sigma_read^2) error.
Ramps alternate up and down, each starting where the previous one ended.
"""

import numpy as np
from xbarlab.formats.pulse_tables import PulseRamps


def synthetic_ramps(*, law, g_min, g_max, a_up, a_down, gamma_up=1.0, gamma_down=1.0,
                    c2c=0.0, sigma_read=0.0, n_ramps=30, n_pulses=120, seed=0):
    """PulseRamps of ``n_ramps`` up and ``n_ramps`` down ramps of ``n_pulses`` pulses."""
    rng = np.random.default_rng(seed)
    if law == "soft bounds":
        gamma_up = gamma_down = 1.0
    g = g_min + 0.05 * (g_max - g_min)
    reads, pulse, ramp, direction = [], [], [], []
    for r in range(2 * n_ramps):
        d = 1 if r % 2 == 0 else -1
        row = [g]
        for _ in range(n_pulses):
            x = min(max((g - g_min) / (g_max - g_min), 0.0), 1.0)
            mean = a_up * (1 - x) ** gamma_up if d > 0 else a_down * x ** gamma_down
            g = min(max(g + d * mean * (1 + c2c * rng.standard_normal()), g_min), g_max)
            row.append(g)
        row = np.array(row) + sigma_read * rng.standard_normal(len(row))
        reads.append(row)
        pulse.append(np.arange(row.size))
        ramp.append(np.full(row.size, r))
        direction.append(d)
    return PulseRamps(g=np.concatenate(reads), pulse=np.concatenate(pulse),
                      ramp=np.concatenate(ramp), direction=np.array(direction),
                      device=np.zeros(2 * n_ramps, dtype=np.int64))
