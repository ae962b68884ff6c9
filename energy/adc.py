r"""ADC energy and area from the ADC performance survey (B. Murmann, "ADC Performance Survey
1997-2025", ISSCC and VLSI Symposium converters).

Definitions, as in the survey: ``ENOB = (SNDR - 1.76) / 6.02``; energy per Nyquist sample
``P / f_snyq`` [J]; Walden figure of merit ``FOMW = P / (2^ENOB f_snyq)`` [J per
conversion step]; Schreier figure of merit ``FOMS = SNDR + 10 log10(f_snyq / 2 / P)`` [dB].
SNDR is the survey's ``SNDR_plot`` column (the high-input-frequency SNDR where reported).

Look-up (:func:`adc_energy`): a ``b``-bit converter needs ``SNDR >= 6.02 b + 1.76`` dB; the
candidates are the converters with SNDR in ``[that, that + window_db)`` and a Nyquist rate of
at least the sampling rate asked for (Nyquist-rate converters only, by default); the energy is
their minimum (the envelope, best), their median, or a chosen percentile. A resolution outside
the SNDR span of the candidates is refused unless ``extrapolate=True``: above the span, the
statistic of FOMS over the top window is held constant (energy x4 per bit, the thermal-noise
limit); below it, the energy of the lowest window is kept (no saving below the smallest
converters surveyed).

Area (:func:`fit_adc_area`): least squares of ``log10(area)`` on ENOB, ``log10(f_snyq)`` and
``log10(node)`` over the converters that report area and a numeric technology node.
"""

from __future__ import annotations

import csv
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtri

from ..enums import coerce_enum
from ..errors import ConfigError, DataFormatError
from .params import check_quantity, dataclass_from_dict, dataclass_to_dict

__all__ = [
    "enob", "walden_fom", "schreier_fom", "energy_per_sample", "AdcSurvey", "load_adc_survey",
    "AdcStatistic", "AdcLookup", "adc_energy", "AdcAreaModel", "fit_log_area", "fit_adc_area",
    "SURVEY_FILES",
]

#: The survey's tables read by :func:`load_adc_survey`.
SURVEY_FILES = ("isscc.csv", "vlsi.csv")
_BIT_DB = 6.02


def enob(sndr_db):
    """Effective number of bits ``(SNDR - 1.76) / 6.02`` for SNDR [dB]."""
    return (np.asarray(sndr_db, dtype=np.float64) - 1.76) / _BIT_DB


def energy_per_sample(power, f_nyq):
    """Energy per Nyquist sample ``P / f_snyq`` [J] for power P [W] and Nyquist rate [Hz]."""
    return np.asarray(power, dtype=np.float64) / np.asarray(f_nyq, dtype=np.float64)


def walden_fom(power, sndr_db, f_nyq):
    """Walden figure of merit ``P / (2^ENOB f_snyq)`` [J per conversion step]."""
    return energy_per_sample(power, f_nyq) / 2.0 ** enob(sndr_db)


def schreier_fom(power, sndr_db, f_nyq):
    """Schreier figure of merit ``SNDR + 10 log10(f_snyq / 2 / P)`` [dB]."""
    return np.asarray(sndr_db, dtype=np.float64) + 10.0 * np.log10(
        np.asarray(f_nyq, dtype=np.float64) / 2.0 / np.asarray(power, dtype=np.float64))


