"""SAM and SAMPa baselines against hand-written references; the tuner; the real quadratic run."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from asam_theory.engine import simulate
from asam_theory.experiments.realrun import threaded_quadratic_run
from asam_theory.experiments.training import IndexSampler, classification_loss
from asam_theory.methods import AsyncSAM as NpAsyncSAM
from asam_theory.problems import Quadratic
from asam_theory.torch import SAM, AsyncSAM, SAMPa, tune_ascent_batch


def net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()


def data(n: int = 128):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,),
                                                                               generator=g)


def grads_at(model: nn.Module, batch) -> list[torch.Tensor]:
    loss = classification_loss(model, batch)
    return list(torch.autograd.grad(loss, list(model.parameters())))


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_matches_two_pass_reference(adaptive: bool) -> None:
    x, y = data()
    batches = [(x[i * 16:(i + 1) * 16], y[i * 16:(i + 1) * 16]) for i in range(8)]
    lr, mom, wd, rho = 0.1, 0.9, 1e-3, 0.2
    m = net()
    opt = SAM(m.parameters(), torch.optim.SGD, rho=rho, adaptive=adaptive, lr=lr, momentum=mom,
              weight_decay=wd)
    ref = net()
    bufs: list[torch.Tensor | None] = [None] * len(list(ref.parameters()))
    for b in batches:
        # SAM through its step(closure) API
        opt.zero_grad()
        classification_loss(m, b).backward()

        def closure(b=b):
            loss = classification_loss(m, b)
            loss.backward()
            return loss

        opt.step(closure)
        # hand-written: ε = ρ T² g / ‖T g‖ (T = |w| or I), gradient at w + ε, SGD momentum + wd
        ps = list(ref.parameters())
        g = grads_at(ref, b)
        t = [p.detach().abs() if adaptive else torch.ones_like(p) for p in ps]
        norm = torch.sqrt(sum(((ti * gi) ** 2).sum() for ti, gi in zip(t, g, strict=True)))
        with torch.no_grad():
            eps = [rho * ti * ti * gi / (norm + 1e-12) for ti, gi in zip(t, g, strict=True)]
            for p, e in zip(ps, eps, strict=True):
                p.add_(e)
        g2 = grads_at(ref, b)
        with torch.no_grad():
            for i, (p, e, gi) in enumerate(zip(ps, eps, g2, strict=True)):
                p.sub_(e)
                d = gi + wd * p
                bufs[i] = d.clone() if bufs[i] is None else mom * bufs[i] + d
                p.sub_(lr * bufs[i])
    for p, q in zip(m.parameters(), ref.parameters(), strict=True):
        # float64, same formulas in a different association order: rounding ~1e-16 per op
        torch.testing.assert_close(p, q, atol=1e-12, rtol=0)
    # not vacuous: SAM differs from plain SGD by much more than the tolerance
    moved = max(float((p - q).detach().abs().max())
                for p, q in zip(m.parameters(), net().parameters(), strict=True))
    assert moved > 1e-2


def test_sam_scheduler_on_base_and_state_dict() -> None:
    m = net()
    opt = SAM(m.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt.base_optimizer, step_size=1, gamma=0.1)
    opt.base_optimizer.step()  # no gradients: a no-op, keeps the scheduler's call order
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    opt.load_state_dict(opt.state_dict())
    assert opt.base_optimizer.param_groups is opt.param_groups
    with pytest.raises(ValueError, match="rho"):
        SAM(m.parameters(), torch.optim.SGD, rho=-1.0, lr=0.1)


class QuadModule(nn.Module):
    def __init__(self, p: Quadratic, x0) -> None:
        super().__init__()
        self.register_buffer("H", torch.tensor(p.hessian))
        self.register_buffer("xs", torch.tensor(p.minimizer))
        self.w = nn.Parameter(torch.tensor(x0, dtype=torch.float64))

    def forward(self) -> torch.Tensor:
        r = self.w - self.xs
        return 0.5 * r @ (self.H @ r)


def test_sampa_matches_equations_exact_gradients() -> None:
    p = Quadratic(eigenvalues=[4.0, 2.0, 1.0, 0.5], rotate=True, shift=True, seed=1)
    x0 = np.ones(4)
    lr, rho, lam, steps = 0.1, 0.1, 0.2, 40
    m = QuadModule(p, x0)
    with SAMPa(m.parameters(), torch.optim.SGD, m, lambda mod, b: mod(), rho=rho, lam=lam,
               lr=lr, start="gradient") as opt:
        for _ in range(steps):
            opt.step(None)
    H, xs = p.hessian, p.minimizer

    def grad(z):
        return H @ (z - xs)

    x = x0.copy()
    gy = grad(x)  # y_0 = x_0
    for _ in range(steps):
        xt = x + rho * gy / (np.linalg.norm(gy) + 1e-12)
        y_next = x - lr * gy
        gy_next = grad(y_next)
        x = x - lr * (1 - lam) * grad(xt) - lr * lam * gy_next
        gy = gy_next
    np.testing.assert_allclose(m.w.detach().numpy(), x, atol=1e-12, rtol=0)


@pytest.mark.parametrize("lam", [0.0, 0.2])
def test_sampa_concurrent_equals_sequential(lam: float) -> None:
    x, y = data()
    batches = [(x[i * 16:(i + 1) * 16], y[i * 16:(i + 1) * 16]) for i in range(8)]
    out = []
    for concurrent in (True, False):
        m = net()
        with SAMPa(m.parameters(), torch.optim.SGD, m, classification_loss, lam=lam, lr=0.1,
                   momentum=0.9, weight_decay=1e-3, concurrent=concurrent) as opt:
            for b in batches:
                opt.step(b)
        out.append(torch.cat([q.detach().flatten() for q in m.parameters()]))
    assert torch.equal(out[0], out[1])
    sgd = net()
    assert (out[0] - torch.cat([q.detach().flatten() for q in sgd.parameters()])).abs().max() > 1e-3


# ----------------------------------------------------------------------------- tuner


class FakeClock:
    """Deterministic time: the fake workloads advance it by their nominal duration."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_tuner_rule_with_fake_clock() -> None:
    clock = FakeClock()

    def descent() -> None:
        clock.now += 0.050

    def ascent(bp: int) -> None:
        clock.now += 1e-4 * bp  # 0.1 ms per sample

    res = tune_ascent_batch(descent, ascent, batch_size=512, candidates=[100, 200, 300, 390, 410],
                            margin=0.8, clock=clock, contention=False)
    # 0.8 · 50 ms = 40 ms: 390 samples (39 ms) fit, 410 (41 ms) do not
    assert res.ascent_batch_size == 390 and res.fits
    assert res.descent_time_s == pytest.approx(0.05)
    assert res.ascent_time_s[300] == pytest.approx(0.03)
    assert res.ascent_time_s[410] == pytest.approx(0.041)
    res3 = tune_ascent_batch(descent, ascent, batch_size=512, candidates=[100, 410, 420],
                             clock=clock, contention=False)
    assert sorted(res3.ascent_time_s) == [100, 410]  # stops at the first candidate over budget
    res2 = tune_ascent_batch(descent, lambda bp: ascent(bp * 100), batch_size=512,
                             candidates=[100, 200], clock=clock)
    assert not res2.fits and res2.ascent_batch_size == 100 and res2.together_ratio == {}
    assert res2.fits_together is None
    with pytest.raises(ValueError, match="margin"):
        tune_ascent_batch(descent, ascent, batch_size=8, margin=1.5)
    with pytest.raises(ValueError, match="pair_repeats"):
        tune_ascent_batch(descent, ascent, batch_size=8, pair_repeats=0)


