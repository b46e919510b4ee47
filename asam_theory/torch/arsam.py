r"""ARSAM via the vSAM rule (Deng & Pang, arXiv 2510.03763 / 2403.08821) as a torch optimizer;
the equations, the adaptive sampling schedule and the theory notes are those of
:class:`asam_theory.methods.ARSAM` (``docs/methods.md`` §7).  ARSAM's own mixing rule is
**NOT FOUND** (its repository could not be read); this is the authors' public vSAM rule.

Closure interface of :mod:`asam_theory.torch.sam_base` (as davda54/sam): the caller runs
``loss.backward()`` at ``w``, then ``opt.step(closure)``; the closure (a full forward +
backward returning the loss) is called only on SAM steps, with BatchNorm frozen (vSAM's
``disable_running_stats``) and after the gradients have been zeroed.  On a SAM step the PSF
:math:`g^{SAM}-g` is kept per parameter (``state[p]["psf"]``); on a reuse step
:math:`w\,\text{PSF}` is added to ``p.grad`` while :math:`w>\beta^R`.  The schedule statistics
use the norms over the last ``last_layer`` parameters (vSAM's ``_grad_l2_norm_layer_N``;
parameters in group order).  The sampling draws come from ``rng`` (a ``random.Random``; the
official code uses the module-level ``random``), drawn only where the official condition
evaluates them (``n < ⌊s⌋ and random() >= 1 - p``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

import torch

from asam_theory.torch.sam_base import SAMFamily
from asam_theory.validation import check_int, check_real


class ARSAM(SAMFamily):
    """vSAM-rule wrapper around ``base_optimizer`` (a class).

    Args:
        rho: radius ρ; beta: PSF decay β ∈ [0, 1); reuse_steps: R; window: K ≥ 2;
        blocks: variance blocks (``window // blocks`` ≥ 2); max_p: cap of the sampling
        probability; a1, a2: schedule gains; warmup_steps: SAM steps first (``None``: 3 K;
        at least K); last_layer: parameters entering the statistics;
        sampling_probability: fixed probability instead of the adaptive schedule;
        rng: ``random.Random`` of the draws; eps: norm guard; model: for BatchNorm.
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer],
                 rho: float = 0.05, *, beta: float = 0.7, reuse_steps: int = 6,
                 window: int = 50, blocks: int = 5, max_p: float = 0.8, a1: float = 0.13,
                 a2: float = 0.13, warmup_steps: int | None = None, last_layer: int = 10,
                 sampling_probability: float | None = None, rng: random.Random | None = None,
                 eps: float = 1e-12, model: torch.nn.Module | None = None,
                 max_grad_norm: float | None = None, **kwargs: Any) -> None:
        self.beta = check_real("beta", beta, low=0.0, high=1.0, high_open=True)
        self.reuse_steps = check_int("reuse_steps", reuse_steps, low=0)
        self.window = check_int("window", window, low=2)
        self.blocks = check_int("blocks", blocks, low=1)
        if window // blocks < 2:
            raise ValueError(f"window // blocks must be at least 2, got window={window}, "
                             f"blocks={blocks}")
        self.max_p = check_real("max_p", max_p, low=0.0, high=1.0, low_open=True)
        self.a1 = check_real("a1", a1, low=0.0)
        self.a2 = check_real("a2", a2, low=0.0)
        self.warmup = 3 * window if warmup_steps is None else check_int(
            "warmup_steps", warmup_steps, low=window)
        self.last_layer = check_int("last_layer", last_layer, low=1)
        self.sampling_probability = None if sampling_probability is None else check_real(
            "sampling_probability", sampling_probability, low=0.0, high=1.0)
        self.rng = random.Random(0) if rng is None else rng
        self.eps = check_real("eps", eps, low=0.0)
        super().__init__(params, base_optimizer, rho, model=model, max_grad_norm=max_grad_norm,
                         **kwargs)
        K = self.window
        self.max_sr = int(K * self.max_p)
        self.flag, self.sr_now, self.base_sr, self.prob = 1, 0, 1.0, 0.5
        self.w, self.n_sam = self.beta, 0
        self.psf_hist = torch.zeros(K, dtype=torch.float64)
        self.ratio_hist = torch.zeros(K, dtype=torch.float64)
        self.var_hist = torch.zeros(K, dtype=torch.float64)
        self.last_sampled = False

    # -- schedule ---------------------------------------------------------------------------
    @staticmethod
    def _mean_change(hist: torch.Tensor) -> float:
        r = ((hist[1:] - hist[:-1]) / hist[:-1]).mean().item()
        return min(max(r, -1.0), 1.0)

    def _variance(self) -> torch.Tensor:
        w = self.window // self.blocks
        s = torch.sort(self.psf_hist).values
        return torch.stack([torch.var(s[j * w:(j + 1) * w]) for j in range(self.blocks)]).mean()

    def decide(self) -> bool:
        """Whether this step is a SAM step (advances the schedule)."""
        if self.t < self.warmup:
            return True
        if self.sampling_probability is not None:
            return self.rng.random() < self.sampling_probability
        K = self.window
        if self.flag % K == 0:
            rn, rv = self._mean_change(self.ratio_hist), self._mean_change(self.var_hist)
            s = self.base_sr * (1 + self.a1 * rn + self.a2 * rv)
            s = max(min(s, self.max_sr), 1)
            self.base_sr, self.prob, self.sr_now = s, s / K, 0
        quota = int(self.base_sr)
        use = (self.sr_now < quota and self.rng.random() >= 1 - self.prob) or (
            K - self.flag % K <= quota - self.sr_now)
        self.flag += 1
        return use

    @staticmethod
    def _push(hist: torch.Tensor, value: float) -> torch.Tensor:
        return torch.cat([hist[1:], torch.tensor([value], dtype=torch.float64)])

    def _norm_last(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        return self._grad_norm(tensors[-self.last_layer:])

    # -- step -------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None, *,  # type: ignore[override]
             scaler: torch.amp.GradScaler | None = None) -> Any:
        """One step; the first backward (at w) must already be done by the caller.  Returns
        the closure's loss on SAM steps, ``None`` on reuse steps.  ``scaler``: the training
        stack's GradScaler contract (:mod:`asam_theory.torch.stack`)."""
        if closure is None:
            raise ValueError("ARSAM.step requires closure (a full forward-backward pass)")
        self.counts["grads"] += 1.0  # the caller's backward at w
        self._begin_step(scaler)
        if not self._pass_finite(0):
            return None
        pairs = self._pairs_with_grad()
        use = self.decide()
        self.last_sampled = use
        loss = None
        if use:
            grads = [p.grad.clone() for _, p in pairs]
            norm = self._grad_norm(grads)
            self._perturb([(p, g * (group["rho"] / (norm + self.eps)).to(g))
                           for (group, p), g in zip(pairs, grads, strict=True)])
            self.zero_grad()
            loss = self._closure_grad(closure)
            if self._skipping:
                return loss
            self._restore()
            psf = []
            for (_, p), g in zip(pairs, grads, strict=True):
                self.state[p]["psf"] = p.grad - g
                psf.append(self.state[p]["psf"])
            psf_norm = float(self._norm_last(psf))
            og_norm = float(self._norm_last(grads))
            self.psf_hist = self._push(self.psf_hist, psf_norm)
            self.ratio_hist = self._push(self.ratio_hist, psf_norm / og_norm)
            self.var_hist = self._push(self.var_hist, float(self._variance()))
            self.w = 1.0
            self.sr_now += 1
            self.n_sam += 1
        elif self.w > self.beta ** self.reuse_steps:
            self.w = self.w * self.beta
            for _, p in pairs:
                if "psf" in self.state[p]:
                    p.grad = p.grad + self.w * self.state[p]["psf"]
        if self.t < self.warmup:
            self.sr_now = 1
        self._base_step()
        self.t += 1
        return loss

    # -- state ------------------------------------------------------------------------------
    def _method_state(self) -> dict[str, Any]:
        st = super()._method_state()
        st.update(flag=self.flag, sr_now=self.sr_now, base_sr=self.base_sr, prob=self.prob,
                  w=self.w, n_sam=self.n_sam, psf_hist=self.psf_hist.clone(),
                  ratio_hist=self.ratio_hist.clone(), var_hist=self.var_hist.clone(),
                  rng=self.rng.getstate())
        return st

    def _load_method_state(self, state: dict[str, Any]) -> None:
        super()._load_method_state(state)
        for key in ("flag", "sr_now", "base_sr", "prob", "w", "n_sam"):
            if key in state:
                setattr(self, key, state[key])
        for key in ("psf_hist", "ratio_hist", "var_hist"):
            if key in state:
                setattr(self, key, state[key].clone())
        if "rng" in state:
            self.rng.setstate(state["rng"])
