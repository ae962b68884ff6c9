r"""Crossbar topologies as explicit netlists: assembly and exact linear solve.

Every topology is first written as a small netlist (nodes, resistors, cells, driven nodes and
virtual-ground sense nodes); one assembly then serves the exact linear solve, the Newton solve of
nonlinear cells (:mod:`xbarlab.crossbar.nonlinear`) and the SPICE netlist
(:func:`xbarlab.crossbar.to_spice`), so the solver and the ngspice reference read the same
circuit. Zero resistances are exact: their two nodes are merged (connected components) before
assembly; a merged class that holds a driven node is known, the others are unknowns of the nodal
equations ``K x = b`` (driven nodes condensed to the right-hand side).

Which solver serves what (``solver=`` of :func:`xbarlab.crossbar.column_currents`):

* linear cells, standard topology: the grid solve of :mod:`xbarlab.crossbar.circuit`
  (``solver=None``, ``pcg()`` or ``direct()``); a sparse ``solver(K, b)`` such as
  :func:`direct_solver` selects this module's netlist solve instead, an assembly independent of
  the grid (tests compare the two);
* linear cells, other topologies: the sparse netlist solve ``solver(K, b)`` (default
  :func:`direct_solver`); ``solver=pcg()`` or ``direct()`` (not source-line) solves with the
  grid's ``Crossbar`` instead (:func:`grid_currents`);
* nonlinear cells, standard topology and the two differential topologies (their physical
  arrays are standard arrays): Newton's method whose linear steps are the grid's structured
  solvers (``solver=None``: the grid's default choice; or ``pcg()`` / ``direct()``); a sparse
  ``solver(K, b)`` selects the netlist Jacobian instead (same iterates, slower beyond ~64x64);
* nonlinear cells, source line (its cells hang between two column wires, not on the grid):
  Newton's method on the netlist Jacobian with the sparse ``solver(K, b)``.

Topologies (``topology=`` keyword)::

  "standard"  (default; the geometry of crossbar.grid)          "source-line"  (1T1R)

     v_i -[r_driver]-o-[r_row]-o-[r_row]-o ...  (row i)          v_read
                         |         |                               |          column j
                      G_ij[+r_access]                          [r_driver]   SL_j      BL_j
                         |         |                               o--[cell i,j: G + r_access,
                         o column j (r_col segments)               |    on when x_i = 1]--o
                         :                                      [r_source]             [r_col]
                      [r_sense] -> virtual ground, I_j             :                      :
                                                                         [r_sense] -> I_j

* ``"standard"``: row ``i`` driven at its left end (or both ends, ``drive="both"``) by ``v[i]``
  through ``r_driver``; one ``r_row`` segment before each cell; column ``j`` with one ``r_col``
  segment after each cell towards the sense amplifier at the bottom (or top, ``sense="top"``),
  then ``r_sense`` and the virtual ground; optional series ``r_access`` per cell.
* ``"source-line"``: 1T1R cells whose transistor gate is the input: ``v`` holds gate states
  0 or 1 per row (the word line carries no current, so ``r_row`` must stay 0); the cell current
  comes from a source line ``SL_j`` running parallel to bit line ``j``, driven at ``v_read`` [V]
  through ``r_driver`` at its top (``source_end="top"``, opposite the sense amplifier) or bottom
  end, with one segment ``r_source`` per cell (the segment above cell ``(i, j)`` when driven at
  the top, below it when driven at the bottom). The bit line is the standard column.
* ``"differential-columns"``: ``G = (G_pos, G_neg)``, each (M, N); physical array (M, 2N) with
  columns ``2j`` = ``G_pos[:, j]`` and ``2j+1`` = ``G_neg[:, j]`` sharing the rows; output
  ``I[2j] - I[2j+1]``, the subtraction made at the sense amplifier. Per-segment resistances are
  given for the physical (M, 2N) array.
* ``"differential-rows"`` (interleaved differential cells): ``G = (G_pos, G_neg)``; physical
  array (2M, N) with rows ``2i`` = ``G_pos[i]`` driven at ``+v[i]`` and ``2i+1`` = ``G_neg[i]``
  driven at ``-v[i]``; the column wire itself sums ``(G_pos - G_neg) v``. Per-segment resistances
  and ``r_driver`` are given for the physical (2M, N) array.

Units: conductances [S], resistances [Ohm], voltages [V], currents [A].
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from ..enums import coerce_enum
from ..errors import ConfigError, ConvergenceError
from .circuit import Crossbar
from .grid import Drive, Sense, WireParams
from .solvers import PCG, Direct
from .validation import as_conductance, as_resistance, as_voltages

__all__ = [
    "Topology",
    "Circuit",
    "build_circuit",
    "differential_array",
    "is_standard_linear",
    "PhysicalInputs",
    "physical_inputs",
    "operating_range",
    "direct_solver",
    "is_grid_solver",
    "grid_layout",
    "grid_currents",
    "GridLayout",
]


class Topology(enum.StrEnum):
    """Circuit topology of an array (see the module docstring)."""

    STANDARD = "standard"
    SOURCE_LINE = "source-line"
    DIFFERENTIAL_COLUMNS = "differential-columns"
    DIFFERENTIAL_ROWS = "differential-rows"


# ----------------------------------------------------------------------------------- solvers


def direct_solver(A: sp.csr_matrix, b: np.ndarray) -> np.ndarray:
    """Sparse direct solve (SuperLU) of ``A x = b``; ``b`` (n,) or (n, B)."""
    lu = spla.splu(A.tocsc())
    return lu.solve(np.asarray(b, dtype=np.float64))


# ----------------------------------------------------------------------------------- netlist


class _Builder:
    """Collects nodes and elements; node ids are consecutive integers."""

    def __init__(self):
        self.n = 0
        self.res: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.cells: list[tuple[np.ndarray, np.ndarray]] = []

    def nodes(self, shape) -> np.ndarray:
        size = int(np.prod(shape))
        ids = np.arange(self.n, self.n + size).reshape(shape)
        self.n += size
        return ids

    def resistor(self, a, b, r):
        a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
        r = np.broadcast_to(np.asarray(r, dtype=np.float64), a.shape)
        self.res.append((a.ravel(), b.ravel(), r.ravel()))


@dataclass(frozen=True, eq=False)
class GridLayout:
    """Where a standard-topology netlist sits on the crossbar grid (:mod:`xbarlab.crossbar.grid`).

    ``row_nodes``, ``col_nodes`` (M, N): netlist node ids of the row- and column-wire nodes at
    each cell; ``wires``, ``sense``, ``drive``: the same circuit as
    ``Crossbar(G, wires=wires, sense=sense, drive=drive)``. Every other node of the netlist
    (driver output, sense input, cell-internal access node) lies between exactly two branches and
    is folded into the grid's series conductances by :func:`~xbarlab.crossbar.grid.build_grid`.
    """

    row_nodes: np.ndarray
    col_nodes: np.ndarray
    wires: WireParams
    sense: Sense
    drive: Drive


@dataclass(frozen=True, eq=False)
class Circuit:
    """A resistive network with cells between two nodes, ready to solve or export.

    ``res_a, res_b, res_r``: resistors (node, node, resistance [Ohm]; 0 = merged nodes);
    ``cell_a, cell_b``: cell ``k`` (flat index of the cell arrays) carries the current
    ``I_k(V[cell_a] - V[cell_b])`` from ``cell_a`` to ``cell_b``;
    ``src``: the driven nodes; ``sense``: the virtual-ground nodes whose inflowing currents are
    the outputs. Derived: ``cls`` (merged class per node), ``free`` (class -> unknown index or -1),
    ``known`` (class -> driven index, or -1 - sense index); ``layout``: the grid of a
    standard-topology circuit (None for the others).
    """

    n_nodes: int
    res_a: np.ndarray
    res_b: np.ndarray
    res_r: np.ndarray
    cell_a: np.ndarray
    cell_b: np.ndarray
    src: np.ndarray
    sense: np.ndarray
    cls: np.ndarray
    n_cls: int
    free: np.ndarray
    n_free: int
    known_src: np.ndarray
    known_sense: np.ndarray
    layout: GridLayout | None = None

    @staticmethod
    def build(
        n_nodes, res_a, res_b, res_r, cell_a, cell_b, src, sense, layout=None
    ) -> Circuit:
        # merged classes: connected components of the zero resistors, numbered in the order
        # of their smallest node
        zero = res_r == 0
        adj = sp.coo_matrix(
            (np.ones(int(zero.sum())), (res_a[zero], res_b[zero])), shape=(n_nodes, n_nodes)
        )
        n_cls, label = csgraph.connected_components(adj, directed=False)
        first = np.full(n_cls, n_nodes)
        np.minimum.at(first, label, np.arange(n_nodes))
        rank = np.empty(n_cls, dtype=np.int64)
        rank[np.argsort(first)] = np.arange(n_cls)
        cls = rank[label]
        known_src = np.full(n_cls, -1)
        known_sense = np.full(n_cls, -1)
        for k, node in enumerate(src.tolist()):
            c = cls[node]
            if known_src[c] not in (-1, k) or known_sense[c] != -1:
                raise ConfigError(
                    "zero resistances short two drivers (or a driver and a sense amplifier) "
                    "together; give r_driver, r_row or r_sense a value > 0"
                )
            known_src[c] = k
        for k, node in enumerate(sense.tolist()):
            c = cls[node]
            if known_src[c] != -1 or known_sense[c] != -1:
                raise ConfigError(
                    "zero resistances short a sense amplifier to a driver or another sense "
                    "amplifier; give r_sense, r_col or r_driver a value > 0"
                )
            known_sense[c] = k
        is_free = (known_src == -1) & (known_sense == -1)
        free = np.full(n_cls, -1)
        free[is_free] = np.arange(int(is_free.sum()))
        return Circuit(
            n_nodes,
            res_a,
            res_b,
            res_r,
            cell_a,
            cell_b,
            src,
            sense,
            cls,
            n_cls,
            free,
            int(is_free.sum()),
            known_src,
            known_sense,
            layout,
        )

    # -- assembly ----------------------------------------------------------------------------

    def class_voltages(self, x_free: np.ndarray, v_src: np.ndarray) -> np.ndarray:
        """Voltage of every class (n_cls, B) from unknowns (n_free, B) and drives (n_src, B)."""
        B = v_src.shape[1]
        V = np.zeros((self.n_cls, B))
        f = self.free >= 0
        V[f] = x_free[self.free[f]]
        s = self.known_src >= 0
        V[s] = v_src[self.known_src[s]]
        return V

    def edges(self, g_cells: np.ndarray):
        """(class a, class b, conductance) of all linear branches: resistors > 0 and cells."""
        nz = self.res_r > 0
        a = np.concatenate([self.cls[self.res_a[nz]], self.cls[self.cell_a]])
        b = np.concatenate([self.cls[self.res_b[nz]], self.cls[self.cell_b]])
        g = np.concatenate([1.0 / self.res_r[nz], g_cells])
        keep = (a != b) & (g != 0)
        return a[keep], b[keep], g[keep]

    def laplacian(self, a, b, g):
        """Free-free block ``K`` (CSR) and the map ``b = C @ V_known`` as (rows, cols, vals)."""
        fa, fb = self.free[a], self.free[b]
        rows, cols, vals = [], [], []
        for p, q in ((fa, fb), (fb, fa)):
            m = p >= 0
            rows.append(p[m])
            cols.append(p[m])
            vals.append(g[m])
            mm = m & (q >= 0)
            rows.append(p[mm])
            cols.append(q[mm])
            vals.append(-g[mm])
        n = self.n_free
        K = sp.coo_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        ).tocsr()
        return K

    def rhs(self, a, b, g, v_src: np.ndarray) -> np.ndarray:
        """Right-hand side (n_free, B): sum of g * V_known over branches to driven classes."""
        B = v_src.shape[1]
        out = np.zeros((self.n_free, B))
        for p, q in ((a, b), (b, a)):
            fp = self.free[p]
            sq = self.known_src[q]
            m = (fp >= 0) & (sq >= 0)
            np.add.at(out, fp[m], g[m, None] * v_src[sq[m]])
        return out

    def sense_currents(self, V: np.ndarray, a, b, g, cell_current=None) -> np.ndarray:
        """Currents (B, n_sense) flowing into each sense class from the rest of the circuit.

        ``a, b, g``: the linear branches; ``cell_current(V) -> (n_cells, B)`` adds nonlinear
        cells (then ``g`` holds resistors only).
        """
        B = V.shape[1]
        out = np.zeros((self.sense.size, B))
        for p, q, sign in ((a, b, 1.0), (b, a, 1.0)):
            sp_ = self.known_sense[p]
            m = sp_ >= 0
            # current into p from q: g (V_q - V_p)
            np.add.at(out, sp_[m], sign * g[m, None] * (V[q[m]] - V[p[m]]))
        if cell_current is not None:
            ca, cb = self.cls[self.cell_a], self.cls[self.cell_b]
            Ic = cell_current(V[ca] - V[cb])
            m = self.known_sense[cb] >= 0
            np.add.at(out, self.known_sense[cb[m]], Ic[m])
            m = self.known_sense[ca] >= 0
            np.add.at(out, self.known_sense[ca[m]], -Ic[m])
        return out.T

    def solve_linear(
        self, g_cells: np.ndarray, v_src: np.ndarray, *, solver=None, tol: float = 1e-12
    ):
        """Exact linear solve: returns (class voltages (n_cls, B), sense currents (B, n_sense)).

        Checks the Kirchhoff residual against ``tol``, as a normwise backward error
        ``|K x - b|_inf / (|K|_inf |x|_inf + |b|_inf)``.
        """
        solver = solver or direct_solver
        a, b, g = self.edges(g_cells)
        if self.n_free:
            K = self.laplacian(a, b, g)
            rhs = self.rhs(a, b, g, v_src)
            x = np.asarray(solver(K, rhs), dtype=np.float64).reshape(rhs.shape)
            resid = K @ x - rhs
        else:
            x = np.zeros((0, v_src.shape[1]))
            resid = x
        V = self.class_voltages(x, v_src)
        if resid.size:
            # normwise backward error: residual over the size of the terms of the KCL sums
            scale = abs(K).sum(axis=1).max() * np.abs(x).max() + np.abs(rhs).max()
            if scale > 0:
                rel = float(np.max(np.abs(resid)) / scale)
            else:  # a NaN scale (NaN in the solution) is a NaN residual, not a zero one
                rel = 0.0 if scale == 0 else math.nan
            if not rel <= tol:
                raise ConvergenceError(
                    f"linear solve reached a Kirchhoff residual of {rel:.3e} (relative to the "
                    f"terms of the node current sums), above tol={tol:g}",
                    residual=rel,
                )
        return V, self.sense_currents(V, a, b, g)


# ------------------------------------------------------------------------------- geometry


def _resistance(r, name: str, shapes: list[tuple[int, ...]]) -> np.ndarray:
    """Resistances [Ohm] checked as :class:`WireParams` checks them, then one of the allowed
    ``shapes``."""
    arr = np.asarray(as_resistance(name, r))
    if arr.ndim == 0:
        return np.broadcast_to(arr, shapes[0])
    if arr.shape not in shapes:
        raise ConfigError(
            f"{name} must be a scalar or of shape {' or '.join(map(str, shapes))}, got {arr.shape}"
        )
    return arr


def build_circuit(
    G_shape: tuple[int, int],
    *,
    topology: Topology | str = Topology.STANDARD,
    r_row=0.0,
    r_col=0.0,
    r_driver=0.0,
    r_sense=0.0,
    r_access=0.0,
    r_source=0.0,
    sense: str = "bottom",
    drive: str = "left",
    source_end: str = "top",
    gates=None,
) -> Circuit:
    """The netlist of an (M, N) array of the physical layout (see the module docstring).

    Cells are numbered in C order over (M, N). ``gates`` (M,) of 0/1 switch the 1T1R cells of the
    source-line topology (an off cell is left out). Driven nodes: ``M`` row drivers in order
    (source-line: one, the source-line supply); sense nodes: the ``N`` columns in order.
    """
    M, N = G_shape
    topology = coerce_enum(Topology, topology, "topology")
    sense = coerce_enum(Sense, sense, "sense")
    drive = coerce_enum(Drive, drive, "drive")
    if source_end not in ("top", "bottom"):
        raise ConfigError(f"unknown source_end {source_end!r}; valid: ['top', 'bottom']")
    bld = _Builder()
    C = bld.nodes((M, N))
    rc = _resistance(r_col, "r_col", [(M, N)])
    rs = _resistance(r_sense, "r_sense", [(N,)])
    ra = _resistance(r_access, "r_access", [(M, N)])
    S = bld.nodes(N)
    CS = bld.nodes(N)
    bld.resistor(CS, S, rs)
    if sense is Sense.BOTTOM:
        bld.resistor(C[:-1], C[1:], rc[:-1])
        bld.resistor(C[-1], CS, rc[-1])
    else:
        bld.resistor(CS, C[0], rc[0])
        bld.resistor(C[:-1], C[1:], rc[1:])
    if topology is Topology.SOURCE_LINE:
        rr = _resistance(r_row, "r_row", [(M, N), (M, N + 1)])
        if np.any(rr != 0):
            raise ConfigError(
                "r_row must be 0 with topology='source-line': the word line drives "
                "transistor gates and carries no current (use r_source)"
            )
        rsl = _resistance(r_source, "r_source", [(M, N)])
        rd = _resistance(r_driver, "r_driver", [()])
        if gates is None:
            raise ConfigError("topology='source-line' needs the gate states (v of 0/1)")
        Lnode = bld.nodes((M, N))
        SRC = bld.nodes(1)
        T = bld.nodes(N)
        bld.resistor(SRC[0], T, rd)
        if source_end == "top":
            bld.resistor(T, Lnode[0], rsl[0])
            bld.resistor(Lnode[:-1], Lnode[1:], rsl[1:])
        else:
            bld.resistor(Lnode[:-1], Lnode[1:], rsl[:-1])
            bld.resistor(Lnode[-1], T, rsl[-1])
        top = Lnode
        src = SRC
        on = np.asarray(gates, dtype=bool)
        layout = None
    else:
        if np.any(as_resistance("r_source", r_source) != 0):
            raise ConfigError(
                f"r_source applies only to topology='source-line', not {topology.value!r}"
            )
        R = bld.nodes((M, N))
        SRC = bld.nodes(M)
        DL = bld.nodes(M)
        rd = _resistance(r_driver, "r_driver", [(M,)])
        bld.resistor(SRC, DL, rd)
        if drive is Drive.LEFT:
            rr = _resistance(r_row, "r_row", [(M, N)])
            bld.resistor(DL, R[:, 0], rr[:, 0])
            bld.resistor(R[:, :-1], R[:, 1:], rr[:, 1:])
        else:
            rr = _resistance(r_row, "r_row", [(M, N + 1)])
            DR = bld.nodes(M)
            bld.resistor(SRC, DR, rd)
            bld.resistor(DL, R[:, 0], rr[:, 0])
            bld.resistor(R[:, :-1], R[:, 1:], rr[:, 1:-1])
            bld.resistor(R[:, -1], DR, rr[:, -1])
        top = R
        src = SRC
        on = np.ones(M, dtype=bool)
        layout = GridLayout(
            R,
            C,
            WireParams(r_row=rr, r_col=rc, r_driver=rd, r_sense=rs, r_access=ra),
            sense,
            drive,
        )
    # cells, numbered in C order over (M, N)
    if np.any(ra > 0):
        A = bld.nodes((M, N))
        bld.resistor(A, C, ra)
        cell_b = A
    else:
        cell_b = C
    # an off 1T1R cell has both ends on its bit-line node: it carries no current
    cell_a = np.where(on[:, None], top, cell_b)
    res_a = np.concatenate([r[0] for r in bld.res])
    res_b = np.concatenate([r[1] for r in bld.res])
    res_r = np.concatenate([r[2] for r in bld.res])
    return Circuit.build(
        bld.n, res_a, res_b, res_r, cell_a.ravel(), cell_b.ravel(), src, S, layout=layout
    )


# ------------------------------------------------------------------------------- front ends


def _as_pair(G, topology):
    if not isinstance(G, (tuple, list)) or len(G) != 2:
        raise ConfigError(
            f"topology={topology.value!r} needs G = (G_pos, G_neg), two arrays of shape (M, N)"
        )
    gp = as_conductance(G[0], "G_pos")
    gn = as_conductance(G[1], "G_neg")
    if gp.shape != gn.shape:
        raise ConfigError(
            f"G_pos and G_neg must have equal shapes (M, N), got {gp.shape} and {gn.shape}"
        )
    return gp, gn


def _unchanged(x):
    return x


def _row_pair_drives(v):
    vp = np.empty(v.shape[:-1] + (2 * v.shape[-1],))
    vp[..., 0::2], vp[..., 1::2] = v, -v
    return vp


def _column_pair_difference(I):
    return I[..., 0::2] - I[..., 1::2]


def differential_array(g_pos: np.ndarray, g_neg: np.ndarray, topology: Topology):
    """The physical array of a differential pair of (M, N) conductances [S], unchecked.

    Returns ``(G_phys, to_phys, combine)``: for "differential-columns" G_phys (M, 2N) with
    columns ``2j`` = ``g_pos[:, j]`` and ``2j+1`` = ``g_neg[:, j]``, ``to_phys`` the identity
    and ``combine(I) = I[..., 0::2] - I[..., 1::2]``; for "differential-rows" G_phys (2M, N)
    with rows ``2i`` = ``g_pos[i]`` and ``2i+1`` = ``g_neg[i]``, ``to_phys(v)`` the drives
    (..., 2M) [V] ``+v[i]``, ``-v[i]`` and ``combine`` the identity.
    """
    M, N = g_pos.shape
    if topology is Topology.DIFFERENTIAL_ROWS:
        G = np.empty((2 * M, N))
        G[0::2], G[1::2] = g_pos, g_neg
        return G, _row_pair_drives, _unchanged
    if topology is Topology.DIFFERENTIAL_COLUMNS:
        G = np.empty((M, 2 * N))
        G[:, 0::2], G[:, 1::2] = g_pos, g_neg
        return G, _unchanged, _column_pair_difference
    raise ConfigError(
        f"topology={topology.value!r} is not a differential topology; valid: "
        f"{Topology.DIFFERENTIAL_COLUMNS.value!r}, {Topology.DIFFERENTIAL_ROWS.value!r}"
    )


def is_standard_linear(topology, cell, v_read, r_source) -> bool:
    """True for a standard array of linear cells (``topology="standard"``, no ``cell``, no
    ``v_read``, no ``r_source``): the circuit of the crossbar grid
    (:mod:`xbarlab.crossbar.grid`)."""
    return (
        coerce_enum(Topology, topology, "topology") is Topology.STANDARD
        and cell is None
        and v_read is None
        and not np.any(r_source)
    )


@dataclass(frozen=True, eq=False)
class PhysicalInputs:
    """The conductances and inputs of one call, checked for its topology, as the physical
    array its netlist holds (see :func:`physical_inputs`)."""

    #: the circuit topology.
    topology: Topology
    #: physical conductances (M', N') [S].
    G: np.ndarray
    #: physical row drives (B, M') [V]; for the source line the gate states 0 or 1.
    v: np.ndarray
    #: whether the caller gave one input vector (outputs (N,) rather than (B, N)).
    single: bool
    #: physical sense currents (..., N') [A] -> the outputs (..., N) [A].
    combine: Callable
    #: source-line supply voltage [V] (None for the other topologies).
    v_read: float | None

    def circuits(self, **wiring) -> Iterator[tuple[Circuit, np.ndarray, np.ndarray | slice]]:
        """The netlists that serve the inputs: ``(circuit, driven voltages (n_src, B') [V],
        the rows of ``v`` it serves)``. One netlist for every input, except for the source
        line: one per distinct gate pattern, driven at ``v_read``. ``wiring``: the resistances,
        ``sense``, ``drive`` and ``source_end`` of :func:`build_circuit`."""
        M, N = self.G.shape
        if self.topology is not Topology.SOURCE_LINE:
            circ = build_circuit((M, N), topology=Topology.STANDARD, **wiring)
            yield circ, self.v.T, slice(None)
            return
        patterns, inverse = np.unique(self.v, axis=0, return_inverse=True)
        v_src = np.full((1, 1), float(self.v_read))
        for p, gates in enumerate(patterns):
            circ = build_circuit((M, N), topology=self.topology, gates=gates, **wiring)
            yield circ, v_src, inverse.ravel() == p


def physical_inputs(G, v, topology, *, cell=None, v_read=None) -> PhysicalInputs:
    """``G`` [S] and ``v`` [V] of :func:`xbarlab.crossbar.column_currents` checked for the
    topology (a pair for the differential ones; gate states 0 or 1 and a finite ``v_read``
    for the source line, ``v_read`` None otherwise; ``cell`` checked over the voltages the
    drivers can impose) and laid out as the physical array; ConfigError naming the parameter
    otherwise."""
    topology = coerce_enum(Topology, topology, "topology")
    if topology in (Topology.DIFFERENTIAL_COLUMNS, Topology.DIFFERENTIAL_ROWS):
        Gp, to_phys, combine = differential_array(*_as_pair(G, topology), topology)
    elif isinstance(G, (tuple, list)):
        raise ConfigError(f"topology={topology.value!r} takes one conductance array G, not a pair")
    else:
        Gp, to_phys, combine = as_conductance(G), _unchanged, _unchanged
    rows = Gp.shape[0] // 2 if topology is Topology.DIFFERENTIAL_ROWS else Gp.shape[0]
    v2, single = as_voltages(v, rows)
    vb = to_phys(v2)
    if topology is Topology.SOURCE_LINE:
        if v_read is None or not np.isfinite(v_read):
            raise ConfigError(f"topology='source-line' needs a finite v_read in V, got {v_read!r}")
        if not np.all((vb == 0) | (vb == 1)):
            raise ConfigError("with topology='source-line' v holds gate states: 0 or 1")
    elif v_read is not None:
        raise ConfigError(f"v_read applies only to topology='source-line', not {topology.value!r}")
    if cell is not None:
        cell.check(Gp, operating_range(vb, v_read, topology))
    return PhysicalInputs(topology, Gp, vb, single, combine, v_read)


def operating_range(vb: np.ndarray, v_read: float | None, topology: Topology) -> float:
    """Largest cell-voltage magnitude [V] the drivers can impose on a passive network: the
    spread of the driven voltages ``vb`` (B, M') [V] and 0 V, or ``|v_read|`` for the source
    line."""
    if topology is Topology.SOURCE_LINE:
        return abs(float(v_read or 0.0))
    return float(max(vb.max(initial=0.0), 0.0) - min(vb.min(initial=0.0), 0.0))


def is_grid_solver(solver) -> bool:
    """True for the grid solver factories of :mod:`xbarlab.crossbar.solvers` (``pcg()``,
    ``direct()``); any other callable is a sparse netlist solver ``solver(K, b) -> x``."""
    return isinstance(solver, (PCG, Direct))


def grid_layout(circ: Circuit, solver) -> GridLayout:
    """The grid a netlist sits on (``circ.layout``); ConfigError naming ``solver`` for a
    source-line netlist, which a grid solver cannot solve."""
    if circ.layout is None:
        raise ConfigError(
            f"solver={solver!r} (a grid solver) applies to arrays on the standard grid "
            "(topology='standard' or a differential one), not to topology='source-line'; give "
            "a sparse solver(K, b) such as direct_solver, or None"
        )
    return circ.layout


def grid_currents(circ: Circuit, Gp: np.ndarray, v_src: np.ndarray, solver) -> np.ndarray:
    """Sense currents (B, N) [A] of a linear netlist on the standard grid, solved by
    :class:`~xbarlab.crossbar.circuit.Crossbar` with the grid solver ``solver``; ``Gp`` (M, N)
    [S] the physical array, ``v_src`` (M, B) [V] the driven voltages."""
    lay = grid_layout(circ, solver)
    xb = Crossbar(Gp, wires=lay.wires, sense=lay.sense, drive=lay.drive, solver=solver)
    return xb.solve(v_src.T, voltages=False).currents
