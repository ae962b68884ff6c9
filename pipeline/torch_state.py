"""Torch settings a pipeline stage needs for the time it runs, restored afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["deterministic_torch"]


@contextlib.contextmanager
def deterministic_torch() -> Iterator[None]:
    """Run the body with ``torch.use_deterministic_algorithms(True)``; restore the setting.

    On leaving (also by an exception) torch's deterministic-algorithms flag and its
    warn-only mode are what they were on entering, so a library call leaves torch as it
    found it.
    """
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)
