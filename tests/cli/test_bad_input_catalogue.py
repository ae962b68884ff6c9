"""The bad-input catalogue: hostile measurement, model, noise, config and network files,
absurd option values, dangerous output paths and implausible data, each through
``xbarlab.cli.main([...])`` in this process.

Every error case must end with exit status 1 or 2 (the one the case names) and exactly one
stderr line ``xbarlab COMMAND: error: ...`` that names the problem (the case's regex) and
no traceback; every warning case with exit status 0 and exactly one ``xbarlab COMMAND:
warning: ...`` line. In every case no file that existed before is deleted or changed (the
folders' names and bytes are compared before and after), and an error leaves no new file
behind. Classes (the ids' prefixes): measurements, model file, noise file, config,
network folder, option, output path, plausibility.

Files that several cases read (a measurement table, a device model, a noise file, a
trained network) and every case's HDF5 file (:data:`H5`) are written once per module
(:func:`lib`), and the HDF5 structure check of them all (a child process each) runs there
in parallel, so that each reader finds its outcome remembered.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from xbarlab.cli import main

GOOD_CSV = "device,time,g\n0,1,1e-5\n0,2,1.1e-5\n1,1,2e-5\n1,2,2.1e-5\n"

# -- files several cases share --------------------------------------------------------------


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """The shared inputs: a good CSV table and its HDF5 copy, a device model, a noise file,
    a trained network folder (a freshly initialised MLP saved as xbarlab train does)."""
    from xbarlab import devices, formats
    from xbarlab.nn.export import export_noise

    d = tmp_path_factory.mktemp("lib")
    csv = d / "good.csv"
    csv.write_text(GOOD_CSV)
    m_h5 = formats.write_measurements(d / "good.h5", formats.read_measurements(csv))
    dev = devices.load("pcm-ibm-2020").to_file(d / "dev.h5")
    noise = d / "noise.h5"
    export_noise(devices.load("pcm-ibm-2020"), [3600.0], np.random.default_rng(1),
                 w_grid=np.array([-1.0, 0.0, 1.0]), n_samples=1000).write(noise)
    net = d / "net"
    net.mkdir()
    _save_net(net / "model.pt")
    lib = SimpleNamespace(dir=d, csv=csv, m_h5=m_h5, dev=dev, noise=noise, net=net)
    for name, make in H5.items():
        make(lib, d / name)
    _check_in_parallel([m_h5, dev, noise, *(d / name for name in H5)])
    return lib


def _check_in_parallel(paths):
    """Run the HDF5 structure check of every case file at once (a few child processes in
    parallel); the readers then find each outcome remembered."""
    from concurrent.futures import ThreadPoolExecutor

    from xbarlab.errors import DataFormatError
    from xbarlab.formats.hdf5_check import check_hdf5_file

    def check(p):
        try:
            check_hdf5_file(p)
        except DataFormatError:
            pass  # remembered: the case's reader raises it again

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, paths))


#: The HDF5 files of the cases, name -> maker(lib, path), written once in lib's folder.
H5: dict = {}


def _h5(make) -> str:
    """Register an HDF5 case file; its name ``xK.h5``."""
    name = f"x{len(H5)}.h5"
    H5[name] = make
    return name


def _edited(src: str, edit) -> str:
    """A case file: a copy of lib's ``src`` file changed by ``edit(h5py.File)``."""
    def make(lib, path):
        _copy(getattr(lib, src), path)
        with h5py.File(path, "r+") as f:
            edit(f)
    return _h5(make)


def _raw(data) -> str:
    """A case file of the bytes ``data(lib)``."""
    return _h5(lambda lib, path: path.write_bytes(data(lib)))


def _net_blob():
    import torch
    from xbarlab.nn.data import build_model, model_config

    cfg = model_config("mlp", "digits", (1, 8, 8))
    torch.manual_seed(0)
    return {"state_dict": build_model(cfg).state_dict(), "config": cfg}


def _save_net(path, change=None):
    import torch

    blob = _net_blob()
    if change is not None:
        blob = change(blob)
    torch.save(blob, path)
    return path


def _w(d: Path, name: str, text: str | bytes) -> Path:
    p = d / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def _replace(f, name, value):
    del f[name]
    f[name] = value


def _set_attr(name, value, obj="/"):
    def edit(f):
        f[obj].attrs[name] = value
    return edit


def _ds(name, value):
    """Replace dataset ``name``, keeping its units."""
    def edit(f):
        units = f[name].attrs.get("units")
        _replace(f, name, value)
        if units is not None:
            f[name].attrs["units"] = units
    return edit


