"""The calibration report folder and the calibrate command that writes it."""

from __future__ import annotations

import numpy as np
from xbarlab.calibration import (
    fit,
    ks_table,
)


def test_cli_calibrate_writes_model_and_report(hku_path, tmp_path, capsys):
    """`xbarlab calibrate HKU --wide --units g=uS -o m.h5 --report R` exits 0 and writes a
    model that devices.load reads (bounded family), report.md naming the family and the
    PNG of the programming error; a second run without --force exits 2 and leaves the file."""
    from xbarlab.cli import main
    from xbarlab.devices import load

    out = tmp_path / "m.h5"
    rep = tmp_path / "report"
    args = ["calibrate", str(hku_path), "--wide", "--units", "g=uS", "-o", str(out),
            "--report", str(rep), "--bootstrap", "50"]
    assert main(args) == 0
    model = load(out)
    assert model.programming.family.value == "bounded"
    text = (rep / "report.md").read_text()
    assert "bounded" in text and "programming_error.png" in text
    assert (rep / "programming_error.png").stat().st_size > 1000
    before = out.read_bytes()
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_report_folder_for_relaxation(techc_split, tmp_path):
    """write_report on a tech C fit writes the g-vs-time plot, the parameter plot, the KS
    heat map and report.md with the held-out likelihoods of both drift models and a KS
    median equal to ks_table's for the same seed; reusing the folder is allowed (manifest)."""
    from xbarlab.calibration import write_report

    a, _ = techc_split
    model = fit(a, rng=np.random.default_rng(0), n_boot=5)
    md = write_report(model, a, tmp_path / "rep", rng=np.random.default_rng(3))
    for name in ("g_vs_time.png", "parameters_vs_g.png", "ks_heatmap.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 1000
    text = md.read_text()
    assert "power-law:" in text and "relaxation:" in text
    ref = ks_table(model, a, rng=np.random.default_rng(3), min_devices=50)
    assert f"Median {ref.median:.3f}" in text
    write_report(model, a, tmp_path / "rep", rng=np.random.default_rng(3))
