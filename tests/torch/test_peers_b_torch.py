"""ARSAM, AUSAM, BiSAM and RWP torch optimizers against the numpy engine on softmax regression
(float64, same batches and draws) to 1e-10; counted cost; limits; state dicts; bad inputs.

Tolerance 1e-10: the engine and torch evaluate the same float64 formulas (softmax, log-sum-exp,
matrix products) in different orders, ~1e-16 per step over 20 steps of a contracting problem.
"""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from batch_recorder import Recorder
from torch import nn

from asam_theory.methods import ARSAM, AUSAM, RWP, BiSAM
from asam_theory.problems import SoftmaxRegression
from asam_theory.rng import SeedStreams
from asam_theory.torch import ARSAM as TorchARSAM
from asam_theory.torch import AUSAM as TorchAUSAM
from asam_theory.torch import RWP as TorchRWP
from asam_theory.torch import BiSAM as TorchBiSAM

SOFT = SoftmaxRegression.random(n=40, n_features=3, n_classes=3, seed=4)
K, P = SOFT.n_classes, SOFT.n_features
X0 = np.linspace(-0.5, 0.5, SOFT.dim)
BASE = dict(lr=0.2, momentum=0.9, weight_decay=1e-3)
B = 8
STEPS = 20
ATOL = 1e-10


class LoggedStreams(SeedStreams):
    """Seed streams that keep every uniform/normal draw by stream."""

    def __init__(self, seeds):
        super().__init__(seeds)
        self.log: dict[str, list] = {}

    def _next(self, kind, stream, shape):
        v = super()._next(kind, stream, shape)
        self.log.setdefault(stream, []).append(np.array(v))
        return v


def model_at(x: np.ndarray) -> nn.Module:
    m = nn.Linear(P, K, bias=False).double()
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(x.reshape(K, P)))
    return m


def data(idx):
    idx = np.asarray(idx)[0]
    return torch.from_numpy(SOFT.A[idx]), torch.from_numpy(SOFT.y[idx]), torch.from_numpy(idx)


def ce(out, tgt, reduction="none"):
    return F.cross_entropy(out, tgt, reduction=reduction)


class Run:
    """Engine and torch side by side: ``engine_step()`` then the torch step on its draws."""

    def __init__(self, rule):
        self.rule, self.rec, self.streams = rule, Recorder(SOFT), LoggedStreams([3])
        rule.validate(self.rec)
        self.state = rule.init(X0[None, :], self.rec, self.streams)

    def engine_step(self):
        self.state, info = self.rule.step(self.state, self.rec, self.streams)
        return info

    def batch(self, stream="descent"):
        return data(self.rec.draws[stream][-1])

    def x(self):
        return self.state.x[0]


def weight(m):
    return m.weight.detach().numpy().reshape(-1)


def test_bisam_engine_equals_torch():
    run = Run(BiSAM(rho=0.3, batch_size=B, bound="tanh", mu=2.0, alpha=0.5, **BASE))
    m = model_at(X0)
    opt = TorchBiSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce, rho=0.3,
                     bound="tanh", mu=2.0, alpha=0.5, **BASE)
    dev = 0.0
    for _ in range(STEPS):
        run.engine_step()
        x, y, _ = run.batch()
        opt.step(inputs=x, targets=y)
        dev = max(dev, np.abs(weight(m) - run.x()).max())
    assert dev <= ATOL
    assert opt.counts["grads"] / STEPS == run.rule.cost.grads_per_step == 2


def test_rwp_engine_equals_torch():
    run = Run(RWP(alpha=0.3, gamma=0.2, filter_size=P, batch_size=B, ascent_batch_size=4,
                  **BASE))
    m = model_at(X0)
    z = {}
    opt = TorchRWP(m.parameters(), torch.optim.SGD, model=m, criterion=ce, alpha=0.3,
                   gamma=0.2, noise=lambda params: [torch.from_numpy(z["v"].reshape(K, P))],
                   **BASE)
    dev = 0.0
    for _ in range(STEPS):
        run.engine_step()
        z["v"] = run.streams.log["weight_noise"][-1][0]
        x, y, _ = run.batch("descent")
        x2, y2, _ = run.batch("ascent")
        opt.step(inputs=x, targets=y, shard_inputs=x2, shard_targets=y2)
        dev = max(dev, np.abs(weight(m) - run.x()).max())
    assert dev <= ATOL
    assert opt.counts["grads"] / STEPS == run.rule.cost.grads_per_step == 1.5


