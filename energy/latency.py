r"""Latency of a crossbar read: RC settling from the solved circuit, conversions, cycles.

Settling. The array with its wiring is a linear RC network: the conductances of the grid
solve (:attr:`xbarlab.crossbar.Crossbar.grid`: cells with their access resistance, row and
column segments, drivers and sense resistances) and the capacitances of
:class:`~xbarlab.energy.lines.LineCapacitance` (``c_wire p`` from every row and column node to
ground, ``c_junction`` between the two nodes of each cell). Drivers and the sense
amplifiers' virtual grounds are AC grounds. After a step of the inputs every node voltage
approaches its final value as a sum of modes ``exp(-t / tau_k)``, where ``tau_k`` solve the
generalized eigenproblem ``C x = tau K x`` (``K``: nodal conductance matrix, ``C``:
capacitance matrix). :func:`settling_time_constant` returns the slowest, ``tau_max``;
:func:`settling_time` the dominant-pole estimate ``tau_max ln(1 / eps)`` of the time the
outputs need to come within the fraction ``eps`` of their final values.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..crossbar import Crossbar
from ..errors import ConfigError
from .lines import LineCapacitance

__all__ = ["rc_matrices", "settling_time_constant", "settling_time", "read_latency"]

_DENSE_NODES = 64  # dense generalized eigensolve up to this many free nodes


def _edges(xbar: Crossbar):
    """Conductive branches as (node a, node b, conductance) over the grid's 2 M N nodes; node
    -1 is AC ground (driver or virtual ground)."""
    grid = xbar.grid
    M, N = grid.shape
    rn = np.arange(M * N).reshape(M, N)
    cn = rn + M * N
    gnd = np.full(M, -1)
    gndc = np.full(N, -1)
    a = [rn[:, :-1], rn[:, 0], rn[:, -1], rn, cn[:-1, :], cn[0, :], cn[-1, :]]
    b = [rn[:, 1:], gnd, gnd, cn, cn[1:, :], gndc, gndc]
    g = [grid.g_row[:, 1:N], grid.g_row[:, 0], grid.g_row[:, N], grid.g, grid.g_col[1:M, :],
         grid.g_col[0, :], grid.g_col[M, :]]
    return (np.concatenate([x.ravel() for x in a]), np.concatenate([x.ravel() for x in b]),
            np.concatenate([x.ravel() for x in g]))


def rc_matrices(xbar: Crossbar, caps: LineCapacitance) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Nodal conductance matrix K [S] and capacitance matrix C [F] of the array's free nodes.

    Zero-resistance connections merge their nodes exactly (the grid's node groups); a group
    tied to a driver or to the virtual ground is an AC ground and drops out.

    Parameters
    ----------
    xbar : Crossbar
        The array and its wiring (its grid conductances are used).
    caps : LineCapacitance
        Wire capacitance per length, junction capacitance, pitch.

    Returns
    -------
    (K, C) : scipy.sparse CSR matrices, (n, n) over the n free node groups
    """
    if not isinstance(xbar, Crossbar):
        raise ConfigError(f"xbar must be a Crossbar, got {type(xbar).__name__}")
    if not isinstance(caps, LineCapacitance):
        raise ConfigError(f"caps must be a LineCapacitance, got {type(caps).__name__}")
    M, N = xbar.shape
    rid, cid, held_r, held_c = xbar.grid.groups()
    held = np.concatenate([held_r, held_c])
    gid = np.concatenate([rid.ravel(), cid.ravel()])
    free = np.cumsum(~held) - 1
    n = int((~held).sum())

    def node(x):  # grid node -> free index, -1 for AC ground
        out = np.full(x.shape, -1)
        ok = x >= 0
        grp = gid[x[ok]]
        out[ok] = np.where(held[grp], -1, free[grp])
        return out

    def laplacian(a, b, w):
        a, b = node(a), node(b)
        keep = (w > 0) & np.isfinite(w) & (a != b)
        a, b, w = a[keep], b[keep], w[keep]
        ia, ib = a >= 0, b >= 0
        both = ia & ib
        rows = np.concatenate([a[ia], b[ib], a[both], b[both]])
        cols = np.concatenate([a[ia], b[ib], b[both], a[both]])
        vals = np.concatenate([w[ia], w[ib], -w[both], -w[both]])
        return sp.coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsr()

    K = laplacian(*_edges(xbar))
    all_nodes = np.arange(2 * M * N)
    c_node = np.full(2 * M * N, caps.c_wire * caps.pitch)
    C = laplacian(all_nodes, np.full(2 * M * N, -1), c_node)
    rn = np.arange(M * N)
    C = C + laplacian(rn, rn + M * N, np.full(M * N, caps.c_junction))
    return K, C


