"""Hessian-Aware SGD (poster Algorithm 1): average the gradient over L weight perturbations.

Per minibatch, ``L`` perturbations ``Δω⁽ˡ⁾ = noise.perturbation(w, z⁽ˡ⁾)`` are drawn
(constants: no gradient flows through σ, μ or max|w|), the gradient of the loss at
``w + Δω⁽ˡ⁾`` is computed on the *whole* minibatch for each ℓ, the L gradients are
averaged into ``w.grad`` and any torch optimizer then steps on ``w``.

Two ways to run the L passes, same result up to rounding:

* ``"vmap"``: one pass over weights stacked along a new leading dimension
  (:func:`torch.func.functional_call` under :func:`torch.func.vmap`); Linear layers
  become batched matmuls, convolutions grouped convolutions.
* ``"parallel"``: L independent forward/backward passes, each on its own CUDA stream
  so that their kernels overlap on the GPU (one after another on the CPU); the L
  gradients are averaged at the end.
* ``"sequential"``: L forward/backward passes with the perturbation added to the
  parameters in place (and the clean values restored from a copy), gradients
  accumulated; least memory and least overhead (used for L = 1).

``"auto"`` picks what measured fastest (ResNet-18 on an H100, small MLPs on 2 CPU
cores): ``"sequential"`` for L = 1; in a CUDA graph (:meth:`HASGD.cuda_graph`)
``"parallel"``; on CUDA run eagerly ``"sequential"`` for L = 2, then ``"parallel"`` when
TF32 is off and ``"vmap"`` when cuDNN may use TF32; ``"vmap"`` on the CPU.

On a GPU, small minibatches are bound by the CPU launching kernels (L times per step);
:meth:`HASGD.cuda_graph` captures the whole step once and replays it.

BatchNorm: each of the L passes normalises with its own batch statistics (they are
different networks). Running statistics are updated as the average of what the L
passes would have produced from the same starting state, i.e. one momentum update
with the mean of the L batch statistics; ``num_batches_tracked`` advances by one per
step. Both modes do this, so they agree. Randomness inside the model (dropout) is
drawn independently per pass.

``samples=0`` is plain training (no noise). With ``antithetic=True`` the draws come in
pairs ``z`` and ``-z`` (``L`` must be even): the terms of the gradient that are odd in
the perturbation cancel within each pair.

Several processes: wrap the model in
:class:`torch.nn.parallel.DistributedDataParallel` (one replica per process, NCCL on
GPUs, gloo on the CPU) and pass the wrapper. Every rank takes the whole minibatch and
runs ``L/N`` of the ``L`` passes (``L`` must be a multiple of the number of ranks
``N``). Every rank holds the same generator (the run's, derived from the run seed),
draws the step's ``L`` perturbations exactly as one process does and keeps rows
``rank·L/N … (rank+1)·L/N − 1`` (only those become Δω): the ranks' draws together are
the draws of one process with the same generator, so a run on ``N`` ranks follows the
run on one up to the rounding of the sums. After its passes a rank holds the mean of
its ``L/N`` gradients; one all-reduce over the wrapper's process group (sum, divided by
``N``) then gives every rank the mean over all ``L``, together with the mean loss and
the BatchNorm running statistics (the mean over all ``L`` passes, as on one process).
HASGD calls this all-reduce itself: DDP's own reducer acts only on backward passes that
run through the wrapper's forward, which the ``"vmap"`` and ``"parallel"`` modes
bypass. With one rank nothing changes (same bits as an unwrapped model).

Resuming: :meth:`HASGD.state_dict` holds the optimizer's state, the generator's state
and the step count; a new model, optimizer and :class:`HASGD` that load the model's
and this state continue the run exactly (bit for bit on the CPU). If the model has
moved to another device since the generator was made, the next draw replaces the
generator by one on the weights' device (:func:`~xbarlab.nn.noise.generator_on`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import parametrize

from ..errors import ConfigError
from .graphs import capture_step
from .noise import (
    NoiseModel,
    base_tensor,
    check_generator,
    check_noise,
    generator_on,
    noise_off,
    noisy_tensors,
)
from .tile_noise import (
    NoiseScaling,
    TileScales,
    bias_perturbation,
    check_peak_support,
    tile_scales,
)

__all__ = ["HASGD", "MODES", "check_split"]

#: Ways of running the L perturbed passes.
MODES = ("auto", "vmap", "parallel", "sequential")


def check_split(samples: int, nproc: int) -> None:
    """Raise ConfigError unless ``samples`` (L) splits evenly over ``nproc`` processes.

    ``samples``: perturbations per minibatch, L >= 0; ``nproc``: processes (ranks) >= 1.
    Each rank runs ``samples // nproc`` of the passes.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"nproc must be an integer >= 1, got {nproc!r}")
    if samples % nproc:
        raise ConfigError(f"samples (L={samples}) must be a multiple of the number of "
                          f"processes (nproc={nproc}): each process runs L/nproc passes")


