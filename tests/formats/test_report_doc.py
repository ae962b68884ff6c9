"""Report blocks rendered as Markdown and HTML (xbarlab/formats/report_doc.py)."""

from __future__ import annotations

import base64

from xbarlab.formats.report_doc import render_html, render_markdown


def test_blocks_render_as_markdown_and_escaped_html(tmp_path):
    """A heading, a paragraph with a code span, bold text and markup characters, a note, a
    list, a table and a PNG: Markdown keeps the text and links the PNG relative to the
    folder; HTML escapes <, > and & (no element comes from the text), renders the spans as
    <code> and <strong>, and embeds the PNG's bytes as base64."""
    (tmp_path / "plots").mkdir()
    png = tmp_path / "plots" / "a.png"
    png.write_bytes(b"\x89PNG fake")
    blocks = [("h1", "Title"), ("p", "Use `x < y` & **bold** <script>"), ("quote", "a note"),
              ("ul", ["one", "two"]), ("table", ["a", "b"], [[1, "<2>"]]),
              ("img", png, "caption")]
    md = render_markdown(blocks, base=tmp_path)
    assert md.splitlines()[0] == "# Title"
    assert "Use `x < y` & **bold** <script>" in md and "> a note" in md
    assert "- one\n- two\n" in md and "| 1 | <2> |" in md and "![caption](plots/a.png)" in md
    page = render_html(blocks, title="T & U")
    assert "<title>T &amp; U</title>" in page
    assert "<p>Use <code>x &lt; y</code> &amp; <strong>bold</strong> &lt;script&gt;</p>" in page
    assert "<ul><li>one</li><li>two</li></ul>" in page and "<td>&lt;2&gt;</td>" in page
    assert base64.b64encode(png.read_bytes()).decode() in page and "<script>" not in page
