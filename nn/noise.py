"""Weight-domain noise models and their attachment to torch layers.

A noise model maps a layer tensor ``w`` and standard-normal draws ``z`` to a
perturbation ``Δw`` (see :class:`NoiseModel`). Drawing ``z`` outside the model keeps
all randomness in the caller's :class:`torch.Generator`, makes antithetic pairs a
sign flip (``z`` and ``-z``), and lets one ``randn`` call feed every layer.

Noise is attached to the ``Linear``/``Conv1d``/``Conv2d`` layers of any model with
:func:`torch.nn.utils.parametrize.register_parametrization` (:func:`attach_noise`)
and removed again with :func:`detach_noise`; the stored perturbation is redrawn with
:func:`resample_noise` (one call = one programmed chip).

A noise-attached model checkpoints like a clean one:

* ``state_dict()`` holds the clean tensors under their plain names (``fc.weight``, not
  ``fc.parametrizations.weight.original``), so it loads into a clean model of the same
  architecture, and ``load_state_dict`` of a noise-attached model accepts a clean
  model's keys (and the parametrized ones). The perturbation is not saved.
* ``torch.save(model)`` pickles each noisy layer as its clean layer plus the attached
  noise (model, generator, the current perturbation); ``torch.load(path,
  weights_only=False)`` gives the noise-attached model back, same outputs.

The generator given to :func:`attach_noise` lives on one device. When the model has
since moved to another (``model.cuda()``), the next :func:`resample_noise` replaces it
by a generator on the weights' device seeded by one draw from the old generator
(:func:`generator_on`): the draws stay a deterministic function of the original seed,
though not the same numbers as on the first device.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..errors import ConfigError

__all__ = [
    "NoiseModel",
    "GaussianNoise",
    "OffsetNoise",
    "QuantileNoise",
    "WeightNoise",
    "NOISY_LAYER_TYPES",
    "noisy_tensors",
    "attach_noise",
    "detach_noise",
    "resample_noise",
    "generator_on",
]

#: Layer types whose ``weight`` (and ``bias``) can carry weight noise.
NOISY_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)


@runtime_checkable
class NoiseModel(Protocol):
    """What a weight-noise source must provide.

    ``perturbation(w, z)`` returns ``Δw`` (same dtype/device as ``w``) for the layer
    tensor ``w`` (detached; shape ``S``) given standard-normal draws ``z`` of shape
    ``S`` or ``(n, *S)`` (then the result has that shape). It must be a deterministic
    function of ``z``; the distribution of ``Δw`` is the model's, and ``-z`` gives the
    antithetic partner. Weights are in the network's own units (dimensionless). Models that
    also take a keyword ``peak`` (a per-element reference magnitude replacing the tensor's
    ``max|w|``) can be scaled per tile (:mod:`xbarlab.nn.tile_noise`).

    ``to_dict()`` describes the model for metrics/config files (JSON-serialisable).
    """

    def perturbation(self, w: Tensor, z: Tensor) -> Tensor: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class GaussianNoise:
    """Gaussian weight noise scaled to each layer's range, with optional mean shift.

    ``Δw = μ·w + σ·max|w|·z``, ``z ~ N(0, 1)`` i.i.d.; ``max|w|`` is taken over the
    whole layer tensor (weight and bias separately, the poster's bias row ``b/s`` with
    ``s = max|b|/max|W|``) and is detached, as are σ and μ (Algorithm 1: no gradient
    through the noise).
    """

    sigma: float
    """σ: standard deviation relative to the layer's max|w| (dimensionless, ≥ 0)."""
    shift: float = 0.0
    """μ: mean shift as a fraction of each weight (dimensionless; e.g. -0.05 for a 5 % drop)."""

    def __post_init__(self):
        for name in ("sigma", "shift"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"GaussianNoise.{name} must be a finite number, got {v!r}")
        if self.sigma < 0:
            raise ConfigError(f"GaussianNoise.sigma must be >= 0, got {self.sigma!r}")

    def perturbation(self, w: Tensor, z: Tensor, *, peak: Tensor | None = None) -> Tensor:
        """``Δw`` for draws ``z``; ``peak``: per-element reference magnitude [1]
        (broadcast to ``w``) instead of the tensor's ``max|w|``."""
        w = w.detach()
        if peak is not None:
            scale = self.sigma * peak
        else:
            scale = self.sigma * w.abs().amax() if w.numel() else w.new_zeros(())
        out = z * scale
        if self.shift != 0.0:
            out = out + self.shift * w
        return out

    def perturbations(self, ws: list[Tensor], z: Tensor) -> list[Tensor]:
        """:meth:`perturbation` for several tensors at once (a few fused kernels).

        ``z``: (n, Σ numel) standard normals, the tensors' draws side by side in the
        order of ``ws``; returns ``[(n, *w.shape)]``, views into one buffer.
        """
        ws = [w.detach() for w in ws]
        sizes = [w.numel() for w in ws]
        peaks = torch.stack(torch._foreach_norm(ws, float("inf"))) * self.sigma
        scale = torch.cat([p.expand(k) for p, k in zip(peaks.unbind(0), sizes, strict=True)])
        d = z * scale
        if self.shift != 0.0:
            d = d + self.shift * torch.cat([w.reshape(-1) for w in ws])
        out, off = [], 0
        for w, k in zip(ws, sizes, strict=True):
            out.append(d[:, off:off + k].view(d.shape[0], *w.shape))
            off += k
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "gaussian", "sigma": float(self.sigma), "shift": float(self.shift)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> GaussianNoise:
        return GaussianNoise(sigma=float(d["sigma"]), shift=float(d.get("shift", 0.0)))


@dataclass(frozen=True)
class OffsetNoise:
    """Gaussian weight noise with a mean offset in units of each layer's range.

    ``Δw = (μ + σ·z)·max|w|``, ``z ~ N(0, 1)`` i.i.d.: every entry of a layer tensor
    moves by the same offset μ·max|w| (a device shift in the layer's conductance range,
    whatever the weight) plus zero-mean noise. ``max|w|`` per tensor (weight and bias
    separately, as :class:`GaussianNoise`), detached.
    """

    sigma: float
    """σ: standard deviation relative to the layer's max|w| (dimensionless, ≥ 0)."""
    offset: float = 0.0
    """μ: mean of the perturbation relative to the layer's max|w| (dimensionless)."""

    def __post_init__(self):
        for name in ("sigma", "offset"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"OffsetNoise.{name} must be a finite number, got {v!r}")
        if self.sigma < 0:
            raise ConfigError(f"OffsetNoise.sigma must be >= 0, got {self.sigma!r}")

    def perturbation(self, w: Tensor, z: Tensor, *, peak: Tensor | None = None) -> Tensor:
        """``Δw`` for draws ``z``; ``peak``: per-element reference magnitude [1]
        (broadcast to ``w``) instead of the tensor's ``max|w|``."""
        w = w.detach()
        if peak is None:
            peak = w.abs().amax() if w.numel() else w.new_zeros(())
        return (self.offset + self.sigma * z) * peak

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "offset", "sigma": float(self.sigma), "offset": float(self.offset)}


class QuantileNoise:
    """Noise given as quantile tables of ``Δw / max|w|`` on a grid of normalised weights.

    For a weight with normalised value ``u = w / max|w|`` (in [-1, 1]) the draw is
    ``Δw = max|w| · scale · Q(u, p)`` with ``p = Φ(z)`` and ``Q`` bilinear in the table:
    linear in ``u`` between grid rows and linear in ``p`` between the quantile levels
    (held constant outside the outermost levels). No shape is forced on the
    distribution. ``scale`` multiplies the spread about the median row-wise mean
    (the evaluation's noise level), the mean itself is kept. Device-derived noise files
    (:mod:`xbarlab.nn.noise_file`) load as this class.

    ``w_grid``: (m,) increasing normalised weights in [-1, 1] (dimensionless);
    ``levels``: (k,) increasing probabilities in (0, 1); ``quantiles``: (m, k) values of
    ``Δw/max|w|`` (dimensionless), non-decreasing along ``k``; ``mean``: (m,) mean of
    ``Δw/max|w|`` per row (dimensionless; computed from the table if omitted);
    ``mapping``: the :class:`~xbarlab.devices.mapping.WeightMapping` the tables were made
    with (a noise file's), which per-tile training noise then uses (None: not known).
    """

    def __init__(self, w_grid, levels, quantiles, *, mean=None, scale: float = 1.0,
                 source: str = "", mapping=None):
        wg = torch.as_tensor(w_grid, dtype=torch.float64)
        lv = torch.as_tensor(levels, dtype=torch.float64)
        q = torch.as_tensor(quantiles, dtype=torch.float64)
        if wg.ndim != 1 or wg.numel() < 2 or not bool(torch.all(wg[1:] > wg[:-1])):
            raise ConfigError("QuantileNoise.w_grid must be 1-D, strictly increasing, >= 2 points")
        if lv.ndim != 1 or lv.numel() < 2 or not bool(torch.all(lv[1:] > lv[:-1])) or \
                float(lv[0]) <= 0 or float(lv[-1]) >= 1:
            raise ConfigError("QuantileNoise.levels must be strictly increasing inside (0, 1)")
        if q.shape != (wg.numel(), lv.numel()):
            raise ConfigError(f"QuantileNoise.quantiles has shape {tuple(q.shape)}, expected "
                              f"({wg.numel()}, {lv.numel()})")
        if not bool(torch.all(torch.isfinite(q))) or not bool(torch.all(q[:, 1:] >= q[:, :-1])):
            raise ConfigError("QuantileNoise.quantiles must be finite and non-decreasing in p")
        if not math.isfinite(scale) or scale < 0:
            raise ConfigError(f"QuantileNoise.scale must be >= 0, got {scale!r}")
        if mean is None:
            mean = q.mean(dim=1)
        self.w_grid, self.levels, self.quantiles = wg, lv, q
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.scale = float(scale)
        self.source = str(source)
        self.mapping = mapping

    def scaled(self, scale: float) -> QuantileNoise:
        """The same table with the spread multiplied by ``scale`` (≥ 0)."""
        return QuantileNoise(self.w_grid, self.levels, self.quantiles, mean=self.mean,
                             scale=scale, source=self.source, mapping=self.mapping)

    def perturbation(self, w: Tensor, z: Tensor, *, peak: Tensor | None = None) -> Tensor:
        """``Δw`` for draws ``z``; ``peak``: per-element reference magnitude [1]
        (broadcast to ``w``: the weight each one's tile maps to ``g_max``) instead of the
        tensor's ``max|w|``."""
        w = w.detach()
        dev, dt = w.device, w.dtype
        wmax = w.abs().amax() if peak is None else peak.to(dev, dt)
        u = (w / torch.where(wmax > 0, wmax, torch.ones_like(wmax))).clamp(-1, 1)
        wg = self.w_grid.to(dev, dt)
        lv = self.levels.to(dev, dt)
        q = self.quantiles.to(dev, dt)
        mean = self.mean.to(dev, dt)
        # row interpolation weights (u is the same for every draw)
        i = torch.searchsorted(wg, u.contiguous()).clamp(1, wg.numel() - 1)
        a = ((u - wg[i - 1]) / (wg[i] - wg[i - 1])).clamp(0, 1)
        p = 0.5 * torch.erfc(-z / math.sqrt(2.0))
        j = torch.searchsorted(lv, p.contiguous()).clamp(1, lv.numel() - 1)
        b = ((p - lv[j - 1]) / (lv[j] - lv[j - 1])).clamp(0, 1)
        ii = i.expand_as(j)
        aa = a.expand_as(b)

        def row(r):
            return q[r, j - 1] * (1 - b) + q[r, j] * b

        val = row(ii - 1) * (1 - aa) + row(ii) * aa
        mu = mean[i - 1] * (1 - a) + mean[i] * a
        return wmax * (mu + self.scale * (val - mu))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "quantile", "scale": self.scale, "source": self.source,
                "n_w": int(self.w_grid.numel()), "n_levels": int(self.levels.numel())}


# --------------------------------------------------------------------------- attachment


def check_noise(noise) -> None:
    """Raise ConfigError unless ``noise`` is a :class:`NoiseModel`."""
    if not isinstance(noise, NoiseModel):
        raise ConfigError(f"noise must provide perturbation(w, z) and to_dict() (a NoiseModel), "
                          f"got {type(noise).__name__}")


def noisy_tensors(model: nn.Module, *, bias: bool = True,
                  layers: Iterable[str] | None = None) -> list[tuple[str, nn.Module, str]]:
    """``(qualified name, module, "weight"|"bias")`` for every tensor that carries noise.

    ``layers``: names of submodules to use (default: every Linear/Conv1d/Conv2d). A
    named layer of another type raises ConfigError, as does a model with none.
    """
    out: list[tuple[str, nn.Module, str]] = []
    mods = dict(model.named_modules())
    if layers is None:
        chosen = [(n, m) for n, m in mods.items() if isinstance(m, NOISY_LAYER_TYPES)]
    else:
        chosen = []
        for n in layers:
            if n not in mods:
                raise ConfigError(f"layer {n!r} is not a submodule of the model; submodules: "
                                  f"{[k for k in mods if k][:20]}")
            if not isinstance(mods[n], NOISY_LAYER_TYPES):
                raise ConfigError(
                    f"layer {n!r} is a {type(mods[n]).__name__}, which cannot carry weight "
                    f"noise; supported: {[t.__name__ for t in NOISY_LAYER_TYPES]}")
            chosen.append((n, mods[n]))
    if not chosen:
        raise ConfigError("the model has no Linear/Conv1d/Conv2d layer to carry weight noise")
    for n, m in chosen:
        for t in ("weight", "bias") if bias else ("weight",):
            if base_tensor(m, t) is not None:
                out.append((f"{n}.{t}" if n else t, m, t))
    return out