def _half_gzip():
    body = "device,time,g\n" + "".join(f"{i},1,{1e-5 * (1 + i % 7)}\n" for i in range(2000))
    raw = gzip.compress(body.encode())
    return raw[: len(raw) // 2]


def _npz(d, **arrays):
    p = d / "t.npz"
    np.savez(p, **arrays)
    return p


def _h5_g(g):
    def edit(f):
        units = f["measurements/g"].attrs["units"]
        _replace(f, "measurements/g", g)
        f["measurements/g"].attrs["units"] = units
    return edit


def _h5_units(unit):
    def edit(f):
        f["measurements/g"].attrs["units"] = unit
    return edit


def _inspect_h5(name):
    return lambda lib, d: inspect(lib.dir / name)


def _bomb(lib, p):
    with h5py.File(p, "w") as f:
        f.create_group("measurements").create_dataset(
            "g", shape=(4 << 30,), dtype="f8", chunks=(1 << 20,), compression="gzip")


def _fifo(p):
    os.mkfifo(p)
    return p


def _noise_file(name):
    return lambda lib, d: train(lib.dir / name, d)


# -- the cases --------------------------------------------------------------------------------
# Each builder takes (lib, d) and returns the command's words; the expectation is
# ("error", exit status, regex), ("warn", regex) or ("ok", regex on stdout).

CASES: list = []


def case(id_, expect, cls):
    """Register a builder under class ``cls`` with id ``cls: id_``."""
    def deco(fn):
        CASES.append(pytest.param(fn, expect, id=f"{cls}: {id_}"))
        return fn
    return deco


def err(rc, regex):
    return ("error", rc, regex)


def warn(regex):
    return ("warn", regex)


def inspect(*words):
    return ["inspect", *map(str, words)]


def export(model, d, *extra):
    return ["export-noise", str(model), "--time", "1h", "--samples", "100", "--grid", "3",
            *map(str, extra), "-o", str(d / "n.h5")]


def train(noise, d, *extra):
    return ["train", "--dataset", "digits", "--model", "mlp", "--train-noise", str(noise),
            "--samples", "1", "--epochs", "1", "--seed", "0", "--eval-noise", "0",
            *map(str, extra), "--out", str(d / "t")]


def evaluate(net, d, *extra):
    return ["evaluate", str(net), "--device-model", "pcm-ibm-2020", "--times", "1h",
            *map(str, extra), "-o", str(d / "ev")]


def run(d, toml: str, *extra):
    cfg = _w(d, "c.toml", toml)
    return ["run", str(cfg), "-o", str(d / "out"), "--no-progress", *map(str, extra)]


M, D, N, C, T, O, P, W = ("measurements", "model file", "noise file", "config",
                          "network folder", "option", "output path", "plausibility")

# measurement files --------------------------------------------------------------------------
case("ragged row", err(1, r"t\.csv, line 3: found 2 columns, expected 3"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "device,time,g\n0,1,1e-5\n1,1\n")))
case("header wider than the rows", err(1, r"t\.csv, line 2: found 3 columns, expected 4"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "device,time,g,level\n0,1,1e-5\n")))
case("unit in the header, none given", err(2, r"t\.csv: column 'g_uS' .*--units g=uS"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "device,g_uS\n0,10\n"), "--columns", "g=g_uS"))
case("NaN conductance", err(1, r"t\.csv, line 3.*'g'.*nan"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "device,time,g\n0,1,1e-5\n1,1,nan\n")))
case("infinite time", err(1, r"t\.csv, line 2.*'time'.*inf"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "device,time,g\n0,inf,1e-5\n")))
case("negative time", err(1, r"t\.csv, line 2.*time is -5 s"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "device,time,g\n0,-5,1e-5\n")))
case("truncated gzip", err(1, r"t\.csv\.gz: the gzip stream is truncated"), M)(
    lambda lib, d: inspect(_w(d, "t.csv.gz", _half_gzip())))
case("gzip of binary garbage", err(1, r"t\.csv\.gz.*not a UTF-8 text"), M)(
    lambda lib, d: inspect(_w(d, "t.csv.gz", gzip.compress(bytes(range(256)) * 4))))
case("field over 131,072 characters", err(1, r"t\.csv, line 2: not a CSV line"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "device,time,g\n0,1," + "1" * 140_000 + "\n")))
case("empty file", err(1, r"t\.csv is empty"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "")))
case("header only", err(1, r"t\.csv has a header but no data rows"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "device,time,g\n")))
case("binary garbage named .csv", err(1, r"t\.csv is not a UTF-8 text"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", bytes(np.random.default_rng(3).integers(
        0, 256, 4096, dtype=np.uint8)))))
case("semicolons in a .csv", err(1, r"t\.csv.*(no 'g' column|column)"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "device;time;g\n0;1;1e-5\n1;1;2e-5\n")))
case("tabs in a .csv", err(1, r"t\.csv.*(no 'g' column|column)"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "device\ttime\tg\n0\t1\t1e-5\n")))
case("unknown column named", err(1, r"good\.csv has no column 'G' \(for role g\)"), M)(
    lambda lib, d: inspect(lib.csv, "--columns", "g=G"))
case("level of 1e30", err(1, r"t\.csv, line 2.*level is 1e\+30"), M)(
    lambda lib, d: inspect(_w(d, "t.csv", "device,time,g,level\n0,1,1e-5,1e30\n")))
case("text named .npz", err(1, r"t\.npz is named \.npz but is not"), M)(
    lambda lib, d: inspect(_w(d, "t.npz", GOOD_CSV)))
