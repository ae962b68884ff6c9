"""Shared options and converters (xbarlab/cli/options.py): malformed sizes are one line."""

from __future__ import annotations

import pytest
from xbarlab.cli import main


@pytest.mark.parametrize("args, line", [
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--ir-drop", "256x256"],
     "xbarlab export-noise: error: --ir-drop '256x256' is not ROWSxCOLS@OHM, e.g. 256x256@1"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--ir-drop", "8x8@1@2"],
     "xbarlab export-noise: error: --ir-drop '8x8@1@2' is not ROWSxCOLS@OHM, e.g. 256x256@1"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--grid", "1"],
     "xbarlab export-noise: error: --grid must be in [2, 100001], got 1"),
    (["evaluate", "no-such-dir", "--device-model", "pcm-ibm-2020", "--times", "1s",
      "--tile", "256"], "xbarlab evaluate: error: --tile '256' is not ROWSxCOLS, e.g. 256x256"),
])
def test_bad_array_sizes_give_one_line_errors(tmp_path, capsys, args, line):
    """A malformed --ir-drop (no @OHM, two @) or --tile (no x), or --grid 1: exit status 2 and
    exactly this one stderr line, before any device is sampled or file written."""
    out = tmp_path / "o"
    assert main([*args, "-o", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [line]
    assert not out.exists()
