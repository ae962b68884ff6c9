"""Shared options and converters (xbarlab/cli/options.py): malformed sizes are one line."""

from __future__ import annotations

import pytest
from xbarlab.cli import main


@pytest.mark.parametrize("args, line", [
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--ir-drop", "256x256"],
     "xbarlab export-noise: error: --ir-drop '256x256' is not ROWSxCOLS@OHM, e.g. 256x256@1"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--ir-drop", "8x8@1@2"],
     "xbarlab export-noise: error: --ir-drop '8x8@1@2' is not ROWSxCOLS@OHM, e.g. 256x256@1"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--grid", "1"],
     "xbarlab export-noise: error: --grid must be in [2, 100001], got 1"),
    (["evaluate", "no-such-dir", "--device-model", "pcm-ibm-2020", "--times", "1s",
      "--tile", "256"], "xbarlab evaluate: error: --tile '256' is not ROWSxCOLS, e.g. 256x256"),
])
def test_bad_array_sizes_give_one_line_errors(tmp_path, capsys, args, line):
    """A malformed --ir-drop (no @OHM, two @) or --tile (no x), or --grid 1: exit status 2 and
    exactly this one stderr line, before any device is sampled or file written."""
    out = tmp_path / "o"
    assert main([*args, "-o", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [line]
    assert not out.exists()


def _csv(tmp_path):
    """A small readable measurement table (its content is never fitted by these tests)."""
    p = tmp_path / "data.csv"
    p.write_text("device,g,time\n1,1e-5,1\n2,1.1e-5,1\n")
    return p


# each case: the command's words before the output, the text the one stderr line must hold
OPTION_CASES = [
    (["calibrate", "{csv}", "--seed", "-1"], "--seed must be >= 0, got -1"),
    (["calibrate", "{csv}", "--bootstrap", "-1"], "--bootstrap must be >= 0, got -1"),
    (["calibrate", "{csv}", "--min-devices", "1"], "--min-devices must be >= 2, got 1"),
    (["calibrate", "{csv}", "--min-devices", "2.5"], "--min-devices must be a finite integer"),
    (["calibrate", "{csv}", "--t0", "0"], "--t0 must be > 0, got 0.0"),
    (["calibrate", "{csv}", "--t-max", "0"], "--t-max must be > 0, got 0.0"),
    (["calibrate", "{csv}", "--t-max", "inf"], "--t-max"),
    (["calibrate", "{csv}", "--window", "1e400uS"], "--window must be finite, got inf"),
    (["calibrate", "{csv}", "--window", "nanuS"], "--window must be finite, got nan"),
    (["calibrate", "{csv}", "--window=-5uS"], "--window must be > 0"),
    (["calibrate", "{csv}", "--sample-rate", "0"], "--sample-rate must be > 0, got 0"),
    (["calibrate", "{csv}", "--samples-from", "-1"], "--samples-from must be >= 0"),
    (["crossbar", "--sizes", "inf"], "--sizes entry must be a finite integer, got 'inf'"),
    (["crossbar", "--sizes", "nan"], "--sizes entry must be a finite integer, got 'nan'"),
    (["crossbar", "--sizes", "200000"], "--sizes entries must be in [2, 4096], got 200000"),
    (["crossbar", "--sizes", "64,63"], "--sizes entries must be even"),
    (["crossbar", "--sizes", "0"], "--sizes entries must be in [2, 4096], got 0"),
    (["crossbar", "--seed", "-5"], "--seed must be >= 0, got -5"),
    (["crossbar", "--vectors", "1e9"],
     "--sizes up to 1024 with --vectors 1000000000 needs about 4.19 PB of memory"),
    (["crossbar", "--sizes", "4096", "--vectors", "1e6"], "pass --yes to go on"),
    (["crossbar", "--vectors", "0"], "--vectors must be >= 1, got 0"),
    (["crossbar", "--v-max", "nan"], "--v-max must be finite, got nan"),
    (["crossbar", "--v-max", "0"], "--v-max must be > 0"),
    (["crossbar", "--r-wire", "1,-1"], "--r-wire entries must be >= 0, got -1.0"),
    (["crossbar", "--r-wire", "inf"], "--r-wire entries must be finite"),
    (["crossbar", "--adc-bits", "64"], "--adc-bits must be in [2, 24], got 64"),
    (["crossbar", "--g-max", "inf"], "--g-max must be finite"),
    (["crossbar", "--g-min=-1e-6"], "--g-min must be >= 0"),
    (["crossbar", "--time=-1h"], "--time must be a finite duration >= 0 s"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--grid", "1e9"],
     "--grid must be in [2, 100001], got 1000000000"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--seed", "-1"],
     "--seed must be >= 0, got -1"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--samples", "1e12"],
     "--samples 1000000000000 at 1 time(s) needs about 24 TB of memory"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--samples", "99"],
     "--samples must be >= 100, got 99"),
    (["export-noise", "pcm-ibm-2020", "--time", "inf"], "--time 'inf' is not a duration"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--significance", "nan"],
     "--significance must be finite"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--pair-levels", "0"],
     "--pair-levels must be >= 1"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--ir-drop", "8x8@inf"],
     "--ir-drop wire resistance must be finite"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--ir-drop", "0x8@1"],
     "rows and columns must be >= 1"),
    (["evaluate", "m", "--device-model", "pcm-ibm-2020", "--times", "1s", "--programmings",
      "0"], "--programmings must be >= 1, got 0"),
    (["evaluate", "m", "--device-model", "pcm-ibm-2020", "--times", "1s", "--r-wire", "inf"],
     "--r-wire must be finite"),
    (["evaluate", "m", "--device-model", "pcm-ibm-2020", "--times", "1s", "--bootstrap",
      "-2"], "--bootstrap must be >= 0"),
    (["evaluate", "m", "--device-model", "pcm-ibm-2020", "--times", "1s",
      "--circuit-samples", "0"], "--circuit-samples must be >= 1"),
    (["train", "--dataset", "digits", "--model", "mlp", "--train-noise", "0", "--samples",
      "0", "--epochs", "-1", "--seed", "0", "--eval-noise", "0"], "--epochs must be >= 0"),
    (["train", "--dataset", "digits", "--model", "mlp", "--train-noise", "0", "--samples",
      "0", "--epochs", "1", "--seed", "0", "--eval-noise", "0", "--train-shift", "nan"],
     "--train-shift must be finite"),
]


@pytest.mark.parametrize("words, needle", OPTION_CASES,
                         ids=[" ".join(w[:1] + w[-2:]) for w, _ in OPTION_CASES])
def test_bad_option_values_are_one_line_usage_errors(tmp_path, capsys, words, needle):
    """A negative seed, bootstrap or count, a zero time, an infinite or NaN number, a
    non-integer count or a size beyond the limits: exit status 2 and one stderr line naming
    the option and the allowed range, before any file is read or written."""
    csv = _csv(tmp_path)
    out = tmp_path / "o"
    flag = "--out" if words[0] == "train" else "-o"
    rc = main([w.replace("{csv}", str(csv)) for w in words] + [flag, str(out)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith(f"xbarlab {words[0]}: error: "), err
    assert needle in err
    assert "Traceback" not in err and not out.exists()


def test_bare_xbarlab_prints_help_and_exits_2(capsys):
    """`xbarlab` without a command prints the help (on stderr) and exits 2; an unknown
    command is one usage line."""
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [err.strip()] and "invalid choice: 'frobnicate'" in err


def test_output_that_is_an_input_is_refused(tmp_path, capsys, monkeypatch):
    """`calibrate data.csv -o data.csv --force` (also through a relative path or a symlink)
    and `export-noise model.h5 -o model.h5`: exit 2, one line, the input unchanged."""
    csv = _csv(tmp_path)
    before = csv.read_bytes()
    (tmp_path / "alias.csv").symlink_to(csv)
    monkeypatch.chdir(tmp_path)
    for out in (str(csv), "data.csv", "alias.csv"):
        assert main(["calibrate", "data.csv", "-o", out, "--force"]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "would replace the input" in err
    model = tmp_path / "model.h5"
    model.write_bytes(b"not a model")
    assert main(["export-noise", str(model), "--time", "1h", "-o", str(model), "--force"]) == 2
    assert "would replace the input" in capsys.readouterr().err
    assert csv.read_bytes() == before and model.read_bytes() == b"not a model"


def test_folder_or_fifo_as_input_says_what_it_is(tmp_path, capsys):
    """A folder or a FIFO given as the measurement file: exit 1 and one line saying what it
    is (the FIFO is never opened, so nothing blocks); nothing written."""
    import os

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    for path, kind in ((tmp_path, "is a folder"), (fifo, "is a FIFO (named pipe)")):
        assert main(["calibrate", str(path), "-o", str(tmp_path / "m.h5")]) == 1
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and kind in err
    assert not (tmp_path / "m.h5").exists()


def _relaxation_example():
    from pathlib import Path

    import xbarlab

    return Path(xbarlab.__file__).parent / "data" / "examples" / "rram_relaxation.csv"


@pytest.mark.slow
def test_shipped_relaxation_example_calibrates_with_the_default(tmp_path):
    """`calibrate data/examples/rram_relaxation.csv` (16 devices per level) works with the
    default --min-devices (about 3 s)."""
    assert main(["calibrate", str(_relaxation_example()), "--bootstrap", "0",
                 "-o", str(tmp_path / "rr.h5")]) == 0
    assert (tmp_path / "rr.h5").is_file()


def test_too_large_min_devices_says_which_value_works(tmp_path, capsys):
    """--min-devices above every level's device count: one line (exit 1) saying which value
    works, no file written."""
    assert main(["calibrate", str(_relaxation_example()), "--bootstrap", "2",
                 "--min-devices", "20", "-o", str(tmp_path / "rr2.h5")]) == 1
    err = capsys.readouterr().err.split("\r")[-1]  # after the cleared progress bar
    assert err.splitlines() == [
        "xbarlab calibrate: error: no level has >= 20 devices with reads after the first, so "
        "a drift fit is impossible; the largest level has 16: set --min-devices <= 16"]
    assert not (tmp_path / "rr2.h5").exists()


@pytest.mark.parametrize("words", [
    ["crossbar", "--device", "{fifo}"],
    ["export-noise", "{fifo}", "--time", "1h"],
    ["evaluate", "m", "--device-model", "{fifo}", "--times", "1s"],
    ["train", "--dataset", "digits", "--model", "mlp", "--train-noise", "{fifo}", "--samples",
     "0", "--epochs", "1", "--seed", "0", "--eval-noise", "0"],
])
def test_fifo_as_model_or_noise_file_does_not_block(tmp_path, capsys, words):
    """A FIFO named as device model or noise file: exit 1, one line naming it, at once."""
    import os

    fifo = tmp_path / "m.h5"
    os.mkfifo(fifo)
    flag = "--out" if words[0] == "train" else "-o"
    assert main([w.replace("{fifo}", str(fifo)) for w in words]
                + [flag, str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "is a FIFO (named pipe)" in err
