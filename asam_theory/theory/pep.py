r"""Performance estimation (PEP) of the SAM family: exact worst cases as semidefinite programs.

A performance estimation problem (Drori & Teboulle, Math. Program. 2014; Taylor, Hendrickx &
Glineur, Math. Program. 2017, arXiv:1502.05666) computes the largest value a performance
measure can take after T steps of a first-order method, over *every* function of a class
and every starting point obeying an initial condition.  Interpolation conditions turn the
supremum into an SDP over the Gram matrix of the iterates and gradients; it is built with
PEPit (Goujaud et al., Math. Program. Comput. 2024, arXiv:2201.04040) and solved by cvxpy
with the interior-point solver Clarabel.  Gradients are exact (:math:`\sigma^2=0`): every
worst case here is the deterministic part of our theorems (``asam_theory.theory.bounds``).

Methods (``method``), with :math:`g_t=\nabla f(w_t)`:

* ``"gd"`` -- :math:`w_{t+1}=w_t-\eta g_t`;
* ``"sam_ball"`` -- :math:`w_{t+1}=w_t-\eta\nabla f(w_t+\epsilon_t)` with an *adversarial*
  perturbation, any :math:`\|\epsilon_t\|\le\rho` (``perturbation="ball"``) or
  :math:`\|\epsilon_t\|=\rho` (``"sphere"``), chosen with knowledge of f.  This is exactly
  T1's setting: T1's proof uses nothing of the perturbation but :math:`\|\epsilon_t\|\le\rho`,
  so this SDP is the *exact* worst case of T1's hypothesis class (deterministic part);
* ``"usam"`` / ``"stale_usam"`` -- :math:`\epsilon_t=\rho\,g_{t-\tau}` (:math:`w_{t-\tau}:=w_0`
  for :math:`t<\tau`; ``usam`` is :math:`\tau=0`): linear in the gradients, so the encoding
  is exact;
* ``"asyncsam"`` -- normalised AsyncSAM :math:`\epsilon_t=\rho\,g_{t-\tau}/\|g_{t-\tau}\|`
  (:math:`\tau=0`: normalised SAM).  The normalisation is not linear in the Gram matrix, so
  it is *relaxed*: ``perturbation="ball"`` keeps :math:`\|\epsilon_t\|\le\rho` only (the
  ρ-ball relaxation, = ``sam_ball``); ``"aligned"`` (default) keeps
  :math:`\|\epsilon_t\|=\rho` and :math:`\langle\epsilon_t,g_{t-\tau}\rangle\ge0`.  Every
  normalised-AsyncSAM trajectory satisfies either set of constraints, so the relaxed value is
  an **upper bound** on the worst case of normalised AsyncSAM (exact for the larger class of
  perturbation rules it describes);
* ``"sampa"`` -- SAMPa-λ (Xie, Pethick & Cevher, NeurIPS 2024, arXiv:2410.10683;
  ``docs/methods.md`` §6): :math:`\tilde w_t=w_t+\epsilon_t`,
  :math:`y_{t+1}=w_t-\eta\nabla f(y_t)`,
  :math:`w_{t+1}=w_t-\eta(1-\lambda)\nabla f(\tilde w_t)-\eta\lambda\nabla f(y_{t+1})`,
  :math:`y_0=w_0`, with :math:`\epsilon_t=\rho\nabla f(y_t)/\|\nabla f(y_t)\|` relaxed as for
  ``asyncsam`` (aligned with :math:`\nabla f(y_t)`); an upper bound on SAMPa's worst case.

Function classes (``function_class``):

* ``"smooth"`` -- L-smooth, not necessarily convex (PEPit ``SmoothFunction``; exact
  interpolation, Taylor et al. 2017, Thm 3.10);
* ``"strongly_convex"`` -- L-smooth μ-strongly convex (μ = 0: convex), exact interpolation;
  :math:`f^*=f(w^*)` at the minimiser;
* ``"quadratic"`` -- convex quadratics :math:`f=\tfrac12(x-x^*)^\top H(x-x^*)+f^*`,
  :math:`\mu I\preceq H\preceq LI` (PEPit ``SmoothStronglyConvexQuadraticFunction``; exact
  interpolation, Bousselmi, Hendrickx & Glineur, arXiv:2301.08111).  Every method that is
  linear in the gradients (GD, USAM, stale USAM) has :math:`w_T-x^*=p_T(H)(w_0-x^*)`, so its
  worst case is a 1-D quadratic's, in closed form (``asam_theory.claims.pep``'s validation);
* ``"pl"`` -- L-smooth μ-PL, :math:`f-f^*\le\|\nabla f\|^2/(2\mu)`, through PEPit's
  ``SmoothQuadraticLojasiewiczFunctionCheap`` (Rubbens, Hendrickx & Taylor 2025,
  arXiv:2504.14377): necessary, not sufficient, conditions -- a **relaxation**, so the value
  is an upper bound on the PL worst case.

Initial condition and :math:`\Delta` (``initial``): our theorems use
:math:`\Delta=f(w_0)-f^*` with :math:`f^*\le\inf f`.

* ``"fstar"`` (default, the theorems' Δ): :math:`f(w_0)-f^*\le\Delta`.  On the convex and
  PL classes :math:`f^*` is the value at a stationary point (the minimiser).  On the
  nonconvex class :math:`f^*` is a free scalar with :math:`f(x)-f^*\ge\|\nabla f(x)\|^2/(2L)`
  at every evaluated point -- true for every L-smooth f bounded below by :math:`f^*`, the
  only consequence of the lower bound our proofs use (T1/T3 need :math:`f(w_T)\ge f^*`, T2
  :math:`\|g_0\|^2\le2L\Delta`).  These are necessary conditions, so the nonconvex value is
  an upper bound on the exact worst case, which the 1-D witnesses of the tests attain
  where stated;
* ``"final"`` (PEPit's convention for nonconvex GD): :math:`f(w_0)-f(w_T)\le\Delta`.  It
  implies nothing about :math:`f^*`, so ``measure="final_gap"`` is refused with it.

Measures (``measure``): ``"avg_grad_sq"`` :math:`\frac1T\sum_{t<T}\|g_t\|^2`,
``"min_grad_sq"`` :math:`\min_{t<T}\|g_t\|^2`, ``"final_gap"`` :math:`f(w_T)-f^*`;
``include_last=True`` takes the gradient measures over :math:`t\le T` instead (PEPit's
``wc_gradient_descent`` example: :math:`\min_{t\le n}\|g_t\|^2` with
:math:`f(w_0)-f(w_n)\le1`).

Solver output is silent unless ``verbose`` > 0 (1: PEPit's report, 2: also the solver's).
A solver failure is returned as a result with its ``status`` (never raised, never skipped);
:attr:`PEPResult.ok` says whether the values can be used.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from asam_theory.validation import (
    check_choice,
    check_int,
    check_nonnegative,
    check_positive,
    check_real,
)

__all__ = [
    "CLASSES",
    "INITIAL",
    "MEASURES",
    "METHODS",
    "PERTURBATIONS",
    "PEPResult",
    "available",
    "worst_case",
]

METHODS = ("gd", "sam_ball", "usam", "stale_usam", "asyncsam", "sampa")
CLASSES = ("smooth", "strongly_convex", "pl", "quadratic")
MEASURES = ("avg_grad_sq", "min_grad_sq", "final_gap")
INITIAL = ("fstar", "final")
PERTURBATIONS = ("ball", "sphere", "aligned")
#: largest T accepted (the SDP grows like T^2 constraints; T <= 10 is the default range)
MAX_STEPS = 40
#: cvxpy statuses whose values are usable
_GOOD = ("optimal", "optimal_inaccurate")


def available() -> bool:
    """True when PEPit and cvxpy import."""
    try:
        import cvxpy  # noqa: F401
        import PEPit  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class PEPResult:
    """One solved PEP.

    ``primal`` is the value of the solver's primal (a worst-case Gram matrix: a lower bound
    on the worst case up to the solver's feasibility error), ``dual`` the value PEPit
    reconstructs from the dual multipliers (an upper bound up to the residual's negative
    eigenvalue ``residual_min_eig``), ``gap = dual - primal``.  ``status`` is cvxpy's
    (``"optimal"``, ``"optimal_inaccurate"``, ``"infeasible"``, ``"unbounded"``, ...) or
    ``"solver_error: ..."``.
    """

    method: str
    function_class: str
    measure: str
    initial: str
    perturbation: str
    steps: int
    L: float
    lr: float
    rho: float
    tau: int
    mu: float
    lam: float
    delta: float
    primal: float | None
    dual: float | None
    status: str
    solver: str
    residual_min_eig: float | None
    seconds: float

    @property
    def gap(self) -> float | None:
        """Duality gap ``dual - primal`` (None when either is missing)."""
        if self.primal is None or self.dual is None:
            return None
        return self.dual - self.primal

    @property
    def ok(self) -> bool:
        """The solver reported an (possibly inaccurate) optimum with finite values."""
        return (self.status in _GOOD and self.primal is not None and self.dual is not None
                and math.isfinite(self.primal) and math.isfinite(self.dual))

    @property
    def value(self) -> float | None:
        """The larger of primal and dual (the conservative worst case), None if not ok."""
        return max(self.primal, self.dual) if self.ok else None

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(gap=self.gap, ok=self.ok)
        return d


# --------------------------------------------------------------------------- validation


def _validate(method, function_class, measure, initial, perturbation, L, lr, steps, rho, tau,
              mu, lam, delta, solver) -> dict:
    method = check_choice("method", method, METHODS)
    function_class = check_choice("function_class", function_class, CLASSES)
    measure = check_choice("measure", measure, MEASURES)
    initial = check_choice("initial", initial, INITIAL)
    L = check_positive("L", L)
    lr = check_positive("lr", lr)
    T = check_int("steps", steps, low=1, high=MAX_STEPS)
    rho = check_nonnegative("rho", rho)
    tau = check_int("tau", tau, low=0)
    mu = check_nonnegative("mu", mu)
    lam = check_real("lam", lam, low=0.0, high=1.0)
    delta = check_positive("delta", delta)
    check_choice("solver", solver, ("CLARABEL", "SCS"))
    if perturbation is None:
        perturbation = "aligned" if method in ("asyncsam", "sampa") else "ball"
    perturbation = check_choice("perturbation", perturbation, PERTURBATIONS)
    if method == "sam_ball" and perturbation == "aligned":
        raise ValueError("perturbation must be one of ['ball', 'sphere'] for method "
                         "'sam_ball' (an adversarial perturbation has no direction)")
    if function_class in ("strongly_convex", "quadratic") and mu > L:
        raise ValueError(f"mu must lie in [0, L] = [0, {L:g}], got {mu!r}")
    if function_class == "pl" and not 0 < mu <= L:
        raise ValueError(f"mu must lie in (0, L] = (0, {L:g}] for the PL class, got {mu!r}")
    if function_class == "smooth" and mu != 0:
        raise ValueError(f"mu must be 0 for the nonconvex class 'smooth', got {mu!r}")
    if initial == "final" and measure == "final_gap":
        raise ValueError("measure 'final_gap' needs initial='fstar' (the convention "
                         "'final' says nothing about f*)")
    if initial == "final" and function_class != "smooth":
        raise ValueError("initial must be 'fstar' for the classes with a minimiser")
    if method in ("gd",) and (rho != 0 or tau != 0):
        raise ValueError("gd takes rho = 0 and tau = 0")
    if method in ("sam_ball", "usam", "sampa") and tau != 0:
        raise ValueError(f"tau must be 0 for method {method!r}; use 'stale_usam' or "
                         "'asyncsam' for staleness")
    if method != "sampa" and lam != 0:
        raise ValueError(f"lam is SAMPa's; it must be 0 for method {method!r}")
    return {"method": method, "function_class": function_class, "measure": measure,
            "initial": initial, "perturbation": perturbation, "L": L, "lr": lr, "steps": T,
            "rho": rho, "tau": tau, "mu": mu, "lam": lam, "delta": delta}


# --------------------------------------------------------------------------- building


def _perturb(problem, rho: float, kind: str, direction=None):
    """A new leaf point eps with ``|eps| <= rho`` (ball), ``= rho`` (sphere), or ``= rho``
    and ``<eps, direction> >= 0`` (aligned)."""
    from PEPit import Point

    eps = Point()
    if kind == "ball":
        problem.add_constraint(eps**2 <= rho**2)
    else:
        problem.add_constraint(eps**2 == rho**2)
    if kind == "aligned":
        problem.add_constraint(eps * direction >= 0)
    return eps


def _ascent_point(w, eps):
    r"""The point :math:`w+\epsilon` at which the descent gradient is taken (every SAM-family
    method goes through here, so the perturbation's encoding is one line)."""
    return w + eps


def _build(p: dict):
    """The PEP for the validated parameters ``p``: returns the PEPit problem."""
    from PEPit import PEP, Expression
    from PEPit.functions import (
        SmoothConvexFunction,
        SmoothFunction,
        SmoothQuadraticLojasiewiczFunctionCheap,
        SmoothStronglyConvexFunction,
        SmoothStronglyConvexQuadraticFunction,
    )

    problem = PEP()
    L, mu, T, lr, rho, tau = p["L"], p["mu"], p["steps"], p["lr"], p["rho"], p["tau"]
    cls = p["function_class"]
    if cls == "smooth":
        func = problem.declare_function(SmoothFunction, L=L)
    elif cls == "strongly_convex":
        func = (problem.declare_function(SmoothStronglyConvexFunction, L=L, mu=mu) if mu > 0
                else problem.declare_function(SmoothConvexFunction, L=L))
    elif cls == "pl":
        func = problem.declare_function(SmoothQuadraticLojasiewiczFunctionCheap, L=L, mu=mu)
    else:  # quadratic
        func = problem.declare_function(SmoothStronglyConvexQuadraticFunction, L=L, mu=mu)

    fstar = None
    if p["initial"] == "fstar":
        if cls == "smooth":
            fstar = Expression()
        else:
            xs = func.stationary_point()
            fstar = func(xs)

    w0 = problem.set_initial_point()
    g0, f0 = func.oracle(w0)
    ws, gs, fs = [w0], [g0], [f0]
    evaluated = [(g0, f0)]  # every (gradient, value) pair, for the lower-bound conditions
    method = p["method"]
    w = w0
    y, gy = w0, g0  # SAMPa's extra sequence, y_0 = w_0
    for t in range(T):
        g = gs[t]
        if method == "gd":
            d = g
        elif method in ("usam", "stale_usam"):
            d, fp = func.oracle(_ascent_point(w, rho * gs[max(t - tau, 0)]))
            evaluated.append((d, fp))
        elif method in ("sam_ball", "asyncsam"):
            direction = gs[max(t - tau, 0)]
            eps = _perturb(problem, rho, p["perturbation"], direction)
            d, fp = func.oracle(_ascent_point(w, eps))
            evaluated.append((d, fp))
        else:  # sampa
            eps = _perturb(problem, rho, p["perturbation"], gy)
            gt, ft = func.oracle(_ascent_point(w, eps))
            y = w - lr * gy
            gy, fy = func.oracle(y)
            evaluated += [(gt, ft), (gy, fy)]
            d = (1 - p["lam"]) * gt + p["lam"] * gy
        w = w - lr * d
        g_next, f_next = func.oracle(w)
        ws.append(w)
        gs.append(g_next)
        fs.append(f_next)
        evaluated.append((g_next, f_next))

    if fstar is not None:
        problem.set_initial_condition(f0 - fstar <= p["delta"])
        if cls == "smooth":
            for gi, fi in evaluated:
                problem.add_constraint(fi - fstar >= gi**2 / (2 * L))
    else:
        problem.set_initial_condition(f0 - fs[T] <= p["delta"])

    measure = p["measure"]
    n = T + 1 if p["include_last"] else T
    if measure == "avg_grad_sq":
        total = gs[0] ** 2
        for t in range(1, n):
            total = total + gs[t] ** 2
        problem.set_performance_metric(total / n)
    elif measure == "min_grad_sq":
        for t in range(n):
            problem.set_performance_metric(gs[t] ** 2)
    else:
        problem.set_performance_metric(fs[T] - fstar)
    return problem


def worst_case(
    method: str,
    *,
    lr: float,
    steps: int,
    L: float = 1.0,
    rho: float = 0.0,
    tau: int = 0,
    mu: float = 0.0,
    lam: float = 0.0,
    delta: float = 1.0,
    function_class: str = "smooth",
    measure: str = "avg_grad_sq",
    initial: str = "fstar",
    perturbation: str | None = None,
    include_last: bool = False,
    solver: str = "CLARABEL",
    verbose: int = 0,
) -> PEPResult:
    r"""The worst case of ``measure`` after ``steps`` steps of ``method`` over
    ``function_class`` with :math:`f(w_0)-f^*\le\Delta` (see the module docstring for every
    option; ``perturbation`` defaults to ``"aligned"`` for the normalised methods and
    ``"ball"`` otherwise).  ``solver`` is ``"CLARABEL"`` (interior point, default) or
    ``"SCS"``.  Returns a :class:`PEPResult`; a solver failure is a result with its status.
    """
    p = _validate(method, function_class, measure, initial, perturbation, L, lr, steps, rho,
                  tau, mu, lam, delta, solver)
    verbose = check_int("verbose", verbose, low=-1, high=2)
    if not isinstance(include_last, bool):
        raise ValueError(f"include_last must be True or False, got {include_last!r}")
    p["include_last"] = include_last
    t0 = time.perf_counter()
    problem = _build(p)
    primal = dual = res_eig = None
    solver_name = solver
    try:
        with warnings.catch_warnings():
            if verbose <= 0:  # cvxpy's "solution may be inaccurate" is in the status already
                warnings.simplefilter("ignore")
            dual = problem.solve(wrapper="cvxpy", solver=solver, verbose=max(verbose, 0),
                                 return_primal_or_dual="dual")
        wrapper = problem.wrapper
        status = str(wrapper.prob.status)
        solver_name = str(wrapper.solver_name)
        if dual is not None:
            primal = float(problem.objective.eval())
            dual = float(dual)
            res_eig = float(np.min(np.linalg.eigvalsh(problem.residual)))
    except Exception as exc:  # noqa: BLE001 - a failing solve is reported, not raised
        status = f"solver_error: {type(exc).__name__}: {exc}"
        primal = dual = None
    return PEPResult(
        method=p["method"], function_class=p["function_class"], measure=p["measure"],
        initial=p["initial"], perturbation=p["perturbation"], steps=p["steps"], L=p["L"],
        lr=p["lr"], rho=p["rho"], tau=p["tau"], mu=p["mu"], lam=p["lam"], delta=p["delta"],
        primal=primal, dual=dual, status=status, solver=solver_name,
        residual_min_eig=res_eig, seconds=time.perf_counter() - t0,
    )
