"""LookSAM, AE-SAM, K-SAM and SSAM torch optimizers: engine ≡ torch (float64, same batches)
to 1e-10, counted cost == declared, ρ = 0 → the base optimizer, degenerate settings → SAM,
state dicts, bad inputs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from batch_recorder import Recorder
from torch import nn

from asam_theory.methods import AESAM, KSAM, SSAM, LookSAM
from asam_theory.problems import FiniteSumQuadratic
from asam_theory.rng import SeedStreams
from asam_theory.torch import AESAM as TorchAESAM
from asam_theory.torch import KSAM as TorchKSAM
from asam_theory.torch import SAM as TorchSAM
from asam_theory.torch import SSAM as TorchSSAM
from asam_theory.torch import LookSAM as TorchLookSAM

FS = FiniteSumQuadratic.random(10, 4, seed=7, heterogeneity=1.5)
X0 = np.array([0.8, -0.5, 0.3, 1.1])
STEPS = 15  # a multiple of LookSAM's k = 3 and SSAM's update_freq = 5
BASE = dict(lr=0.1, momentum=0.9, weight_decay=1e-2)


class FSQModule(nn.Module):
    """The finite-sum quadratic as a module: ``forward(idx)`` = per-sample losses."""

    def __init__(self, p: FiniteSumQuadratic, x0: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("H", torch.tensor(p.Hs))
        self.register_buffer("S", torch.tensor(p.S))
        self.w = nn.Parameter(torch.tensor(x0, dtype=torch.float64))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        r = self.w[None, :] - self.S[idx]
        return 0.5 * torch.einsum("bi,bij,bj->b", r, self.H[idx], r)


def identity_criterion(out, targets, reduction="none"):
    assert reduction == "none"
    return out


def _engine(rule, steps=STEPS):
    rec = Recorder(FS)
    streams = SeedStreams([3])
    rule.validate(rec)
    state = rule.init(X0[None, :], rec, streams)
    xs = [state.x[0].copy()]
    for _ in range(steps):
        state, _ = rule.step(state, rec, streams)
        xs.append(state.x[0].copy())
    return np.array(xs), rec.draws, state


def _closure_run(opt, model, batches, masks=None):
    xs = [model.w.detach().numpy().copy()]
    for t, idx in enumerate(batches):
        idx_t = torch.as_tensor(idx[0])

        def closure(idx_t=idx_t):
            loss = model(idx_t).mean()
            loss.backward()
            return loss

        opt.zero_grad()
        model(idx_t).mean().backward()
        kw = {}
        if masks is not None and t % opt.update_freq == 0:
            m = torch.as_tensor(masks[t // opt.update_freq][0])
            kw = {"mask_inputs": m, "mask_targets": torch.zeros(len(m))}
        opt.step(closure, **kw)
        xs.append(model.w.detach().numpy().copy())
    return np.array(xs)


def _torch_run(rule, draws):
    model = FSQModule(FS, X0)
    batches = draws["descent"]
    common = dict(rho=rule.rho, **BASE)
    if isinstance(rule, LookSAM):
        opt = TorchLookSAM(model.parameters(), torch.optim.SGD, k=rule.k, alpha=rule.alpha,
                           **common)
        return _closure_run(opt, model, batches), opt
    if isinstance(rule, AESAM):
        opt = TorchAESAM(model.parameters(), torch.optim.SGD, delta=rule.delta,
                         lambda1=rule.lambda1, lambda2=rule.lambda2,
                         total_steps=rule.total_steps, **common)
        return _closure_run(opt, model, batches), opt
    if isinstance(rule, SSAM):
        dynamic = {}
        if rule.mask == "dynamic":
            init = rule.init(X0[None, :], FS, SeedStreams([3])).extra["mask"]
            dynamic = dict(mask="dynamic", drop_rate=rule.drop_rate,
                           drop_strategy=rule.drop_strategy,
                           growth_strategy=rule.growth_strategy, total_steps=rule.total_steps,
                           initial_mask=[torch.as_tensor(init[0])])
        opt = TorchSSAM(model.parameters(), torch.optim.SGD, sparsity=rule.sparsity,
                        num_samples=rule.num_samples, update_freq=rule.update_freq,
                        mask_start=rule.mask_start, batch_size=rule.batch_size, model=model,
                        criterion=identity_criterion, **dynamic, **common)
        return _closure_run(opt, model, batches, masks=draws.get("mask")), opt
    opt = TorchKSAM(model.parameters(), torch.optim.SGD, model=model,
                    criterion=identity_criterion, k=rule.k, **common)
    xs = [model.w.detach().numpy().copy()]
    for idx in batches:
        idx_t = torch.as_tensor(idx[0])
        opt.step(inputs=idx_t, targets=torch.zeros(len(idx_t)))
        xs.append(model.w.detach().numpy().copy())
    return np.array(xs), opt


RULES = [
    LookSAM(**BASE, batch_size=3, rho=0.2, k=3, alpha=0.7),
    AESAM(**BASE, batch_size=3, rho=0.2, delta=0.8, lambda1=0.5, lambda2=-0.5,
          total_steps=STEPS),
    KSAM(**BASE, batch_size=5, rho=0.2, k=2),
    SSAM(**BASE, batch_size=3, rho=0.2, sparsity=0.5, num_samples=4, update_freq=5),
    SSAM(**BASE, batch_size=3, rho=0.2, sparsity=0.25, num_samples=4, update_freq=5,
         mask_start="after_first_step"),
    SSAM(**BASE, batch_size=3, rho=0.2, sparsity=0.5, update_freq=3, mask="dynamic",
         drop_rate=0.5, drop_strategy="weight", growth_strategy="gradient", total_steps=STEPS),
]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.name}-{getattr(r, 'mask', '')}")
def test_engine_equals_torch_and_counts_equal_declared(rule):
    xs_np, draws, state = _engine(rule)
    xs_t, opt = _torch_run(rule, draws)
    assert np.abs(xs_np[-1] - xs_np[0]).max() > 1e-2  # the run moved
    # float64 on both sides; the difference is accumulated rounding (~1e-15 per step)
    np.testing.assert_allclose(xs_t, xs_np, rtol=0, atol=1e-10)
    declared = rule.realised_cost(state)
    assert opt.counts["grads"] / STEPS == pytest.approx(declared.grads_per_step, rel=1e-12)
    assert opt.counts["forwards"] / STEPS == pytest.approx(declared.forwards_per_step,
                                                           rel=1e-12)


def _sgd_run(batches, **kw):
    model = FSQModule(FS, X0)
    opt = torch.optim.SGD(model.parameters(), **kw)
    for idx in batches:
        opt.zero_grad()
        model(torch.as_tensor(idx[0])).mean().backward()
        opt.step()
    return model.w.detach().numpy()


def test_rho_zero_is_the_base_optimizer_and_degenerate_settings_are_sam():
    for rule in (LookSAM(**BASE, batch_size=3, rho=0.0, k=3),
                 AESAM(**BASE, batch_size=3, rho=0.0),
                 SSAM(**BASE, batch_size=3, rho=0.0, num_samples=4, update_freq=5),
                 KSAM(**BASE, batch_size=3, rho=0.0)):
        _, draws, _ = _engine(rule)
        xs_t, _ = _torch_run(rule, draws)
        np.testing.assert_allclose(xs_t[-1], _sgd_run(draws["descent"], **BASE), rtol=0,
                                   atol=1e-12, err_msg=rule.name)
    # LookSAM k = 1, SSAM sparsity 0, AE-SAM always, K-SAM k = b: SAM (asam_theory.torch.SAM)
    _, draws, _ = _engine(LookSAM(**BASE, batch_size=3, rho=0.2, k=1))
    model = FSQModule(FS, X0)
    sam = TorchSAM(model.parameters(), torch.optim.SGD, rho=0.2, **BASE)
    ref = _closure_run(sam, model, draws["descent"])[-1]
    for rule in (LookSAM(**BASE, batch_size=3, rho=0.2, k=1),
                 SSAM(**BASE, batch_size=3, rho=0.2, sparsity=0.0),
                 AESAM(**BASE, batch_size=3, rho=0.2, lambda1=-np.inf, lambda2=-np.inf),
                 KSAM(**BASE, batch_size=3, rho=0.2, k=3)):
        xs_t, _ = _torch_run(rule, draws)
        np.testing.assert_allclose(xs_t[-1], ref, rtol=0, atol=1e-12, err_msg=rule.name)


class SplitFSQModule(FSQModule):
    """The same quadratic with ``w`` held as three parameter tensors (sizes 1, 2, 1), so a
    per-tensor decomposition differs from the global one."""

    def __init__(self, p: FiniteSumQuadratic, x0: np.ndarray) -> None:
        super().__init__(p, x0)
        del self.w
        self.parts = nn.ParameterList(
            nn.Parameter(torch.tensor(x0[a:b], dtype=torch.float64))
            for a, b in ((0, 1), (1, 3), (3, 4)))

    @property
    def w(self) -> torch.Tensor:
        return torch.cat(list(self.parts))


def test_looksam_global_mode_on_a_multi_tensor_model_is_the_numpy_rule():
    """decomposition="global" is the paper's equations on the whole parameter vector: on a
    model whose parameters are three tensors it follows the numpy rule (one vector) to 1e-10,
    and differs from the per-tensor decomposition by more than 1e-4."""
    rule = LookSAM(**BASE, batch_size=3, rho=0.2, k=3, alpha=0.7)
    xs_np, draws, _ = _engine(rule)
    runs = {}
    for mode in ("global", "per_tensor"):
        model = SplitFSQModule(FS, X0)
        opt = TorchLookSAM(model.parameters(), torch.optim.SGD, k=3, alpha=0.7, rho=0.2,
                           decomposition=mode, **BASE)
        runs[mode] = _closure_run(opt, model, draws["descent"])
    np.testing.assert_allclose(runs["global"], xs_np, rtol=0, atol=1e-10)
    assert np.abs(runs["per_tensor"] - xs_np).max() > 1e-4


def test_looksam_state_dict_round_trip_continues_identically():
    _, draws, _ = _engine(LookSAM(**BASE, batch_size=3, rho=0.2, k=3))
    batches = draws["descent"]
    model = FSQModule(FS, X0)
    opt = TorchLookSAM(model.parameters(), torch.optim.SGD, rho=0.2, k=3, **BASE)
    _closure_run(opt, model, batches[:7])
    saved_w = model.w.detach().clone()
    sd = copy.deepcopy(opt.state_dict())  # torch's state_dict holds live tensors
    tail = _closure_run(opt, model, batches[7:])[-1]
    model2 = FSQModule(FS, saved_w.numpy())
    opt2 = TorchLookSAM(model2.parameters(), torch.optim.SGD, rho=0.2, k=3, **BASE)
    opt2.load_state_dict(sd)
    assert opt2.t == 7 and opt2.param_groups is opt2.base_optimizer.param_groups
    np.testing.assert_array_equal(_closure_run(opt2, model2, batches[7:])[-1], tail)


def test_float32_runs():
    model = nn.Linear(3, 2)
    crit = nn.functional.cross_entropy
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    for opt in (TorchLookSAM(model.parameters(), torch.optim.SGD, k=2, lr=0.1),
                TorchAESAM(model.parameters(), torch.optim.SGD, lr=0.1),
                TorchSSAM(model.parameters(), torch.optim.SGD, lr=0.1, num_samples=4,
                          update_freq=2, model=model, criterion=crit)):
        for _ in range(3):
            def closure():
                loss = crit(model(x), y)
                loss.backward()
                return loss
            opt.zero_grad()
            crit(model(x), y).backward()
            kw = {"mask_inputs": x, "mask_targets": y} if isinstance(opt, TorchSSAM) else {}
            opt.step(closure, **kw)
    k = TorchKSAM(model.parameters(), torch.optim.SGD, model=model, criterion=crit, k=4, lr=0.1)
    assert torch.isfinite(k.step(inputs=x, targets=y))
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("make, name", [
    (lambda ps: TorchLookSAM(ps, torch.optim.SGD, k=0, lr=0.1), "k"),
    (lambda ps: TorchLookSAM(ps, torch.optim.SGD, decomposition="x", lr=0.1), "decomposition"),
    (lambda ps: TorchSSAM(ps, torch.optim.SGD, sparsity=1.0, lr=0.1), "sparsity"),
    (lambda ps: TorchSSAM(ps, torch.optim.SGD, mask="snip", lr=0.1), "mask"),
    (lambda ps: TorchSSAM(ps, torch.optim.SGD, mask="dynamic", drop_strategy="x", lr=0.1),
     "drop_strategy"),
    (lambda ps: TorchAESAM(ps, torch.optim.SGD, delta=1.5, lr=0.1), "delta"),
    (lambda ps: TorchKSAM(ps, torch.optim.SGD, model=nn.Linear(1, 1),
                          criterion=identity_criterion, k=0, lr=0.1), "k"),
    (lambda ps: TorchLookSAM(ps, torch.optim.SGD, rho=-1.0, lr=0.1), "rho"),
])
def test_bad_inputs_name_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make(nn.Linear(2, 1).parameters())


def test_ksam_k_larger_than_the_batch_is_refused():
    model = nn.Linear(2, 1)
    opt = TorchKSAM(model.parameters(), torch.optim.SGD, model=model,
                    criterion=nn.functional.mse_loss, k=5, lr=0.1)
    with pytest.raises(ValueError, match="k must"):
        opt.step(inputs=torch.randn(3, 2), targets=torch.randn(3, 1))


def test_batchnorm_statistics_move_only_with_the_unperturbed_pass():
    torch.manual_seed(0)
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    crit = nn.functional.cross_entropy

    def fresh():
        torch.manual_seed(1)
        return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))

    ref = fresh()
    ref(x)  # one unperturbed forward in train mode
    for make in (lambda m: TorchLookSAM(m.parameters(), torch.optim.SGD, k=1, lr=0.1, model=m),
                 lambda m: TorchAESAM(m.parameters(), torch.optim.SGD, lr=0.1, lambda1=-np.inf,
                                      lambda2=-np.inf, model=m)):
        m = fresh()
        opt = make(m)

        def closure(m=m):
            loss = crit(m(x), y)
            loss.backward()
            return loss

        opt.zero_grad()
        crit(m(x), y).backward()
        opt.step(closure)
        bn = m[1]
        torch.testing.assert_close(bn.running_mean, ref[1].running_mean)
        assert int(bn.num_batches_tracked) == 1
    m = fresh()
    TorchKSAM(m.parameters(), torch.optim.SGD, model=m, criterion=crit, k=8,
              lr=0.1).step(inputs=x, targets=y)
    torch.testing.assert_close(m[1].running_mean, ref[1].running_mean)
    assert int(m[1].num_batches_tracked) == 1
