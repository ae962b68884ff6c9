"""ADC look-ups against the survey's own figure-of-merit columns and by-hand statistics."""

from __future__ import annotations

import numpy as np
import pytest
from _shared import shared_path
from xbarlab.energy import (
    AdcLookup,
    AdcStatistic,
    adc_energy,
    fit_adc_area,
    load_adc_survey,
    schreier_fom,
    walden_fom,
)
from xbarlab.energy.adc import AdcSurvey, energy_per_sample, enob, fit_log_area
from xbarlab.errors import ConfigError


@pytest.fixture(scope="module")
def survey():
    return load_adc_survey(shared_path("data", "adc_survey"))


def test_foms_reproduce_the_survey_columns(survey):
    """Every row: P/fsnyq, FOMW = P / (2^ENOB fsnyq) and FOMS = SNDR + 10 log10(fsnyq / 2 / P)
    (SNDR_plot) equal the survey's own columns, except one row whose FOMW and FOMS cells hold
    the placeholders 1e10 fJ and 1 dB."""
    s = survey
    real = s.fomw_column < 1e-6  # 1e10 fJ: a placeholder, not a figure of merit
    assert (~real).sum() == 1 and s.foms_column[~real][0] == 1.0
    assert real.sum() > 700
    np.testing.assert_allclose(s.energy, s.energy_column, rtol=1e-12)
    np.testing.assert_allclose(walden_fom(s.power, s.sndr_db, s.f_nyq)[real],
                               s.fomw_column[real], rtol=1e-12)
    np.testing.assert_allclose(schreier_fom(s.power, s.sndr_db, s.f_nyq)[real],
                               s.foms_column[real], atol=1e-9)


def test_lookup_statistics_by_hand(survey):
    """6-bit at 10 MS/s: the candidates are the Nyquist converters with SNDR in
    [37.88, 43.90) dB and fsnyq >= 10 MHz; envelope = their least P/fsnyq, median and
    25th percentile = numpy's over the same rows."""
    s = survey
    need = 6.02 * 6 + 1.76
    rows = s.nyquist & (s.f_nyq >= 1e7) & (s.sndr_db >= need) & (s.sndr_db < need + 6.02)
    e = s.power[rows] / s.f_nyq[rows]
    assert rows.sum() >= 5
    look = AdcLookup(bits=6, f_sample=1e7, statistic="envelope")
    assert adc_energy(s, look) == e.min()
    assert adc_energy(s, AdcLookup(bits=6, f_sample=1e7)) == pytest.approx(np.median(e))
    q = AdcLookup(bits=6, f_sample=1e7, statistic=AdcStatistic.PERCENTILE, percentile=25.0)
    assert adc_energy(s, q) == pytest.approx(np.percentile(e, 25.0))


def test_bits_beyond_the_survey_raise(survey):
    """20 bits at 100 MS/s (SNDR 122.16 dB) lies beyond every surveyed converter that fast:
    refused, naming the bits and the SNDR, unless extrapolate=True (then 4x per bit above the
    top window: 21 bits cost 10^0.602 times 20 bits)."""
    with pytest.raises(ConfigError, match=r"bits=20 needs SNDR 122\.16 dB"):
        adc_energy(survey, AdcLookup(bits=20, f_sample=1e8))
    e20 = adc_energy(survey, AdcLookup(bits=20, f_sample=1e8, extrapolate=True))
    e21 = adc_energy(survey, AdcLookup(bits=21, f_sample=1e8, extrapolate=True))
    assert e21 / e20 == pytest.approx(10**0.602, rel=1e-12)


def _toy(sndr, power, f):
    n = len(sndr)
    nan = np.full(n, np.nan)
    return AdcSurvey(nyquist=np.ones(n, bool), sndr_db=np.array(sndr, float),
                     power=np.array(power, float), f_nyq=np.array(f, float), area=nan,
                     node=nan, energy_column=nan, fomw_column=nan, foms_column=nan)


def test_extrapolation_holds_foms():
    """Toy survey up to 50 dB: a 10-bit converter (61.96 dB) needs extrapolate=True; with it,
    the envelope's FOMS of the top window (the best, 160 dB) gives
    E = 10^((61.96 - 160) / 10) / 2; below the span the lowest window's energy is kept."""
    f = 1e8
    p_best = f / 2 * 10 ** ((50 - 160) / 10)  # FOMS = 160 dB at 50 dB
    s = _toy([30, 45, 50], [1e-3, 5e-3, p_best], [f, f, f])
    with pytest.raises(ConfigError, match=r"bits=10 .*61\.96.*extrapolate"):
        adc_energy(s, AdcLookup(bits=10, f_sample=f))
    e = adc_energy(s, AdcLookup(bits=10, f_sample=f, statistic="envelope", extrapolate=True))
    assert e == pytest.approx(10 ** ((61.96 - 160) / 10) / 2, rel=1e-12)
    low = adc_energy(s, AdcLookup(bits=2, f_sample=f, statistic="envelope", extrapolate=True))
    assert low == pytest.approx(1e-3 / f, rel=1e-12)
    with pytest.raises(ConfigError, match="f_sample"):
        adc_energy(s, AdcLookup(bits=6, f_sample=1e9))


