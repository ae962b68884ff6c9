"""A tiny ``xbarlab run`` for the pipeline and CLI tests: config, data and helpers.

The tiny data set is drawn from the pcm-ibm-2020 preset (8 levels x 25 cells, reads at
1 s, 100 s, 10^4 s), the network is the digits MLP trained 1 epoch, read on the data's range
and on a compared one (3.125-12.5 µS) over 2 programmings; a whole run takes a few seconds
after the imports. Import it as ``from _tiny_run import ...`` (tests/conftest.py
puts tests/ on ``sys.path``); the finished run is the session fixture ``tiny_run``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from xbarlab import pipeline as P

#: Every stage name, in execution order.
ALL = [s.name for s in P.STAGES]

TINY = """
seed = 3
threads = 1
[data]
files = ["tiny.csv"]
[calibrate]
n_boot = 4
min_devices = 10
[mapping]
compare = ["3.125uS", "12.5uS"]
[crossbar]
sizes = [8]
r_wire = [1.0]
vectors = 2
[noise]
times = ["1h", "1d"]
samples = 200
grid = 5
[train]
epochs = 1
samples = 2
train_time = "1d"
subset = 160
[evaluate]
times = ["1s", "1d"]
programmings = 2
[report]
title = "tiny"
"""


def tiny_data(path: Path, seed: int = 1) -> None:
    """Write the tiny measurement table (pcm-ibm-2020 reads drawn with ``seed``) to ``path``."""
    from xbarlab import devices
    from xbarlab.formats import Measurements, write_measurements

    model = devices.load("pcm-ibm-2020")
    targets = 25e-6 * np.arange(1, 9) / 8
    level = np.repeat(np.arange(8), 25)
    tp = np.array([1.0, 100.0, 1e4])
    rng = np.random.default_rng(seed)
    reads = model.read(model.program(targets[level], rng), tp, rng)
    n = level.size
    dev = np.repeat(np.arange(n), tp.size)
    t = np.tile(tp, n)
    m = Measurements(g=reads.T.ravel(), device=dev, time=t, time_point=t,
                     g_target=targets[level][dev], level=level[dev])
    write_measurements(path, m, force=True)


def setup(folder: Path, extra: str = "") -> Path:
    """Write tiny.csv and tiny.toml (TINY + ``extra``) into ``folder``; return the config."""
    folder.mkdir(parents=True, exist_ok=True)
    tiny_data(folder / "tiny.csv")
    cfg = folder / "tiny.toml"
    cfg.write_text(TINY + extra, encoding="utf-8")
    return cfg


def run(cfg_path: Path, out: Path, **kw) -> dict:
    """Run the pipeline of ``cfg_path`` into ``out`` quietly; return run_pipeline's result."""
    cfg, _ = P.load_config(cfg_path)
    return P.run_pipeline(cfg, out, progress=False, echo=lambda s: None, **kw)


def events(out: Path) -> list[dict]:
    """The events of OUT's run log, in order."""
    return [json.loads(x) for x in (out / P.LOG_NAME).read_text().splitlines()]
