"""SAM / ASAM with the davda54/sam API (Foret et al., ICLR 2021; Kwon et al., ICML 2021).

Update (``docs/methods.md`` §2.1), with g_t = ∇L_{B_t}(w_t):

    ε_t = ρ g_t / (‖g_t‖₂ + 1e-12)                       (SAM)
    ε_t = ρ w_t² ⊙ g_t / (‖|w_t| ⊙ g_t‖₂ + 1e-12)         (ASAM, adaptive=True, T_w = diag|w|)
    w_{t+1} = BaseOpt(w_t, ∇L_{B_t}(w_t + ε_t)).

API as davda54/sam ``sam.py``: ``base_optimizer`` is a *class* instantiated on this optimizer's
param groups with ``**kwargs``; ``self.param_groups`` is aliased to the base optimizer's groups
(so LR schedulers are attached to ``.base_optimizer``); ``first_step``/``second_step``/
``step(closure)``.
BatchNorm: wrap the second (perturbed) forward in :func:`asam_theory.torch.bn_frozen`, as
davda54's ``disable_running_stats``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from asam_theory.torch._common import normalized_direction
from asam_theory.validation import check_nonnegative


class SAM(torch.optim.Optimizer):
    """Sharpness-Aware Minimization wrapper around any ``torch.optim`` optimizer class.

    Args:
        params: parameters or param-group dicts.
        base_optimizer: optimizer *class* (e.g. ``torch.optim.SGD``), built on the param groups.
        rho: perturbation radius ρ ≥ 0 (per group overridable).
        adaptive: ASAM scaling T_w = diag|w| (davda54 convention, every tensor).
        **kwargs: passed to ``base_optimizer`` (lr, momentum, weight_decay, ...).
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type[torch.optim.Optimizer],
        rho: float = 0.05,
        adaptive: bool = False,
        **kwargs: Any,
    ) -> None:
        rho = check_nonnegative("rho", rho)
        defaults = dict(rho=rho, adaptive=bool(adaptive), **kwargs)
        super().__init__(params, defaults)
        for group in self.param_groups:
            check_nonnegative("rho", group["rho"])
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    def _params_with_grad(self) -> list[tuple[dict, torch.nn.Parameter]]:
        return [(g, p) for g in self.param_groups for p in g["params"] if p.grad is not None]

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """w ← w + ε(w) from the gradients currently in ``p.grad``; stores ``old_p``."""
        pairs = self._params_with_grad()
        if pairs:
            grads = [p.grad for _, p in pairs]
            weights = [p for _, p in pairs]
            adaptive = [g["adaptive"] for g, _ in pairs]
            u, _ = normalized_direction(grads, weights, adaptive=any(adaptive))
            if any(adaptive) and not all(adaptive):
                raise ValueError("adaptive must be the same in every param group")
            for (group, p), u_p in zip(pairs, u, strict=True):
                self.state[p]["old_p"] = p.data.clone()
                p.add_(u_p, alpha=group["rho"])
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore w from ``old_p`` and take the base optimizer's step with the current grads."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or "old_p" not in self.state[p]:
                    continue
                p.data = self.state[p]["old_p"]
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One SAM step. The first backward (at w) must already be done by the caller.

        ``closure`` performs a full forward+backward (at the perturbed weights) and returns
        the loss; it is required, as in davda54/sam.
        """
        if closure is None:
            raise ValueError("SAM.step requires closure (a full forward-backward pass)")
        closure = torch.enable_grad()(closure)
        self.first_step(zero_grad=True)
        loss = closure()
        self.second_step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups
