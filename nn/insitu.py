"""In-situ training: torch optimizers whose weights live in pulsed analog arrays.

The optimizers take a network whose ``nn.Linear`` layers are the analog arrays (a layer's
weight and bias form one array of n_out x (n_in + 1) cells: the bias is the column driven by
a constant input 1). After the usual ``loss.backward()``, ``step()`` moves each array by the
pulsed form (:mod:`xbarlab.nn.pulsed_update`) of the SGD step -lr sum_b delta_b x_b^T, from
the layer inputs x and output errors delta = dL/dy recorded by hooks during the forward and
backward passes; autograd computes no weight gradient of an analog layer (its weight and
bias have ``requires_grad = False``). Any other trainable parameter (not in an analog
layer) gets a plain digital SGD step with the same lr.

- :class:`AnalogSGD`: the array is the weight; every step pulses it.
- :class:`TikiTaka` (Tiki-Taka version 2, Gokmen 2021; chopped version 2, Rasch et al.
  2023): a fast array A takes the pulsed gradient steps; every ``transfer_every`` steps
  ``columns_per_transfer`` columns of A are read (round robin, with read noise
  ``read_noise`` [1]) into a digital buffer H (H += transfer_lr * read); where |H| reaches
  ``threshold`` * dw_min(C) the slow array C receives trunc(H / (threshold dw_min)) pulses
  (at most ``max_pulses``, if set) of that sign, and H keeps the remainder. The network computes
  with W = C + gamma A. Chopped: every input column of A has a sign c_j = +-1 that
  multiplies its input during the update and its read during the transfer, flipped with
  probability ``chop_probability`` after each full sweep of the columns, so that the
  offset A accumulates around its symmetric point cancels in H.
- digital SGD is the reference: ``torch.optim.SGD`` on the same network.

A and C are both arrays of the same device (:class:`~xbarlab.devices.pulsed.WeightDomain`),
A at its symmetric point w = 0 at the start. Convolutions are not supported yet.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..checks import check_number
from ..devices.pulsed import WeightDomain
from ..enums import coerce_enum
from ..errors import ConfigError
from .graphs import capture_step
from .pulsed_update import PulsedArray, UpdateMode

__all__ = ["Algorithm", "PulseSettings", "DEFAULT_PULSES", "AnalogSGD", "TikiTaka",
           "make_optimizer"]


class Algorithm(enum.StrEnum):
    """Training algorithm (see the module docstring)."""

    DIGITAL = "digital"
    ANALOG_SGD = "analog-sgd"
    TIKI_TAKA = "tiki-taka"
    CHOPPED_TIKI_TAKA = "chopped-tiki-taka"


@dataclass(frozen=True)
class PulseSettings:
    """How updates become pulses (:class:`~xbarlab.nn.pulsed_update.UpdateMode`)."""

    mode: UpdateMode = UpdateMode.STOCHASTIC
    """Stochastic trains, deterministic pulse count or mean field."""
    bit_length: int = 31
    """BL: bits per stochastic train [1], >= 1."""
    update_management: bool = True
    """Balance the input and error trains per sample."""

    def __post_init__(self):
        object.__setattr__(self, "mode", coerce_enum(UpdateMode, self.mode, "mode"))
        bl = self.bit_length
        if isinstance(bl, bool) or not isinstance(bl, int) or bl < 1:
            raise ConfigError(f"bit_length must be an integer >= 1, got {bl!r}")


#: Stochastic trains of 31 bits with update management (aihwkit's default pulsed update).
DEFAULT_PULSES = PulseSettings()


def _positive(name, v) -> float:
    return check_number(v, what=name, lo=0.0, lo_open=True)


class _Tap:
    """Records a Linear layer's inputs (with the bias column) and output errors."""

    def __init__(self, layer: nn.Linear):
        self.layer = layer
        self.x = self.d = None
        self._h = layer.register_forward_hook(self._forward)

    def _forward(self, module, inputs, out):
        if not torch.is_grad_enabled():
            return None
        x = inputs[0].detach().reshape(-1, module.in_features)
        if module.bias is not None:
            x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        self.x = x
        if not out.requires_grad:  # the first layer: errors are still wanted
            out = out.detach().requires_grad_(True)
        out.register_hook(self._backward)
        return out

    def _backward(self, grad):
        self.d = grad.detach().reshape(-1, self.layer.out_features)

    def take(self) -> tuple[Tensor, Tensor]:
        if self.x is None or self.d is None:
            raise ConfigError("step() needs a forward and loss.backward() of the network first")
        x, d = self.x, self.d
        self.x = self.d = None
        return x, d

    def remove(self):
        self._h.remove()


def _analog_layers(model: nn.Module, layers) -> dict[str, nn.Linear]:
    mods = dict(model.named_modules())
    names = [n for n, m in mods.items() if isinstance(m, nn.Linear)] if layers is None else list(
        layers)
    for n in names:
        if n not in mods or not isinstance(mods[n], nn.Linear):
            raise ConfigError(f"layer {n!r} is not an nn.Linear of the model (convolutions are "
                              "not supported in situ yet)")
    if not names:
        raise ConfigError("the model has no nn.Linear layer to train in situ")
    return {n: mods[n] for n in names}


def _bind(layer: nn.Linear, w: Tensor) -> None:
    """Make the layer's weight and bias views of the array ``w`` (n_out, n_in [+ 1])."""
    n_in = layer.in_features
    layer.weight.data = w[:, :n_in]
    layer.weight.requires_grad_(False)
    if layer.bias is not None:
        layer.bias.data = w[:, n_in]
        layer.bias.requires_grad_(False)


def _array_of(layer: nn.Linear) -> Tensor:
    w = layer.weight.detach()
    if layer.bias is not None:
        w = torch.cat([w, layer.bias.detach()[:, None]], dim=1)
    return w.clone().contiguous()


class _InSitu(torch.optim.Optimizer):
    """Shared machinery: taps, arrays, the digital step of the other parameters."""

    def __init__(self, model: nn.Module, domain: WeightDomain, *, lr: float,
                 pulses: PulseSettings, generator: torch.Generator, layers=None):
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(domain, WeightDomain):
            raise ConfigError(f"domain must be a WeightDomain, got {type(domain).__name__}")
        if not isinstance(pulses, PulseSettings):
            raise ConfigError(f"pulses must be a PulseSettings, got {type(pulses).__name__}")
        if not isinstance(generator, torch.Generator):
            raise ConfigError(f"generator must be a torch.Generator, got "
                              f"{type(generator).__name__}")
        lr = _positive("lr", lr)
        self.domain, self.pulses, self.generator = domain, pulses, generator
        self.model = model
        self.analog = _analog_layers(model, layers)
        analog_params = {id(p) for m in self.analog.values() for p in m.parameters()}
        others = [p for p in model.parameters() if id(p) not in analog_params and p.requires_grad]
        weights = [m.weight for m in self.analog.values()]
        groups = [{"params": weights, "analog": True}]
        if others:
            groups.append({"params": others, "analog": False})
        super().__init__(groups, {"lr": lr})
        self.taps = {n: _Tap(m) for n, m in self.analog.items()}

    def _new_array(self, layer: nn.Linear, w: Tensor) -> PulsedArray:
        return PulsedArray(self.domain, tuple(w.shape), generator=self.generator,
                           device=w.device, dtype=w.dtype)

    def _pulse(self, arr: PulsedArray, w: Tensor, x: Tensor, d: Tensor, lr: float) -> None:
        p = self.pulses
        arr.update(w, x, d, lr=lr, mode=p.mode, bit_length=p.bit_length,
                   update_management=p.update_management, generator=self.generator)

    def _digital_step(self):
        for group in self.param_groups:
            if group["analog"]:
                continue
            for p in group["params"]:
                if p.grad is not None:
                    p.data.add_(p.grad, alpha=-group["lr"])

    def pulse_counts(self) -> dict[str, float]:
        """Pulses applied so far per layer (all its arrays) [1]."""
        raise NotImplementedError

    def remove_hooks(self) -> None:
        """Detach the recording hooks from the network."""
        for t in self.taps.values():
            t.remove()


