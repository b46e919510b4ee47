"""AsyncSAM's worker-process backend: same semantics as the thread backend, faults, lifecycle.

Every test checks that no worker process outlives it (``no_leftover_processes``)."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from process_helpers import ConvNet, PidLoss, RaiseAt, Sleepy, criterion, net, quad
from torch import nn

from asam_theory.experiments.training import IndexSampler
from asam_theory.torch import AscentWorkerError, AsyncSAM, LookAhead, WorkerOptions
from asam_theory.torch._process import worker_pid_alive
from asam_theory.torch._shared import Layout, dense_strides, flatten, unflatten
from asam_theory.torch._worker import choose_pending, freshest, window

ROOT = Path(__file__).resolve().parents[2]


def _workers() -> set[int]:
    return {p.pid for p in mp.active_children() if p.name == "asam-ascent"}


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """No worker process this test started is alive (within 10 s) after it."""
    before = _workers()
    yield
    gc.collect()
    deadline = time.monotonic() + 10.0
    while _workers() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _workers() - before == set()


def quadratic(backend: str, tau: int, steps: int, max_staleness: int | None = None,
              deterministic: bool = False, **kw) -> np.ndarray:
    w = nn.Parameter(torch.ones(4, dtype=torch.float64))
    traj = [w.detach().clone()]
    opt = AsyncSAM([w], torch.optim.SGD, rho=0.2, tau=tau, lr=0.1, ascent_loss=quad,
                   deterministic=deterministic,
                   worker=WorkerOptions(backend=backend, max_staleness=max_staleness, **kw))
    with opt:
        for _ in range(steps):
            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = quad([w])
                loss.backward()
                return loss

            opt.step(closure)
            traj.append(w.detach().clone())
    return torch.stack(traj).numpy()


# ----------------------------------------------------------------------------- the rule


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 30), max_size=8), st.integers(0, 30), st.integers(0, 6))
def test_choose_pending_keeps_what_the_next_step_needs(pending, step, gap):
    # the worker never drops the version the next step will take, and computes it first when
    # it is pending
    lo, hi = window(step, 1, 1 + gap, 0)
    chosen, dropped = choose_pending(pending, lo, hi)
    assert set(dropped) <= pending and chosen not in dropped
    kept = pending - set(dropped)
    assert all(v >= lo for v in kept)
    in_range = [v for v in pending if lo <= v <= hi]
    if in_range:
        assert chosen == max(in_range)
        assert freshest(kept, lo, hi) == chosen
    elif kept:
        assert chosen == min(kept)
    else:
        assert chosen is None


def test_window_start_convention():
    assert window(0, 2, 4, 0) == (0, 0)  # the first steps use version 0
    assert window(5, 2, 4, 0) == (1, 3)
    assert window(5, 2, 4, 5) == (1, 5)  # after a restore at version 5


# ----------------------------------------------------------------------------- shared memory


def test_ring_views_keep_each_parameter_layout():
    conv = nn.Conv2d(3, 8, 3).to(memory_format=torch.channels_last)
    params = [conv.weight, conv.bias, torch.zeros(2, 3, dtype=torch.float64)]
    layout = Layout.of(params)
    ring = layout.ring(3)
    assert set(ring) == {torch.float32, torch.float64} and ring[torch.float32].is_shared()
    views = layout.views(ring, 2)
    for v, p in zip(views, params, strict=True):
        assert v.shape == p.shape and v.stride() == p.stride() and v.dtype == p.dtype
        v.copy_(torch.randn_like(p) if p.is_floating_point() else p)
    assert views[0].is_contiguous(memory_format=torch.channels_last)
    # slot 2's views alias slot 2's rows only
    assert ring[torch.float32][:2].abs().sum() == 0 and ring[torch.float32][2].abs().sum() > 0
    assert dense_strides((2, 3, 4, 5), (60, 1, 15, 3))
    assert not dense_strides((4, 4), (8, 1))  # every other row: not dense


def test_batch_structure_round_trip():
    batch = {"x": torch.randn(3, 2), "pair": (torch.arange(3), [torch.ones(1), 7]), "k": "a"}
    leaves, structure = flatten(batch)
    assert len(leaves) == 3
    back = unflatten(structure, leaves)
    assert back["k"] == "a" and back["pair"][1][1] == 7
    assert torch.equal(back["pair"][0], torch.arange(3))


# ----------------------------------------------------------------------------- equivalences


@pytest.mark.parametrize("tau", [0, 1, 3])
def test_process_with_max_staleness_tau_equals_deterministic(tau: int) -> None:
    # exact gradients: with max_staleness = tau the worker process must deliver exactly
    # w_{t-tau}; float64, the same operations: equal to rounding (1e-12 over 25 steps)
    det = quadratic("thread", tau, 25, deterministic=True)
    got = quadratic("process", tau, 25, max_staleness=tau)
    np.testing.assert_allclose(got, det, atol=1e-12, rtol=0)
    assert np.abs(det[-1] - det[0]).max() > 0.1


@pytest.mark.parametrize(("tau", "bprime", "lookahead"),
                         [(1, None, False), (2, 8, False), (1, 8, True), (0, None, True)])
def test_for_model_with_batchnorm_equals_the_thread_and_deterministic_runs(tau, bprime,
                                                                          lookahead):
    # step batches (the short form) and look-ahead batches travel through shared memory; the
    # process run equals the thread run bit for bit (float64, BatchNorm included), and the
    # deterministic run too except for a look-ahead's warm-up (its steps t < tau take w_0 with
    # the batch B_t in the deterministic run, with B_tau in a worker: tests/torch/
    # test_torch_for_model.py)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(240, 10, generator=g, dtype=torch.float64), torch.randint(0, 3, (240,))
    batches = [(x[i:i + 24], y[i:i + 24]) for i in range(0, 240, 24)] * 2

    def run(backend: str) -> tuple[list[torch.Tensor], list[int]]:
        model = net(bn=True)
        la = LookAhead(iter(batches), tau=tau) if lookahead else None
        opt = AsyncSAM.for_model(model, nn.CrossEntropyLoss(), torch.optim.SGD, rho=0.1,
                                 lr=0.1, momentum=0.9, tau=tau, ascent_batch_size=bprime,
                                 ascent_batches=la, deterministic=backend == "deterministic",
                                 worker=WorkerOptions(backend=backend if backend != "deterministic"
                                                      else "thread"))
        with opt:
            for b in batches:
                if la is not None:
                    b = next(la)
                opt.step(*b)
        return [p.detach().clone() for p in model.parameters()], opt.staleness_history

    got, got_stale = run("process")
    for ref in ("thread",) if lookahead and tau else ("thread", "deterministic"):
        want, want_stale = run(ref)
        assert got_stale == want_stale
        for a, b in zip(want, got, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_independent_stream_drawn_in_the_worker_equals_the_thread_backend():
    # an independent ascent stream is drawn inside the worker, one batch per computed job, as
    # the thread backend draws it in its thread: at max_staleness = tau the runs are equal
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(200, 10, generator=g, dtype=torch.float64), torch.randint(0, 3, (200,))

    def run(backend: str) -> list[torch.Tensor]:
        model = net()
        opt = AsyncSAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.1, tau=1,
                       ascent_loss=criterion, ascent_batches=IndexSampler(x, y, seed=5),
                       ascent_batch_size=16, model=model,
                       worker=WorkerOptions(backend=backend, max_staleness=1))
        descent = IndexSampler(x, y, seed=4)
        with opt:
            for _ in range(20):
                b = descent(32)

                def closure(b=b) -> torch.Tensor:
                    opt.zero_grad()
                    loss = criterion(model, b)
                    loss.backward()
                    return loss

                opt.step(closure)
        return [p.detach().clone() for p in model.parameters()]

    for a, b in zip(run("thread"), run("process"), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_param_groups_and_batchnorm_stats(dtype):
    model = net(dtype=dtype, bn=True)
    bn = model[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    groups = [{"params": model[0].parameters(), "rho": 0.2},
              {"params": list(model[1].parameters()) + list(model[3].parameters())}]
    opt = AsyncSAM(groups, torch.optim.SGD, rho=0.05, lr=0.05, ascent_loss=criterion,
                   ascent_batches=IndexSampler(torch.randn(64, 10, dtype=dtype),
                                               torch.randint(0, 3, (64,)), seed=0),
                   ascent_batch_size=8, model=model, worker=WorkerOptions(backend="process"))
    x, y = torch.randn(32, 10, dtype=dtype), torch.randint(0, 3, (32,))
    with opt:
        for _ in range(5):
            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = criterion(model, (x, y))
                loss.backward()
                return loss

            loss = opt.step(closure)
    assert loss.dtype == dtype and torch.isfinite(loss)
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert int(bn.num_batches_tracked) == before[2]


def test_channels_last_parameters_train():
    model = ConvNet().to(memory_format=torch.channels_last)
    x = torch.randn(16, 2, 4, 4).to(memory_format=torch.channels_last)
    y = torch.randint(0, 3, (16,))
    with AsyncSAM.for_model(model, nn.CrossEntropyLoss(), rho=0.05, lr=0.1,
                            worker=WorkerOptions(backend="process")) as opt:
        for _ in range(4):
            opt.step(x, y)
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert opt.staleness_history == [0, 1, 1, 1]


def test_fidelity_probes_receive_the_ascent_batch():
    model = net()
    x, y = torch.randn(64, 10, dtype=torch.float64), torch.randint(0, 3, (64,))
    with AsyncSAM.for_model(model, nn.CrossEntropyLoss(), rho=0.05, lr=0.1,
                            worker=WorkerOptions(backend="process", fidelity_every=2)) as opt:
        for i in range(6):
            opt.step(x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8])
    steps = [s for s, _ in opt.fidelity_history]
    assert steps == [0, 2, 4]
    assert all(-1.0 - 1e-12 <= c <= 1.0 + 1e-12 for _, c in opt.fidelity_history)
    # step 0 uses the direction at w_0 on its own batch: the fresh direction is the same one
    assert opt.fidelity_history[0][1] == pytest.approx(1.0, abs=1e-9)


# ----------------------------------------------------------------------------- resume


@pytest.mark.parametrize(("first", "second"), [("process", "process"), ("thread", "process"),
                                               ("process", "thread")])
def test_resume_across_backends_is_exact_at_fixed_staleness(first, second):
    # a state saved by either backend loads into either: at max_staleness = tau the resumed
    # run equals the uninterrupted one (exact gradients)
    tau, split, steps = 2, 7, 16
    ref = quadratic("thread", tau, steps, deterministic=True)
    w = nn.Parameter(torch.ones(4, dtype=torch.float64))

    def make(backend: str) -> AsyncSAM:
        return AsyncSAM([w], torch.optim.SGD, rho=0.2, tau=tau, lr=0.1, ascent_loss=quad,
                        worker=WorkerOptions(backend=backend, max_staleness=tau))

    def steps_of(opt: AsyncSAM, n: int) -> None:
        for _ in range(n):
            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = quad([w])
                loss.backward()
                return loss

            opt.step(closure)

    with make(first) as opt:
        steps_of(opt, split)
        state = opt.state_dict()
    with make(second) as opt2:
        opt2.load_state_dict(state)
        steps_of(opt2, steps - split)
        assert opt2.staleness_history == [0, 1] + [tau] * (steps - 2)
    np.testing.assert_allclose(w.detach().numpy(), ref[-1], atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------- errors


def test_worker_exception_arrives_with_the_worker_traceback():
    w = nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = AsyncSAM([w], torch.optim.SGD, rho=0.1, lr=0.05, ascent_loss=RaiseAt(4),
                   worker=WorkerOptions(backend="process"))
    with pytest.raises(AscentWorkerError) as info, opt:
        for _ in range(20):
            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = quad([w])
                loss.backward()
                return loss

            opt.step(closure)
    msg = str(info.value)
    assert "ValueError" in msg and "as planned" in msg and "worker traceback" in msg
    assert "process_helpers.py" in msg  # the worker's frames
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("what", ["ascent_loss", "model", "ascent_batches"])
def test_unpicklable_objects_are_named_before_any_process_starts(what):
    class LocalNet(nn.Linear):
        pass

    model = LocalNet(10, 3) if what == "model" else nn.Linear(10, 3)
    kw = {"ascent_loss": (lambda m, b: m(b[0]).sum()) if what == "ascent_loss" else criterion,
          "ascent_batches": ((b for b in [(torch.randn(2, 10), torch.zeros(2, dtype=torch.long))])
                             if what == "ascent_batches" else None)}  # a generator
    with pytest.raises(ValueError, match=f"{what} cannot be sent to the ascent worker process"):
        AsyncSAM(model.parameters(), torch.optim.SGD, lr=0.1, model=model,
                 worker=WorkerOptions(backend="process"), **kw)
    assert _workers() == set()


def test_a_loss_the_worker_cannot_load_is_reported_at_construction(tmp_path):
    # a function defined in an interactive main (python -c) pickles by reference but cannot be
    # imported in the spawned worker: the constructor says so instead of hanging
    script = textwrap.dedent("""
        import torch
        from asam_theory.torch import AsyncSAM, WorkerOptions
        def loss(params, batch):
            return (params[0] ** 2).sum()
        w = torch.nn.Parameter(torch.ones(3))
        try:
            AsyncSAM([w], torch.optim.SGD, lr=0.1, ascent_loss=loss,
                     worker=WorkerOptions(backend="process", timeout=60))
        except Exception as exc:
            print("ERROR", type(exc).__name__, exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert "ERROR AscentWorkerError" in out.stdout, out.stdout + out.stderr
    assert "while loading the ascent loss" in out.stdout


@pytest.mark.skipif("forkserver" not in mp.get_all_start_methods(), reason="spawn only here")
def test_a_scripts_top_level_runs_once_for_all_workers_and_its_classes_load(tmp_path):
    """Workers fork from a forkserver that ran the training script once: its top level (and
    what it imports) does not run again per worker, and a loss class defined in the script
    loads in every worker and trains (three optimizers, one after the other)."""
    script = tmp_path / "train.py"
    log = tmp_path / "top_level.log"
    script.write_text(textwrap.dedent(f"""
        import os
        import torch
        from asam_theory.torch import AsyncSAM, WorkerOptions
        with open({str(log)!r}, "a") as fh:
            fh.write(f"{{os.getpid()}}\\n")

        class Quad:
            def __call__(self, params, batch):
                return (params[0] ** 2).sum()

        if __name__ == "__main__":
            w = torch.nn.Parameter(torch.ones(3))
            for _ in range(3):
                with AsyncSAM([w], torch.optim.SGD, lr=0.1, ascent_loss=Quad(),
                              worker=WorkerOptions(backend="process", timeout=60)) as opt:
                    for _ in range(3):
                        opt.zero_grad()
                        opt.step(lambda: (w ** 2).sum().backward() or (w ** 2).sum())
            print("NORM", float(w.detach().norm()))
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=180, cwd=tmp_path)
    assert "NORM" in out.stdout, out.stdout + out.stderr
    assert float(out.stdout.split("NORM")[1]) < 3 ** 0.5  # it trained
    pids = log.read_text().split()
    # the script itself and the forkserver; none of the three workers
    assert len(pids) == 2 and len(set(pids)) == 2, pids


def test_a_script_without_a_main_guard_fails_at_construction_saying_why(tmp_path):
    """A script that builds the optimizer at its top level is imported again by the worker (or
    the forkserver), which must not start workers of its own: the constructor raises, naming
    the missing ``if __name__ == "__main__":`` guard, and the script exits — no chain of
    processes, no hang."""
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent("""
        import torch
        from asam_theory.torch import AsyncSAM, WorkerOptions

        class Quad:
            def __call__(self, params, batch):
                return (params[0] ** 2).sum()

        w = torch.nn.Parameter(torch.ones(3))
        AsyncSAM([w], torch.optim.SGD, lr=0.1, ascent_loss=Quad(),
                 worker=WorkerOptions(backend="process", timeout=60))
        print("CONSTRUCTED")
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode != 0 and "CONSTRUCTED" not in out.stdout
    assert "while starting" in out.stderr and "__main__" in out.stderr, out.stderr[-2000:]


def test_a_killed_worker_gives_a_clear_error_at_the_next_step_not_a_hang():
    w = nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = AsyncSAM([w], torch.optim.SGD, rho=0.1, lr=0.05, ascent_loss=quad,
                   worker=WorkerOptions(backend="process", timeout=60))

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = quad([w])
        loss.backward()
        return loss

    with opt:
        opt.step(closure)
        pid = opt._directions.pid
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match=r"died with exit code -9 \(killed by SIGKILL"):
            for _ in range(5):
                opt.step(closure)
        assert time.monotonic() - t0 < 10.0  # detected by the pipe, not by the 60 s timeout
    assert not worker_pid_alive(pid)


def test_a_slow_worker_times_out_saying_what_it_does():
    w = nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = AsyncSAM([w], torch.optim.SGD, rho=0.1, lr=0.05, ascent_loss=Sleepy(30.0),
                   worker=WorkerOptions(backend="process", timeout=1.0))
    with pytest.raises(TimeoutError, match="computing the ascent direction of version 0"):
        opt.step(lambda: quad([w]))
    opt._directions.close(join_timeout=0.5)  # a hung worker is terminated, not waited for
    assert not opt._directions.alive
    opt.close()


# ----------------------------------------------------------------------------- lifecycle


def _started(tmp_path) -> tuple[AsyncSAM, nn.Parameter, int]:
    w = nn.Parameter(torch.ones(4, dtype=torch.float64))
    pidfile = tmp_path / "pid"
    opt = AsyncSAM([w], torch.optim.SGD, rho=0.1, lr=0.05, ascent_loss=PidLoss(str(pidfile)),
                   worker=WorkerOptions(backend="process"))

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = quad([w])
        loss.backward()
        return loss

    opt.step(closure)
    pid = int(pidfile.read_text())
    assert pid == opt._directions.pid != os.getpid()  # the ascent ran in the worker process
    return opt, w, pid


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while worker_pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not worker_pid_alive(pid)


def test_close_stops_the_worker_process(tmp_path):
    opt, _, pid = _started(tmp_path)
    opt.close()
    opt.close()  # idempotent
    assert _gone(pid)
    with pytest.raises(RuntimeError, match="closed"):
        opt.step(lambda: torch.zeros(()))


def test_with_block_stops_the_worker_process(tmp_path):
    opt, _, pid = _started(tmp_path)
    with opt:
        pass
    assert _gone(pid)


def test_garbage_collection_stops_the_worker_process(tmp_path):
    opt, _, pid = _started(tmp_path)
    del opt
    gc.collect()
    assert _gone(pid)


def test_keyboard_interrupt_in_the_step_stops_the_worker_process(tmp_path):
    opt, w, pid = _started(tmp_path)

    def closure() -> torch.Tensor:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        opt.step(closure)
    assert _gone(pid)
    assert torch.equal(w.detach(), w.data)  # the parameter is back on its own storage


def test_the_worker_exits_when_the_training_process_dies(tmp_path):
    # the training process ends without closing (os._exit skips every cleanup): its worker
    # sees the pipe close and exits by itself
    script = textwrap.dedent(f"""
        import os, sys, torch
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from process_helpers import quad
        from asam_theory.torch import AsyncSAM, WorkerOptions
        if __name__ == "__main__":
            w = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
            opt = AsyncSAM([w], torch.optim.SGD, lr=0.1, ascent_loss=quad,
                           worker=WorkerOptions(backend="process"))
            print(opt._directions.pid, flush=True)
            os._exit(0)
    """)
    path = tmp_path / "orphan.py"
    path.write_text(script)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         timeout=120)
    pid = int(out.stdout.split()[0])
    assert _gone(pid, within=15.0), f"worker {pid} outlived its training process"


# ----------------------------------------------------------------------------- choosing


def test_choose_backend_picks_the_faster_and_skips_one_that_cannot_start():
    from asam_theory.torch.backend_choice import choose_backend

    clock = {"t": 0.0}
    cost = {"thread": 2.0, "process": 1.0}
    closed = []

    class Fake:
        def __init__(self, name):
            self.name = name

        def close(self):
            closed.append(self.name)

    def build(name):
        def step():
            clock["t"] += cost[name]
        return Fake(name), step

    got = choose_backend(build, rounds=3, steps=2, clock=lambda: clock["t"])
    assert got.backend == "process" and got.step_s == {"thread": 2.0, "process": 1.0}
    assert sorted(closed) == ["process", "thread"]
    cost["thread"] = 0.5
    assert choose_backend(build, clock=lambda: clock["t"]).backend == "thread"

    def fails(name):
        if name == "process":
            raise ValueError("ascent_loss cannot be sent to the ascent worker process")
        return build(name)

    got = choose_backend(fails, clock=lambda: clock["t"])
    assert got.backend == "thread" and "cannot be sent" in got.unavailable["process"]


def test_tuned_measures_both_backends_on_a_copy_of_the_model():
    model = net()
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randn(128, 10, dtype=torch.float64), torch.randint(0, 3, (128,))
    with AsyncSAM.tuned(model.parameters(), torch.optim.SGD, lr=0.1, descent_batch_size=32,
                        ascent_loss=criterion, ascent_batches=IndexSampler(x, y, 0),
                        model=model, candidates=[4, 8]) as opt:
        choice = opt.backend_choice
        assert set(choice.step_s) == {"thread", "process"} and choice.unavailable == {}
        assert opt.backend == choice.backend == min(choice.step_s, key=choice.step_s.get)
    for a, b in zip(before, model.parameters(), strict=True):
        assert torch.equal(a, b.detach())  # the trial steps ran on a copy
