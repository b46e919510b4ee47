r"""LookSAM (Liu, Mai, Chen, Hsieh, You, "Towards Efficient and Scalable Sharpness-Aware
Minimization", CVPR 2022, arXiv 2203.02714; ``docs/methods.md`` §9).

Every ``k``-th step (:math:`t\bmod k=0`) is a SAM step that also stores the component of the
SAM gradient orthogonal to the plain gradient; the other steps reuse it:

.. math::
    t\bmod k=0:&\quad g=\nabla f_{B_t}(x_t),\ \epsilon_t=\rho\frac{g}{\|g\|+\text{eps}},\
    g_s=\nabla f_{B_t}(x_t+\epsilon_t),\ g_v=g_s-\frac{\langle g,g_s\rangle}{\|g\|^2}\,g,\
    d_t=g_s,\\
    \text{else}:&\quad g=\nabla f_{B_t}(x_t),\
    d_t=g+\alpha\frac{\|g\|}{\|g_v\|+\text{eps}}\,g_v,

:math:`x_{t+1}=\text{BaseStep}(x_t,d_t)`.  (:math:`g_v=g_s-\|g_s\|\cos\theta\,g/\|g\|` of
the paper; :math:`g_v=g_s` when :math:`g=0`.)  The weights are perturbed only on refresh
steps and restored only after a perturbation.  rollovd/LookSAM (and the other public
implementations read for ``docs/methods.md`` §9, which use the same line) write
``p.data = state[p]["old_p"]`` on *every* step; because that assignment makes the parameter
share storage with the snapshot, which the base step then updates in place, the write is a
no-op on reuse steps and their output equals restore-after-perturbation —
``tests/torch/test_reference_looksam.py`` shows rollovd/LookSAM's trajectory equal to
:class:`asam_theory.torch.LookSAM` to 1e-10, and a restore that *copies* the snapshot back on
every step (``restore="every_step"`` there) departing from it.

Cost: :math:`1+1/k` gradients per step on average (2 on refresh steps, 1 on reuse steps);
sequential depth :math:`1+1/k`.

Theory: T1 (the descent gradient is a gradient at a point within ρ of :math:`x_t`) applies to
the refresh steps only — a reuse step's direction :math:`g+\alpha\frac{\|g\|}{\|g_v\|}g_v` is
not a perturbed gradient at all (it is a gradient plus a stored vector of norm
:math:`\alpha\|g\|`), so T1 does not cover LookSAM for k > 1; for k = 1 LookSAM is SAM and
T1 applies as to SAM, and T3 (T1's hypotheses plus the PL inequality) under PL.  For k > 1 T3
does not apply either: it rests on the same perturbed-gradient step as T1, and the reused
object is a gradient difference, not a perturbation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asam_theory.methods.base import Cost, State, StepInfo, row_norms
from asam_theory.methods.rules import _Perturbed
from asam_theory.validation import check_int, check_real


def orthogonal_component(g: np.ndarray, g_s: np.ndarray) -> np.ndarray:
    r""":math:`g_s-\frac{\langle g,g_s\rangle}{\|g\|^2}g` per row (``g_s`` where ``g = 0``)."""
    gg = np.einsum("md,md->m", g, g)
    coef = np.divide(np.einsum("md,md->m", g, g_s), gg, out=np.zeros_like(gg), where=gg > 0)
    return g_s - coef[:, None] * g


@dataclass(frozen=True)
class LookSAM(_Perturbed):
    """LookSAM with refresh period ``k`` ≥ 1 and reuse weight ``alpha`` ≥ 0 (defaults of the
    public implementations: k = 10, α = 0.7)."""

    name = "looksam"

    k: int = 10
    alpha: float = 0.7

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("k", self.k, low=1)
        check_real("alpha", self.alpha, low=0.0)

    @property
    def cost(self) -> Cost:
        return Cost(1 + 1 / self.k, 1 + 1 / self.k)

    def init(self, x0, problem, streams):
        state = super().init(x0, problem, streams)
        state.extra = {"g_v": np.zeros_like(state.x)}
        return state

    def step(self, state, problem, streams):
        ws, x, t = state.ws, state.x, state.t
        batch = self.descent_batch(problem, streams)
        g = problem.batch_grad(x, batch, out=ws.buf("g_asc", x))
        if t % self.k == 0:
            e = self.perturbation(g, normalize=True, out=ws.buf("e", x))
            g_s = problem.batch_grad(self.perturbed_point(x, e, ws), batch, out=ws.buf("g", x))
            g_v = orthogonal_component(g, g_s)
            d, info_e, skipped = g_s, e, False
            extra = {"g_v": g_v}
        else:
            g_v = state.extra["g_v"]
            scale = self.alpha * row_norms(g) / (row_norms(g_v) + self.eps)
            d = g + scale[:, None] * g_v
            info_e, skipped, extra = None, True, state.extra
        x_next, buf = self.base_step(x, d, state.buf, out=ws.ring("x", 2, t + 1, x))
        info = StepInfo(problem, x, d, info_e, g, skipped=skipped,
                        sam_direction=g / (row_norms(g) + self.eps)[:, None])
        return State(x_next, t + 1, buf, extra, ws), info
