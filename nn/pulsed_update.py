"""Pulsed updates of whole arrays in torch: the outer-product update as the hardware does it.

A layer's weights ``w`` (n_out, n_in) [1] live in cells of a
:class:`~xbarlab.devices.pulsed.PulsedDevice` seen through a
:class:`~xbarlab.devices.pulsed.WeightDomain` (w = 0 at the symmetric point). The update
asked for is the SGD step Delta w = -lr sum_b delta_b x_b^T of a batch of inputs x (B, n_in)
and output errors delta = dL/dy (B, n_out). :class:`UpdateMode` chooses how it becomes
pulses:

- ``STOCHASTIC`` (aihwkit's default pulsed update): for each sample, every input j fires a
  train of ``bit_length`` (BL) bits, each on with probability p_j = min(A |x_j|, 1), every
  output i one with q_i = min(B |delta_i|, 1); cell (i, j) receives one pulse per
  coincidence, in direction -sign(delta_i x_j). The coincidence counts of all samples are
  counted exactly, as matrix products of the bit trains over the B * BL bit slots. With
  A B = lr / (BL dw_min), E[count] dw_min = lr |x_j delta_i|, so E[Delta w] = -lr x delta at
  w = 0 for the nominal cell (while no probability is clipped at 1). Update management
  (``update_management=True``) picks, per sample, A = sqrt(k m_d / m_x), B = sqrt(k m_x /
  m_d) (k = lr / (BL dw_min), m_x = max_j |x_j|, m_d = max_i |delta_i|), so both trains
  reach the same largest probability; without it A = B = sqrt(k).
  On the CPU the whole stochastic update is one Numba kernel (:class:`UpdateEngine`; the
  same distribution from a different random stream than torch's operations).
- ``PULSE_COUNT``: a deterministic count per cell, round(lr |sum_b delta_b x_b^T| / dw_min),
  of the batch's summed update, in its sign's direction.
- ``MEAN_FIELD``: the exact expected update of the stochastic trains in the small-step
  limit, Delta w = -lr (delta^T x) F(w) - lr (|delta|^T |x|) G(w) (Wu et al. 2024; F, G
  as in :class:`~xbarlab.devices.pulsed.WeightDomain`), with the cells' gains.

Applying n_up up and n_down down pulses (:meth:`PulsedArray.apply_counts`): every pulse of one
update sees the state before the update, so Delta w = g_up n_up mu_up(w) - g_down n_down
mu_down(w) + sqrt(n_up v_up(w) + n_down v_down(w)) z, z ~ N(0, 1), then the clip to the
weight range (mu_d: the mean weight step of a pulse, v_d its variance for the cell, gains
g_d from the device-to-device spread). This is exact for a constant step and for one pulse
per cell, and first order in the step otherwise (soft bounds: an error O(n^2 dw_min^2 /
tau) per update). mu and v come from the device's closed forms tabulated once on
:data:`GRID` points across the range and interpolated linearly (exact for constant and
soft-bounds steps, the linear rules).
"""

from __future__ import annotations

import enum
import math

import torch
from torch import Tensor

from ..checks import check_matrix_shape, check_number
from ..devices.pulsed import ConstantStep, SoftBounds, StepTable, WeightDomain
from ..enums import coerce_enum
from ..errors import ConfigError

__all__ = ["UpdateMode", "UpdateEngine", "PulsedArray", "GRID", "pulse_probabilities",
           "coincidence_counts"]

#: Points of the table of mean step and variance across the weight range.
GRID = 4097


class UpdateMode(enum.StrEnum):
    """How an outer-product update becomes pulses (see the module docstring)."""

    STOCHASTIC = "stochastic"
    PULSE_COUNT = "pulse_count"
    MEAN_FIELD = "mean_field"


