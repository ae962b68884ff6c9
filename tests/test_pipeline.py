"""``xbarlab run`` (xbarlab/pipeline.py): end to end on a tiny config, resume after kill -9,
exact invalidation of changed settings, config validation.

The tiny data set is drawn from the pcm-ibm-2020 preset (8 levels x 25 cells, reads at
1 s, 100 s, 10^4 s), the network is the digits MLP trained 1 epoch; a whole run takes a
few seconds after the imports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from xbarlab import pipeline as P
from xbarlab.errors import ConfigError, OutputExistsError

ALL = [s.name for s in P.STAGES]

TINY = """
seed = 3
threads = 1
[data]
files = ["tiny.csv"]
[calibrate]
n_boot = 4
min_devices = 10
[crossbar]
sizes = [8]
r_wire = [1.0]
vectors = 2
[noise]
times = ["1h", "1d"]
samples = 200
grid = 5
[train]
epochs = 1
samples = 2
train_time = "1d"
subset = 160
[evaluate]
times = ["1s", "1d"]
programmings = 1
[report]
title = "tiny"
"""


def _tiny_data(path: Path, seed: int = 1) -> None:
    from xbarlab import devices
    from xbarlab.formats import Measurements, write_measurements

    model = devices.load("pcm-ibm-2020")
    targets = 25e-6 * np.arange(1, 9) / 8
    level = np.repeat(np.arange(8), 25)
    tp = np.array([1.0, 100.0, 1e4])
    rng = np.random.default_rng(seed)
    reads = model.read(model.program(targets[level], rng), tp, rng)
    n = level.size
    dev = np.repeat(np.arange(n), tp.size)
    t = np.tile(tp, n)
    m = Measurements(g=reads.T.ravel(), device=dev, time=t, time_point=t,
                     g_target=targets[level][dev], level=level[dev])
    write_measurements(path, m, overwrite=True)


def _setup(folder: Path, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _tiny_data(folder / "tiny.csv")
    cfg = folder / "tiny.toml"
    cfg.write_text(TINY + extra, encoding="utf-8")
    return cfg


def _run(cfg_path: Path, out: Path, **kw) -> dict:
    cfg, _ = P.load_config(cfg_path)
    return P.run_pipeline(cfg, out, progress=False, echo=lambda s: None, **kw)


def _events(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / P.LOG_NAME).read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One finished tiny run: (config path, OUT)."""
    root = tmp_path_factory.mktemp("pipeline")
    cfg = _setup(root)
    out = root / "out"
    res = _run(cfg, out)
    assert res["status"] == {s: "ran" for s in ALL}
    return cfg, out


def test_end_to_end_report(tiny_run):
    """A tiny run writes every stage folder with its completion marker and a report whose
    HTML embeds every plot inline: report.html holds exactly as many base64 PNGs as
    report.md links plots (>= 4: KS map, crossbar error, noise, accuracy vs time), and the
    numbers in the report are those of the stage outputs (the HA-SGD clean accuracy)."""
    cfg, out = tiny_run
    for s in ALL:
        mk = json.loads((out / s / P.MARKER).read_text())
        assert mk["stage"] == s and len(mk["key"]) == 64
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    n_links = md.count("](report/plots/")
    assert n_links >= 4
    assert html.count('src="data:image/png;base64,') == n_links
    for name in ("crossbar_error.png", "noise.png", "accuracy_vs_time.png"):
        assert (out / "report" / "plots" / name).is_file()
    acc = json.loads((out / "train-hasgd" / "metrics.json").read_text())["clean_accuracy"]
    assert f"{acc:.4f}" in md
    ev = json.loads((out / "evaluate" / "evaluation.json").read_text())
    combos = {(r["method"], r["compensation"], r["t"]) for r in ev["rows"]}
    assert combos == {(m, c, t) for m in ("SGD", "HA-SGD") for c in ("none", "global")
                      for t in (1.0, 86400.0)}
    assert (out / "xbarlab-manifest.json").is_file()


