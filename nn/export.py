"""Device model -> weight-domain noise: quantile tables of Δw | w at times after programming.

A weight ``w`` of a layer is stored through a :class:`~xbarlab.devices.mapping.WeightMapping`
(differential pair, several pairs of significance F^-k, or one device against a reference
column at (g_min + g_max)/2; see ``devices/mapping.py``), with ``w`` normalised by the
largest |weight| that the mapping maps to the full conductance range::

    u = w / max|W|                      normalised weight, in [-1, 1]
    targets = WeightMapping.to_conductances(u)       (with a full-scale weight alongside,
                                                      so max|W| is 1 for either scaling)
    û(t) = MappedWeights.outputs_from_difference(read currents at t, weight's row at 1 V)
           [· f(t) with global drift compensation]
    Δw / max|W| = û(t) - u

With per-column scaling (``Scaling.COLUMN``) ``max|W|`` is the column's, with per-tile
scaling the tile's; the tables, per unit of that maximum, are the same function of ``u``.
Every device of a weight (each pair's G+ and G-, or G and its reference-column device) is
programmed and read independently through the device model (programming error, drift,
read noise). For each time ``t`` and each ``u`` on a grid, :func:`export_noise` draws
``n_samples`` fresh weights and stores the quantiles of ``Δw/max|W|`` at fixed probability
levels (no distribution shape is assumed), the mean shift ``μ(u, t)`` and spread
``σ(u, t)``. The torch side (:mod:`xbarlab.nn.noise_file`) interpolates these tables
bilinearly (in ``u`` and in probability) to draw ``Δw`` for any weight. (Several pairs put
digit boundaries into ``u``: between grid points the interpolated table smooths them.)

Global drift compensation (Joshi et al. 2020) follows ``devices.mapping``'s definition
(:func:`~xbarlab.devices.mapping.compensation_factors`, as ``TiledMatrix.drift_factor``):
the calibration input (every input at 1) applied to a layer of one input row whose columns
hold the grid's weights, once per draw, so ``y_ref = u`` and ``y_t = û(t)`` and the factor
multiplying the outputs is ``f(t) = Σ|u| / Σ|û(t)|`` (sums over grid and draws: a layer
whose weights fill the range evenly). The file stores ``α(t) = 1 / f(t)``, the read array's
gain; compensated tables divide ``û`` by it.

Device models conditioned on the first read (``conditioning == "initial read"``) take
each cell's first read as input, so the mapping puts the weights on *first reads*, not
on programming targets; the programming error is then missing unless the model was
composed with a programming-error model (``devices.composite.compose``). The file
records which (``weights_map_to``) and :func:`export_noise` returns it.

Optional extras stored in the file: the output-side noise of the periphery (ADC bits
and conversion noise, relative to the layer's full-scale output), and the systematic
IR-drop error of sample tiles (:func:`ir_drop_error`, from the circuit's effective matrices).

File layout (``formats.write_model_file(file_type="xbarlab-noise-model",
kind="weight-quantile-tables")``; every dataset carries ``units``)::

    /                 attrs: layout_version (int), compensation ("none" | "global"),
                             conditioning, weights_map_to ("targets" | "first reads"),
                             device_name, scale ("tile" | "column"), n_samples (int)
    /times            (T,)       [s]  times after programming
    /w_grid           (m,)       [1]  normalised weights u, strictly increasing in [-1, 1]
    /levels           (k,)       [1]  probabilities of the quantile tables, in (0, 1)
    /quantiles        (T, m, k)  [1]  quantiles of Δw / max|W|
    /mean             (T, m)     [1]  μ(u, t): mean of Δw / max|W|
    /std              (T, m)     [1]  σ(u, t): standard deviation of Δw / max|W|
    /drift_factor     (T,)       [1]  α(t) = 1 / f(t) (1 without compensation)
    /mapping/g_min, /mapping/g_max   [S]
    /mapping          attrs (layout 2): scheme, scaling, n_pairs, levels;
                      datasets significance [1], x_fs [1]   (WeightMapping.to_dict)
    /periphery/...    optional: adc_bits (int attr), output_noise_std [1]
    /ir_drop/...      optional: rows, cols (attrs), r_wire [Ohm], rel_output_error [1],
                                rel_output_error_std [1], weight_gain (rows, outputs) [1]

Layout 1 (before the mapping was recorded) held a one-pair differential mapping with the
scaling in ``scale``; it is read as such.

Devices and the crossbar are imported inside the functions (this module needs numpy only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_rng
from ..devices.relaxation_table import sorted_quantiles
from ..errors import ConfigError, DataFormatError, malformed_file

__all__ = [
    "NOISE_KIND",
    "LAYOUT_VERSION",
    "NoiseTables",
    "default_levels",
    "export_noise",
    "ir_drop_error",
    "load_device_model",
]

#: ``kind`` attribute of noise files written here.
NOISE_KIND = "weight-quantile-tables"
#: Version of the layout above; newer files are refused by :meth:`NoiseTables.from_tree`.
LAYOUT_VERSION = 2
_COMPENSATIONS = ("none", "global")
#: Conditionings of the device model the tables came from (devices.base.Conditioning).
_CONDITIONINGS = ("target", "initial read")
#: What the weights were mapped to (programming targets, or the cells' first reads).
_WEIGHTS_MAP_TO = ("targets", "first reads")


def default_levels(n: int = 401, z_max: float = 4.0) -> np.ndarray:
    """Probability levels ``Φ(z)`` for ``z`` evenly spaced in [-z_max, z_max] (dense in
    the body, reaching ~3e-5 in the tails for z_max = 4)."""
    from scipy.special import ndtr

    if n < 2 or not z_max > 0:
        raise ConfigError(f"need n >= 2 levels and z_max > 0, got {n}, {z_max}")
    return ndtr(np.linspace(-z_max, z_max, n))


@dataclass(frozen=True, eq=False)
class NoiseTables:
    """The content of a noise file (numpy arrays; see the module docstring for shapes)."""

    times: np.ndarray
    """t: times after programming (T,) [s]."""
    w_grid: np.ndarray
    """u: normalised weights (m,) [1], strictly increasing in [-1, 1]."""
    levels: np.ndarray
    """p: probability levels (k,) [1], strictly increasing in (0, 1)."""
    quantiles: np.ndarray
    """Q(t, u, p): quantiles of Δw/max|W| (T, m, k) [1]."""
    mean: np.ndarray
    """μ(t, u): mean of Δw/max|W| (T, m) [1]."""
    std: np.ndarray
    """σ(t, u): standard deviation of Δw/max|W| (T, m) [1]."""
    drift_factor: np.ndarray
    """α(t): global drift-compensation factor (T,) [1]; ones when ``compensation='none'``."""
    g_min: float
    """Conductance of a device holding weight 0 [S]."""
    g_max: float
    """Conductance of a device holding max|W| [S]."""
    compensation: str = "none"
    """"none" or "global" (tables divided by α(t))."""
    conditioning: str = "target"
    """The device model's conditioning ("target" or "initial read")."""
    weights_map_to: str = "targets"
    """"targets" (programming error included) or "first reads" (not included)."""
    device_name: str = ""
    """Name of the device model (preset name or model file)."""
    scale: str = "tile"
    """Granularity of max|W| in the mapping ("tile" or "column"); tables are per unit."""
    mapping: Any = None
    """The :class:`~xbarlab.devices.mapping.WeightMapping` of the tables (None: a one-pair
    differential mapping from ``g_min``, ``g_max`` and ``scale``, as layout 1 files hold)."""
    n_samples: int = 0
    """Device pairs drawn per (t, u) [1]."""
    periphery: dict[str, Any] | None = None
    """{"adc_bits": int | None, "output_noise_std": float [1]} or None."""
    ir_drop: dict[str, Any] | None = None
    """Result of :func:`ir_drop_error` or None."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else read from the file (kept, not interpreted)."""

    def __post_init__(self):
        T, m, k = self.times.size, self.w_grid.size, self.levels.size
        if self.quantiles.shape != (T, m, k):
            raise DataFormatError(f"quantiles have shape {self.quantiles.shape}, expected "
                                  f"(times, w_grid, levels) = {(T, m, k)}")
        for name in ("mean", "std"):
            if getattr(self, name).shape != (T, m):
                raise DataFormatError(f"{name} has shape {getattr(self, name).shape}, "
                                      f"expected {(T, m)}")
        if self.drift_factor.shape != (T,):
            raise DataFormatError(f"drift_factor has shape {self.drift_factor.shape}, "
                                  f"expected ({T},)")
        if m < 2 or not np.all(np.diff(self.w_grid) > 0) or self.w_grid[0] < -1 - 1e-12 \
                or self.w_grid[-1] > 1 + 1e-12:
            raise DataFormatError("w_grid must be strictly increasing inside [-1, 1] with >= 2 "
                                  "points")
        if k < 2 or not np.all(np.diff(self.levels) > 0) or self.levels[0] <= 0 \
                or self.levels[-1] >= 1:
            raise DataFormatError("levels must be strictly increasing inside (0, 1)")
        if not np.all(np.isfinite(self.quantiles)) or np.any(np.diff(self.quantiles, axis=2) < 0):
            raise DataFormatError("quantiles must be finite and non-decreasing in p")
        if np.any(self.times < 0) or not np.all(np.isfinite(self.times)):
            raise DataFormatError("times must be finite and >= 0 s")
        if self.compensation not in _COMPENSATIONS:
            raise DataFormatError(f"compensation {self.compensation!r} is not one of "
                                  f"{_COMPENSATIONS}")
        if self.conditioning not in _CONDITIONINGS:
            raise DataFormatError(f"conditioning {self.conditioning!r} is not one of "
                                  f"{_CONDITIONINGS}")
        if self.weights_map_to not in _WEIGHTS_MAP_TO:
            raise DataFormatError(f"weights_map_to {self.weights_map_to!r} is not one of "
                                  f"{_WEIGHTS_MAP_TO}")
        for name in ("mean", "std", "drift_factor"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise DataFormatError(f"{name} holds NaN or infinite values; expected finite "
                                      "numbers")
        from ..devices.mapping import WeightMapping

        m = self.mapping
        if m is None:
            try:
                m = WeightMapping(g_max=float(self.g_max), g_min=float(self.g_min),
                                  scaling=self.scale)
            except ConfigError as exc:
                raise DataFormatError(f"mapping of the noise tables: {exc}") from None
            object.__setattr__(self, "mapping", m)
        elif not isinstance(m, WeightMapping):
            raise DataFormatError(f"mapping must be a devices.mapping.WeightMapping, got "
                                  f"{type(m).__name__}")
        if (m.g_min, m.g_max, m.scaling.value) != (self.g_min, self.g_max, self.scale):
            raise DataFormatError(f"mapping {m.to_dict()} contradicts g_min={self.g_min}, "
                                  f"g_max={self.g_max}, scale={self.scale!r}")

    # ----------------------------------------------------------------------- files

    def to_tree(self) -> dict[str, Any]:
        from ..formats import Quantity

        tree: dict[str, Any] = {
            "layout_version": LAYOUT_VERSION,
            "compensation": self.compensation,
            "conditioning": self.conditioning,
            "weights_map_to": self.weights_map_to,
            "device_name": self.device_name,
            "scale": self.scale,
            "n_samples": int(self.n_samples),
            "times": Quantity(np.asarray(self.times, float), "s"),
            "w_grid": Quantity(np.asarray(self.w_grid, float), "1"),
            "levels": Quantity(np.asarray(self.levels, float), "1"),
            "quantiles": Quantity(np.asarray(self.quantiles, float), "1"),
            "mean": Quantity(np.asarray(self.mean, float), "1"),
            "std": Quantity(np.asarray(self.std, float), "1"),
            "drift_factor": Quantity(np.asarray(self.drift_factor, float), "1"),
            "mapping": self._mapping_tree(),
        }
        if self.periphery is not None:
            bits = self.periphery.get("adc_bits")
            tree["periphery"] = {
                "adc_bits": -1 if bits is None else int(bits),
                "output_noise_std": Quantity(float(self.periphery.get("output_noise_std", 0.0)),
                                             "1")}
        if self.ir_drop is not None:
            d = self.ir_drop
            tree["ir_drop"] = {
                "rows": int(d["rows"]), "cols": int(d["cols"]),
                "r_wire": Quantity(float(d["r_wire"]), "Ohm"),
                "rel_output_error": Quantity(float(d["rel_output_error"]), "1"),
                "rel_output_error_std": Quantity(float(d["rel_output_error_std"]), "1"),
                "weight_gain": Quantity(np.asarray(d["weight_gain"], float), "1")}
        return tree

    def _mapping_tree(self) -> dict[str, Any]:
        from ..formats import Quantity

        d = self.mapping.to_dict()
        return {"g_min": Quantity(d["g_min"], "S"), "g_max": Quantity(d["g_max"], "S"),
                "scheme": d["scheme"], "scaling": d["scaling"], "n_pairs": d["n_pairs"],
                "significance": Quantity(d["significance"], "1"), "levels": d["levels"],
                "x_fs": Quantity(d["x_fs"], "1")}

    @classmethod
    def from_tree(cls, tree: dict[str, Any], *, source: str = "noise file") -> NoiseTables:
        from ..formats import Quantity

        version = tree.get("layout_version")
        if not isinstance(version, int) or version < 1:
            raise DataFormatError(f"{source}: layout_version {version!r} is missing or invalid")
        if version > LAYOUT_VERSION:
            raise DataFormatError(f"{source}: noise layout_version {version} is newer than this "
                                  f"xbarlab reads ({LAYOUT_VERSION}); upgrade xbarlab")

        def arr(key, units, where=tree):
            item = where.get(key)
            if not isinstance(item, Quantity):
                raise DataFormatError(f"{source}: missing dataset {key!r} (units {units!r})")
            return np.asarray(item.expect(units, f"{source}:{key}"), dtype=np.float64)

        mp = tree.get("mapping")
        if not isinstance(mp, dict):
            raise DataFormatError(f"{source}: missing group 'mapping'")
        g_min, g_max = float(arr("g_min", "S", mp)), float(arr("g_max", "S", mp))
        scale = str(tree.get("scale", "tile"))
        mapping = None  # layout 1: one differential pair, built in __post_init__
        if version >= 2:
            from ..devices.mapping import WeightMapping

            try:
                mapping = WeightMapping.from_dict({
                    "g_min": g_min, "g_max": g_max, "scheme": str(mp["scheme"]),
                    "scaling": str(mp["scaling"]), "n_pairs": int(mp["n_pairs"]),
                    "significance": float(arr("significance", "1", mp)),
                    "levels": int(mp["levels"]), "x_fs": float(arr("x_fs", "1", mp))})
            except KeyError as exc:
                raise DataFormatError(f"{source}: mapping group lacks {exc}") from None
            except ConfigError as exc:
                raise DataFormatError(f"{source}: mapping: {exc}") from None
        periphery = None
        if isinstance(tree.get("periphery"), dict):
            p = tree["periphery"]
            bits = int(p.get("adc_bits", -1))
            periphery = {"adc_bits": None if bits < 0 else bits,
                         "output_noise_std": float(arr("output_noise_std", "1", p))}
        ir = None
        if isinstance(tree.get("ir_drop"), dict):
            d = tree["ir_drop"]
            ir = {"rows": int(d["rows"]), "cols": int(d["cols"]),
                  "r_wire": float(arr("r_wire", "Ohm", d)),
                  "rel_output_error": float(arr("rel_output_error", "1", d)),
                  "rel_output_error_std": float(arr("rel_output_error_std", "1", d)),
                  "weight_gain": arr("weight_gain", "1", d)}
        known = {"layout_version", "compensation", "conditioning", "weights_map_to",
                 "device_name", "scale", "n_samples", "times", "w_grid", "levels", "quantiles",
                 "mean", "std", "drift_factor", "mapping", "periphery", "ir_drop"}
        return cls(
            times=np.atleast_1d(arr("times", "s")), w_grid=arr("w_grid", "1"),
            levels=arr("levels", "1"), quantiles=arr("quantiles", "1"), mean=arr("mean", "1"),
            std=arr("std", "1"), drift_factor=np.atleast_1d(arr("drift_factor", "1")),
            g_min=g_min, g_max=g_max, mapping=mapping,
            compensation=str(tree.get("compensation", "none")),
            conditioning=str(tree.get("conditioning", "target")),
            weights_map_to=str(tree.get("weights_map_to", "targets")),
            device_name=str(tree.get("device_name", "")), scale=scale,
            n_samples=int(tree.get("n_samples", 0)), periphery=periphery, ir_drop=ir,
            extra={k: v for k, v in tree.items() if k not in known})

    def write(self, path, *, force: bool = False, provenance=None) -> Path:
        """Write the HDF5 noise file (atomic; refuses to overwrite unless asked)."""
        from .. import formats

        return formats.write_model_file(path, file_type="xbarlab-noise-model", kind=NOISE_KIND,
                                        tree=self.to_tree(), provenance=provenance,
                                        force=force)

    @classmethod
    def read(cls, path) -> NoiseTables:
        """Read a noise file written by :meth:`write` (checks format versions and units)."""
        from .. import formats

        kind, tree, _prov = formats.read_model_file(path, file_type="xbarlab-noise-model")
        if kind != NOISE_KIND:
            raise DataFormatError(f"{path}: noise-model kind {kind!r}, expected {NOISE_KIND!r}")
        with malformed_file(path, "an xbarlab noise model (see data/README.md)"):
            return cls.from_tree(tree, source=str(path))

    def time_index(self, t: float) -> int:
        """Index of the stored time equal to ``t`` [s] (relative tolerance 1e-9)."""
        hit = np.flatnonzero(np.isclose(self.times, t, rtol=1e-9, atol=0.0))
        if hit.size == 0:
            raise ConfigError(f"time {t:g} s is not in the noise file; stored times: "
                              f"{[float(x) for x in self.times]} s")
        return int(hit[0])


def load_device_model(name_or_path):
    """A device model by preset name or file path (:func:`xbarlab.devices.load`)."""
    from .. import devices

    return devices.load(name_or_path)


# --------------------------------------------------------------------------- mapping


def _draws(device, mapping, u: float, t: np.ndarray, n: int, rng) -> np.ndarray:
    """û (T, n): ``n`` fresh weights ``u`` (normalised) mapped by ``mapping``, every device
    programmed and read at ``t`` through ``device``, read back as the crossbar does: the
    weight's row driven at 1 V, the column currents subtracted (G+ − G− per pair, or G −
    G_ref of the read reference device) and turned into an output by the mapping."""
    # the full-scale weight alongside: max|W| = 1 for tile and column scaling alike
    mw = mapping.to_conductances(np.array([[float(u), 1.0]]))
    pos = mw.g_pos[:, 0, 0]                                       # (P,) [S]
    neg = mw.g_neg[:, 0, 0] if mw.g_neg is not None else np.array([mw.g_ref])
    g = np.repeat(np.concatenate([pos, neg]), n)                  # device-major blocks of n
    r = np.asarray(device.sample(g, t, rng), dtype=np.float64).reshape(t.size, -1, n)
    d = r[:, :pos.size] - r[:, pos.size:]                          # (T, P, n) [A at 1 V]
    # the output is linear in the differences: the mapping's coefficient of each pair from
    # unit differences, then a plain weighted sum (a BLAS call on the large arrays leaves
    # threads spinning that slow the next device kernel)
    c = mw.outputs_from_difference(np.eye(pos.size)[:, :, None], v_read=1.0)[:, 0]  # (P,)
    return np.einsum("k,tkn->tn", c, d)


def _check_times(device, times) -> np.ndarray:
    try:
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    except (TypeError, ValueError):
        raise ConfigError(f"times must be numbers in s, got {times!r}") from None
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ConfigError(f"times must be a non-empty list of finite times >= 0 s, got {times!r}")
    if np.unique(t).size != t.size:
        raise ConfigError(f"times must be distinct, got {list(t)}")
    vt = getattr(device, "valid_times", None)
    if vt is not None:
        lo, hi = (float(v) for v in vt)
        bad = t[(t < lo) | (t > hi)]
        if bad.size:
            name = getattr(device, "name", "") or type(device).__name__
            raise ConfigError(f"{name}: time {bad[0]:g} s is outside the model's valid range "
                              f"[{lo:g}, {hi:g}] s")
    return t


def export_noise(device, times, rng: np.random.Generator, *, mapping=None, w_grid=None,
                 levels=None, n_samples: int = 200_000, compensation: str = "none",
                 allow_extrapolation: bool = False,
                 adc_bits: int | None = None, output_noise_std: float | None = None,
                 ir_drop: dict | None = None, device_name: str = "",
                 chunk: int = 400_000, progress: bool | None = False) -> NoiseTables:
    """Quantile tables of the weight perturbation Δw | w of ``device`` at ``times`` [s].

    ``device``: a device model (``devices.load(...)``); ``times``: times after
    programming [s]; ``rng``: numpy Generator for the device draws; ``mapping``: a
    :class:`~xbarlab.devices.mapping.WeightMapping` (any scheme, pairs and scaling; its
    ``g_min..g_max`` must lie inside the device model's range,
    :func:`~xbarlab.devices.mapping.device_range`, unless ``allow_extrapolation``), or None
    for :func:`~xbarlab.devices.mapping.mapping_for` ``(device)`` (one differential pair over
    the device model's range); ``w_grid``: normalised weights
    (default 101 points on [-1, 1]); ``levels``: probabilities (default
    :func:`default_levels`); ``n_samples``: weights drawn per (u, t) (each with all its
    devices); ``compensation``: "none" or "global" (devices.mapping's global factor, see
    the module docstring; "column" has no meaning on a normalised grid); ``adc_bits``,
    ``output_noise_std`` [1, relative to the full-scale output]: periphery recorded in
    the file; ``ir_drop``: keyword arguments of :func:`ir_drop_error` to store its result
    (sample tiles mapped with the same mapping); ``chunk``: devices per sampling call;
    ``progress``: a progress bar over the grid's weights on stderr (None: only when
    stderr is a terminal).
    """
    from ..devices.mapping import Compensation, check_mapping, compensation_factors, mapping_for

    check_rng(rng)
    try:
        comp = Compensation(compensation)
    except ValueError:
        comp = None
    if comp not in (Compensation.NONE, Compensation.GLOBAL):
        raise ConfigError(f"compensation {compensation!r} is not one of {_COMPENSATIONS} "
                          "(per-column factors have no meaning on a normalised-weight table)")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) \
            or n_samples < 100:
        raise ConfigError(f"n_samples must be an integer >= 100, got {n_samples!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ConfigError(f"chunk must be a positive integer, got {chunk!r}")
    t = _check_times(device, times)
    wm = (mapping_for(device) if mapping is None
          else check_mapping(device, mapping, allow_extrapolation=allow_extrapolation))
    u = np.linspace(-1.0, 1.0, 101) if w_grid is None else np.asarray(w_grid, np.float64)
    if u.ndim != 1 or u.size < 2 or not np.all(np.diff(u) > 0) or u[0] < -1 or u[-1] > 1:
        raise ConfigError("w_grid must be 1-D, strictly increasing, >= 2 points in [-1, 1]")
    p = default_levels() if levels is None else np.asarray(levels, np.float64)
    if p.ndim != 1 or p.size < 2 or not np.all(np.diff(p) > 0) or p[0] <= 0 or p[-1] >= 1:
        raise ConfigError("levels must be 1-D, strictly increasing inside (0, 1)")
    periphery = None
    if adc_bits is not None or output_noise_std is not None:
        if adc_bits is not None and not (isinstance(adc_bits, int) and 1 <= adc_bits <= 24):
            raise ConfigError(f"adc_bits must be an integer in 1..24, got {adc_bits!r}")
        ons = 0.0 if output_noise_std is None else float(output_noise_std)
        if not (math.isfinite(ons) and ons >= 0):
            raise ConfigError(f"output_noise_std must be >= 0, got {output_noise_std!r}")
        periphery = {"adc_bits": adc_bits, "output_noise_std": ons}
    if comp is Compensation.GLOBAL and not np.any(u):
        raise ConfigError("global compensation needs a w_grid with nonzero weights")

    T, m, k = t.size, u.size, p.size
    q_raw = np.empty((T, m, k))
    mean_raw = np.empty((T, m))
    var_raw = np.empty((T, m))
    abs_raw = np.empty((T, m))  # Σ over draws of |û|: the calibration outputs' magnitudes
    n = int(n_samples)
    per_weight = 2 * wm.n_pairs  # devices per weight: the pairs, or G and its reference
    step = max(int(chunk) // per_weight, 1)
    from tqdm.auto import tqdm

    for i in tqdm(range(m), desc="export-noise", unit="level",
                  disable=None if progress is None else not progress):
        w_hat = np.empty((T, n))
        for s0 in range(0, n, step):
            s1 = min(n, s0 + step)
            w_hat[:, s0:s1] = _draws(device, wm, u[i], t, s1 - s0, rng)
        mean_raw[:, i] = w_hat.mean(axis=1)
        var_raw[:, i] = w_hat.var(axis=1)
        abs_raw[:, i] = np.abs(w_hat).sum(axis=1)
        w_hat.sort(axis=1)
        q_raw[:, i, :] = sorted_quantiles(w_hat, p)

    if comp is Compensation.GLOBAL:
        # calibration input 1 on the one-row layer of the grid's weights, n draws each:
        # y_ref = u, y_t = û; the global factor sums |y| over columns and draws
        f = np.array([compensation_factors(n * np.abs(u), abs_raw[j], comp)[0]
                      for j in range(T)])
        alpha = 1.0 / f
        if np.any(alpha <= 0) or not np.all(np.isfinite(alpha)):
            raise ConfigError(f"global drift-compensation factor is not positive: {alpha}")
    else:
        alpha = np.ones(T)
    q = q_raw / alpha[:, None, None] - u[None, :, None]
    mean = mean_raw / alpha[:, None] - u[None, :]
    std = np.sqrt(var_raw) / alpha[:, None]
    cond = str(getattr(device, "conditioning", "target"))
    ir = None
    if ir_drop is not None:
        ir = ir_drop_error(mapping=wm, rng=rng, **ir_drop)
    return NoiseTables(
        times=t, w_grid=u, levels=p, quantiles=np.maximum.accumulate(q, axis=2), mean=mean,
        std=std, drift_factor=alpha, g_min=wm.g_min, g_max=wm.g_max,
        compensation=comp.value, conditioning=cond,
        weights_map_to="first reads" if cond == "initial read" else "targets",
        device_name=device_name or str(getattr(device, "name", "") or type(device).__name__),
        scale=wm.scaling.value, mapping=wm, n_samples=n, periphery=periphery, ir_drop=ir)


# --------------------------------------------------------------------------- IR drop


def ir_drop_error(*, rows: int, cols: int, r_wire: float, mapping, n_tiles: int = 4,
                  n_inputs: int = 64, rng: np.random.Generator) -> dict[str, Any]:
    """Systematic IR-drop error of ``n_tiles`` sample tiles (``rows`` × ``cols`` physical,
    wire resistance ``r_wire`` [Ohm] per segment of rows and columns), from the exact
    solver's effective matrix.

    Weights uniform in [-1, 1] map onto conductance targets through ``mapping`` (a
    :class:`~xbarlab.devices.mapping.WeightMapping`, e.g. from
    :func:`~xbarlab.devices.mapping.mapping_for`); the ideal device reads them exactly.
    Physical columns: per output the pairs' G+ then G- side by side (``cols // (2 P)``
    outputs), or for the reference scheme one device per output and a reference column at
    (g_min + g_max)/2 last (``cols - 1`` outputs). Inputs uniform in [0, 1]. Returns
    ``rel_output_error`` = mean over tiles of ``‖x W_eff − x W‖ / ‖x W‖`` (Frobenius over
    ``n_inputs`` inputs) and its std, and ``weight_gain`` (rows, outputs): the mean over tiles
    of the least-squares gain of each effective weight against its target (1 = no IR drop),
    a position map of the error.
    """
    from ..crossbar.circuit import Crossbar, WireParams
    from ..devices.mapping import Scheme, WeightMapping

    if not (isinstance(rows, int) and isinstance(cols, int) and rows >= 1 and cols >= 2):
        raise ConfigError(f"rows must be >= 1 and cols >= 2, got {rows}, {cols}")
    if not (math.isfinite(r_wire) and r_wire >= 0):
        raise ConfigError(f"r_wire must be a finite resistance >= 0 Ohm, got {r_wire!r}")
    if not isinstance(mapping, WeightMapping):
        raise ConfigError(f"mapping must be a devices.mapping.WeightMapping, got "
                          f"{type(mapping).__name__}")
    ref = mapping.scheme is Scheme.REFERENCE
    P = mapping.n_pairs
    n_out = cols - 1 if ref else cols // (2 * P)
    if n_out < 1 or (not ref and cols % (2 * P)):
        raise ConfigError(f"cols = {cols} must be a multiple of 2 n_pairs = {2 * P} "
                          "(differential) or >= 2 (reference)")
    errs, gains_num, gains_den = [], 0.0, 0.0
    for _ in range(n_tiles):
        W = rng.uniform(-1, 1, (rows, n_out))           # crossbar convention: x @ W
        mw = mapping.to_conductances(W.T)                 # (P, rows, n_out) targets [S]
        if ref:
            G = np.concatenate([mw.g_pos[0], np.full((rows, 1), mw.g_ref)], axis=1)
        else:
            G = np.stack([mw.g_pos, mw.g_neg], axis=-1)   # (P, rows, n_out, 2)
            G = G.transpose(1, 2, 0, 3).reshape(rows, cols)
        xb = Crossbar(G, wires=WireParams(r_row=r_wire, r_col=r_wire))
        E = np.asarray(xb.effective_matrix()).T        # I = v @ E, (rows, cols) [S]
        if ref:
            # the circuit subtracts the reference column's current: shift onto g_ref
            W_eff = mw.to_weights((E[:, :-1] - E[:, -1:] + mw.g_ref)[None])[0].T
        else:
            E = E.reshape(rows, n_out, P, 2).transpose(2, 0, 1, 3)
            W_eff = mw.to_weights(E[..., 0], E[..., 1])[0].T
        x = rng.uniform(0, 1, (n_inputs, rows))
        y, y_eff = x @ W, x @ W_eff
        errs.append(np.linalg.norm(y_eff - y) / np.linalg.norm(y))
        gains_num = gains_num + W_eff * W
        gains_den = gains_den + W * W
    e = np.asarray(errs)
    return {"rows": rows, "cols": cols, "r_wire": float(r_wire),
            "rel_output_error": float(e.mean()), "rel_output_error_std": float(e.std()),
            "weight_gain": gains_num / gains_den}
