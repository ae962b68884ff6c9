"""Seeds of a run (xbarlab/pipeline/context.py): every stream derives from the run seed and
stable names, never from the order in which streams are asked for."""

from __future__ import annotations

import zlib

import numpy as np
from xbarlab.pipeline import StageContext, stage_seed


def _ctx(name: str, seed: int = 3) -> StageContext:
    return StageContext(name=name, out=None, config={}, upstream={}, seed=seed,
                        progress=None, show_progress=False)


def test_stage_seed_is_seed_sequence_of_the_names():
    """stage_seed(s, stage, purpose) is SeedSequence(entropy=s, spawn_key=(crc32(stage),
    crc32(purpose))): its first draws equal those of that sequence built by hand."""
    want = np.random.SeedSequence(entropy=3, spawn_key=(zlib.crc32(b"calibrate"),
                                                        zlib.crc32(b"ks")))
    got = stage_seed(3, "calibrate", "ks")
    np.testing.assert_array_equal(got.generate_state(4), want.generate_state(4))


def test_streams_do_not_depend_on_call_order():
    """A stage's generators give the same numbers whichever is asked for first, and how
    often; different purposes, stages or run seeds give different numbers."""
    a = _ctx("calibrate")
    first = a.rng("ks").random(4)
    a.rng("fit").random(100)
    a.rng("report").random(3)
    b = _ctx("calibrate")
    b.rng("stats").random(7)
    np.testing.assert_array_equal(b.rng("ks").random(4), first)
    assert not np.array_equal(a.rng("fit").random(4), first)
    assert not np.array_equal(_ctx("noise").rng("ks").random(4), first)
    assert not np.array_equal(_ctx("calibrate", seed=4).rng("ks").random(4), first)


def test_shared_stage_name_gives_shared_stream():
    """seed_sequence(purpose, stage=...) of two stages naming the same task ("train") is one
    stream: both trainings start from the same weights."""
    sgd = _ctx("train-sgd").seed_sequence("network", stage="train")
    hasgd = _ctx("train-hasgd").seed_sequence("network", stage="train")
    np.testing.assert_array_equal(sgd.generate_state(2), hasgd.generate_state(2))
