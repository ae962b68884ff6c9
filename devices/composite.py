"""CompositeDevice: the one device model, a chain of blocks.

programming error -> drift law (power law | relaxation | quantile relaxation table | none)
-> read noise, with stuck-at faults and level sets inside the programming block. The
presets, every fitted calibration and their compositions are instances of it (file kind
``"composite"``, layout version :data:`MODEL_FORMAT_VERSION`).

Two sampling paths, chosen from the blocks
------------------------------------------
- The parametric blocks of :mod:`xbarlab.devices.blocks` (curves of
  :mod:`xbarlab.devices.curves`) run in the Numba kernels of ``kernels.py``.
- The fitted blocks of :mod:`xbarlab.devices.fitted` and
  :mod:`xbarlab.devices.relaxation_table` (tabulated curves with bootstrap replicates, the
  quantile relaxation table) run block by block with numpy draws from the caller's
  generator (:func:`~xbarlab.devices.program_cells` and friends).

A model holds blocks of one path (an identity programming block fits both); mixing them
raises ConfigError.

Randomness and trajectories (Numba kernels)
-------------------------------------------
``program`` draws one 63-bit seed from the caller's generator and keeps it in the
:class:`~xbarlab.devices.base.DeviceState`; every per-cell random number is a hash
of (seed, stage, flat C-order cell index within the call, draw index), so results do
not depend on the thread count or on how Numba splits the loop. (Splitting the *input*
array into several calls renumbers the cells and so changes the draws.) The state keeps
g_input, g_prog and the drift exponent nu.

``read(state, t, rng)`` with times t_1..t_T follows one trajectory per cell: the 1/f
noise is a Wiener process W(u) keyed by the state's seed; the sorted times get
independent increments W(u_j) - W(u_(j-1)) ~ N(0, u_j - u_(j-1)), so within one call the
joint law of the reads is exact (reads 1 us apart nearly agree, a second and a year
later are correlated as sqrt(u_1/u_2), not locked). Separate calls on one state reuse
the path key: the same t gives the same 1/f value, but two single-time calls at t_1 and
t_2 share their first deviate (correlation 1 instead of sqrt(u_1/u_2), which is 0.7-1
for the PCM presets between a second and a year): pass all times of a trajectory in
one call. Relaxation deviates behave the same way. Short-term read noise, and 1/f noise
of the structure "independent" (or that part of "both"), is drawn independently per
read and per call (its key comes from ``rng``).

``sample(g, t, rng)`` has the results of ``read(program(g, rng), t, rng)``; float32 output
is the float64 result rounded. From :data:`FUSED_MIN_CELLS` cells on it programs and reads
each cell in one fused kernel (a few per cent faster, and no per-cell state in memory);
below, it runs the program and read kernels, so that a process sampling only small arrays
(the test suite) compiles two kernels, not three.

A model whose drift is a relaxation table fitted on labelled levels (:attr:`takes_level`)
also takes each cell's level conductance, ``program(g, rng, g_level=...)`` and
``sample(g, t, rng, g_level=...)``: labelled levels may overlap in the first read, and the
cell then follows its own level, within it conditioned on its first read.

Range policy
------------
``range_policy = "refuse"`` (presets): inputs outside ``g_range`` raise ConfigError.
``range_policy = "edge"`` (fitted models): any input >= 0 is accepted; statistics
(curves) are evaluated at the input clipped into the fitted range ``g_fit`` (else
``g_range``), so beyond it the model uses its edge statistics while the mean still
follows the input. The conductances a weight mapping may use are
:func:`xbarlab.devices.mapping.device_range` (``g_range`` narrowed to ``g_fit``).
"""

from __future__ import annotations

import enum
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from ..checks import check_rng
from ..enums import coerce_enum
from ..errors import CompositionWarning, ConfigError, DataFormatError
from ..formats import Quantity
from . import kernels as K
from .base import (
    Conditioning,
    DeviceModelBase,
    DeviceState,
    check_conductance,
    check_dtype,
    check_times,
)
from .blocks import (
    ConditionOn,
    NoiseScaling,
    PowerLawDrift,
    ProgrammingError,
    ReadNoise,
    ReadNoiseStructure,
    Relaxation,
    RelaxationPath,
)
from .curves import encode_curves, needs_log
from .fitted import (
    FittedPowerLaw,
    FittedProgramming,
    WhiteReadNoise,
    evolve_cells,
    program_cells,
    read_cells,
)
from .relaxation_table import RelaxationTable

__all__ = [
    "MODEL_FORMAT_VERSION",
    "FUSED_MIN_CELLS",
    "RangePolicy",
    "CompositeDevice",
    "compose",
    "warn_disjoint_ranges",
    "programming_from_dict",
    "drift_from_dict",
    "read_noise_from_dict",
]

