"""``max_grad_norm=``: the descent gradient is clipped with ``torch.nn.utils.clip_grad_norm_``
before the base step, in the closure form and the batch form, and in SAMPa."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from stack_cases import CASES, IDS, ClipThenSGD, batches, mlp, params_of, run

from asam_theory.torch import SAM, SAMPa

#: far below the gradient norms of this model and data (‖g‖ between 0.3 and 0.6 on its four
#: batches at the initial weights), so clipping acts on every step
MAX_NORM = 0.05


def _assert_same(a, b):
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q), float((p - q).abs().max())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_grad_norm_equals_clip_grad_norm_before_the_base_step(case):
    """``max_grad_norm=c`` gives, bit for bit in float64, the trajectory of the same method
    whose base optimizer calls ``clip_grad_norm_(params, c)`` first; and it differs from the
    unclipped trajectory (clipping acts)."""
    clipped = run(case, 4, dtype=torch.float64, max_grad_norm=MAX_NORM)
    reference = run(case, 4, dtype=torch.float64,
                    base=functools.partial(ClipThenSGD, max_norm=MAX_NORM))
    plain = run(case, 4, dtype=torch.float64)
    for a, b in zip(clipped, reference, strict=True):
        _assert_same(a, b)
    assert any(not torch.equal(p, q) for p, q in zip(clipped[-1], plain[-1], strict=True))


def test_max_grad_norm_sam_equals_davda54_loop_with_clip_grad_norm():
    """SAM with ``max_grad_norm`` ≡ the davda54/sam loop with ``clip_grad_norm_`` called on
    the descent gradient just before ``second_step`` (float64, bit for bit)."""
    model, ref = mlp(torch.float64), mlp(torch.float64)
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, max_grad_norm=MAX_NORM, lr=0.1,
              momentum=0.9)
    ref_opt = SAM(ref.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    for x, y in batches(4, torch.float64):
        F.cross_entropy(model(x), y).backward()
        opt.step(lambda x=x, y=y: F.cross_entropy(model(x), y).backward())
        opt.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        ref_opt.first_step(zero_grad=True)
        F.cross_entropy(ref(x), y).backward()
        norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), MAX_NORM)
        assert norm > MAX_NORM  # clipping acts
        ref_opt.second_step(zero_grad=True)
        _assert_same(params_of(model), params_of(ref))


def test_max_grad_norm_sampa_clips_the_mixed_gradient():
    """SAMPa clips (1 − λ)∇f(x̃) + λ∇f(y) before its base step: equal to SAMPa on a base
    optimizer that clips first (float64, sequential mode)."""
    def loss_fn(m, batch):
        return F.cross_entropy(m(batch[0]), batch[1])

    out = []
    for base, kw in ((torch.optim.SGD, {"max_grad_norm": MAX_NORM}),
                     (functools.partial(ClipThenSGD, max_norm=MAX_NORM), {}),
                     (torch.optim.SGD, {})):
        model = mlp(torch.float64)
        opt = SAMPa(model.parameters(), base, model, loss_fn, concurrent=False,
                    start="gradient", lr=0.1, **kw)
        for batch in batches(3, torch.float64):
            opt.step(batch)
        out.append(params_of(model))
    _assert_same(out[0], out[1])
    assert any(not torch.equal(p, q) for p, q in zip(out[0], out[2], strict=True))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), "1"])
def test_max_grad_norm_rejects_bad_values(bad):
    model = mlp()
    with pytest.raises(ValueError, match="max_grad_norm"):
        SAM(model.parameters(), torch.optim.SGD, max_grad_norm=bad, lr=0.1)
