"""Synthetic PCM read tables written from the published equations (not from xbarlab's
samplers), for calibration round trips.

The statistics are those of the PCM model of Nandakumar et al. (2019) and Joshi et al.
(2020), as documented for IBM aihwkit's ``PCMLikeNoiseModel``
(https://github.com/IBM/aihwkit/blob/master/docs/source/pcm_inference.rst), with
x = g_T / g_max, g_max = 25 uS:

- programming: g_prog = max(g_T + sigma_p z, 0), sigma_p = (c0 + c1 x + c2 x^2) g_max / 25
  with c0 = 0.26348 uS, c1 = 1.9650 uS, c2 = -1.1731 uS (the documentation rounds c0 to
  0.2635);
- drift: g(t) = g_prog ((t + t0)/t0)^-nu, t0 = 20 s, per-device nu = |N(mu(g_T), sigma(g_T))|,
  mu = clip(-0.0155 ln x + 0.0244, 0.049, 0.1), sigma = clip(-0.0125 ln x - 0.0059, 0.008,
  0.045), x floored at 1e-7;
- 1/f read noise of amplitude g(t) Q_s sqrt(u(t)), u(t) = ln((t + t0 + t_r)/(2 t_r)),
  Q_s = min(0.0088 / max(x_p^0.65, 1e-3), 0.2), x_p = g_prog / g_max, t_r = 250 ns; every
  read clamped at 0 S.

The read noise comes in three structures:

- :func:`pcm_independent_reads` (aihwkit): drawn afresh at every read,
  std g(t) Q_s sqrt(u(t));
- :func:`pcm_random_walk_reads` (the equations of xbarlab's ``pcm-ibm-2020`` preset): a
  Wiener process W(u) per cell, g(t) (1 + Q_s W(u(t))), so that a cell's reads share the
  path up to the earlier read;
- :func:`pcm_both_reads`: the sum of the two, each with amplitude Q_s.

Each returns ``(table, truth)``: ``table`` a mapping of role -> array (``device``, ``g``
[S], ``time`` [s], ``g_target`` [S]) that :func:`xbarlab.calibration.fit` accepts, and
``truth`` the per-device ``g_target`` and ``g_prog`` [S], ``nu`` [1], ``q`` (Q_s) [1],
``log_noise`` (n, T): the read noise the generator drew, in ln g (ln(g_read / g(t)),
NaN where the read is 0 S), and the clock ``u`` (T,) of the read times.
"""

from __future__ import annotations

import numpy as np

G_MAX = 25e-6
T0 = 20.0
T_R = 250e-9
#: 1 s, 1 h, 1 d, 7 d, 30 d, 1 y [s]
TIMES = np.array([1.0, 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0, 365.25 * 86400.0])
#: Nandakumar et al. 2019 programming-error polynomial [uS at g_max = 25 uS].
C_PROG = (0.26348, 1.9650, -1.1731)


def targets(n: int = 41) -> np.ndarray:
    """``n`` targets evenly spaced over 0-25 uS [S]."""
    return np.linspace(0.0, G_MAX, n)


def prog_std(g_t) -> np.ndarray:
    """Programming-error std sigma_p(g_T) [S] (before the clamp at 0 S)."""
    x = np.asarray(g_t, dtype=float) / G_MAX
    c0, c1, c2 = C_PROG
    return (c0 + c1 * x + c2 * x * x) * 1e-6 * G_MAX / 25e-6


def mu_nu(g_t) -> np.ndarray:
    """Mean drift exponent mu(g_T) [1] (before folding)."""
    x = np.maximum(np.asarray(g_t, dtype=float) / G_MAX, 1e-7)
    return np.clip(-0.0155 * np.log(x) + 0.0244, 0.049, 0.1)


def sigma_nu(g_t) -> np.ndarray:
    """Spread of the drift exponent sigma(g_T) [1] (before folding)."""
    x = np.maximum(np.asarray(g_t, dtype=float) / G_MAX, 1e-7)
    return np.clip(-0.0125 * np.log(x) - 0.0059, 0.008, 0.045)


def q_s(g_prog) -> np.ndarray:
    """1/f amplitude Q_s(g_prog) [1]."""
    x = np.asarray(g_prog, dtype=float) / G_MAX
    with np.errstate(divide="ignore"):
        return np.minimum(0.0088 / np.maximum(np.maximum(x, 0.0) ** 0.65, 1e-3), 0.2)


def u_clock(t) -> np.ndarray:
    """u(t) = ln((t + t0 + t_r)/(2 t_r)) [1]."""
    return np.log((np.asarray(t, dtype=float) + T0 + T_R) / (2 * T_R))


