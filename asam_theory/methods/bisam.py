r"""BiSAM — bilevel SAM with a 0-1 lower-bound ascent (Xie, Latorre, Antonakopoulos, Pethick,
Cevher, "Improving SAM requires rethinking its optimization formulation", ICML 2024,
arXiv 2407.12993; ``docs/methods.md`` §14b; official code LIONS-EPFL/BiSAM).

SAM's inner maximisation should increase the 0-1 loss; BiSAM's ascent therefore follows a
*lower* bound :math:`Q` of the 0-1 loss (:meth:`asam_theory.problems.SoftmaxRegression.
lower_bound_losses`: log-sum-exp of :math:`\mu\phi` of the margins, :math:`\phi` = ``"log"`` or
``"tanh"``) while the descent keeps the usual loss:

.. math::
    q_t=\nabla Q_{B_t}(x_t),\qquad \epsilon_t=\rho\,\frac{q_t}{\|q_t\|+\text{eps}},\qquad
    x_{t+1}=\text{BaseStep}\big(x_t,\nabla f_{B_t}(x_t+\epsilon_t)\big).

Cost 2 gradients, depth 2, as SAM.  The official ``loss_fnc.py`` computes the per-sample ascent
loss without the factor :math:`1/\mu` (a constant scale, irrelevant after normalisation up to
the ``eps`` guard; identical at its default :math:`\mu=1`).  Official defaults: ``bound="log"``,
:math:`\mu=1`, tanh slope :math:`\alpha=0.1`, ρ = 0.05.  It needs a classification finite sum
(a problem with ``lower_bound_grad``).

**Theory.** T1 applies in its *same-batch* form: :math:`\|\epsilon_t\|\le\rho` and the descent
gradient is taken on the batch that built :math:`\epsilon_t`, which the same-batch bound pays for
(``asam_theory.theory.bounds.t1_bound(..., same_batch=True)``; it needs every minibatch loss
L-smooth — for softmax regression every component is ``L_component``-smooth).  The direction
of :math:`\epsilon_t` never enters T1, so using :math:`\nabla Q` instead of :math:`\nabla f` does
not matter there.  T3 applies only with the full batch (exact oracle) on a PL problem
(softmax regression with ``l2 > 0`` is μ-strongly convex, hence PL): with minibatches
:math:`\epsilon_t` is built on the descent batch, which T3's assumption (a perturbation
independent of the descent noise) excludes.
"""

from __future__ import annotations

from dataclasses import dataclass

from asam_theory.methods.base import Cost, State, StepInfo
from asam_theory.methods.rules import _Perturbed
from asam_theory.problems.base import ProblemWrapper
from asam_theory.validation import check_choice, check_real

BOUNDS = ("log", "tanh")


@dataclass(frozen=True)
class BiSAM(_Perturbed):
    """BiSAM (module docstring): ``bound`` the 0-1 lower bound, ``mu`` its log-sum-exp
    temperature μ > 0, ``alpha`` the tanh slope α > 0."""

    name = "bisam"
    needs_finite_sum = True

    bound: str = "log"
    mu: float = 1.0
    alpha: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("bound", self.bound, BOUNDS)
        check_real("mu", self.mu, low=0.0, low_open=True)
        check_real("alpha", self.alpha, low=0.0, low_open=True)

    @classmethod
    def supports(cls, problem) -> bool:
        """Whether ``problem`` (through its wrappers) defines BiSAM's ascent loss."""
        while isinstance(problem, ProblemWrapper):
            problem = problem.base
        return hasattr(problem, "lower_bound_grad")

    @property
    def cost(self) -> Cost:
        return Cost(2, 2)

    def validate(self, problem) -> None:
        super().validate(problem)
        if not self.supports(problem):
            raise ValueError("problem must define BiSAM's ascent loss (lower_bound_grad), e.g. "
                             f"SoftmaxRegression; got {type(problem).__name__}")

    def step(self, state, problem, streams):
        ws, x = state.ws, state.x
        batch = self.descent_batch(problem, streams)
        q = problem.lower_bound_grad(x, batch, self.bound, self.mu, self.alpha)
        e = self.perturbation(q, normalize=True, out=ws.buf("e", x))
        g = problem.batch_grad(self.perturbed_point(x, e, ws), batch, out=ws.buf("g", x))
        x_next, buf = self.base_step(x, g, state.buf, out=ws.ring("x", 2, state.t + 1, x))
        info = StepInfo(problem, x, g, e, q)
        return State(x_next, state.t + 1, buf, state.extra, ws), info
