"""AsyncSAM's deferred snapshot and out-of-place perturbation (threaded mode, CPU).

On the CPU the worker copies the weights w_t of version t itself when it starts the job, and the
descent pass runs at w_t + ρu held in a second buffer. What must hold whoever copies and
whenever: every direction is computed at exactly the weights of its version, the parameters keep
their storage, and the main thread never updates the weights before the copy is taken.
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

from asam_theory.torch import AsyncSAM, WorkerOptions, _worker

H = torch.diag(torch.tensor([3.0, 1.0, 0.5, 0.2], dtype=torch.float64))


def run(steps: int, slow: dict[int, float], tau: int = 1, max_staleness: int = 3,
        lr: float = 0.05, rho: float = 0.1, descent_s: float = 0.0):
    """Train on ½ wᵀHw; the ascent loss sleeps ``slow[k]`` seconds at its k-th call, each
    descent pass ``descent_s`` seconds.

    Returns (trajectory w_0..w_T, weights each ascent saw, optimizer, main-thread copies), and
    asserts that the perturbation of every step t is ρ u(w_{t−s}) with s its recorded staleness.
    """
    w = torch.nn.Parameter(torch.linspace(1.0, 2.0, 4, dtype=torch.float64))
    seen: list[torch.Tensor] = []
    calls = [0]

    def ascent(params: list[torch.Tensor], batch: object) -> torch.Tensor:
        seen.append(params[0].detach().clone())
        k = calls[0]
        calls[0] += 1
        if k in slow:
            time.sleep(slow[k])
        return 0.5 * params[0] @ (H @ params[0])

    opt = AsyncSAM([w], torch.optim.SGD, rho=rho, tau=tau, lr=lr, ascent_loss=ascent,
                   worker=WorkerOptions(max_staleness=max_staleness, timeout=30.0))
    traj = [w.detach().clone()]
    inside: list[torch.Tensor] = []
    ptr = w.data_ptr()
    with opt:
        for _ in range(steps):
            def closure() -> torch.Tensor:
                inside.append(w.detach().clone())
                time.sleep(descent_s)
                opt.zero_grad()
                loss = 0.5 * w @ (H @ w)
                loss.backward()
                return loss

            opt.step(closure)
            assert w.data_ptr() == ptr  # the parameter is back on its own storage
            traj.append(w.detach().clone())
        main_copies = opt.main_thread_snapshots
    for t, s in enumerate(opt.staleness_history):
        g = H @ traj[t - s]
        torch.testing.assert_close(inside[t] - traj[t], rho * g / (g.norm() + 1e-12),
                                   rtol=0, atol=1e-13)
    return traj, seen, opt, main_copies


def test_directions_are_computed_at_their_versions_when_the_main_thread_copies() -> None:
    # the ascent sleeps at its 2nd call (version 1): versions published meanwhile are sealed by
    # the main thread; each computed direction must still be at exactly w_v for some version v
    traj, seen, opt, main_copies = run(12, slow={1: 0.3})
    assert main_copies >= 1
    for x in seen:
        assert any(torch.equal(x, w) for w in traj), "an ascent saw weights of no version"
    # the staleness went above τ while the worker slept, and stayed in the window
    assert max(opt.staleness_history) > 1
    assert max(opt.staleness_history) <= 3


def test_worker_copies_when_it_is_idle() -> None:
    # a fast ascent with τ = max_staleness = 1: the worker is idle when each version is
    # published and copies it itself; every step uses w_{t−1} exactly. The descent takes 50 ms,
    # so even on a busy machine the worker gets a core before the main thread's update
    traj, seen, opt, main_copies = run(20, slow={}, max_staleness=1, descent_s=0.05)
    assert opt.staleness_history[1:] == [1] * 19
    assert main_copies <= 2  # the worker may lose the race now and then, rarely
    for x, w in zip(seen, traj, strict=False):
        assert torch.equal(x, w)


def test_seal_waits_for_a_copy_in_progress(monkeypatch) -> None:
    # the worker's copy is slowed down (the sleep comes before the copy): if the main thread
    # updated the weights without waiting for it, the copy would read w_{t+1}
    real = _worker.torch._foreach_copy_

    def slow_copy(dst, src):
        if threading.current_thread().name == "asam-ascent":
            time.sleep(0.05)
        return real(dst, src)

    monkeypatch.setattr(_worker.torch, "_foreach_copy_", slow_copy)
    traj, seen, opt, _ = run(8, slow={}, tau=1, max_staleness=1)
    for x in seen:
        assert any(torch.equal(x, w) for w in traj[:-1])
    assert opt.staleness_history[1:] == [1] * 7


def test_perturbed_weights_during_the_closure_and_restored_after() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64))

    def ascent(params: list[torch.Tensor], batch: object) -> torch.Tensor:
        return 0.5 * params[0] @ (H @ params[0])

    inside: list[torch.Tensor] = []
    with AsyncSAM([w], torch.optim.SGD, rho=0.25, tau=0, lr=0.0, ascent_loss=ascent,
                  worker=WorkerOptions(max_staleness=0)) as opt:
        before = w.detach().clone()

        def closure() -> torch.Tensor:
            opt.zero_grad()
            inside.append(w.detach().clone())
            loss = 0.5 * w @ (H @ w)
            loss.backward()
            return loss

        opt.step(closure)
        g = H @ before
        expected = before + 0.25 * g / (g.norm() + 1e-12)
        torch.testing.assert_close(inside[0], expected, rtol=0, atol=1e-15)
        assert torch.equal(w.detach(), before)  # lr = 0: back at w_t exactly
        # the gradient is the perturbed point's
        torch.testing.assert_close(w.grad, H @ expected, rtol=0, atol=1e-14)


def test_interrupt_in_the_closure_leaves_the_parameter_on_its_storage() -> None:
    w = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    ptr = w.data_ptr()

    def ascent(params: list[torch.Tensor], batch: object) -> torch.Tensor:
        return 0.5 * params[0] @ (H @ params[0])

    opt = AsyncSAM([w], torch.optim.SGD, rho=0.1, tau=1, lr=0.05, ascent_loss=ascent)

    def closure() -> torch.Tensor:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        opt.step(closure)
    assert w.data_ptr() == ptr
    assert torch.equal(w.detach(), torch.ones(4, dtype=torch.float64))


def test_worker_direction_with_shared_and_expanded_gradients() -> None:
    # autograd hands both inputs of an addition the same gradient tensor, and the gradient of a
    # sum is an expanded one: the worker scales its gradients in place only when that is safe
    from asam_theory.torch._worker import AscentComputer

    a = torch.tensor([1.0, 2.0], dtype=torch.float64)
    b = torch.tensor([3.0, -1.0], dtype=torch.float64)

    def shared(params: list[torch.Tensor], batch: object) -> torch.Tensor:
        return ((params[0] + params[1]) * torch.tensor([1.0, 2.0], dtype=torch.float64)).sum()

    def expanded(params: list[torch.Tensor], batch: object) -> torch.Tensor:
        return params[0].sum() + (params[1] ** 2).sum()

    cpu = torch.device("cpu")
    for loss, grads in ((shared, [[1.0, 2.0], [1.0, 2.0]]),
                        (expanded, [[1.0, 1.0], [6.0, -2.0]])):
        comp = AscentComputer(loss, cpu, None, [a, b], adaptive=False)
        u = comp.direction([a, b], None)
        g = torch.tensor(grads, dtype=torch.float64)
        torch.testing.assert_close(torch.stack(u), g / (g.norm() + 1e-12), rtol=0, atol=1e-15)
