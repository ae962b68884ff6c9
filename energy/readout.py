r"""Voltage-mode (integrating) readout of a crossbar: column voltage, energy and time.

In current-mode sensing (:func:`~xbarlab.energy.array.array_energy`) each column is held at
virtual ground and its current is converted. In voltage-mode readout the column is left
floating on a capacitance ``C`` (its line capacitance plus the sampling or integration
capacitor of the neuron) and the row drivers charge it through the cells. With ideal
(zero-resistance) lines, column ``j`` sees the cells ``G_ij`` (each with its access
resistance folded in) from the rows at ``v_i``:

.. math::

    C \frac{dV_j}{dt} = \sum_i G_{ij} (v_i - V_j), \qquad V_j(0) = 0,

so ``V_j(t) = V_inf (1 - e^{-t / tau})`` with ``G_T = sum_i G_ij``,
``V_inf = sum_i G_ij v_i / G_T`` (the conductance-weighted mean of the inputs, which
voltage-mode neurons sample) and ``tau = C / G_T``. The drivers deliver

.. math::

    E_j(t) = t \sum_i G_{ij} v_i^2
             - V_\infty \Big(\sum_i G_{ij} v_i\Big)\big(t - \tau (1 - e^{-t/\tau})\big),

of which ``C V_j(t)^2 / 2`` is left on the capacitor (dissipated when it is reset for the
next read) and the rest is dissipated in the cells. The read takes the settling time
``tau ln(1 / eps)`` to bring ``V_j`` within the fraction ``eps`` of ``V_inf`` (e.g.
``2^-(b+1)``, half an LSB of a ``b``-bit converter). Wire resistance is left out (the lines'
IR drop adds its own small time constant, :func:`~xbarlab.energy.latency.settling_time`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

__all__ = ["IntegratingRead", "integrating_readout", "integration_time"]


@dataclass(frozen=True, eq=False)
class IntegratingRead:
    """A voltage-mode read of ``B`` input vectors on ``N`` columns after time ``t``."""

    column_voltage: np.ndarray
    """V_j(t) [V], (B, N): the column voltages when the read ends."""
    settled_voltage: np.ndarray
    """V_inf [V], (B, N): the conductance-weighted mean of the inputs per column."""
    tau: np.ndarray
    """tau [s], (N,): ``C / sum_i G_ij`` per column (inf for a column without cells)."""
    energy: np.ndarray
    """E [J], (B,): delivered by the row drivers over the read, summed over the columns."""
    stored: np.ndarray
    """E_C [J], (B,): ``sum_j C V_j(t)^2 / 2``, left on the column capacitances."""

    @property
    def dissipated(self) -> np.ndarray:
        """E - E_C [J], (B,): dissipated in the cells while the read lasts."""
        return self.energy - self.stored


def _check_inputs(G, v, c_column, t) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    g = np.asarray(G, dtype=np.float64)
    if g.ndim != 2 or not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ConfigError(f"G must be a finite (M, N) array of conductances >= 0 [S], "
                          f"got shape {g.shape}")
    M, N = g.shape
    vv = np.asarray(v, dtype=np.float64)
    if vv.ndim not in (1, 2) or vv.shape[-1] != M:
        raise ConfigError(f"v has shape {vv.shape}; expected ({M},) or (B, {M}) [V]")
    if not np.all(np.isfinite(vv)):
        raise ConfigError("v must be finite input voltages [V], got NaN or infinite values")
    c = np.asarray(c_column, dtype=np.float64)
    if c.shape not in ((), (N,)) or not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ConfigError(f"c_column must be a capacitance > 0 [F], scalar or ({N},), "
                          f"got {c_column!r}")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
        raise ConfigError(f"t must be a finite duration >= 0 [s], got {t!r}")
    return g, np.atleast_2d(vv), np.broadcast_to(c, (N,)), float(t)


def integrating_readout(G, v, c_column, t: float) -> IntegratingRead:
    """Column voltages and driver energy of a voltage-mode read of duration ``t``.

    Parameters
    ----------
    G : (M, N) array [S]
        Cell conductances (access resistance folded in), rows x columns.
    v : (M,) or (B, M) array [V]
        Row driver voltages held for the read.
    c_column : float or (N,) array [F]
        Capacitance on each column, > 0.
    t : float
        Read (integration) time [s], >= 0; columns start discharged.

    Returns
    -------
    IntegratingRead
        See the module docstring for the closed forms.
    """
    g, vv, c, t = _check_inputs(G, v, c_column, t)
    gt = g.sum(axis=0)  # (N,)
    num = vv @ g  # (B, N): sum_i G_ij v_i
    quad = (vv * vv) @ g  # (B, N): sum_i G_ij v_i^2
    has = gt > 0
    safe = np.where(has, gt, 1.0)
    v_inf = np.where(has, num / safe, 0.0)
    tau = np.where(has, c / safe, np.inf)
    decay = np.where(has, -np.expm1(-t / np.where(has, tau, 1.0)), 0.0)  # 1 - e^(-t/tau)
    vc = v_inf * decay
    integral = np.where(has, t - np.where(has, tau, 0.0) * decay, 0.0)
    e_col = t * quad - v_inf * num * integral
    return IntegratingRead(column_voltage=vc, settled_voltage=v_inf, tau=tau,
                           energy=e_col.sum(axis=1), stored=(0.5 * c * vc * vc).sum(axis=1))


def integration_time(G, c_column, eps: float) -> float:
    """Time [s] for every column of a voltage-mode read to come within the fraction ``eps``
    of its settled voltage: ``max_j tau_j ln(1 / eps)``, ``tau_j = C_j / sum_i G_ij``.

    Parameters
    ----------
    G : (M, N) array [S]
        Cell conductances.
    c_column : float or (N,) array [F]
        Capacitance on each column, > 0.
    eps : float
        Remaining error as a fraction of the settled voltage, in (0, 1).
    """
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 1:
        raise ConfigError(f"eps must be in (0, 1), got {eps!r}")
    g, _, c, _ = _check_inputs(G, np.zeros(np.shape(G)[0]), c_column, 0.0)
    gt = g.sum(axis=0)
    if not np.any(gt > 0):
        raise ConfigError("G has no conducting column; the read never settles")
    return float(np.max(c[gt > 0] / gt[gt > 0]) * math.log(1.0 / eps))
