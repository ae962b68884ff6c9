"""The calibration report folder and the calibrate command that writes it."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest
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


class _Page(HTMLParser):
    """Collects an HTML page's text and checks that its elements nest."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.text: list[str] = []
        self.images = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images += dict(attrs)["src"].startswith("data:image/png;base64,")
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag, f"</{tag}> closes {self.open[-1:]}"

    def handle_data(self, data):
        self.text.append(data)


def _parse_html(path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.open == [], page.open
    return page


def test_report_folder_for_relaxation(techc_split, tmp_path):
    """write_report on a tech C fit writes the g-vs-time plot, the parameter plot, the KS
    heat map and report.md with the held-out likelihoods of both drift models and a KS
    median equal to ks_table's for the same seed; the goodness table lists the sampling
    floor and both baselines per cell, the verdict (in-sample: indistinguishable) and the
    band widening beyond the last fitted time (1e5 s), and each extrapolation form's held-out
    score, the chosen form's the smallest; report.html beside it parses with
    html.parser into properly nested elements, embeds the three plots inline and holds the
    same verdict line; reusing the folder is allowed (manifest)."""
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
    assert "| level | g [uS] | t [s] | devices | KS | floor | p | empirical bootstrap | " \
           "persistence | flag |" in text
    verdict = "**Verdict**: indistinguishable from the data at this sample size"
    assert verdict in text and "widens at every plotted level" in text
    ri = model.report.relaxation
    assert f"{ri.extrapolation} {ri.extrapolation_ks[ri.extrapolation]:.3f}" in text
    assert ri.extrapolation_ks[ri.extrapolation] == min(ri.extrapolation_ks.values())
    page = _parse_html(tmp_path / "rep" / "report.html")
    body = "".join(page.text)
    assert page.images == 3
    assert "Verdict: indistinguishable from the data at this sample size" in body
    assert "(t = 1e+05 s)" in body
    write_report(model, a, tmp_path / "rep", rng=np.random.default_rng(3), n_replicates=20)


@pytest.mark.slow
def test_report_says_when_bands_do_not_widen(tmp_path):
    """A relaxation table fitted to cells written here from their equations (4 levels x 150
    cells, reads at 1, 10 and 100 s; g(t) = g_0 - a u + b W(u), u = ln(1 + t/1 s)) with
    t_max = 100 s holds its last row beyond the data: the report says its 90 % band does
    not widen there at every plotted level (ratio 1.00 in S and relative to the median), in
    report.md and report.html."""
    from _relaxing_cells import relaxing_cells
    from xbarlab.calibration import write_report

    data = relaxing_cells(150, 0.3e-6, np.random.default_rng(11))
    model = fit(data, conditioning="initial read", drift="relaxation", n_boot=2,
                min_devices=20, t_max=100.0, rng=np.random.default_rng(0))
    md = write_report(model, data, tmp_path / "rep", rng=np.random.default_rng(3),
                      n_replicates=20)
    text = md.read_text()
    assert "**The model's 90 % band does not widen** beyond it at level(s)" in text
    band_rows = re.findall(r"^\| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| ([\d.]+) \| "
                           r"([\d.]+) \|$", text, flags=re.M)
    assert band_rows == [("1.00", "1.00")] * 4
    body = "".join(_parse_html(tmp_path / "rep" / "report.html").text)
    assert "The model's 90 % band does not widen beyond it" in body


def test_structure_summary_names_the_levels_that_fitted_w():
    """Under "both" the report's read-noise sentence gives the fitted share w and the
    levels it came from; under a single structure it says nothing of w."""
    from xbarlab.calibration.powerlaw import PowerLawInfo
    from xbarlab.calibration.report import structure_summary

    ev = {"loglik": {"random-walk": 12.0, "independent": 12.1, "both": 12.2}, "devices": 10,
          "reads": 50, "w_both": 0.55, "both_gain": 0.1, "both_gain_se": 0.01}
    info = PowerLawInfo(read_noise="both", read_noise_evidence=ev,
                        w_independent=np.full(3, 0.52), w_levels_g=np.array([6.25e-6, 25e-6]))
    s = structure_summary(info)
    assert "w = 0.520 comes from the 2 levels 6.25-25 uS" in s and "w = 0.550 for all" in s
    one = structure_summary(PowerLawInfo(read_noise="independent", read_noise_evidence=ev))
    assert "comes from" not in one