class AnalogSGD(_InSitu):
    """Analog SGD: each analog layer's array takes the pulsed SGD step every ``step()``.

    Parameters
    ----------
    model : torch.nn.Module
        The network; its ``nn.Linear`` layers (or ``layers``) become arrays. Their weights
        are clipped into the device's range at the start.
    domain : WeightDomain
        Device and weight scale of every cell.
    lr : float
        Learning rate [1].
    pulses : PulseSettings
        Update mode, bit length, update management.
    generator : torch.Generator
        Draws the device-to-device gains, the bits and the step noise (on the model's
        device).
    layers : iterable of str, optional
        Names of the analog layers (default: every nn.Linear).
    """

    def __init__(self, model: nn.Module, domain: WeightDomain, *, lr: float,
                 pulses: PulseSettings = DEFAULT_PULSES, generator: torch.Generator,
                 layers=None):
        super().__init__(model, domain, lr=lr, pulses=pulses, generator=generator,
                         layers=layers)
        self.arrays = {}
        self.weights = {}
        for n, layer in self.analog.items():
            w = _array_of(layer)
            arr = self._new_array(layer, w)
            arr.clip(w)
            _bind(layer, w)
            self.arrays[n], self.weights[n] = arr, w

    @torch.no_grad()
    def step(self, closure=None):
        """Pulse every analog array by the recorded batch; digital SGD for the rest."""
        loss = None if closure is None else closure()
        lr = self.param_groups[0]["lr"]
        for n, tap in self.taps.items():
            x, d = tap.take()
            self._pulse(self.arrays[n], self.weights[n], x, d, lr)
        self._digital_step()
        return loss

    def pulse_counts(self) -> dict[str, float]:
        return {n: a.pulses for n, a in self.arrays.items()}

    def finite_inputs(self) -> bool:
        """False if a step replayed from a CUDA graph (:meth:`cuda_graph`) met a
        non-finite input or error of an analog layer (eager steps raise instead)."""
        return all(a.finite_inputs() for a in self.arrays.values())

    def cuda_graph(self, x: Tensor, y: Tensor, *, loss_fn, warmup: int = 3):
        """Capture one whole training step in a CUDA graph; return ``step(x, y) -> loss``.

        The step is forward, ``loss_fn(model(x), y)``, backward and :meth:`step`. At batch
        10 an eager step launches a few hundred small kernels and synchronises with the
        host several times per layer; the replayed step is one launch and never
        synchronises: the pulsed updates take their dense path (every cell moved by the
        same equations; the same counts from the same bits), count their pulses on the
        device and remember a non-finite input or error (:meth:`finite_inputs`) instead of
        raising. Draws continue ``generator``'s stream. ``x``, ``y``: an example batch on
        the GPU (shapes fixed from then on); ``warmup`` (>= 1) eager steps run first on a
        side stream, and the weights, the other parameters, the pulse counts and the
        generator are restored afterwards, so capturing does not train. The returned
        loss is overwritten by the next call.
        """
        if not callable(loss_fn):
            raise ConfigError(f"loss_fn must be callable as loss_fn(model(x), y), got "
                              f"{type(loss_fn).__name__}")
        params = [p for g in self.param_groups if not g["analog"] for p in g["params"]]
        saved = ({n: w.clone() for n, w in self.weights.items()},
                 [p.detach().clone() for p in params],
                 {n: a.pulses for n, a in self.arrays.items()})

        def run(xb, yb):
            self.zero_grad(set_to_none=True)
            loss = loss_fn(self.model(xb), yb)
            loss.backward()
            self.step()
            return loss

        def restore():
            with torch.no_grad():
                for n, w in self.weights.items():
                    w.copy_(saved[0][n])
                for p, v in zip(params, saved[1], strict=True):
                    p.copy_(v)
            for n, a in self.arrays.items():
                a.pulses = saved[2][n]
            self.zero_grad(set_to_none=True)

        if x.is_cuda:
            for a in self.arrays.values():
                a.prepare_capture(x.device)
        return capture_step(run, x, y, warmup=warmup, generator=self.generator,
                            restore=restore)


