r"""AUSAM (Deng, Pang, Zhang, AAAI 2025, arXiv 2406.08001) as a torch optimizer; the equations,
sampling table and theory notes are those of :class:`asam_theory.methods.AUSAM`
(``docs/methods.md`` §8).

Per-sample loss interface of :mod:`asam_theory.torch.sam_base`: built with ``model``,
``criterion(output, targets, reduction="none")`` and the training-set size ``n_samples`` (the
table has one row per sample), stepped with ``step(inputs=x, targets=y, indices=i)`` where
``indices`` are the samples' positions in the training set (the official data set returns
them).  Per step, as the official ``AUSAM/train.py`` loop: choose the subset (the whole batch
during the first epoch; ``torch.multinomial`` without replacement on the scaled table means
afterwards, from ``generator``), forward + backward on the subset at ``w`` (BatchNorm
statistics updated), ε = ρ g/(‖g‖ + 1e-12), forward + backward on the subset at ``w + ε``
(BatchNorm frozen), restore, base step, then record :math:`|\ell_i(w+\epsilon)-\ell_i(w)|` from
the two passes' per-sample losses (no extra pass: ``counts["forwards"]`` stays 0, where the
numpy oracle declares the two loss reads as forwards).  ``epoch_length`` is the number of steps
per epoch (the official loop's ``len(dataset.train)``); the epoch of step t is
``t // epoch_length``.  ``sampler(probs, k)`` (optional) replaces ``torch.multinomial``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from asam_theory.torch._common import bn_frozen
from asam_theory.torch._grouped import grouped, normalized_perturbation
from asam_theory.torch.sam_base import PerSampleCriterion, SAMFamily, select_samples
from asam_theory.validation import check_int, check_real

FMAX_OFFSET = 1e-9


class AUSAM(SAMFamily):
    """AUSAM wrapper around ``base_optimizer`` (a class).

    Args:
        model, criterion: the per-sample loss interface.
        n_samples: training-set size (rows of the sampling table).
        epoch_length: steps per epoch.
        rho: radius ρ (official 0.1); alpha: subset fraction in (0, 1]; fmin, fmax: the
        probability scale; trans_epochs: ramp length ≥ 1; eps: norm guard.
        generator: ``torch.Generator`` of the subset draws (default: the global one).
        sampler: optional ``sampler(probs, k) -> LongTensor`` replacing ``torch.multinomial``.
        max_grad_norm: clip the descent gradient (``None``: no clipping).
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer],
                 *, model: nn.Module, criterion: PerSampleCriterion, n_samples: int,
                 epoch_length: int, rho: float = 0.1, alpha: float = 0.5, fmin: float = 0.1,
                 fmax: float = 0.5, trans_epochs: int = 30, eps: float = 1e-12,
                 generator: torch.Generator | None = None,
                 sampler: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
                 max_grad_norm: float | None = None, **kwargs: Any) -> None:
        self.n_samples = check_int("n_samples", n_samples, low=1)
        self.epoch_length = check_int("epoch_length", epoch_length, low=1)
        self.alpha = check_real("alpha", alpha, low=0.0, high=1.0, low_open=True)
        self.fmin = check_real("fmin", fmin, low=0.0, low_open=True)
        self.fmax = check_real("fmax", fmax, low=self.fmin)
        self.trans_epochs = check_int("trans_epochs", trans_epochs, low=1)
        self.eps = check_real("eps", eps, low=0.0)
        self.generator = generator
        self.sampler = sampler
        super().__init__(params, base_optimizer, rho, model=model, criterion=criterion,
                         max_grad_norm=max_grad_norm, **kwargs)
        self.table = torch.ones((self.n_samples, 3), dtype=torch.float64)

    def fmax_at(self, epoch: int) -> float:
        r = max(self.trans_epochs - epoch, 0)
        return self.fmax - (r / self.trans_epochs) * (self.fmax - self.fmin) + FMAX_OFFSET

    def probabilities(self, indices: torch.Tensor, epoch: int) -> torch.Tensor:
        """The batch's table means min-max scaled into [fmin, fmax'] and normalised (uniform
        where they are all equal)."""
        v = self.table[indices, 2]
        lo, hi = torch.min(v), torch.max(v)
        if hi == lo:
            return torch.full_like(v, 1.0 / v.numel())
        scaled = (v - lo) / (hi - lo) * (self.fmax_at(epoch) - self.fmin) + self.fmin
        return scaled / torch.sum(scaled)

    def select(self, indices: torch.Tensor, epoch: int) -> torch.Tensor:
        """Positions in the batch of the step's subset."""
        b = indices.shape[0]
        k = max(int(self.alpha * b), 1)  # as the numpy rule: at least one sample
        if epoch == 0:
            return torch.arange(b)
        p = self.probabilities(indices, epoch)
        if self.sampler is not None:
            return torch.as_tensor(self.sampler(p, k), dtype=torch.long)
        return torch.multinomial(p, k, replacement=False, generator=self.generator)

    def _losses_and_grads(self, inputs, targets, b, freeze_bn, which):
        """Per-sample losses and the gradient of their mean (unscaled as pass ``which`` with
        a scaler; ``None`` when the step is skipped)."""
        model, criterion = self._require_per_sample()
        with torch.enable_grad():
            with bn_frozen(model) if freeze_bn else contextlib.nullcontext():
                losses = criterion(model(inputs), targets, reduction="none")
            grads = torch.autograd.grad(self._scaled(losses.mean()), self._params(),
                                        allow_unused=True)
        self.counts["grads"] += inputs.shape[0] / b
        return losses.detach(), self._grads_finite(grads, which)

    @torch.no_grad()
    def step(self, closure: None = None, *, inputs: torch.Tensor,  # type: ignore[override]
             targets: torch.Tensor, indices: torch.Tensor,
             scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
        """One AUSAM step; returns the subset's mean loss at ``w``.  ``scaler``: the training
        stack's GradScaler contract (:mod:`asam_theory.torch.stack`); a skipped step leaves
        the table and the generator as they were."""
        if closure is not None:
            raise ValueError("AUSAM takes inputs=, targets= and indices=, not a closure")
        self._begin_step(scaler)
        indices = torch.as_tensor(indices, dtype=torch.long)
        b = inputs.shape[0]
        if indices.shape != (b,):
            raise ValueError(f"indices must have shape ({b},) (one per sample), got "
                             f"{tuple(indices.shape)}")
        epoch = self.t // self.epoch_length
        sel = self.select(indices, epoch)
        x_s, y_s = select_samples(inputs, sel), select_samples(targets, sel)
        loss_bef, g = self._losses_and_grads(x_s, y_s, b, False, 0)
        if g is None:
            return loss_bef.mean()
        triples = grouped(self.param_groups, g)
        norm = self._grad_norm([gp for _, _, gp in triples])
        self._perturb(normalized_perturbation(triples, norm, self.eps))
        loss_aft, g_s = self._losses_and_grads(x_s, y_s, b, True, 1)
        if g_s is None:
            return loss_bef.mean()
        self._restore()
        self._base_step_with([torch.zeros_like(p) if gp is None else gp
                              for p, gp in zip(self._params(), g_s, strict=True)])
        roc = torch.abs(loss_aft - loss_bef).to(self.table)
        chosen = indices[sel]
        if epoch == 0:
            self.table[chosen, 0] = roc
            self.table[chosen, 2] = roc
        else:
            self.table[chosen, 0] = self.table[chosen, 0] + roc
            self.table[chosen, 1] = self.table[chosen, 1] + 1
            self.table[chosen, 2] = self.table[chosen, 0] / self.table[chosen, 1]
        self.last_selected = sel
        self.t += 1
        return loss_bef.mean()

    def _method_state(self) -> dict[str, Any]:
        st = super()._method_state()
        st["table"] = self.table.clone()
        if self.generator is not None:
            st["generator"] = self.generator.get_state()
        return st

    def _load_method_state(self, state: dict[str, Any]) -> None:
        super()._load_method_state(state)
        if "table" in state:
            self.table = state["table"].clone().to(torch.float64)
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])