def test_ausam_engine_equals_torch():
    run = Run(AUSAM(rho=0.3, alpha=0.5, epoch_length=3, trans_epochs=2, batch_size=B, **BASE))
    m = model_at(X0)
    chosen = {}

    def sampler(p, k):
        np.testing.assert_allclose(p.numpy(), chosen["probs"], rtol=0, atol=1e-13)
        return torch.from_numpy(chosen["sel"])

    opt = TorchAUSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce,
                     n_samples=SOFT.n, epoch_length=3, rho=0.3, alpha=0.5, trans_epochs=2,
                     sampler=sampler, **BASE)
    dev = 0.0
    for _ in range(STEPS):
        run.engine_step()
        chosen["sel"] = run.state.extra["selected"][0]
        probs = run.state.extra["probs"]
        chosen["probs"] = None if probs is None else probs[0]
        x, y, idx = data(run.state.extra["batch"])  # the step's batch of the epoch
        opt.step(inputs=x, targets=y, indices=idx)
        dev = max(dev, np.abs(weight(m) - run.x()).max())
    assert dev <= ATOL
    np.testing.assert_allclose(opt.table.numpy(), run.state.extra["table"][0], atol=1e-12)
    # one cost convention on both faces: 2k/b gradients and depth, no forward-only pass
    declared = run.rule.realised_cost(run.state)
    assert opt.counts["grads"] / STEPS == pytest.approx(declared.grads_per_step, rel=1e-12)
    assert declared.sequential_depth == declared.grads_per_step
    assert opt.counts["forwards"] == declared.forwards_per_step == 0
    assert 1 < declared.grads_per_step < 2  # SAM's epoch 0 (2), then 2k/b = 1


@pytest.mark.parametrize("fixed", [None, 0.4])
def test_arsam_engine_equals_torch(fixed):
    kw = dict(rho=0.3, beta=0.7, window=4, blocks=2, warmup_steps=4, max_p=0.8, a1=0.5, a2=0.5,
              sampling_probability=fixed)
    run = Run(ARSAM(batch_size=B, **kw, **BASE))
    m = model_at(X0)

    class Draws:
        u = None

        def random(self):
            return self.u

    draws = Draws()
    opt = TorchARSAM(m.parameters(), torch.optim.SGD, last_layer=1, rng=draws, **kw, **BASE)
    dev, sampled = 0.0, []
    for t in range(STEPS):
        info = run.engine_step()
        if t >= 4:
            draws.u = float(run.streams.log["sampling"][-1][0])
        x, y, _ = run.batch()
        opt.zero_grad()
        ce(m(x), y, "mean").backward()
        opt.step(lambda x=x, y=y: ce(m(x), y, "mean").backward())
        assert opt.last_sampled == (not info.skipped), t
        sampled.append(opt.last_sampled)
        dev = max(dev, np.abs(weight(m) - run.x()).max())
    assert dev <= ATOL
    assert 0 < sum(sampled[4:]) < STEPS - 4  # both kinds of steps after the warm-up
    assert opt.counts["grads"] / STEPS == pytest.approx(
        run.rule.realised_cost(run.state).grads_per_step, rel=1e-12)


def test_torch_rho_zero_and_degenerate_limits():
    x, y = torch.from_numpy(SOFT.A[:B]), torch.from_numpy(SOFT.y[:B])
    ref = model_at(X0)
    sgd = torch.optim.SGD(ref.parameters(), **BASE)
    sgd.zero_grad()
    ce(ref(x), y, "mean").backward()
    sgd.step()
    m = model_at(X0)
    TorchBiSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce, rho=0.0,
               **BASE).step(inputs=x, targets=y)
    np.testing.assert_allclose(weight(m), weight(ref), atol=1e-15)
    m = model_at(X0)
    TorchAUSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce, n_samples=SOFT.n,
               epoch_length=1, rho=0.0, alpha=1.0, **BASE).step(
        inputs=x, targets=y, indices=torch.arange(B))
    np.testing.assert_allclose(weight(m), weight(ref), atol=1e-15)
    m = model_at(X0)
    opt = TorchARSAM(m.parameters(), torch.optim.SGD, rho=0.0, window=2, blocks=1,
                     warmup_steps=2, **BASE)
    opt.zero_grad()
    ce(m(x), y, "mean").backward()
    opt.step(lambda: ce(m(x), y, "mean").backward())
    np.testing.assert_allclose(weight(m), weight(ref), atol=1e-15)


def test_state_dicts_round_trip():
    x, y = torch.from_numpy(SOFT.A[:B]), torch.from_numpy(SOFT.y[:B])
    idx = torch.arange(B)
    m = model_at(X0)
    opt = TorchAUSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce, n_samples=SOFT.n,
                     epoch_length=1, rho=0.2, generator=torch.Generator().manual_seed(0),
                     **BASE)
    for _ in range(3):
        opt.step(inputs=x, targets=y, indices=idx)
    sd = copy.deepcopy(opt.state_dict())
    m2 = copy.deepcopy(m)
    opt2 = TorchAUSAM(m2.parameters(), torch.optim.SGD, model=m2, criterion=ce,
                      n_samples=SOFT.n, epoch_length=1, rho=0.2,
                      generator=torch.Generator(), **BASE)
    opt2.load_state_dict(sd)
    opt.step(inputs=x, targets=y, indices=idx)
    opt2.step(inputs=x, targets=y, indices=idx)
    np.testing.assert_array_equal(weight(m), weight(m2))
    np.testing.assert_array_equal(opt.table.numpy(), opt2.table.numpy())

    m = model_at(X0)
    opt = TorchARSAM(m.parameters(), torch.optim.SGD, rho=0.2, window=2, blocks=1,
                     warmup_steps=2, rng=random.Random(1), **BASE)

    def step(opt, m):
        opt.zero_grad()
        ce(m(x), y, "mean").backward()
        opt.step(lambda: ce(m(x), y, "mean").backward())

    for _ in range(4):
        step(opt, m)
    sd = copy.deepcopy(opt.state_dict())
    m2 = copy.deepcopy(m)
    opt2 = TorchARSAM(m2.parameters(), torch.optim.SGD, rho=0.2, window=2, blocks=1,
                      warmup_steps=2, **BASE)
    opt2.load_state_dict(sd)
    for _ in range(4):
        step(opt, m)
        step(opt2, m2)
    np.testing.assert_array_equal(weight(m), weight(m2))


