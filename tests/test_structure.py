"""The package's shape: one-way imports, small modules and functions, no work-plan words.

The import graph is built from the source with ``ast`` (no module is imported), so a cycle
fails here before it can bite at import time. Limits: 800 lines a module, 120 lines a
function, outside tests. The code speaks of the project only: patterns that name work items
instead of what the code does fail in the package, its tests, README.md and data/README.md.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"tests", ".ci", "build", "dist", ".git", ".venv", "venv", "__pycache__"}
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 120
# figure reproductions sit apart: the library never imports them
FIGURES = "xbarlab.nn.figures"


@functools.cache
def _parsed(path: Path) -> tuple[str, ast.Module]:
    """Text and syntax tree of a source file, read once per session."""
    text = path.read_text(encoding="utf-8")
    return text, ast.parse(text)


@functools.cache
def _package_files() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for p in sorted(ROOT.rglob("*.py")):
        rel = p.relative_to(ROOT)
        if rel.parts[0] in SKIP_DIRS or rel.parts[0] == "data" or any(
                x in SKIP_DIRS or x.endswith(".egg-info") for x in rel.parts[:-1]):
            continue
        q = list(rel.with_suffix("").parts)
        if q[-1] == "__init__":
            q = q[:-1]
        mods[".".join(["xbarlab", *q])] = p
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Package modules that ``name`` imports (module-level or inside functions)."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(_parsed(path)[1]):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                head = base[: len(base) - node.level + 1]
                stem = ".".join(head + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [stem] + [f"{stem}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if not t or t == name or t == "xbarlab":
                continue
            if path.name == "__init__.py" and t.startswith(name + "."):
                continue  # a package's own submodules (lazy re-exports) are not an edge up
            out.add(t)
    return out


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """Edges module -> package modules it imports, from the source."""
    mods = _package_files()
    return {m: _imports(m, p, mods) for m, p in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_find_cycle_detects_a_cycle():
    """The checker itself: a -> b -> c -> a is found; a DAG has none."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_has_no_cycle():
    """The package's modules import one way: no cycle among them."""
    graph = import_graph()
    assert len(graph) > 20, "the source scan found too few modules"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_library_never_imports_the_cli_or_figure_scripts():
    """Layers point down: only the CLI imports the CLI; only figure scripts import figures."""
    bad = []
    for m, deps in import_graph().items():
        for d in deps:
            if d.startswith("xbarlab.cli") and not m.startswith("xbarlab.cli"):
                bad.append(f"{m} -> {d}")
            if d.startswith(FIGURES) and not m.startswith(FIGURES):
                bad.append(f"{m} -> {d}")
    assert not bad, "library modules import upward: " + ", ".join(sorted(bad))


def test_module_and_function_sizes():
    """No module over 800 lines and no function over 120 lines outside tests."""
    too_long = []
    for p in _package_files().values():
        text, tree = _parsed(p)
        n = text.count("\n") + (not text.endswith("\n"))
        if n > MAX_MODULE_LINES:
            too_long.append(f"{p.relative_to(ROOT)}: {n} lines (module)")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name}: "
                                    f"{length} lines (function)")
    assert not too_long, "over the size limits:\n" + "\n".join(too_long)


WORK_PLAN = [
    r"\bpart[ -]?[12]\b",
    r"_part[12]\b",
    r"done[- ]when",
    r":\s*met\b",
    r"\(the [a-z -]+ issue\)",
    r"\bthe [a-z]+ issue\b",
    r"\bissue #?\d+\b",
]


def _text_files() -> list[Path]:
    """The package's and the tests' Python files, README.md and data/README.md (never a
    virtual environment or build folder inside the clone)."""
    extra = [p for d in ("tests", "data") for p in (ROOT / d).rglob("*.py")
             if "__pycache__" not in p.parts]
    return [*_package_files().values(), *extra, ROOT / "README.md", ROOT / "data" / "README.md"]


def test_work_plan_pattern_catches_examples():
    """The patterns catch the phrasing they are meant for and spare ordinary prose."""
    pat = re.compile("|".join(WORK_PLAN), re.IGNORECASE)
    # the examples are assembled so that a plain grep of this file finds none of them
    part, issue, done = "pa" + "rt", "is" + "sue", "Do" + "ne"
    for s in (f"nn {part} 2's loader", f"experiments_{part}2", f"{done}-when check",
              "≤ 2 s: met", f"(the calibration {issue})", f"goals from the foundation {issue}"):
        assert pat.search(s), s
    for s in ("the partition of rows", "parameters met the bound", "a party of two"):
        assert not pat.search(s), s


def test_no_work_plan_words():
    """Names, messages, docs and tests describe what the code does, not the work plan."""
    pat = re.compile("|".join(WORK_PLAN), re.IGNORECASE)
    me = Path(__file__).resolve()
    hits = []
    for p in _text_files():
        if p.resolve() == me or not p.is_file():
            continue
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if pat.search(line):
                hits.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    assert not hits, "work-plan words:\n" + "\n".join(hits[:40])


@pytest.mark.parametrize("word", ["def column_currents", "def to_spice"])
def test_one_definition_of_each_entry_point(word):
    """One public ``column_currents`` and one ``to_spice`` in the package."""
    found = [f"{p.relative_to(ROOT)}" for p in _package_files().values()
             if re.search(rf"^{word}\(", p.read_text(encoding="utf-8"), re.MULTILINE)]
    assert len(found) == 1, f"{word}: {found}"


def test_no_private_names_cross_modules():
    """A ``_name`` is private to its module: no package module imports one from another."""
    bad = []
    for m, p in _package_files().items():
        for node in ast.walk(_parsed(p)[1]):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                    "xbarlab")):
                bad += [f"{m}: {node.module or '.'}.{a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, "private names imported across modules: " + ", ".join(bad)
