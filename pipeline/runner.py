"""The cached runner of ``xbarlab run``: stage keys, completion markers, resuming, the log.

Stages (:data:`~.stages.STAGES`) each write one folder ``OUT/<stage>/``; a stage's *key*
is the SHA-256 of its name, the xbarlab version and the digest of its source code
(:func:`code_digest`: a checkout's edits rerun what they may change), its config sections
(plus the run seed),
the content digests of the upstream stages' outputs and, for ``load``, the SHA-256 of each
input data file. A stage folder is built in ``OUT/.tmp-<stage>-<pid>/``, closed with the
completion marker ``.xbarlab-stage.json`` (key, digest of every output file, time) and
renamed into place, so an interrupted run (Ctrl-C, kill -9) keeps every finished stage
and a rerun resumes: a stage whose marker holds the current key is skipped, and a
changed input or setting reruns exactly the stages that depend on it. Every start,
skip, finish and failure is appended to ``OUT/run-log.jsonl``.

OUT is an xbarlab output folder (:func:`xbarlab.formats.prepare_output_dir`): reusing it
is allowed, a non-empty folder xbarlab did not create is refused without ``force``. One
run at a time writes into OUT: it holds an exclusive lock on ``OUT/.xbarlab-run.lock``
(:data:`LOCK_NAME`, released by the system even after kill -9); a second run refuses at once.
Cleanup at the start touches only the runner's own leftovers: stage folders of a process
that is gone and :func:`~xbarlab.formats.atomic_output` temporaries of a gone writer.
The default OUT is :data:`DEFAULT_OUT` (``./xbarlab-run``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, OutputExistsError, XbarlabError
from .context import Stage, StageContext, json_default, write_json
from .stages import BY_NAME, STAGES, check_data_files

__all__ = ["DEFAULT_OUT", "MARKER", "LOG_NAME", "LOCK_NAME", "stage_keys", "run_pipeline",
           "RunLockedError"]

#: Output folder used when ``-o`` is not given (relative to the working directory).
DEFAULT_OUT = "xbarlab-run"
#: Completion marker of a finished stage folder.
MARKER = ".xbarlab-stage.json"
#: The run log (one JSON event per line) in OUT.
LOG_NAME = "run-log.jsonl"
#: The lock file a run holds in OUT (an advisory ``flock``; its content is the holder's pid).
LOCK_NAME = ".xbarlab-run.lock"
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """:func:`source_digest` of the installed package, computed once per process: part of
    every stage key, so that a changed implementation (an editable checkout between
    releases) reruns the stages instead of reusing their results."""
    return source_digest(Path(__file__).resolve().parent.parent)


def source_digest(root) -> str:
    """SHA-256 over the Python sources under ``root`` and its ``data/presets/*.json``
    (relative path and bytes of each, in path order), leaving out hidden folders (a
    checkout's ``.venv`` and ``.git``), ``tests``, ``build``, ``*.egg-info`` and
    ``__pycache__``."""
    root = Path(root)
    h = hashlib.sha256()
    files = sorted(root.glob("data/presets/*.json"))
    for folder, dirs, names in os.walk(root):
        # prune in place, so that a large .venv is not walked
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("tests", "build")
                   and not d.endswith(".egg-info") and d != "__pycache__"]
        files += [Path(folder) / n for n in names if n.endswith(".py")]
    for p in sorted(files):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


def _sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=json_default)
                          .encode()).hexdigest()


def _folder_digest(folder: Path) -> dict[str, str]:
    from ..formats import sha256_file

    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MARKER:
            out[p.relative_to(folder).as_posix()] = sha256_file(p)
    return out


def _stage_settings(stage: Stage, config: dict) -> dict:
    settings = {s: dict(config[s]) for s in stage.sections}
    for entry in stage.ignore:
        sec, name = entry.split(".")
        settings[sec].pop(name)
    if stage.random:
        settings["seed"] = config["seed"]
    if stage.name == "load":
        from ..formats import check_input_file, sha256_file

        data = dict(config["data"])
        files = data.pop("files")
        for p in files:
            check_input_file(p, what="[data] files entry")
        missing = [p for p in files if not Path(p).is_file()]
        if missing:
            raise ConfigError(f"[data] files: {missing[0]} does not exist")
        settings["data"] = data
        settings["inputs"] = [sha256_file(p) for p in files]  # content, not location
    return settings


def stage_keys(config: dict, out) -> dict[str, str | None]:
    """The key each stage would have now (None where an upstream stage is not finished)."""
    out = Path(out)
    keys: dict[str, str | None] = {}
    for st in STAGES:
        ups = {}
        for u in st.needs:
            mk = _marker(out / u)
            ups[u] = mk["digest"] if mk and mk.get("key") == keys.get(u) else None
        if any(v is None for v in ups.values()):
            keys[st.name] = None
            continue
        keys[st.name] = _sha256_json({"stage": st.name, "xbarlab": __version__,
                                      "code": code_digest(),
                                      "settings": _stage_settings(st, config),
                                      "upstream": ups})
    return keys


def _marker(folder: Path) -> dict | None:
    p = folder / MARKER
    if not p.is_file():
        return None
    try:
        mk = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    # every output the marker lists must still be there
    for rel in mk.get("files", {}):
        if not (folder / rel).is_file():
            return None
    return mk


def _log(out: Path, **event) -> None:
    event = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **event}
    with open(out / LOG_NAME, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event, default=json_default) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class RunLockedError(XbarlabError, BlockingIOError):
    """Another ``xbarlab run`` is writing into the same output folder."""


@contextlib.contextmanager
def _run_lock(out: Path):
    """Hold the exclusive lock of ``out`` for the body; refuse at once if another holds it."""
    try:
        import fcntl
    except ImportError:  # no flock on this platform: no lock
        yield
        return
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise RunLockedError(f"another xbarlab run (pid {holder}) is writing into {out}; "
                                 "wait for it to finish or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _clean_leftovers(out: Path) -> None:
    """Remove the stage folders a killed run left (``.tmp-STAGE-PID``, ``.old-STAGE-PID``
    with a known stage name) and stale temporary files; nothing else in ``out``."""
    from ..formats import clean_stale_temporaries, process_alive

    pattern = re.compile(rf"^(?:{re.escape(_TMP_PREFIX)}|{re.escape(_OLD_PREFIX)})"
                         rf"(?:{'|'.join(re.escape(s.name) for s in STAGES)})-(\d+)$")
    for p in out.iterdir():
        m = pattern.match(p.name)
        if m is None or p.is_symlink() or not p.is_dir():
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and process_alive(pid):
            continue  # another run writing into this folder now
        shutil.rmtree(p, ignore_errors=True)
    clean_stale_temporaries(out)


def run_pipeline(config: dict, out=DEFAULT_OUT, *, force: bool = False,
                 progress: bool | None = True,
                 stages: tuple[str, ...] | None = None, command: str = "run",
                 on_stage_start: Callable[[str, Path], None] | None = None,
                 echo: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) the pipeline of a validated ``config`` into the output folder ``out``.

    ``force``: reuse a non-empty folder xbarlab did not create; ``progress``: show tqdm
    bars (None: only when stderr is a terminal); ``stages``: stop after the last of these
    (default: all); ``on_stage_start(name, tmp_folder)``: called before a stage runs
    (tests use it to interrupt a run);
    ``echo``: where the one-line-per-stage messages go (default: ``tqdm.write``).
    Returns ``{"out": Path, "status": {stage: "ran" | "cached"}, "report": Path | None,
    "seconds": {stage: s}}``. Another run holding ``out`` raises :class:`RunLockedError`.
    """
    from ..formats import prepare_output_dir

    check_data_files(config)  # a missing input is refused before OUT is made
    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()
    out = prepare_output_dir(Path(out), force=force, command=command)
    with _run_lock(out):
        return _run_locked(out, config, progress=progress, stages=stages,
                           on_stage_start=on_stage_start, echo=echo)


def _run_locked(out: Path, config: dict, *, progress, stages, on_stage_start, echo) -> dict:
    from tqdm import tqdm

    _clean_leftovers(out)
    say = echo or tqdm.write
    todo = list(STAGES)
    if stages is not None:
        unknown = [s for s in stages if s not in BY_NAME]
        if unknown:
            raise ConfigError(f"unknown stage {unknown[0]!r}; stages: "
                              f"{', '.join(BY_NAME)}")
        last = max(list(BY_NAME).index(s) for s in stages)
        todo = todo[:last + 1]

    def bar(**kw):
        kw.setdefault("leave", False)
        kw.setdefault("dynamic_ncols", True)
        return tqdm(disable=not progress, **kw)

    status: dict[str, str] = {}
    seconds: dict[str, float] = {}
    keys: dict[str, str] = {}
    digests: dict[str, str] = {}
    _log(out, event="run-start", xbarlab=__version__)
    n = len(todo)
    overall = tqdm(total=n, desc="xbarlab run", unit="stage", disable=not progress,
                   dynamic_ncols=True, leave=False)
    try:
        _run_stages(todo, config, out, say, bar, overall, status, seconds, keys, digests,
                    progress, on_stage_start)
    finally:
        overall.close()
    report = None
    if "report" in status:
        report = _publish_report(out)
    _log(out, event="run-end", status=status)
    return {"out": out, "status": status, "report": report, "seconds": seconds, "keys": keys}


def _run_stages(todo, config, out, say, bar, overall, status, seconds, keys, digests,
                progress, on_stage_start) -> None:
    n = len(todo)
    for i, st in enumerate(todo, 1):
        overall.set_postfix_str(st.name)
        ups = {u: digests[u] for u in st.needs}
        key = _sha256_json({"stage": st.name, "xbarlab": __version__, "code": code_digest(),
                            "settings": _stage_settings(st, config), "upstream": ups})
        keys[st.name] = key
        final = out / st.name
        mk = _marker(final)
        head = f"[{i}/{n}] {st.name:<12}"
        if mk is not None and mk.get("key") == key:
            status[st.name] = "cached"
            digests[st.name] = mk["digest"]
            seconds[st.name] = 0.0
            _log(out, event="cached", stage=st.name, key=key)
            say(f"{head} cached   {mk.get('line', '')}")
            overall.update(1)
            continue
        if (final.exists() or final.is_symlink()) and (
                final.is_symlink() or not (final / MARKER).is_file()):
            raise OutputExistsError(f"{final} exists and is not a stage folder of xbarlab run "
                                    f"(no {MARKER}); move it away or choose another folder")
        tmp = out / f"{_TMP_PREFIX}{st.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        ctx = StageContext(name=st.name, out=tmp, config=config,
                           upstream={u: out / u for u in st.needs} | _all_upstream(out, st),
                           seed=int(config["seed"]), progress=bar,
                           show_progress=progress)
        _log(out, event="start", stage=st.name, key=key)
        t0 = time.perf_counter()
        try:
            if on_stage_start is not None:
                on_stage_start(st.name, tmp)
            info = st.func(ctx) or {}
        except BaseException as exc:
            _log(out, event="failed", stage=st.name, key=key,
                 error=f"{type(exc).__name__}: {exc}")
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        secs = time.perf_counter() - t0
        files = _folder_digest(tmp)
        digest = _sha256_json(files)
        marker = {"stage": st.name, "key": key, "digest": digest, "files": files,
                  "seconds": secs, "line": info.get("line", ""), "xbarlab": __version__,
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write_json(tmp / MARKER, marker)
        if final.exists():  # replace the stale folder: move aside, then swap in
            old = out / f"{_OLD_PREFIX}{st.name}-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        status[st.name] = "ran"
        seconds[st.name] = secs
        digests[st.name] = digest
        _log(out, event="done", stage=st.name, key=key, seconds=round(secs, 3))
        say(f"{head} done     {info.get('line', '')} ({secs:.1f} s)")
        overall.update(1)


def _all_upstream(out: Path, st: Stage) -> dict[str, Path]:
    # the report reads every finished stage; others only what they declare
    return {s.name: out / s.name for s in STAGES} if st.name == "report" else {}


def _publish_report(out: Path) -> Path:
    """Copy the report stage's report.html/report.md to OUT's top level (atomic)."""
    from ..formats import write_text_atomic

    src = out / "report"
    write_text_atomic(out / "report.html", (src / "report.html").read_text(encoding="utf-8"),
                      force=True)
    md = (src / "report.md").read_text(encoding="utf-8")
    md = md.replace("](plots/", "](report/plots/")
    write_text_atomic(out / "report.md", md, force=True)
    return out / "report.html"
