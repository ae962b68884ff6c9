"""Reports as lists of blocks, rendered twice: Markdown (plots as linked files) and HTML
(plots inline as base64, so the page opens anywhere on its own).

A block is a tuple whose first item names its kind:

- ``("h1", text)``, ``("h2", text)``, ``("h3", text)``: headings;
- ``("p", text)``: a paragraph; ``("quote", text)``: a quoted note; ``("ul", items)``:
  a bulleted list of texts;
- ``("table", head, rows)``: a table (``head``: column titles, ``rows``: lists of cells);
- ``("img", path, caption)``: a PNG file (a :class:`pathlib.Path`);
- ``("pre", text)``: preformatted text.

Texts may hold Markdown's ``**bold**`` and ```code``` spans; the HTML renders them as
``<strong>`` and ``<code>`` and escapes everything else.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

__all__ = ["render_markdown", "render_html"]

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def render_markdown(blocks, *, base: Path) -> str:
    """Markdown text of ``blocks``; images are linked by their path relative to ``base``
    (the folder the Markdown file is written to)."""
    out = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(kind[1])} {b[1]}\n")
        elif kind == "p":
            out.append(f"{b[1]}\n")
        elif kind == "quote":
            out.append(f"> {b[1]}\n")
        elif kind == "ul":
            out.append("".join(f"- {x}\n" for x in b[1]))
        elif kind == "table":
            head, rows = b[1], b[2]
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            out.extend("| " + " | ".join(str(c) for c in r) + " |" for r in rows)
            out.append("")
        elif kind == "img":
            link = Path(b[1]).resolve().relative_to(Path(base).resolve()).as_posix()
            out.append(f"![{b[2]}]({link})\n")
        elif kind == "pre":
            out.append("```\n" + b[1].rstrip() + "\n```\n")
    return "\n".join(out)


def _escape(s) -> str:
    return html.escape(str(s), quote=False).replace('"', "&quot;")


def _inline(s) -> str:
    """Escaped text with Markdown's code and bold spans as HTML elements."""
    return _BOLD.sub(r"<strong>\1</strong>", _CODE.sub(r"<code>\1</code>", _escape(s)))


def _embed_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


#: Tables longer than this fold away in the HTML (a click shows them) [rows].
FOLD_ROWS = 12


def _html_block(b) -> str:
    kind = b[0]
    if kind in ("h1", "h2", "h3"):
        return f"<{kind}>{_inline(b[1])}</{kind}>"
    if kind == "p":
        return f"<p>{_inline(b[1])}</p>"
    if kind == "quote":
        return f"<blockquote>{_inline(b[1])}</blockquote>"
    if kind == "ul":
        return "<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in b[1]) + "</ul>"
    if kind == "table":
        head, rows = b[1], b[2]
        h = "".join(f"<th>{_inline(c)}</th>" for c in head)
        r = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                    for row in rows)
        table = f"<table><thead><tr>{h}</tr></thead><tbody>{r}</tbody></table>"
        if len(rows) > FOLD_ROWS:
            return f"<details><summary>table of {len(rows)} rows</summary>{table}</details>"
        return table
    if kind == "img":
        return (f'<figure><img src="{_embed_png(b[1])}" alt="{_escape(b[2])}">'
                f"<figcaption>{_inline(b[2])}</figcaption></figure>")
    if kind == "pre":
        return f"<pre>{_escape(b[1])}</pre>"
    return ""


def render_html(blocks, *, title: str) -> str:
    """A self-contained HTML page of ``blocks`` titled ``title`` (PNGs inline). A table of at
    most :data:`FOLD_ROWS` rows followed by a plot stands beside it; longer tables fold."""
    body = []
    i = 0
    while i < len(blocks):
        b = blocks[i]
        if (b[0] == "table" and i + 1 < len(blocks) and blocks[i + 1][0] == "img"
                and len(b[2]) <= FOLD_ROWS):
            body.append(f'<div class="pair"><div>{_html_block(b)}</div>'
                        f"{_html_block(blocks[i + 1])}</div>")
            i += 2
            continue
        body.append(_html_block(b))
        i += 1
    css = ("body{font-family:system-ui,sans-serif;max-width:76em;margin:2em auto;padding:0 1em;"
           "color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
           "padding:.25em .6em;text-align:right}th{background:#f3f3f3}img{max-width:100%}"
           "figure{margin:1em 0}figcaption{font-size:.9em;color:#555}pre{background:#f6f6f6;"
           "padding:.6em;overflow-x:auto}blockquote{border-left:3px solid #ccc;margin:1em 0;"
           "padding:0 1em;color:#444}code{background:#f3f3f3;padding:0 .2em}"
           ".pair{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}"
           ".pair>*{flex:1 1 24em;min-width:0;overflow-x:auto}details{margin:1em 0}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_escape(title)}</title><style>{css}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
