"""SSAM-F — Sparse SAM with a Fisher mask (Mi et al., NeurIPS 2022, arXiv 2210.05177;
Mi-Peng/Sparse-Sharpness-Aware-Minimization) as a torch optimizer; the equations and theory
notes are those of :class:`asam_theory.methods.SSAM` (``docs/methods.md`` §13).

Closure interface of :mod:`asam_theory.torch.sam_base` for the SAM step (the caller runs the
first backward at ``w``), and the per-sample interface for the mask: the optimizer is built
with ``model`` and ``criterion(output, targets, reduction="none")`` and, on the steps that
refresh the mask, ``step(closure, mask_inputs=x, mask_targets=y)`` takes the Fisher samples:
the first ``num_samples`` rows of ``x``/``y``, one single-sample backward each (BatchNorm
frozen), :math:`F=\\sum_i(\\nabla\\ell_i)^2` summed over every parameter, and the mask keeps the
``int(N (1 - sparsity))`` largest entries over all ``N`` parameters (stable descending sort:
ties keep the lower flat index).

Differences from the official ``SSAMF`` (all default to the paper's equations; the options
reproduce the official code, as the fixture test does):

* ``mask_start="after_first_step"``: the official mask starts at zero (no perturbation on the
  first step) and is recomputed *after* the step; ``"first_step"`` computes it before;
* ``fisher_zero_grad=False``: the official ``update_mask`` runs its first single-sample
  backward without clearing ``p.grad``, so the first Fisher term is
  :math:`(\\nabla\\ell_1+g_s)^2` with :math:`g_s` the gradient the step left there;
* ``eps=1e-7``: the official norm guard (this package's default 1e-12, as davda54/sam);
* the official code restores by subtracting ε (``p.sub_(e_w)``); here the weights are copied
  back (a difference of rounding only);
* update period in steps (``update_freq``), where the official one counts epochs and refreshes
  after the first batch of the epoch.

SSAM-D (``mask="dynamic"``, the official ``SSAMD``): a random initial mask (``torch.rand``
scores from ``generator``, or ``initial_mask`` given), updated every ``update_freq`` steps by
drop-and-grow between building the perturbation and running the closure, with the scores and
the cosine death rate of :class:`asam_theory.methods.SSAM`; no mask data is needed.

``batch_size`` (optional) is the descent batch size, used only to count the Fisher passes in
``counts`` in full-batch units (they are left out when it is ``None``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from asam_theory.torch._common import bn_frozen
from asam_theory.torch.sam_base import PerSampleCriterion, SAMFamily
from asam_theory.validation import check_choice, check_int, check_nonnegative, check_real

MASKS = ("fisher", "dynamic")
SCORES = ("weight", "gradient", "random")
MASK_START = ("first_step", "after_first_step")


class SSAM(SAMFamily):
    """SSAM-F wrapper around ``base_optimizer`` (a class).

    The first gradient only builds the (masked) perturbation, so under DDP it may stay per
    replica (:meth:`ascent_pass`); pass ``model=ddp.module`` for the Fisher passes (they use
    ``torch.autograd.grad``, which DDP does not all-reduce).  ``add_param_group`` is refused:
    the mask covers the parameters given at construction.

    Args:
        rho: radius ρ; sparsity: fraction of coordinates left unperturbed, in [0, 1);
        num_samples: Fisher samples per mask; update_freq: steps between masks;
        mask: ``"fisher"``; mask_start: ``"first_step"`` or ``"after_first_step"``;
        fisher_zero_grad: clear ``p.grad`` before the Fisher passes; eps: norm guard;
        batch_size: descent batch size for the counts; model, criterion: for the Fisher
        passes; max_grad_norm: clip the descent gradient (``None``: no clipping).
    """

    PER_REPLICA_ASCENT = True
    ADD_PARAM_GROUP = ("the sparsity mask is built over the parameters given at construction "
                       "(its top-k runs over all of them at once)")

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer],
                 rho: float = 0.05, sparsity: float = 0.5, num_samples: int = 16,
                 update_freq: int = 10, *, mask: str = "fisher",
                 mask_start: str = "first_step", fisher_zero_grad: bool = True,
                 eps: float = 1e-12, batch_size: int | None = None,
                 drop_rate: float = 0.5, drop_strategy: str = "gradient",
                 growth_strategy: str = "random", total_steps: int = 1000,
                 initial_mask: list[torch.Tensor] | None = None,
                 generator: torch.Generator | None = None,
                 model: nn.Module | None = None, criterion: PerSampleCriterion | None = None,
                 max_grad_norm: float | None = None, **kwargs: Any) -> None:
        self.sparsity = check_real("sparsity", sparsity, low=0.0, high=1.0, high_open=True)
        self.num_samples = check_int("num_samples", num_samples, low=1)
        self.update_freq = check_int("update_freq", update_freq, low=1)
        self.mask_kind = check_choice("mask", mask, MASKS)
        self.mask_start = check_choice("mask_start", mask_start, MASK_START)
        self.fisher_zero_grad = bool(fisher_zero_grad)
        self.drop_rate = check_real("drop_rate", drop_rate, low=0.0, high=1.0)
        self.drop_strategy = check_choice("drop_strategy", drop_strategy, SCORES)
        self.growth_strategy = check_choice("growth_strategy", growth_strategy, SCORES)
        self.total_steps = check_int("total_steps", total_steps, low=1)
        self.generator = generator
        self.eps = check_nonnegative("eps", eps)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size,
                                                                    low=1)
        super().__init__(params, base_optimizer, rho, model=model, criterion=criterion,
                         max_grad_norm=max_grad_norm, **kwargs)
        dynamic = self.mask_kind == "dynamic"
        if dynamic and self.sparsity > 0:
            self._init_dynamic(initial_mask)
        # sparsity 0 keeps everything (SAM); the official start has no mask before step 0
        elif self.sparsity == 0 or self.mask_start == "after_first_step":
            value = 1.0 if self.sparsity == 0 else 0.0
            for p in self._params():
                self.state[p]["mask"] = torch.full_like(p, value)

    def _set_flat_mask(self, mask: torch.Tensor) -> None:
        start = 0
        for p in self._params():
            self.state[p]["mask"] = mask[start:start + p.numel()].view_as(p).clone()
            start += p.numel()

    @staticmethod
    def _top(scores: torch.Tensor, keep: int) -> torch.Tensor:
        mask = torch.zeros_like(scores)
        mask[torch.sort(scores, descending=True, stable=True).indices[:keep]] = 1.0
        return mask

    @torch.no_grad()
    def _init_dynamic(self, initial_mask: list[torch.Tensor] | None) -> None:
        params = self._params()
        if initial_mask is not None:
            if len(initial_mask) != len(params):
                raise ValueError("initial_mask must hold one tensor per parameter")
            for p, m in zip(params, initial_mask, strict=True):
                self.state[p]["mask"] = m.detach().to(p).clone()
            return
        n = sum(p.numel() for p in params)
        scores = torch.rand(n, generator=self.generator, dtype=params[0].dtype)
        self._set_flat_mask(self._top(scores, n - math.ceil(n * self.sparsity)))

    def _scores(self, kind: str) -> torch.Tensor:
        params = self._params()
        if kind == "weight":
            return torch.cat([p.detach().abs().flatten() for p in params])
        if kind == "gradient":
            return torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad.abs()).flatten()
                              for p in params])
        n = sum(p.numel() for p in params)
        return torch.rand(n, generator=self.generator, dtype=params[0].dtype)

    @torch.no_grad()
    def dynamic_update(self) -> None:
        """Drop and grow at the current (perturbed) weights with the gradient in ``p.grad``."""
        params = self._params()
        mask = torch.cat([self.state[p]["mask"].flatten() for p in params])
        n = mask.numel()
        live = n - n * self.sparsity
        rate = self.drop_rate * (1 + math.cos(math.pi * self.t / self.total_steps)) / 2
        death = (self._scores(self.drop_strategy) + 1e-7) * mask
        growth = (self._scores(self.growth_strategy) + 1e-7) * (1 - mask)
        n_grow = int(min(live * rate, n * self.sparsity))
        self._set_flat_mask(self._top(death, int(live * (1 - rate))) + self._top(growth, n_grow))

    @torch.no_grad()
    def update_mask(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Fisher mask from the first ``num_samples`` samples of ``inputs``/``targets``."""
        model, criterion = self._require_per_sample()
        if inputs.shape[0] < self.num_samples:
            raise ValueError(f"mask_inputs must hold at least num_samples={self.num_samples} "
                             f"samples, got {inputs.shape[0]}")
        params = self._params()
        fisher = [torch.zeros_like(p) for p in params]
        carry = None
        if not self.fisher_zero_grad:
            carry = [None if p.grad is None else p.grad.detach().clone() for p in params]
        with torch.enable_grad(), bn_frozen(model):
            for i in range(self.num_samples):
                out = model(inputs[i:i + 1])
                loss = criterion(out, targets[i:i + 1], reduction="none").mean()
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                for j, (f, gr) in enumerate(zip(fisher, grads, strict=True)):
                    if gr is None:
                        gr = torch.zeros_like(f)
                    if i == 0 and carry is not None and carry[j] is not None:
                        gr = gr + carry[j]
                    f.add_(gr.square())
        if self.batch_size is not None:
            self.counts["grads"] += self.num_samples / self.batch_size
        flat = torch.cat([f.flatten() for f in fisher])
        keep = int(flat.numel() * (1 - self.sparsity))
        order = torch.sort(flat, descending=True, stable=True).indices[:keep]
        mask = torch.zeros_like(flat)
        mask[order] = 1.0
        start = 0
        for p in params:
            self.state[p]["mask"] = mask[start:start + p.numel()].view_as(p).clone()
            start += p.numel()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None, *,  # type: ignore[override]
             mask_inputs: torch.Tensor | None = None,
             mask_targets: torch.Tensor | None = None,
             scaler: torch.amp.GradScaler | None = None) -> Any:
        """One SSAM step; the gradient at ``w`` must be in ``p.grad``.  Mask data is needed
        on the steps that refresh the mask (``t % update_freq == 0``).  ``scaler``: the
        training stack's GradScaler contract (:mod:`asam_theory.torch.stack`); a skipped step
        leaves the mask as it was."""
        if closure is None:
            raise ValueError("SSAM.step requires closure (a full forward-backward pass)")
        refresh = self.sparsity > 0 and self.t % self.update_freq == 0
        dynamic = self.mask_kind == "dynamic"
        if refresh and not dynamic and (mask_inputs is None or mask_targets is None):
            raise ValueError("this step refreshes the mask: pass mask_inputs= and "
                             "mask_targets=")
        self.counts["grads"] += 1.0
        self._begin_step(scaler)
        if not self._pass_finite(0):
            return None
        masks = None  # the masks before a refresh, put back if the step is skipped
        if refresh and scaler is not None:
            masks = {p: self.state[p].get("mask") for p in self._params()}
            masks = {p: None if m is None else m.clone() for p, m in masks.items()}
        if refresh and not dynamic and self.mask_start == "first_step":
            self.update_mask(mask_inputs, mask_targets)
        pairs = self._pairs_with_grad()
        g = [p.grad for _, p in pairs]
        norm = self._grad_norm(g)
        self._perturb([(p, p.grad * (group["rho"] / (norm + self.eps)) * self.state[p]["mask"])
                       for group, p in pairs])
        if refresh and dynamic:
            self.dynamic_update()
        self.zero_grad()
        loss = self._closure_grad(closure)
        if self._skipping:
            for p, m in (masks or {}).items():
                if m is None:
                    self.state[p].pop("mask", None)
                else:
                    self.state[p]["mask"] = m
            return loss
        self._restore()
        self._base_step()
        if refresh and not dynamic and self.mask_start == "after_first_step":
            self.update_mask(mask_inputs, mask_targets)
        self.t += 1
        return loss

    def mask_density(self) -> float:
        """Fraction of coordinates the mask keeps."""
        masks = [self.state[p]["mask"] for p in self._params()]
        return float(sum(m.sum() for m in masks)) / sum(m.numel() for m in masks)