case("npz arrays of unequal length", err(1, r"t\.npz: g has 3 entries, expected 2 like device"),
     M)(
    lambda lib, d: inspect(_npz(d, g=np.array([1e-5, 2e-5, 3e-5]), device=np.array([0, 1]))))
case("npz without g", err(1, r"t\.npz.*\bg\b"), M)(
    lambda lib, d: inspect(_npz(d, device=np.array([0, 1]))))
case("npz with a 2-D g", err(1, r"t\.npz.*(1-D|shape|dimension)"), M)(
    lambda lib, d: inspect(_npz(d, g=np.full((2, 2), 1e-5), device=np.array([0, 1]))))
case("HDF5 g of shape (2, 2)", err(1, r"x\d+\.h5.*/measurements/g.*(1-D|shape|dimension)"), M)(
    _inspect_h5(_edited("m_h5", _h5_g(np.full((2, 2), 1e-5)))))
case("HDF5 g in farads", err(1, r"x\d+\.h5: unknown unit 'F' for /measurements/g"), M)(
    _inspect_h5(_edited("m_h5", _h5_units("F"))))
case("HDF5 NaN conductance", err(1, r"x\d+\.h5.*(NaN|nan)"), M)(
    _inspect_h5(_edited("m_h5", _h5_g(np.array([1e-5, np.nan, 2e-5,
                                                                    2e-5])))))
case("HDF5 truncated", err(1, r"x\d+\.h5"), M)(
    _inspect_h5(_raw(lambda lib: lib.m_h5.read_bytes()[:2048])))
case("HDF5 external link", err(1, r"x\d+\.h5: /measurements/g is an external link"), M)(
    _inspect_h5(_edited("m_h5", lambda f: _replace(
        f, "measurements/g", h5py.ExternalLink("dev.h5", "/g_range")))))
case("HDF5 declaring 32 GB", err(1, r"x\d+\.h5: /measurements/g declares"), M)(
    _inspect_h5(_h5(_bomb)))
case("a folder as the table", err(1, r"is a folder"), M)(
    lambda lib, d: ["calibrate", str(d), "-o", str(d / "m.h5")])
case("a FIFO as the table", err(1, r"is a FIFO"), M)(
    lambda lib, d: ["calibrate", str(_fifo(d / "p.csv")), "-o", str(d / "m.h5")])
case("missing file", err(1, r"nope\.csv: no such file"), M)(
    lambda lib, d: inspect(d / "nope.csv"))
case("calibrate on a header-only table", err(1, r"t\.csv has a header but no data rows"), M)(
    lambda lib, d: ["calibrate", str(_w(d, "t.csv", "device,time,g\n")), "-o",
                    str(d / "m.h5")])


# device-model files -------------------------------------------------------------------------
def _dev(edit, cmd="export"):
    name = _edited("dev", edit)

    def build(lib, d):
        p = lib.dir / name
        if cmd == "export":
            return export(p, d)
        if cmd == "crossbar":
            return ["crossbar", "--device", str(p), "--sizes", "8", "--r-wire", "1",
                    "--vectors", "1", "-o", str(d / "xb")]
        return inspect(p)
    return build


case("format_version a string", err(1, r"x\d+\.h5.*format_version"), D)(
    _dev(_set_attr("format_version", "one"), "inspect"))
case("format_version an array", err(1, r"x\d+\.h5.*format_version"), D)(
    _dev(_set_attr("format_version", np.array([1, 2]))))
case("format_version newer", err(1, r"x\d+\.h5 has format_version 99, newer"), D)(
    _dev(_set_attr("format_version", 99), "inspect"))
case("provenance a JSON list", err(1, r"x\d+\.h5.*provenance"), D)(
    _dev(_set_attr("provenance", "[1, 2, 3]"), "inspect"))
case("provenance not JSON", err(1, r"x\d+\.h5.*provenance"), D)(
    _dev(_set_attr("provenance", "{not json")))
case("a group that is a dataset", err(1, r"x\d+\.h5.*programming"), D)(
    _dev(lambda f: _replace(f, "programming", np.zeros(3))))
case("a missing group", err(1, r"x\d+\.h5: .*lacks 'spread'"), D)(
    _dev(lambda f: f.__delitem__("programming/spread")))
case("conditioning bogus", err(1, r"x\d+\.h5.*'bogus'"), D)(
    _dev(_set_attr("conditioning", "bogus")))
case("attribute not UTF-8", err(1, r"x\d+\.h5"), D)(
    _dev(_set_attr("kind", np.bytes_(b"\xff\xfe\xfa"))))
case("g_range of shape (1,)", err(1, r"x\d+\.h5.*g_range"), D)(
    _dev(lambda f: _replace(f, "g_range", np.array([1e-6])), "crossbar"))
case("NaN in g_range", err(1, r"x\d+\.h5.*(NaN|nan|finite)"), D)(
    _dev(_ds("g_range", np.array([np.nan, 2e-5])), "crossbar"))
case("dangling soft link", err(1, r"x\d+\.h5: /ghost is a link that points nowhere"), D)(
    _dev(lambda f: f.__setitem__("ghost", h5py.SoftLink("/nowhere"))))
