"""HA-SGD split over processes (gloo on 127.0.0.1) against the single-process step."""

from __future__ import annotations

import pytest
import torch
from _ranks import CASES, one_step, steps_on_rank
from _toy import _batch, _net
from xbarlab.errors import ConfigError
from xbarlab.nn import HASGD, GaussianNoise
from xbarlab.nn.distributed import backend_for, free_port, run_ranks
from xbarlab.nn.hasgd import check_split


@pytest.mark.slow
def test_two_gloo_ranks_take_the_single_process_step(tmp_path):
    """Two processes (gloo, 127.0.0.1), each running L/2 of the L passes of one HA-SGD step
    (modes sequential, vmap, parallel with antithetic pairs, auto with L = 2 antithetic so
    that a pair is split over the ranks), against one process running all L passes with
    the same generator seed.

    Expected: rank r draws exactly rows r·L/2 … (r+1)·L/2 − 1 of the single process's
    perturbations (torch.equal) and runs L/2 forward passes where one process runs L
    (modes sequential and parallel); so the averaged gradient, the mean loss, the
    parameters after the SGD step and the BatchNorm running statistics agree within rtol
    1e-6 (float64: rounding of the sums only), and both ranks hold identical replicas.
    """
    run_ranks(steps_on_rank, 2, str(tmp_path / "out"))
    ranks = [torch.load(tmp_path / f"out.{r}", weights_only=True) for r in range(2)]
    for case, r0, r1 in zip(CASES, *ranks, strict=True):
        loss, grads, state, calls, draws = one_step(*case)
        m = case[1] // 2
        for n, d in draws.items():
            assert torch.equal(torch.cat([r0[4][n], r1[4][n]]), d), (case, n)
            assert r0[4][n].shape[0] == m
        if case[0] in ("sequential", "parallel"):
            assert (calls, r0[3], r1[3]) == (case[1], m, m), case
        torch.testing.assert_close(r0[0], loss, rtol=1e-6, atol=0, msg=str(case))
        for n, g in grads.items():
            torch.testing.assert_close(r0[1][n], g, rtol=1e-6, atol=1e-12, msg=f"{case} {n}")
            assert torch.equal(r0[1][n], r1[1][n]), (case, n)
        for k, v in state.items():
            torch.testing.assert_close(r0[2][k], v, rtol=1e-6, atol=1e-12, msg=f"{case} {k}")
            assert torch.equal(r0[2][k], r1[2][k]), (case, k)


def test_rank_slices_of_the_draws_average_to_the_single_process_gradient():
    """The arithmetic of the split without processes: HASGD on one process draws Δω of
    shape (L, ...) for L = 4; HA-SGD with L = 2 fed rows 0-1 and 2-3 (one rank each) gives
    two gradients and BatchNorm running statistics whose means equal those of the L = 4
    step (float64, rtol 1e-10): the mean of the ranks' means is the mean over all L."""
    def make(samples):
        net = _net()
        return net, HASGD(net, torch.optim.SGD(net.parameters(), lr=0.1), GaussianNoise(0.2),
                          samples=samples, mode="sequential",
                          generator=torch.Generator().manual_seed(3))

    x, y = _batch()
    net, h = make(4)
    d = h.draw_perturbations()
    h.gradient(x, y, perturbations=d)
    parts = []
    for r in range(2):
        net_r, h_r = make(2)
        h_r.gradient(x, y, perturbations={n: v[2 * r:2 * r + 2] for n, v in d.items()})
        parts.append(net_r)
    for (n, p), p0, p1 in zip(net.named_parameters(), parts[0].parameters(),
                              parts[1].parameters(), strict=True):
        torch.testing.assert_close((p0.grad + p1.grad) / 2, p.grad, rtol=1e-10, atol=1e-14,
                                   msg=n)
    for k, v in net.state_dict().items():
        if v.is_floating_point():
            mean = (parts[0].state_dict()[k] + parts[1].state_dict()[k]) / 2
            torch.testing.assert_close(mean, v, rtol=1e-10, atol=1e-14, msg=k)


@pytest.mark.parametrize("samples,nproc", [(3, 2), (4, 3), (1, 2)])
def test_samples_not_a_multiple_of_nproc_is_refused_before_any_process(monkeypatch, samples,
                                                                        nproc):
    """check_split and train(..., nproc) raise ConfigError naming L and nproc; train does so
    before starting a process (run_ranks is replaced by a function that fails the test)."""
    import xbarlab.nn.distributed as distributed
    from xbarlab.nn.data import Dataset
    from xbarlab.nn.train import train

    with pytest.raises(ConfigError, match=rf"L={samples}.*nproc={nproc}"):
        check_split(samples, nproc)

    def started(*a, **k):
        raise AssertionError("a process was started")

    monkeypatch.setattr(distributed, "run_ranks", started)
    x = torch.zeros(4, 1, 8, 8)
    y = torch.zeros(4, dtype=torch.long)
    data = Dataset("toy", x, y, x, y, (1, 8, 8), 2)
    with pytest.raises(ConfigError, match=rf"L={samples}.*nproc={nproc}"):
        train(data, {"model": "mlp", "input_shape": (1, 8, 8), "hidden": [4, 4], "n_classes": 2},
              noise=GaussianNoise(0.1), samples=samples, epochs=1, seed=0, nproc=nproc)


@pytest.mark.parametrize("change,needle", [({"mode": "fast"}, "mode 'fast'"),
                                           ({"antithetic": True, "samples": 2}, None),
                                           ({"callback": print}, "callback")])
def test_bad_settings_are_refused_before_any_process(monkeypatch, change, needle):
    """train(..., nproc=2) checks its settings (HASGD's too: an unknown mode, antithetic
    pairs split over ranks are fine) before starting a process; a callback is refused."""
    import xbarlab.nn.distributed as distributed
    from xbarlab.nn.data import Dataset
    from xbarlab.nn.train import train

    def started(*a, **k):
        raise RuntimeError("started")

    monkeypatch.setattr(distributed, "run_ranks", started)
    x = torch.rand(4, 1, 8, 8)
    y = torch.zeros(4, dtype=torch.long)
    kw = {"noise": GaussianNoise(0.1), "samples": 4, "epochs": 1, "seed": 0, "nproc": 2,
          **change}
    with pytest.raises(RuntimeError if needle is None else ConfigError,
                       match="started" if needle is None else needle):
        train(Dataset("toy", x, y, x, y, (1, 8, 8), 2),
              {"model": "mlp", "input_shape": (1, 8, 8), "hidden": [4, 4], "n_classes": 2}, **kw)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_nproc_is_refused(bad):
    """nproc must be an integer >= 1 (check_split and run_ranks): ConfigError naming it."""
    with pytest.raises(ConfigError, match="nproc"):
        check_split(4, bad)
    with pytest.raises(ConfigError, match="nproc"):
        run_ranks(print, bad)


def test_backend_and_port():
    """gloo on the CPU, NCCL on CUDA, ConfigError for other devices; a port in 1..65535."""
    assert backend_for("cpu") == "gloo"
    assert backend_for("cuda:1") == "nccl"
    with pytest.raises(ConfigError, match="meta"):
        backend_for("meta")
    assert 0 < free_port() < 65536
