"""Point functions a study file can name (``[study] kind``), with their settings.

Each kind declares its settings (name, type, unit, default, allowed range), a ``check``
that builds everything a point needs without running it (so a study is refused before
any work starts), and the point function ``run(settings, rng) -> {metric: value}``.

``crossbar``
    One n x n array of the crossbar study (:mod:`xbarlab.crossbar.study`): random weights
    programmed through a device model, read at ``time``, driven through an optional DAC,
    solved with wire and driver resistances, digitized by an ADC; metrics the relative
    output errors ``ir_drop``, ``adc_max``, ``adc_cal``, ``device`` and ``total`` [1].
    ``programming`` is an index: points that differ only in it are independent
    programmings (chips) of the same configuration.
``calibration-bootstrap``
    One bootstrap replicate of a calibration fit (:func:`xbarlab.calibration.fitting.fit`):
    the devices of the measurements file ``data`` resampled with replacement within each
    level (the level column, else the programming target, else all devices as one group),
    then fitted without a bootstrap of its own; metrics the fitted parameters read at the
    conductance ``g``: programming ``bias`` and ``spread`` [S], power-law ``mu_nu``,
    ``sigma_nu``, ``q_read`` [1] and ``t0`` [s] (NaN where the fit has no such block).
    ``replicate`` is an index: a study over it gives the bootstrap distribution. Each
    replicate draws from its own point generator, so the replicates are not the draws of
    ``xbarlab calibrate``'s one sequential stream; they resample the same way.
``train-evaluate``
    A network trained (:func:`xbarlab.nn.train.train`, one torch thread, deterministic
    algorithms) on ``dataset`` with ``model``, ``epochs``, training noise ``sigma`` and
    ``samples`` noise passes per step (0: plain training), training seed ``seed``; then
    programmed once onto ``device`` and read at ``time`` (:func:`xbarlab.nn.evaluate.
    evaluate`, statistical mode, compensation ``compensation``), with a signed
    ``adc_bits``-bit ADC after every layer (0: none; ranges from the clean network on the
    training split). ``programming`` is an index: points that differ only in it are chips of
    the same trained network (a worker keeps its last trained networks). Metrics
    ``clean_accuracy`` (digital, without ADC) and ``accuracy`` (the chip) [1].
``draw``
    ``samples`` standard normal draws of the point's generator; metrics their ``mean`` and
    ``std`` [1]. A check of the machinery (seeds, cluster, caching) that costs nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

__all__ = ["Setting", "Kind", "KINDS", "get_kind", "check_value", "resample_devices"]


@dataclass(frozen=True)
class Setting:
    """One setting of a point kind."""

    #: Its name in a study file and in results.csv.
    name: str
    #: ``"float"``, ``"int"``, ``"str"``, ``"path"`` (a file, relative to the study file),
    #: ``"duration"`` (s) or ``"conductance"`` (S, or a word of ``choices``).
    type: str
    #: Its value when a study does not give one (SI units).
    default: int | float | str
    #: Unit of the value in SI ("s", "Ohm", "S", "V", "1").
    unit: str
    #: What it is.
    doc: str
    #: Inclusive bounds of a number, (lo, hi); None for unbounded.
    bounds: tuple[float | None, float | None] = (None, None)
    #: Allowed words (a "str" setting, or the words a "conductance" setting also takes).
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kind:
    """A point kind: its settings, metrics, check and point function."""

    #: Its name in a study file (``[study] kind``).
    name: str
    #: The settings a point of this kind has, with their defaults.
    settings: tuple[Setting, ...]
    #: The metrics its points return, in the order results.csv lists them.
    metrics: tuple[str, ...]
    #: ``check(settings)``: raises ConfigError when a point cannot be built.
    check: Callable[[Mapping], None]
    #: ``run(settings, rng) -> {metric: value}``: the point function.
    run: Callable[[Mapping, np.random.Generator], dict]

    def defaults(self) -> dict:
        """Setting name -> default value."""
        return {s.name: s.default for s in self.settings}

    def setting(self, name: str) -> Setting:
        """The setting called ``name``; ConfigError listing the valid ones otherwise."""
        for s in self.settings:
            if s.name == name:
                return s
        raise ConfigError(f"unknown setting {name!r} for kind {self.name!r}; valid settings: "
                          + ", ".join(s.name for s in self.settings))


# ------------------------------------------------------------------------------ crossbar

_CROSSBAR_SETTINGS = (
    Setting("device", "str", "pcm-ibm-2020", "1",
            "device preset name or device-model file (a path relative to the study file)"),
    Setting("time", "duration", 3600.0, "s", "read time after programming", (0.0, None)),
    Setting("n", "int", 64, "1", "array size (n x n, n/2 differential column pairs; even)",
            (2, 4096)),
    Setting("vectors", "int", 16, "1", "input vectors per array", (1, 100000)),
    Setting("r_wire", "float", 1.0, "Ohm", "wire resistance per segment, rows and columns",
            (0.0, None)),
    Setting("r_driver", "float", 0.0, "Ohm", "output resistance of each row driver",
            (0.0, None)),
    Setting("v_max", "float", 0.2, "V", "full-scale row voltage", (0.0, None)),
    Setting("dac_bits", "int", 0, "1", "DAC resolution (signed); 0 = ideal inputs", (0, 24)),
    Setting("adc_bits", "int", 8, "1", "ADC resolution (signed)", (2, 24)),
    Setting("adc_range", "str", "calibrated", "1",
            "ADC range that 'total' includes: calibrated (99.9th percentile of |I|) or "
            "max-possible", choices=("calibrated", "max-possible")),
    Setting("g_min", "conductance", "model", "S",
            "conductance of weight 0 ('model': the device model's lower bound)", (0.0, None),
            choices=("model",)),
    Setting("g_max", "conductance", "model", "S",
            "conductance of max|W| ('model': the device model's upper bound)", (0.0, None),
            choices=("model",)),
    Setting("programming", "int", 0, "1",
            "index of the programming (chip): its own seed, nothing else", (0, None)),
)


@functools.lru_cache(maxsize=8)
def _device(name: str):
    from .. import devices

    return devices.load(name)


def _crossbar_parts(s: Mapping):
    """The device model, weight mapping, wires, DAC and ADC bits of a crossbar point."""
    from ..crossbar.converters import ADC, DAC
    from ..crossbar.grid import WireParams
    from ..crossbar.study import study_mapping
    from ..devices.mapping import mapping_for

    if not s["v_max"] > 0:
        raise ConfigError(f"v_max must be > 0 V, got {s['v_max']!r}")
    if s["n"] % 2:
        raise ConfigError(f"n must be even (differential column pairs), got {s['n']}")
    device = _device(s["device"])
    vt = getattr(device, "valid_times", None)
    if vt is not None and not (vt[0] <= s["time"] <= vt[1]):
        raise ConfigError(f"time {s['time']:g} s is outside the device model's valid range "
                          f"[{vt[0]:g}, {vt[1]:g}] s")
    g = {k: None if s[k] == "model" else s[k] for k in ("g_min", "g_max")}
    mapping = study_mapping(device, mapping_for(device, **g))
    dac = DAC(bits=s["dac_bits"], v_max=s["v_max"], signed=False) if s["dac_bits"] else None
    ADC(bits=s["adc_bits"])  # validates the bits
    wires = WireParams(r_row=s["r_wire"], r_col=s["r_wire"], r_driver=s["r_driver"])
    return device, mapping, wires, dac


def _crossbar_check(settings: Mapping) -> None:
    _crossbar_parts(settings)


def _crossbar_run(settings: Mapping, rng: np.random.Generator) -> dict:
    from ..crossbar.study import array_errors, draw_arrays

    s = settings
    device, mapping, wires, dac = _crossbar_parts(s)
    tgt, G, x = draw_arrays(device, mapping, s["n"], s["vectors"], s["time"], rng)
    v_exact = x * s["v_max"]
    v = v_exact if dac is None else dac.voltages(x)
    e = array_errors(tgt, G, v, wires, adc_bits=s["adc_bits"], v_max=s["v_max"],
                     adc_range=s["adc_range"], v_exact=v_exact)
    return {k: e[k] for k in _CROSSBAR_METRICS}


_CROSSBAR_METRICS = ("ir_drop", "adc_max", "adc_cal", "device", "total")

# ----------------------------------------------------------------- calibration-bootstrap

_BOOT_SETTINGS = (
    Setting("data", "path", "", "1", "measurements file (a path relative to the study file)"),
    Setting("drift", "str", "power-law", "1", "drift fit: power-law or none",
            choices=("power-law", "none")),
    Setting("family", "str", "auto", "1", "programming-error family",
            choices=("auto", "normal", "bounded", "student-t", "mixture")),
    Setting("min_devices", "int", 20, "1", "levels with fewer devices are skipped",
            (2, None)),
    Setting("g", "conductance", "median", "S",
            "conductance the fitted curves are read at ('median': the median programming "
            "target, or first read, of the data)", (0.0, None), choices=("median",)),
    Setting("replicate", "int", 0, "1",
            "index of the bootstrap replicate: its own seed, nothing else", (0, None)),
)
_BOOT_METRICS = ("bias", "spread", "mu_nu", "sigma_nu", "q_read", "t0")


def _measurements(path: str) -> dict:
    """The measurement table of the file ``path``, read once per worker for as long as the
    file is unchanged: cached under its absolute path, modification time and size, so a
    relative path read from another folder, or a file written anew, is read again."""
    import os

    if not path:
        raise ConfigError("setting 'data' must name a measurements file, got ''")
    full = os.path.abspath(path)
    try:
        st = os.stat(full)
    except OSError:  # the reader names the missing or unreadable file
        return _measurements_of.__wrapped__(full, 0, 0)
    return _measurements_of(full, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4)
def _measurements_of(full: str, mtime_ns: int, size: int) -> dict:
    from .. import formats
    from ..calibration import tables

    return tables.columns(formats.read_measurements(full))


def resample_devices(cols: Mapping, rng: np.random.Generator) -> dict:
    """One bootstrap resample of a measurement table: devices drawn with replacement
    within each level (the ``level`` column, else ``g_target`` [S], else one group), all
    rows of a drawn device kept, drawn devices numbered anew (role -> array, as
    :func:`xbarlab.calibration.tables.columns` gives)."""
    inv = np.unique(cols["device"], return_inverse=True)[1].ravel()
    n_dev = int(inv.max()) + 1
    group_col = cols["level"] if cols["level"] is not None else cols["g_target"]
    group = np.zeros(n_dev)
    if group_col is not None:
        group[inv] = np.asarray(group_col, dtype=np.float64)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(n_dev + 1))
    chosen = []
    for value in np.unique(group):
        ix = np.flatnonzero(group == value)
        chosen.append(ix[rng.integers(0, ix.size, ix.size)])
    chosen = np.concatenate(chosen)
    rows = [order[bounds[d]:bounds[d + 1]] for d in chosen]
    take = np.concatenate(rows)
    out = {r: None if v is None else np.asarray(v)[take] for r, v in cols.items()}
    out["device"] = np.repeat(np.arange(chosen.size), [r.size for r in rows])
    return out


def _boot_check(settings: Mapping) -> None:
    _measurements(settings["data"])


def _boot_run(settings: Mapping, rng: np.random.Generator) -> dict:
    from ..calibration.fitting import fit
    from ..devices.fitted import FittedPowerLaw, FittedProgramming

    s = settings
    cols = _measurements(s["data"])
    g = s["g"]
    if g == "median":
        g = float(np.median(cols["g_target"] if cols["g_target"] is not None else cols["g"]))
    model = fit(resample_devices(cols, rng), drift=s["drift"], family=s["family"],
                min_devices=s["min_devices"], n_boot=0, rng=rng)
    out = dict.fromkeys(_BOOT_METRICS, math.nan)
    if isinstance(model.programming, FittedProgramming):
        out["bias"] = float(model.programming.bias(g))
        out["spread"] = float(model.programming.spread(g))
    if isinstance(model.drift_law, FittedPowerLaw):
        d = model.drift_law
        out.update(mu_nu=float(d.mu_nu(g)), sigma_nu=float(d.sigma_nu(g)),
                   q_read=float(d.q_read(g)), t0=float(d.t0))
    return out


# ------------------------------------------------------------------------ train-evaluate

_NET_SETTINGS = (
    Setting("dataset", "str", "digits", "1", "dataset", choices=("digits", "mnist5k",
                                                                 "mnist1d")),
    Setting("model", "str", "mlp", "1", "network", choices=("mlp", "cnn", "resnet")),
    Setting("epochs", "int", 1, "1", "training epochs", (1, 10000)),
    Setting("sigma", "float", 0.0, "1", "training noise (relative to each layer's max|w|)",
            (0.0, None)),
    Setting("samples", "int", 0, "1", "noise passes per training step (0: plain training)",
            (0, 1000)),
    Setting("seed", "int", 0, "1", "training seed (the network)", (0, 2**63 - 1)),
    Setting("device", "str", "pcm-ibm-2020", "1",
            "device preset name or device-model file (a path relative to the study file)"),
    Setting("time", "duration", 3600.0, "s", "read time after programming", (0.0, None)),
    Setting("adc_bits", "int", 0, "1", "ADC after every layer (signed); 0 = none", (0, 24)),
    Setting("compensation", "str", "global", "1", "drift compensation",
            choices=("none", "global", "column")),
    Setting("programming", "int", 0, "1",
            "index of the programming (chip): its own seed, nothing else", (0, None)),
)


@functools.lru_cache(maxsize=2)
def _trained(dataset: str, model: str, epochs: int, sigma: float, samples: int, seed: int):
    """The trained network and its dataset (kept per worker for the next chips)."""
    from ..nn.data import load_dataset, model_config
    from ..nn.noise import GaussianNoise
    from ..nn.train import deterministic_algorithms, torch_threads, train

    data = load_dataset(dataset)
    noise = GaussianNoise(sigma) if samples else None
    with deterministic_algorithms(), torch_threads(1):
        res = train(data, model_config(model, data), noise=noise, samples=samples,
                    epochs=epochs, seed=seed)
    return res.model, data


def _net_check(settings: Mapping) -> None:
    if settings["samples"] == 0 and settings["sigma"] != 0:
        raise ConfigError(f"sigma {settings['sigma']:g} needs samples >= 1 (samples = 0 is "
                          "plain training)")
    _device(settings["device"])


def _net_run(settings: Mapping, rng: np.random.Generator) -> dict:
    import copy

    from ..nn.evaluate import EvaluationSettings, evaluate
    from ..nn.quant import attach_adc, calibrate_adc_ranges
    from ..nn.train import accuracy, deterministic_algorithms, torch_threads

    s = settings
    net, data = _trained(s["dataset"], s["model"], s["epochs"], s["sigma"], s["samples"],
                         s["seed"])
    st = EvaluationSettings(times=(s["time"],), programmings=1,
                            compensations=(s["compensation"],))
    with deterministic_algorithms(), torch_threads(1):
        variants = None
        if s["adc_bits"]:
            adc = attach_adc(copy.deepcopy(net), bits=s["adc_bits"],
                             ranges=calibrate_adc_ranges(net, [data.x_train]))
            variants = {"adc": adc}
        ev = evaluate(net, data.x_test, data.y_test, _device(s["device"]), st, rng,
                      x_cal=data.x_train, variants=variants)
        clean = accuracy(net, data.x_test, data.y_test)
    want = "adc" if s["adc_bits"] else None
    found = [r for r in ev["results"] if r.get("variant") == want]
    return {"clean_accuracy": float(clean), "accuracy": float(found[0]["accuracy_mean"])}


# ---------------------------------------------------------------------------------- draw

_DRAW_SETTINGS = (
    Setting("samples", "int", 16, "1", "standard normal draws", (1, 10**7)),
    Setting("index", "int", 0, "1", "index of the point: its own seed, nothing else",
            (0, None)),
)


def _draw_check(settings: Mapping) -> None:
    return None


def _draw_run(settings: Mapping, rng: np.random.Generator) -> dict:
    z = rng.standard_normal(settings["samples"])
    return {"mean": float(z.mean()), "std": float(z.std())}


#: The point kinds, by name.
KINDS: dict[str, Kind] = {
    "crossbar": Kind("crossbar", _CROSSBAR_SETTINGS, _CROSSBAR_METRICS, _crossbar_check,
                     _crossbar_run),
    "draw": Kind("draw", _DRAW_SETTINGS, ("mean", "std"), _draw_check, _draw_run),
    "calibration-bootstrap": Kind("calibration-bootstrap", _BOOT_SETTINGS, _BOOT_METRICS,
                                  _boot_check, _boot_run),
    "train-evaluate": Kind("train-evaluate", _NET_SETTINGS, ("clean_accuracy", "accuracy"),
                           _net_check, _net_run),
}


def get_kind(name: str) -> Kind:
    """The :class:`Kind` called ``name``; ConfigError listing the kinds otherwise."""
    if name not in KINDS:
        raise ConfigError(f"unknown study kind {name!r}; valid kinds: {', '.join(KINDS)}")
    return KINDS[name]


def check_value(setting: Setting, value) -> int | float | str:
    """``value`` (already in SI units) checked against ``setting``: its type, bounds and
    choices; ConfigError naming the setting and the value otherwise."""
    from ..checks import check_number

    if setting.type in ("str", "path") or (setting.type == "conductance"
                                           and isinstance(value, str)):
        if not isinstance(value, str) or (setting.choices and value not in setting.choices):
            what = (f"one of {', '.join(repr(c) for c in setting.choices)}" if setting.choices
                    else "a string")
            raise ConfigError(f"setting {setting.name!r} must be {what}, got {value!r}")
        return value
    lo, hi = setting.bounds
    integer = setting.type == "int"
    if integer and isinstance(value, float) and value.is_integer():
        value = int(value)
    v = check_number(value, what=f"setting {setting.name!r}", integer=integer, lo=lo, hi=hi)
    if not integer and not math.isfinite(v):
        raise ConfigError(f"setting {setting.name!r} must be finite, got {value!r}")
    return v
