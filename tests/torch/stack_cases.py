"""The SAM family as one catalogue for the training-stack tests (``test_stack_*.py``): each
case builds its optimizer on a model and takes one training step with the batch, in the
closure form (the caller's backward at w, then ``opt.step(closure)``) or the batch form
(``opt.step(inputs=x, targets=y)``), with an optional GradScaler and autocast.

Settings are chosen so that a few steps exercise every branch: LookSAM refreshes and reuses
(k = 2), ARSAM leaves its warm-up after 4 steps, SSAM refreshes its mask every 2 steps, K-SAM
keeps half the batch, AUSAM's epoch 1 (sampling from its table) starts at step 2.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from asam_theory.torch import (
    AESAM,
    ARSAM,
    AUSAM,
    KSAM,
    RWP,
    SAM,
    SSAM,
    BiSAM,
    LookSAM,
    SAMFamily,
)

N = 16  # samples per batch
D_IN, D_HID, N_CLASSES = 6, 8, 3
BASE = dict(lr=0.1, momentum=0.9, weight_decay=1e-3)


@dataclass(frozen=True)
class Case:
    """One optimizer of the family: ``build(params, model, **options)`` and its step form."""

    name: str
    form: str  # "closure" or "batch"
    build: Callable[..., SAMFamily]
    step_options: Callable[[SAMFamily, torch.Tensor, torch.Tensor], dict[str, Any]] = field(
        default=lambda opt, x, y: {})
    #: the step runs forward passes of its own outside the closure (SSAM's Fisher passes),
    #: which follow the autocast around ``step``
    amp_around_step: bool = False


def _ce(out, y, reduction="mean"):
    return F.cross_entropy(out, y, reduction=reduction)


def _ssam_options(opt, x, y):
    return {"mask_inputs": x, "mask_targets": y} if opt.t % opt.update_freq == 0 else {}


def _ausam_options(opt, x, y):
    return {"indices": torch.arange(len(y)) % N}


def _sam(params, model, base=torch.optim.SGD, **kw):
    return SAM(params, base, rho=0.05, model=model, **BASE, **kw)


def _looksam(params, model, base=torch.optim.SGD, **kw):
    return LookSAM(params, base, rho=0.05, k=2, alpha=0.7, model=model, **BASE, **kw)


def _aesam(params, model, base=torch.optim.SGD, **kw):
    return AESAM(params, base, rho=0.05, total_steps=8, lambda1=-1.0, lambda2=1.0,
                 model=model, **BASE, **kw)


def _arsam(params, model, base=torch.optim.SGD, **kw):
    return ARSAM(params, base, rho=0.05, window=4, blocks=2, warmup_steps=4, last_layer=2,
                 sampling_probability=0.5, rng=random.Random(3), model=model, **BASE, **kw)


def _ssam(params, model, base=torch.optim.SGD, **kw):
    return SSAM(params, base, rho=0.05, sparsity=0.5, num_samples=4, update_freq=2,
                model=model, criterion=_ce, **BASE, **kw)


def _ksam(params, model, base=torch.optim.SGD, **kw):
    return KSAM(params, base, model=model, criterion=_ce, rho=0.05, k=N // 2, **BASE, **kw)


def _ausam(params, model, base=torch.optim.SGD, **kw):
    return AUSAM(params, base, model=model, criterion=_ce, n_samples=N, epoch_length=2,
                 rho=0.05, trans_epochs=2, generator=torch.Generator().manual_seed(5),
                 **BASE, **kw)


def _bisam(params, model, base=torch.optim.SGD, **kw):
    return BiSAM(params, base, model=model, criterion=_ce, rho=0.05, **BASE, **kw)


def _rwp(params, model, base=torch.optim.SGD, **kw):
    device = next(model.parameters()).device  # the noise is drawn on the weights' device
    return RWP(params, base, model=model, criterion=_ce, gamma=0.05,
               generator=torch.Generator(device).manual_seed(6), **BASE, **kw)


CASES: tuple[Case, ...] = (
    Case("SAM", "closure", _sam),
    Case("LookSAM", "closure", _looksam),
    Case("AESAM", "closure", _aesam),
    Case("ARSAM", "closure", _arsam),
    Case("SSAM", "closure", _ssam, _ssam_options, amp_around_step=True),
    Case("KSAM", "batch", _ksam),
    Case("AUSAM", "batch", _ausam, _ausam_options),
    Case("BiSAM", "batch", _bisam),
    Case("RWP", "batch", _rwp),
)
IDS = [c.name for c in CASES]
CLOSURE_CASES = tuple(c for c in CASES if c.form == "closure")
BATCH_CASES = tuple(c for c in CASES if c.form == "batch")


def mlp(dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D_IN, D_HID), nn.Tanh(),
                         nn.Linear(D_HID, N_CLASSES)).to(dtype)


def batches(steps: int, dtype: torch.dtype = torch.float32, seed: int = 1,
            n: int = N) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, D_IN, generator=g, dtype=dtype),
             torch.randint(0, N_CLASSES, (n,), generator=g)) for _ in range(steps)]


def train_step(case: Case, opt: SAMFamily, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               *, scaler: torch.amp.GradScaler | None = None,
               autocast: torch.dtype | None = None, descent_inf: bool = False) -> Any:
    """One step of ``case`` on ``(x, y)``; ``descent_inf`` makes the closure's loss inf (the
    closure form's descent pass)."""
    def amp():  # a fresh context each time: one torch.autocast object must not nest in itself
        return (torch.autocast("cpu", dtype=autocast) if autocast is not None
                else contextlib.nullcontext())

    options = case.step_options(opt, x, y)
    if case.form == "batch":
        with amp():
            return opt.step(inputs=x, targets=y, scaler=scaler, **options)

    def backward(loss):
        (loss if scaler is None else scaler.scale(loss)).backward()

    def closure():
        with amp():
            loss = _ce(model(x), y)
        if descent_inf:
            loss = loss * float("inf")
        backward(loss)
        return loss

    opt.zero_grad()
    with opt.ascent_pass(model), amp():
        loss = _ce(model(x), y)
    backward(loss)
    with amp() if case.amp_around_step else contextlib.nullcontext():
        return opt.step(closure, scaler=scaler, **options)