case("text named .h5", err(1, r"m\.h5 is named like HDF5 but is not an HDF5 file|m\.h5"), D)(
    lambda lib, d: export(_w(d, "m.h5", "not a model\n"), d))
case("a noise file as the device model", err(1, r"noise\.h5.*(noise|device)"), D)(
    lambda lib, d: export(lib.noise, d))
case("a measurement file as the device model", err(1, r"good\.h5.*(measurement|device)"), D)(
    lambda lib, d: ["crossbar", "--device", str(lib.m_h5), "--sizes", "8", "-o",
                    str(d / "xb")])
case("unknown preset name", err(2, r"'no-such-device'"), D)(
    lambda lib, d: export("no-such-device", d))


# noise files --------------------------------------------------------------------------------
def _noise(edit, *extra):
    name = _edited("noise", edit)
    return lambda lib, d: train(lib.dir / name, d, *extra)


case("means all NaN", err(1, r"x\d+\.h5.*mean holds NaN"), N)(
    _noise(_ds("mean", np.full((1, 3), np.nan))))
case("NaN drift factor", err(1, r"x\d+\.h5.*drift_factor holds NaN"), N)(
    _noise(_ds("drift_factor", np.array([np.nan]))))
case("quantiles of the wrong shape", err(1, r"x\d+\.h5.*quantiles have shape"), N)(
    _noise(_ds("quantiles", np.zeros((1, 2, 401)))))
case("std missing", err(1, r"x\d+\.h5.*std"), N)(
    _noise(lambda f: f.__delitem__("std")))
case("negative time", err(1, r"x\d+\.h5.*times must be finite and >= 0"), N)(
    _noise(_ds("times", np.array([-1.0]))))
case("w_grid not increasing", err(1, r"x\d+\.h5.*w_grid must be strictly increasing"), N)(
    _noise(_ds("w_grid", np.array([1.0, 0.0, -1.0]))))
case("levels outside (0, 1)", err(1, r"x\d+\.h5.*levels must be strictly increasing"), N)(
    _noise(_ds("levels", np.linspace(-1, 2, 401))))
case("layout_version newer", err(1, r"x\d+\.h5.*layout_version"), N)(
    _noise(_set_attr("layout_version", 99)))
case("kind bogus", err(1, r"x\d+\.h5.*kind 'bogus'"), N)(
    _noise(_set_attr("kind", "bogus")))
case("compensation bogus", err(1, r"x\d+\.h5.*compensation 'bogus'"), N)(
    _noise(_set_attr("compensation", "bogus")))
case("a device model as the noise file", err(1, r"dev\.h5.*(noise|device)"), N)(
    lambda lib, d: train(lib.dev, d))
case("text named .h5", err(1, r"n\.h5"), N)(
    lambda lib, d: train(_w(d, "n.h5", "mean,std\n"), d))
case("truncated", err(1, r"x\d+\.h5"), N)(
    _noise_file(_raw(lambda lib: lib.noise.read_bytes()[:4096])))
case("time not in the file", err(2, r"time 3\.15576e\+07 s is not in the noise file"), N)(
    lambda lib, d: train(lib.noise, d, "--train-time", "1y"))
case("missing noise file", err(2, r"nope\.h5 does not exist"), N)(
    lambda lib, d: train(d / "nope.h5", d))
case("NaN quantiles", err(1, r"x\d+\.h5.*quantiles must be finite"), N)(
    _noise(_ds("quantiles", np.full((1, 3, 401), np.nan))))


# config files -------------------------------------------------------------------------------
DATA = '[data]\nfiles = ["{csv}"]\n'


def _cfg(body, *extra):
    def build(lib, d):
        return run(d, body.replace("{csv}", str(lib.csv)), *extra)
    return build


case("not TOML", err(2, r"c\.toml: not valid TOML"), C)(_cfg("[data\nfiles = 1\n"))
case("not UTF-8", err(2, r"c\.toml: not a UTF-8 text file"), C)(
    lambda lib, d: ["run", str(_w(d, "c.toml", b"[data]\nfiles = ['\xff']\n")), "-o",
                    str(d / "out")])
case("unknown section", err(2, r"unknown config entry 'dta'"), C)(
    _cfg(DATA + "[dta]\nx = 1\n"))
case("unknown key", err(2, r"unknown field '\[data\] file'"), C)(
    _cfg('[data]\nfile = "a.csv"\n'))
case("seed a string", err(2, r"seed.*'zero'"), C)(_cfg('seed = "zero"\n' + DATA))
case("seed negative", err(2, r"seed must be >= 0, got -1"), C)(_cfg("seed = -1\n" + DATA))
case("seed NaN", err(2, r"seed.*nan"), C)(_cfg("seed = nan\n" + DATA))
case("threads 100000", err(2, r"threads must be in \[0, 1024\], got 100000"), C)(
    _cfg("threads = 100000\n" + DATA))
case("odd crossbar size", err(2, r"\[crossbar\] sizes entries must be even"), C)(
    _cfg(DATA + "[crossbar]\nsizes = [63]\n"))
