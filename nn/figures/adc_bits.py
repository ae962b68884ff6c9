"""Accuracy vs ADC bits (poster Fig. 9): the crossbar's signed ADC after every analog layer.

    python -m xbarlab.nn.figures.adc_bits --out runs/nn-exp [--datasets digits]
        [--logits adc|float|both]

The plain, noise-injection and HA-SGD (L = 4, 8) networks trained at σ = 0.4 (shared with
:mod:`~xbarlab.nn.figures.noise_level_sweep`, ``OUT/exp1/...``) are evaluated with each
layer's output through ``crossbar.converters.ADC(bits=B, signed=True)`` (codes
``-(2**(B-1) - 1) .. 2**(B-1) - 1`` with a zero code, :func:`xbarlab.nn.quant.attach_adc`),
full scale per layer = max |output| of the clean network on the training split, clean and
at test σ = 0.1 (10 draws). ``--logits`` says whether the last layer's outputs (the
logits) pass the ADC too (``adc``, the default), stay in floating point (``float``), or
both are shown. Writes ``exp3.md``, ``exp3.json`` and plots into ``OUT``.
"""

from __future__ import annotations

from pathlib import Path

from ..data import load_dataset
from ..noise import GaussianNoise
from ..quant import attach_adc, calibrate_adc_ranges, detach_adc
from ..train import (
    accuracy,
    evaluate_noise,
    load_trained,
    seed_generators,
)
from .common import DATASETS, figure_main, markdown_table, plot_curves, trained_run, write_outputs

__all__ = ["NETWORKS", "run", "main"]

#: label -> (run folder under OUT/exp1/<dataset>/, σ_train, L)
NETWORKS = {"plain (L=0)": ("plain", 0.0, 0), "inj L=1 σt=0.4": ("inj_s0.4", 0.4, 1),
            "HA-SGD L=4 σt=0.4": ("ha4_s0.4", 0.4, 4), "HA-SGD L=8 σt=0.4": ("ha8_s0.4", 0.4, 8)}
_LOGITS = {"adc": (True,), "float": (False,), "both": (True, False)}


def _curves(net, data, bits, *, last_layer: bool, test_sigma: float, draws: int):
    ranges = calibrate_adc_ranges(net, [data.x_train])
    cc, cn = {}, {}
    for b in bits:
        attach_adc(net, bits=b, ranges=ranges, last_layer=last_layer)
        try:
            cc[b] = (accuracy(net, data.x_test, data.y_test), 0.0)
            e = evaluate_noise(net, data.x_test, data.y_test, levels=[test_sigma],
                               make_noise=GaussianNoise, draws=draws,
                               generator=seed_generators(0)["eval"])[0]
            cn[b] = (e["accuracy_mean"], e["accuracy_std"])
        finally:
            detach_adc(net)
    return cc, cn


def run(out: Path, datasets=DATASETS, bits=(2, 3, 4, 5, 6, 8), test_sigma=0.1, draws=10,
        logits: str = "adc") -> dict:
    """Accuracy vs ADC bits for the networks of :data:`NETWORKS`; returns the summary."""
    summary, md = {}, [f"## Accuracy (%) vs ADC bits (signed ADC with a zero code after each "
                       f"layer), clean and at test σ = {test_sigma:g}", ""]
    for ds in datasets:
        data = load_dataset(ds)
        summary[ds] = {}
        for last in _LOGITS[logits]:
            tag = "logits through the ADC" if last else "logits in floating point"
            key = "logits_adc" if last else "logits_float"
            curves_clean, curves_noisy = {}, {}
            for label, (run_name, sigma, samples) in NETWORKS.items():
                folder = out / "exp1" / ds / run_name
                trained_run(folder, ds, sigma, samples)
                net, _ = load_trained(folder)
                curves_clean[label], curves_noisy[label] = _curves(
                    net, data, bits, last_layer=last, test_sigma=test_sigma, draws=draws)
            summary[ds][key] = {
                "clean": {k: {str(b): v for b, v in c.items()} for k, c in curves_clean.items()},
                f"sigma_{test_sigma:g}": {k: {str(b): v for b, v in c.items()}
                                          for k, c in curves_noisy.items()}}
            plot_curves(out / f"exp3_{ds}_{key}_clean.png",
                        f"{ds}: accuracy vs ADC bits (no weight noise, {tag})", curves_clean,
                        xlabel="ADC bits")
            plot_curves(out / f"exp3_{ds}_{key}_sigma{test_sigma:g}.png",
                        f"{ds}: accuracy vs ADC bits at test σ = {test_sigma:g} ({tag})",
                        curves_noisy, xlabel="ADC bits")
            md += [f"### {ds}, {tag}, no weight noise", "",
                   markdown_table(curves_clean, bits, "method \\ bits"), "",
                   f"### {ds}, {tag}, test σ = {test_sigma:g} ({draws} draws)", "",
                   markdown_table(curves_noisy, bits, "method \\ bits"), ""]
    write_outputs(out, "exp3", md, summary)
    return summary


def _options(ap) -> None:
    ap.add_argument("--logits", default="adc", choices=sorted(_LOGITS),
                    help="the last layer's outputs through the ADC (adc), in floating point "
                    "(float), or both tables")


def main(argv=None) -> int:
    return figure_main("adc_bits", "exp3", run, DATASETS, argv, extra=_options)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