@pytest.mark.parametrize("slow", [1.0, 1.3, 2.0, 20.0])
def test_tuner_contention_rule(slow: float) -> None:
    # contention model: together, the ascent runs ``slow`` times slower than alone; the rule must
    # return the largest candidate fitting alone whose ascent/descent ratio together is within
    # the margin, found by bisection (few measurements), or the smallest fitting one, flagged
    from asam_theory.torch.tuning import PairMeasurement

    clock = FakeClock()

    def descent() -> None:
        clock.now += 0.050

    def ascent(bp: int) -> None:
        clock.now += 1e-4 * bp

    def measure(c: int) -> PairMeasurement:
        a = slow * 1e-4 * c
        return PairMeasurement(together=a / 0.050, ratio=max(1.0, a / 0.050), descent_s=0.050,
                               ascent_s=a)

    cands = list(range(25, 501, 25))
    res = tune_ascent_batch(descent, ascent, batch_size=512, candidates=cands, margin=0.5,
                            clock=clock, measure_pair=measure)
    fitting = [c for c, t in sorted(res.ascent_time_s.items()) if t <= 0.5 * res.descent_time_s]
    assert fitting[-1] in (225, 250)  # 250 · 0.1 ms = 25 ms sits on the boundary, up to rounding
    together = [c for c in fitting if measure(c).together <= 0.5]
    expected = together[-1] if together else fitting[0]
    assert res.ascent_batch_size == expected
    assert res.fits_together == bool(together) and res.fits
    assert len(res.together_ratio) <= 5  # bisection over ≤ 10 fitting candidates
    assert set(res.together_ratio) <= set(fitting)
    assert res.to_dict()["together_ratio"] == {str(k): v for k, v in res.together_ratio.items()}