def test_rerun_is_fully_cached(tiny_run, tmp_path):
    """Rerunning an unchanged config runs nothing: every stage reports 'cached'."""
    cfg, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    res = _run(cfg, out)
    assert res["status"] == {s: "cached" for s in ALL}


@pytest.mark.parametrize("edit, expect_ran", [
    # crossbar settings feed only the crossbar study and the report
    (("r_wire = [1.0]", "r_wire = [2.0]"), {"crossbar", "report"}),
    # training settings: both trainings, the evaluation, the report
    (("epochs = 1", "epochs = 2"), {"train-sgd", "train-hasgd", "evaluate", "report"}),
    # noise settings: the noise tables, HA-SGD trained on them, evaluation, report
    (("grid = 5", "grid = 7"), {"noise", "train-hasgd", "evaluate", "report"}),
    # evaluation settings: evaluation and report
    (("programmings = 1", "programmings = 2"), {"evaluate", "report"}),
    # L of HA-SGD: not the plain-SGD baseline
    (("samples = 2\ntrain_time", "samples = 1\ntrain_time"),
     {"train-hasgd", "evaluate", "report"}),
    # the report title: the report only
    (('title = "tiny"', 'title = "tiny 2"'), {"report"}),
    # the seed: every stage that draws random numbers (not load, which only reads a file)
    (("seed = 3", "seed = 4"), set(ALL) - {"load"}),
])
def test_changed_setting_reruns_exactly_downstream(tiny_run, tmp_path, edit, expect_ran):
    """A changed setting reruns exactly the stages that depend on it (listed per case);
    every other stage is 'cached'."""
    cfg0, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    shutil.copy(cfg0.parent / "tiny.csv", tmp_path / "tiny.csv")
    text = cfg0.read_text()
    assert edit[0] in text
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(text.replace(edit[0], edit[1]))
    res = _run(cfg, out)
    ran = {s for s, v in res["status"].items() if v == "ran"}
    assert ran == expect_ran


def test_changed_data_reruns_everything_but_sgd(tiny_run, tmp_path):
    """New measurement content (another seed) reruns every stage that depends on the data:
    all but the plain-SGD baseline, which does not use device statistics."""
    cfg0, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    shutil.copy(cfg0, tmp_path / "tiny.toml")
    _tiny_data(tmp_path / "tiny.csv", seed=2)
    res = _run(tmp_path / "tiny.toml", out)
    assert {s for s, v in res["status"].items() if v == "cached"} == {"train-sgd"}


def test_moved_data_file_is_still_cached(tiny_run, tmp_path):
    """The load stage is keyed by the data's content, not its path: the same file under
    another name in another folder reruns nothing."""
    cfg0, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    (tmp_path / "d").mkdir()
    shutil.copy(cfg0.parent / "tiny.csv", tmp_path / "d" / "renamed.csv")
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(cfg0.read_text().replace('"tiny.csv"', '"d/renamed.csv"'))
    res = _run(cfg, out)
    assert res["status"] == {s: "cached" for s in ALL}


_KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from xbarlab import pipeline as P
    cfg, _ = P.load_config(sys.argv[1])
    flag = Path(sys.argv[3])
    def hook(name, tmp):
        (tmp / "partial.bin").write_bytes(b"x" * 1000)   # a stage half written
        if name == "train-sgd":
            flag.write_text("training")
            time.sleep(120)
    P.run_pipeline(cfg, sys.argv[2], progress=False, on_stage_start=hook,
                   echo=lambda s: None)
