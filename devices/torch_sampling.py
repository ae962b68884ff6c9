"""Torch sampling of the parametric device blocks, on any torch device and dtype.

The torch counterpart of the fused Numba kernel (:mod:`xbarlab.devices.kernels`) for the
blocks of :mod:`xbarlab.devices.blocks` and the curves of :mod:`xbarlab.devices.curves`:
the same block objects, the same parameters and formulas, evaluated with torch operations
so that a model on a GPU samples its cells there. It is statistical, not bitwise: draws
come from the caller's :class:`torch.Generator` (``torch.randn``/``torch.rand``), not from
the kernel's counter-based hash, so the samples follow the same law as the Numba
sampler's but are not the same numbers.

Supported: :class:`~xbarlab.devices.base.IdealDevice`, and
:class:`~xbarlab.devices.composite.CompositeDevice` with a
:class:`~xbarlab.devices.blocks.ProgrammingError` (every :class:`~.blocks.Family`,
per-device gain, stuck-at faults, level sets, clipping), a
:class:`~xbarlab.devices.blocks.PowerLawDrift` or
:class:`~xbarlab.devices.blocks.Relaxation` and a
:class:`~xbarlab.devices.blocks.ReadNoise` (relative or absolute 1/f, short-term noise) --
every block the presets use. The fitted blocks (``FittedProgramming``,
``FittedPowerLaw``, ``RelaxationTable``, ``WhiteReadNoise``) raise ConfigError.

Trajectories: :func:`program_cells` draws, besides g_prog and the drift exponent, one
relaxation deviate and one 1/f deviate per cell and keeps them in the state; every
:func:`read_cells` call at a single time t uses them, as the Numba sampler's single-time
``read`` calls on one state share their first deviate: reads at t_1 and t_2 of one
programming are those of separate single-time calls (correlation 1 between the 1/f parts,
not sqrt(u_1 / u_2)). Short-term read noise is drawn anew by every read.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError
from .base import IdealDevice, check_times
from .blocks import (
    ConditionOn,
    ErrorDistribution,
    Family,
    NoiseScaling,
    PowerLawDrift,
    ProgrammingError,
    ReadNoise,
    Relaxation,
)
from .curves import LogLinear, Piecewise, Polynomial, PowerLaw, Table

__all__ = ["STATE_FIELDS", "check_supported", "curve_values", "programming_errors",
           "program_cells", "read_cells", "needs_read_generator"]

#: Per-cell state kept by :func:`program_cells`: snapped input [S], programmed conductance
#: [S], drift exponent nu [1], relaxation deviate [1], 1/f deviate [1].
STATE_FIELDS = ("g_snapped", "g_prog", "nu", "z_relax", "z_flicker")


# ---------------------------------------------------------------------------- checks


def check_supported(device) -> None:
    """ConfigError unless ``device`` has only blocks this module samples.

    Parameters
    ----------
    device
        A device model (:class:`~xbarlab.devices.base.IdealDevice` or
        :class:`~xbarlab.devices.composite.CompositeDevice`).

    Raises
    ------
    ConfigError
        Another model class, or a block that has no torch sampler yet (named in the message).
    """
    if isinstance(device, IdealDevice):
        return
    from .composite import CompositeDevice

    if not isinstance(device, CompositeDevice):
        raise ConfigError(f"torch sampling supports IdealDevice and CompositeDevice, got "
                          f"{type(device).__name__}")
    ok = ((device.programming, (ProgrammingError,), "programming"),
          (device.drift_law, (PowerLawDrift, Relaxation), "drift_law"),
          (device.read_noise, (ReadNoise,), "read_noise"))
    for block, kinds, what in ok:
        if block is not None and not isinstance(block, kinds):
            raise ConfigError(
                f"{what} block {type(block).__name__} has no torch sampler yet; supported: "
                "ProgrammingError, PowerLawDrift, Relaxation, ReadNoise (not yet: "
                "FittedProgramming, FittedPowerLaw, RelaxationTable, WhiteReadNoise)")
    if device.conditioning != "target":
        raise ConfigError(f"torch sampling needs a target-conditioned model, got conditioning "
                          f"{device.conditioning!r}")


def needs_read_generator(device) -> bool:
    """True when reads of ``device`` draw fresh noise (short-term read noise)."""
    r = getattr(device, "read_noise", None)
    return isinstance(r, ReadNoise) and r.short_term is not None


# ---------------------------------------------------------------------------- curves


def _leaf(c, g: Tensor) -> Tensor:
    """One leaf curve at ``g`` [S] (the formulas of ``kernels._leaf``)."""
    if isinstance(c, Polynomial):
        x = g * (1.0 / c.x_scale)
        y = torch.zeros_like(g)
        for coef in reversed(c.coeffs):
            y = y * x + coef
    elif isinstance(c, LogLinear):
        lx = torch.clamp(torch.log(g) - math.log(c.x_scale), min=math.log(c.x_floor))
        y = (c.a / math.log(c.log_base)) * lx + c.b
    elif isinstance(c, PowerLaw):
        lx = torch.clamp(torch.log(g) - math.log(c.x_scale), min=math.log(c.x_floor))
        y = c.a * torch.exp(c.p * lx) + c.b
    elif isinstance(c, Table):
        gg = torch.tensor(c.g, dtype=g.dtype, device=g.device)
        yy = torch.tensor(c.y, dtype=g.dtype, device=g.device)
        if gg.numel() == 1:
            return torch.full_like(g, float(yy[0]))
        b = torch.searchsorted(gg, g.contiguous(), right=True).clamp(1, gg.numel() - 1)
        a = b - 1
        w = ((g - gg[a]) / (gg[b] - gg[a])).clamp(0.0, 1.0)
        return yy[a] + w * (yy[b] - yy[a])
    else:
        raise ConfigError(f"curve {type(c).__name__} has no torch evaluation")
    return torch.clamp(y, min=c.lo, max=c.hi) if (c.lo > -math.inf or c.hi < math.inf) else y


def curve_values(curve, g: Tensor) -> Tensor:
    """``curve`` (any :mod:`~xbarlab.devices.curves` curve, or None: zero) at conductances
    ``g`` [S], on ``g``'s device and dtype, in the curve's units.

    Same formulas as the Numba curve program: polynomials in g / x_scale (Horner),
    logarithmic and power-law leaves with x floored at x_floor, tables linear with edge
    values held, piecewise curves choosing piece k for breaks[k-1] <= g < breaks[k].
    """
    if curve is None:
        return torch.zeros_like(g)
    if not isinstance(curve, Piecewise):
        return _leaf(curve, g)
    out = _leaf(curve.pieces[0], g)
    for brk, piece in zip(curve.breaks, curve.pieces[1:], strict=True):
        out = torch.where(g >= brk, _leaf(piece, g), out)
    return out


# ---------------------------------------------------------------------------- draws


def _uniform(n, like: Tensor, gen) -> Tensor:
    """Uniforms on (0, 1) (zero replaced by the smallest normal number of the dtype)."""
    u = torch.rand(n, generator=gen, dtype=like.dtype, device=like.device)
    return u.clamp_min(torch.finfo(like.dtype).tiny)


def _normal(n, like: Tensor, gen) -> Tensor:
    return torch.randn(n, generator=gen, dtype=like.dtype, device=like.device)


def _student_t(n, dof: float, like: Tensor, gen) -> Tensor:
    """Student t with ``dof`` degrees of freedom (Bailey's polar method, as the kernel)."""
    out = torch.empty(n, dtype=like.dtype, device=like.device)
    todo = torch.arange(n, device=like.device)
    while todo.numel():
        a = 2.0 * _uniform(todo.numel(), like, gen) - 1.0
        b = 2.0 * _uniform(todo.numel(), like, gen) - 1.0
        w = a * a + b * b
        ok = (w <= 1.0) & (w > 0.0)
        wa = w[ok]
        out[todo[ok]] = a[ok] * torch.sqrt(dof * (wa ** (-2.0 / dof) - 1.0) / wa)
        todo = todo[~ok]
    return out


def _log_gamma(shape: Tensor, gen) -> Tensor:
    """ln X, X ~ Gamma(shape, 1) per element (Marsaglia & Tsang; shape < 1 boosted and kept
    in logs, as ``kernels._log_gamma``)."""
    small = shape < 1.0
    boost = torch.where(small, torch.log(_uniform(shape.numel(), shape, gen)) / shape, 0.0)
    sh = torch.where(small, shape + 1.0, shape)
    d = sh - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.empty_like(shape)
    todo = torch.arange(shape.numel(), device=shape.device)
    while todo.numel():
        x = _normal(todo.numel(), shape, gen)
        u = _uniform(todo.numel(), shape, gen)
        dd, cc = d[todo], c[todo]
        v = 1.0 + cc * x
        lv = 3.0 * torch.log(v.clamp_min(torch.finfo(shape.dtype).tiny))
        ok = (v > 0.0) & (torch.log(u) < 0.5 * x * x + dd - dd * v * v * v + dd * lv)
        out[todo[ok]] = torch.log(dd[ok]) + lv[ok]
        todo = todo[~ok]
    return out + boost


def programming_errors(distribution: ErrorDistribution, bias: Tensor, spread: Tensor,
                       generator: torch.Generator) -> Tensor:
    """Programming errors g_prog - g [S] of cells with bias ``bias`` and spread ``spread`` [S]
    (1-D tensors of one length), drawn from ``generator`` in torch.

    The torch counterpart of :meth:`~xbarlab.devices.blocks.ErrorDistribution.errors`: b +
    s eps with eps of the distribution's family (normal; uniform plus normal; Student t
    scaled to unit variance; two-component mixture standardised), or the bounded family's
    w tanh((ln X - ln Y) / 2) with X, Y gamma draws of the beta shapes of
    :func:`~xbarlab.devices.blocks.beta_shape`.
    """
    n = bias.numel()
    fam = distribution.family
    _, (pa, pb, pc, pd) = distribution.kernel_params()
    if fam is Family.BOUNDED:
        w = distribution.window
        m = ((bias + w) / (2.0 * w)).clamp(1e-3, 1.0 - 1e-3)
        v = torch.minimum(((spread / (2.0 * w)) ** 2).clamp_min(1e-12), 0.999 * m * (1.0 - m))
        k = m * (1.0 - m) / v - 1.0
        a = (m * k).clamp_min(0.05)
        c = ((1.0 - m) * k).clamp_min(0.05)
        lx = _log_gamma(a, generator)
        ly = _log_gamma(c, generator)
        return w * torch.tanh(0.5 * (lx - ly))
    if fam is Family.NORMAL:
        eps = _normal(n, bias, generator)
    elif fam is Family.UNIFORM_NORMAL:
        eps = pa * (2.0 * _uniform(n, bias, generator) - 1.0) + pb * _normal(n, bias, generator)
    elif fam is Family.STUDENT_T:
        eps = _student_t(n, pa, bias, generator) * pb
    else:  # mixture: weight pa, mean pb, std pc of component 2, standardised by pd
        u = _uniform(n, bias, generator)
        z = _normal(n, bias, generator)
        raw = torch.where(u < pa, pb + pc * z, z)
        eps = (raw - pa * pb) * pd
    return bias + spread * eps


# ---------------------------------------------------------------------------- program / read


def _stat_clip(device, g: Tensor) -> Tensor:
    if getattr(device, "range_policy", "refuse") == "edge":
        lo, hi = device.stat_range
        return g.clamp(lo, hi)
    return g


def _snap(levels: tuple[float, ...], g: Tensor) -> Tensor:
    if not levels:
        return g
    lv = torch.as_tensor(levels, dtype=g.dtype, device=g.device)
    hi = torch.searchsorted(lv, g.contiguous()).clamp(max=lv.numel() - 1)
    lo = (hi - 1).clamp(min=0)
    # ties go to the lower level, as in the kernel's strict comparison
    return torch.where((lv[hi] - g).abs() < (g - lv[lo]).abs(), lv[hi], lv[lo])


def _check_targets(device, g: Tensor) -> None:
    lo, hi = device.g_range
    if g.numel() == 0:
        return
    gmin, gmax = float(g.min()), float(g.max())
    if not (math.isfinite(gmin) and math.isfinite(gmax)) or gmin < 0:
        raise ConfigError(f"target conductances must be finite and >= 0 S, got [{gmin}, {gmax}]")
    refuse = isinstance(device, IdealDevice) or device.range_policy == "refuse"
    slack = 4 * torch.finfo(g.dtype).eps  # the range's ends rounded to g's dtype are in range
    if refuse and (gmin < lo * (1 - slack) or gmax > hi * (1 + slack)):
        bad = gmin if gmin < lo else gmax
        raise ConfigError(f"{getattr(device, 'name', '') or 'model'}: target conductance "
                          f"{bad:.6g} S outside the valid range [{lo:.6g}, {hi:.6g}] S")


def program_cells(device, g: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
    """Program target conductances ``g`` [S] (a floating tensor of any shape) in torch.

    Parameters
    ----------
    device
        A supported device model (see :func:`check_supported`).
    g : torch.Tensor
        Targets [S]; the state lives on its device and dtype.
    generator : torch.Generator
        Source of every draw (on ``g``'s device).

    Returns
    -------
    dict of str to torch.Tensor
        :data:`STATE_FIELDS`, each shaped like ``g``.
    """
    check_supported(device)
    _check_targets(device, g)
    flat = g.reshape(-1)
    n = flat.numel()
    zeros = torch.zeros_like(flat)
    state = {"g_snapped": flat, "g_prog": flat, "nu": zeros, "z_relax": zeros,
             "z_flicker": zeros}
    if isinstance(device, IdealDevice):
        return {k: v.reshape(g.shape).clone() for k, v in state.items()}
    p = device.programming or ProgrammingError(identity=True)
    gs = _snap(p.levels, flat)
    gc = _stat_clip(device, gs)
    gp = gs
    if not p.identity:
        gain = 1.0 + p.d2d * _normal(n, flat, generator) if p.d2d > 0 else 1.0
        b = curve_values(p.bias, gc)
        s = curve_values(p.spread, gc)
        gp = (gs * gain + programming_errors(p.distribution, b, s, generator)).clamp(
            p.prog_lo, p.prog_hi)
        if p.p_stuck_low > 0 or p.p_stuck_high > 0:
            us = _uniform(n, flat, generator)
            gp = torch.where(us < p.p_stuck_low, p.g_stuck_low, gp)
            gp = torch.where((us >= p.p_stuck_low) & (us < p.p_stuck_low + p.p_stuck_high),
                             p.g_stuck_high, gp)
    state["g_snapped"], state["g_prog"] = gs, gp
    d = device.drift_law
    if isinstance(d, PowerLawDrift):
        nu = curve_values(d.nu_mean, gc) + curve_values(d.nu_std, gc) * _normal(n, flat,
                                                                                 generator)
        state["nu"] = nu.abs() if d.fold else nu
    if isinstance(d, Relaxation):
        state["z_relax"] = _normal(n, flat, generator)
    if device.read_noise is not None and device.read_noise.amplitude is not None:
        state["z_flicker"] = _normal(n, flat, generator)
    return {k: v.reshape(g.shape).clone() for k, v in state.items()}


def _check_time(device, t) -> float:
    times, scalar = check_times(t)
    if not scalar:
        raise ConfigError(f"t must be one time in s, got shape {times.shape}")
    t = float(times[0])
    tlo, thi = getattr(device, "valid_times", (0.0, math.inf))
    if not tlo <= t <= thi:
        raise ConfigError(f"{getattr(device, 'name', '') or 'model'}: t = {t:.6g} s outside "
                          f"the valid time range [{tlo:.6g}, {thi:.6g}] s")
    return t


def read_cells(device, state: dict[str, Tensor], t: float,
               generator: torch.Generator | None = None) -> Tensor:
    """Conductances [S] of programmed cells read at time ``t`` [s] after programming.

    Drift (power law or relaxation, from the state's exponent and deviate), then 1/f read
    noise of marginal amplitude Q sqrt(u(t)) (relative: times |g(t)|), then short-term noise
    drawn from ``generator`` (needed only when the model has it, see
    :func:`needs_read_generator`), then the model's clamp [out_lo, out_hi].
    """
    t = _check_time(device, t)
    gp = state["g_prog"]
    if isinstance(device, IdealDevice):
        return gp.clone()
    gc_p = _stat_clip(device, gp)
    d, r = device.drift_law, device.read_noise
    if isinstance(d, PowerLawDrift):
        gd = gp * torch.exp(-state["nu"] * math.log((t + d.t0) / d.t0))
    elif isinstance(d, Relaxation):
        gr = gc_p if d.condition_on is ConditionOn.PROGRAMMED else _stat_clip(
            device, state["g_snapped"])
        m = 0.0
        if d.mean is not None:
            a, b, w = d.mean.weights(t)
            m = (1 - w) * curve_values(d.mean.curves[a], gr) + w * curve_values(
                d.mean.curves[b], gr)
        a, b, w = d.spread.weights(t)
        s = ((1 - w) * curve_values(d.spread.curves[a], gr)
             + w * curve_values(d.spread.curves[b], gr)).clamp_min(0.0)
        gd = gp + m + s * state["z_relax"]
    else:
        gd = gp
    val = gd
    if r is not None and r.amplitude is not None:
        amp = curve_values(r.amplitude, gc_p) * math.sqrt(float(r.u(t)))
        if r.scaling is NoiseScaling.RELATIVE:
            amp = amp * gd.abs()
        val = val + amp * state["z_flicker"]
    if r is not None and r.short_term is not None:
        if not isinstance(generator, torch.Generator):
            raise ConfigError("this device model has short-term read noise: reads need a "
                              f"torch.Generator, got {type(generator).__name__}")
        val = val + curve_values(r.short_term, gc_p) * torch.randn(
            gp.shape, generator=generator, dtype=gp.dtype, device=gp.device)
    return val.clamp(device.out_lo, device.out_hi)
