"""The main job, ``xbarlab run``: measured device data -> evaluated noise-robust network.

One command runs the whole chain on a TOML config (default: the shipped example,
``data/examples/example_config.toml``) and writes one report::

    data files ─► load ─────► calibrate ──┬─► crossbar (IR drop, ADC; exact solver) ──┐
    (CSV, HDF5)  (SI table)  (device-     ├─► noise ─► train-hasgd ─┐                  │
                              model.h5)   │  (Δw|w)    train-sgd ───┼─► evaluate ──────┤
                                          └─────────────────────────┘   (accuracy vs t) │
                                                                                       ▼
                                   report.md + report.html (plots inline) + plots/*.png

Modules, one job each:

- :mod:`.config`: the config schema (:data:`SCHEMA`), :func:`validate_config`,
  :func:`load_config`, :func:`example_config_path`.
- :mod:`.context`: :class:`Stage`, :class:`StageContext` and the seeds of a run: every
  random stream derives from the run seed and stable names (:func:`stage_seed`), never
  from call order.
- :mod:`.stages`: the stage bodies, in execution order (:data:`STAGES`).
- :mod:`.runner`: the cached runner (:func:`run_pipeline`, :func:`stage_keys`, completion
  markers, the run log).
- :mod:`.report`: the report (Markdown and HTML with the plots inline).
"""

from __future__ import annotations

from .config import SCHEMA, example_config_path, load_config, validate_config
from .context import Stage, StageContext, stage_seed
from .runner import (
    DEFAULT_OUT,
    LOCK_NAME,
    LOG_NAME,
    MARKER,
    RunLockedError,
    run_pipeline,
    stage_keys,
)
from .stages import STAGES

__all__ = [
    "DEFAULT_OUT",
    "LOCK_NAME",
    "LOG_NAME",
    "MARKER",
    "RunLockedError",
    "SCHEMA",
    "STAGES",
    "Stage",
    "StageContext",
    "example_config_path",
    "load_config",
    "run_pipeline",
    "stage_keys",
    "stage_seed",
    "validate_config",
]