""")


def test_kill_during_training_resumes(tmp_path):
    """A run killed with SIGKILL while training leaves load, calibrate, crossbar and noise
    finished; the rerun skips them ('cached' in the result and the run log, no new 'start'
    event for them), runs the training and later stages, and removes the half-written
    temporary folder of the killed stage."""
    cfg = _setup(tmp_path)
    out = tmp_path / "out"
    flag = tmp_path / "flag"
    script = tmp_path / "kill_me.py"
    script.write_text(_KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(cfg), str(out), str(flag)],
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 240
        while not flag.exists():
            assert proc.poll() is None, "the pipeline process ended before training"
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    finished = {s for s in ALL if (out / s / P.MARKER).is_file()}
    assert finished == {"load", "calibrate", "crossbar", "noise"}
    assert any(p.name.startswith(".tmp-train-sgd") for p in out.iterdir())
    n_before = len(_events(out))
    res = _run(cfg, out)
    assert {s for s, v in res["status"].items() if v == "cached"} == finished
    new = _events(out)[n_before:]
    started = {e["stage"] for e in new if e["event"] == "start"}
    assert started == set(ALL) - finished
    assert {e["stage"] for e in new if e["event"] == "cached"} == finished
    assert not any(p.name.startswith(".tmp-") for p in out.iterdir())


def test_interrupted_stage_keeps_finished_ones(tmp_path):
    """Ctrl-C (KeyboardInterrupt) inside the crossbar stage propagates, logs 'failed',
    removes the stage's temporary folder, and keeps load and calibrate finished."""
    cfg = _setup(tmp_path)
    out = tmp_path / "out"

    def hook(name, tmp):
        if name == "crossbar":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(cfg, out, on_stage_start=hook)
    assert {s for s in ALL if (out / s / P.MARKER).is_file()} == {"load", "calibrate"}
    assert not any(p.name.startswith(".tmp-") for p in out.iterdir())
    assert _events(out)[-1]["event"] == "failed" and _events(out)[-1]["stage"] == "crossbar"
    res = _run(cfg, out, stages=("crossbar",))
    assert res["status"] == {"load": "cached", "calibrate": "cached", "crossbar": "ran"}