#: Version of the model tree this class writes (key ``model_format_version``; files without
#: the key are version 1, the layout of xbarlab 0.1.0's composite models).
MODEL_FORMAT_VERSION = 2

#: Number of cells [1] from which :meth:`CompositeDevice.sample` runs the fused
#: program-and-read kernel (same bits as the two kernels; saves a few per cent of the time,
#: under 2 ms a call below this size, against about 10 s of CPU for its first compile).
FUSED_MIN_CELLS = 1 << 19

Programming = ProgrammingError | FittedProgramming
DriftLaw = PowerLawDrift | Relaxation | FittedPowerLaw | RelaxationTable
Noise = ReadNoise | WhiteReadNoise

_KERNEL_BLOCKS = (ProgrammingError, PowerLawDrift, Relaxation, ReadNoise)
_NUMPY_BLOCKS = (FittedProgramming, FittedPowerLaw, RelaxationTable, WhiteReadNoise)


class RangePolicy(enum.StrEnum):
    """What a model does with inputs outside ``g_range``."""

    REFUSE = "refuse"   # ConfigError (presets: published fits only hold in range)
    EDGE = "edge"       # accept, use the edge statistics (fitted models)


@dataclass(frozen=True, eq=False)
class _Compiled:
    spec: np.ndarray
    ip: np.ndarray
    fp: np.ndarray
    relax_offsets: tuple  # (mean offsets per time of the surface, sd offsets)