def _reads(rng, n_targets, per_target, times, walk, independent, level_errors=None):
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    times = np.asarray(times, dtype=float)
    g_t = np.repeat(targets(n_targets), per_target)
    n = g_t.size
    sp = prog_std(g_t)
    err = {k: np.repeat(np.asarray(v, dtype=float), per_target)
           for k, v in (level_errors or {}).items()}
    one = np.ones(n)
    g_prog = np.maximum(g_t + err.get("bias", 0.0) + sp * err.get("spread", one)
                        * rng.standard_normal(n), 0.0)
    nu = np.abs(mu_nu(g_t) + err.get("mu", 0.0) + sigma_nu(g_t) * err.get("sigma", one)
                * rng.standard_normal(n))
    q = q_s(g_prog) * err.get("q", one)
    u = u_clock(times)
    drift = g_prog[None, :] * (((times + T0) / T0)[:, None]) ** (-nu[None, :])
    noise = np.zeros((times.size, n))
    if walk:
        du = np.diff(np.concatenate([[0.0], u]))
        w = np.cumsum(np.sqrt(du)[:, None] * rng.standard_normal((times.size, n)), axis=0)
        noise += w
    if independent:
        noise += np.sqrt(u)[:, None] * rng.standard_normal((times.size, n))
    g = np.maximum(drift + drift * q[None, :] * noise, 0.0)
    table = {"device": np.tile(np.arange(n), times.size), "g": g.ravel(),
             "time": np.repeat(times, n), "g_target": np.tile(g_t, times.size)}
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(g > 0, np.log(g / drift), np.nan).T
    return table, {"g_target": g_t, "g_prog": g_prog, "nu": nu, "q": q, "log_noise": e,
                   "u": u}


def pcm_independent_reads(rng: np.random.Generator, *, n_targets: int = 41,
                          per_target: int = 2000, times=TIMES, level_errors=None):
    """aihwkit-style PCM: read noise drawn independently at every read. ``level_errors``:
    per-target departures from the published parameters (each an array of one value per
    target): "bias" [S] added to the programming mean, "spread" [1] multiplying the
    programming std, "mu" [1] added to mu(g_T), "sigma" [1] multiplying sigma(g_T), "q" [1]
    multiplying Q_s (a model of the exact form whose parameters carry estimation error)."""
    return _reads(rng, n_targets, per_target, times, walk=False, independent=True,
                  level_errors=level_errors)


def pcm_random_walk_reads(rng: np.random.Generator, *, n_targets: int = 41,
                          per_target: int = 2000, times=TIMES):
    """pcm-ibm-2020's equations: read noise a Wiener process in u per cell."""
    return _reads(rng, n_targets, per_target, times, walk=True, independent=False)


def pcm_both_reads(rng: np.random.Generator, *, n_targets: int = 41,
                   per_target: int = 2000, times=TIMES):
    """The random-walk and the independent read noise summed (each of amplitude Q_s)."""
    return _reads(rng, n_targets, per_target, times, walk=True, independent=True)


def population_truth(g_t) -> dict:
    """The generator's own per-level values at the targets ``g_t`` [S] (the expectations
    that :func:`level_truth` estimates from one draw of devices): the folded exponent
    |N(mu, sigma)|'s mean and std (closed form, ``mu_nu``, ``sigma_nu``) and
    sqrt(E[Q_s(g_prog)^2 | g_prog > 0]) over the programming error (``q``, by quadrature
    on 4001 points over +-8 std)."""
    from scipy import stats

    g_t = np.atleast_1d(np.asarray(g_t, dtype=float))
    m, s = mu_nu(g_t), sigma_nu(g_t)
    mean = (s * np.sqrt(2 / np.pi) * np.exp(-0.5 * (m / s) ** 2)
            + m * (1 - 2 * stats.norm.cdf(-m / s)))
    std = np.sqrt(m * m + s * s - mean * mean)
    sp = prog_std(g_t)
    z = np.linspace(-8.0, 8.0, 4001)
    gp = g_t[:, None] + sp[:, None] * z[None, :]
    wz = stats.norm.pdf(z)[None, :] * (gp > 0)
    q2 = np.where(gp > 0, q_s(np.maximum(gp, 1e-300)) ** 2, 0.0)
    q = np.sqrt(np.sum(wz * q2, axis=1) / np.sum(wz, axis=1))
    return {"mu_nu": mean, "sigma_nu": std, "q": q}


def level_truth(truth, g_t) -> dict:
    """Per-level truth at the targets ``g_t`` [S]: the folded exponent's mean and std
    over the level's devices (``mu_nu``, ``sigma_nu``), the rms read-noise amplitude
    sqrt(mean Q_s(g_prog)^2) over its devices with g_prog > 0 (``q``), and the amplitude
    of the drawn noise in ln g, sqrt(mean e^2 / u) over the level's positive reads
    (``q_log``: the quantity a model with noise on ln g estimates; the noise added to g
    reads 1-3 % larger in ln g where Q_s sqrt(u) ~ 0.1-0.2)."""
    out = {"mu_nu": [], "sigma_nu": [], "q": [], "q_log": []}
    for g in np.atleast_1d(g_t):
        m = truth["g_target"] == g
        live = m & (truth["g_prog"] > 0)
        out["mu_nu"].append(truth["nu"][m].mean())
        out["sigma_nu"].append(truth["nu"][m].std())
        out["q"].append(np.sqrt(np.mean(truth["q"][live] ** 2)))
        out["q_log"].append(np.sqrt(np.nanmean(truth["log_noise"][live] ** 2 / truth["u"])))
    return {k: np.asarray(v) for k, v in out.items()}
