"""AsyncSAM/SAMPa worker lifecycle: no thread left behind, errors re-raised, timeouts."""

from __future__ import annotations

import gc
import threading
import time
import traceback

import pytest
import torch
from asam_threads import worker_threads
from torch import nn

from asam_theory.experiments.training import IndexSampler, classification_loss
from asam_theory.torch import AscentWorkerError, AsyncSAM, SAMPa, WorkerOptions

pytestmark = pytest.mark.usefixtures("no_leftover_threads")


def setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g)
    return model, x, y


def closure_for(opt, model, batch):
    def closure():
        opt.zero_grad()
        loss = classification_loss(model, batch)
        loss.backward()
        return loss

    return closure


def test_close_joins_worker() -> None:
    model, x, y = setup()
    opt = AsyncSAM(model.parameters(), torch.optim.SGD, lr=0.1, ascent_loss=classification_loss,
                   model=model, ascent_batches=IndexSampler(x, y, 1), ascent_batch_size=8)
    assert len(worker_threads()) == 1
    for _ in range(3):
        opt.step(closure_for(opt, model, (x[:16], y[:16])))
    opt.close()
    assert worker_threads() == []
    opt.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        opt.step(closure_for(opt, model, (x[:16], y[:16])))


def test_context_manager_and_garbage_collection() -> None:
    model, x, y = setup()
    with AsyncSAM(model.parameters(), torch.optim.SGD, lr=0.1, ascent_loss=classification_loss,
                  model=model, ascent_batches=IndexSampler(x, y, 1), ascent_batch_size=8) as opt:
        opt.step(closure_for(opt, model, (x[:16], y[:16])))
        assert len(worker_threads()) == 1
    assert worker_threads() == []
    # dropped without close(): the finaliser stops the thread (the thread holds no reference
    # to the optimizer)
    opt2 = AsyncSAM(model.parameters(), torch.optim.SGD, lr=0.1, ascent_loss=classification_loss,
                    model=model, ascent_batches=IndexSampler(x, y, 1), ascent_batch_size=8)
    opt2.step(closure_for(opt2, model, (x[:16], y[:16])))
    thread = worker_threads()[0]
    del opt2
    gc.collect()
    thread.join(timeout=5.0)
    assert not thread.is_alive()


def failing_ascent_loss(model, batch):
    raise FloatingPointError("boom in the ascent")


def test_worker_exception_is_reraised_with_traceback() -> None:
    model, x, y = setup()
    opt = AsyncSAM(model.parameters(), torch.optim.SGD, lr=0.1, ascent_loss=failing_ascent_loss,
                   model=model, ascent_batches=IndexSampler(x, y, 1), ascent_batch_size=8)
    with pytest.raises(AscentWorkerError, match="boom in the ascent") as info:
        opt.step(closure_for(opt, model, (x[:16], y[:16])))
    cause = info.value.__cause__
    assert isinstance(cause, FloatingPointError)
    frames = [f.name for f in traceback.extract_tb(cause.__traceback__)]
    assert "failing_ascent_loss" in frames  # the worker's own frames travel with it
    assert "failing_ascent_loss" in str(info.value)  # and are printed in the message
    opt.close()


def test_timeout_fires_with_clear_error() -> None:
    model, x, y = setup()

    def slow_loss(m, batch):
        time.sleep(1.0)
        return classification_loss(m, batch)

    opt = AsyncSAM(model.parameters(), torch.optim.SGD, lr=0.1, ascent_loss=slow_loss,
                   model=model, ascent_batches=IndexSampler(x, y, 1), ascent_batch_size=8,
                   worker=WorkerOptions(timeout=0.2))
    with pytest.raises(TimeoutError) as info:
        opt.step(closure_for(opt, model, (x[:16], y[:16])))
    msg = str(info.value)
    assert "timeout=0.2s" in msg and "max_staleness" in msg and "step 0" in msg
    opt.close()


def test_batch_source_error_propagates() -> None:
    model, x, y = setup()
    opt = AsyncSAM(model.parameters(), torch.optim.SGD, lr=0.1, ascent_loss=classification_loss,
                   model=model, ascent_batches=iter([]))
    with pytest.raises(AscentWorkerError, match="StopIteration"):
        opt.step(closure_for(opt, model, (x[:16], y[:16])))
    opt.close()


def test_staleness_bounded_with_slow_ascent() -> None:
    model, x, y = setup()

    def slow_loss(m, batch):
        time.sleep(0.01)
        return classification_loss(m, batch)

    with AsyncSAM(model.parameters(), torch.optim.SGD, lr=0.1, tau=1,
                  worker=WorkerOptions(max_staleness=3), ascent_loss=slow_loss, model=model,
                  ascent_batches=IndexSampler(x, y, 1), ascent_batch_size=8) as opt:
        for _ in range(30):
            opt.step(closure_for(opt, model, (x[:16], y[:16])))
        hist = opt.staleness_history
    assert len(hist) == 30 and hist[0] == 0
    assert all(1 <= s <= 3 for s in hist[1:])
    # the ascent (10 ms sleep) is far slower than the descent step, so the worker lags
    assert max(hist) > 1


def test_sampa_worker_lifecycle_and_error() -> None:
    model, x, y = setup()
    with SAMPa(model.parameters(), torch.optim.SGD, model, classification_loss, lr=0.1) as opt:
        for _ in range(3):
            opt.step((x[:16], y[:16]))
        assert len(worker_threads()) == 1
    assert worker_threads() == []

    calls = {"n": 0}

    def sometimes_failing(m, batch):
        calls["n"] += 1
        if threading.current_thread().name == "sampa-y-gradient":
            raise ArithmeticError("y worker failed")
        return classification_loss(m, batch)

    opt = SAMPa(model.parameters(), torch.optim.SGD, model, sometimes_failing, lr=0.1)
    with pytest.raises(AscentWorkerError, match="y worker failed"):
        opt.step((x[:16], y[:16]))
    opt.close()