def test_area_fit_recovers_synthetic_coefficients():
    """log10 A = -8 + 0.15 ENOB + 0.3 log10 f + 1.2 log10 node + N(0, 0.05^2): least squares
    over 400 rows recovers the coefficients within 5 standard errors."""
    rng = np.random.default_rng(1)
    n = 400
    e, lf, ln = rng.uniform(4, 14, n), rng.uniform(4, 10, n), rng.uniform(-8, -6, n)
    y = -8 + 0.15 * e + 0.3 * lf + 1.2 * ln + rng.normal(0, 0.05, n)
    m = fit_log_area(e, 10**lf, 10**ln, 10**y)
    A = np.column_stack([np.ones(n), e, lf, ln])
    se = 0.05 * np.sqrt(np.diag(np.linalg.inv(A.T @ A)))
    got = np.array([m.a0, m.a_enob, m.a_f, m.a_node])
    assert np.all(np.abs(got - [-8, 0.15, 0.3, 1.2]) < 5 * se)
    assert m.residual_std == pytest.approx(0.05, rel=0.15)
    assert m.area(8, 1e8, 2.8e-8) == pytest.approx(
        10 ** (m.a0 + 8 * m.a_enob + 8 * m.a_f + m.a_node * np.log10(2.8e-8)))
    with pytest.raises(ConfigError, match="bits=20"):
        m.area(20, 1e8, 2.8e-8)


def test_survey_area_fit(survey):
    """The survey's Nyquist converters with area and a numeric node give a fit whose ENOB span
    covers 4-12 bits."""
    m = fit_adc_area(survey)
    assert m.n_rows > 100 and m.enob_min < 4 and m.enob_max > 12
    assert type(m).from_dict(m.to_dict()) == m


def test_definitions_and_bad_lookups():
    """ENOB(1.76 + 6.02 b) = b; FOMW = (P / fsnyq) / 2^ENOB; bad look-ups raise naming the
    value."""
    assert enob(1.76 + 6.02 * 8) == pytest.approx(8.0)
    assert walden_fom(1e-3, 1.76 + 6.02 * 10, 1e8) == pytest.approx(energy_per_sample(1e-3, 1e8)
                                                                     / 1024)
    for kw, msg in [(dict(bits=0, f_sample=1e6), "bits"),
                    (dict(bits=4, f_sample=float("nan")), "f_sample"),
                    (dict(bits=4, f_sample=1e6, percentile=120.0), "percentile"),
                    (dict(bits=4, f_sample=1e6, statistic="best"), "statistic")]:
        with pytest.raises(ConfigError, match=msg):
            AdcLookup(**kw)
    look = AdcLookup(bits=5, f_sample=1e6, statistic="envelope")
    assert AdcLookup.from_dict(look.to_dict()) == look


@pytest.mark.parametrize("q", [10, 25, 75, 90])
def test_area_percentile_covers_that_share_of_the_survey(survey, q):
    """The q-th-percentile area of the regression (normal log10 residuals) lies above the
    reported area of q % of the fitted converters, within 4 binomial standard deviations
    (397 converters: sd about 2 %); q = 50 is the regression itself."""
    from xbarlab.energy.adc import enob

    m = fit_adc_area(survey)
    ok = (np.isfinite(survey.area) & (survey.area > 0) & np.isfinite(survey.node)
          & survey.nyquist)
    args = zip(enob(survey.sndr_db[ok]), survey.f_nyq[ok], survey.node[ok], strict=True)
    pred = np.array([m.area(b, f, n, extrapolate=True, percentile=q) for b, f, n in args])
    share = float((survey.area[ok] <= pred).mean())
    sd = np.sqrt(q / 100 * (1 - q / 100) / ok.sum())
    assert abs(share - q / 100) < 4 * sd
    assert m.area(8, 1e8, 2.8e-8, percentile=50) == m.area(8, 1e8, 2.8e-8)
    with pytest.raises(ConfigError, match="percentile must be in"):
        m.area(8, 1e8, 2.8e-8, percentile=100)
