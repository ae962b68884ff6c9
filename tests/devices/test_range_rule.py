"""The one weight-to-conductance range rule (``devices.mapping.mapping_for``)."""

import dataclasses
import math

import pytest
from xbarlab.devices.mapping import Scaling, Scheme, WeightMapping, device_range, mapping_for
from xbarlab.errors import ConfigError


class _Dev:
    """A stand-in device: only the range attributes the rule reads."""

    def __init__(self, g_range, g_fit=None):
        self.g_range = g_range
        if g_fit is not None:
            self.g_fit = g_fit


def test_defaults_are_the_device_range():
    """No g_min/g_max: the device's g_range ends, exactly."""
    m = mapping_for(_Dev((1e-6, 25e-6)))
    assert (m.g_min, m.g_max) == (1e-6, 25e-6)
    assert m == WeightMapping(g_max=25e-6, g_min=1e-6)


def test_fitted_range_narrows_the_accepted_range():
    """A fitted model accepts any g >= 0 but its data cover 0.3-2.5 uS: that is the range."""
    dev = _Dev((0.0, math.inf), g_fit=(0.3e-6, 2.5e-6))
    assert device_range(dev) == (0.3e-6, 2.5e-6)
    m = mapping_for(dev)
    assert (m.g_min, m.g_max) == (0.3e-6, 2.5e-6)
    with pytest.raises(ConfigError, match="does not cover"):
        mapping_for(dev, g_max=5e-6)
    assert mapping_for(dev, g_max=5e-6, allow_extrapolation=True).g_max == 5e-6


def test_unbounded_range_needs_g_max():
    """An ideal device (no upper bound) refuses a default g_max, accepts an explicit one."""
    with pytest.raises(ConfigError, match="no finite upper bound"):
        mapping_for(_Dev((0.0, math.inf)))
    assert mapping_for(_Dev((0.0, math.inf)), g_max=1e-4).g_max == 1e-4


def test_fields_pass_through_and_unknown_fields_fail():
    """Scheme, scaling and pairs reach the WeightMapping; a misspelt field is refused."""
    m = mapping_for(_Dev((0.0, 1e-5)), scheme="reference", scaling="column")
    assert m.scheme is Scheme.REFERENCE and m.scaling is Scaling.COLUMN
    with pytest.raises(ConfigError, match="unknown WeightMapping fields"):
        mapping_for(_Dev((0.0, 1e-5)), n_pair=2)


def test_bad_ranges():
    """g_min >= g_max, a negative g_min: one-line ConfigErrors."""
    with pytest.raises(ConfigError, match="0 <= g_min < g_max"):
        mapping_for(_Dev((0.0, 1e-5)), g_min=5e-6, g_max=5e-6)
    with pytest.raises(ConfigError):
        mapping_for(_Dev((0.0, 1e-5)), g_min=-1e-6)


# ------------------------------------------------------------- the rule has one home


def _range_reads(tree) -> list[int]:
    """Line numbers where ``tree`` reads a model's ``g_range``/``g_fit``: ``x.g_range``,
    ``getattr(x, "g_fit")``, ``x["g_range"]``. Passing a model's range on unchanged to another
    model (``g_range=model.g_range``) defines that model and is not counted."""
    import ast

    names = {"g_range", "g_fit"}
    passed_on = {id(k.value) for node in ast.walk(tree) if isinstance(node, ast.Call)
                 for k in node.keywords
                 if isinstance(k.value, ast.Attribute) and k.value.attr == k.arg in names}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in names and id(node) not in passed_on:
            lines.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in names):
            lines.append(node.lineno)
        elif (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
              and node.slice.value in names):
            lines.append(node.lineno)
    return lines


def test_range_is_read_only_through_device_range():
    """Outside devices/ (where the models define g_range and g_fit) no module of the package
    reads a model's g_range or g_fit: every weight-mapping range comes from
    devices.mapping.device_range / mapping_for. The scan itself finds a read."""
    import ast
    from pathlib import Path

    import xbarlab

    assert _range_reads(ast.parse("lo, hi = getattr(dev, 'g_range')\nf = dev.g_fit\n"
                                  "m = Model(g_range=dev.g_range)")) == [1, 2]
    root = Path(xbarlab.__file__).resolve().parent
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if (rel.parts[0] in ("devices", "tests", "build", "dist", "data", "venv")
                or rel.parts[0].startswith(".") or rel.parts[0].endswith(".egg-info")):
            continue
        found += [f"{rel}:{n}" for n in _range_reads(ast.parse(path.read_text("utf-8")))]
    assert found == [], found


# ------------------------------------------- one mapping reaches every consumer


class _Spy:
    """An ideal device on 0..30 uS that records the lowest and highest target it is given."""

    def __init__(self):
        from xbarlab.devices import IdealDevice

        self.inner = IdealDevice(g_max=30e-6)
        self.g_range = self.inner.g_range
        self.lo, self.hi = math.inf, -math.inf

    def program(self, g, rng):
        import numpy as np

        a = np.asarray(g, dtype=np.float64)
        if a.size:
            self.lo, self.hi = min(self.lo, float(a.min())), max(self.hi, float(a.max()))
        return self.inner.program(g, rng)

    def read(self, state, t, rng):
        return self.inner.read(state, t, rng)

    def drift(self, state, t):
        return self.inner.drift(state, t)

    def sample(self, g, t, rng, *, dtype=None):
        return self.read(self.program(g, rng), t, rng)

    def reached(self, m) -> bool:
        """The targets spanned exactly the mapping's g_min..g_max (g_max to rounding)."""
        return self.lo == m.g_min and math.isclose(self.hi, m.g_max, rel_tol=1e-12)


