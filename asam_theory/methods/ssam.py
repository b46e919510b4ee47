r"""SSAM — Sparse SAM with a Fisher mask, SSAM-F (Mi, Shen, Ren, Zhou, Sun, Ji, Tao, "Make
Sharpness-Aware Minimization Stronger: A Sparsified Perturbation Approach", NeurIPS 2022,
arXiv 2210.05177; official code Mi-Peng/Sparse-Sharpness-Aware-Minimization;
``docs/methods.md`` §13).

SAM whose perturbation is restricted to a binary mask :math:`m` that keeps the
:math:`\lfloor d(1-s)\rfloor` coordinates of largest empirical Fisher information, :math:`s`
the sparsity; the norm is that of the full (unmasked) gradient, as in the official code:

.. math::
    g=\nabla f_{B_t}(x_t),\qquad \epsilon_t=\rho\frac{g}{\|g\|+\text{eps}}\odot m,\qquad
    x_{t+1}=\text{BaseStep}\big(x_t,\nabla f_{B_t}(x_t+\epsilon_t)\big),

.. math::
    F_j=\sum_{i\in S}\big(\partial_j f_i(x)\big)^2,\qquad
    m=\mathbb 1\big[j\in\operatorname{top-}\lfloor d(1-s)\rfloor F\big],

over ``num_samples`` single samples :math:`S` drawn without replacement from the finite sum
(stream ``"mask"``), recomputed every ``update_freq`` steps:

* ``mask_start="first_step"`` (default): the mask is computed at :math:`x_t` at the start of
  steps :math:`t=0,F,2F,\dots`, so every step uses a mask;
* ``mask_start="after_first_step"`` (the official code, where the mask starts at zero and is
  recomputed after the first batch of every ``update_freq``-th epoch): step 0 has a zero mask
  (no perturbation) and the mask is computed at :math:`x_{t+1}` after steps
  :math:`t=0,F,2F,\dots`.

Ties in the Fisher values are broken towards the lower coordinate.  Sparsity 0 keeps every
coordinate — SAM — and then no Fisher values are computed.

Cost: 2 gradients per step plus ``num_samples`` per-sample gradients every ``update_freq``
steps: :math:`2+\text{num\_samples}/(b\cdot\text{update\_freq})` per step (2 for s = 0);
sequential depth the same.

Theory: :math:`\|\epsilon_t\|\le\rho` (a masked vector is no longer than the vector), the
descent gradient is an unbiased minibatch gradient at a point within ρ of :math:`x_t`, so T1
applies; T3 (stale perturbations) does not: the perturbation is fresh (the mask is stale, but a
mask only shortens it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from asam_theory.methods.base import Cost, State, StepInfo, row_norms
from asam_theory.methods.rules import _Perturbed
from asam_theory.validation import check_choice, check_int, check_real

MASKS = ("fisher",)
MASK_START = ("first_step", "after_first_step")


def keep_count(dim: int, sparsity: float) -> int:
    r""":math:`\lfloor d(1-s)\rfloor` coordinates kept (the official ``int(len * (1 - s))``)."""
    return int(dim * (1 - sparsity))


def top_mask(scores: np.ndarray, keep: int) -> np.ndarray:
    """0/1 mask ``(M, d)`` keeping the ``keep`` largest scores per row (ties: lower index)."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :keep]
    mask = np.zeros_like(scores)
    np.put_along_axis(mask, order, 1.0, axis=1)
    return mask


@dataclass(frozen=True)
class SSAM(_Perturbed):
    """SSAM-F with ``sparsity`` ∈ [0, 1), ``num_samples`` ≥ 1 Fisher samples and
    ``update_freq`` ≥ 1 steps between mask updates (official defaults: s = 0.5,
    num_samples = 16 on CIFAR)."""

    name = "ssam"
    needs_finite_sum: ClassVar[bool] = True

    sparsity: float = 0.5
    num_samples: int = 16
    update_freq: int = 10
    mask: str = "fisher"
    mask_start: str = "first_step"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real("sparsity", self.sparsity, low=0.0, high=1.0, high_open=True)
        check_int("num_samples", self.num_samples, low=1)
        check_int("update_freq", self.update_freq, low=1)
        check_choice("mask", self.mask, MASKS)
        check_choice("mask_start", self.mask_start, MASK_START)

    @property
    def cost(self) -> Cost:
        if self.sparsity == 0:
            return Cost(2, 2)
        extra = self.num_samples / (self.batch_size * self.update_freq)
        return Cost(2 + extra, 2 + extra)

    def validate(self, problem) -> None:
        super().validate(problem)
        if not hasattr(problem, "n"):
            raise ValueError("SSAM needs a finite-sum problem (per-sample Fisher values)")
        if self.sparsity > 0:
            problem.check_batch_size("num_samples", self.num_samples)

    def fisher_mask(self, x: np.ndarray, problem, streams) -> np.ndarray:
        """The Fisher mask at ``x`` from ``num_samples`` fresh single samples."""
        idx = problem.sample_batch(streams, "mask", self.num_samples)
        idx = problem.batch_indices(idx, x.shape[0])
        fisher = np.sum(problem.per_sample_grads(x, idx) ** 2, axis=1)
        return top_mask(fisher, keep_count(x.shape[1], self.sparsity))

    def init(self, x0, problem, streams):
        state = super().init(x0, problem, streams)
        if self.sparsity == 0:
            mask = np.ones_like(state.x)
        elif self.mask_start == "first_step":
            mask = None  # computed at the start of step 0
        else:
            mask = np.zeros_like(state.x)
        state.extra = {"mask": mask}
        return state

    def step(self, state, problem, streams):
        ws, x, t = state.ws, state.x, state.t
        mask = state.extra["mask"]
        refresh = self.sparsity > 0 and t % self.update_freq == 0
        if refresh and self.mask_start == "first_step":
            mask = self.fisher_mask(x, problem, streams)
        batch = self.descent_batch(problem, streams)
        g = problem.batch_grad(x, batch, out=ws.buf("g_asc", x))
        e = self.perturbation(g, normalize=True, out=ws.buf("e", x))
        e *= mask
        g_s = problem.batch_grad(self.perturbed_point(x, e, ws), batch, out=ws.buf("g", x))
        x_next, buf = self.base_step(x, g_s, state.buf, out=ws.ring("x", 2, t + 1, x))
        if refresh and self.mask_start == "after_first_step":
            mask = self.fisher_mask(x_next, problem, streams)
        info = StepInfo(problem, x, g_s, e, g,
                        sam_direction=g / (row_norms(g) + self.eps)[:, None])
        return State(x_next, t + 1, buf, {"mask": mask}, ws), info