def base_tensor(module: nn.Module, name: str) -> Tensor | None:
    """The unperturbed tensor ``name`` of ``module`` (the original if parametrized)."""
    if parametrize.is_parametrized(module, name):
        return module.parametrizations[name].original
    return getattr(module, name, None)


class WeightNoise(nn.Module):
    """Parametrization ``w ↦ w + Δw`` with ``Δw`` held fixed until the next resample.

    ``Δw`` is a non-persistent buffer (never saved in a state dict), drawn by
    :meth:`resample` from ``noise.perturbation(w, z)``, ``z`` from ``generator`` (which must
    live on ``w``'s device; :func:`resample_noise` moves it). ``hooks``: the handles of the
    plain-name state-dict hooks :func:`attach_noise` put on the layer.
    """

    def __init__(self, noise: NoiseModel, generator: torch.Generator):
        super().__init__()
        check_noise(noise)
        self.noise = noise
        self.generator = generator
        self.enabled = True
        self.register_buffer("delta", None, persistent=False)
        self.hooks: list = []  # state-dict hook handles on the parametrized layer

    @torch.no_grad()
    def resample(self, w: Tensor, z: Tensor | None = None) -> None:
        if z is None:
            z = torch.randn(w.shape, generator=self.generator, device=w.device, dtype=w.dtype)
        self.delta = self.noise.perturbation(w.detach(), z).to(w.dtype)

    def forward(self, w: Tensor) -> Tensor:
        if not self.enabled or self.delta is None:
            return w
        return w + self.delta


def check_generator(generator: torch.Generator, tensors: Iterable[Tensor]) -> None:
    """Raise ConfigError unless ``generator`` is a torch.Generator on every tensor's device."""
    if not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    for t in tensors:
        if torch.device(generator.device).type != t.device.type:
            raise ConfigError(f"generator is on {generator.device} but the weights are on "
                              f"{t.device}; create torch.Generator(device={str(t.device)!r})")


def generator_on(generator: torch.Generator, device: torch.device | str) -> torch.Generator:
    """``generator`` itself if it lives on ``device``, else a new generator there.

    The new generator is seeded with one 63-bit draw from ``generator`` (which advances
    it): a deterministic function of ``generator``'s state.
    """
    if same_device(generator.device, device):
        return generator
    seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator, device=generator.device))
    return torch.Generator(device=device).manual_seed(seed)


def same_device(a: torch.device | str, b: torch.device | str) -> bool:
    """Whether ``a`` and ``b`` name the same device (``"cuda"`` is ``"cuda:0"``)."""
    a, b = torch.device(a), torch.device(b)
    return a.type == b.type and (a.index or 0) == (b.index or 0)


# ------------------------------------------------------------- checkpoints of noisy layers


def _plain_keys(t: str, module: nn.Module, state: dict, prefix: str, local_metadata) -> None:
    """State-dict hook: save the clean tensor ``t`` under ``prefix + t``."""
    key = f"{prefix}parametrizations.{t}.original"
    if key in state:
        state[prefix + t] = state.pop(key)
    meta = getattr(state, "_metadata", None)
    if meta is not None:
        for k in [k for k in meta if k.startswith(f"{prefix}parametrizations")]:
            del meta[k]


def _parametrized_keys(t: str, module: nn.Module, state: dict, prefix: str, *args) -> None:
    """Load pre-hook: accept the clean tensor ``t`` under ``prefix + t``."""
    if prefix + t in state:
        state[f"{prefix}parametrizations.{t}.original"] = state.pop(prefix + t)


