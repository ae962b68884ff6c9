"""The report of ``xbarlab run`` (xbarlab/pipeline/report.py)."""

from __future__ import annotations

import json

from _tiny_run import ALL
from xbarlab import pipeline as P


def test_end_to_end_report(tiny_run):
    """A tiny run writes every stage folder with its completion marker and a report whose
    HTML embeds every plot inline: report.html holds exactly as many base64 PNGs as
    report.md links plots (>= 4: KS map, crossbar error, noise, accuracy vs time), and the
    numbers in the report are those of the stage outputs (the HA-SGD clean accuracy)."""
    cfg, out = tiny_run
    assert "report_error" not in json.loads((out / "calibrate" / "summary.json").read_text())
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


def test_report_leaves_matplotlib_alone(tiny_run, tmp_path):
    """Writing the report again from the finished stages draws as many plots as the run's
    report without changing matplotlib's backend setting or pyplot's list of figures."""
    import sys

    import matplotlib
    from xbarlab.pipeline.context import StageContext
    from xbarlab.pipeline.report import write_run_report

    cfg_path, out = tiny_run
    backend = dict.__getitem__(matplotlib.rcParams, "backend")
    pyplot = sys.modules.get("matplotlib.pyplot")
    figs = pyplot.get_fignums() if pyplot is not None else None
    cfg, _ = P.load_config(cfg_path)
    ctx = StageContext(name="report", out=tmp_path, config=cfg,
                       upstream={s: out / s for s in ALL}, seed=cfg["seed"],
                       progress=None, show_progress=False)
    n = write_run_report(ctx)
    assert n == len(list((out / "report" / "plots").glob("*.png"))) >= 4
    assert dict.__getitem__(matplotlib.rcParams, "backend") == backend
    if pyplot is not None:
        assert pyplot.get_fignums() == figs
    else:
        assert "matplotlib.pyplot" not in sys.modules


def test_rerun_redraws_only_the_plots_whose_data_changed(tiny_run, tmp_path, monkeypatch):
    """After a change of the crossbar settings the report draws the crossbar plot again and
    copies the others from the previous report (same bytes); a changed title draws none."""
    import shutil

    from _tiny_run import run
    from xbarlab.pipeline import report as R

    cfg0, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    old = {p.name: p.read_bytes() for p in (out / "report" / "plots").glob("*.png")}
    drawn: list[str] = []
    save = R._savefig
    monkeypatch.setattr(R, "_savefig", lambda fig, path: drawn.append(path.name)
                        or save(fig, path))
    cfg = tmp_path / "c.toml"
    cfg.write_text(cfg0.read_text().replace("r_wire = [1.0]", "r_wire = [2.0]"))
    shutil.copyfile(cfg0.parent / "tiny.csv", tmp_path / "tiny.csv")
    assert run(cfg, out)["status"]["report"] == "ran"
    assert drawn == ["crossbar_error.png"]
    new = {p.name: p.read_bytes() for p in (out / "report" / "plots").glob("*.png")}
    assert new.keys() == old.keys()
    assert [n for n in new if new[n] != old[n]] == ["crossbar_error.png"]
    drawn.clear()
    cfg.write_text(cfg.read_text().replace('title = "tiny"', 'title = "tiny 2"'))
    assert run(cfg, out)["status"]["report"] == "ran"
    assert drawn == []


def test_report_html_reads_headline_first(tiny_run):
    """report.html opens with the result: its first section is the accuracy over time, led
    by one bold sentence per weight-mapping range whose numbers are evaluation.json's (1 d,
    no compensation; mean ± half-width of the 95 % t-interval over the 2 programmings,
    t_0.975 with 1 degree of freedom = tan(0.475 pi) = 12.7062047, computed here from the
    accuracies); the
    accuracy table and its plot share one row; text Markdown is rendered (no backtick
    left in the HTML, `xbarlab run` as <code>); the device model is named in words, not
    as a Python repr; a table longer than FOLD_ROWS folds into <details>."""
    import math
    import re

    from xbarlab.formats.report_doc import FOLD_ROWS

    _, out = tiny_run
    html = (out / "report.html").read_text()
    sections = re.findall(r"<h2>(.*?)</h2>", html)
    assert sections[0] == "1. Result: analog accuracy over time"
    assert sections[1:6] == ["2. Measured data", "3. Calibrated device model",
                             "4. Crossbar study (exact circuit solver)",
                             "5. Weight-domain noise exported from the fitted device",
                             "6. Training"]
    ev = json.loads((out / "evaluate" / "evaluation.json").read_text())
    first = html.split("<h2>", 2)[1]
    assert [g["label"] for g in ev["ranges"]] == ["3.125–25 µS", "3.125–12.5 µS"]
    for g in ev["ranges"]:
        raw = ev["raw"][g["range"]]

        def cell(method, raw=raw):
            a = [e for e in raw[method]["results"]
                 if e["compensation"] == "none" and e["time_s"] == 86400.0][0]["accuracies"]
            half = math.tan(0.475 * math.pi) * abs(a[0] - a[1]) / 2  # t_{0.975, 1 dof}
            return f"{(a[0] + a[1]) / 2:.4f} ± {half:.4f}"

        assert (f"<strong>At 1 d after programming, weights on {g['label']}, HA-SGD keeps a "
                f"test accuracy of {cell('HA-SGD')} and plain SGD {cell('SGD')}</strong>"
                ) in first
    pair = re.search(r'<div class="pair">(.*?)</figure></div>', first, re.S)
    assert pair and "<table>" in pair.group(1) and "accuracy_vs_time" not in pair.group(1)
    assert 'src="data:image/png;base64,' in pair.group(1)
    assert "`" not in html.split("<pre>")[0] and "<code>xbarlab run</code>" in html
    assert "CompositeDevice(" not in html
    assert "Model: programming = fitted programming; drift = fitted power law;" in html
    stats = json.loads((out / "calibrate" / "summary.json").read_text())["stats"]
    assert len(stats) > FOLD_ROWS
    assert f"<details><summary>table of {len(stats)} rows</summary>" in html


def test_report_shows_the_calibration_verdict_floor_and_baselines(tiny_run):
    """Section 3 of report.md and report.html carries the calibration's one-line verdict and,
    per scored time point (1 s, 100 s and 10^4 s of the tiny data: the model is conditioned on
    the target, so the first read is predicted too), the median KS, sampling floor,
    empirical-bootstrap and persistence medians of calibrate/report/goodness.json, printed to
    3 decimals ("–" for persistence at the first read, which it copies)."""
    from xbarlab.units import format_duration

    _, out = tiny_run
    g = json.loads((out / "calibrate" / "report" / "goodness.json").read_text())
    assert g == json.loads((out / "calibrate" / "summary.json").read_text())["goodness"]
    assert [r["t"] for r in g["per_time"]] == [1.0, 100.0, 1e4]
    assert g["per_time"][0]["persistence"] is None
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    sec = md.split("## 3. ")[1].split("## 4. ")[0]
    assert f"**Calibration verdict** (in-sample): {g['verdict']}." in sec
    assert g["verdict"].startswith(("indistinguishable", "differs"))
    for r in g["per_time"]:
        cells = [format_duration(r["t"]), "fitted", str(r["cells"])] + [
            "–" if r[k] is None else f"{r[k]:.3f}"
            for k in ("ks", "floor", "empirical", "persistence")]
        assert "| " + " | ".join(cells) + " |" in sec
        assert "<td>" + "</td><td>".join(cells) + "</td>" in html
    assert "<th>sampling floor</th>" in html and "<th>persistence</th>" in html
