r"""RWP (Li et al., arXiv 2211.11489) as a torch optimizer; the equations and theory notes are
those of :class:`asam_theory.methods.RWP` (``docs/methods.md`` §14).

Per-sample loss interface of :mod:`asam_theory.torch.sam_base`: built with ``model`` and
``criterion(output, targets, reduction="none")``, stepped with
``step(inputs=x, targets=y, shard_inputs=x2, shard_targets=y2)``: ``(x, y)`` is the clean shard
(the official code's even rank), ``(x2, y2)`` the perturbed shard (its odd rank); without a
shard the batch is split in halves (first half clean, second half perturbed).  The official
code computes the two gradients on two DDP ranks and averages :math:`2(1-\alpha)g` and
:math:`2\alpha g'`; here both run in one process, one after the other (two devices would run
them at once: depth 1).

Noise as the official code draws it, parameter by parameter in order: for a tensor with more
than one dimension ``torch.normal(0, γ‖W_{i,:}‖)`` per output filter, for a one-dimensional
tensor ``normal_(0, γ(‖w‖ + 1e-16))``, from ``generator`` (default: torch's global generator,
as the official code).  ``noise`` (optional) replaces the standard-normal draws: a callable
returning one tensor per parameter, scaled by the same standard deviations.  BatchNorm: the
clean pass updates running statistics, the perturbed pass runs frozen (under DDP the official
code keeps the even rank's buffers).  ``rho`` is not a parameter of RWP (``gamma`` is the
scale).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from asam_theory.torch.sam_base import PerSampleCriterion, SAMFamily
from asam_theory.validation import check_real

#: the official code's guard on the norm of a one-dimensional tensor
NORM_EPS = 1e-16


class RWP(SAMFamily):
    """Random Weight Perturbation wrapper around ``base_optimizer`` (a class).

    Args:
        model, criterion: the per-sample loss interface.
        alpha: weight of the perturbed shard's gradient, in [0, 1].
        gamma: relative noise scale γ ≥ 0.
        generator: ``torch.Generator`` of the noise (default: the global one).
        noise: optional ``noise(params) -> list[Tensor]`` of standard-normal draws.
        max_grad_norm: clip the mixed descent gradient (``None``: no clipping).
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer],
                 *, model: nn.Module, criterion: PerSampleCriterion, alpha: float = 0.5,
                 gamma: float = 0.01, generator: torch.Generator | None = None,
                 noise: Callable[[list[torch.nn.Parameter]], list[torch.Tensor]] | None = None,
                 max_grad_norm: float | None = None, **kwargs: Any) -> None:
        self.alpha = check_real("alpha", alpha, low=0.0, high=1.0)
        self.gamma = check_real("gamma", gamma, low=0.0)
        self.generator = generator
        self.noise = noise
        super().__init__(params, base_optimizer, 0.0, model=model, criterion=criterion,
                         max_grad_norm=max_grad_norm, **kwargs)

    def std(self, p: torch.Tensor) -> torch.Tensor | float:
        """Noise standard deviation of ``p``: per filter (rows) or one for a 1-D tensor."""
        if p.dim() > 1:
            rows = p.reshape(p.shape[0], -1).norm(dim=1, keepdim=True)
            return (self.gamma * rows).expand(p.shape[0], p[0].numel()).reshape(p.shape)
        return self.gamma * (p.reshape(-1).norm().item() + NORM_EPS)

    @torch.no_grad()
    def draw(self) -> list[torch.Tensor]:
        """The perturbation ε for every parameter."""
        params = self._params()
        if self.noise is not None:
            z = self.noise(params)
            return [zp.to(p) * self.std(p) for p, zp in zip(params, z, strict=True)]
        out = []
        for p in params:
            s = self.std(p)
            if isinstance(s, float):
                out.append(torch.empty_like(p).normal_(0, s, generator=self.generator))
            else:
                out.append(torch.normal(0, s, generator=self.generator))
        return out

    @torch.no_grad()
    def step(self, closure: None = None, *, inputs: torch.Tensor,  # type: ignore[override]
             targets: torch.Tensor, shard_inputs: torch.Tensor | None = None,
             shard_targets: torch.Tensor | None = None,
             scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
        """One RWP step; returns the clean shard's mean loss at ``w``.  ``scaler``: the
        training stack's GradScaler contract (:mod:`asam_theory.torch.stack`; the clean and
        the perturbed gradient are its two passes); a skipped step leaves the generator as it
        was."""
        if closure is not None:
            raise ValueError("RWP takes inputs= and targets=, not a closure")
        self._begin_step(scaler)
        if (shard_inputs is None) != (shard_targets is None):
            raise ValueError("shard_inputs and shard_targets must be given together")
        if shard_inputs is None:
            half = inputs.shape[0] // 2
            if half < 1:
                raise ValueError("inputs must hold at least 2 samples to split into two shards")
            inputs, targets, shard_inputs, shard_targets = (
                inputs[:half], targets[:half], inputs[half:], targets[half:])
        b = inputs.shape[0]
        g_clean, loss = self._mean_loss_grad(inputs, targets, batch_size=b, freeze_bn=False,
                                             which=0)
        if g_clean is None:
            return loss
        eps = self.draw()
        self._perturb(list(zip(self._params(), eps, strict=True)))
        g_pert, _ = self._mean_loss_grad(shard_inputs, shard_targets, batch_size=b)
        if g_pert is None:
            return loss
        self._restore()
        a = self.alpha
        self._base_step_with([a * gp + (1 - a) * gc for gp, gc in zip(g_pert, g_clean,
                                                                        strict=True)])
        self.t += 1
        return loss

    def _method_state(self) -> dict[str, Any]:
        st = super()._method_state()
        if self.generator is not None:
            st["generator"] = self.generator.get_state()
        return st

    def _load_method_state(self, state: dict[str, Any]) -> None:
        super()._load_method_state(state)
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])
