"""SAM / ASAM with the davda54/sam API (Foret et al., ICLR 2021; Kwon et al., ICML 2021).

Update (``docs/methods.md`` §2.1), with g_t = ∇L_{B_t}(w_t):

    ε_t = ρ g_t / (‖g_t‖₂ + 1e-12)                       (SAM)
    ε_t = ρ w_t² ⊙ g_t / (‖|w_t| ⊙ g_t‖₂ + 1e-12)         (ASAM, adaptive=True, T_w = diag|w|)
    w_{t+1} = BaseOpt(w_t, ∇L_{B_t}(w_t + ε_t)).

API as davda54/sam ``sam.py``: ``base_optimizer`` is a *class* instantiated on this optimizer's
param groups with ``**kwargs``; ``self.param_groups`` is aliased to the base optimizer's groups
(so LR schedulers are attached to ``.base_optimizer``); ``first_step``/``second_step``/
``step(closure)``.
BatchNorm: pass ``model=`` and :meth:`SAM.step` runs the closure inside
:func:`asam_theory.torch.bn_frozen` (davda54's ``disable_running_stats``); with ``first_step``/
``second_step`` wrap the second forward yourself.  Built on
:class:`asam_theory.torch.sam_base.SAMFamily` (state dicts include the base optimizer's state;
``counts`` of gradient evaluations).

Training stack (:mod:`asam_theory.torch.stack`): ``first_step(scaler=)``/``second_step(scaler=)``
and ``step(closure, scaler=)`` take a ``torch.amp.GradScaler`` (the backward passes scale their
loss, ``scaler.scale(loss).backward()``; the caller calls ``scaler.update()`` after the step);
``max_grad_norm=`` clips the descent gradient; :meth:`SAM.ascent_pass` runs the first pass
without all-reduce under DDP (per-replica perturbation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from asam_theory.torch._common import normalized_direction
from asam_theory.torch.sam_base import SAMFamily
from asam_theory.torch.stack import check_scaler


class SAM(SAMFamily):
    """Sharpness-Aware Minimization wrapper around any ``torch.optim`` optimizer class.

    Args:
        params: parameters or param-group dicts.
        base_optimizer: optimizer *class* (e.g. ``torch.optim.SGD``), built on the param groups.
        rho: perturbation radius ρ ≥ 0 (per group overridable).
        adaptive: ASAM scaling T_w = diag|w| (davda54 convention, every tensor).
        model: optional module whose BatchNorm statistics :meth:`step` freezes in the closure.
        max_grad_norm: clip the descent gradient to this global 2-norm (``None``: no clipping).
        **kwargs: passed to ``base_optimizer`` (lr, momentum, weight_decay, ...).
    """

    PER_REPLICA_ASCENT = True

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type[torch.optim.Optimizer],
        rho: float = 0.05,
        adaptive: bool = False,
        *,
        model: torch.nn.Module | None = None,
        max_grad_norm: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, base_optimizer, rho,
                         method_defaults={"adaptive": bool(adaptive)}, model=model,
                         max_grad_norm=max_grad_norm, **kwargs)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False,
                   scaler: torch.amp.GradScaler | None = None) -> None:
        """w ← w + ε(w) from the gradients currently in ``p.grad``; stores ``old_p``.

        With ``scaler`` the gradients are unscaled first; if they hold an inf/NaN the step is
        skipped: no perturbation, and :meth:`second_step` takes no base step.
        """
        self._begin_step(scaler)
        pairs = self._pairs_with_grad() if self._pass_finite(0) else []
        if pairs:
            adaptive = [g["adaptive"] for g, _ in pairs]
            if any(adaptive) and not all(adaptive):
                raise ValueError("adaptive must be the same in every param group")
            u, _ = normalized_direction([p.grad for _, p in pairs], [p for _, p in pairs],
                                        adaptive=any(adaptive))
            self._perturb([(p, u_p * group["rho"])
                           for (group, p), u_p in zip(pairs, u, strict=True)])
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False,
                    scaler: torch.amp.GradScaler | None = None) -> None:
        """Restore w where it was perturbed and take the base step (the descent gradient
        clipped to ``max_grad_norm``).

        ``scaler`` must be the one given to :meth:`first_step`: the descent gradient is
        unscaled, and the step is skipped (w restored, no base step) if it or the ascent
        gradient held an inf/NaN.
        """
        if check_scaler(scaler) is not self._scaler:
            raise ValueError("scaler must be the one given to first_step (or None for both)")
        if not self._skipping and self._pass_finite(1):
            self._restore()
            self._base_step()
            self.t += 1
        self._scaler = None
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None, *,  # type: ignore[override]
             scaler: torch.amp.GradScaler | None = None) -> Any:
        """One SAM step. The first backward (at w) must already be done by the caller.

        ``closure`` performs a full forward+backward (at the perturbed weights) and returns
        the loss; it is required, as in davda54/sam.  With ``scaler`` both backward passes
        scale their loss (``scaler.scale(loss).backward()``); a step whose first gradient
        holds an inf/NaN is skipped without calling the closure (returns ``None``), one whose
        closure gradient does is skipped after it.
        """
        if closure is None:
            raise ValueError("SAM.step requires closure (a full forward-backward pass)")
        self.counts["grads"] += 1.0  # the caller's backward at w
        self.first_step(zero_grad=True, scaler=scaler)
        if self._skipping:
            self._scaler = None
            return None
        loss = self._closure_grad(closure)
        self.second_step(scaler=scaler)
        return loss
