"""Look-ahead ascent batches for asam_theory.torch.AsyncSAM (asam_theory.torch.lookahead).

τ = 0 look-ahead is SAM; τ > 0 follows the written recursion (deterministic: the direction at
w_{max(t−τ,0)} on B_t; threaded: w_t is handed B_{t+τ}); the worker never receives a batch
beyond the running step + τ.
"""

from __future__ import annotations

import copy
import threading

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from asam_theory.torch import SAM, AsyncSAM, LookAhead, WorkerOptions
from asam_theory.torch.lookahead import first_samples

N, B, STEPS = 8 * 24, 24, 8


def make_batches(dtype=torch.float64) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """STEPS batches (x, y, index); the index tensor tags each sample with its batch number."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 10, generator=g, dtype=dtype)
    y = torch.randint(0, 3, (N,), generator=g)
    return [(x[i * B:(i + 1) * B], y[i * B:(i + 1) * B], torch.full((B,), i))
            for i in range(STEPS)]


def make_net(dtype=torch.float64) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3)).to(dtype)


def loss_fn(model: nn.Module, batch) -> torch.Tensor:
    return F.cross_entropy(model(batch[0]), batch[1])


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def run_loader(opt: AsyncSAM, model: nn.Module, la: LookAhead) -> None:
    """Train on every descent batch of ``la`` (one AsyncSAM step each), then close ``opt``."""
    with opt:
        for batch in la:
            def closure(batch=batch) -> torch.Tensor:
                opt.zero_grad()
                loss = loss_fn(model, batch)
                loss.backward()
                return loss

            opt.step(closure)


def train_lookahead(tau: int, deterministic: bool, ascent_loss=loss_fn,
                    ascent_batch_size: int | None = None, batches=None):
    batches = make_batches() if batches is None else batches
    model = make_net()
    la = LookAhead(iter(batches), tau=tau)
    opt = AsyncSAM(model.parameters(), torch.optim.SGD, rho=0.1, tau=tau, lr=0.1,
                   momentum=0.9, ascent_loss=ascent_loss, ascent_batches=la, model=model,
                   ascent_batch_size=ascent_batch_size, deterministic=deterministic,
                   worker=WorkerOptions(max_staleness=tau, timeout=60.0))
    run_loader(opt, model, la)
    return model, opt, la


def reference(tau: int, threaded: bool, bprime: int | None = None) -> nn.Module:
    """The written recursion: s = max(t−τ, 0); the ascent batch is B_t (deterministic) or
    B_{s+τ} (threaded: the worker computes w_s once, on the batch of step s + τ);
    u = g/(‖g‖ + 1e-12), g = ∇L_A(w_s); w ← SGD(w, ∇L_{B_t}(w + ρu))."""
    batches = make_batches()
    model = make_net()
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    hist = []
    for t, batch in enumerate(batches):
        hist.append([p.detach().clone() for p in params])
        s = max(t - tau, 0)
        a = batches[s + tau] if threaded else batch
        a = first_samples(a, bprime)
        stale = copy.deepcopy(model)
        with torch.no_grad():
            for p, w in zip(stale.parameters(), hist[s], strict=True):
                p.copy_(w)
        g = torch.autograd.grad(loss_fn(stale, a), list(stale.parameters()))
        norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
        eps = [0.1 * gi / (norm + 1e-12) for gi in g]
        with torch.no_grad():
            for p, e in zip(params, eps, strict=True):
                p.add_(e)
        opt.zero_grad()
        loss_fn(model, batch).backward()
        with torch.no_grad():
            for p, e in zip(params, eps, strict=True):
                p.sub_(e)
        opt.step()
    return model


@pytest.mark.parametrize("deterministic", [True, False])
def test_tau0_lookahead_is_sam(deterministic: bool) -> None:
    batches = make_batches()
    m_sam = make_net()
    sam = SAM(m_sam.parameters(), torch.optim.SGD, rho=0.1, lr=0.1, momentum=0.9)
    for b in batches:
        sam.zero_grad()
        loss_fn(m_sam, b).backward()
        sam.first_step(zero_grad=True)
        loss_fn(m_sam, b).backward()
        sam.second_step(zero_grad=True)
    model, opt, _ = train_lookahead(0, deterministic)
    assert opt.staleness_history == [0] * STEPS
    # float64, the same formulas: rounding only (as the tau = 0 same-batch test of AsyncSAM)
    torch.testing.assert_close(flat(model), flat(m_sam), atol=1e-12, rtol=0)
    assert (flat(m_sam) - flat(make_net())).abs().max() > 1e-3


@pytest.mark.parametrize(("tau", "deterministic", "bprime"),
                         [(1, True, None), (2, True, 8), (1, False, None), (2, False, 8)])
def test_lookahead_follows_the_written_recursion(tau: int, deterministic: bool,
                                                 bprime: int | None) -> None:
    model, opt, _ = train_lookahead(tau, deterministic, ascent_batch_size=bprime)
    ref = reference(tau, threaded=not deterministic, bprime=bprime)
    assert opt.staleness_history == [min(t, tau) for t in range(STEPS)]
    # float64; the norm is summed in another order than normalized_direction's -> ~1e-15
    # relative per step, far below the tolerance
    torch.testing.assert_close(flat(model), flat(ref), atol=1e-10, rtol=0)
    # and it is not the independent-batch run: another ascent batch changes the trajectory
    other = reference(tau, threaded=deterministic, bprime=bprime)
    assert (flat(other) - flat(ref)).abs().max() > 1e-8


@pytest.mark.parametrize(("tau", "deterministic", "slack"),
                         [(0, True, 0), (2, True, 0), (0, False, 0), (1, False, 0),
                          (3, False, 0), (1, False, 2)])
def test_the_worker_never_sees_a_batch_beyond_step_plus_tau(tau: int, deterministic: bool,
                                                            slack: int) -> None:
    """Instrumented: the ascent loss records each batch index it is given and the optimizer's
    version (the running step) at that moment, read from whichever thread computes."""
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()
    holder: dict[str, AsyncSAM] = {}

    def spy(model: nn.Module, batch) -> torch.Tensor:
        with lock:
            seen.append((int(batch[2][0]), holder["opt"].version))
        return loss_fn(model, batch)

    batches = make_batches()
    model = make_net()
    la = LookAhead(iter(batches), tau=tau)
    opt = AsyncSAM(model.parameters(), torch.optim.SGD, rho=0.1, tau=tau, lr=0.1,
                   ascent_loss=spy, ascent_batches=la, model=model, deterministic=deterministic,
                   worker=WorkerOptions(max_staleness=tau + slack, timeout=60.0))
    holder["opt"] = opt
    run_loader(opt, model, la)
    assert seen, "the ascent never ran"
    for index, version in seen:
        assert index <= version + tau, (index, version, tau)
    # what the loader handed out: exactly step + tau (threaded; the last tau versions have no
    # batch and are not computed) or the step itself (deterministic)
    expected = ([(t, t) for t in range(STEPS)] if deterministic
                else [(t + tau, t) for t in range(STEPS - tau)])
    assert la.requests == expected
    if slack == 0:
        assert sorted(i for i, _ in seen) == [i for i, _ in expected]
    else:  # max_staleness > tau: a version may be skipped, never computed on a later batch
        assert set(i for i, _ in seen) <= set(i for i, _ in expected)
        assert max(opt.staleness_history) <= tau + slack


def test_lookahead_refuses_a_batch_beyond_the_horizon() -> None:
    la = LookAhead(iter(make_batches()), tau=1)
    with pytest.raises(RuntimeError, match="at most step"):
        la.ascent_batch(1)  # no descent batch taken yet: the horizon is -1 + tau = 0
    next(la)  # step 0
    assert la.horizon == 1
    assert int(la.ascent_batch(1)[2][0]) == 1
    with pytest.raises(RuntimeError, match="at most step"):
        la.ascent_batch(2)
    next(la), next(la)  # step 2: batch 0 is gone
    with pytest.raises(RuntimeError, match="no longer buffered"):
        la.ascent_batch(0)


def test_optimizer_step_before_taking_the_batch_is_refused() -> None:
    model = make_net()
    la = LookAhead(iter(make_batches()), tau=0)
    with AsyncSAM(model.parameters(), torch.optim.SGD, tau=0, lr=0.1, ascent_loss=loss_fn,
                  ascent_batches=la, model=model, deterministic=True) as opt:
        with pytest.raises(RuntimeError, match="next\\(\\) before opt.step"):
            opt.step(lambda: loss_fn(model, make_batches()[0]))


def test_lookahead_tau_must_match_the_optimizer() -> None:
    model = make_net()
    with pytest.raises(ValueError, match="tau"):
        AsyncSAM(model.parameters(), torch.optim.SGD, tau=2, lr=0.1, ascent_loss=loss_fn,
                 ascent_batches=LookAhead(iter(make_batches()), tau=1), model=model,
                 deterministic=True)
    with pytest.raises(ValueError, match="tau"):
        LookAhead(iter(make_batches()), tau=-1)
    with pytest.raises(ValueError, match="batches"):
        LookAhead(3, tau=1)  # type: ignore[arg-type]


def test_a_reiterable_is_cycled_across_epochs_and_read_ahead() -> None:
    batches = make_batches()[:3]
    la = LookAhead(batches, tau=2)
    got = [int(next(la)[2][0]) for _ in range(7)]
    assert got == [0, 1, 2, 0, 1, 2, 0]
    # at step 6 the ascent may take index 8: the second batch of the next epoch
    assert int(la.ascent_batch(8)[2][0]) == 2
    assert first_samples(batches[0], 5)[0].shape == (5, 10)
    with pytest.raises(ValueError, match="ascent_batch_size"):
        first_samples(batches[0], B + 1)


def test_run_method_lookahead_takes_the_same_descent_batches(monkeypatch) -> None:
    """``run_method("asyncsam-la")`` descends on the batches every method takes (its
    LookAhead reads the same sampler ahead), and its worker's ascent batches are those
    descent batches (τ = 1: the batch of step t + 1 at w_t)."""
    import asam_theory.experiments.training as tr

    calls: list[tuple[str, torch.Tensor]] = []
    original = tr.classification_loss

    def spy(model, batch):
        calls.append((threading.current_thread().name, batch[1].clone()))
        return original(model, batch)

    monkeypatch.setattr(tr, "classification_loss", spy)
    data = tr.load_digits_data(label_noise=0.2, seed=0)
    kw = dict(model_kind="mlp", hidden=16, steps=10, batch_size=16, seed=3)
    tr.run_method("sgd", data, **kw)
    sgd = [y for _, y in calls]
    calls.clear()
    res = tr.run_method("asyncsam-la", data, tau=1, **kw)
    main = [y for name, y in calls if name == "MainThread"]
    worker = [y for name, y in calls if name != "MainThread"]
    assert res.staleness == [0] + [1] * 9
    assert len(main) == len(sgd) == 10
    assert all(torch.equal(a, b) for a, b in zip(main, sgd, strict=True))
    # version t (t = 0..8) is handed B_{t+1}; version 9 has no batch (the run ends)
    assert len(worker) == 9
    assert all(torch.equal(a, b) for a, b in zip(worker, sgd[1:], strict=True))
