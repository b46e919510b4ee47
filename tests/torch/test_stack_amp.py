"""Mixed precision for the SAM family (:mod:`asam_theory.torch.stack`): bfloat16 autocast on
the CPU for every optimizer, and ``torch.amp.GradScaler`` — updates with a power-of-two scale
equal the unscaled run, an inf/NaN skips exactly its step, the scaler backs off once per step.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from stack_cases import (
    CASES,
    CLOSURE_CASES,
    IDS,
    batches,
    fixed_scaler,
    mlp,
    params_of,
    run,
    train_step,
)
from torch import nn

from asam_theory.torch import SAM, SAMPa

SCALE = 2.0**12


@pytest.fixture(autouse=True)
def no_leftover_autocast():
    """Each test leaves CPU autocast as it found it (disabled): a leaked autocast would run
    the next tests' passes in bfloat16."""
    assert not torch.is_autocast_enabled("cpu")
    yield
    assert not torch.is_autocast_enabled("cpu")


def _assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q), float((p - q).abs().max())


def _relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    num = sum(float((p - q).double().pow(2).sum()) for p, q in zip(a, b, strict=True))
    den = sum(float(q.double().pow(2).sum()) for q in b)
    return (num / den) ** 0.5


# -- autocast -----------------------------------------------------------------------------------
#: bfloat16 keeps 8 significant bits (unit roundoff u = 2⁻⁸ ≈ 0.0039); a step of this 2-layer
#: MLP rounds the inputs of 3 matrix products per pass over 2 passes (forward and backward of
#: the ascent and the descent), so its update carries a relative error of about 6u ≈ 0.023
#: when every rounding adds up; 0.05 leaves a factor 2 (fixed before any run).  A discrete
#: choice made from bfloat16 numbers (K-SAM's top-k of the losses, SSAM's top-k of the Fisher
#: entries) could differ from the float32 one on other data; on this batch none does.
BF16_UPDATE_RTOL = 0.05


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_autocast_bfloat16_every_forward_and_float32_weights(case):
    """Under CPU autocast (bfloat16) every forward pass of a step — the optimizer's own
    passes included — runs in bfloat16, the weights stay float32 and finite, and one step's
    update is the float32 update to bfloat16 precision."""
    model = mlp()
    dtypes: list[torch.dtype] = []
    model[0].register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    opt = case.build(model.parameters(), model)
    w0 = params_of(model)
    x, y = batches(1)[0]
    train_step(case, opt, model, x, y, autocast=torch.bfloat16)
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    w1 = params_of(model)
    assert any(not torch.equal(a, b) for a, b in zip(w0, w1, strict=True))
    ref = mlp()
    ref_opt = case.build(ref.parameters(), ref)
    train_step(case, ref_opt, ref, x, y)
    upd = [a - b for a, b in zip(w1, w0, strict=True)]
    ref_upd = [a - b for a, b in zip(params_of(ref), w0, strict=True)]
    assert _relative(upd, ref_upd) <= BF16_UPDATE_RTOL


def test_autocast_one_region_around_the_whole_step_sees_the_perturbed_weights():
    """Autocast caches its bfloat16 copy of each weight until the outermost autocast region
    closes — an enabled one, or a disabled one (``enabled=False``, the usual switch of a
    training script) — and an in-place change does not invalidate it.  SAM's step changes the
    weights in place and drops that cache, so every pass sees the current weights: with an
    outer region enabled, disabled, or absent, the steps are the same bit for bit (with the
    stale copy the descent pass would run at w, not at w + ε)."""
    x, y = batches(1)[0]
    out = []
    for outer in (True, False, None):
        model = mlp()
        opt = SAM(model.parameters(), torch.optim.SGD, rho=0.5, lr=0.1)
        region = (contextlib.nullcontext() if outer is None
                  else torch.autocast("cpu", dtype=torch.bfloat16, enabled=outer))
        with region:
            for _ in range(2):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = F.cross_entropy(model(x), y)
                loss.backward()

                def closure(model=model):
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        inner = F.cross_entropy(model(x), y)
                    inner.backward()
                    return inner

                opt.step(closure)
                opt.zero_grad()
        out.append(params_of(model))
    _assert_same(out[0], out[2])
    _assert_same(out[1], out[2])