@dataclass(frozen=True, eq=False)
class AdcSurvey:
    """The survey's converters, one entry a row, SI units (arrays of equal length)."""

    nyquist: np.ndarray
    """True for Nyquist-rate converters (TYPE ``NQ``), False for oversampled ones."""
    sndr_db: np.ndarray
    """SNDR [dB] (the survey's ``SNDR_plot``)."""
    power: np.ndarray
    """P [W]."""
    f_nyq: np.ndarray
    """f_snyq [Hz]: Nyquist rate."""
    area: np.ndarray
    """Area [m^2]; NaN where not reported."""
    node: np.ndarray
    """Technology node [m]: the leading number of the survey's TECHNOLOGY [um] (BiCMOS and
    SiGe processes keep their node); NaN where there is none (bipolar, HBT)."""
    energy_column: np.ndarray
    """The survey's own ``P/fsnyq`` column, converted to J."""
    fomw_column: np.ndarray
    """The survey's own ``FOMW_hf`` column, converted to J per conversion step (NaN: empty)."""
    foms_column: np.ndarray
    """The survey's own ``FOMS_hf`` column [dB] (NaN: empty)."""

    @property
    def energy(self) -> np.ndarray:
        """Energy per Nyquist sample [J], :func:`energy_per_sample` of P and f_snyq."""
        return energy_per_sample(self.power, self.f_nyq)


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


_COLS = {"TYPE": None, "SNDR_plot [dB]": 1.0, "P [W]": 1.0, "fsnyq [Hz]": 1.0,
         "AREA [mm^2]": 1e-6, "TECHNOLOGY": 1e-6, "P/fsnyq [pJ]": 1e-12,
         "FOMW_hf [fJ/conv-step]": 1e-15, "FOMS_hf [dB]": 1.0}


def load_adc_survey(folder) -> AdcSurvey:
    """Read the survey's tables (:data:`SURVEY_FILES`) from ``folder``.

    Rows without SNDR, power or Nyquist rate are left out. Raises FileNotFoundError when a
    table is missing and DataFormatError when a column is.
    """
    cols: dict[str, list] = {k: [] for k in _COLS}
    for name in SURVEY_FILES:
        path = Path(folder) / name
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = set(_COLS) - set(reader.fieldnames or ())
            if missing:
                raise DataFormatError(f"{path}: missing column(s) {sorted(missing)}")
            for row in reader:
                for k, scale in _COLS.items():
                    raw = row[k].strip()
                    cols[k].append(raw if scale is None else _num(raw.split(" ")[0]) * scale)
    a = {k: np.asarray(v) if _COLS[k] is None else np.asarray(v, dtype=np.float64)
         for k, v in cols.items()}
    keep = (np.isfinite(a["SNDR_plot [dB]"]) & (a["P [W]"] > 0) & (a["fsnyq [Hz]"] > 0))
    return AdcSurvey(
        nyquist=(a["TYPE"] == "NQ")[keep], sndr_db=a["SNDR_plot [dB]"][keep],
        power=a["P [W]"][keep], f_nyq=a["fsnyq [Hz]"][keep], area=a["AREA [mm^2]"][keep],
        node=a["TECHNOLOGY"][keep], energy_column=a["P/fsnyq [pJ]"][keep],
        fomw_column=a["FOMW_hf [fJ/conv-step]"][keep], foms_column=a["FOMS_hf [dB]"][keep],
    )


class AdcStatistic(enum.StrEnum):
    """Which converter of the candidates sets the energy."""

    ENVELOPE = "envelope"
    MEDIAN = "median"
    PERCENTILE = "percentile"