def _tile_mapping(scaling: NoiseScaling, mapping, tile):
    """``(mapping, tile)`` checked for ``scaling`` (TILE: a WeightMapping is required, the
    tile defaults to ``TileConfig()``; LAYER: both must be None)."""
    from ..crossbar.tiling import TileConfig
    from ..devices.mapping import WeightMapping

    if scaling is NoiseScaling.LAYER:
        if mapping is not None or tile is not None:
            raise ConfigError("mapping and tile apply to scaling=NoiseScaling.TILE; with "
                              "LAYER scaling pass neither")
        return None, None
    if not isinstance(mapping, WeightMapping):
        raise ConfigError(f"scaling=NoiseScaling.TILE needs mapping, a "
                          f"devices.mapping.WeightMapping, got {type(mapping).__name__}")
    tile = TileConfig() if tile is None else tile
    if not isinstance(tile, TileConfig):
        raise ConfigError(f"tile must be a crossbar.TileConfig, got {type(tile).__name__}")
    tile.logical_outputs(mapping)  # refuses a mapping the tile cannot hold, now
    return mapping, tile


def _auto_mode(L: int, x: Tensor) -> str:
    if L == 1:
        return "sequential"
    if x.is_cuda:
        if L == 2:
            return "sequential"
        return "vmap" if torch.backends.cudnn.allow_tf32 else "parallel"
    return "vmap"