def test_tuner_keeps_b_prime_large_when_the_cost_is_flat() -> None:
    # a small model: the ascent's per-call overhead dominates (20 ms + 1 µs per sample against
    # a 30 ms descent), so no b′ fits under 0.5 · 30 ms and shrinking b′ saves nothing — the
    # tuner must return the largest b′ costing ≤ 10 % more than the smallest, not the smallest
    from asam_theory.torch.tuning import PairMeasurement

    clock = FakeClock()

    def descent() -> None:
        clock.now += 0.030

    def flat(bp: int) -> None:
        clock.now += 0.020 + 1e-6 * bp

    cands = [4, 8, 16, 32, 64]
    res = tune_ascent_batch(descent, flat, batch_size=64, candidates=cands, margin=0.5,
                            clock=clock)
    assert not res.fits and res.ascent_batch_size == 64 and set(res.ascent_time_s) == set(cands)

    def steep(bp: int) -> None:  # 2 ms per sample: 4 → 8 ms, 8 → 16 ms (> 1.1 · 8 ms)
        clock.now += 0.002 * bp

    res = tune_ascent_batch(descent, steep, batch_size=64, candidates=cands, margin=0.1,
                            clock=clock)
    assert not res.fits and res.ascent_batch_size == 4 and set(res.ascent_time_s) == {4, 8}

    # fits alone, never together: the largest fitting b′ of (nearly) the smallest's cost
    def cheap(bp: int) -> None:
        clock.now += 0.010 + 1e-6 * bp

    res = tune_ascent_batch(
        descent, cheap, batch_size=64, candidates=cands, margin=0.5, clock=clock,
        measure_pair=lambda c: PairMeasurement(together=0.9, ratio=1.5, descent_s=0.03,
                                               ascent_s=0.027))
    assert res.fits and res.fits_together is False and res.ascent_batch_size == 64


def test_pair_timer_measures_a_real_pair() -> None:
    # a real helper thread: the pipelined step of a sleep-bound descent and ascent is the longer
    # of the two (they overlap), so the ratio against the descent alone is near 1 when the
    # ascent is shorter and near ascent/descent when it is longer
    from asam_theory.torch.tuning import PairTimer

    def descent() -> None:
        time.sleep(0.02)

    def ascent(bp: int) -> None:
        time.sleep(bp * 1e-3)

    cpu = torch.device("cpu")
    with PairTimer(descent, ascent, cpu, cpu, ascent_threads=1) as timer:
        short = timer.measure(10, repeats=5)
        long = timer.measure(60, repeats=5)
    # overlapped: max(20, 10) / 20 = 1 and 60 / 20 = 3; run one after the other they would be
    # 1.5 and 4 (sleeps need no CPU, so a busy machine does not blur the difference)
    assert 0.95 < short.ratio < 1.3
    assert 2.8 < long.ratio < 3.5
    assert 0.4 < short.together < 0.65 and 2.7 < long.together < 3.3  # 10/20 and 60/20
    assert 0.018 < long.descent_s < 0.03 and 0.058 < long.ascent_s < 0.075
    assert not [t for t in threading.enumerate() if t.name.startswith("asam-tune")]


def test_auto_ascent_batch_size() -> None:
    x, y = data()
    m = net()
    with AsyncSAM.tuned(m.parameters(), torch.optim.SGD, lr=0.1, descent_batch_size=64,
                        ascent_loss=classification_loss, model=m,
                        ascent_batches=IndexSampler(x, y, 0)) as opt:
        assert opt.tuning is not None
        assert opt.ascent_batch_size == opt.tuning.ascent_batch_size
        assert opt.ascent_batch_size in opt.tuning.ascent_time_s
        assert 1 <= opt.ascent_batch_size <= 64
        assert m[0].weight.grad is None  # tuning does not leave gradients behind


# ----------------------------------------------------------------------------- real run


def test_threaded_quadratic_run_deterministic_matches_engine() -> None:
    p = Quadratic(eigenvalues=[4.0, 2.0, 1.0, 0.5], rotate=True, shift=True, seed=0)
    res = threaded_quadratic_run(p, steps=40, lr=0.1, rho=0.05, tau=2, deterministic=True)
    traj = simulate(p, NpAsyncSAM(lr=0.1, rho=0.05, tau=2), x0=np.ones(4), steps=40, n_seeds=1,
                    seed=0, record=("grad_norm2", "f"), every=1)
    np.testing.assert_allclose(res.grad_norm2, traj.metrics["grad_norm2"][:, 0], atol=1e-10)
    np.testing.assert_allclose(res.f_gap, traj.metrics["f"][:, 0] - p.f_star, atol=1e-10)
    assert res.mean_grad_norm2 == pytest.approx(res.grad_norm2[:-1].mean())
    assert res.constants["L"] == pytest.approx(4.0)


def test_threaded_quadratic_run_real_thread() -> None:
    exact = threaded_quadratic_run(steps=60, tau=1, deterministic=True)
    thr = threaded_quadratic_run(steps=60, tau=1, deterministic=False)  # max_staleness = τ
    np.testing.assert_allclose(thr.grad_norm2, exact.grad_norm2, atol=1e-12)
    assert thr.staleness.tolist() == [0] + [1] * 59
    noisy = threaded_quadratic_run(steps=40, tau=1, max_staleness=4, sigma2=0.5, batch_size=4,
                                   ascent_batch_size=2, ascent_delay_s=0.005)
    assert noisy.staleness.shape == (40,)
    assert noisy.staleness[0] == 0 and noisy.staleness[1:].min() >= 1
    assert noisy.staleness.max() <= 4
    assert np.isfinite(noisy.final_gap) and noisy.config["sigma2"] == 0.5
