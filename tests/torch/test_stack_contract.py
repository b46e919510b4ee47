"""The rest of the training-stack contract for the SAM family: ``channels_last`` models,
``add_param_group``, LR schedulers and ``state_dict`` with the scaler and clipping, and
``recalibrate_bn`` in :mod:`asam_theory.torch`."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from stack_cases import CASES, IDS, N_CLASSES, N, fixed_scaler, mlp, params_of, train_step
from torch import nn

from asam_theory.torch import SAMPa, recalibrate_bn

CL = torch.channels_last


def convnet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3),
                         nn.Tanh(), nn.Flatten(), nn.Linear(4 * 4 * 4, N_CLASSES)).double()


def image_batches(steps: int, seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(N, 2, 6, 6, generator=g, dtype=torch.float64),
             torch.randint(0, N_CLASSES, (N,), generator=g)) for _ in range(steps)]


# -- channels_last ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_channels_last_kept_across_steps_and_same_update(case):
    """A channels_last conv model keeps channels_last weights after every step (the
    perturbation, its removal and the base step all work in place), and its trajectory is the
    contiguous model's to float64 rounding (the conv kernels of the two layouts sum in
    different orders: 1e-10 relative is far above that, far below any real difference)."""
    model, ref = convnet().to(memory_format=CL), convnet()
    opt = case.build(model.parameters(), model)
    ref_opt = case.build(ref.parameters(), ref)
    four_d = [p for p in model.parameters() if p.dim() == 4]
    assert four_d and all(p.is_contiguous(memory_format=CL) for p in four_d)
    for x, y in image_batches(3):
        train_step(case, opt, model, x.contiguous(memory_format=CL), y)
        train_step(case, ref_opt, ref, x, y)
        assert all(p.is_contiguous(memory_format=CL) for p in four_d)
        for p, q in zip(params_of(model), params_of(ref), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


# -- add_param_group ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_add_param_group_works_or_is_refused(case):
    """Adding the last layer as a second group (its own lr) after construction gives the
    optimizer built with both groups, bit for bit; SSAM refuses with a ValueError that says
    why."""
    model, ref = mlp(torch.float64), mlp(torch.float64)
    first = lambda m: list(m[0].parameters())  # noqa: E731
    second = lambda m: {"params": list(m[2].parameters()), "lr": 0.03}  # noqa: E731
    opt = case.build(first(model), model)
    if case.name == "SSAM":
        with pytest.raises(ValueError, match="add_param_group.*mask"):
            opt.add_param_group(second(model))
        return
    opt.add_param_group(second(model))
    ref_opt = case.build([{"params": first(ref)}, second(ref)], ref)
    assert len(opt.param_groups) == 2 and opt.base_optimizer.param_groups is opt.param_groups
    assert opt.param_groups[1]["lr"] == 0.03 and opt.param_groups[1]["rho"] == \
        ref_opt.param_groups[1]["rho"]
    before = params_of(model)
    for x, y in [(torch.randn(N, 6, dtype=torch.float64), torch.arange(N) % N_CLASSES)] * 3:
        train_step(case, opt, model, x, y)
        train_step(case, ref_opt, ref, x, y)
    after = params_of(model)
    for p, q in zip(after, params_of(ref), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(after[-1], before[-1])  # the added group is stepped


def test_add_param_group_sampa_is_refused():
    model = mlp()
    opt = SAMPa(list(model[0].parameters()), torch.optim.SGD, model,
                lambda m, b: F.cross_entropy(m(b[0]), b[1]), concurrent=False, lr=0.1)
    with pytest.raises(ValueError, match="SAMPa does not support add_param_group"):
        opt.add_param_group({"params": list(model[2].parameters())})


# -- schedulers and state_dict ------------------------------------------------------------------
def _inf_at(x, t):
    if t != 1:
        return x
    x = x.clone()
    x[:, 0] = float("inf")
    return x


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_scaler_max_grad_norm_scheduler_state_dict_resume(case):
    """A run with a GradScaler (an inf at step 1, so its scale changes), ``max_grad_norm`` and
    a StepLR schedule attached to the optimizer, saved after step 2 and resumed into fresh
    objects, continues exactly as the uninterrupted run (bit for bit)."""
    data = [(torch.randn(N, 6), torch.arange(N) % N_CLASSES) for _ in range(5)]

    def fresh():
        model = mlp()
        opt = case.build(model.parameters(), model, max_grad_norm=0.3)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        return model, opt, fixed_scaler(2.0**8), sched

    def steps(objs, ts):
        model, opt, scaler, sched = objs
        for t in ts:
            x, y = data[t]
            train_step(case, opt, model, _inf_at(x, t), y, scaler=scaler)
            scaler.update()
            sched.step()

    full = fresh()
    steps(full, range(5))
    part = fresh()
    steps(part, range(3))
    saved = [o.state_dict() for o in part]
    resumed = fresh()
    for o, sd in zip(resumed, saved, strict=True):
        o.load_state_dict(sd)
    steps(resumed, range(3, 5))
    for p, q in zip(params_of(resumed[0]), params_of(full[0]), strict=True):
        assert torch.equal(p, q)
    assert resumed[1].param_groups[0]["lr"] == full[1].param_groups[0]["lr"] == 0.1 * 0.5**2
    assert resumed[2].get_scale() == full[2].get_scale() == 2.0**7
    assert resumed[1].t == full[1].t == 4


# -- recalibrate_bn -----------------------------------------------------------------------------
def test_recalibrate_bn_exported_and_equal_to_update_bn():
    """``asam_theory.torch.recalibrate_bn`` (also the name the experiments use) gives the
    running statistics of ``torch.optim.swa_utils.update_bn`` over the same batches, and
    restores momentum and train/eval mode."""
    from asam_theory.experiments import training

    assert training.recalibrate_bn is recalibrate_bn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8, momentum=0.3), nn.ReLU(),
                          nn.Linear(8, 3)).double()
    ref = copy.deepcopy(model)
    x = torch.randn(100, 6, dtype=torch.float64) * 3 + 1
    model.eval()
    recalibrate_bn(model, x, batch_size=32)
    torch.optim.swa_utils.update_bn([(x[i:i + 32],) for i in range(0, 100, 32)], ref)
    bn, bn_ref = model[1], ref[1]
    torch.testing.assert_close(bn.running_mean, bn_ref.running_mean, rtol=1e-12, atol=0)
    torch.testing.assert_close(bn.running_var, bn_ref.running_var, rtol=1e-12, atol=0)
    assert bn.momentum == 0.3 and not model.training
    with pytest.raises(ValueError, match="batch_size"):
        recalibrate_bn(model, x, batch_size=0)


# -- SAMPa ---------------------------------------------------------------------------------------
def _sampa(model, **kw):
    return SAMPa(model.parameters(), torch.optim.SGD, model,
                 lambda m, b: F.cross_entropy(m(b[0]), b[1]), concurrent=False,
                 start="gradient", lr=0.1, momentum=0.9, **kw)


def test_channels_last_sampa_kept_and_same_update():
    """SAMPa on a channels_last conv model: weights stay channels_last, trajectory equal to
    the contiguous model's to float64 rounding (as for the SAM family above)."""
    model, ref = convnet().to(memory_format=CL), convnet()
    opt, ref_opt = _sampa(model), _sampa(ref)
    four_d = [p for p in model.parameters() if p.dim() == 4]
    for x, y in image_batches(3):
        opt.step((x.contiguous(memory_format=CL), y))
        ref_opt.step((x, y))
        assert all(p.is_contiguous(memory_format=CL) for p in four_d)
    for p, q in zip(params_of(model), params_of(ref), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_max_grad_norm_sampa_scheduler_state_dict_resume():
    """SAMPa with ``max_grad_norm`` and a StepLR schedule, saved after 2 steps and resumed
    into fresh objects, continues exactly as the uninterrupted run."""
    data = [(torch.randn(N, 6), torch.arange(N) % N_CLASSES) for _ in range(4)]

    def fresh():
        model = mlp()
        opt = _sampa(model, max_grad_norm=0.3)
        return model, opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    def steps(objs, ts):
        for t in ts:
            objs[1].step(data[t])
            objs[2].step()

    full, part = fresh(), fresh()
    steps(full, range(4))
    steps(part, range(2))
    resumed = fresh()
    for o, src in zip(resumed, part, strict=True):
        o.load_state_dict(src.state_dict())
    steps(resumed, range(2, 4))
    for p, q in zip(params_of(resumed[0]), params_of(full[0]), strict=True):
        assert torch.equal(p, q)
    assert resumed[1].param_groups[0]["lr"] == full[1].param_groups[0]["lr"] == 0.1 * 0.5**4


# -- README --------------------------------------------------------------------------------------
def test_readme_training_stack_section_has_an_example_per_item():
    """The README's "In your training stack" section shows each item in a python block (the
    README test runs them) and the torchrun command."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("## In your training stack", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(section.split("```python")[1:])
    for needle in ("torch.autocast(", "scaler=scaler", "scaler.update()", "ascent_pass(ddp)",
                   "accumulate(", "max_grad_norm=", "channels_last", "torch.compile(",
                   "lr_scheduler", "state_dict()", "recalibrate_bn("):
        assert needle in code, needle
    assert "torchrun --nproc_per_node 2" in section
