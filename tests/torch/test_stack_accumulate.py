"""Gradient accumulation (:func:`asam_theory.torch.accumulate`): k micro-batches under one
perturbation give the step on their union, for every closure-form optimizer, with and without
a GradScaler, and in davda54/sam's two-step form."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from stack_cases import CLOSURE_CASES, batches, fixed_scaler, mlp, params_of, train_step

from asam_theory.torch import SAM, accumulate
from asam_theory.torch.stack import batch_size_of

SIZES = (5, 3, 4, 4)  # uneven micro-batches of the 16-sample batch: the weights n_i/n matter
#: float64: the union's mean and the weighted sum of micro-batch means differ only by the
#: order of the additions (about 1e-16 relative per operation); over 4 steps of a 2-layer MLP
#: 1e-12 is a wide margin that a wrong weight (n_i/n against 1/k: 25 % apart here) cannot meet.
RTOL = 1e-12


def _split(x, y):
    out, start = [], 0
    for n in SIZES:
        out.append((x[start:start + n], y[start:start + n]))
        start += n
    return out


def _accumulated_step(case, opt, model, x, y, scaler=None):
    micro = _split(x, y)

    def loss_fn(batch):
        return F.cross_entropy(model(batch[0]), batch[1])

    opt.zero_grad()
    with opt.ascent_pass(model):
        accumulate(loss_fn, micro, scaler=scaler)
    return opt.step(lambda: accumulate(loss_fn, micro, scaler=scaler), scaler=scaler,
                    **case.step_options(opt, x, y))


@pytest.mark.parametrize("with_scaler", [False, True], ids=["plain", "scaler"])
@pytest.mark.parametrize("case", CLOSURE_CASES, ids=[c.name for c in CLOSURE_CASES])
def test_accumulate_micro_batches_equal_the_union_step(case, with_scaler):
    model, ref = mlp(torch.float64), mlp(torch.float64)
    opt = case.build(model.parameters(), model)
    ref_opt = case.build(ref.parameters(), ref)
    scaler = fixed_scaler(2.0**10) if with_scaler else None
    for x, y in batches(4, torch.float64):
        loss = _accumulated_step(case, opt, model, x, y, scaler)
        ref_loss = train_step(case, ref_opt, ref, x, y)
        if scaler is not None:
            scaler.update()
        if ref_loss is not None:  # the step called its closure: the union's mean loss
            torch.testing.assert_close(loss, ref_loss.detach(), rtol=RTOL, atol=0)
        for p, q in zip(params_of(model), params_of(ref), strict=True):
            torch.testing.assert_close(p, q, rtol=RTOL, atol=1e-15)
    assert opt.t == ref_opt.t == 4


def test_accumulate_sam_two_step_form():
    """davda54/sam's loop with each backward replaced by :func:`accumulate` equals SAM's step
    on the union."""
    model, ref = mlp(torch.float64), mlp(torch.float64)
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    ref_opt = SAM(ref.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    for x, y in batches(3, torch.float64):
        micro = _split(x, y)

        def loss_fn(batch):
            return F.cross_entropy(model(batch[0]), batch[1])

        accumulate(loss_fn, micro)
        opt.first_step(zero_grad=True)
        accumulate(loss_fn, micro)
        opt.second_step(zero_grad=True)
        F.cross_entropy(ref(x), y).backward()
        ref_opt.step(lambda x=x, y=y: F.cross_entropy(ref(x), y).backward())
        ref_opt.zero_grad()
        for p, q in zip(params_of(model), params_of(ref), strict=True):
            torch.testing.assert_close(p, q, rtol=RTOL, atol=1e-15)


def test_accumulate_weights_each_micro_batch_by_its_size():
    """The accumulated gradient of a linear loss is exactly Σ (n_i/n) ∇L_i; the returned loss
    is the union's mean."""
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    xs = torch.arange(12, dtype=torch.float64).reshape(4, 3)
    micro = [xs[:1], xs[1:]]
    loss = accumulate(lambda b: (b @ w + b.sum(1)).mean(), micro)
    torch.testing.assert_close(w.grad, xs.mean(0), rtol=1e-15, atol=0)
    torch.testing.assert_close(loss, xs.sum(1).mean(), rtol=1e-15, atol=0)


def test_accumulate_rejects_empty_and_unsized_micro_batches():
    with pytest.raises(ValueError, match="micro_batches"):
        accumulate(lambda b: b.sum(), [])
    with pytest.raises(ValueError, match="holds no tensor"):
        batch_size_of({"a": 1})
    assert batch_size_of({"x": torch.zeros(7, 2), "y": [1, 2]}) == 7