def test_foreign_output_folder_refused(tmp_path):
    """OUT that is a non-empty folder without an xbarlab manifest is refused
    (OutputExistsError) unless force=True."""
    cfg = _setup(tmp_path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("do not touch")
    with pytest.raises(OutputExistsError):
        _run(cfg, out, stages=("load",))
    res = _run(cfg, out, stages=("load",), force=True)
    assert res["status"] == {"load": "ran"}
    assert (out / "thesis.tex").read_text() == "do not touch"


# --------------------------------------------------------------------------- config


def _validate(text: str, tmp_path: Path):
    import tomllib

    return P.validate_config(tomllib.loads(text), base_dir=tmp_path)


@pytest.mark.parametrize("text, needles", [
    ('[data]\nfiles = ["a.csv"]\nfoo = 1', ["[data] foo", "files", "columns"]),
    ('[data]\nfiles = ["a.csv"]\n[trian]\nepochs = 1', ["'trian'", "[train]"]),
    ('[data]\nfiles = ["a.csv"]\n[train]\ndataset = "cifar"',
     ["[train] dataset", "'cifar'", "'digits'", "'mnist5k'", "'mnist1d'"]),
    ('[data]\nfiles = ["a.csv"]\n[calibrate]\ndrift = "linear"',
     ["[calibrate] drift", "'power-law'", "'relaxation'"]),
    ('[data]\nfiles = ["a.csv"]\n[train]\nepochs = 0', ["[train] epochs", ">= 1"]),
    ('[data]\nfiles = ["a.csv"]\n[train]\nepochs = 2.5', ["[train] epochs", "integer"]),
    ('[data]\nfiles = ["a.csv"]\n[crossbar]\nsizes = [63]', ["[crossbar] sizes", "even"]),
    ('[data]\nfiles = ["a.csv"]\n[crossbar]\nr_wire = [-1.0]', ["[crossbar] r_wire", ">= 0"]),
    ('[data]\nfiles = ["a.csv"]\n[noise]\ntimes = ["1 fortnight"]', ["[noise] times"]),
    ('[data]\nfiles = ["a.csv"]\n[train]\ntrain_time = "2d"', ["[train] train_time", "'all'"]),
    ('[data]\nfiles = ["a.csv"]\n[evaluate]\ncompensation = ["local"]',
     ["[evaluate] compensation", "'none'", "'global'"]),
    ('[data]\nfiles = ["a.csv"]\n[mapping]\ng_max = "25 furlongs"', ["[mapping] g_max"]),
    ('[data]\nfiles = ["a.csv"]\n[mapping]\ng_min = "25uS"\ng_max = "10uS"',
     ["[mapping] g_max", "g_min"]),
    ('[data]\nfiles = ["a.csv"]\nlayout = "timeseries"', ["timeseries", "sample_rate"]),
    ('seed = -1\n[data]\nfiles = ["a.csv"]', ["seed", ">= 0"]),
    ('[calibrate]\nn_boot = 10', ["[data] files", "required"]),
])
def test_config_errors_name_field_and_allowed(tmp_path, text, needles):
    """Each bad config raises ConfigError whose message contains the field name and the
    allowed values or bound (the listed substrings)."""
    with pytest.raises(ConfigError) as ei:
        _validate(text, tmp_path)
    msg = str(ei.value)
    for n in needles:
        assert n in msg, (n, msg)


def test_config_normalises_units(tmp_path):
    """Durations become seconds and conductances siemens: "1h" -> 3600, "1y" -> 31557600,
    "25uS" -> 2.5e-5; times are sorted; relative files resolve against the config folder."""
    c = _validate('[data]\nfiles = ["x/a.csv"]\n[mapping]\ng_max = "25uS"\n'
                  '[evaluate]\ntimes = ["1y", "1h", 60]', tmp_path)
    assert c["evaluate"]["times"] == [60.0, 3600.0, 31557600.0]
    assert c["mapping"]["g_max"] == pytest.approx(2.5e-5, rel=1e-15)
    assert c["data"]["files"] == [str((tmp_path / "x" / "a.csv").resolve())]
    assert c["seed"] == 0 and c["train"]["dataset"] == "digits"


def test_bad_toml_and_missing_file(tmp_path):
    """Invalid TOML and a missing config file are ConfigErrors naming the file."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\nfiles = 1")
    with pytest.raises(ConfigError, match="bad.toml"):
        P.load_config(bad)
    with pytest.raises(ConfigError, match="nope.toml"):
        P.load_config(tmp_path / "nope.toml")


def test_example_config_is_shipped_and_valid():
    """The shipped example config validates, points at the shipped data file, and documents
    every schema field (each field name appears in it, commented or set)."""
    cfg, path = P.load_config(None)
    assert path.name == "example_config.toml"
    assert all(Path(f).is_file() for f in cfg["data"]["files"])
    text = path.read_text()
    for section, fields in P.SCHEMA.items():
        if section:
            assert f"[{section}]" in text
        for name in fields:
            assert f"{name} =" in text or f"# {name} =" in text, name


def test_cli_run_config_error_is_one_line(tmp_path, capsys):
    """`xbarlab run` with a bad field exits 2 with one 'error:' line naming the field."""
    from xbarlab.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\nfiles = ["a.csv"]\n[train]\nmodel = "transformer"\n')
    assert main(["run", str(cfg), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[train] model" in err[0] and "'mlp'" in err[0]


def test_example_data_is_what_its_generator_makes(tmp_path):
    """The shipped pcm_drift.csv is exactly (byte for byte) what make_example_data.py draws
    from the pcm-ibm-2020 preset with its seed; if device physics or its random streams
    change, regenerate it: python data/examples/make_example_data.py --force."""
    import importlib.util

    from xbarlab.formats import Provenance, write_measurements

    folder = P.example_config_path().parent
    spec = importlib.util.spec_from_file_location("make_example_data",
                                                  folder / "make_example_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = mod.make(np.random.default_rng(mod.SEED))
    assert (m.n_devices, m.n_reads) == (1200, 7200)
    out = tmp_path / mod.FILE_NAME
    write_measurements(out, m, provenance=Provenance(method="test"), float_format="%.6g")
    assert out.read_bytes() == (folder / mod.FILE_NAME).read_bytes()


def test_cli_run_resumes_and_prints_report(tiny_run, tmp_path, capsys):
    """`xbarlab run CONFIG -o OUT` on a finished OUT exits 0, prints one 'cached' line per
    stage (8) and the absolute path of OUT/report.html."""
    from xbarlab.cli import main

    cfg, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    assert main(["run", str(cfg), "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr()
    both = text.out + text.err
    assert both.count(" cached ") == len(ALL)
    assert str((out / "report.html").resolve()) in text.out
