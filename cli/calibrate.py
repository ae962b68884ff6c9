"""``xbarlab calibrate``: fit a device model to measured data."""

from __future__ import annotations

import argparse

from ..checks import check_number, number_type
from .options import (
    add_measurement_options,
    add_output_options,
    add_seed_option,
    parse_conductance,
    read_measurements_from_args,
)

#: The command's name on the command line.
NAME = "calibrate"
#: Its line in ``xbarlab --help``.
SUMMARY = (
    "fit programming error, drift/relaxation and read noise, or a pulsed-update device, "
    "from measured data"
)
#: The text atop ``xbarlab calibrate --help``.
DESCRIPTION = (
    "Fit a device model to measured reads (programming error vs target, "
    "drift/relaxation vs time, read noise) with bootstrap bands; write the model file and "
    "a report folder (PNG plots; report.md and report.html with tables, model choices, KS "
    "distances beside their sampling floor and two baselines, and a one-line verdict). "
    "With pulse data (ramps of reads after identical SET/RESET pulses, or a step-size table "
    "per conductance bin; learned from the files, or --model pulsed) it fits a pulsed-update "
    "device instead (step vs state up and down, bounds, symmetric point, spreads) and writes "
    "it as JSON."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``xbarlab calibrate``."""
    add_measurement_options(p)
    add_output_options(p, metavar="MODEL.h5", what="device-model file to write (HDF5)")
    p.add_argument("--report", metavar="DIR", help="report folder (plots, report.md, report.html)")
    p.add_argument("--conditioning", choices=["target", "initial read"], default=None,
                   help="what the model's input means (default: target when a g_target "
                   "column exists, else the first read)")
    p.add_argument("--drift", choices=["auto", "power-law", "relaxation", "none"],
                   default="auto", help="drift model (auto: chosen by held-out likelihood)")
    p.add_argument("--read-noise", choices=["auto", "random-walk", "independent", "both"],
                   default="auto", help="structure of the power law's 1/f read noise in time "
                   "(auto: chosen by held-out likelihood)")
    p.add_argument("--read-noise-law", choices=["log", "linear", "auto"], default="auto",
                   help="how the power law's read noise enters a read: log, g e^e; linear, "
                   "g (1 + e) clamped at 0 S; auto: chosen by held-out likelihood per read")
    p.add_argument("--family", choices=["auto", "normal", "bounded", "student-t", "mixture"],
                   default="auto", help="programming-error family (auto: lowest AIC)")
    p.add_argument("--window", metavar="G",
                   help="write-verify window half-width, e.g. 5uS (default: estimated)")
    p.add_argument("--t0", metavar="DURATION", help="power-law reference time (default: fitted)")
    p.add_argument("--t-max", default="10y", metavar="DURATION",
                   help="last time the relaxation table extrapolates to (default 10y)")
    p.add_argument("--min-devices", type=number_type(integer=True, lo=2), default=16, metavar="N",
                   help="levels with fewer devices are skipped and listed (default 16)")
    p.add_argument("--bootstrap", type=number_type(integer=True, lo=0), default=100, metavar="B",
                   help="bootstrap replicates, devices resampled (default 100)")
    add_seed_option(p, what="seed of the bootstrap")
    p.add_argument("--compose-with", metavar="MODEL.h5",
                   help="a target-conditioned model whose programming error precedes this "
                   "fit's relaxation (the result is target-conditioned)")
    g = p.add_argument_group("pulse data (--model pulsed)")
    g.add_argument("--model", choices=["auto", "inference", "pulsed"], default="auto",
                   help="what to fit: an inference model (reads after programming) or a "
                   "pulsed-update device (auto: pulsed when the files hold pulse ramps or a "
                   "step table)")
    g.add_argument("--pulse-layout", choices=["auto", "ramp columns", "ramp rows",
                                              "step quantiles", "step rows"], default="auto",
                   help="layout of pulse data (auto: learned from the content): one ramp per "
                   "column (files named set/reset); rows of pulse, direction, g[, device, "
                   "ramp]; step quantiles per bin (files named increasing/decreasing); rows "
                   "of g, direction, step")
    g.add_argument("--step-rule", choices=["auto", "constant", "soft bounds", "power step",
                                           "exponential step", "lookup table"], default="auto",
                   help="mean step vs state (auto: highest held-out likelihood)")
    p.set_defaults(handler=run)


def _is_pulse_data(args) -> bool:
    """Whether ``args.inputs`` are to be fitted as pulse data (``--model``, else learned:
    files whose content is a pulse layout, ramp columns only when every file's name gives
    its direction, and no measurement-table layout option given)."""
    if args.model != "auto":
        return args.model == "pulsed"
    from ..errors import DataFormatError
    from ..formats.pulse_tables import PulseLayout, direction_from_name, pulse_layout
    from .options import measurement_options_given

    if [o for o in measurement_options_given(args) if o != "--units"]:
        return False
    try:
        layout = pulse_layout(args.inputs)
    except (DataFormatError, OSError):
        return False
    if layout is PulseLayout.RAMP_COLUMNS:
        from pathlib import Path

        return all(direction_from_name(Path(p)) is not None for p in args.inputs)
    return True


def run_pulsed(args: argparse.Namespace) -> int:
    """Fit a pulsed-update device to pulse data (``args.inputs``), write it as JSON to
    ``args.out`` and the report to ``args.report``; return the exit status."""
    from pathlib import Path

    import numpy as np

    from ..calibration.pulsed import fit_pulsed_ramps, fit_step_table, step_table_rule
    from ..calibration.pulsed_goodness import ramp_goodness, table_goodness
    from ..calibration.pulsed_report import write_pulse_report
    from ..devices.pulsed import PulsedDevice
    from ..errors import ConfigError
    from ..formats import check_input_file, write_text_atomic
    from ..formats.pulse_tables import (
        PulseLayout,
        PulseRamps,
        pulse_layout,
        read_pulse_ramps,
        read_step_table,
    )
    from ..units import parse_mapping
    from .options import measurement_options_given

    defaults = {"conditioning": None, "drift": "auto", "read_noise": "auto",
                "read_noise_law": "auto", "family": "auto",
                "window": None, "t0": None, "t_max": "10y", "min_devices": 16}
    unused = [o for o in measurement_options_given(args) if o != "--units"] + [
        "--" + k.replace("_", "-") for k, v in defaults.items() if getattr(args, k) != v]
    if unused:
        verb = "does" if len(unused) == 1 else "do"
        raise ConfigError(f"{', '.join(unused)} {verb} not apply to pulse data (options of "
                          "pulse data: --pulse-layout, --step-rule, --units g=UNIT, "
                          "--bootstrap, --seed)")
    for p in args.inputs:
        check_input_file(p, what="pulse data file")
    unit = parse_mapping(args.units, what="--units", allowed_keys=("g",)).get("g", "S")
    layout = (pulse_layout(args.inputs) if args.pulse_layout == "auto"
              else PulseLayout(args.pulse_layout))
    form = None if args.step_rule == "auto" else args.step_rule
    if layout in (PulseLayout.RAMP_COLUMNS, PulseLayout.RAMP_ROWS):
        data = read_pulse_ramps(args.inputs, layout=layout, unit=unit)
        fit = fit_pulsed_ramps(data, form=form, n_boot=args.bootstrap,
                               rng=np.random.default_rng(args.seed))
    else:
        data = read_step_table(args.inputs, layout=layout, unit=unit)
        fit = fit_step_table(data, form=form, n_boot=args.bootstrap,
                             rng=np.random.default_rng(args.seed))
    out = Path(args.out)
    write_text_atomic(out, fit.device.to_json() + "\n", force=args.force)
    print(f"wrote {out} (pulsed device, {fit.form.value}; symmetric point "
          f"{fit.values['symmetric_point'] * 1e6:.4g} uS, {fit.values['n_states']:.4g} states)")
    if args.report:
        rng = np.random.default_rng([args.seed, 1])
        if isinstance(data, PulseRamps):
            ks = ramp_goodness(fit.device, fit.sigma_read, data, rng=rng)
        else:
            measured = PulsedDevice(rule=step_table_rule(data), g_min=fit.device.g_min,
                                    g_max=fit.device.g_max)
            ks = table_goodness(fit.device, data, measured, rng=rng)
        md = write_pulse_report(fit, data, args.report, ks=ks, force=args.force,
                                sources=tuple(str(p) for p in args.inputs))
        print(f"wrote {md}, {md.with_suffix('.html').name} and plots in {args.report}; "
              f"verdict: {ks.verdict()}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``xbarlab calibrate`` with the parsed ``args``; return the exit status."""
    from pathlib import Path

    from ..errors import DataFormatError
    from ..formats import check_input_file, check_not_input, check_output_path
    from ..units import parse_duration

    out = Path(args.out)
    inputs = [*args.inputs, *([args.compose_with] if args.compose_with else [])]
    check_not_input(out, inputs, what="model file (-o)")
    check_output_path(out, force=args.force, what="model file (-o)")
    if args.report:
        check_output_path(args.report, folder=True, what="report folder (--report)")
    if args.compose_with:
        check_input_file(args.compose_with, what="--compose-with model")
    if _is_pulse_data(args):
        if args.compose_with:
            from ..errors import ConfigError

            raise ConfigError("--compose-with applies to inference models, not to pulse data")
        return run_pulsed(args)
    # bad option values fail before the (slow) read
    window = (parse_conductance(args.window, "--window", lo_open=True)
              if args.window else None)
    t0 = (check_number(parse_duration(args.t0, what="--t0"), what="--t0", lo=0, lo_open=True)
          if args.t0 else None)
    t_max = check_number(parse_duration(args.t_max, what="--t-max"), what="--t-max", lo=0,
                         lo_open=True)
    import numpy as np
    from tqdm import tqdm

    from ..calibration import fit, write_report
    from ..devices import load

    meas = read_measurements_from_args(args)
    stages = ["read", "pivot", "drift / relaxation", "programming error", "read noise", "save",
              "report"]
    bar = tqdm(total=len(stages), desc="calibrate", unit="step", leave=False,
               disable=None)  # shown only when stderr is a terminal

    def progress(step):
        bar.set_postfix_str(step)
        bar.update(1)

    try:  # the bar is cleared before anything else is printed, an error included
        progress("read")
        composed = load(args.compose_with) if args.compose_with else None  # with provenance
        model = fit(meas, conditioning=args.conditioning, drift=args.drift, family=args.family,
                    window=window, t0=t0, t_max=t_max, min_devices=args.min_devices,
                    n_boot=args.bootstrap,
                    rng=np.random.default_rng(args.seed), progress=progress,
                    programming_from=composed, read_noise_structure=args.read_noise,
                    read_noise_law=args.read_noise_law)
        progress("save")
        model.to_file(out, force=args.force)
        if args.report:
            progress("report")
            md = write_report(model, meas, args.report, rng=np.random.default_rng(args.seed),
                              force=args.force)
    except DataFormatError as exc:  # the library's parameter is this command's option
        raise DataFormatError(str(exc).replace("min_devices", "--min-devices")) from None
    finally:
        bar.close()
    print(f"wrote {out} ({model!r})")
    if args.report:
        print(f"wrote {md}, {md.with_suffix('.html').name} and plots in {args.report}")
    return 0
