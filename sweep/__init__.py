"""Parameter sweeps and Monte Carlo studies as sets of independent, seeded points.

- :mod:`.points`: a point's key (SHA-256 of its canonical settings) and seed;
- :mod:`.engine`: :class:`~.engine.Engine`, where tasks run (a local Dask cluster, an
  existing one, or this process);
- :mod:`.runner`: :func:`~.runner.run_points` and the store of finished points;
- :mod:`.kinds`: the point kinds a study file can name, with their settings;
- :mod:`.study`: study files, checked whole before any work;
- :mod:`.outputs`: ``results.csv``, plots and the report of ``xbarlab sweep``.

The submodules are imported on use: ``import xbarlab.sweep`` loads neither Dask nor the
crossbar solver.
"""
