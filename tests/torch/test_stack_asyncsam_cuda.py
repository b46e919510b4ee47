"""AsyncSAM's training stack on a CUDA device (skipped where there is none): the descent on
``cuda:0`` with the ascent on the CPU (worker thread and worker process) or on a second GPU,
float16 autocast with a ``torch.amp.GradScaler("cuda")``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from asyncsam_cases import RecordingLoss, records, weights
from stack_cases import batches, mlp

from asam_theory.torch import AsyncSAM, WorkerOptions

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA device (cuda:0); none on this machine")
DEV = torch.device("cuda", 0)
WORKER_BACKENDS = ("thread", "process")


def _on_cuda(model, backend, ascent_device="cpu", loss_fn=None, **kwargs) -> AsyncSAM:
    """AsyncSAM on a model on cuda:0, its ascent on ``ascent_device``, at max_staleness = τ."""
    return AsyncSAM.for_model(model, torch.nn.CrossEntropyLoss() if loss_fn is None else loss_fn,
                              torch.optim.SGD, rho=0.05, tau=1, lr=0.1, momentum=0.9,
                              worker=WorkerOptions(device=ascent_device, backend=backend,
                                                   max_staleness=1), **kwargs)


@pytest.mark.parametrize("backend", WORKER_BACKENDS)
def test_cuda_descent_cpu_ascent_scaler_power_of_two_equals_unscaled(backend):
    """Descent on cuda:0, ascent on the CPU: a GradScaler("cuda") at 2¹² gives the unscaled
    run's weights (a power of two is exact; cuBLAS may pick other algorithms between runs, so
    float32 rounding is allowed: torch's default float32 tolerance)."""
    out = []
    for scaler in (None, torch.amp.GradScaler("cuda", init_scale=2.0**12,
                                               growth_interval=10**6)):
        model = mlp().to(DEV)
        with _on_cuda(model, backend) as opt:
            for x, y in batches(5):
                opt.step(x.to(DEV), y.to(DEV), scaler=scaler)
                if scaler is not None:
                    scaler.update()
            assert opt.skipped_steps == 0
        out.append(weights(model))
    for p, q in zip(*out, strict=True):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("backend", WORKER_BACKENDS)
def test_cuda_autocast_float16_scaler_asyncsam_skips_only_overflowing_steps(backend, tmp_path):
    """float16 autocast on cuda:0 with the default GradScaler (2¹⁶), the ascent on the CPU
    under the same autocast dtype (read on cuda, entered on the CPU by the worker): every
    step either moves the weights or, when a gradient or the direction overflowed, leaves
    them exactly as they were and halves the scale; an inf in the batch of step 10 skips step
    10 and step 11 (whose direction was computed on that batch); the loss falls."""
    path = str(tmp_path / "calls.jsonl")
    torch.manual_seed(0)
    model = mlp().to(DEV)
    scaler = torch.amp.GradScaler("cuda")
    x, y = (t.to(DEV) for t in batches(1, n=64)[0])
    history = []  # per step: (skipped, moved, scale after / scale before, loss at w)
    with _on_cuda(model, backend, loss_fn=RecordingLoss(path), ascent_batch_size=16,
                  max_grad_norm=1.0) as opt:
        for step in range(30):
            xs = x.clone()
            xs[:, 0] += float("inf") if step == 10 else 0.0
            before, scale, n_skipped = weights(model), scaler.get_scale(), opt.skipped_steps
            with torch.autocast("cuda", dtype=torch.float16):
                opt.step(xs, y, scaler=scaler)
            scaler.update()
            history.append((opt.skipped_steps > n_skipped,
                            any(not torch.equal(a, b) for a, b in zip(weights(model), before,
                                                                      strict=True)),
                            scaler.get_scale() / scale, float(F.cross_entropy(model(x), y))))
    assert all((moved, ratio) == ((False, 0.5) if skip else (True, 1.0))
               for skip, moved, ratio, _ in history)
    assert history[10][0] and history[11][0]
    kept = [loss for skip, _, _, loss in history if not skip]
    assert kept[-1] < kept[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    ascent = [c for c in records(path) if c["n"] == 16]
    assert ascent and all(c["enabled"] and c["out"] == "torch.float16" for c in ascent)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs a second CUDA device")
@pytest.mark.parametrize("backend", WORKER_BACKENDS)
def test_cuda_ascent_on_a_second_device_with_scaler_equals_the_same_device(backend):
    """The ascent on cuda:1 gives the run with the ascent on cuda:0 (same kernels on the same
    GPU model: float32 rounding at most), with a GradScaler at 2¹² on both."""
    out = []
    for device in ("cuda:1", "cuda:0"):
        model = mlp().to(DEV)
        scaler = torch.amp.GradScaler("cuda", init_scale=2.0**12, growth_interval=10**6)
        with _on_cuda(model, backend, ascent_device=device) as opt:
            for x, y in batches(5):
                opt.step(x.to(DEV), y.to(DEV), scaler=scaler)
                scaler.update()
        out.append(weights(model))
    for p, q in zip(*out, strict=True):
        torch.testing.assert_close(p, q)
