"""AE-SAM (Jiang, Yang, Zhang, Kwok, ICLR 2023, arXiv 2304.14647) as a torch optimizer; the
equations, defaults (this package's choice: the paper's values were not readable) and theory
notes are those of :class:`asam_theory.methods.AESAM` (``docs/methods.md`` §10).

Closure interface of :mod:`asam_theory.torch.sam_base`: the caller runs the first backward at
``w``; ``step(closure)`` updates the running mean and variance of ‖g‖² (in float64 Python
scalars), and only when ‖g‖² ≥ μ_t + c_t σ_t perturbs, runs the closure and restores; otherwise
the base optimizer steps with g and the closure is not called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from asam_theory.methods.aesam import (
    check_threshold,
    sam_wanted,
    threshold_coefficient,
    update_statistics,
)
from asam_theory.torch.sam_base import SAMFamily
from asam_theory.validation import check_int, check_nonnegative, check_real


class AESAM(SAMFamily):
    """AE-SAM wrapper around ``base_optimizer`` (a class).

    Args:
        rho: radius ρ; delta: decay δ ∈ [0, 1); lambda1, lambda2: threshold coefficients
        (±inf allowed: -inf always SAM, +inf never); total_steps: schedule length T;
        eps: norm guard; model: module whose BatchNorm is frozen during the closure.
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer],
                 rho: float = 0.05, delta: float = 0.9, lambda1: float = 0.0,
                 lambda2: float = 0.0, total_steps: int = 1000, *, eps: float = 1e-12,
                 model: torch.nn.Module | None = None, max_grad_norm: float | None = None,
                 **kwargs: Any) -> None:
        self.delta = check_real("delta", delta, low=0.0, high=1.0, high_open=True)
        self.lambda1 = check_threshold("lambda1", lambda1)
        self.lambda2 = check_threshold("lambda2", lambda2)
        self.total_steps = check_int("total_steps", total_steps, low=1)
        self.eps = check_nonnegative("eps", eps)
        super().__init__(params, base_optimizer, rho, model=model, max_grad_norm=max_grad_norm,
                         **kwargs)
        self.mu = 0.0
        self.var = 0.0
        self.n_sam = 0

    def threshold_coefficient(self, t: int) -> float:
        """c_t = (t/T) λ₁ + (1 − t/T) λ₂, t/T capped at 1 (the numpy rule's
        :func:`~asam_theory.methods.aesam.threshold_coefficient`)."""
        return threshold_coefficient(t, self.total_steps, self.lambda1, self.lambda2)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None, *,  # type: ignore[override]
             scaler: torch.amp.GradScaler | None = None) -> Any:
        """One AE-SAM step; the gradient at ``w`` must be in ``p.grad``.  Returns the
        closure's loss on SAM steps, ``None`` on SGD steps.  ``scaler``: the training stack's
        GradScaler contract (:mod:`asam_theory.torch.stack`)."""
        self.counts["grads"] += 1.0
        self._begin_step(scaler)
        if not self._pass_finite(0):
            return None
        pairs = self._pairs_with_grad()
        g = [p.grad for _, p in pairs]
        sq = float(sum(float((gi.double() * gi.double()).sum()) for gi in g))
        self.mu, self.var = update_statistics(sq, self.mu, self.var, self.delta)
        use = bool(sam_wanted(sq, self.mu, self.var, self.threshold_coefficient(self.t)))
        loss = None
        if use:
            if closure is None:
                raise ValueError("AESAM.step requires closure (a full forward-backward pass)")
            norm = self._grad_norm(g)
            self._perturb([(p, p.grad * (group["rho"] / (norm + self.eps)))
                           for group, p in pairs])
            self.zero_grad()
            loss = self._closure_grad(closure)
            if self._skipping:
                return loss
            self._restore()
            self.n_sam += 1
        self._base_step()
        self.t += 1
        return loss

    def _method_state(self) -> dict[str, Any]:
        return {**super()._method_state(), "mu": self.mu, "var": self.var, "n_sam": self.n_sam}

    def _load_method_state(self, state: dict[str, Any]) -> None:
        super()._load_method_state(state)
        self.mu, self.var = float(state["mu"]), float(state["var"])
        self.n_sam = int(state["n_sam"])