_GIVEN = [WeightMapping(g_max=20e-6, g_min=1e-6),
          WeightMapping(g_max=20e-6, g_min=1e-6, scheme="reference")]


@pytest.mark.parametrize("m", _GIVEN, ids=["differential", "reference"])
def test_one_mapping_reaches_study_export_tiling_evaluation(m):
    """One WeightMapping on 1..20 uS (the device model accepts 0..30 uS, so its own range
    would give other targets) given to the crossbar study, the noise export, a tiled matrix
    and the evaluation: each programs targets spanning exactly g_min..g_max and records the
    mapping itself. The study, whose arrays hold one differential pair per weight, refuses
    the reference scheme with a ConfigError."""
    import numpy as np
    import torch
    from torch import nn
    from xbarlab.crossbar.study import StudyConfig, run_study
    from xbarlab.crossbar.tiling import TileConfig, TiledMatrix
    from xbarlab.nn.evaluate import EvaluationSettings, evaluate
    from xbarlab.nn.export import export_noise

    rng = np.random.default_rng(0)
    dev = _Spy()
    if m.scheme is Scheme.DIFFERENTIAL:
        run_study(dev, StudyConfig(sizes=(8,), r_wire=(0.0,), vectors=2), mapping=m,
                  progress=False)
        assert dev.reached(m)
    else:
        with pytest.raises(ConfigError, match="differential"):
            run_study(dev, StudyConfig(sizes=(8,), r_wire=(0.0,), vectors=2), mapping=m,
                      progress=False)

    dev = _Spy()
    tab = export_noise(dev, [1.0], rng, mapping=m, w_grid=np.linspace(-1, 1, 5),
                       n_samples=100)
    assert tab.mapping == m and (tab.g_min, tab.g_max) == (m.g_min, m.g_max) and dev.reached(m)

    W = np.array([[1.0, -1.0, 0.5], [0.0, 0.25, -0.75]])
    dev = _Spy()
    tm = TiledMatrix(W, device=dev, rng=rng, mapping=m, tile=TileConfig(rows=8, cols=8))
    assert tm.mapping is m and dev.reached(m)

    dev = _Spy()
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(W, dtype=torch.float32))
    x = torch.rand(4, 3, generator=torch.Generator().manual_seed(0))
    ev = evaluate(nn.Sequential(lin), x, torch.zeros(4, dtype=torch.long), dev,
                  EvaluationSettings(times=(1.0,), programmings=1, compensations=("none",),
                                     tile=TileConfig(rows=8, cols=8), mapping=m), rng)
    assert WeightMapping.from_dict(ev["settings"]["mapping"]) == m and dev.reached(m)


def test_consumers_default_to_mapping_for_and_refuse_outside_the_range():
    """Without a mapping the study, export, tiling and evaluation use mapping_for(device):
    for a device on 0..30 uS their targets span exactly 0..30 uS. A mapping beyond the range
    (40 uS) is refused by each unless allow_extrapolation."""
    import numpy as np
    import torch
    from torch import nn
    from xbarlab.crossbar.study import StudyConfig, run_study
    from xbarlab.crossbar.tiling import TileConfig, TiledMatrix
    from xbarlab.nn.evaluate import EvaluationSettings, evaluate
    from xbarlab.nn.export import export_noise

    rng = np.random.default_rng(0)
    default = mapping_for(_Spy())
    assert (default.g_min, default.g_max) == (0.0, 30e-6)
    wide = WeightMapping(g_max=40e-6)
    study = StudyConfig(sizes=(8,), r_wire=(0.0,), vectors=2)
    W = np.array([[1.0, -1.0, 0.5], [0.0, 0.25, -0.75]])
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(W, dtype=torch.float32))
    x, y = torch.rand(4, 3, generator=torch.Generator().manual_seed(0)), torch.zeros(4).long()
    st = EvaluationSettings(times=(1.0,), programmings=1, compensations=("none",),
                            tile=TileConfig(rows=8, cols=8))
    runs = [lambda d, **k: run_study(d, study, progress=False, **k),
            lambda d, **k: export_noise(d, [1.0], rng, w_grid=np.linspace(-1, 1, 3),
                                        n_samples=100, **k),
            lambda d, **k: TiledMatrix(W, device=d, rng=rng, tile=TileConfig(rows=8, cols=8),
                                       **k),
            lambda d, **k: evaluate(nn.Sequential(lin), x, y, d,
                                    dataclasses.replace(st, **k), rng)]
    for run in runs:
        dev = _Spy()
        run(dev)
        assert dev.reached(default)
        with pytest.raises(ConfigError, match="does not cover the mapping"):
            run(_Spy(), mapping=wide)
        # the spy's ideal inner device refuses targets above 30 uS: past the check, it programs
        with pytest.raises(ConfigError, match="must lie in"):
            run(_Spy(), mapping=wide, allow_extrapolation=True)
