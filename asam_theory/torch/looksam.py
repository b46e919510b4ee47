"""LookSAM (Liu et al., CVPR 2022, arXiv 2203.02714) as a torch optimizer; the equations,
defaults and theory notes are those of :class:`asam_theory.methods.LookSAM`
(``docs/methods.md`` §9).

Closure interface of :mod:`asam_theory.torch.sam_base`: the caller runs the first backward at
``w``; on refresh steps (every ``k``-th, counted by the optimizer from 0) ``step(closure)``
perturbs, runs the closure, stores ``g_v`` and restores; on reuse steps it adds
``alpha * |g| / (|g_v| + eps) * g_v`` to ``p.grad`` and the closure is not called.

Options:

* ``decomposition="per_tensor"``: ``g_v`` and the reuse scale per parameter tensor, as
  rollovd/LookSAM computes them, instead of
  one global vector (``"global"``, the paper's equations and the numpy rule);
* ``restore="every_step"``: copy the snapshot taken at the last refresh back into the weights
  on *every* step, discarding the base steps taken since the refresh on reuse steps.  This is
  what the public code's ``p.data = state[p]["old_p"]`` on every step reads as, but not what it
  does: the assignment aliases the snapshot, the base step updates it in place, and the write
  is a no-op on reuse steps, so their output is that of the default ``"perturbed"`` (restore
  only after a perturbation) — ``tests/torch/test_reference_looksam.py`` shows both;
* ``eps``: the norm guard (rollovd uses 1e-8, davda54/sam 1e-12).

With ``decomposition="per_tensor", eps=1e-8`` the trajectory equals rollovd/LookSAM's (commit
8f5c8ef) to 1e-10 in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from asam_theory.torch.sam_base import SAMFamily
from asam_theory.validation import check_choice, check_int, check_nonnegative

DECOMPOSITIONS = ("global", "per_tensor")
RESTORES = ("perturbed", "every_step")


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))


class LookSAM(SAMFamily):
    """LookSAM wrapper around ``base_optimizer`` (a class, davda54/sam style).

    Args:
        params, base_optimizer, rho: as :class:`asam_theory.torch.SAM`.
        k: refresh period (≥ 1); ``k = 1`` is SAM.
        alpha: reuse weight α ≥ 0.
        eps: norm guard.
        decomposition: ``"global"`` or ``"per_tensor"``.
        restore: ``"perturbed"`` or ``"every_step"``.
        model: optional module whose BatchNorm is frozen during the closure.
        **kwargs: base optimizer arguments.
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer],
                 rho: float = 0.05, k: int = 10, alpha: float = 0.7, *, eps: float = 1e-12,
                 decomposition: str = "global", restore: str = "perturbed",
                 model: torch.nn.Module | None = None, max_grad_norm: float | None = None,
                 **kwargs: Any) -> None:
        self.k = check_int("k", k, low=1)
        self.alpha = check_nonnegative("alpha", alpha)
        self.eps = check_nonnegative("eps", eps)
        self.decomposition = check_choice("decomposition", decomposition, DECOMPOSITIONS)
        self.restore = check_choice("restore", restore, RESTORES)
        super().__init__(params, base_optimizer, rho, model=model, max_grad_norm=max_grad_norm,
                         **kwargs)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None, *,  # type: ignore[override]
             scaler: torch.amp.GradScaler | None = None) -> Any:
        """One LookSAM step; the gradient at ``w`` must be in ``p.grad``.  Returns the
        closure's loss on refresh steps, ``None`` on reuse steps.  ``scaler``: the training
        stack's GradScaler contract (:mod:`asam_theory.torch.stack`)."""
        self.counts["grads"] += 1.0  # the caller's backward at w
        self._begin_step(scaler)
        if not self._pass_finite(0):
            return None
        pairs = self._pairs_with_grad()
        params = [p for _, p in pairs]
        loss = None
        if self.t % self.k == 0:
            if closure is None:
                raise ValueError("LookSAM.step requires closure on refresh steps "
                                 "(a full forward-backward pass)")
            g = [p.grad.detach().clone() for p in params]
            norm = self._grad_norm(g)
            self._perturb([(p, gp * (group["rho"] / (norm + self.eps)))
                           for (group, p), gp in zip(pairs, g, strict=True)])
            if self.restore == "every_step":
                for p in params:
                    self.state[p]["snapshot"] = self.state[p]["old_p"].clone()
            self.zero_grad()
            loss = self._closure_grad(closure)
            if self._skipping:
                return loss
            g_s = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            for p, gv in zip(params, self._orthogonal(g, g_s), strict=True):
                self.state[p]["g_v"] = gv
            self._restore()
            for p, gs in zip(params, g_s, strict=True):
                p.grad = gs
        else:
            g = [p.grad for p in params]
            g_v = [self.state[p].get("g_v", torch.zeros_like(p)) for p in params]
            if self.decomposition == "global":
                scale = self.alpha * self._grad_norm(g) / (self._grad_norm(g_v) + self.eps)
                scales = [scale] * len(params)
            else:
                scales = [self.alpha * gi.norm(p=2) / (gv.norm(p=2) + self.eps)
                          for gi, gv in zip(g, g_v, strict=True)]
            for p, s, gv in zip(params, scales, g_v, strict=True):
                p.grad.add_(gv * s)
            if self.restore == "every_step":
                for p in params:
                    if "snapshot" in self.state[p]:
                        p.copy_(self.state[p]["snapshot"])
        self._base_step()
        self.t += 1
        return loss

    def _orthogonal(self, g: list[torch.Tensor], g_s: list[torch.Tensor]) -> list[torch.Tensor]:
        """g_s − ⟨g, g_s⟩/‖g‖² g, globally or per tensor (g_s where g = 0)."""
        if self.decomposition == "global":
            gg = _dot(g, g)
            coef = _dot(g, g_s) / gg if float(gg) > 0 else torch.zeros_like(gg)
            return [gs - coef * gi for gi, gs in zip(g, g_s, strict=True)]
        out = []
        for gi, gs in zip(g, g_s, strict=True):
            gg = (gi * gi).sum()
            coef = (gi * gs).sum() / gg if float(gg) > 0 else torch.zeros_like(gg)
            out.append(gs - coef * gi)
        return out
