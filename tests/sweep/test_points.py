"""Point keys and seeds: the SHA-256 of the canonical settings, combined with the study seed."""

import hashlib

import numpy as np
import pytest
from xbarlab.errors import ConfigError
from xbarlab.sweep.points import canonical_json, grid_points, make_point, point_key, point_seed
from xbarlab.sweep.study import parse_study


def test_key_is_sha256_of_sorted_compact_json():
    """{"time": 3600.0, "n": 64, "device": "x"} -> the SHA-256 of the literal text
    '{"device":"x","n":64,"time":3600.0}'."""
    text = '{"device":"x","n":64,"time":3600.0}'
    settings = {"time": 3600.0, "n": 64, "device": "x"}
    assert canonical_json(settings) == text
    assert point_key(settings) == hashlib.sha256(text.encode()).hexdigest()


def test_seed_is_study_seed_then_key_words():
    """The seed sequence's entropy is [study seed, the key's eight big-endian 32-bit words];
    its generator equals one built from that list by hand."""
    key = hashlib.sha256(b"anything").hexdigest()
    words = [int(key[i:i + 8], 16) for i in range(0, 64, 8)]
    want = np.random.default_rng(np.random.SeedSequence([7, *words])).random(4)
    got = np.random.default_rng(point_seed(7, key)).random(4)
    assert np.array_equal(got, want)
    p = make_point({"a": 1}, 7)
    # the entropy as one integer (results.csv's seed column) seeds the same stream
    assert np.array_equal(np.random.default_rng(p.entropy).random(3), p.rng().random(3))


def test_one_hour_and_3600_give_the_same_point():
    """A study file's "1h" and 3600 parse to 3600.0 s: same key, same seed, same draws."""
    docs = [{"study": {"kind": "crossbar"}, "grid": {"time": [t]}} for t in ("1h", 3600)]
    a, b = (parse_study(d).points[0] for d in docs)
    assert a.key == b.key and a.settings["time"] == b.settings["time"] == 3600.0
    assert np.array_equal(a.rng().random(5), b.rng().random(5))


def test_seed_independent_of_order_and_other_points():
    """Reordering an axis or adding points changes no point's key or stream."""
    small = grid_points({"x": [1, 2, 3]}, {"y": 0.5}, study_seed=3)
    big = grid_points({"x": [3, 9, 1, 2]}, {"y": 0.5}, study_seed=3)
    streams = {p.key: p.rng().random(3) for p in big}
    for p in small:
        assert np.array_equal(streams[p.key], p.rng().random(3))
    # another study seed gives other streams
    other = grid_points({"x": [1]}, {"y": 0.5}, study_seed=4)[0]
    assert other.key == small[0].key
    assert not np.array_equal(other.rng().random(3), small[0].rng().random(3))


def test_integer_and_float_values_differ_in_key():
    """64 (an integer setting) and 64.0 are different JSON texts: the kinds coerce values
    to their declared type before the key, so a study file cannot mix them."""
    assert point_key({"n": 64}) != point_key({"n": 64.0})


@pytest.mark.parametrize("bad", [{"a": float("nan")}, {"a": [1]}, {"": 1}, {"a": None}])
def test_bad_settings_refused(bad):
    """NaN, lists, None and empty names cannot be keyed."""
    with pytest.raises(ConfigError):
        point_key(bad)


def test_bad_seed_or_key_refused():
    """A negative study seed or a key that is not 64 hex digits is refused."""
    with pytest.raises(ConfigError, match="study_seed"):
        point_seed(-1, "0" * 64)
    with pytest.raises(ConfigError, match="key"):
        point_seed(0, "abc")


def test_empty_axis_refused():
    """grid_points refuses an axis without values, naming it."""
    with pytest.raises(ConfigError, match="'x'"):
        grid_points({"x": []}, study_seed=0)
