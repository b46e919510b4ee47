r"""BiSAM (Xie et al., ICML 2024, arXiv 2407.12993) as a torch optimizer; the equations and
theory notes are those of :class:`asam_theory.methods.BiSAM` (``docs/methods.md`` §14b).

Per-sample loss interface of :mod:`asam_theory.torch.sam_base`: built with ``model`` (whose
output is the logits) and ``criterion(output, targets, reduction="none")`` (the descent loss,
e.g. label-smoothed cross-entropy), stepped with ``step(inputs=x, targets=y)``.  The ascent
pass computes BiSAM's lower bound of the 0-1 loss from the logits (:func:`lower_bound_loss`;
it updates BatchNorm statistics, as the official ``train.py``'s first pass); the descent pass
at :math:`w+\epsilon` runs with BatchNorm frozen.  The official code's ``utility/sam.py`` SAM is
otherwise unchanged: global norm, ``eps`` = 1e-12, restore, base step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from asam_theory.torch._grouped import grouped, normalized_perturbation
from asam_theory.torch.sam_base import PerSampleCriterion, SAMFamily
from asam_theory.validation import check_choice, check_real

BOUNDS = ("log", "tanh")
GAMMA = math.log(math.e - 1.0)


def lower_bound_loss(logits: torch.Tensor, targets: torch.Tensor, bound: str = "log",
                     mu: float = 1.0, alpha: float = 0.1) -> torch.Tensor:
    r"""Per-sample :math:`Q_i=\frac1\mu\log\sum_je^{\mu\phi(F_{ij})}`, margins
    :math:`F_{ij}=z_{ij}-z_{iy_i}`; :math:`\phi_{\log}(u)=1-\operatorname{softplus}(\gamma-u)`,
    :math:`\phi_{\tanh}(u)=\tanh(\alpha u)` (``docs/methods.md`` §14b)."""
    margins = logits - logits.gather(1, targets.view(-1, 1))
    if bound == "tanh":
        phi = torch.tanh(alpha * margins)
    else:
        phi = 1.0 - F.softplus(GAMMA - margins)
    return torch.logsumexp(mu * phi, dim=1) / mu


class BiSAM(SAMFamily):
    """BiSAM wrapper around ``base_optimizer`` (a class).

    Args:
        model, criterion: the per-sample loss interface (``model`` returns logits).
        rho: radius ρ; bound: ``"log"`` or ``"tanh"``; mu: temperature μ > 0; alpha: tanh
        slope; eps: norm guard (1e-12 as the official code); max_grad_norm: clip the descent
        gradient (``None``: no clipping).
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer],
                 *, model: nn.Module, criterion: PerSampleCriterion, rho: float = 0.05,
                 bound: str = "log", mu: float = 1.0, alpha: float = 0.1, eps: float = 1e-12,
                 max_grad_norm: float | None = None, **kwargs: Any) -> None:
        self.bound = check_choice("bound", bound, BOUNDS)
        self.mu = check_real("mu", mu, low=0.0, low_open=True)
        self.alpha = check_real("alpha", alpha, low=0.0, low_open=True)
        self.eps = check_real("eps", eps, low=0.0)
        super().__init__(params, base_optimizer, rho, model=model, criterion=criterion,
                         max_grad_norm=max_grad_norm, **kwargs)

    @torch.no_grad()
    def step(self, closure: None = None, *, inputs: torch.Tensor,  # type: ignore[override]
             targets: torch.Tensor,
             scaler: torch.amp.GradScaler | None = None) -> torch.Tensor | None:
        """One BiSAM step on the batch; returns the descent loss at ``w + ε`` (``None`` when a
        scaled ascent gradient overflows and the step is skipped).  ``scaler``: the training
        stack's GradScaler contract (:mod:`asam_theory.torch.stack`)."""
        if closure is not None:
            raise ValueError("BiSAM takes inputs= and targets=, not a closure")
        model, _ = self._require_per_sample()
        self._begin_step(scaler)
        params = self._params()
        with torch.enable_grad():
            q = lower_bound_loss(model(inputs), targets, self.bound, self.mu, self.alpha)
            grads = torch.autograd.grad(self._scaled(q.mean()), params, allow_unused=True)
        self.counts["grads"] += 1.0
        grads = self._grads_finite(grads, 0)
        if grads is None:
            return None
        triples = grouped(self.param_groups, grads)
        norm = self._grad_norm([g for _, _, g in triples])
        self._perturb(normalized_perturbation(triples, norm, self.eps))
        g_s, loss = self._mean_loss_grad(inputs, targets, batch_size=inputs.shape[0])
        if g_s is None:
            return loss
        self._restore()
        self._base_step_with(g_s)
        self.t += 1
        return loss
