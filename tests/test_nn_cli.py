"""``run_training`` refuses a bad noise file; the data sets load offline with their
documented splits."""

from __future__ import annotations

import pytest
from xbarlab.errors import ConfigError
from xbarlab.nn.data import build_model, load_dataset, model_config
from xbarlab.nn.train import run_training


def test_bad_noise_file_is_refused(tmp_path):
    """A file with the HDF5 signature but nothing readable -> DataFormatError/ConfigError
    (both ValueError) naming the file; a shift flag with a noise file -> ConfigError."""
    f = tmp_path / "noise.h5"
    f.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match="noise.h5"):
        run_training(dataset="digits", model="mlp", train_noise=str(f), samples=2, epochs=1,
                     seed=0, eval_noise="0", out=tmp_path / "o")
    with pytest.raises(ConfigError, match="mean shift"):
        run_training(dataset="digits", model="mlp", train_noise=str(f), samples=2, epochs=1,
                     seed=0, eval_noise="0", train_shift=0.1, out=tmp_path / "o")


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