class HASGD:
    """Hessian-Aware SGD around any torch optimizer.

    ``model``: the network (noise parametrizations attached to it are bypassed during
    training: HA-SGD draws its own perturbations), or a
    :class:`~torch.nn.parallel.DistributedDataParallel` wrapping it to split the ``L``
    passes over the wrapper's process group (module docstring); ``optimizer``: any optimizer over
    the model's parameters; ``noise``: a :class:`~xbarlab.nn.noise.NoiseModel` (q of
    Algorithm 1); ``samples``: L ≥ 0 (0 = plain training); ``generator``: a
    :class:`torch.Generator` on the weights' device; ``antithetic``: pairs ``±z``;
    ``mode``: one of :data:`MODES` (``"auto"``: see the module docstring);
    ``loss_fn(output, target)``: mean loss of a minibatch (default cross-entropy);
    ``bias``/``layers``: which tensors carry noise (see
    :func:`~xbarlab.nn.noise.noisy_tensors`); ``scaling``: the noise's reference magnitude
    (:class:`~xbarlab.nn.tile_noise.NoiseScaling`: LAYER, each tensor's max|w|, or TILE, per
    tile of ``mapping`` (a :class:`~xbarlab.devices.mapping.WeightMapping`, required) and
    ``tile`` (a :class:`~xbarlab.crossbar.tiling.TileConfig`; default 256 x 256) as the
    evaluation maps the layer, :mod:`xbarlab.nn.tile_noise`).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 noise: NoiseModel | None, *, samples: int, generator: torch.Generator | None,
                 antithetic: bool = False, mode: str = "auto",
                 loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
                 bias: bool = True, layers: Iterable[str] | None = None,
                 scaling: NoiseScaling | str = NoiseScaling.LAYER, mapping=None, tile=None):
        from ..enums import coerce_enum

        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
            raise ConfigError(f"samples (L) must be an integer >= 0, got {samples!r}")
        if mode not in MODES:
            raise ConfigError(f"mode {mode!r} is not one of {MODES}")
        if antithetic and samples % 2:
            raise ConfigError(f"antithetic pairs need an even number of samples, got L={samples}")
        self.group = None
        if isinstance(model, DistributedDataParallel):
            self.group, model = model.process_group, model.module
        #: this process's rank and the number of ranks the L passes are split over
        self.rank, self.world = ((0, 1) if self.group is None else
                                 (dist.get_rank(self.group), dist.get_world_size(self.group)))
        check_split(samples, self.world)
        #: passes this rank runs per step (L / ranks)
        self.passes = samples // self.world
        self.model, self.optimizer = model, optimizer
        self.samples, self.antithetic, self.mode, self.loss_fn = samples, antithetic, mode, loss_fn
        self.noise, self.generator = noise, generator
        self.scaling = coerce_enum(NoiseScaling, scaling, "scaling")
        self.mapping, self.tile = _tile_mapping(self.scaling, mapping, tile)
        self.steps = 0  # optimizer steps taken by step() (not counting CUDA-graph replays)
        self.targets: list[tuple[str, nn.Module, str]] = []
        if samples > 0:
            if noise is None:
                raise ConfigError("samples > 0 needs a noise model (samples=0 is plain training)")
            check_noise(noise)
            self.targets = noisy_tensors(model, bias=bias, layers=layers)
            if self.scaling is NoiseScaling.TILE:
                check_peak_support(noise)
            check_generator(generator, [base_tensor(m, t) for _, m, t in self.targets])
        self._bn = [(n, m) for n, m in model.named_modules()
                    if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """``{"optimizer", "generator", "steps"}``: what resuming the run needs besides the
        model's own ``state_dict()`` (optimizer state dict, generator state as a uint8
        tensor or None, steps taken)."""
        return {"optimizer": self.optimizer.state_dict(),
                "generator": None if self.generator is None else self.generator.get_state(),
                "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (into this optimizer and generator)."""
        missing = {"optimizer", "generator", "steps"} - set(state)
        if missing:
            raise ConfigError(f"HASGD state lacks {sorted(missing)}")
        if (state["generator"] is None) != (self.generator is None):
            raise ConfigError("HASGD state and this HASGD disagree on having a generator")
        self.optimizer.load_state_dict(state["optimizer"])
        if self.generator is not None:
            self.generator.set_state(state["generator"])
        self.steps = int(state["steps"])

    # ----------------------------------------------------------------- sampling
    def base_tensors(self) -> dict[str, Tensor]:
        """``{name: w}``: the clean tensors that carry noise (the trained parameters)."""
        return {n: base_tensor(m, t) for n, m, t in self.targets}

    def _fc_keys(self) -> dict[str, str]:
        """Name -> key for functional_call (the original tensor of a parametrized one)."""
        out = {}
        for n, m, t in self.targets:
            if parametrize.is_parametrized(m, t):
                prefix = n[: -len(t)]
                out[n] = f"{prefix}parametrizations.{t}.original"
            else:
                out[n] = n
        return out

    @torch.no_grad()
    def draw_perturbations(self) -> dict[str, Tensor]:
        """``{name: Δω}`` with shape ``(passes, *w.shape)``, drawn from the generator (constants).

        The generator draws the step's ``L`` perturbations; this rank keeps rows
        ``rank·passes … (rank+1)·passes − 1`` (all ``L`` on one process).
        """
        base = self.base_tensors()
        if not base:
            return {}
        L = self.samples
        n_draw = L // 2 if self.antithetic else L
        first = next(iter(base.values()))
        self.generator = generator_on(self.generator, first.device)
        tiled = self.scaling is NoiseScaling.TILE
        scales = self._tile_scales() if tiled else {}
        # draws per tensor: one per element; under TILE scaling one per bias row and output
        sizes = {n: (scales[n].n_bias_rows * w.numel() if n in scales and t == "bias"
                     else w.numel()) for (n, _, t), w in zip(self.targets, base.values(),
                                                             strict=True)}
        total = sum(sizes.values())
        # one randn call for every layer: cheap, and the same bits for the same seed
        z = torch.randn((n_draw, total), generator=self.generator, device=first.device,
                        dtype=first.dtype)
        if self.antithetic:
            z = torch.stack((z, -z), dim=1).reshape(L, total)
        if self.world > 1:
            L = self.passes
            z = z[self.rank * L:(self.rank + 1) * L]
        if tiled:
            return self._tiled_perturbations(base, scales, sizes, z)
        many = getattr(self.noise, "perturbations", None)
        if many is not None:  # fused path (GaussianNoise): a handful of kernels in all
            return dict(zip(base, many(list(base.values()), z), strict=True))
        out, off = {}, 0
        for n, w in base.items():
            zi = z[:, off:off + w.numel()].reshape(L, *w.shape)
            off += w.numel()
            out[n] = self.noise.perturbation(w.detach(), zi).to(w.dtype)
        return out

    def _tile_scales(self) -> dict[str, TileScales]:
        """``{tensor name: TileScales of its layer}`` (TILE scaling), from the clean tensors."""
        out, seen = {}, {}
        for n, m, _ in self.targets:
            key = id(m)
            if key not in seen:
                seen[key] = tile_scales(base_tensor(m, "weight"), base_tensor(m, "bias"),
                                        self.mapping, self.tile)
            out[n] = seen[key]
        return out

    def _tiled_perturbations(self, base, scales, sizes, z) -> dict[str, Tensor]:
        """Δω per tensor at the tile magnitudes (:mod:`xbarlab.nn.tile_noise`) from the
        columns of ``z`` (L, Σ sizes), tensor by tensor in the order of ``base``."""
        L = z.shape[0]
        out, off = {}, 0
        for (n, _, t), w in zip(self.targets, base.values(), strict=True):
            zi = z[:, off:off + sizes[n]]
            off += sizes[n]
            sc = scales[n]
            if t == "bias":
                d = bias_perturbation(self.noise, w, sc, zi.reshape(L, sc.n_bias_rows, -1))
            else:
                d = self.noise.perturbation(w.detach(), zi.reshape(L, *w.shape),
                                            peak=sc.weight).to(w.dtype)
            out[n] = d
        return out

    # ----------------------------------------------------------------- gradients
    def gradient(self, x: Tensor, y: Tensor, *, perturbations: dict[str, Tensor] | None = None
                 ) -> Tensor:
        """Accumulate the HA-SGD gradient into ``.grad`` (zero it first); return the mean loss.

        The loss is a detached 0-d tensor (no device synchronisation; ``float()`` it).
        On several ranks the gradient, the loss and the BatchNorm running statistics are
        the means over all ``L`` passes on every rank.

        ``perturbations``: ``{name: Δω of shape (passes, *w.shape)}`` to use instead of
        fresh draws (as returned by :meth:`draw_perturbations`).
        """
        loss = self._local_gradient(x, y, perturbations)
        if self.world > 1:
            loss = self._mean_over_ranks(loss)
        return loss

    def _local_gradient(self, x, y, perturbations) -> Tensor:
        if self.samples == 0:
            with noise_off(self.model):
                loss = self.loss_fn(self.model(x), y)
            loss.backward()
            return loss.detach()
        L = self.passes
        deltas = perturbations if perturbations is not None else self.draw_perturbations()
        mode = self.mode
        if mode == "auto":
            mode = _auto_mode(L, x)
        if mode == "vmap" and L > 1:
            return self._vmap(x, y, deltas)
        if mode == "parallel" and L > 1:
            return self._parallel(x, y, deltas)
        return self._sequential(x, y, deltas)

    @torch.no_grad()
    def _mean_over_ranks(self, loss: Tensor) -> Tensor:
        """All-reduce the gradients, ``loss`` and floating BatchNorm running statistics
        to their means over the ranks (one flat buffer per dtype: a sum, then ÷ ranks)."""
        ts = [p.grad for p in self.model.parameters() if p.grad is not None]
        if self.model.training:
            ts += [b for b in self._bn_buffers() if b.is_floating_point()]
        loss = loss.clone()
        ts.append(loss)
        for dtype in dict.fromkeys(t.dtype for t in ts):
            group = [t for t in ts if t.dtype == dtype]
            flat = torch.cat([t.reshape(-1) for t in group])
            dist.all_reduce(flat, group=self.group)
            flat.div_(self.world)
            torch._foreach_copy_(group, [v.view_as(t) for v, t in zip(
                flat.split([t.numel() for t in group]), group, strict=True)])
        return loss

    def step(self, x: Tensor, y: Tensor) -> Tensor:
        """One HA-SGD step on minibatch ``(x, y)``: zero grads, average gradient, optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.gradient(x, y)
        self.optimizer.step()
        self.steps += 1
        return loss

    def _sequential(self, x, y, deltas) -> Tensor:
        # Perturb the parameters in place and restore them from a copy afterwards: the
        # gradient is taken at w + Δω with respect to w, exactly as with functional_call,
        # at the cost of three fused (foreach) kernels instead of per-module swapping.
        L = self.passes
        base = self.base_tensors()
        names = list(base)
        ws = [base[n].detach() for n in names]
        bufs = self._bn_buffers() if self.model.training and L > 1 else []
        fl = [b for b in bufs if b.is_floating_point()]
        if bufs:
            start = [b.detach().clone() for b in bufs]
            acc = [torch.zeros_like(b) for b in fl]
        saved = self._saved_copy(ws)
        total = None
        try:
            with noise_off(self.model):
                for l in range(L):
                    if bufs and l:
                        torch._foreach_copy_(bufs, start)
                    with torch.no_grad():
                        if l:
                            torch._foreach_copy_(ws, saved)
                        torch._foreach_add_(ws, [deltas[n][l] for n in names])
                    loss = self.loss_fn(self.model(x), y)
                    (loss / L if L > 1 else loss).backward()
                    total = loss.detach() if total is None else total + loss.detach()
                    if fl:
                        torch._foreach_add_(acc, fl)
        finally:
            with torch.no_grad():
                torch._foreach_copy_(ws, saved)
        if fl:  # running stats: mean over the passes; integer counters as after one pass
            torch._foreach_copy_(fl, torch._foreach_div(acc, float(L)))
        return total / L if L > 1 else total

    def _saved_copy(self, ws: list[Tensor]) -> list[Tensor]:
        """Copies of ``ws`` in buffers kept between steps (one fused copy, no allocation)."""
        buf = getattr(self, "_saved", None)
        if buf is None or len(buf) != len(ws) or any(
                b.shape != w.shape or b.dtype != w.dtype or b.device != w.device
                for b, w in zip(buf, ws, strict=True)):
            buf = self._saved = [torch.empty_like(w) for w in ws]
        torch._foreach_copy_(buf, ws)
        return buf

    # ----------------------------------------------------------------- CUDA graphs
    def cuda_graph(self, x: Tensor, y: Tensor, *, warmup: int = 3
                   ) -> Callable[[Tensor, Tensor], Tensor]:
        """Capture one whole :meth:`step` in a CUDA graph; return ``step(x, y) -> loss``.

        On a fast GPU a small minibatch is bound by the CPU launching the few hundred
        kernels of each forward and backward pass, L times per step; replaying a graph
        removes that cost. ``x``, ``y``: an example minibatch on the GPU; its shapes and
        dtypes are fixed from then on. The returned callable copies its minibatch into
        static buffers, replays the draws, the L passes and the optimizer step, and
        returns the mean loss (a 0-d tensor overwritten by the next call).

        ``warmup`` (≥ 1) steps run first on a side stream (cuDNN autotuning, optimizer
        state); parameters, buffers, the generator state and the optimizer state are
        restored afterwards (state the warm-up created is zeroed in place: a fresh state
        for SGD and Adam), so capturing does not train. Needs an optimizer that can be
        captured (SGD; Adam/AdamW with ``capturable=True``) and a model without host
        synchronisation in its forward pass. Plain training is captured the same way
        (``samples=0``).
        """
        if self.optimizer.defaults.get("capturable") is False:
            raise ConfigError(f"{type(self.optimizer).__name__} must be created with "
                              "capturable=True to be captured in a CUDA graph")
        if self.generator is not None and x.is_cuda:
            self.generator = generator_on(self.generator, x.device)
        steps = self.steps
        tensors = [*self.model.parameters(), *self.model.buffers()]
        before = [t.detach().clone() for t in tensors]
        opt_before = {id(v): (v, v.detach().clone()) for st in self.optimizer.state.values()
                      for v in st.values() if isinstance(v, Tensor)}

        def restore():
            with torch.no_grad():
                torch._foreach_copy_([t.detach() for t in tensors], before)
                for st in self.optimizer.state.values():
                    for v in st.values():
                        if isinstance(v, Tensor):
                            if id(v) in opt_before:
                                v.copy_(opt_before[id(v)][1])
                            else:
                                v.zero_()
            before.clear()
            opt_before.clear()
            self.optimizer.zero_grad(set_to_none=True)

        def sequential_once(xb, yb):  # let cuDNN autotune without concurrent kernels
            self.mode = "sequential"
            self.step(xb, yb)
            self.mode = "parallel"

        # warm-up and capture in the same mode (cuDNN autotunes during the warm-up only);
        # in a graph the L streams of "parallel" overlap at no launch cost
        user_mode = self.mode
        if user_mode == "auto":
            self.mode = "parallel" if self.passes > 1 else "sequential"
        try:
            return capture_step(self.step, x, y, warmup=warmup, generator=self.generator,
                                restore=restore,
                                prewarm=sequential_once if self.mode == "parallel" else None)
        finally:
            self.mode = user_mode
            self.steps = steps  # warm-up and capture do not train

    def _parallel(self, x, y, deltas) -> Tensor:
        L = self.passes
        base = self.base_tensors()
        names, ws = list(base), list(base.values())
        wanted = [p for p in self.model.parameters() if p.requires_grad]
        keys = self._bn_keys() if self.model.training else {}
        fk = self._fc_keys()
        cuda = x.is_cuda
        if cuda:
            cur = torch.cuda.current_stream(x.device)
            self._branch_streams(L, x.device, cur)
        grads, losses, bufs = [], [], []
        for l in range(L):
            st = self._streams[l % len(self._streams)] if cuda else None
            ctx = torch.cuda.stream(st) if cuda else contextlib.nullcontext()
            if cuda:
                st.wait_stream(cur)
            with ctx:
                p = dict(zip([fk[n] for n in names],
                             torch._foreach_add(ws, [deltas[n][l] for n in names]), strict=True))
                b = {k: t.detach().clone() for k, t in keys.items()}
                with noise_off(self.model):
                    loss = self.loss_fn(functional_call(self.model, {**p, **b}, (x,)), y)
                with warnings.catch_warnings():  # the streams differ on purpose
                    warnings.filterwarnings("ignore", message=".*AccumulateGrad node's stream")
                    grads.append(torch.autograd.grad(loss, wanted, allow_unused=True))
                losses.append(loss.detach())
                bufs.append(b)
        if cuda:
            for st in self._streams[:L]:
                cur.wait_stream(st)
            for t in [*losses, *(g for gs in grads for g in gs if g is not None),
                      *(v for b in bufs for v in b.values())]:
                t.record_stream(cur)
        with torch.no_grad():
            for i, p in enumerate(wanted):
                gs = [g[i] for g in grads if g[i] is not None]
                if not gs:
                    continue
                mean = torch.stack(gs).sum(0) / L
                p.grad = mean if p.grad is None else p.grad + mean
            for k, t in keys.items():
                vals = [b[k] for b in bufs]
                t.copy_(torch.stack(vals).mean(0) if t.is_floating_point() else vals[0])
        return torch.stack(losses).mean()

    def _branch_streams(self, L: int, device, current) -> None:
        """Keep ``self._streams``: L CUDA streams, distinct from each other and from
        ``current``. torch hands out pool streams round-robin, so two requests can return
        the same CUDA stream, which would serialise two passes (in a CUDA graph too)."""
        have = getattr(self, "_streams", [])
        ptrs = {s.cuda_stream for s in have[:L]}
        if len(have) >= L and len(ptrs) == L and current.cuda_stream not in ptrs:
            return
        seen, streams = {current.cuda_stream}, []
        for _ in range(128):  # the pool holds 32 streams per priority
            s = torch.cuda.Stream(device)
            if s.cuda_stream not in seen:
                seen.add(s.cuda_stream)
                streams.append(s)
                if len(streams) == L:
                    break
        self._streams = streams  # fewer than L only for L > 31: then passes share streams

    def _bn_keys(self) -> dict[str, Tensor]:
        out = {}
        for name, m in self._bn:
            for b in ("running_mean", "running_var", "num_batches_tracked"):
                t = getattr(m, b, None)
                if t is not None:
                    out[f"{name}.{b}" if name else b] = t
        return out

    def _vmap(self, x, y, deltas) -> Tensor:
        L = self.passes
        base = self.base_tensors()
        fk = self._fc_keys()
        params = {fk[n]: w + deltas[n] for n, w in base.items()}  # (L, ...), grads flow to w
        bufs = {}
        if self.model.training:
            for name, m in self._bn:
                for b in ("running_mean", "running_var", "num_batches_tracked"):
                    t = getattr(m, b, None)
                    if t is not None:
                        key = f"{name}.{b}" if name else b
                        bufs[key] = t.detach().unsqueeze(0).expand(L, *t.shape).clone()
        model, loss_fn = self.model, self.loss_fn

        def one(p, bf):
            return loss_fn(functional_call(model, {**p, **bf}, (x,)), y)

        with noise_off(model):
            losses = vmap(one, in_dims=(0, 0), randomness="different")(params, bufs)
        losses.mean().backward()
        with torch.no_grad():
            for name, m in self._bn:
                for b in ("running_mean", "running_var", "num_batches_tracked"):
                    key = f"{name}.{b}" if name else b
                    if key in bufs:
                        t = getattr(m, b)
                        new = bufs[key]
                        t.copy_(new.mean(0) if t.is_floating_point() else new[0])
        return losses.detach().mean()

    def _bn_buffers(self) -> list[Tensor]:
        out = []
        for _, m in self._bn:
            for b in ("running_mean", "running_var", "num_batches_tracked"):
                t = getattr(m, b, None)
                if t is not None:
                    out.append(t)
        return out
