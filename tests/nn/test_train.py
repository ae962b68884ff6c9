"""The training driver: determinism switch, seeds, the driver itself, xbarlab train's outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from xbarlab.errors import ConfigError
from xbarlab.nn.data import load_dataset, model_config
from xbarlab.nn.noise import GaussianNoise
from xbarlab.nn.train import (
    deterministic_algorithms,
    load_trained,
    seed_generators,
    torch_threads,
    train,
    train_and_evaluate,
)


@pytest.mark.parametrize("before", [(False, False), (True, False), (True, True)])
def test_deterministic_algorithms_restores_the_previous_setting(before):
    """Inside the block torch's deterministic flag is on (warn_only as asked); after it, and
    after an exception inside it, the flag and warn_only are what they were before."""
    prev = (torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    try:
        with deterministic_algorithms():
            assert torch.are_deterministic_algorithms_enabled()
            assert not torch.is_deterministic_algorithms_warn_only_enabled()
        assert (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled()) == before
        with pytest.raises(RuntimeError), deterministic_algorithms(warn_only=True):
            assert torch.is_deterministic_algorithms_warn_only_enabled()
            raise RuntimeError("inside")
        assert (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled()) == before
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])


def test_torch_threads_sets_and_restores_the_thread_count():
    """torch_threads(n): n threads inside the block, the previous count after it (also after
    an exception); None changes nothing; 0 or a bool raises ConfigError."""
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    for bad in (0, True):
        with pytest.raises(ConfigError, match="threads"), torch_threads(bad):
            pass


def test_seed_streams_depend_on_seed_and_name_only():
    """seed_generators: each stream is a function of (seed, name): equal across calls, different
    between names and seeds."""
    a, b, c = seed_generators(3), seed_generators(3), seed_generators(4)
    draw = {k: torch.randint(0, 2**62, (1,), generator=g).item() for k, g in a.items()}
    assert draw == {k: torch.randint(0, 2**62, (1,), generator=g).item() for k, g in b.items()}
    assert len(set(draw.values())) == 4
    assert draw["init"] != torch.randint(0, 2**62, (1,), generator=c["init"]).item()


def test_train_is_reproducible_saves_and_leaves_torch_as_found(tmp_path):
    """train() on 200 digits, one epoch of HA-SGD (L = 2): the same seed gives bit-identical
    weights and history, the callback sees every epoch, model.pt reloads to the same network
    with the recorded settings, and torch's deterministic flag is as before the call; a torch
    Generator works as the seed."""
    import dataclasses

    data = load_dataset("digits")
    data = dataclasses.replace(data, x_train=data.x_train[:200], y_train=data.y_train[:200])
    cfg = model_config("mlp", data)
    before = torch.are_deterministic_algorithms_enabled()
    seen = []
    runs = [train(data, cfg, noise=GaussianNoise(0.2), samples=2, epochs=2, seed=0,
                  out=tmp_path / "a", callback=lambda e, loss, m: seen.append(e)),
            train(data, cfg, noise=GaussianNoise(0.2), samples=2, epochs=2, seed=0)]
    assert torch.are_deterministic_algorithms_enabled() == before
    assert seen == [1, 2] and runs[0].history == runs[1].history
    for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    net, blob = load_trained(tmp_path / "a")
    assert blob["train"]["samples"] == 2 and blob["train"]["train_noise"]["sigma"] == 0.2
    for a, b in zip(net.state_dict().values(), runs[0].model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    g = train(data, cfg, noise=None, samples=0, epochs=1, seed=torch.Generator().manual_seed(1))
    assert g.info["seed"] is None and isinstance(g.model, nn.Module)


@pytest.mark.parametrize("kw, needle", [
    ({"samples": -1}, "samples"),
    ({"samples": 0, "noise": GaussianNoise(0.2)}, "samples=0"),
    ({"epochs": -1}, "epochs"),
    ({"eval_levels": [0.0, -1.0]}, "eval_levels"),
    ({"eval_draws": 0}, "eval_draws"),
    ({"adc_bits": 1}, "bits"),
])
def test_train_and_evaluate_errors_name_parameters(tmp_path, kw, needle):
    """Bad values raise ConfigError naming the parameter (no command-line flag) before any
    output is written."""
    args = {"dataset": "digits", "model": "mlp", "noise": GaussianNoise(0.1), "samples": 1,
            "epochs": 1, "seed": 0, "eval_levels": [0.0], "eval_noise": GaussianNoise,
            "out": tmp_path / "o"} | kw
    with pytest.raises(ConfigError, match=needle) as e:
        train_and_evaluate(**args)
    assert "--" not in str(e.value)
    assert not (tmp_path / "o").exists()
