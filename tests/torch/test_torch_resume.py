"""Resuming AsyncSAM from a state_dict taken mid-run, threaded and deterministic."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from asam_theory.experiments.training import IndexSampler, classification_loss
from asam_theory.torch import AsyncSAM, WorkerOptions

H = torch.diag(torch.tensor([4.0, 2.0, 1.0, 0.5], dtype=torch.float64))
NOISE = torch.randn(64, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def quad(params: list[torch.Tensor], batch: object = None) -> torch.Tensor:
    w = params[0]
    return 0.5 * w @ (H @ w)


def build(tau: int, max_staleness: int | None, deterministic: bool = False, ascent_loss=quad,
          x0: float = 1.0):
    w = torch.nn.Parameter(torch.full((4,), x0, dtype=torch.float64))
    opt = AsyncSAM([w], torch.optim.SGD, rho=0.2, tau=tau, lr=0.1, momentum=0.9,
                   ascent_loss=ascent_loss, deterministic=deterministic,
                   worker=WorkerOptions(max_staleness=max_staleness))
    return w, opt


def run(w: torch.Tensor, opt: AsyncSAM, start: int, stop: int) -> list[torch.Tensor]:
    """Steps start..stop−1; the descent loss adds a fixed noise term per step (moving iterates)."""
    out = []
    for t in range(start, stop):
        def closure(t: int = t) -> torch.Tensor:
            opt.zero_grad()
            loss = quad([w]) + NOISE[t] @ w
            loss.backward()
            return loss

        opt.step(closure)
        out.append(w.detach().clone())
    return out


def save(opt: AsyncSAM) -> dict:
    buf = io.BytesIO()  # through torch.save/load: the state is serialisable and detached
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


@pytest.mark.parametrize(("tau", "split"), [(1, 5), (2, 1), (2, 7), (3, 2), (3, 9)])
def test_threaded_resume_is_exact_at_fixed_staleness(tau: int, split: int) -> None:
    # max_staleness = τ and a batch-free ascent loss: nothing depends on timing, so resuming
    # must reproduce the uninterrupted run bit for bit — including the directions of versions
    # published before the save but not yet computed (the pending ones).
    steps = 16
    w, opt = build(tau, tau)
    with opt:
        ref = run(w, opt, 0, steps)
        ref_stale = list(opt.staleness_history)

    w1, opt1 = build(tau, tau)
    with opt1:
        run(w1, opt1, 0, split)
        state, weights = save(opt1), w1.detach().clone()
        src = state["asyncsam"]["source"]
        # what the next steps need: versions split−τ .. split−1, computed or pending
        assert set(src["directions"]) | set(src["snapshots"]) == set(
            range(max(split - tau, 0), split))
    w2, opt2 = build(tau, tau, x0=-3.0)  # a fresh optimizer; weights overwritten by the load
    with opt2:
        with torch.no_grad():
            w2.copy_(weights)
        opt2.load_state_dict(state)
        assert opt2.version == split
        got = run(w2, opt2, split, steps)
        assert opt2.staleness_history == ref_stale
    for a, b in zip(got, ref[split:], strict=True):
        assert torch.equal(a, b)


def test_threaded_resume_into_a_used_optimizer() -> None:
    # loading into an optimizer that already ran (worker busy with its own versions) replaces
    # its pipeline: results computed for the old run are discarded
    tau, split, steps = 2, 6, 12
    w, opt = build(tau, tau)
    with opt:
        ref = run(w, opt, 0, steps)
    w1, opt1 = build(tau, tau)
    with opt1:
        run(w1, opt1, 0, split)
        state, weights = save(opt1), w1.detach().clone()
    w2, opt2 = build(tau, tau, x0=0.5)
    with opt2:
        run(w2, opt2, 0, 4)
        with torch.no_grad():
            w2.copy_(weights)
        opt2.load_state_dict(state)
        got = run(w2, opt2, split, steps)
    for a, b in zip(got, ref[split:], strict=True):
        assert torch.equal(a, b)


def test_threaded_resume_with_timing_dependent_staleness() -> None:
    # max_staleness > τ and a slow ascent: which version each step takes depends on timing
    # (documented), but the resumed run continues the version count, never steps outside
    # [τ, max_staleness] (a restart would use staleness 0 at first), and its first steps use
    # the directions carried in the state
    import time

    tau, ms = 1, 4

    def slow(params, batch):
        time.sleep(0.004)
        return quad(params)

    w1, opt1 = build(tau, ms, ascent_loss=slow)
    with opt1:
        run(w1, opt1, 0, 12)
        state, weights = save(opt1), w1.detach().clone()
    src = state["asyncsam"]["source"]
    kept = set(src["directions"]) | set(src["snapshots"])
    assert kept and all(12 - ms <= v <= 11 for v in kept)
    w2, opt2 = build(tau, ms, ascent_loss=slow)
    with opt2:
        with torch.no_grad():
            w2.copy_(weights)
        opt2.load_state_dict(state)
        got = run(w2, opt2, 12, 30)
        hist = opt2.staleness_history
    assert opt2.version == 30 and len(hist) == 30
    assert hist[:12] == opt1.staleness_history
    assert all(tau <= s <= ms for s in hist[12:]), hist
    assert 12 - hist[12] in kept  # step 12 used a carried direction (no restart at version 12)
    assert all(torch.isfinite(g).all() for g in got)


def test_deterministic_resume_is_bit_exact_with_sampled_batches() -> None:
    # deterministic mode with a stochastic ascent batch: bit-exact given the sampler's state
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(128, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (128,),
                                                                              generator=g)

    def net(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(),
                                   torch.nn.Linear(8, 3)).double()

    def make(m: torch.nn.Module):
        sampler = IndexSampler(x, y, 5)
        return AsyncSAM(m.parameters(), torch.optim.SGD, rho=0.1, tau=3, lr=0.1, momentum=0.9,
                        ascent_loss=classification_loss, ascent_batches=sampler,
                        ascent_batch_size=16, model=m, deterministic=True), sampler

    def train(m, opt, lo, hi):
        for i in range(lo, hi):
            b = (x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8])

            def closure(b=b):
                opt.zero_grad()
                loss = classification_loss(m, b)
                loss.backward()
                return loss

            opt.step(closure)

    m = net(0)
    opt, _ = make(m)
    train(m, opt, 0, 14)
    ref = torch.cat([p.detach().flatten() for p in m.parameters()])
    m1 = net(0)
    opt1, s1 = make(m1)
    train(m1, opt1, 0, 5)
    state, weights, gen = save(opt1), {k: v.clone() for k, v in m1.state_dict().items()}, \
        s1.gen.get_state()
    m2 = net(9)
    opt2, s2 = make(m2)
    m2.load_state_dict(weights)
    opt2.load_state_dict(state)
    s2.gen.set_state(gen)
    train(m2, opt2, 5, 14)
    got = torch.cat([p.detach().flatten() for p in m2.parameters()])
    assert torch.equal(got, ref)
    assert np.array_equal(opt2.staleness_history, opt.staleness_history)


def test_load_rejects_other_mode() -> None:
    w, opt = build(1, 1)
    with opt:
        run(w, opt, 0, 3)
        state = save(opt)
    w2, det = build(1, 1, deterministic=True)
    with pytest.raises(ValueError, match="deterministic"):
        det.load_state_dict(state)
