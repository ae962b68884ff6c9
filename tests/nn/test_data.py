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
    with max exactly 1; each class present in both splits; mlp, cnn and resnet each map a
    batch to 10 logits."""
    d = load_dataset(name)
    assert d.x_train.shape == (n_train, *shape) and d.x_test.shape == (n_test, *shape)
    assert set(d.y_train.tolist()) == set(range(10)) == set(d.y_test.tolist())
    if name != "mnist1d":
        assert float(d.x_train.min()) == 0.0 and float(d.x_train.max()) == 1.0
    for kind in ("mlp", "cnn", "resnet"):
        net = build_model(model_config(kind, d))
        assert net(d.x_test[:5]).shape == (5, 10)


def test_unknown_dataset_and_model():
    """An unknown data set or model name -> ConfigError listing the valid ones."""
    with pytest.raises(ConfigError, match="digits"):
        load_dataset("cifar")
    with pytest.raises(ConfigError, match="mlp"):
        model_config("vgg", "digits", (1, 8, 8))


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 40)])
def test_resnet_has_a_batchnorm_after_every_convolution(shape):
    """resnet: 6 bias-free convolutions (stem, two per residual block, the stride-2 one), each
    followed in module order by a BatchNorm of its channel count, then one Linear(32 -> 10);
    a residual block's output is ReLU(x + BN(Conv(ReLU(BN(Conv(x)))))), so with its second
    BatchNorm's scale and shift at zero it returns ReLU(x) exactly."""
    import torch
    from torch import nn

    net = build_model(model_config("resnet", "digits", shape)).eval()
    mods = [m for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear,
                                                      nn.BatchNorm1d, nn.BatchNorm2d))]
    convs = [i for i, m in enumerate(mods) if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    assert len(convs) == 6 and isinstance(mods[-1], nn.Linear)
    assert (mods[-1].in_features, mods[-1].out_features) == (32, 10)
    for i in convs:
        assert mods[i].bias is None
        assert isinstance(mods[i + 1], (nn.BatchNorm1d, nn.BatchNorm2d))
        assert mods[i + 1].num_features == mods[i].out_channels
    block = net[3]
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
        x = torch.randn(2, 16, *shape[1:], generator=torch.Generator().manual_seed(0))
        assert torch.equal(block(x), torch.relu(x))
