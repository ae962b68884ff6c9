"""deterministic_torch (xbarlab/pipeline/torch_state.py) leaves torch as it found it."""

from __future__ import annotations

import pytest
import torch
from xbarlab.pipeline import deterministic_torch


@pytest.mark.parametrize("before, warn_only", [(False, False), (True, False), (True, True)])
def test_deterministic_torch_restores_the_flag(before, warn_only):
    """Inside, deterministic algorithms are on (warn-only off); after the block, and after an
    exception in it, the flag and its warn-only mode are what they were before."""
    old = (torch.are_deterministic_algorithms_enabled(),
           torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)
        with deterministic_torch():
            assert torch.are_deterministic_algorithms_enabled()
            assert not torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.are_deterministic_algorithms_enabled() is before
        assert torch.is_deterministic_algorithms_warn_only_enabled() is warn_only
        with pytest.raises(RuntimeError), deterministic_torch():
            raise RuntimeError("stage failed")
        assert torch.are_deterministic_algorithms_enabled() is before
        assert torch.is_deterministic_algorithms_warn_only_enabled() is warn_only
    finally:
        torch.use_deterministic_algorithms(old[0], warn_only=old[1])