case("absurd crossbar size", err(2, r"\[crossbar\] sizes entry must be in \[2, 4096\]"), C)(
    _cfg(DATA + "[crossbar]\nsizes = [200000]\n"))
case("samples a float", err(2, r"\[noise\] samples.*integer"), C)(
    _cfg(DATA + "[noise]\nsamples = 1.5\n"))
case("no files", err(2, r"\[data\] files"), C)(_cfg("[data]\nfiles = []\n"))
case("files missing", err(2, r"\[data\] files is required"), C)(_cfg("[data]\n"))
case("a file that does not exist", err(2, r"nope\.csv does not exist"), C)(
    _cfg('[data]\nfiles = ["nope.csv"]\n'))
case("train_time not a noise time", err(2, r"\[train\] train_time '5y' is not one of"), C)(
    _cfg(DATA + '[train]\ntrain_time = "5y"\n'))
case("g_max below g_min", err(2, r"\[mapping\] g_max .* must exceed g_min"), C)(
    _cfg(DATA + '[mapping]\ng_min = "20uS"\ng_max = "10uS"\n'))
case("compensation bogus", err(2, r"\[evaluate\] compensation entry 'bogus'"), C)(
    _cfg(DATA + '[evaluate]\ncompensation = ["bogus"]\n'))
case("timeseries without a sample rate", err(2, r"timeseries.*sample_rate"), C)(
    _cfg(DATA.replace("\n", '\nlayout = "timeseries"\n', 1)))
case("window of 1e400uS", err(2, r"\[calibrate\] window must be finite"), C)(
    _cfg(DATA + '[calibrate]\nwindow = "1e400uS"\n'))
case("negative crossbar time", err(2, r"\[crossbar\] time must be a finite duration"), C)(
    _cfg(DATA + '[crossbar]\ntime = "-1h"\n'))
case("a section that is a value", err(2, r"\[data\] must be a table"), C)(
    _cfg("data = 3\n"))
case("config file missing", err(2, r"nope\.toml does not exist"), C)(
    lambda lib, d: ["run", str(d / "nope.toml"), "-o", str(d / "out")])
case("config is a folder", err(2, r"does not exist|is a folder"), C)(
    lambda lib, d: ["run", str(d), "-o", str(d / "out")])


# trained-network folders --------------------------------------------------------------------
def _net(change=None, name="model.pt"):
    def build(lib, d):
        net = d / "net"
        net.mkdir()
        _save_net(net / name, change)
        return evaluate(net, d)
    return build


def _cfg_change(**kw):
    def change(blob):
        blob["config"].update(kw)
        for k, v in kw.items():
            if v is None:
                del blob["config"][k]
        return blob
    return change


case("folder missing", err(2, r"nope does not exist \(expected the model\.pt"), T)(
    lambda lib, d: evaluate(d / "nope", d))
case("empty folder", err(2, r"model\.pt does not exist"), T)(
    lambda lib, d: evaluate(d, d))
case("model.pt of garbage", err(1, r"model\.pt is not a model saved by xbarlab train"), T)(
    lambda lib, d: evaluate(_w(d, "model.pt", b"\x00garbage" * 64), d))
case("model.pt holding a list", err(1, r"model\.pt.*not saved by xbarlab train"), T)(
    _net(lambda blob: [1, 2, 3]))
case("config missing", err(1, r"model\.pt lacks 'state_dict'/'config'"), T)(
    _net(lambda blob: {"state_dict": blob["state_dict"]}))
case("config without input_shape", err(1, r"model\.pt.*'input_shape'"), T)(
    _net(_cfg_change(input_shape=None)))
case("hidden sizes not the weights'", err(1, r"model\.pt.*weight '1\.weight' has shape"),
     T)(
    _net(_cfg_change(hidden=[128, 128])))
case("hidden sizes absurd", err(1, r"model\.pt.*weight '1\.weight' has shape"), T)(
    _net(_cfg_change(hidden=[4_000_000, 4_000_000])))
case("negative input size", err(1, r"model\.pt.*input_shape"), T)(
    _net(_cfg_change(input_shape=[1, -8, 8])))
case("model kind bogus", err(1, r"model\.pt.*'transformer'"), T)(
    _net(_cfg_change(model="transformer")))
case("data set bogus", err(1, r"model\.pt.*config dataset 'bogus' is not one of"), T)(
    _net(_cfg_change(dataset="bogus")))
case("config a list", err(1, r"model\.pt.*config"), T)(
    _net(lambda blob: {"state_dict": blob["state_dict"], "config": [1]}))
case("NaN weights", err(1, r"model\.pt: weight '1\.weight' holds NaN"), T)(
    _net(lambda blob: {**blob, "state_dict": {k: v * float("nan") for k, v in
                                              blob["state_dict"].items()}}))
case("model.pt a folder", err(1, r"model\.pt.*(folder|directory)"), T)(
    lambda lib, d: evaluate(_mkdir(d / "net" / "model.pt").parent, d))


def _mkdir(p):
    p.mkdir(parents=True)
    return p


