r"""AE-SAM: an adaptive policy to employ SAM (Jiang, Yang, Zhang, Kwok, ICLR 2023,
arXiv 2304.14647; ``docs/methods.md`` §10).  No public code: written from the paper's equations.

Each step computes :math:`g_t=\nabla f_{B_t}(x_t)`, updates running statistics of the squared
stochastic gradient norm and takes a SAM step only when the norm is large:

.. math::
    \mu_t=\delta\mu_{t-1}+(1-\delta)\|g_t\|^2,\qquad
    \sigma_t^2=\delta\sigma_{t-1}^2+(1-\delta)(\|g_t\|^2-\mu_t)^2,\qquad
    c_t=\tfrac{t}{T}\lambda_1+\big(1-\tfrac{t}{T}\big)\lambda_2,

.. math::
    x_{t+1}=\begin{cases}\text{BaseStep}\big(x_t,\nabla f_{B_t}(x_t+\rho g_t/(\|g_t\|+
    \text{eps}))\big) & \|g_t\|^2\ge\mu_t+c_t\sigma_t\\
    \text{BaseStep}(x_t,g_t)&\text{otherwise,}\end{cases}

with :math:`\mu_{-1}=\sigma_{-1}^2=0`, :math:`T` = ``total_steps`` (``t/T`` capped at 1).
The decision is taken per seed.  :math:`c=-\infty` gives SAM on every step and
:math:`c=+\infty` SGD on every step (the limits tested).  The paper's values of δ, λ₁, λ₂ were
not readable; the defaults here (δ = 0.9, λ₁ = λ₂ = 0: SAM whenever the squared norm is at
least its running mean) are this package's choice.

Cost: 1 gradient + 1 on SAM steps; declared from the recorded decisions
(:meth:`AESAM.realised_cost`, the fraction :math:`p` of seed-steps that used SAM gives
:math:`1+p`); :attr:`AESAM.cost` is the upper bound 2.

Theory: T1 applies to the SAM steps (the descent gradient is taken at a point within ρ of
:math:`x_t`), and trivially to the SGD steps (perturbation 0, norm ≤ ρ): every step's descent
gradient is a gradient at some :math:`x_t+\epsilon_t` with :math:`\|\epsilon_t\|\le\rho`, so
T1 covers AE-SAM, and so does T3 on PL objectives (its hypotheses are T1's plus the PL
inequality).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asam_theory.methods.base import Cost, SamOrSgdCost, State, StepInfo, row_norms
from asam_theory.methods.rules import _Perturbed
from asam_theory.validation import check_int, check_real


def check_threshold(name: str, value: float) -> float:
    """A threshold λ as a float: any real number or ±inf, not NaN."""
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{name} must be a real number in [-inf, inf], got {value!r}")
    return v


def threshold_coefficient(t: int, total_steps: int, lambda1: float, lambda2: float) -> float:
    r""":math:`c_t=\frac tT\lambda_1+(1-\frac tT)\lambda_2` (t/T capped at 1; the ends exact,
    so ±inf thresholds stay inf)."""
    s = min(t / total_steps, 1.0)
    if s == 0.0:
        return lambda2
    if s == 1.0:
        return lambda1
    return s * lambda1 + (1 - s) * lambda2


def update_statistics(sq, mu, var, delta: float):
    r"""AE-SAM's running moments of :math:`\|g_t\|^2` (scalars or arrays alike):
    :math:`\mu\leftarrow\delta\mu+(1-\delta)s`, then
    :math:`\sigma^2\leftarrow\delta\sigma^2+(1-\delta)(s-\mu)^2`; returns ``(mu, var)``."""
    mu = delta * mu + (1 - delta) * sq
    var = delta * var + (1 - delta) * (sq - mu) ** 2
    return mu, var


def sam_wanted(sq, mu, var, c: float):
    r"""Whether a step takes SAM: :math:`s\ge\mu+c\sigma` (``c = -inf``: always, ``+inf``:
    never); same shape as ``sq``."""
    if math.isinf(c):
        return np.full(np.shape(sq), c < 0)
    return sq >= mu + c * np.sqrt(var)


@dataclass(frozen=True)
class AESAM(SamOrSgdCost, _Perturbed):
    """AE-SAM with decay ``delta`` ∈ [0, 1), thresholds ``lambda1``/``lambda2`` (±inf allowed)
    and schedule length ``total_steps``."""

    name = "aesam"

    delta: float = 0.9
    lambda1: float = 0.0
    lambda2: float = 0.0
    total_steps: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real("delta", self.delta, low=0.0, high=1.0, high_open=True)
        check_threshold("lambda1", self.lambda1)
        check_threshold("lambda2", self.lambda2)
        check_int("total_steps", self.total_steps, low=1)

    @property
    def cost(self) -> Cost:
        return Cost(2, 2)

    def threshold_coefficient(self, t: int) -> float:
        r""":math:`c_t` of :func:`threshold_coefficient` for this rule."""
        return threshold_coefficient(t, self.total_steps, self.lambda1, self.lambda2)

    def init(self, x0, problem, streams):
        state = super().init(x0, problem, streams)
        m = state.x.shape[0]
        state.extra = {"mu": np.zeros(m), "var": np.zeros(m), "n_sam": np.zeros(m, dtype=int)}
        return state

    def decide(self, sq: np.ndarray, mu: np.ndarray, var: np.ndarray, t: int,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Update the statistics with ``sq`` = ‖g_t‖² and return ``(use_sam, mu, var)``."""
        mu, var = update_statistics(sq, mu, var, self.delta)
        return sam_wanted(sq, mu, var, self.threshold_coefficient(t)), mu, var

    def step(self, state, problem, streams):
        ws, x, t = state.ws, state.x, state.t
        batch = self.descent_batch(problem, streams)
        g = problem.batch_grad(x, batch, out=ws.buf("g_asc", x))
        sq = np.einsum("md,md->m", g, g)
        use, mu, var = self.decide(sq, state.extra["mu"], state.extra["var"], t)
        d = g.copy()
        e_full = None
        rows = np.flatnonzero(use)
        if rows.size:
            e = self.perturbation(g[rows], normalize=True)
            d[rows] = problem.batch_grad(x[rows] + e, problem.batch_rows(batch, rows))
            e_full = np.zeros_like(x)
            e_full[rows] = e
        x_next, buf = self.base_step(x, d, state.buf, out=ws.ring("x", 2, t + 1, x))
        extra = {"mu": mu, "var": var, "n_sam": state.extra["n_sam"] + use}
        info = StepInfo(problem, x, d, e_full, g, skipped=e_full is None,
                        sam_direction=g / (row_norms(g) + self.eps)[:, None])
        return State(x_next, t + 1, buf, extra, ws), info