def settling_time_constant(xbar: Crossbar, caps: LineCapacitance) -> float:
    """The slowest time constant tau_max [s] of the array's RC network (largest ``tau`` of
    ``C x = tau K x``; see the module docstring).

    Parameters
    ----------
    xbar : Crossbar
        The array and its wiring.
    caps : LineCapacitance
        Wire capacitance per length, junction capacitance, pitch.
    """
    K, C = rc_matrices(xbar, caps)
    n = K.shape[0]
    if n == 0:
        return 0.0
    if n <= _DENSE_NODES:
        w = sla.eigh(C.toarray(), K.toarray(), eigvals_only=True, subset_by_index=[n - 1, n - 1])
        return float(w[0])
    lu = spla.splu(K.tocsc())  # Lanczos on K^-1 C (K positive definite)
    kinv = spla.LinearOperator((n, n), matvec=lu.solve, dtype=np.float64)
    w = spla.eigsh(C, k=1, M=K, Minv=kinv, which="LA", return_eigenvectors=False)
    return float(w[0])


def settling_time(xbar: Crossbar, caps: LineCapacitance, eps: float) -> float:
    """Dominant-pole settling time [s]: ``tau_max ln(1 / eps)``.

    Parameters
    ----------
    xbar : Crossbar
        The array and its wiring.
    caps : LineCapacitance
        Wire capacitance per length, junction capacitance, pitch.
    eps : float
        Remaining error as a fraction of the final value, in (0, 1), e.g. ``2^-(b+1)`` for
        half an LSB of a ``b``-bit ADC.
    """
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 1:
        raise ConfigError(f"eps must be in (0, 1), got {eps!r}")
    return settling_time_constant(xbar, caps) * math.log(1.0 / eps)


def read_latency(t_settle: float, t_conversion: float, *, input_cycles: int = 1,
                 columns_per_adc: int = 1, t_pulse: float = 0.0,
                 integrating: bool = False) -> float:
    """Latency [s] of one matrix-vector product on one array.

    Each input cycle (one bit plane of a bit-serial input, or the single cycle of a
    multi-level or pulse-width input) waits for the array to settle (``t_settle``), lasts at
    least the pulse (``t_pulse``), then converts the ``columns_per_adc`` columns that share
    each ADC one after another (sampled and held once settled):
    ``input_cycles (max(t_settle, t_pulse) + columns_per_adc t_conversion)``. An
    ``integrating`` converter (an oscillator counting while the column current flows)
    converts during the read instead: ``input_cycles max(t_settle, t_pulse,
    columns_per_adc t_conversion)``.

    Parameters
    ----------
    t_settle : float
        Settling time [s], e.g. :func:`settling_time`.
    t_conversion : float
        One ADC conversion [s] (``1 / f_s``).
    input_cycles : int
        Cycles per input vector (input bits for bit-serial inputs), >= 1.
    columns_per_adc : int
        Columns multiplexed onto one ADC, >= 1.
    t_pulse : float
        Read pulse duration [s] (the longest pulse for pulse-width inputs).
    integrating : bool
        Whether the conversion overlaps the read.
    """
    vals = {"t_settle": t_settle, "t_conversion": t_conversion, "t_pulse": t_pulse}
    for name, x in vals.items():
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or x < 0:
            raise ConfigError(f"{name} must be a finite duration >= 0 [s], got {x!r}")
    for name, k in (("input_cycles", input_cycles), ("columns_per_adc", columns_per_adc)):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {k!r}")
    if not isinstance(integrating, bool):
        raise ConfigError(f"integrating must be True or False, got {integrating!r}")
    t_read = max(t_settle, t_pulse)
    if integrating:
        return input_cycles * max(t_read, columns_per_adc * t_conversion)
    return input_cycles * (t_read + columns_per_adc * t_conversion)
