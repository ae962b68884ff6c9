"""IR-drop and ADC study: relative output error vs array size and wire resistance.

For each array size ``n`` (physical ``n x n`` array, ``n/2`` differential column pairs) the study
draws weights ``W ~ U(-1, 1)`` (n/2 outputs, n inputs), maps them to device pairs with a
:class:`~xbarlab.devices.mapping.WeightMapping` (``G_pos - G_neg`` proportional to ``W``, zero
weight at ``g_min``, largest |weight| at ``g_max``; ``G_pos`` and ``G_neg`` of output ``j`` in
physical columns ``2 j`` and ``2 j + 1``), programs and reads them with a device model at time
``t``, and drives the rows with inputs ``x ~ U(0, 1)`` scaled to ``v = x * v_max``. For
each wire resistance ``r`` (per segment, rows and columns alike) it solves the exact circuit
(:class:`xbarlab.crossbar.Crossbar`) and reports relative errors ``||y - y_ref||_2 /
||y_ref||_2`` over all outputs and vectors:

* ``ir_drop``: circuit output vs the ideal product ``v @ (G_pos - G_neg)`` of the same read
  conductances (the wires alone);
* ``adc_max``: an ADC of ``adc_bits`` bits whose range is the maximum possible current
  (:func:`~xbarlab.crossbar.converters.max_possible_current`), vs the circuit output;
* ``adc_cal``: the same ADC with its range calibrated at the 99.9th percentile of |I|;
* ``device``: read conductances vs programmed targets (ideal circuit; independent of ``r``),
  after one global gain factor (drift compensation with a calibration input, Joshi et al.,
  Nat. Commun. 11, 2473, 2020: the least-squares factor between the two outputs);
* ``total``: circuit + calibrated ADC + device vs the target product ``v @ (G_pos - G_neg)``
  of the targets, after one global gain factor likewise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..devices.mapping import Scheme, WeightMapping, check_mapping, mapping_for
from ..errors import ConfigError
from .converters import ADC, max_possible_current

__all__ = ["StudyConfig", "run_study", "write_study", "format_table", "study_mapping",
           "draw_arrays", "array_errors"]

COLUMNS = ("n", "r_wire_ohm", "vectors", "ir_drop", "adc_max", "adc_cal", "device", "total",
           "solve_s")


@dataclass(frozen=True)
class StudyConfig:
    """Settings of :func:`run_study`."""

    #: array sizes ``n`` (physical n x n; even). [1]
    sizes: tuple[int, ...] = (64, 128, 256, 512, 1024)
    #: wire resistance per segment, rows and columns. [Ohm]
    r_wire: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)
    #: input vectors for n <= 256; larger arrays use ``max(2, vectors * 256 // n)``. [1]
    vectors: int = 16
    #: read time after programming. [s]
    t: float = 3600.0
    #: full-scale row voltage. [V]
    v_max: float = 0.2
    #: ADC resolution (signed). [1]
    adc_bits: int = 8
    #: seed of the numpy Generator (weights, inputs, devices). [1]
    seed: int = 0

    def __post_init__(self):
        if not self.sizes or any(int(n) != n or n < 2 or n % 2 for n in self.sizes):
            raise ConfigError(f"sizes must be even integers >= 2, got {self.sizes!r}")
        if not self.r_wire or any(not (math.isfinite(r) and r >= 0) for r in self.r_wire):
            raise ConfigError(f"r_wire must be finite resistances >= 0 Ohm, got {self.r_wire!r}")
        if int(self.vectors) != self.vectors or self.vectors < 1:
            raise ConfigError(f"vectors must be a positive integer, got {self.vectors!r}")
        if not (math.isfinite(self.t) and self.t >= 0):
            raise ConfigError(f"t must be a time >= 0 s, got {self.t!r}")
        if not (math.isfinite(self.v_max) and self.v_max > 0):
            raise ConfigError(f"v_max must be > 0 V, got {self.v_max!r}")
        ADC(bits=self.adc_bits)  # validates adc_bits

    def n_vectors(self, n: int) -> int:
        return self.vectors if n <= 256 else max(2, self.vectors * 256 // n)


def _compensated(y, ref):
    """``y`` times the least-squares global gain that best matches ``ref``."""
    den = float(np.sum(y * y))
    return y * (float(np.sum(y * ref)) / den) if den > 0 else y


def _rel(a, b) -> float:
    den = float(np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / den) if den > 0 else 0.0


def study_mapping(device, mapping: WeightMapping | None = None, *,
                  allow_extrapolation: bool = False) -> WeightMapping:
    """The weight mapping of the study: ``mapping`` checked against ``device`` (or
    :func:`~xbarlab.devices.mapping.mapping_for` ``(device)``), one differential pair per
    weight; ConfigError otherwise."""
    mapping = (mapping_for(device) if mapping is None
               else check_mapping(device, mapping, allow_extrapolation=allow_extrapolation))
    if mapping.scheme is not Scheme.DIFFERENTIAL or mapping.n_pairs != 1:
        raise ConfigError("the crossbar study places one differential pair per weight: mapping "
                          f"must have scheme 'differential' and n_pairs 1, got "
                          f"{mapping.scheme.value!r} and {mapping.n_pairs}")
    return mapping


def draw_arrays(device, mapping: WeightMapping, n: int, vectors: int, t: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The random part of one array of the study, drawn from ``rng`` in this order: weights
    ``W ~ U(-1, 1)`` (n/2 outputs, n inputs), the device model's read of their targets at
    time ``t`` [s], and ``vectors`` inputs ``x ~ U(0, 1)``.

    Returns
    -------
    (targets, reads, x) : tuple of numpy.ndarray
        Programmed targets and read conductances, (n, n) [S], ``G_pos``/``G_neg`` of
        output ``j`` in columns ``2 j``/``2 j + 1``; inputs (vectors, n) [1].
    """
    W = rng.uniform(-1.0, 1.0, (n, n // 2)).T  # (n_out, n_in)
    mw = mapping.to_conductances(W)
    tgt = np.empty((n, n))
    tgt[:, 0::2], tgt[:, 1::2] = mw.g_pos[0], mw.g_neg[0]
    tgt = np.clip(tgt, mapping.g_min, mapping.g_max)
    G = np.asarray(device.sample(tgt, t, rng), dtype=np.float64)
    x = rng.uniform(0.0, 1.0, (vectors, n))
    return tgt, G, x


def array_errors(targets: np.ndarray, reads: np.ndarray, v: np.ndarray, wires, *,
                 adc_bits: int, v_max: float, adc_range: str = "calibrated",
                 v_exact: np.ndarray | None = None) -> dict[str, float]:
    """Relative output errors of one array (the module docstring) and its solve time.

    Parameters
    ----------
    targets, reads : numpy.ndarray
        Programmed and read conductances, (n, n) [S], differential column pairs.
    v : numpy.ndarray
        Row voltages the circuit is driven with, (vectors, n) [V].
    wires : WireParams
        The array's wire, driver and sense resistances [Ω].
    adc_bits : int
        ADC resolution (signed) [1].
    v_max : float
        Full-scale row voltage [V] (the max-possible ADC range).
    adc_range : {"calibrated", "max-possible"}
        The ADC range that ``total`` includes.
    v_exact : numpy.ndarray, optional
        The unquantized voltages the targets' product uses (default ``v``; a DAC's output
        is ``v``).

    Returns
    -------
    dict
        ``ir_drop``, ``adc_max``, ``adc_cal``, ``device``, ``total`` [1] and ``solve_s`` [s].
    """
    from .circuit import Crossbar

    v_exact = v if v_exact is None else v_exact
    y_tgt = v_exact @ (targets[:, 0::2] - targets[:, 1::2])
    y_ideal = v @ (reads[:, 0::2] - reads[:, 1::2])
    i_max = max_possible_current((reads[:, 0::2], reads[:, 1::2]), v_max)
    t0 = time.perf_counter()
    I = Crossbar(reads, wires=wires).mvm(v)
    dt = time.perf_counter() - t0
    y = I[:, 0::2] - I[:, 1::2]
    adc_max = ADC(bits=adc_bits).with_full_scale(i_max)
    adc_cal = ADC(bits=adc_bits, range_mode="calibrated", percentile=99.9).resolve(currents=y)
    y_max, y_cal = adc_max.convert(y), adc_cal.convert(y)
    y_out = y_cal if adc_range == "calibrated" else y_max
    return {"ir_drop": _rel(y, y_ideal), "adc_max": _rel(y_max, y), "adc_cal": _rel(y_cal, y),
            "device": _rel(_compensated(y_ideal, y_tgt), y_tgt),
            "total": _rel(_compensated(y_out, y_tgt), y_tgt), "solve_s": dt}


def _solve_task(shared, item) -> dict:
    """One (size, wire resistance) solve of :func:`run_study` (a worker's task)."""
    from .grid import WireParams

    tgt, G, v = shared[item[0]]
    r = item[1]
    return array_errors(tgt, G, v, WireParams(r_row=r, r_col=r), adc_bits=item[2],
                        v_max=item[3])


def run_study(device, config: StudyConfig = StudyConfig(), *,
              mapping: WeightMapping | None = None, allow_extrapolation: bool = False,
              progress: bool = True, workers: int | None = None) -> list[dict]:
    """Rows of the study (one per size and wire resistance), see the module docstring.

    The random arrays are drawn here, one size after another from one generator seeded
    with ``config.seed`` (the same stream whatever ``workers`` is); the circuit solves,
    one per size and wire resistance, run on ``workers`` worker processes.

    Parameters
    ----------
    device
        A device model (:func:`xbarlab.devices.load`).
    config : StudyConfig
        Sizes, wire resistances, vectors, read time, voltage, ADC bits, seed.
    mapping : WeightMapping, optional
        How weights become conductance targets: one differential pair per weight (any
        scaling) on ``g_min..g_max`` [S]. None: :func:`~xbarlab.devices.mapping.mapping_for`
        ``(device)``, the device model's range (ConfigError for a range without a finite
        upper bound: pass a mapping).
    allow_extrapolation : bool
        Accept a ``mapping`` outside the device model's range
        (:func:`~xbarlab.devices.mapping.check_mapping`).
    progress : bool
        Progress bar on stderr.
    workers : int, optional
        Worker processes of a local Dask cluster (:class:`xbarlab.sweep.engine.Engine`);
        None: every solve in this process.

    Returns
    -------
    list of dict
        One row per (size, wire resistance): the relative errors of the module docstring
        [1] and the solve time ``solve_s`` [s].
    """
    from ..sweep.engine import Engine
    from .circuit import Crossbar
    from .grid import WireParams

    mapping = study_mapping(device, mapping, allow_extrapolation=allow_extrapolation)
    rng = np.random.default_rng(config.seed)
    arrays = {}
    for n in config.sizes:
        tgt, G, x = draw_arrays(device, mapping, n, config.n_vectors(n), config.t, rng)
        arrays[n] = (tgt, G, x * config.v_max)
    combos = [(n, float(r), config.adc_bits, config.v_max)
              for n in config.sizes for r in config.r_wire]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(combos), desc="crossbar study", unit="solve")
    if workers is None:
        # the solver's kernels compile at their first call: on a tiny array, before any clock
        for r in config.r_wire:
            Crossbar(np.full((2, 2), mapping.g_max),
                     wires=WireParams(r_row=r, r_col=r)).mvm(np.full(2, config.v_max))
    try:
        with Engine(workers=0 if workers is None else workers) as engine:
            found = engine.map(_solve_task, combos, shared=arrays, name="crossbar-solve",
                               progress=None if bar is None else lambda: bar.update(1))
    finally:
        if bar is not None:
            bar.close()
    return [{"n": n, "r_wire_ohm": r, "vectors": config.n_vectors(n),
             **{k: e[k] for k in ("ir_drop", "adc_max", "adc_cal", "device", "total",
                                  "solve_s")}}
            for (n, r, _, _), e in zip(combos, found, strict=True)]


def format_table(rows: list[dict]) -> str:
    """Markdown table of the study (errors in %)."""
    head = ("| n | r [Ω] | vectors | IR drop | ADC max-range | ADC calibrated | device | total "
            "| solve [s] |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['r_wire_ohm']:g} | {r['vectors']} | {100 * r['ir_drop']:.3g} % "
            f"| {100 * r['adc_max']:.3g} % | {100 * r['adc_cal']:.3g} % "
            f"| {100 * r['device']:.3g} % | {100 * r['total']:.3g} % | {r['solve_s']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def write_study(rows: list[dict], out_dir, *, title: str = "", force: bool = False) -> dict:
    """Write ``ir_drop_study.csv``, ``ir_drop_study.md`` and ``ir_drop_study.png`` (atomic)."""
    from pathlib import Path

    from ..formats import atomic_output, write_text_atomic

    out = Path(out_dir)
    csv = ",".join(COLUMNS) + "\n" + "".join(
        ",".join(f"{row[c]:.6g}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS)
        + "\n" for row in rows)
    paths = {
        "csv": write_text_atomic(out / "ir_drop_study.csv", csv, force=force),
        "md": write_text_atomic(out / "ir_drop_study.md",
                                (f"{title}\n\n" if title else "") + format_table(rows),
                                force=force),
    }
    # a Figure with its own Agg canvas: no pyplot state, matplotlib's backend left as it is
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    sizes = sorted({r["n"] for r in rows})
    rs = sorted({r["r_wire_ohm"] for r in rows})
    cmap = colormaps["viridis"]
    for k, rw in enumerate(rs):
        sel = sorted((r for r in rows if r["r_wire_ohm"] == rw), key=lambda r: r["n"])
        ax.loglog([r["n"] for r in sel], [100 * max(r["ir_drop"], 1e-12) for r in sel], "o-",
                  color=cmap(k / max(1, len(rs) - 1)), label=f"IR drop, r = {rw:g} Ω")
    for key, style, label in (("adc_max", "k--", "ADC, max-possible range"),
                              ("adc_cal", "k:", "ADC, calibrated range")):
        sel = [min((r for r in rows if r["n"] == n), key=lambda r: r["r_wire_ohm"])
               for n in sizes]
        ax.loglog(sizes, [100 * max(r[key], 1e-12) for r in sel], style, label=label)
    ax.set_xlabel("array size n (n × n, n/2 differential pairs)")
    ax.set_ylabel("relative output error [%]")
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(n) for n in sizes])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_output(out / "ir_drop_study.png", force=force, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    paths["png"] = out / "ir_drop_study.png"
    return paths
