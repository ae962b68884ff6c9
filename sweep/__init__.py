"""Parameter sweeps and Monte Carlo studies as sets of independent, seeded points."""
