"""The training stack on a CUDA device (skipped where there is none): float16 autocast with a
``torch.amp.GradScaler("cuda")`` for SAM and the rest of the family on ``cuda:0``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from stack_cases import CASES, IDS, batches, mlp, params_of, train_step

from asam_theory.torch import SAM

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA device (cuda:0); none on this machine")
DEV = torch.device("cuda", 0)


def _cuda_scaler(scale: float) -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cuda", init_scale=scale, growth_interval=10**6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cuda_scaler_power_of_two_equals_unscaled(case):
    """On cuda:0 in float32, a scale of 2¹² gives the unscaled run's weights (multiplying by a
    power of two is exact; cuBLAS may pick other algorithms between runs, so the comparison
    allows float32 rounding: torch's default float32 tolerance)."""
    out = []
    for scaler in (None, _cuda_scaler(2.0**12)):
        model = mlp().to(DEV)
        opt = case.build(model.parameters(), model)
        for x, y in batches(4):
            train_step(case, opt, model, x.to(DEV), y.to(DEV), scaler=scaler)
            if scaler is not None:
                scaler.update()
        out.append(params_of(model))
    for p, q in zip(*out, strict=True):
        torch.testing.assert_close(p, q)


def test_cuda_autocast_float16_scaler_sam_skips_only_overflowing_steps():
    """SAM with float16 autocast and the default GradScaler (2¹⁶): every step either moves the
    weights or — when a pass overflowed — leaves them exactly as they were and halves the
    scale; an injected inf is one such step; the loss on a fixed batch falls."""
    torch.manual_seed(0)
    model = mlp().to(DEV)
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, model=model, max_grad_norm=1.0,
              lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda")
    x, y = (t.to(DEV) for t in batches(1, n=64)[0])
    losses = []
    for step in range(30):
        xs = x.clone()
        if step == 10:
            xs[:, 0] = float("inf")
        before, scale, t = params_of(model), scaler.get_scale(), opt.t
        with torch.autocast("cuda", dtype=torch.float16):
            loss = F.cross_entropy(model(xs), y)
        scaler.scale(loss).backward()

        def closure(xs=xs):
            with torch.autocast("cuda", dtype=torch.float16):
                inner = F.cross_entropy(model(xs), y)
            scaler.scale(inner).backward()
            return inner

        opt.step(closure, scaler=scaler)
        scaler.update()
        opt.zero_grad()
        moved = any(not torch.equal(a, b) for a, b in zip(params_of(model), before,
                                                          strict=True))
        if opt.t == t:  # skipped
            assert not moved and scaler.get_scale() == scale / 2
        else:
            assert moved and scaler.get_scale() == scale
        if step == 10:
            assert opt.t == t
        else:
            losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())
