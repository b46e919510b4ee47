"""K-SAM (Ni et al., arXiv 2210.12864) as a torch optimizer; the equations and theory notes
are those of :class:`asam_theory.methods.KSAM` (``docs/methods.md`` §11).

Per-sample loss interface of :mod:`asam_theory.torch.sam_base`: built with ``model`` and
``criterion(output, targets, reduction="none")``, stepped with ``step(inputs=x, targets=y)``.
One forward pass over the batch (no gradient; it updates BatchNorm statistics, the step's
only unperturbed full-batch pass) ranks the samples; the ``k`` samples of largest loss (ties:
the earlier sample; a stable descending sort) carry both SAM gradients, each with BatchNorm
frozen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from asam_theory.torch.sam_base import PerSampleCriterion, SAMFamily, select_samples
from asam_theory.validation import check_int, check_nonnegative


class KSAM(SAMFamily):
    """K-SAM wrapper around ``base_optimizer`` (a class).

    Args:
        model, criterion: the per-sample loss interface.
        rho: radius ρ; k: samples kept per step (``None``: the whole batch, i.e. SAM);
        eps: norm guard; max_grad_norm: clip the descent gradient (``None``: no clipping).
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer],
                 *, model: nn.Module, criterion: PerSampleCriterion, rho: float = 0.05,
                 k: int | None = None, eps: float = 1e-12,
                 max_grad_norm: float | None = None, **kwargs: Any) -> None:
        self.k = None if k is None else check_int("k", k, low=1)
        self.eps = check_nonnegative("eps", eps)
        super().__init__(params, base_optimizer, rho, model=model, criterion=criterion,
                         max_grad_norm=max_grad_norm, **kwargs)

    def select(self, losses: torch.Tensor) -> torch.Tensor:
        """Indices of the k largest losses (stable: ties keep the earlier sample)."""
        b = losses.shape[0]
        k = b if self.k is None else self.k
        if k > b:
            raise ValueError(f"k must be an integer in [1, {b}] (the batch size), got {k}")
        return torch.sort(losses, descending=True, stable=True).indices[:k]

    @torch.no_grad()
    def step(self, closure: None = None, *, inputs: torch.Tensor,  # type: ignore[override]
             targets: torch.Tensor,
             scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
        """One K-SAM step on the batch; returns the batch's mean loss at ``w``.  ``scaler``:
        the training stack's GradScaler contract (:mod:`asam_theory.torch.stack`)."""
        if closure is not None:
            raise ValueError("KSAM takes inputs= and targets=, not a closure")
        self._begin_step(scaler)
        b = inputs.shape[0]
        losses = self._per_sample_losses(inputs, targets, batch_size=b)
        idx = self.select(losses)
        x_k, y_k = select_samples(inputs, idx), select_samples(targets, idx)
        g, _ = self._mean_loss_grad(x_k, y_k, batch_size=b, which=0)
        if g is None:
            return losses.mean()
        norm = self._grad_norm(g)
        self._perturb([(p, gp * (group["rho"] / (norm + self.eps)))
                       for (group, p), gp in zip(self._group_params(), g, strict=True)])
        g_s, _ = self._mean_loss_grad(x_k, y_k, batch_size=b)
        if g_s is None:
            return losses.mean()
        self._restore()
        self._base_step_with(g_s)
        self.t += 1
        return losses.mean()