def _pair(value, name: str, units: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (low, high) in {units}, got {value!r}") from None
    return lo, hi


@dataclass(frozen=True, eq=False)
class CompositeDevice(DeviceModelBase):
    """The device model: a chain of blocks; see the module docstring."""

    kind: ClassVar[str] = "composite"

    programming: Programming | None = field(
        default_factory=lambda: ProgrammingError(identity=True))
    """g_prog | g (the write); None: exact programming."""
    drift_law: DriftLaw | None = None
    """g(t) | state without read noise (None: no drift); ``drift(state, t)`` evaluates it."""
    read_noise: Noise | None = None
    """Noise added by each read (None: noiseless reads)."""
    g_range: tuple[float, float] = (0.0, math.inf)
    """(g_lo, g_hi): range the model is used over [S]; inputs outside are refused
    (``range_policy`` "refuse") or use the edge statistics ("edge")."""
    range_policy: RangePolicy = RangePolicy.REFUSE
    """Inputs outside g_range: refuse or use edge statistics."""
    g_fit: tuple[float, float] | None = None
    """(g_lo, g_hi): conductance range the statistics were fitted over [S] (None: g_range);
    with range_policy "edge" curves are evaluated at inputs clipped into it."""
    out_lo: float = 0.0
    """Lower clamp of every drifted/read conductance [S]."""
    out_hi: float = math.inf
    """Upper clamp [S] (inf unless the technology has a ceiling)."""
    valid_times: tuple[float, float] = (0.0, math.inf)
    """(t_min, t_max): times after programming the model is valid for [s]; others refused."""
    conditioning: str = Conditioning.TARGET.value
    """"target" (input = target) or "initial read" (input = each cell's first read)."""
    name: str = ""
    """Short name (preset name, or a label given by calibration)."""
    citation: str = ""
    """Where the numbers come from."""
    extras: Mapping[str, Any] = field(default_factory=dict)
    """Additional tree saved with the model and not used for sampling: nested dicts of
    Quantity/str/int/bool."""
    provenance: Any = None
    """:class:`~xbarlab.formats.Provenance` of the model (data files, method, settings);
    written to its file's header, not to the tree. Models loaded from a file carry the
    file's."""
    report: Any = None
    """The evidence of a fit (:class:`~xbarlab.calibration.FitReport`); not saved."""

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "range_policy", coerce_enum(RangePolicy, self.range_policy, "range_policy"))
        set_(self, "conditioning",
             coerce_enum(Conditioning, self.conditioning, "conditioning").value)
        lo, hi = _pair(self.g_range, "g_range", "S")
        if math.isnan(lo) or math.isnan(hi) or lo < 0:
            raise ConfigError(f"g_range must be (g_min >= 0, g_max) in S, got {self.g_range}")
        if not lo < hi:
            raise ConfigError(f"g_min ({lo} S) must be below g_max ({hi} S)")
        set_(self, "g_range", (lo, hi))
        if self.g_fit is not None:
            flo, fhi = _pair(self.g_fit, "g_fit", "S")
            if not (math.isfinite(flo) and math.isfinite(fhi) and 0 <= flo <= fhi):
                raise ConfigError(f"g_fit must be finite (g_lo <= g_hi) in S, got {self.g_fit}")
            set_(self, "g_fit", (flo, fhi))
        tlo, thi = _pair(self.valid_times, "valid_times", "s")
        if math.isnan(tlo) or math.isnan(thi) or tlo < 0 or not tlo < thi:
            raise ConfigError(f"valid_times must be 0 <= t_min < t_max [s], got {self.valid_times}")
        set_(self, "valid_times", (tlo, thi))
        if math.isnan(self.out_lo) or math.isnan(self.out_hi) or not self.out_lo < self.out_hi:
            raise ConfigError(f"out_lo ({self.out_lo}) must be below out_hi ({self.out_hi}) S")
        if self.range_policy is RangePolicy.EDGE and not math.isfinite(self.stat_range[1]):
            raise ConfigError("range_policy 'edge' needs a finite fitted range (g_fit or g_range)")
        set_(self, "_numpy", self._uses_numpy_path())
        if self._numpy:
            return
        set_(self, "_compiled", self._compile())
        self._check_spreads()

    @property
    def stat_range(self) -> tuple[float, float]:
        """Range the statistics hold over [S]: ``g_fit``, else ``g_range``."""
        return self.g_fit if self.g_fit is not None else self.g_range

    def _uses_numpy_path(self) -> bool:
        """True when the blocks are fitted ones (numpy path); ConfigError when mixed."""
        prog = self.programming
        blocks = [b for b in (prog, self.drift_law, self.read_noise) if b is not None
                  and not (isinstance(b, ProgrammingError) and b.identity)]
        for b, kinds, what in ((prog, Programming, "programming"),
                               (self.drift_law, DriftLaw, "drift_law"),
                               (self.read_noise, Noise, "read_noise")):
            if b is not None and not isinstance(b, kinds):
                raise ConfigError(f"{what} must be one of {kinds}, got {type(b).__name__}")
        fit = [isinstance(b, _NUMPY_BLOCKS) for b in blocks]
        if any(fit) and not all(fit):
            raise ConfigError(
                "fitted blocks (FittedProgramming, FittedPowerLaw, RelaxationTable, "
                "WhiteReadNoise) and parametric blocks (ProgrammingError, PowerLawDrift, "
                "Relaxation, ReadNoise) cannot be combined in one model; got "
                f"{[type(b).__name__ for b in blocks]}")
        if any(fit) and (self.out_lo != 0.0 or self.out_hi != math.inf):
            raise ConfigError("models with fitted blocks clamp reads at 0 S: out_lo must be "
                              f"0 S and out_hi inf, got {self.out_lo}, {self.out_hi}")
        return any(fit)

    # ------------------------------------------------------------------ compilation

    def _compile(self) -> _Compiled:
        p, d, r = self.programming, self.drift_law, self.read_noise
        if p is None:
            p = ProgrammingError(identity=True)
        curves: list = [p.bias, p.spread]
        if isinstance(d, PowerLawDrift):
            curves += [d.nu_mean, d.nu_std]
        else:
            curves += [None, None]
        curves += [None if r is None else r.amplitude, None if r is None else r.short_term]
        mean_c, sd_c = [], []
        if isinstance(d, Relaxation):
            mean_c = list(d.mean.curves) if d.mean is not None else []
            sd_c = list(d.spread.curves)
        spec, offs = encode_curves(curves + mean_c + sd_c)
        lv_off = len(spec)
        spec.extend(p.levels)
        ip = np.zeros(K.IP_SIZE, dtype=np.int64)
        fp = np.zeros(K.FP_SIZE, dtype=np.float64)
        fam, fpar = p.distribution.kernel_params()
        ip[K.IP_FAMILY] = fam
        ip[K.IP_OFF_BIAS], ip[K.IP_OFF_SPREAD] = offs[0], offs[1]
        ip[K.IP_PROG_IDENTITY] = int(p.identity or (p.spread is None and p.bias is None
                                                    and p.d2d == 0 and p.p_stuck_low == 0
                                                    and p.p_stuck_high == 0 and not p.levels
                                                    and p.prog_lo == 0 and p.prog_hi == math.inf))
        if p.identity and p.levels:
            ip[K.IP_PROG_IDENTITY] = 1
        ip[K.IP_N_LEVELS], ip[K.IP_OFF_LEVELS] = len(p.levels), lv_off
        ip[K.IP_DRIFT] = (1 if isinstance(d, PowerLawDrift)
                          else 2 if isinstance(d, Relaxation) else 0)
        ip[K.IP_OFF_NU_MU], ip[K.IP_OFF_NU_SD] = offs[2], offs[3]
        ip[K.IP_NU_FOLD] = int(isinstance(d, PowerLawDrift) and d.fold)
        if isinstance(d, Relaxation):
            ip[K.IP_RELAX_PATH] = 0 if d.path is RelaxationPath.COMMON_DEVIATE else 1
            ip[K.IP_RELAX_COND] = 1 if d.condition_on is ConditionOn.PROGRAMMED else 0
        if r is None or r.amplitude is None:
            ip[K.IP_READ] = 0
        else:
            ip[K.IP_READ] = 1 if r.scaling is NoiseScaling.RELATIVE else 2
            ip[K.IP_READ_STRUCT] = {ReadNoiseStructure.RANDOM_WALK: 0,
                                    ReadNoiseStructure.INDEPENDENT: 1,
                                    ReadNoiseStructure.BOTH: 2}[r.structure]
        ip[K.IP_OFF_Q], ip[K.IP_OFF_SHORT] = offs[4], offs[5]
        relax_logs = any(needs_log(c) for c in mean_c + sd_c)
        relax_p = isinstance(d, Relaxation) and d.condition_on is ConditionOn.PROGRAMMED
        ip[K.IP_LOG_PROG] = int(any(needs_log(c) for c in curves[:4]))
        ip[K.IP_LOG_READ_IN] = int(relax_logs and not relax_p)
        ip[K.IP_LOG_READ_P] = int(any(needs_log(c) for c in curves[4:6])
                                  or (relax_logs and relax_p))
        if self.range_policy is RangePolicy.EDGE:
            fp[K.FP_STAT_LO], fp[K.FP_STAT_HI] = self.stat_range
        else:
            fp[K.FP_STAT_LO], fp[K.FP_STAT_HI] = -math.inf, math.inf
        fp[K.FP_P_STUCK_LO], fp[K.FP_P_STUCK_HI] = p.p_stuck_low, p.p_stuck_high
        fp[K.FP_G_STUCK_LO], fp[K.FP_G_STUCK_HI] = p.g_stuck_low, p.g_stuck_high
        fp[K.FP_D2D] = p.d2d
        fp[K.FP_PROG_LO], fp[K.FP_PROG_HI] = p.prog_lo, p.prog_hi
        fp[K.FP_FAM_A:K.FP_FAM_D + 1] = fpar
        fp[K.FP_OUT_LO], fp[K.FP_OUT_HI] = self.out_lo, self.out_hi
        n_m = len(mean_c)
        relax = (tuple(offs[6:6 + n_m]), tuple(offs[6 + n_m:]))
        spec_arr = np.asarray(spec, dtype=np.float64)
        return _Compiled(spec_arr, ip, fp, relax)

    def _check_spreads(self):
        """Spreads must be >= 0 (and finite) over the model's range."""
        lo, hi = self.g_range
        top = hi if math.isfinite(hi) else max(lo, 1e-3) * 10
        grid = np.linspace(lo, top, 513)
        checks = [("programming spread", getattr(self.programming, "spread", None))]
        if isinstance(self.drift_law, PowerLawDrift):
            checks.append(("drift-exponent spread nu_std", self.drift_law.nu_std))
        if isinstance(self.drift_law, Relaxation):
            checks += [(f"relaxation spread at t = {t} s", c)
                       for t, c in zip(self.drift_law.spread.times, self.drift_law.spread.curves,
                                       strict=True)]
        if self.read_noise is not None:
            checks += [("1/f amplitude", self.read_noise.amplitude),
                       ("short-term read noise", self.read_noise.short_term)]
        for name, c in checks:
            if c is None:
                continue
            y = c(grid)
            if not np.all(np.isfinite(y)):
                raise ConfigError(f"{name} is not finite over g in [{lo}, {top}] S")
            if np.any(y < 0):
                k = int(np.argmin(y))
                raise ConfigError(f"{name} must be >= 0; it is {y[k]:.4g} at g = {grid[k]:.4g} S")

    # ------------------------------------------------------------------ checks

    def _check_input(self, g) -> np.ndarray:
        arr = np.asarray(g, dtype=np.float64) if isinstance(g, np.ndarray) else None
        if arr is None or arr.size == 0:
            arr = check_conductance(g)
            mn, mx = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        else:  # one pass over large arrays; the lenient checker words the errors
            mn, mx, bad = K.scan(np.ascontiguousarray(arr).ravel())
            if bad or mn < 0:
                check_conductance(arr)
        lo, hi = self.g_range
        if self.range_policy is RangePolicy.REFUSE and arr.size:
            if mn < lo or mx > hi:
                bad = mn if mn < lo else mx
                raise ConfigError(
                    f"{self.name or 'model'}: input conductance {bad:.6g} S outside the valid "
                    f"range [{lo:.6g}, {hi:.6g}] S")
        return arr

    def _check_t(self, t):
        times, scalar = check_times(t)
        tlo, thi = self.valid_times
        if times.size and (times.min() < tlo or times.max() > thi):
            bad = times.min() if times.min() < tlo else times.max()
            raise ConfigError(f"{self.name or 'model'}: t = {bad:.6g} s outside the valid time "
                              f"range [{tlo:.6g}, {thi:.6g}] s")
        return times, scalar

    def _time_tables(self, times: np.ndarray):
        order = np.argsort(times, kind="stable")
        T = times.size
        tf = np.zeros((T, K.TF_SIZE))
        ti = np.full((T, K.TI_SIZE), -1, dtype=np.int64)
        ts = times[order]
        ti[:, K.TI_ROW] = order
        d, r = self.drift_law, self.read_noise
        if isinstance(d, PowerLawDrift):
            tf[:, K.TF_LOGRATIO] = np.log((ts + d.t0) / d.t0)
        if r is not None:
            u = r.u(ts)
            tf[:, K.TF_U] = u
            tf[:, K.TF_SQRT_DU] = np.sqrt(np.maximum(np.diff(u, prepend=0.0), 0.0))
        if isinstance(d, Relaxation):
            m_off, s_off = self._compiled.relax_offsets
            for j, t in enumerate(ts):
                if d.mean is not None:
                    a, b, w = d.mean.weights(float(t))
                    ti[j, K.TI_MEAN_A], ti[j, K.TI_MEAN_B] = m_off[a], m_off[b]
                    tf[j, K.TF_W_MEAN] = w
                a, b, w = d.spread.weights(float(t))
                ti[j, K.TI_SD_A], ti[j, K.TI_SD_B] = s_off[a], s_off[b]
                tf[j, K.TF_W_SD] = w
        return tf, ti

    @staticmethod
    def _seed(rng) -> np.uint64:
        check_rng(rng)
        return np.uint64(int(rng.integers(0, 2**63 - 1, dtype=np.int64)))

    # ------------------------------------------------------------------ the contract

    @property
    def takes_level(self) -> bool:
        """Whether ``program`` and ``sample`` take each cell's level conductance
        ``g_level`` [S]: the drift is a relaxation table fitted on labelled levels, which
        may overlap in the first read (:class:`RelaxationTable` ``level_by_label``)."""
        return isinstance(self.drift_law, RelaxationTable) and self.drift_law.level_by_label

    def _check_level(self, g_level, arr: np.ndarray) -> np.ndarray:
        """``g_level`` [S] as a float64 array shaped like the input ``arr``."""
        if not self.takes_level:
            raise ConfigError(f"{self.name or 'model'} takes no g_level: only a relaxation "
                              "table fitted on labelled levels does (takes_level is False)")
        lv = check_conductance(g_level, "g_level")
        try:
            return np.broadcast_to(lv, arr.shape).astype(np.float64)
        except ValueError:
            raise ConfigError(f"g_level has shape {lv.shape}, expected that of g, "
                              f"{arr.shape}") from None

    def program(self, g, rng: np.random.Generator, *, g_level=None) -> DeviceState:
        """Write target (or first-read) conductances ``g`` [S]; returns the per-cell state.

        ``g_level``: each cell's level conductance [S] (shaped like ``g``, or a scalar),
        only for a model that :attr:`takes_level`: the cell's change then follows that
        level, within it conditioned on ``g``; None: the level is inferred from ``g``."""
        if self._numpy:
            return self._program_numpy(g, rng, g_level)
        if g_level is not None:
            self._check_level(g_level, np.asarray(g))
        arr = self._check_input(g)
        seed = self._seed(rng)
        flat = np.ascontiguousarray(arr.ravel())
        gs, gp, nu = (np.empty(flat.size) for _ in range(3))
        c = self._compiled
        K.program_kernel(flat, c.spec, c.ip, c.fp, seed, gs, gp, nu)
        fields = {"g_snapped": gs.reshape(arr.shape)}
        if isinstance(self.drift_law, PowerLawDrift):
            fields["nu"] = nu.reshape(arr.shape)
        return DeviceState(g_input=arr.copy(), g_prog=gp.reshape(arr.shape), seed=int(seed),
                           fields=fields)

    def _program_numpy(self, g, rng, g_level=None) -> DeviceState:
        arr = check_conductance(g)
        lv = None if g_level is None else self._check_level(g_level, arr).ravel()
        lo, hi = self.g_range
        if self.range_policy is RangePolicy.REFUSE and arr.size and (arr.min() < lo
                                                                     or arr.max() > hi):
            bad = arr.min() if arr.min() < lo else arr.max()
            raise ConfigError(
                f"{self.name or 'model'}: input conductance {bad:.6g} S outside the valid "
                f"range [{lo:.6g}, {hi:.6g}] S")
        check_rng(rng)
        prog = self.programming
        if isinstance(prog, ProgrammingError):  # the identity block
            prog = None
        gp, fields, seed = program_cells(prog, self.drift_law, arr.ravel(), rng, lv)
        return DeviceState(g_input=arr.copy(), g_prog=gp.reshape(arr.shape), seed=seed,
                           fields={k: v.reshape(arr.shape) for k, v in fields.items()})

    def _read(self, state: DeviceState, t, rng, noisy: bool, dtype=np.float64) -> np.ndarray:
        if not isinstance(state, DeviceState):
            raise ConfigError(f"state must be a DeviceState from program(), got {type(state)}")
        times, scalar = self._check_t(t)
        if self._numpy:
            if not noisy:
                out = evolve_cells(self.drift_law, state.g_prog, state.fields, times)
            else:
                check_rng(rng)
                out = read_cells(self.drift_law, self.read_noise, state.g_prog,
                                        state.fields, times, rng)
            return out[0] if scalar else out
        gs = np.ascontiguousarray(state.fields.get("g_snapped", state.g_input), dtype=np.float64)
        gp = np.ascontiguousarray(state.g_prog, dtype=np.float64)
        nu = np.ascontiguousarray(state.fields.get("nu", np.zeros(gp.shape)), dtype=np.float64)
        if not (gs.shape == gp.shape == nu.shape):
            raise ConfigError(f"state arrays have mismatched shapes {gs.shape}, {gp.shape}, "
                              f"{nu.shape}")
        seed_short = self._seed(rng) if noisy else np.uint64(0)
        tf, ti = self._time_tables(times)
        out = np.empty((times.size, gp.size), dtype=dtype)
        c = self._compiled
        K.read_kernel(gs.ravel(), gp.ravel(), nu.ravel(), c.spec, c.ip, c.fp, tf, ti,
                       np.uint64(state.seed), seed_short, bool(noisy), out)
        out = out.reshape((times.size, *gp.shape))
        return out[0] if scalar else out

    def drift(self, state: DeviceState, t) -> np.ndarray:
        """g(t) [S] without read noise (the contract's ``drift``)."""
        return self._read(state, t, None, False)

    def read(self, state: DeviceState, t, rng: np.random.Generator) -> np.ndarray:
        """g(t) [S] with read noise; ``t`` scalar -> shape of g, (T,) -> (T, *g.shape)."""
        return self._read(state, t, rng, True)

    def sample(self, g, t, rng: np.random.Generator, *, dtype=np.float64,
               g_level=None) -> np.ndarray:
        """Program ``g`` [S] anew and read at ``t`` [s] (the same bits as
        ``read(program(g, rng, g_level=g_level), t, rng)``); float64 unless ``dtype`` is
        float32; ``g_level`` [S]: as for :meth:`program`."""
        if g_level is not None:
            dtype = check_dtype(dtype)
            state = self.program(g, rng, g_level=g_level)
            return np.asarray(self.read(state, t, rng), dtype=dtype)
        if self._numpy:
            return super().sample(g, t, rng, dtype=dtype)
        dtype = check_dtype(dtype)
        arr = self._check_input(g)
        times, scalar = self._check_t(t)
        seed = self._seed(rng)
        seed_short = self._seed(rng)
        tf, ti = self._time_tables(times)
        flat = np.ascontiguousarray(arr.ravel())
        out = np.empty((times.size, flat.size))
        c = self._compiled
        if flat.size >= FUSED_MIN_CELLS:  # one pass, the bits of the two kernels below
            K.sample_kernel(flat, c.spec, c.ip, c.fp, tf, ti, seed, seed_short, out)
        else:
            gs, gp, nu = (np.empty(flat.size) for _ in range(3))
            K.program_kernel(flat, c.spec, c.ip, c.fp, seed, gs, gp, nu)
            K.read_kernel(gs, gp, nu, c.spec, c.ip, c.fp, tf, ti, seed, seed_short, True, out)
        # float32 is a rounding of the float64 result (one kernel, one set of bits)
        out = out.reshape((times.size, *arr.shape)).astype(dtype, copy=False)
        return out[0] if scalar else out

    # ------------------------------------------------------------------ files

    def to_tree(self) -> dict[str, Any]:
        """The model as a tree of quantities and plain values (layout version 2)."""
        def block(b):
            return None if b is None else b.to_dict()

        tree = {
            "model_format_version": MODEL_FORMAT_VERSION,
            "programming": block(self.programming),
            "drift": block(self.drift_law),
            "read_noise": block(self.read_noise),
            "g_range": Quantity(np.asarray(self.g_range, dtype=np.float64), "S"),
            "range_policy": self.range_policy.value,
            "out_lo": Quantity(float(self.out_lo), "S"),
            "out_hi": Quantity(float(self.out_hi), "S"),
            "valid_times": Quantity(np.asarray(self.valid_times, dtype=np.float64), "s"),
            "name": self.name,
            "citation": self.citation,
            "extras": dict(self.extras),
        }
        if self.g_fit is not None:
            tree["g_fit"] = Quantity(np.asarray(self.g_fit, dtype=np.float64), "S")
        return tree

    to_dict = to_tree

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any], *, provenance=None) -> CompositeDevice:
        """Inverse of :meth:`to_tree`; reads layout versions 1 (xbarlab 0.1.0's composite
        models, which lack the version key) and 2. ``provenance``: the file's."""
        version = tree.get("model_format_version", 1)
        if not isinstance(version, int) or not 1 <= version <= MODEL_FORMAT_VERSION:
            raise DataFormatError(f"composite model layout version {version!r} is not one this "
                                  f"xbarlab reads (1 to {MODEL_FORMAT_VERSION}); upgrade xbarlab")
        try:
            gr = tree["g_range"].expect("S", "g_range")
            vt = tree["valid_times"].expect("s", "valid_times")
            gf = tree.get("g_fit")
            gf = None if gf is None else gf.expect("S", "g_fit")
            return cls(
                programming=programming_from_dict(tree["programming"]),
                drift_law=drift_from_dict(tree.get("drift")),
                read_noise=read_noise_from_dict(tree.get("read_noise")),
                g_range=(float(gr[0]), float(gr[1])),
                range_policy=tree.get("range_policy", "refuse"),
                g_fit=None if gf is None else (float(gf[0]), float(gf[1])),
                out_lo=float(tree["out_lo"].expect("S", "out_lo")),
                out_hi=float(tree["out_hi"].expect("S", "out_hi")),
                valid_times=(float(vt[0]), float(vt[1])),
                conditioning=tree.get("conditioning", Conditioning.TARGET.value),
                name=str(tree.get("name", "")), citation=str(tree.get("citation", "")),
                extras=dict(tree.get("extras") or {}), provenance=provenance,
            )
        except KeyError as exc:
            raise DataFormatError(f"composite device-model tree lacks {exc}") from None
        except (AttributeError, TypeError, IndexError) as exc:
            raise DataFormatError(f"composite device-model tree is malformed: {exc}") from None

    from_dict = from_tree

    def __eq__(self, other):
        if not isinstance(other, CompositeDevice):
            return NotImplemented
        return _tree_equal(self.to_tree(), other.to_tree()) and \
            self.conditioning == other.conditioning

    __hash__ = None

    def __repr__(self):
        def name(b):
            return None if b is None else type(b).__name__

        return (f"CompositeDevice(name={self.name!r}, conditioning={self.conditioning!r}, "
                f"programming={name(self.programming)}, drift={name(self.drift_law)}, "
                f"read_noise={name(self.read_noise)}, g_range={self.g_range}, "
                f"range_policy={self.range_policy.value!r})")