@dataclass(frozen=True)
class AdcLookup:
    """What to look up in the survey: resolution, speed and the statistic."""

    bits: int
    """b: resolution [bits]; the converter needs SNDR >= 6.02 b + 1.76 dB."""
    f_sample: float
    """f_s [Hz]: conversions per second; candidates have f_snyq >= f_s."""
    statistic: AdcStatistic = AdcStatistic.MEDIAN
    """Envelope (minimum energy), median, or :attr:`percentile`."""
    percentile: float = 50.0
    """q [%] in [0, 100], used with ``statistic="percentile"`` (0: the envelope)."""
    window_db: float = _BIT_DB
    """Width of the SNDR window above the required SNDR [dB] (one bit by default)."""
    nyquist_only: bool = True
    """Only Nyquist-rate converters (oversampled ones left out)."""
    extrapolate: bool = False
    """Allow resolutions outside the SNDR span of the candidates (see the module docstring)."""

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or self.bits < 1:
            raise ConfigError(f"AdcLookup.bits must be an integer >= 1, got {self.bits!r}")
        check_quantity("AdcLookup", "f_sample", self.f_sample, "Hz", positive=True)
        object.__setattr__(self, "statistic",
                           coerce_enum(AdcStatistic, self.statistic, "AdcLookup.statistic"))
        q = self.percentile
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 100:
            raise ConfigError(f"AdcLookup.percentile must be in [0, 100] [%], got {q!r}")
        check_quantity("AdcLookup", "window_db", self.window_db, "dB", positive=True)

    @property
    def sndr_db(self) -> float:
        """Required SNDR [dB]: ``6.02 bits + 1.76``."""
        return _BIT_DB * self.bits + 1.76

    def to_dict(self) -> dict[str, Any]:
        """Field name -> value (SI units; ``statistic`` as its string)."""
        return dataclass_to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AdcLookup:
        """Inverse of :meth:`to_dict`; unknown keys raise ConfigError."""
        return dataclass_from_dict(cls, d)


def _stat(values: np.ndarray, lookup: AdcLookup, *, high_is_good: bool = False) -> float:
    q = {AdcStatistic.ENVELOPE: 0.0, AdcStatistic.MEDIAN: 50.0}.get(lookup.statistic,
                                                                    lookup.percentile)
    return float(np.percentile(values, 100.0 - q if high_is_good else q))


def adc_energy(survey: AdcSurvey, lookup: AdcLookup) -> float:
    """Energy per conversion [J] of a converter of ``lookup.bits`` at ``lookup.f_sample``.

    Parameters
    ----------
    survey : AdcSurvey
        From :func:`load_adc_survey`.
    lookup : AdcLookup
        Resolution, speed, statistic, window and extrapolation (module docstring).

    Raises
    ------
    ConfigError
        The resolution lies outside the candidates' SNDR span (without ``extrapolate``), no
        converter is fast enough, or the window holds no converter.
    """
    ok = survey.f_nyq >= lookup.f_sample
    if lookup.nyquist_only:
        ok &= survey.nyquist
    if not ok.any():
        raise ConfigError(f"no surveyed converter reaches f_sample={lookup.f_sample:g} Hz")
    sndr, energy = survey.sndr_db[ok], survey.energy[ok]
    lo, hi, need = float(sndr.min()), float(sndr.max()), lookup.sndr_db
    if not lo <= need <= hi and not lookup.extrapolate:
        raise ConfigError(
            f"bits={lookup.bits} needs SNDR {need:.2f} dB, outside the survey's span "
            f"[{lo:.1f}, {hi:.1f}] dB at f_sample >= {lookup.f_sample:g} Hz; "
            "pass extrapolate=True to extrapolate")
    if need > hi:  # constant FOMS over the top window
        top = sndr >= hi - lookup.window_db
        foms = schreier_fom(survey.power[ok][top], sndr[top], survey.f_nyq[ok][top])
        return float(10.0 ** ((need - _stat(foms, lookup, high_is_good=True)) / 10.0) / 2.0)
    if need < lo:  # energy of the lowest window
        return _stat(energy[sndr < lo + lookup.window_db], lookup)
    win = (sndr >= need) & (sndr < need + lookup.window_db)
    if not win.any():
        raise ConfigError(f"no surveyed converter with SNDR in [{need:.2f}, "
                          f"{need + lookup.window_db:.2f}) dB; widen window_db")
    return _stat(energy[win], lookup)