@pytest.mark.parametrize("concurrent", [False, True], ids=["sequential", "worker-thread"])
def test_autocast_bfloat16_sampa_y_gradient_in_worker(concurrent, no_leftover_threads):
    """SAMPa's y-gradient runs under the caller's autocast, in its worker thread too
    (autocast is per thread: the worker enters the state read on the main thread)."""
    model = mlp()
    dtypes: list[torch.dtype] = []
    model[0].register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))

    def loss_fn(m, batch):
        x, y = batch
        return F.cross_entropy(m(x), y)

    ref = mlp()
    w0 = params_of(model)
    kw = dict(concurrent=concurrent, start="gradient", lr=0.1)
    with SAMPa(model.parameters(), torch.optim.SGD, model, loss_fn, **kw) as opt, \
            SAMPa(ref.parameters(), torch.optim.SGD, ref, loss_fn, **kw) as ref_opt:
        replica = opt._computer.replica
        replica_dtypes: list[torch.dtype] = []
        replica[0].register_forward_hook(lambda m, i, out: replica_dtypes.append(out.dtype))
        for x, y in batches(2):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                opt.step((x, y))
            ref_opt.step((x, y))
    assert set(dtypes) == {torch.bfloat16}
    assert replica_dtypes and set(replica_dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    upd = [a - b for a, b in zip(params_of(model), w0, strict=True)]
    ref_upd = [a - b for a, b in zip(params_of(ref), w0, strict=True)]
    assert _relative(upd, ref_upd) <= BF16_UPDATE_RTOL


# -- GradScaler ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_scaler_power_of_two_equals_unscaled_float32(case):
    """With a scale of 2¹² the weights after every step equal the run without a scaler bit for
    bit: multiplying by a power of two is exact in binary floating point (no overflow or
    underflow at these magnitudes), so the scaled backward gives 2¹²·g exactly and unscaling
    returns g exactly — the tolerance is 0."""
    plain = run(case, 5)
    scaler = fixed_scaler(SCALE)
    model = mlp()
    opt = case.build(model.parameters(), model)
    for (x, y), ref in zip(batches(5), plain, strict=True):
        train_step(case, opt, model, x, y, scaler=scaler)
        scaler.update()
        _assert_same(params_of(model), ref)
    assert scaler.get_scale() == SCALE and opt.skipped_steps == 0


def _inject_inf(x: torch.Tensor) -> torch.Tensor:
    """The batch with an inf in every sample (so that any subset a method draws has one)."""
    x = x.clone()
    x[:, 0] = float("inf")
    return x


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_scaler_injected_inf_skips_exactly_that_step(case):
    """An inf in every sample of step 2 makes both passes' gradients non-finite: that step leaves
    the weights and the method's step counter as they were, the scale halves once, and the
    next step proceeds (weights move, scale kept)."""
    scaler = fixed_scaler(SCALE)
    model = mlp()
    opt = case.build(model.parameters(), model)
    data = batches(4)
    for i, (x, y) in enumerate(data):
        before, t_before = params_of(model), opt.t
        train_step(case, opt, model, _inject_inf(x) if i == 2 else x, y, scaler=scaler)
        scaler.update()
        after = params_of(model)
        if i == 2:
            _assert_same(after, before)
            assert opt.t == t_before and opt.skipped_steps == 1
            assert scaler.get_scale() == SCALE / 2
        else:
            assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
            assert opt.t == t_before + 1
            assert scaler.get_scale() == (SCALE if i < 2 else SCALE / 2)
    assert opt.skipped_steps == 1


@pytest.mark.parametrize("case", CLOSURE_CASES, ids=[c.name for c in CLOSURE_CASES])
def test_scaler_inf_in_descent_removes_the_perturbation(case):
    """An inf only in the closure's loss (the descent pass at w + ε, step 0, where every
    closure-form method perturbs): the perturbation is removed, no base step, the method
    state (step counter, statistics) is as before, the scale halves once."""
    scaler = fixed_scaler(SCALE)
    model = mlp()
    opt = case.build(model.parameters(), model)
    state_before = opt._method_state()
    before = params_of(model)
    x, y = batches(1)[0]
    train_step(case, opt, model, x, y, scaler=scaler, descent_inf=True)
    scaler.update()
    _assert_same(params_of(model), before)
    assert scaler.get_scale() == SCALE / 2 and opt.skipped_steps == 1
    state_after = opt._method_state()
    assert state_after["t"] == state_before["t"] == 0
    assert not any("old_p" in opt.state[p] for p in model.parameters())
    # the retried step proceeds as a first step would
    train_step(case, opt, model, x, y, scaler=scaler)
    scaler.update()
    ref_model = mlp()
    ref_opt = case.build(ref_model.parameters(), ref_model)
    train_step(case, ref_opt, ref_model, x, y)
    _assert_same(params_of(model), params_of(ref_model))


def _two_step(model, opt, x, y, scaler, inf_in=()):
    def backward(loss, name):
        if name in inf_in:
            loss = loss * float("inf")
        scaler.scale(loss).backward()

    backward(F.cross_entropy(model(x), y), "ascent")
    opt.first_step(zero_grad=True, scaler=scaler)
    backward(F.cross_entropy(model(x), y), "descent")
    opt.second_step(zero_grad=True, scaler=scaler)
    scaler.update()


@pytest.mark.parametrize("inf_in", [(), ("ascent",), ("descent",), ("ascent", "descent")],
                         ids=["none", "ascent", "descent", "both"])
def test_scaler_sam_two_step_form_updates_once_per_step(inf_in):
    """davda54/sam's ``first_step``/``second_step`` with ``scaler=``: equal to the closure form
    without infs; with an inf in either pass or both the step is skipped and the scale halves
    exactly once (the scaler's update sums both passes' records)."""
    model, ref = mlp(), mlp()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    ref_opt = SAM(ref.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    scaler = fixed_scaler(SCALE)
    x, y = batches(1)[0]
    before = params_of(model)
    _two_step(model, opt, x, y, scaler, inf_in)
    if inf_in:
        _assert_same(params_of(model), before)
        assert scaler.get_scale() == SCALE / 2 and opt.t == 0
    else:
        F.cross_entropy(ref(x), y).backward()
        ref_opt.step(lambda: F.cross_entropy(ref(x), y).backward())
        _assert_same(params_of(model), params_of(ref))
        assert scaler.get_scale() == SCALE and opt.t == 1


def test_scaler_second_step_needs_the_same_scaler():
    model = mlp()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1)
    scaler = fixed_scaler(SCALE)
    x, y = batches(1)[0]
    scaler.scale(F.cross_entropy(model(x), y)).backward()
    opt.first_step(zero_grad=True, scaler=scaler)
    scaler.scale(F.cross_entropy(model(x), y)).backward()
    with pytest.raises(ValueError, match="scaler must be the one given to first_step"):
        opt.second_step()


def test_scaler_rejects_other_objects():
    model = mlp()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1)
    F.cross_entropy(model(torch.randn(4, 6)), torch.zeros(4, dtype=torch.long)).backward()
    with pytest.raises(ValueError, match="scaler must be None or a torch.amp.GradScaler"):
        opt.first_step(scaler=2.0**16)


def test_scaler_with_bfloat16_autocast_and_batchnorm_trains():
    """The whole stack at once on a BatchNorm model: bfloat16 autocast, a GradScaler,
    ``max_grad_norm``; on a fixed batch (small steps of descent on one loss) the loss falls
    over 30 steps and no step is skipped (bfloat16 has float32's range: nothing overflows)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, model=model, max_grad_norm=1.0,
              lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu")
    x, y = batches(1, n=64)[0]
    losses = []
    for _ in range(30):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()

        def closure():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                inner = F.cross_entropy(model(x), y)
            scaler.scale(inner).backward()
            return inner

        opt.step(closure, scaler=scaler)
        scaler.update()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert opt.skipped_steps == 0 and scaler.get_scale() == 2.0**16