def params_of(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def run(case: Case, steps: int, *, dtype: torch.dtype = torch.float32,
        scaler_scale: float | None = None, **options: Any) -> list[list[torch.Tensor]]:
    """Weights after each of ``steps`` steps of ``case`` on the standard model and batches;
    with ``scaler_scale`` a CPU GradScaler of that fixed scale (no growth) scales the passes."""
    model = mlp(dtype)
    opt = case.build(model.parameters(), model, **options)
    scaler = None if scaler_scale is None else fixed_scaler(scaler_scale)
    out = []
    for x, y in batches(steps, dtype):
        train_step(case, opt, model, x, y, scaler=scaler)
        if scaler is not None:
            scaler.update()
        out.append(params_of(model))
    return out


def fixed_scaler(scale: float) -> torch.amp.GradScaler:
    """A CPU GradScaler at ``scale`` that does not grow within a test (growth interval 10⁶)."""
    return torch.amp.GradScaler("cpu", init_scale=scale, growth_interval=10**6)


class ClipThenSGD(torch.optim.SGD):
    """SGD that first clips its gradients with ``torch.nn.utils.clip_grad_norm_`` — the
    reference for ``max_grad_norm`` (clip the descent gradient, then the base step)."""

    def __init__(self, params, max_norm: float, **kwargs):
        self.max_norm = max_norm
        super().__init__(params, **kwargs)

    @torch.no_grad()
    def step(self, closure=None):
        grads = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(grads, self.max_norm)
        return super().step(closure)
