"""SPICE netlist of the crossbar circuit, and an ngspice cross-check read from binary rawfiles.

:func:`to_spice` writes any array :func:`xbarlab.crossbar.column_currents` solves. A standard
array of linear cells is written from the physical parameters directly (driver, row segments, access
resistor and cell, column segments, sense resistor, a 0 V source as the sense amplifier's
virtual ground), not from the solver's canonical grid, so that agreement tests the whole chain.
A zero resistance becomes a 0 V source (SPICE rejects 0-Ohm resistors).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..enums import coerce_enum
from ..errors import ConfigError, DataFormatError
from .grid import Drive, Sense, WireParams
from .topologies import (
    Circuit,
    PhysicalInputs,
    Topology,
    is_standard_linear,
    physical_inputs,
)
from .validation import as_conductance, as_shape, as_voltages

__all__ = [
    "to_spice",
    "read_rawfile",
    "run_ngspice",
    "ngspice_column_currents",
    "spice_column_currents",
]


def to_spice(
    G,
    v,
    *,
    topology: Topology | str = Topology.STANDARD,
    cell=None,
    r_row=0.0,
    r_col=0.0,
    r_driver=0.0,
    r_sense=0.0,
    r_access=0.0,
    r_source=0.0,
    v_read: float | None = None,
    sense: Sense | str = Sense.BOTTOM,
    drive: Drive | str = Drive.LEFT,
    source_end: str = "top",
    title: str = "xbarlab crossbar",
    path=None,
    force: bool = False,
) -> str:
    """The SPICE netlist (``.op``) of the circuit :func:`xbarlab.crossbar.column_currents`
    solves, for one input ``v`` (M,) [V].

    Parameters are those of :func:`xbarlab.crossbar.column_currents` (``G`` [S], resistances
    [Ohm], ``v_read`` [V]); ``title``: the netlist's first line; ``path``: also write the
    netlist there atomically (an existing file is kept unless ``force=True``).

    A standard array of linear cells (no ``r_source``, no ``v_read``) is written from the
    physical parameters: nodes ``d<i>`` driver source, ``r<i>_<j>`` row node, ``x<i>_<j>``
    inside a cell with access resistance, ``c<i>_<j>`` column node, ``s<j>``/``t<j>`` sense
    path; the current of source ``vs<j>`` is the sense current I[j] [A]. Other topologies and
    nonlinear ``cell`` models are written from the netlist of
    :mod:`xbarlab.crossbar.topologies`: sense amplifiers are 0 V sources ``VS<j>``; the
    differential column topology adds behavioural sources ``BD<j>`` feeding 1 Ohm loads so that
    ``v(out<j>) = I[2j] - I[2j+1]`` (in A, numerically) is the subtracted output; nonlinear
    cells are behavioural current sources (``B`` elements).

    Returns
    -------
    str
        The netlist text.
    """
    if is_standard_linear(topology, cell, v_read, r_source):
        wires = WireParams(
            r_row=r_row, r_col=r_col, r_driver=r_driver, r_sense=r_sense, r_access=r_access
        )
        text = _grid_spice(G, v, wires, sense, drive, title)
    else:
        phys = physical_inputs(G, v, topology, cell=cell, v_read=v_read)
        if not phys.single:
            raise ConfigError(f"to_spice takes one input vector v, got shape {np.shape(v)}")
        ((circ, v_src, _),) = phys.circuits(
            r_row=r_row, r_col=r_col, r_driver=r_driver, r_sense=r_sense, r_access=r_access,
            r_source=r_source, sense=sense, drive=drive, source_end=source_end,
        )
        text = _netlist_spice(phys, circ, v_src[:, 0], cell, title)
    if path is not None:
        from ..formats import atomic_output  # lazy: keeps ``import xbarlab.crossbar`` light

        with atomic_output(path, force=force) as tmp:
            tmp.write_text(text)
    return text


def _grid_spice(G, v, w: WireParams, sense, drive, title: str) -> str:
    """The SPICE netlist of a standard array of linear cells written from the physical
    parameters (see the module docstring and :func:`to_spice`)."""
    G = as_conductance(G)
    M, N = G.shape
    v2, single = as_voltages(v, M)
    if not single:
        raise ConfigError(f"to_spice takes one input vector v of shape ({M},), got {np.shape(v)}")
    v = v2[0]
    sense = coerce_enum(Sense, sense, "sense")
    drive = coerce_enum(Drive, drive, "drive")
    nseg = N + 1 if drive is Drive.BOTH else N
    rr = as_shape("r_row", w.r_row, (M, nseg))
    rc = as_shape("r_col", w.r_col, (M, N))
    rd = as_shape("r_driver", w.r_driver, (M,))
    rs = as_shape("r_sense", w.r_sense, (N,))
    ra = as_shape("r_access", w.r_access, (M, N))
    lines = [f"* {title}: {M}x{N}, sense={sense.value}, drive={drive.value}"]
    count = [0]

    def res(a, b, r):
        count[0] += 1
        if r == 0.0:
            lines.append(f"vz{count[0]} {a} {b} 0")
        else:
            lines.append(f"r{count[0]} {a} {b} {float(r)!r}")

    for i in range(M):
        lines.append(f"vd{i} d{i} 0 {float(v[i])!r}")
        res(f"d{i}", f"a{i}", rd[i])
        res(f"a{i}", f"r{i}_0", rr[i, 0])
        for j in range(1, N):
            res(f"r{i}_{j - 1}", f"r{i}_{j}", rr[i, j])
        if drive is Drive.BOTH:
            res(f"r{i}_{N - 1}", f"b{i}", rr[i, N])
            res(f"b{i}", f"d{i}", rd[i])
    for i in range(M):
        for j in range(N):
            if G[i, j] == 0.0:
                continue
            if ra[i, j] > 0:
                res(f"r{i}_{j}", f"x{i}_{j}", ra[i, j])
                res(f"x{i}_{j}", f"c{i}_{j}", 1.0 / G[i, j])
            else:
                res(f"r{i}_{j}", f"c{i}_{j}", 1.0 / G[i, j])
    for j in range(N):
        if sense is Sense.BOTTOM:
            for i in range(M - 1):
                res(f"c{i}_{j}", f"c{i + 1}_{j}", rc[i, j])
            res(f"c{M - 1}_{j}", f"s{j}", rc[M - 1, j])
        else:
            for i in range(1, M):
                res(f"c{i - 1}_{j}", f"c{i}_{j}", rc[i, j])
            res(f"c0_{j}", f"s{j}", rc[0, j])
        res(f"s{j}", f"t{j}", rs[j])
        lines.append(f"vs{j} t{j} 0 0")
    lines += [".options noacct", ".op", ".end", ""]
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return f"{float(x):.17g}"


def _netlist_spice(phys: PhysicalInputs, circ: Circuit, v_src, cell, title: str) -> str:
    """The SPICE netlist (``.op``) of the netlist ``circ`` of :mod:`xbarlab.crossbar.topologies`
    (any topology, linear or nonlinear cells) driven at ``v_src`` (n_src,) [V].

    Sense amplifiers are 0 V sources ``VS<j>`` (current ``i(vs<j>)`` = output of column j);
    the differential column topology adds behavioural sources ``BD<j>`` feeding 1 Ohm loads so
    that ``v(out<j>) = I[2j] - I[2j+1]`` (in A, numerically) is the subtracted output.
    Nonlinear cells are behavioural current sources (``B`` elements). Options
    ``reltol=1e-9 abstol=1e-15``.
    """
    Gp = phys.G
    N = Gp.shape[1]

    def node(c):
        return f"n{c}"

    lines = [f"* {title}"]
    for k, c in enumerate(circ.cls[circ.src].tolist()):
        lines.append(f"VD{k} {node(c)} 0 DC {_fmt(v_src[k])}")
    for j, c in enumerate(circ.cls[circ.sense].tolist()):
        lines.append(f"VS{j} {node(c)} 0 DC 0")
    nz = circ.res_r > 0
    for e, (a, b, r) in enumerate(
        zip(
            circ.cls[circ.res_a[nz]].tolist(),
            circ.cls[circ.res_b[nz]].tolist(),
            circ.res_r[nz].tolist(),
            strict=True,
        )
    ):
        if a != b:
            lines.append(f"RW{e} {node(a)} {node(b)} {_fmt(r)}")
    ca, cb = circ.cls[circ.cell_a], circ.cls[circ.cell_b]
    g = Gp.ravel()
    bound = cell.bind(Gp) if cell is not None else None
    for k in range(g.size):
        a, b = int(ca[k]), int(cb[k])
        if a == b:
            continue
        if cell is None:
            if g[k] > 0:
                lines.append(f"RC{k} {node(a)} {node(b)} {_fmt(1.0 / g[k])}")
        else:
            expr = bound.expression(k, f"V({node(a)},{node(b)})")
            if expr is not None:
                lines.append(f"BC{k} {node(a)} {node(b)} I={expr}")
    if phys.topology is Topology.DIFFERENTIAL_COLUMNS:
        for j in range(N // 2):
            lines.append(f"BD{j} 0 out{j} I=i(VS{2 * j})-i(VS{2 * j + 1})")
            lines.append(f"RD{j} out{j} 0 1")
    lines += [".options reltol=1e-9 abstol=1e-15 vntol=1e-12", ".op", ".end", ""]
    return "\n".join(lines)


def read_rawfile(path) -> dict[str, np.ndarray]:
    """Read a SPICE binary rawfile (first plot): variable name (lower case) -> values
    (one per point; complex for complex plots). Raises DataFormatError if malformed."""
    data = Path(path).read_bytes()
    marker = b"Binary:\n"
    k = data.find(marker)
    if k < 0:
        raise DataFormatError(f"{path}: no 'Binary:' section (ASCII rawfile or not a rawfile)")
    header = data[:k].decode("latin-1").splitlines()
    nvar = npts = None
    complex_ = False
    names: list[str] = []
    in_vars = False
    for line in header:
        key, _, val = line.partition(":")
        low = key.strip().lower()
        if in_vars and line.startswith(("\t", " ")):
            parts = line.split()
            if len(parts) >= 2:
                names.append(parts[1].lower())
            continue
        in_vars = False
        if low == "flags":
            complex_ = "complex" in val.lower()
        elif low == "no. variables":
            nvar = int(val)
        elif low == "no. points":
            npts = int(val)
        elif low == "variables":
            in_vars = True
    if nvar is None or npts is None or len(names) != nvar:
        raise DataFormatError(
            f"{path}: malformed rawfile header ({nvar} variables, {len(names)} names)"
        )
    width = 2 if complex_ else 1
    count = nvar * npts * width
    body = np.frombuffer(data, dtype="<f8", count=count, offset=k + len(marker))
    if body.size != count:
        raise DataFormatError(f"{path}: rawfile truncated ({body.size} of {count} values)")
    body = body.reshape(npts, nvar, width)
    vals = body[..., 0] + 1j * body[..., 1] if complex_ else body[..., 0]
    return {n: np.array(vals[:, q]) for q, n in enumerate(names)}


def run_ngspice(
    netlist: str, *, timeout: float = 600.0, executable: str = "ngspice"
) -> dict[str, np.ndarray]:
    """Run ngspice in batch mode on ``netlist`` and return its binary rawfile as
    :func:`read_rawfile` does. Raises FileNotFoundError if ngspice is not installed and
    RuntimeError if it fails."""
    exe = shutil.which(executable)
    if exe is None:
        raise FileNotFoundError(f"{executable!r} not found on PATH (install ngspice)")
    with tempfile.TemporaryDirectory(prefix="xbarlab-spice-") as tmp:
        cir = os.path.join(tmp, "circuit.cir")
        raw = os.path.join(tmp, "circuit.raw")
        Path(cir).write_text(netlist)
        env = dict(os.environ)
        env.pop("SPICE_ASCIIRAWFILE", None)
        proc = subprocess.run(
            [exe, "-b", "-r", raw, cir],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=tmp,
        )
        if proc.returncode != 0 or not os.path.exists(raw):
            tail = (proc.stdout + proc.stderr)[-2000:]
            raise RuntimeError(f"ngspice failed (exit {proc.returncode}):\n{tail}")
        return read_rawfile(raw)


def ngspice_column_currents(G, v, **kwargs) -> np.ndarray:
    """The outputs [A] of the same circuit from ngspice (``.op``, binary rawfile), one vector:
    the sense currents ``i(vs<j>)`` of the (physical) columns, or for
    ``topology="differential-columns"`` the subtracted pair outputs ``v(out<j>)``. Keyword
    arguments as :func:`to_spice` (any topology, nonlinear ``cell`` models)."""
    res = run_ngspice(to_spice(G, v, **kwargs))
    topology = coerce_enum(Topology, kwargs.get("topology", Topology.STANDARD), "topology")
    pair = isinstance(G, (tuple, list))
    n = np.shape(G[0] if pair else G)[1]
    if topology is Topology.DIFFERENTIAL_COLUMNS:
        return np.array([res[f"v(out{j})"][0] for j in range(n)])
    return spice_column_currents(res, n)


def spice_column_currents(netlist_values, n: int) -> np.ndarray:
    """The ``n`` sense currents ``i(vs<j>)`` [A] from :func:`~xbarlab.crossbar.spice.run_ngspice`'s
    result (values per name, one ``.op`` point)."""
    return np.array([float(np.ravel(netlist_values[f"i(vs{j})"])[0]) for j in range(n)])