# option values ------------------------------------------------------------------------------
def _opt(words, rc=2):
    def build(lib, d):
        w = [x.format(csv=lib.csv, dev=lib.dev, noise=lib.noise, net=lib.net, d=d)
             for x in words]
        return w
    return build


def _o(id_, words, regex, rc=2):
    case(id_, err(rc, regex), O)(_opt(words))


def _with(words, flag, value):
    """``words`` with the value after ``flag`` replaced (as ``flag=value``)."""
    i = words.index(flag)
    return [*words[:i], f"{flag}={value}", *words[i + 2:]]


CAL = ["calibrate", "{csv}", "-o", "{d}/m.h5"]
XB = ["crossbar", "-o", "{d}/xb"]
EXP = ["export-noise", "{dev}", "--time", "1h", "-o", "{d}/n.h5"]
TR = ["train", "--dataset", "digits", "--model", "mlp", "--train-noise", "0", "--samples", "1",
      "--epochs", "1", "--seed", "0", "--eval-noise", "0", "--out", "{d}/t"]
EV = ["evaluate", "{net}", "--device-model", "pcm-ibm-2020", "--times", "1h", "-o", "{d}/ev"]

_o("calibrate --seed -1", CAL + ["--seed", "-1"], r"--seed must be >= 0, got -1")
_o("calibrate --t0 nan", CAL + ["--t0", "nan"], r"--t0")
_o("calibrate --t-max -1h", CAL + ["--t-max=-1h"], r"--t-max")
_o("calibrate --conditioning bogus", CAL + ["--conditioning", "bogus"],
   r"--conditioning: invalid choice: 'bogus'")
_o("calibrate --bootstrap 1.5", CAL + ["--bootstrap", "1.5"], r"--bootstrap")
_o("calibrate --window 0uS", CAL + ["--window", "0uS"], r"--window must be > 0")
_o("calibrate --family bogus", CAL + ["--family", "bogus"], r"--family.*'bogus'")
_o("crossbar --sizes -64", XB + ["--sizes=-64"], r"--sizes")
_o("crossbar --vectors inf", XB + ["--vectors", "inf"], r"--vectors")
_o("crossbar --adc-bits nan", XB + ["--adc-bits", "nan"], r"--adc-bits")
_o("crossbar --time nan", XB + ["--time", "nan"], r"--time")
_o("crossbar --r-wire nan", XB + ["--r-wire", "nan"], r"--r-wire")
_o("export-noise --samples -1", EXP + ["--samples=-1"], r"--samples")
_o("export-noise --grid inf", EXP + ["--grid", "inf"], r"--grid")
_o("export-noise --time -1s", _with(EXP, "--time", "-1s"), r"--time")
_o("export-noise --compensation bogus", EXP + ["--compensation", "bogus"], r"'bogus'")
_o("export-noise --adc-bits 1", EXP + ["--adc-bits", "1"], r"--adc-bits must be in \[2, 24\]")
_o("train --threads 100000", TR + ["--threads", "100000"], r"--threads must be in \[0, 1024\]")
_o("train --threads -1", TR + ["--threads", "-1"], r"--threads must be in \[0, 1024\], got -1")
_o("train --adc-bits 0", TR + ["--adc-bits", "0"], r"--adc-bits must be in \[2, 24\], got 0")
_o("train --adc-bits 1000", TR + ["--adc-bits", "1000"], r"--adc-bits must be in \[2, 24\]")
_o("train --eval-draws 0", TR + ["--eval-draws", "0"], r"--eval-draws must be >= 1")
_o("train --eval-noise nan", _with(TR, "--eval-noise", "nan"),
   r"--eval-noise entries must be finite")
_o("train --train-noise -0.1", _with(TR, "--train-noise", "-0.1"),
   r"--train-noise σ must be a finite number >= 0")
_o("train --dataset bogus", ["train", "--dataset", "bogus"] + TR[3:], r"'bogus'")
_o("train --antithetic with odd --samples", _with(TR, "--samples", "3") + ["--antithetic"],
   r"antithetic pairs need an even number of samples, got L=3")
_o("evaluate --times -1s", _with(EV, "--times", "-1s"), r"--times")
_o("evaluate --tile 0x0", EV + ["--tile", "0x0"], r"--tile '0x0': rows and columns")
_o("evaluate --dac-bits 0", EV + ["--dac-bits", "0"], r"--dac-bits must be in \[1, 24\]")
_o("evaluate --modes bogus", EV + ["--modes", "bogus"], r"modes.*'bogus'|bogus")
_o("evaluate --compensation bogus", EV + ["--compensation", "bogus"], r"compensation.*bogus")
_o("evaluate --threads -1", EV + ["--threads", "-1"], r"--threads must be in \[0, 1024\], got -1")
_o("inspect --sample-rate nan", ["inspect", "{csv}", "--layout", "timeseries",
                                 "--sample-rate", "nan", "--samples-from", "1"],
   r"--sample-rate must be finite")
_o("inspect --units g=parsec", ["inspect", "{csv}", "--units", "g=parsec"],
   r"unknown unit 'parsec'")
