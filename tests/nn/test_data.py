"""Offline data sets and the fixed small models."""

from __future__ import annotations

import pytest
from xbarlab.errors import ConfigError
from xbarlab.nn.data import build_model, load_dataset, model_config


@pytest.mark.parametrize("name, n_train, n_test, shape", [
    ("digits", 1437, 360, (1, 8, 8)),
    ("mnist5k", 4000, 1000, (1, 28, 28)),
    ("mnist1d", 4000, 1000, (1, 40)),
])
def test_datasets_load_offline_with_documented_splits(name, n_train, n_test, shape):
    """Split sizes 1437/360 (digits), 4000/1000 (MNIST-5k and MNIST-1D); images in [0, 1]
    with max exactly 1; each class present in both splits; mlp and cnn both map a
    batch to 10 logits."""
    d = load_dataset(name)
    assert d.x_train.shape == (n_train, *shape) and d.x_test.shape == (n_test, *shape)
    assert set(d.y_train.tolist()) == set(range(10)) == set(d.y_test.tolist())
    if name != "mnist1d":
        assert float(d.x_train.min()) == 0.0 and float(d.x_train.max()) == 1.0
    for kind in ("mlp", "cnn"):
        net = build_model(model_config(kind, d))
        assert net(d.x_test[:5]).shape == (5, 10)


def test_unknown_dataset_and_model():
    """An unknown data set or model name -> ConfigError listing the valid ones."""
    with pytest.raises(ConfigError, match="digits"):
        load_dataset("cifar")
    with pytest.raises(ConfigError, match="mlp"):
        model_config("resnet", "digits", (1, 8, 8))