def _block_from_dict(d, types: Mapping[str | None, type], what: str):
    """The block of a model tree by its "type" (key None: the block written without one, and
    any unlisted type); None for no block."""
    if d is None:
        return None
    t = d.get("type")
    cls = types.get(t, types.get(None))
    if cls is None:
        raise DataFormatError(f"{what} type {t!r} unknown; expected one of {sorted(types)}")
    return cls.from_dict(d)


def programming_from_dict(d) -> Programming | None:
    """The programming block of a model tree (type "fitted", else parametric; None: none)."""
    return _block_from_dict(d, {"fitted": FittedProgramming, None: ProgrammingError},
                            "programming")


_DRIFT_TYPES = {"power_law": PowerLawDrift, "relaxation": Relaxation,
                "fitted_power_law": FittedPowerLaw, "relaxation_table": RelaxationTable}


def drift_from_dict(d) -> DriftLaw | None:
    """The drift block of a model tree, by its "type" (None: no drift)."""
    return _block_from_dict(d, _DRIFT_TYPES, "drift")


def read_noise_from_dict(d) -> Noise | None:
    """The read-noise block of a model tree (type "white", else 1/f; None: none)."""
    return _block_from_dict(d, {"white": WhiteReadNoise, None: ReadNoise}, "read-noise")