class UpdateEngine(enum.StrEnum):
    """Which code carries out a ``STOCHASTIC`` update (both draw the same distribution of
    bits, counts and steps, from different random streams)."""

    #: the Numba kernel where it applies (weights on the CPU, C-contiguous float32 or float64,
    #: BL <= 64, numba importable), torch otherwise
    AUTO = "auto"
    #: torch's operations (any device): bit trains from the generator's uniforms, counts as
    #: bit-slot matrix products or enumerated coincidences
    TORCH = "torch"
    #: the Numba kernel (:mod:`xbarlab.devices.pulsed_kernels`): every train one 64-bit word
    #: from a counter-based generator seeded by one draw of the torch generator, counts by
    #: popcount, only pulsed cells moved
    NUMBA = "numba"


def _check_generator(generator, device) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if torch.device(generator.device).type != torch.device(device).type:
        raise ConfigError(f"generator is on {generator.device}, the weights on {device}: pass "
                          f"torch.Generator(device={str(device)!r})")
    return generator


def pulse_probabilities(x: Tensor, d: Tensor, *, lr: float, dw_min: float, bit_length: int,
                        update_management: bool) -> tuple[Tensor, Tensor]:
    """Bit probabilities of the input and error trains, (B, n_in) and (B, n_out) [1].

    Parameters
    ----------
    x, d : Tensor
        Inputs (B, n_in) and output errors dL/dy (B, n_out).
    lr : float
        Learning rate [1].
    dw_min : float
        Weight step of a pulse at the symmetric point [1].
    bit_length : int
        BL, bits per train.
    update_management : bool
        Balance the two trains per sample (see the module docstring).
    """
    k = lr / (bit_length * dw_min)
    ax, ad = x.abs(), d.abs()
    if update_management:
        mx = ax.amax(dim=1, keepdim=True)
        md = ad.amax(dim=1, keepdim=True)
        ok = (mx > 0) & (md > 0)
        ratio = torch.where(ok, md / torch.where(ok, mx, 1.0), 1.0)
        a = torch.sqrt(k * ratio)
        b = torch.sqrt(k / ratio)
    else:
        a = b = math.sqrt(k)
    return (ax * a).clamp_(max=1.0), (ad * b).clamp_(max=1.0)


