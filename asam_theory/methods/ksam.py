r"""K-SAM (Ni, Chiang, Geiping, Goldblum, Wilson, Goldstein, "K-SAM: Sharpness-Aware
Minimization at the Speed of SGD", arXiv 2210.12864; ``docs/methods.md`` §11).  No public
code: written from the paper's equations.

A forward pass over the drawn batch :math:`B_t` (b samples) ranks the samples by loss; both
SAM gradients are then computed on the ``k`` samples of largest loss only:

.. math::
    B^k_t=\operatorname{top-}k_{i\in B_t}\,f_i(x_t),\qquad
    g=\nabla f_{B^k_t}(x_t),\qquad
    x_{t+1}=\text{BaseStep}\Big(x_t,\nabla f_{B^k_t}\big(x_t+\rho\tfrac{g}{\|g\|+\text{eps}}
    \big)\Big).

Ties in the losses are broken towards the sample drawn first.  ``k = b`` is SAM on the whole
batch (the tested limit); ρ = 0 is SGD on the top-k samples (SGD itself only for k = b).

Cost: one forward pass over the batch (``forwards_per_step`` 1) and two gradients over
``k`` of the ``b`` samples: :math:`2k/b` gradients per step, sequential depth :math:`2k/b`
(after the forward pass).

Theory: T1 needs an unbiased stochastic gradient of ``f`` at the perturbed point; the top-k
batch is chosen by loss, so :math:`\mathbb E\,\nabla f_{B^k}(x)\neq\nabla f(x)` for k < b —
the descent direction is a *biased* estimate and T1 does not apply (it does for k = b, where
K-SAM is SAM).  T3 (T1's hypotheses plus the PL inequality) needs the same unbiased
gradient, so it does not apply for k < b either, although the perturbation has norm ≤ ρ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from asam_theory.methods.base import Cost, State, StepInfo
from asam_theory.methods.rules import _Perturbed
from asam_theory.validation import check_int, check_real


def top_k_columns(losses: np.ndarray, k: int) -> np.ndarray:
    """Column indices ``(M, k)`` of the ``k`` largest entries per row (ties: lower column
    first), in decreasing order of loss."""
    return np.argsort(-losses, axis=1, kind="stable")[:, :k]


@dataclass(frozen=True)
class KSAM(_Perturbed):
    """K-SAM with ``k`` ∈ [1, batch_size] samples, or (``k=None``) the fraction ``k_fraction``
    ∈ (0, 1] of the batch, :math:`k=\\max(\\lfloor\\text{k\\_fraction}\\cdot b\\rfloor,1)`.
    The rule's default (``k=None``, fraction 1) is SAM on the whole batch after a forward pass;
    the methods catalogue builds K-SAM with ``k_fraction = 0.5`` (half the batch: 1 F + 1 G per
    step), since the paper's value of k is not stated in the sources read."""

    name = "ksam"
    needs_finite_sum: ClassVar[bool] = True

    k: int | None = None
    k_fraction: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k is not None:
            check_int("k", self.k, low=1, high=self.batch_size)
        check_real("k_fraction", self.k_fraction, low=0.0, high=1.0, low_open=True)

    @property
    def k_eff(self) -> int:
        if self.k is not None:
            return self.k
        return max(int(self.k_fraction * self.batch_size), 1)

    @property
    def cost(self) -> Cost:
        frac = self.k_eff / self.batch_size
        return Cost(2 * frac, 2 * frac, forwards_per_step=1.0)

    def validate(self, problem) -> None:
        super().validate(problem)
        if not hasattr(problem, "n"):
            raise ValueError("KSAM needs a finite-sum problem (per-sample losses)")

    def select(self, x: np.ndarray, problem, batch) -> np.ndarray:
        """The top-k sample indices ``(M, k)`` of ``batch`` at ``x`` (one forward pass)."""
        idx = problem.batch_indices(batch, x.shape[0])
        losses = problem.per_sample_losses(x, idx)
        return np.take_along_axis(idx, top_k_columns(losses, self.k_eff), axis=1)

    def step(self, state, problem, streams):
        ws, x, t = state.ws, state.x, state.t
        batch = self.descent_batch(problem, streams)
        sub = self.select(x, problem, batch)
        g = problem.batch_grad(x, sub, out=ws.buf("g_asc", x))
        e = self.perturbation(g, normalize=True, out=ws.buf("e", x))
        g_s = problem.batch_grad(self.perturbed_point(x, e, ws), sub, out=ws.buf("g", x))
        x_next, buf = self.base_step(x, g_s, state.buf, out=ws.ring("x", 2, t + 1, x))
        info = StepInfo(problem, x, g_s, e, g)
        return State(x_next, t + 1, buf, state.extra, ws), info
