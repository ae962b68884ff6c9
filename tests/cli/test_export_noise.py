"""``xbarlab export-noise`` (xbarlab/cli/export_noise.py): the weight-mapping options."""

from __future__ import annotations

import pytest
from xbarlab.cli import main


@pytest.mark.parametrize("opts, expected", [
    ([], {}),
    (["--scheme", "reference", "--g-min", "1e-6"], {"scheme": "reference", "g_min": 1e-6}),
    (["--pairs", "2", "--significance", "3", "--pair-levels", "2", "--scaling", "column"],
     {"n_pairs": 2, "significance": 3.0, "levels": 2, "scaling": "column"}),
])
def test_export_noise_mapping_options_are_recorded(tmp_path, opts, expected):
    """`xbarlab export-noise pcm-ibm-2020` with mapping options writes a file whose mapping
    equals WeightMapping(g_max = 25 µS (the preset's range), **options)."""
    from xbarlab.devices.mapping import WeightMapping
    from xbarlab.nn.noise_file import NoiseFile

    out = tmp_path / "n.h5"
    assert main(["export-noise", "pcm-ibm-2020", "--time", "1h", "--grid", "5", "--samples",
                 "500", *opts, "-o", str(out)]) == 0
    assert NoiseFile.load(out).tables.mapping == WeightMapping(g_max=25e-6, **expected)


@pytest.mark.parametrize("opts, needle", [
    (["--pairs", "0"], "n_pairs"),
    (["--scheme", "reference", "--pairs", "2"], "reference scheme"),
    (["--pairs", "2", "--significance", "5"], "2 * levels"),
    (["--significance", "3"], "--pairs > 1"),
    (["--g-max", "30e-6"], "does not cover"),
])
def test_bad_mapping_options_give_clear_errors(tmp_path, capsys, opts, needle):
    """Zero pairs, a reference scheme with two pairs, F > 2 L, a significance for one pair,
    g_max beyond the preset's range: exit status 2 and a message naming the problem; an
    unknown scheme or scaling is refused by the parser (exit 2, valid choices listed)."""
    base = ["export-noise", "pcm-ibm-2020", "--time", "1h", "--samples", "500"]
    assert main([*base, *opts, "-o", str(tmp_path / "n.h5")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "n.h5").exists()
    for bad in (["--scheme", "pair"], ["--scaling", "row"]):
        with pytest.raises(SystemExit) as e:
            main([*base, *bad, "-o", str(tmp_path / "n.h5")])
        assert e.value.code == 2
        assert "invalid choice" in capsys.readouterr().err