def test_torch_bad_inputs_name_the_parameter():
    m = model_at(X0)
    with pytest.raises(ValueError, match="alpha"):
        TorchAUSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce, n_samples=4,
                   epoch_length=1, alpha=0.0, lr=0.1)
    with pytest.raises(ValueError, match="sampling_probability"):
        TorchARSAM(m.parameters(), torch.optim.SGD, sampling_probability=2.0, lr=0.1)
    with pytest.raises(ValueError, match="bound"):
        TorchBiSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce, bound="x", lr=0.1)
    with pytest.raises(ValueError, match="gamma"):
        TorchRWP(m.parameters(), torch.optim.SGD, model=m, criterion=ce, gamma=-1, lr=0.1)
    with pytest.raises(ValueError, match="rho"):
        TorchBiSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce, rho=-1, lr=0.1)
    opt = TorchAUSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce, n_samples=4,
                     epoch_length=1, lr=0.1)
    with pytest.raises(ValueError, match="indices"):
        opt.step(inputs=torch.zeros(2, P, dtype=torch.float64), targets=torch.zeros(2).long(),
                 indices=torch.arange(3))


def test_degenerate_settings_equal_torch_sam():
    from asam_theory.torch import SAM as TorchSAM

    x, y = torch.from_numpy(SOFT.A[:B]), torch.from_numpy(SOFT.y[:B])

    def sam_steps(n):
        m = model_at(X0)
        opt = TorchSAM(m.parameters(), torch.optim.SGD, rho=0.2, **BASE)
        for _ in range(n):
            opt.zero_grad()
            ce(m(x), y, "mean").backward()
            opt.step(lambda: ce(m(x), y, "mean").backward())
        return weight(m)

    ref = sam_steps(3)
    m = model_at(X0)
    opt = TorchAUSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce, n_samples=SOFT.n,
                     epoch_length=1, rho=0.2, alpha=1.0, **BASE)
    for _ in range(3):  # epochs 1, 2 sample all of the batch (a permutation): SAM
        opt.step(inputs=x, targets=y, indices=torch.arange(B))
    np.testing.assert_allclose(weight(m), ref, atol=1e-14)
    m = model_at(X0)
    opt = TorchARSAM(m.parameters(), torch.optim.SGD, rho=0.2, window=2, blocks=1,
                     warmup_steps=2, sampling_probability=1.0, **BASE)
    for _ in range(3):
        opt.zero_grad()
        ce(m(x), y, "mean").backward()
        opt.step(lambda: ce(m(x), y, "mean").backward())
    np.testing.assert_allclose(weight(m), ref, atol=1e-15)


def test_batchnorm_statistics_come_from_the_unperturbed_pass():
    torch.manual_seed(0)
    x, y = torch.randn(8, P, dtype=torch.float64), torch.randint(0, K, (8,))

    def net():
        torch.manual_seed(1)
        return nn.Sequential(nn.Linear(P, 4), nn.BatchNorm1d(4), nn.Linear(4, K)).double()

    ref = net()
    ref(x[:4])
    clean_half = ref[1].running_mean.clone()
    ref = net()
    ref(x)
    clean = ref[1].running_mean.clone()
    cases = {
        "bisam": lambda m: TorchBiSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce,
                                      rho=0.5, lr=0.1).step(inputs=x, targets=y),
        "rwp": lambda m: TorchRWP(m.parameters(), torch.optim.SGD, model=m, criterion=ce,
                                  gamma=0.5, lr=0.1).step(inputs=x, targets=y),
        "ausam": lambda m: TorchAUSAM(m.parameters(), torch.optim.SGD, model=m, criterion=ce,
                                      n_samples=8, epoch_length=5, rho=0.5, lr=0.1).step(
            inputs=x, targets=y, indices=torch.arange(8)),
    }
    for name, run in cases.items():
        m = net()
        run(m)
        expected = clean_half if name == "rwp" else clean  # RWP: the clean shard's half
        torch.testing.assert_close(m[1].running_mean, expected, rtol=0, atol=1e-15,
                                   msg=name)
    m = net()
    opt = TorchARSAM(m.parameters(), torch.optim.SGD, rho=0.5, window=2, blocks=1,
                     warmup_steps=2, model=m, lr=0.1)
    ce(m(x), y, "mean").backward()
    opt.step(lambda: ce(m(x), y, "mean").backward())
    torch.testing.assert_close(m[1].running_mean, clean, rtol=0, atol=1e-15)