@dataclass(frozen=True)
class AdcAreaModel:
    """``log10(area / m^2) = a0 + a_enob ENOB + a_f log10(f_snyq / Hz) + a_node log10(node / m)``
    fitted over a span of ENOB (by :func:`fit_log_area`)."""

    a0: float
    """Intercept [log10 m^2]."""
    a_enob: float
    """Slope per effective bit [log10 m^2 / bit]."""
    a_f: float
    """Slope per decade of Nyquist rate [log10 m^2 / decade]."""
    a_node: float
    """Slope per decade of technology node [log10 m^2 / decade]."""
    residual_std: float
    """Standard deviation of the log10 residuals [decades]."""
    enob_min: float
    """Smallest ENOB fitted [bits]."""
    enob_max: float
    """Largest ENOB fitted [bits]."""
    n_rows: int
    """Converters fitted."""

    def area(self, bits: float, f_sample: float, node: float, *,
             extrapolate: bool = False, percentile: float = 50.0) -> float:
        """Predicted area [m^2] of a ``bits``-bit converter at ``f_sample`` [Hz] in ``node``
        [m]; ``bits`` outside the fitted ENOB span raise ConfigError unless ``extrapolate``.

        ``percentile`` q [%] in (0, 100) moves the prediction (the regression's median, 50)
        to the q-th percentile of the converters like it, taking the log10 residuals as
        normal with :attr:`residual_std`: ``+ residual_std z_q`` decades."""
        check_quantity("AdcAreaModel.area", "f_sample", f_sample, "Hz", positive=True)
        check_quantity("AdcAreaModel.area", "node", node, "m", positive=True)
        check_quantity("AdcAreaModel.area", "bits", bits, "bits", positive=True)
        q = percentile
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q < 100:
            raise ConfigError(f"percentile must be in (0, 100) [%], got {q!r}")
        if not self.enob_min <= bits <= self.enob_max and not extrapolate:
            raise ConfigError(f"bits={bits!r} outside the fitted span [{self.enob_min:.1f}, "
                              f"{self.enob_max:.1f}]; pass extrapolate=True to extrapolate")
        shift = 0.0 if q == 50 else self.residual_std * float(ndtri(q / 100.0))
        return float(10.0 ** (self.a0 + self.a_enob * bits + self.a_f * math.log10(f_sample)
                              + self.a_node * math.log10(node) + shift))

    def to_dict(self) -> dict[str, Any]:
        """Field name -> number."""
        return dataclass_to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AdcAreaModel:
        """Inverse of :meth:`to_dict`; unknown keys raise ConfigError."""
        return dataclass_from_dict(cls, d)


def fit_log_area(enob_bits, f_nyq, node, area) -> AdcAreaModel:
    """Least-squares :class:`AdcAreaModel` from ENOB [bits], f_snyq [Hz], node [m] and area
    [m^2] (equal-length arrays, all finite and positive except ENOB; at least 5 rows)."""
    x = [np.asarray(a, dtype=np.float64).ravel() for a in (enob_bits, f_nyq, node, area)]
    if len({a.size for a in x}) != 1 or x[0].size < 5:
        raise ConfigError(f"fit_log_area needs equal-length arrays of >= 5 rows, got sizes "
                          f"{[a.size for a in x]}")
    e, f, nd, ar = x
    if not (np.all(np.isfinite(x)) and np.all(f > 0) and np.all(nd > 0) and np.all(ar > 0)):
        raise ConfigError("fit_log_area needs finite values and positive f_nyq, node, area")
    A = np.column_stack([np.ones_like(e), e, np.log10(f), np.log10(nd)])
    y = np.log10(ar)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    res = y - A @ coef
    dof = max(y.size - A.shape[1], 1)
    return AdcAreaModel(*(float(c) for c in coef), float(np.sqrt(res @ res / dof)),
                        float(e.min()), float(e.max()), int(y.size))


def fit_adc_area(survey: AdcSurvey, *, nyquist_only: bool = True) -> AdcAreaModel:
    """:func:`fit_log_area` over the survey's converters that report area and a numeric node
    (Nyquist-rate ones only, by default)."""
    ok = np.isfinite(survey.area) & (survey.area > 0) & np.isfinite(survey.node)
    if nyquist_only:
        ok &= survey.nyquist
    return fit_log_area(enob(survey.sndr_db[ok]), survey.f_nyq[ok], survey.node[ok],
                        survey.area[ok])