def coincidence_counts(x: Tensor, d: Tensor, px: Tensor, pd: Tensor, bit_length: int,
                       generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Pulses per cell from stochastic bit trains, summed over the batch: (n_up, n_down),
    each (n_out, n_in) in the dtype of ``x``, counted exactly.

    Every sample's BL bits are drawn (uniforms from ``generator`` against ``px``, ``pd``);
    a coincidence of input j and output i moves the cell in direction -sign(d_i x_j). The
    counts are matrix products of the bit trains over the bit slots, in bfloat16 over
    chunks of at most 256 slots (whole samples), where every partial count is an integer
    <= 256 and so exact, accumulated in the dtype of ``x``; where the coincidences are few
    (fewer than 1/4,096 of the products' multiply-adds) they are enumerated slot by slot
    instead and binned per cell (the same counts from the same bits).
    """
    on_x, on_d = _bits(px, pd, bit_length, generator)
    B, n_in, n_out = x.shape[0], px.shape[1], pd.shape[1]
    S = B * bit_length
    if _few(on_x, on_d, n_in, n_out):  # few coincidences: enumerate them
        lin, up = _pairs(on_x.reshape(S, n_in), on_d.reshape(S, n_out), torch.sign(x),
                         torch.sign(d), bit_length)
        n = n_out * n_in
        return (torch.bincount(lin[up], minlength=n).to(x.dtype).reshape(n_out, n_in),
                torch.bincount(lin[~up], minlength=n).to(x.dtype).reshape(n_out, n_in))
    return _dense_counts(x, d, on_x, on_d, bit_length)


def _dense_counts(x: Tensor, d: Tensor, on_x: Tensor, on_d: Tensor,
                  bit_length: int) -> tuple[Tensor, Tensor]:
    """(n_up, n_down) of the bits as matrix products over the bit slots (exact, see
    :func:`coincidence_counts`)."""
    B, n_in, n_out = x.shape[0], on_x.shape[-1], on_d.shape[-1]
    bf = torch.bfloat16
    # bool -> uint8 (a view) -> bfloat16: several times faster than bool -> bfloat16
    xa, da = on_x.view(torch.uint8).to(bf), on_d.view(torch.uint8).to(bf)
    xs = xa * torch.sign(x).to(bf)[:, None, :]
    ds = da * torch.sign(d).to(bf)[:, None, :]
    per = max(1, 256 // bit_length)
    total = torch.zeros((n_out, n_in), dtype=x.dtype, device=x.device)
    net = torch.zeros_like(total)  # down minus up
    for b0 in range(0, B, per):
        b1 = min(B, b0 + per)
        k = (b1 - b0) * bit_length
        if k > 256:  # a bit length above 256: float32 products (exact below 2^24)
            a_t, a_s = da[b0:b1].reshape(k, -1).float(), ds[b0:b1].reshape(k, -1).float()
            c_t, c_s = xa[b0:b1].reshape(k, -1).float(), xs[b0:b1].reshape(k, -1).float()
        else:
            a_t, a_s = da[b0:b1].reshape(k, -1), ds[b0:b1].reshape(k, -1)
            c_t, c_s = xa[b0:b1].reshape(k, -1), xs[b0:b1].reshape(k, -1)
        total += a_t.T @ c_t
        net += a_s.T @ c_s
    n_up = (total - net).mul_(0.5)
    return n_up, total.sub_(n_up)


def _capturing(t: Tensor) -> bool:
    """True while a CUDA graph is being captured on the current stream of ``t``'s device:
    the update then takes the paths whose work does not depend on the data (dense counts,
    every cell moved) and keeps its counts on the device."""
    return t.is_cuda and torch.cuda.is_current_stream_capturing()


def _bits(px: Tensor, pd: Tensor, bit_length: int, generator) -> tuple[Tensor, Tensor]:
    """The trains' bits, (B, BL, n_in) and (B, BL, n_out) booleans: one uniform per bit."""
    B, n_in = px.shape
    u = torch.rand((B, bit_length, n_in + pd.shape[1]), generator=generator, device=px.device,
                   dtype=px.dtype)
    return u[..., :n_in] < px[:, None, :], u[..., n_in:] < pd[:, None, :]


def _few(on_x: Tensor, on_d: Tensor, n_in: int, n_out: int) -> bool:
    """Fewer coincidences than 1/4,096 of the dense products' multiply-adds."""
    pairs = int((on_x.sum(-1, dtype=torch.int64) * on_d.sum(-1, dtype=torch.int64)).sum())
    return pairs * 4096 < on_x.shape[0] * on_x.shape[1] * n_in * n_out


def _pairs(on_x: Tensor, on_d: Tensor, sx: Tensor, sd: Tensor,
           bit_length: int) -> tuple[Tensor, Tensor]:
    """Every coincidence of bit slots (S, n_in) and (S, n_out) -- each active input of a slot
    with each active output of the same slot -- as (flat cell index i n_in + j, direction
    up?)."""
    n_in = on_x.shape[1]
    kx, jx = on_x.nonzero(as_tuple=True)
    kd, idd = on_d.nonzero(as_tuple=True)
    cd = torch.bincount(kd, minlength=on_x.shape[0])
    start = torch.cumsum(cd, 0) - cd
    rep = cd[kx]
    jr, kr = jx.repeat_interleave(rep), kx.repeat_interleave(rep)
    first = torch.cumsum(rep, 0) - rep
    pos = torch.arange(jr.numel(), device=on_x.device) - first.repeat_interleave(rep)
    ir = idd[start[kr] + pos]
    b = kr // bit_length
    return ir * n_in + jr, (sx[b, jr] * sd[b, ir]) < 0  # direction -sign(d x) = +1


class PulsedArray:
    """The cells of one weight array: their device, per-cell gains and step tables.

    Parameters
    ----------
    domain : WeightDomain
        Device and weight scale of the cells.
    shape : tuple of int
        (n_out, n_in) of the array.
    generator : torch.Generator
        Draws the per-cell gains (device-to-device spread), on ``device``.
    device, dtype
        Where and in which precision the tables and gains live.
    """

    def __init__(self, domain: WeightDomain, shape, *, generator: torch.Generator,
                 device=None, dtype=torch.float32):
        import numpy as np

        if not isinstance(domain, WeightDomain):
            raise ConfigError(f"domain must be a WeightDomain, got {type(domain).__name__}")
        device = torch.device("cpu") if device is None else torch.device(device)
        _check_generator(generator, device)
        self.domain = domain
        self.shape = check_matrix_shape(shape)
        self.w_min, self.w_max = float(domain.w_min), float(domain.w_max)
        self.dw_min = float(domain.dw_min)
        dev = domain.device
        w = np.linspace(self.w_min, self.w_max, GRID)
        g = domain.to_conductance(w)
        kw = {"device": device, "dtype": dtype}
        self._mu = [torch.as_tensor(dev.mean_magnitude(g, s) / domain.scale, **kw)
                    for s in (1, -1)]
        # linear rules (constant, soft bounds): mu = c0 + c1 w, evaluated without a table
        self._lin = None
        if isinstance(dev.rule, (ConstantStep, SoftBounds)):
            span = self.w_max - self.w_min
            self._lin = [(float(m[0]) - self.w_min * (float(m[-1]) - float(m[0])) / span,
                          (float(m[-1]) - float(m[0])) / span) for m in self._mu]
        # a table's own spread of the step (the parametric rules have none)
        self._var = None
        if isinstance(dev.rule, StepTable):
            self._var = [torch.as_tensor(dev.rule.variance(g, s) / domain.scale ** 2, **kw)
                         for s in (1, -1)]
        self._c2c2 = dev.c2c ** 2
        self._wn2 = (dev.write_noise / domain.scale) ** 2
        self._noisy = bool(self._wn2 > 0 or self._c2c2 > 0 or self._var is not None)
        self._inv_h = (GRID - 1) / (self.w_max - self.w_min)
        if dev.d2d > 0 or dev.d2d_asymmetry > 0:
            z = torch.randn((2, *self.shape), generator=generator, **kw)
            base = 1.0 + dev.d2d * z[0]
            self.gain_up = (base * (1.0 + dev.d2d_asymmetry * z[1])).clamp_(min=0.0)
            self.gain_down = (base * (1.0 - dev.d2d_asymmetry * z[1])).clamp_(min=0.0)
        else:
            self.gain_up = self.gain_down = None
        self._pulses = 0.0  # pulses counted on the host
        self._pulses_dev = None  # pulses counted on the device (CUDA graph replays)
        self._finite = None  # False once a captured update met a non-finite x or d
        self._updater = None  # the Numba kernel's, built at the first update it does

    @property
    def pulses(self) -> float:
        """Pulses applied so far (up + down, all cells) [1]; settable (the count restarts
        from the value given)."""
        if self._pulses_dev is None:
            return self._pulses
        return self._pulses + float(self._pulses_dev)

    @pulses.setter
    def pulses(self, value: float) -> None:
        self._pulses = check_number(value, what="pulses", lo=0.0)
        if self._pulses_dev is not None:
            self._pulses_dev.zero_()

    def _count(self, n: Tensor) -> None:
        """Add the pulses ``n`` (a tensor) to the count, on the device while a CUDA graph
        is being captured (no host synchronisation there)."""
        if _capturing(n):
            self._device_state().add_(n.sum(dtype=torch.float64))
        else:
            self._pulses += float(n.sum())

    def prepare_capture(self, device) -> None:
        """Allocate the device-side pulse count and finiteness flag that updates captured
        in a CUDA graph keep (call before the capture: a tensor made inside it would be
        reset by every replay)."""
        if self._pulses_dev is None:
            self._pulses_dev = torch.zeros((), dtype=torch.float64, device=device)
            self._finite = torch.ones((), dtype=torch.bool, device=device)

    def _device_state(self) -> Tensor:
        if self._pulses_dev is None:
            raise ConfigError("prepare_capture() must precede the capture of an update in a "
                              "CUDA graph")
        return self._pulses_dev

    def finite_inputs(self) -> bool:
        """False if an update replayed from a CUDA graph met a non-finite input or error
        (an eager update raises at once instead)."""
        return True if self._finite is None else bool(self._finite)

    def _interp(self, tables, w: Tensor):
        # the grid position in [0, GRID - 1]; the cell index at most GRID - 2 (in float32
        # GRID - 1 - 1e-6 rounds to GRID - 1, so the index itself is clamped): a weight at
        # the upper bound takes the last cell with f = 1
        t = (w - self.w_min).mul_(self._inv_h).clamp_(0.0, GRID - 1)
        i = t.long().clamp_(max=GRID - 2)
        f = t.sub_(i)
        out = []
        for tab in tables:
            a, b = tab[i], tab[i + 1]
            out.append(a + f * (b - a))
        return out

    def mean_steps(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """(mu_up, mu_down): mean weight-step magnitudes of a pulse at ``w``, nominal cell [1]."""
        if self._lin is not None:
            return tuple(torch.clamp_min(w * c1 + c0, 0.0) for c0, c1 in self._lin)
        return tuple(self._interp(self._mu, w))

    def clip(self, w: Tensor) -> Tensor:
        """``w`` clipped in place to the weight range of the device [1]."""
        return w.clamp_(self.w_min, self.w_max)

    def apply_counts(self, w: Tensor, n_up: Tensor, n_down: Tensor,
                     generator: torch.Generator | None, *, cols: slice | None = None) -> Tensor:
        """Apply n_up up and n_down down pulses per cell to ``w`` in place (module
        docstring); ``generator`` draws the cycle-to-cycle, table and write noise (None:
        the noise-free mean). Per pulse of a cell with gain g_d: mean g_d mu_d(w), variance
        g_d^2 (v_table + c2c^2 mu_d^2) + sigma_w^2 (all in weight units). ``cols``: the
        counts are for these columns of ``w`` only (n_up, n_down of shape (n_out, columns)).
        """
        gain_up, gain_down = self.gain_up, self.gain_down
        if cols is not None:
            w = w[:, cols]
            if gain_up is not None:
                gain_up, gain_down = gain_up[:, cols], gain_down[:, cols]
        if w.is_contiguous() and not _capturing(w):
            total = (n_up + n_down).view(-1)
            # few cells pulsed: update only those (counted first: cheaper than listing)
            if int(torch.count_nonzero(total)) * 4 < w.numel():
                hit = total.nonzero().squeeze(1)
                flat = w.view(-1)
                gains = None if gain_up is None else (gain_up.reshape(-1)[hit],
                                                      gain_down.reshape(-1)[hit])
                flat[hit] = self._moved(flat[hit], n_up.reshape(-1)[hit],
                                        n_down.reshape(-1)[hit], gains, generator)
                return w
        gains = None if gain_up is None else (gain_up, gain_down)
        return self._moved(w, n_up, n_down, gains, generator)

    def _moved(self, w: Tensor, n_up: Tensor, n_down: Tensor, gains, generator) -> Tensor:
        """``w`` after the pulses, in place (the same equation for any set of cells)."""
        gain_up, gain_down = (None, None) if gains is None else gains
        mu_up, mu_down = self.mean_steps(w)
        if gain_up is not None:
            mu_up, mu_down = mu_up * gain_up, mu_down * gain_down
        up, down = n_up * mu_up, n_down * mu_down
        if self._noisy and generator is not None:
            var = (up * mu_up + down * mu_down).mul_(self._c2c2)
            if self._var is not None:
                v_up, v_down = self._interp(self._var, w)
                if gain_up is not None:
                    v_up, v_down = v_up * gain_up ** 2, v_down * gain_down ** 2
                var += n_up * v_up + n_down * v_down
            if self._wn2 > 0:
                var += (n_up + n_down) * self._wn2
            noise = torch.randn(w.shape, generator=generator, device=w.device, dtype=w.dtype)
            w.addcmul_(var.sqrt_(), noise)
        self._count(n_up + n_down)
        return self.clip(w.add_(up).sub_(down))

    def _kernel(self, w: Tensor, bit_length, engine: UpdateEngine):
        """The Numba updater of ``w`` (built once per dtype), or None where torch must do
        the update (AUTO only; NUMBA raises instead)."""
        why = None
        if w.device.type != "cpu" or not w.is_contiguous() or w.dtype not in (
                torch.float32, torch.float64):
            why = "weights on the CPU, C-contiguous, float32 or float64"
        elif isinstance(bit_length, bool) or not isinstance(bit_length, int) or not (
                1 <= bit_length <= 64):
            why = "a bit length in [1, 64]"
        if why is None and (self._updater is None
                            or self._updater.dtype != self._np_dtype(w)):
            try:
                from ..devices.pulsed_kernels import PulseUpdater
            except ImportError:  # numba absent: torch's operations
                why = "numba"
            else:
                self._updater = PulseUpdater(self.shape, self._np_dtype(w), **self._constants())
        if why is not None:
            if engine is UpdateEngine.NUMBA:
                raise ConfigError(f"engine='numba' needs {why}")
            return None
        return self._updater

    @staticmethod
    def _np_dtype(w: Tensor):
        import numpy as np

        return np.float32 if w.dtype == torch.float32 else np.float64

    def _constants(self) -> dict:
        """The updater's constants: the tables (float64), gains, linear rule, noise."""
        import numpy as np

        rows = [t.double().cpu().numpy() for t in self._mu]
        if self._var is not None:
            rows += [t.double().cpu().numpy() for t in self._var]
        lin = None if self._lin is None else (*self._lin[0], *self._lin[1])
        gains = None if self.gain_up is None else (self.gain_up.cpu().numpy(),
                                                   self.gain_down.cpu().numpy())
        return {"dw_min": self.dw_min, "w_range": (self.w_min, self.w_max),
                "tables": np.stack(rows), "linear": lin, "variances": self._var is not None,
                "gains": gains, "c2c": math.sqrt(self._c2c2),
                "write_noise": math.sqrt(self._wn2)}

    def mean_field(self, w: Tensor, x: Tensor, d: Tensor, lr: float) -> Tensor:
        """Apply the expected update of the stochastic trains (``MEAN_FIELD``) in place."""
        pos = (-lr) * (d.T @ x)  # the update asked for
        mag = lr * (d.abs().T @ x.abs())
        mu_up, mu_down = self.mean_steps(w)
        if self.gain_up is not None:
            mu_up, mu_down = mu_up * self.gain_up, mu_down * self.gain_down
        # F = (q_down + q_up) / 2, G = (q_down - q_up) / 2 with q = mu / dw_min
        f = (mu_down + mu_up) * (0.5 / self.dw_min)
        g = (mu_down - mu_up) * (0.5 / self.dw_min)
        self._count(mag / self.dw_min)
        return self.clip(w.add_(pos * f - mag * g))

    def update(self, w: Tensor, x: Tensor, d: Tensor, *, lr: float, mode: UpdateMode,
               bit_length: int = 31, update_management: bool = True,
               generator: torch.Generator | None = None,
               engine: UpdateEngine = UpdateEngine.AUTO) -> Tensor:
        """Move ``w`` (n_out, n_in) in place by the pulsed form of -lr d^T x.

        Parameters
        ----------
        w : Tensor
            Weights of the array [1], changed in place.
        x, d : Tensor
            Inputs (B, n_in) and output errors dL/dy (B, n_out) of a batch.
        lr : float
            Learning rate [1], > 0.
        mode : UpdateMode
            Stochastic trains, deterministic count or mean field.
        bit_length : int
            BL of the stochastic trains, >= 1.
        update_management : bool
            Balance the trains per sample.
        generator : torch.Generator
            Draws the bits and the step noise (needed for ``STOCHASTIC``; None elsewhere:
            no step noise).
        engine : UpdateEngine
            The code of a ``STOCHASTIC`` update (default: the Numba kernel where it
            applies).
        """
        mode = coerce_enum(UpdateMode, mode, "mode")
        engine = coerce_enum(UpdateEngine, engine, "engine")
        if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
            raise ConfigError(f"lr must be a positive finite number, got {lr!r}")
        if x.shape[1] != self.shape[1] or d.shape[1] != self.shape[0] or x.shape[0] != d.shape[0]:
            raise ConfigError(f"x {tuple(x.shape)} and d {tuple(d.shape)} do not fit an array "
                              f"of shape {self.shape} (x: (B, n_in), d: (B, n_out))")
        if mode is UpdateMode.STOCHASTIC and engine is not UpdateEngine.TORCH:
            updater = self._kernel(w, bit_length, engine)
            if updater is not None:
                _check_generator(generator, w.device)
                seed = int(torch.randint(-2 ** 63, 2 ** 63 - 1, (), generator=generator,
                                         dtype=torch.int64)) % 2 ** 64
                self._pulses += updater.update(
                    w.detach().numpy(), x.detach().numpy(), d.detach().numpy(), lr=float(lr),
                    bit_length=bit_length, update_management=bool(update_management),
                    seed=seed)
                return w
        finite = torch.isfinite(x).all() & torch.isfinite(d).all()
        if _capturing(w):  # no host synchronisation inside a graph: remembered instead
            self._device_state()
            self._finite &= finite
        elif not bool(finite):  # one device sync
            raise ConfigError("x and d must be finite (a NaN or infinite activation or error: "
                              "did training diverge?)")
        if mode is UpdateMode.MEAN_FIELD:
            return self.mean_field(w, x, d, lr)
        if mode is UpdateMode.PULSE_COUNT:
            n = torch.round((-lr / self.dw_min) * (d.T @ x))
            return self.apply_counts(w, n.clamp(min=0.0), (-n).clamp_(min=0.0), generator)
        if isinstance(bit_length, bool) or not isinstance(bit_length, int) or bit_length < 1:
            raise ConfigError(f"bit_length must be an integer >= 1, got {bit_length!r}")
        _check_generator(generator, w.device)
        px, pd = pulse_probabilities(x, d, lr=lr, dw_min=self.dw_min, bit_length=bit_length,
                                     update_management=update_management)
        if w.is_contiguous():  # few coincidences: move only the cells they hit
            on_x, on_d = _bits(px, pd, bit_length, generator)
            if not _capturing(w) and _few(on_x, on_d, self.shape[1], self.shape[0]):
                B = x.shape[0]
                lin, up = _pairs(on_x.reshape(B * bit_length, -1),
                                 on_d.reshape(B * bit_length, -1), torch.sign(x),
                                 torch.sign(d), bit_length)
                cells, inv = torch.unique(lin, return_inverse=True)
                n_up = torch.zeros(cells.numel(), dtype=w.dtype, device=w.device)
                n_up.index_add_(0, inv, up.to(w.dtype))
                n_down = torch.bincount(inv, minlength=cells.numel()).to(w.dtype) - n_up
                gains = None if self.gain_up is None else (self.gain_up.view(-1)[cells],
                                                           self.gain_down.view(-1)[cells])
                flat = w.view(-1)
                flat[cells] = self._moved(flat[cells], n_up, n_down, gains, generator)
                return w
            n_up, n_down = _dense_counts(x, d, on_x, on_d, bit_length)
        else:
            n_up, n_down = coincidence_counts(x, d, px, pd, bit_length, generator)
        return self.apply_counts(w, n_up.to(w.dtype), n_down.to(w.dtype), generator)