def _tree_equal(a, b) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_tree_equal(a[k], b[k]) for k in a)
    if isinstance(a, Quantity) and isinstance(b, Quantity):
        return a.units == b.units and np.array_equal(np.asarray(a.value), np.asarray(b.value),
                                                     equal_nan=True)
    return a == b


def warn_disjoint_ranges(programming_range, relaxation_range, *,
                         stacklevel: int = 3) -> str | None:
    """Warn when a programming model's and a relaxation model's conductance ranges do not
    overlap.

    Parameters
    ----------
    programming_range : (float, float)
        (g_lo, g_hi) the programming model's statistics hold over [S].
    relaxation_range : (float, float)
        (g_lo, g_hi) the relaxation model was fitted over [S] (its cells' first reads).
    stacklevel : int
        Passed to :func:`warnings.warn` (3: the caller of the function that calls this).

    Returns
    -------
    str or None
        The warning's message, or None when the closed ranges share a conductance.

    Warns
    -----
    CompositionWarning
        When the ranges are disjoint: every programmed conductance then lies outside the
        range the relaxation statistics were fitted over.
    """
    (plo, phi), (rlo, rhi) = (_pair(programming_range, "programming_range", "S"),
                              _pair(relaxation_range, "relaxation_range", "S"))
    if phi >= rlo and rhi >= plo:
        return None
    msg = (f"the programming model's conductance range {plo:.4g}-{phi:.4g} S and the "
           f"relaxation model's {rlo:.4g}-{rhi:.4g} S do not overlap: every programmed "
           "conductance lies outside the range the relaxation was fitted over, so the "
           "composed model relaxes it with the statistics of that range's edge")
    warnings.warn(msg, CompositionWarning, stacklevel=stacklevel)
    return msg