_o("inspect --columns without =", ["inspect", "{csv}", "--columns", "g"], r"--columns|'g'")
_o("inspect --duplicates last", ["inspect", "{csv}", "--duplicates", "last"],
   r"invalid choice: 'last'")


# output paths -------------------------------------------------------------------------------
def _out(id_, build, regex, rc=2):
    case(id_, err(rc, regex), P)(build)


_out("calibrate -o the input", lambda lib, d: ["calibrate", str(_copy(lib.csv, d / "a.csv")),
                                              "-o", str(d / "a.csv"), "--force"],
     r"would replace the input")
_out("calibrate -o a symlink to the input", lambda lib, d: [
    "calibrate", str(_copy(lib.csv, d / "a.csv")), "-o", str(_symlink(d / "l.csv", "a.csv")),
    "--force"], r"would replace the input")
_out("calibrate -o an existing file", lambda lib, d: [
    "calibrate", str(lib.csv), "-o", str(_w(d, "m.h5", "mine"))], r"m\.h5 exists; pass --force")
_out("calibrate -o a folder --force", lambda lib, d: [
    "calibrate", str(lib.csv), "-o", str(_mkdir(d / "m.h5")), "--force"],
     r"model file \(-o\) .*m\.h5 is a folder; expected a file path")
_out("calibrate -o a FIFO --force", lambda lib, d: [
    "calibrate", str(lib.csv), "-o", str(_fifo(d / "m.h5")), "--force"],
     r"model file \(-o\) .*m\.h5 is a FIFO \(named pipe\); expected a file path")
_out("calibrate -o under a file", lambda lib, d: [
    "calibrate", str(lib.csv), "-o", str(_w(d, "f", "x") / "m.h5")],
     r"f/m\.h5 cannot be written: Not a directory")
_out("export-noise -o under a file two folders deep", lambda lib, d: export(
    lib.dev, _w(d, "f", "x") / "a"), r"f/a/n\.h5 cannot be written: Not a directory")
_out("calibrate -o a 300-character name", lambda lib, d: [
    "calibrate", str(lib.csv), "-o", str(d / ("m" * 300 + ".h5"))],
     r"m{300}\.h5 cannot be written: File name too long")
_out("calibrate -o a name too long for the temporary file", lambda lib, d: [
    "calibrate", str(lib.csv), "-o", str(d / ("m" * 240 + ".h5"))],
     r"its name of 243 bytes is too long \(at most 207 here\)")
_out("calibrate --report a file", lambda lib, d: [
    "calibrate", str(lib.csv), "-o", str(d / "m.h5"), "--report", str(_w(d, "r", "mine"))],
     r"report folder \(--report\) .*/r exists and is not a folder")
_out("export-noise -o the model", lambda lib, d: [
    "export-noise", str(_copy(lib.dev, d / "dev.h5")), "--time", "1h", "-o",
    str(d / "dev.h5"), "--force"], r"would replace the input")
_out("export-noise -o an existing file", lambda lib, d: export(lib.dev, d) if not _w(
    d, "n.h5", "mine") else export(lib.dev, d), r"n\.h5 exists; pass --force")
_out("export-noise -o a folder --force", lambda lib, d: [
    "export-noise", str(lib.dev), "--time", "1h", "-o", str(_mkdir(d / "n.h5")), "--force"],
     r"noise file \(-o\) .*n\.h5 is a folder; expected a file path")
_out("crossbar -o a foreign folder", lambda lib, d: [
    "crossbar", "--sizes", "8", "-o", str(_w(_mkdir(d / "xb"), "notes.txt", "mine").parent)],
     r"xb.*(not empty|--force|xbarlab)")
_out("crossbar -o a file", lambda lib, d: [
    "crossbar", "--sizes", "8", "-o", str(_w(d, "xb", "mine"))],
     r"xb exists and is not a folder")
_out("train --out a file", lambda lib, d: TR[:-1] + [str(_w(d, "t", "mine"))],
     r"output folder .*/t exists and is not a folder")
_out("evaluate -o an existing result", lambda lib, d: evaluate(lib.net, d) if not _w(
    _mkdir(d / "ev"), "evaluation.json", "{}") else evaluate(lib.net, d),
     r"evaluation\.json exists", rc=None)
_out("run -o a file", lambda lib, d: ["run", str(_w(d, "c.toml", DATA.replace(
    "{csv}", str(lib.csv)))), "-o", str(_w(d, "out", "mine"))], r"out exists and is not a folder")
_out("run -o a foreign folder", lambda lib, d: ["run", str(_w(d, "c.toml", DATA.replace(
    "{csv}", str(lib.csv)))), "-o", str(_w(_mkdir(d / "out"), "notes.txt", "mine").parent)],
     r"out.*(--force|xbarlab)")


def _symlink(link, target):
    link.symlink_to(target)
    return link


# plausibility -------------------------------------------------------------------------------
def _p(id_, text, expect, *extra, name="t.csv", twice=False):
    def build(lib, d):
        p = _w(d, name, text)
        return inspect(p, *([p] if twice else []), *extra)
    case(id_, expect, W)(build)