class TikiTaka(_InSitu):
    """Tiki-Taka version 2 (fast array A, digital buffer H, slow array C), optionally chopped.

    Parameters are those of :class:`AnalogSGD` (``lr``: the learning rate of the pulsed
    updates of A) and, keyword-only:

    transfer_lr : float
        beta: scale of a read of A added to H [1].
    transfer_every : int
        Steps between two transfers, >= 1.
    columns_per_transfer : int
        Columns of A read per transfer, >= 1.
    threshold : float
        |H| in units of C's dw_min that gives one pulse to C [1], > 0.
    max_pulses : int or None
        Most pulses per cell and transfer, >= 1 (None: no cap; a cap leaves the rest in H).
    gamma : float
        Share of A in the weights the network computes with, W = C + gamma A [1].
    read_noise : float
        Std of the read of A, in weight units [1], >= 0.
    chopped : bool
        Chopped Tiki-Taka (see the module docstring).
    chop_probability : float
        Probability that a column's chopper flips after each sweep [1], in [0, 1].
    """

    def __init__(self, model: nn.Module, domain: WeightDomain, *, lr: float,
                 pulses: PulseSettings = DEFAULT_PULSES, generator: torch.Generator,
                 layers=None, transfer_lr: float = 0.05, transfer_every: int = 1,
                 columns_per_transfer: int = 1, threshold: float = 1.0,
                 max_pulses: int | None = None, gamma: float = 0.0, read_noise: float = 0.0,
                 chopped: bool = False, chop_probability: float = 0.01):
        super().__init__(model, domain, lr=lr, pulses=pulses, generator=generator,
                         layers=layers)
        self.transfer_lr = _positive("transfer_lr", transfer_lr)
        self.threshold = _positive("threshold", threshold)
        for name, v in (("transfer_every", transfer_every),
                        ("columns_per_transfer", columns_per_transfer),
                        ("max_pulses", 1 if max_pulses is None else max_pulses)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")
        if not (isinstance(gamma, int | float) and math.isfinite(gamma) and gamma >= 0):
            raise ConfigError(f"gamma must be a finite number >= 0, got {gamma!r}")
        if not (isinstance(read_noise, int | float) and math.isfinite(read_noise)
                and read_noise >= 0):
            raise ConfigError(f"read_noise must be a finite number >= 0, got {read_noise!r}")
        if not (isinstance(chop_probability, int | float) and 0 <= chop_probability <= 1):
            raise ConfigError(f"chop_probability must be in [0, 1], got {chop_probability!r}")
        self.transfer_every, self.columns_per_transfer = transfer_every, columns_per_transfer
        self.max_pulses, self.gamma, self.read_noise = max_pulses, float(gamma), read_noise
        self.chopped, self.chop_probability = bool(chopped), float(chop_probability)
        self.fast, self.slow, self.buffer, self.chopper, self.cursor = {}, {}, {}, {}, {}
        self.a, self.c, self.w = {}, {}, {}
        self.steps = 0
        for n, layer in self.analog.items():
            c = _array_of(layer)
            self.slow[n] = self._new_array(layer, c)
            self.slow[n].clip(c)
            self.fast[n] = self._new_array(layer, c)
            self.a[n], self.c[n] = torch.zeros_like(c), c
            self.buffer[n] = torch.zeros_like(c)
            self.chopper[n] = torch.ones(c.shape[1], dtype=c.dtype, device=c.device)
            self.cursor[n] = 0
            w = c if self.gamma == 0 else c.clone()
            self.w[n] = w
            _bind(layer, w)

    def _transfer(self, n: str) -> None:
        a, c, h, chop = self.a[n], self.c[n], self.buffer[n], self.chopper[n]
        n_cols = a.shape[1]
        start = self.cursor[n]
        stop = min(start + self.columns_per_transfer, n_cols)
        cols = slice(start, stop)
        read = a[:, cols].clone()
        if self.read_noise > 0:
            read += self.read_noise * torch.randn(read.shape, generator=self.generator,
                                                  device=a.device, dtype=a.dtype)
        if self.chopped:
            read *= chop[cols]
        h[:, cols] += self.transfer_lr * read
        unit = self.threshold * self.slow[n].dw_min
        k = torch.trunc(h[:, cols] / unit)
        if self.max_pulses is not None:
            k.clamp_(-self.max_pulses, self.max_pulses)
        h[:, cols] -= k * unit
        self.slow[n].apply_counts(c, k.clamp(min=0.0), (-k).clamp_(min=0.0), self.generator,
                                  cols=cols)
        self.cursor[n] = 0 if stop == n_cols else stop
        if self.chopped and stop == n_cols:
            flip = torch.rand(n_cols, generator=self.generator, device=a.device,
                              dtype=a.dtype) < self.chop_probability
            chop[flip] *= -1

    @torch.no_grad()
    def step(self, closure=None):
        """Pulse every fast array by the recorded batch, transfer when due, refresh W."""
        loss = None if closure is None else closure()
        lr = self.param_groups[0]["lr"]
        self.steps += 1
        for n, tap in self.taps.items():
            x, d = tap.take()
            if self.chopped:
                x = x * self.chopper[n]
            self._pulse(self.fast[n], self.a[n], x, d, lr)
            if self.steps % self.transfer_every == 0:
                self._transfer(n)
            if self.gamma != 0:
                torch.add(self.c[n], self.a[n], alpha=self.gamma, out=self.w[n])
        self._digital_step()
        return loss

    def pulse_counts(self) -> dict[str, float]:
        return {n: self.fast[n].pulses + self.slow[n].pulses for n in self.analog}


def make_optimizer(algorithm: Algorithm, model: nn.Module, *, lr: float,
                   domain: WeightDomain | None = None, pulses: PulseSettings = DEFAULT_PULSES,
                   generator: torch.Generator | None = None, **tiki_taka):
    """The optimizer of ``algorithm`` over ``model``: ``torch.optim.SGD`` (digital),
    :class:`AnalogSGD` or :class:`TikiTaka` (``tiki_taka``: its keyword arguments)."""
    algorithm = coerce_enum(Algorithm, algorithm, "algorithm")
    if algorithm is Algorithm.DIGITAL:
        if tiki_taka:
            raise ConfigError(f"digital SGD takes no Tiki-Taka option, got {sorted(tiki_taka)}")
        return torch.optim.SGD(model.parameters(), lr=_positive("lr", lr))
    if algorithm is Algorithm.ANALOG_SGD:
        if tiki_taka:
            raise ConfigError(f"analog SGD takes no Tiki-Taka option, got {sorted(tiki_taka)}")
        return AnalogSGD(model, domain, lr=lr, pulses=pulses, generator=generator)
    return TikiTaka(model, domain, lr=lr, pulses=pulses, generator=generator,
                    chopped=algorithm is Algorithm.CHOPPED_TIKI_TAKA, **tiki_taka)