def _clean_copy(module: nn.Module) -> tuple[nn.Module, list[tuple]]:
    """A shallow clean copy of a noisy layer and what re-attaches its noise:
    ``[(tensor name, noise model, generator, enabled, perturbation)]``."""
    cls = type(module).__bases__[0]
    clean = cls.__new__(cls)
    state = dict(module.__dict__)
    params = dict(module._parameters)
    hooks = {h.id for _, _, p in _noise_modules(module) for h in p.hooks}
    specs = []
    for t, plist in module.parametrizations.items():
        if len(plist) != 1 or not isinstance(plist[0], WeightNoise):
            raise ConfigError(f"{t} carries parametrizations besides weight noise; save the "
                              "model's state_dict() instead")
        params[t] = plist.original
        p = plist[0]
        specs.append((t, p.noise, p.generator, p.enabled, p.delta))
    state["_parameters"] = params
    state["_modules"] = {k: v for k, v in module._modules.items() if k != "parametrizations"}
    for d in ("_state_dict_hooks", "_load_state_dict_pre_hooks"):
        state[d] = type(state[d])((k, v) for k, v in state[d].items() if k not in hooks)
    clean.__dict__.update(state)
    return clean, specs


def _rebuild_noisy(clean: nn.Module, specs) -> nn.Module:
    """Unpickle a noisy layer: re-attach its :class:`WeightNoise` (with its perturbation)."""
    for t, noise, generator, enabled, delta in specs:
        p = WeightNoise(noise, generator)
        _register(clean, t, p)
        p.enabled, p.delta = enabled, delta
    return clean


def _reduce_noisy(module: nn.Module, protocol):
    """Pickle a noisy layer as its clean layer plus the attached noise."""
    return _rebuild_noisy, _clean_copy(module)


def _register(module: nn.Module, t: str, p: WeightNoise) -> None:
    """Register ``p`` on ``module.t`` with plain-name checkpoint hooks and pickling."""
    parametrize.register_parametrization(module, t, p, unsafe=True)
    p.hooks = [module.register_state_dict_post_hook(functools.partial(_plain_keys, t)),
               module.register_load_state_dict_pre_hook(functools.partial(_parametrized_keys,
                                                                          t))]
    type(module).__reduce_ex__ = _reduce_noisy  # the class torch made for this module alone


def attach_noise(model: nn.Module, noise: NoiseModel, *, generator: torch.Generator,
                 bias: bool = True, layers: Iterable[str] | None = None) -> nn.Module:
    """Attach ``noise`` to the weights (and biases) of ``model``'s noisy layers, in place.

    Registers a :class:`WeightNoise` parametrization on each tensor and draws a first
    perturbation; returns ``model``. Raises ConfigError if noise is already attached.
    """
    check_noise(noise)
    targets = noisy_tensors(model, bias=bias, layers=layers)
    check_generator(generator, [getattr(m, t) for _, m, t in targets])
    for name, m, t in targets:
        if parametrize.is_parametrized(m, t):
            raise ConfigError(f"{name} is already parametrized (noise attached twice?); "
                              "detach_noise() first")
    for _, m, t in targets:
        _register(m, t, WeightNoise(noise, generator))
    resample_noise(model)
    return model


def _noise_modules(model: nn.Module) -> Iterator[tuple[nn.Module, str, WeightNoise]]:
    for m in model.modules():
        if parametrize.is_parametrized(m):
            for t, plist in m.parametrizations.items():
                for p in plist:
                    if isinstance(p, WeightNoise):
                        yield m, t, p


@contextlib.contextmanager
def noise_off(model: nn.Module):
    """Switch attached :class:`WeightNoise` off inside the block (HA-SGD draws its own)."""
    mods = [p for _, _, p in _noise_modules(model) if p.enabled]
    for p in mods:
        p.enabled = False
    try:
        yield
    finally:
        for p in mods:
            p.enabled = True


def resample_noise(model: nn.Module, *, enabled: bool = True) -> int:
    """Draw a fresh perturbation for every attached :class:`WeightNoise`; return their count.

    ``enabled=False`` switches the noise off (clean weights) until the next call.
    """
    n = 0
    moved: dict[tuple[int, torch.device], torch.Generator] = {}
    for m, t, p in _noise_modules(model):
        p.enabled = enabled
        if enabled:
            w = m.parametrizations[t].original
            key = (id(p.generator), w.device)  # layers sharing a generator share the new one
            if key not in moved:
                moved[key] = generator_on(p.generator, w.device)
            p.generator = moved[key]
            p.resample(w)
        n += 1
    return n


def detach_noise(model: nn.Module) -> nn.Module:
    """Remove every :class:`WeightNoise` parametrization, restoring the clean tensors."""
    for m, t, p in list(_noise_modules(model)):
        for h in p.hooks:
            h.remove()
        p.hooks = []
        if parametrize.is_parametrized(m, t):
            parametrize.remove_parametrizations(m, t, leave_parametrized=False)
    return model