def compose(relaxation_model: CompositeDevice, programming_model: CompositeDevice, *,
            name: str = "") -> CompositeDevice:
    """A target-conditioned model: programming of one model, then relaxation of another.

    ``relaxation_model`` is conditioned on the first read (``conditioning == "initial
    read"``: g(t) | g_initial, with t counted from that read); ``programming_model``
    supplies g_initial | g_target through its programming block (e.g. a write-verify
    model fitted to HKU-like data). The result programs targets with the second and
    evolves the programmed value with the first's drift and read noise (the programming
    model's read noise when the first has none). Its ``g_range`` and range policy are the
    programming model's; its fitted range ``g_fit`` the union of both models' when both
    carry one, else the programming model's; its valid times the relaxation model's;
    its provenance and fit report the relaxation model's. Warns (:class:`CompositionWarning`,
    :func:`warn_disjoint_ranges`) when the two models' fitted ranges (``stat_range``) do not
    overlap.
    """
    for m, what in ((relaxation_model, "relaxation_model"), (programming_model,
                                                              "programming_model")):
        if not isinstance(m, CompositeDevice):
            raise ConfigError(f"{what} must be a CompositeDevice, got {type(m).__name__}")
    if relaxation_model.conditioning != Conditioning.INITIAL_READ.value:
        raise ConfigError("relaxation_model must be conditioned on the first read "
                          f"(conditioning 'initial read'), got {relaxation_model.conditioning!r}")
    if programming_model.conditioning != Conditioning.TARGET.value:
        raise ConfigError("programming_model must be conditioned on the target, got "
                          f"{programming_model.conditioning!r}")
    warn_disjoint_ranges(programming_model.stat_range, relaxation_model.stat_range)
    drift = relaxation_model.drift_law
    if isinstance(drift, Relaxation) and drift.condition_on is ConditionOn.INPUT:
        # the relaxation was fitted given the first read, which is now g_prog
        drift = replace(drift, condition_on=ConditionOn.PROGRAMMED)
    fr, fp = relaxation_model.g_fit, programming_model.g_fit
    g_fit = fp if fr is None or fp is None else (min(fr[0], fp[0]), max(fr[1], fp[1]))
    noise = relaxation_model.read_noise
    lo = max(programming_model.out_lo, relaxation_model.out_lo)
    hi = min(programming_model.out_hi, relaxation_model.out_hi)
    names = [n for n in (programming_model.name, relaxation_model.name) if n]
    return CompositeDevice(
        programming=programming_model.programming, drift_law=drift,
        read_noise=noise if noise is not None else programming_model.read_noise,
        g_range=programming_model.g_range, range_policy=programming_model.range_policy,
        g_fit=g_fit, out_lo=lo, out_hi=hi, valid_times=relaxation_model.valid_times,
        conditioning=Conditioning.TARGET.value, name=name or "+".join(names),
        citation="; ".join(c for c in (programming_model.citation, relaxation_model.citation)
                           if c),
        provenance=relaxation_model.provenance, report=relaxation_model.report)