_p("every read duplicated", "device,time,g\n0,1,1e-5\n0,1,1e-5\n1,1,2e-5\n1,1,2e-5\n",
   err(1, r"2 reads repeat a \(device, time\) read with equal values.*--duplicates"))
_p("one read three times, conflicting", "device,time,g\n0,1,1e-5\n0,1,2e-5\n0,1,3e-5\n",
   err(1, r"2 reads repeat .* with different conductances"))
_p("duplicates reduced with --duplicates mean", "device,time,g\n0,1,1e-5\n0,1,3e-5\n",
   ("ok", r"reads        1\n.*conductance  20 to 20 µS"), "--duplicates", "mean")
_p("µS values without a unit", "device,time,g\n0,1,12\n1,1,15\n",
   warn(r"conductances up to 15 S.*\(--units g=uS\)\?"))
_p("conductances of 1e30 S", "device,time,g\n0,1,1e30\n1,1,1e-5\n",
   warn(r"conductances up to 1e\+30 S"))
_p("wide table in µS without a unit", "Target_100,Target_200\n99,201\n101,199\n",
   warn(r"conductances up to 201 S"), "--wide")
_p("NaN device label", "device,time,g\nnan,1,1e-5\nnan,2,2e-5\n",
   err(1, r"device label nan .*is not a label"))
_p("text 'nan' among device names", "device,time,g\ncellA,1,1e-5\nnan,1,2e-5\n",
   err(1, r"device label 'nan'"))
_p("the same file twice", GOOD_CSV, err(2, r"t\.csv is given twice"), twice=True)
case("the same file through a symlink", err(2, r"is given twice"), W)(
    lambda lib, d: inspect(_copy(lib.csv, d / "a.csv"), _symlink(d / "b.csv", "a.csv")))
case("the same file through a hard link", err(2, r"is given twice"), W)(
    lambda lib, d: inspect(_copy(lib.csv, d / "a.csv"), _hardlink(d / "b.csv", d / "a.csv")))
case("HDF5 table in µS without a unit", warn(r"x\d+\.h5: conductances up to"), W)(
    _inspect_h5(_edited("m_h5", _h5_g(np.array([10.0, 11, 20, 21])))))
case("npz table in µS without a unit", warn(r"t\.npz: conductances up to 12 S"), W)(
    lambda lib, d: inspect(_npz(d, g=np.array([10.0, 12.0]), device=np.array([0, 1]))))


def _hardlink(link, target):
    os.link(target, link)
    return link


# -- the check --------------------------------------------------------------------------------


def _snapshot(*folders: Path) -> dict[str, bytes | str]:
    """Every entry under ``folders``: a file's bytes, or what else it is (folder, FIFO,
    link target); FIFOs are never opened."""
    snap: dict[str, bytes | str] = {}
    for top in folders:
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                p = Path(root) / name
                st = p.lstat()
                if stat.S_ISLNK(st.st_mode):
                    snap[str(p)] = "link -> " + os.readlink(p)
                elif stat.S_ISREG(st.st_mode):
                    snap[str(p)] = p.read_bytes()
                else:
                    snap[str(p)] = f"mode {stat.S_IFMT(st.st_mode):o}"
    return snap


@pytest.mark.filterwarnings("always::xbarlab.errors.PlausibilityWarning")
@pytest.mark.parametrize("build, expect", CASES)
def test_bad_input(lib, tmp_path, capsys, build, expect):
    """One catalogue case: the exit status and the one stderr line it expects, no traceback,
    nothing that existed deleted or changed, no new file after an error."""
    d = tmp_path / "case"
    d.mkdir()
    words = build(lib, d)
    before = _snapshot(lib.dir, tmp_path)
    rc = main(words)
    out, err_text = capsys.readouterr()
    after = _snapshot(lib.dir, tmp_path)
    err_text = err_text.split("\r")[-1]      # after a progress bar cleared on failure
    lines = err_text.splitlines()
    command = words[0]
    assert "Traceback" not in err_text
    changed = [k for k in before if after.get(k) != before[k]]
    assert not changed, f"changed or deleted: {changed}"
    if expect[0] == "error":
        _, status, regex = expect
        assert rc in ((1, 2) if status is None else (status,)), (rc, err_text)
        assert len(lines) == 1 and lines[0].startswith(f"xbarlab {command}: error: "), lines
        assert re.search(regex, lines[0]), lines[0]
        new = sorted(set(after) - set(before))
        assert not new, f"left behind: {new}"
    elif expect[0] == "warn":
        assert rc == 0, err_text
        assert len(lines) == 1 and lines[0].startswith(f"xbarlab {command}: warning: "), lines
        assert re.search(expect[1], lines[0]), lines[0]
    else:
        assert (rc, err_text) == (0, ""), err_text
        assert re.search(expect[1], out, re.S), out


def test_catalogue_size():
    """At least 100 cases, at least 10 in each class."""
    counts: dict[str, int] = {}
    for p in CASES:
        cls = p.id.split(":")[0]
        counts[cls] = counts.get(cls, 0) + 1
    assert len(CASES) >= 100 and min(counts.values()) >= 10, counts
    assert len(counts) == 8, counts
