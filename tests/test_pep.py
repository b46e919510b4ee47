"""The PEP layer (asam_theory.theory.pep): PEPit's published example reproduced, rho = 0
reduces every SAM formulation to GD, T1/T1-sharp against the worst case, input validation.

Tolerances: Clarabel stops at relative residuals 1e-8; on these small SDPs primal and dual
agree to <= 1e-6 relative (the rho = 0 problems carry degenerate perturbation directions),
so comparisons use 1e-5 relative (``asam_theory.claims.pep.REL_TOL``)."""

from __future__ import annotations

import pytest

from asam_theory.claims import pep as C
from asam_theory.theory import bounds as B
from asam_theory.theory import pep as P

TOL = C.REL_TOL


def _close(r: P.PEPResult, ref: float, tol: float = TOL) -> bool:
    return r.ok and abs(r.primal / ref - 1) <= tol and abs(r.dual / ref - 1) <= tol


def test_reproduces_pepit_gradient_descent_example():
    # PEPit examples/nonconvex_optimization/gradient_descent.py: n = 5, gamma = 1/L = 1
    # gives min_{t <= n} |g_t|^2 <= 4 L/(3 n) (f(x_0) - f(x_n)) = 4/15, tight
    from PEPit.examples.nonconvex_optimization.gradient_descent import wc_gradient_descent

    r = P.worst_case("gd", lr=1.0, steps=5, measure="min_grad_sq", initial="final",
                     include_last=True)
    assert _close(r, 4 / 15)
    theirs, theory = wc_gradient_descent(L=1, gamma=1, n=5, solver="CLARABEL", verbose=-1)
    assert theory == pytest.approx(4 / 15)
    assert theirs == pytest.approx(r.dual, rel=TOL)
    assert r.gap is not None and abs(r.gap) <= TOL
    assert r.status == "optimal" and r.solver == "CLARABEL"


def test_rho_zero_equals_gd():
    gd = P.worst_case("gd", lr=0.5, steps=3)
    assert gd.ok
    for method, extra in [("sam_ball", {}), ("sam_ball", {"perturbation": "sphere"}),
                          ("usam", {}), ("stale_usam", {"tau": 1}), ("asyncsam", {"tau": 1}),
                          ("sampa", {})]:
        r = P.worst_case(method, lr=0.5, steps=3, rho=0.0, **extra)
        assert _close(r, gd.primal), (method, extra, r)


def test_gd_worst_case_at_unit_step_is_t1():
    # GD at eta = 1/L: the worst average is 2 L Delta/T (= T1 with rho = 0), attained by
    # f = (L/2) x^2 (one step to the minimiser, then zero gradients)
    for T in (1, 2, 4):
        r = P.worst_case("gd", lr=1.0, steps=T)
        assert _close(r, B.t1_bound(1.0, 1.0, 0.0, 1.0, T))


@pytest.mark.parametrize("T", [2, 4])
def test_sam_worst_case_equals_t1_sharp_and_witness_at_unit_step(T):
    rho = 0.3
    r = P.worst_case("sam_ball", lr=1.0, steps=T, rho=rho)
    sharp = B.t1_sharp_bound(1.0, 1.0, rho, 1.0, T)
    assert sharp == pytest.approx(2 / T + (1 - 1 / T) * rho**2, rel=1e-14)
    assert _close(r, sharp)
    w = B.t1_sharp_witness(1.0, 1.0, rho, T)
    assert w["avg_grad_sq"] == pytest.approx(sharp, rel=1e-12)
    assert w["delta"] == pytest.approx(1.0, rel=1e-12)
    assert r.primal < B.t1_bound(1.0, 1.0, rho, 1.0, T)


def test_t1_and_sharp_hold_below_unit_step():
    for lr in (0.25, 0.5):
        r = P.worst_case("sam_ball", lr=lr, steps=4, rho=0.2)
        assert r.ok
        sharp = B.t1_sharp_bound(1.0, 1.0, 0.2, lr, 4)
        t1 = B.t1_bound(1.0, 1.0, 0.2, lr, 4)
        assert r.value <= sharp * (1 + TOL) and sharp < t1


def test_relaxation_orders():
    # aligned sphere is a subset of the ball: its value is at most the ball's
    ball = P.worst_case("asyncsam", lr=0.5, steps=3, rho=0.3, perturbation="ball")
    aligned = P.worst_case("asyncsam", lr=0.5, steps=3, rho=0.3)
    same = P.worst_case("sam_ball", lr=0.5, steps=3, rho=0.3)
    assert aligned.perturbation == "aligned" and ball.perturbation == "ball"
    assert aligned.value <= ball.value * (1 + TOL)
    assert _close(ball, same.primal)


def test_t2_and_t3_hold():
    r = P.worst_case("stale_usam", lr=1.0, steps=3, rho=0.3, tau=1)
    assert r.value <= B.t2_bound(1.0, 1.0, 0.3, 1.0, 1, 3) * (1 + TOL)
    sc = P.worst_case("sam_ball", lr=0.5, steps=2, rho=0.2, mu=0.2,
                      function_class="strongly_convex", measure="final_gap")
    pl = P.worst_case("sam_ball", lr=0.5, steps=2, rho=0.2, mu=0.2, function_class="pl",
                      measure="final_gap")
    bound = B.t3_bound(1.0, 1.0, 0.2, 0.2, 0.5, 2)
    assert sc.value <= pl.value * (1 + TOL) and pl.value <= bound


def test_t1_sharp_bound_weights():
    # the default weight minimises over a in (0, 1]; a = 1 is T1 less L^2 rho^2 / T
    args = (1.3, 2.0, 0.1, 0.3, 7, 0.5, 4)
    best = B.t1_sharp_bound(*args)
    for a in (0.05, 0.2, 0.5, 1.0):
        assert best <= B.t1_sharp_bound(*args, weight=a) * (1 + 1e-12)
    t1 = B.t1_bound(1.3, 2.0, 0.1, 0.3, 7, 0.5, 4)
    L, rho, lr, s2, b = 2.0, 0.1, 0.3, 0.5, 4
    assert B.t1_sharp_bound(*args, weight=1.0) == pytest.approx(
        t1 - (L**2 * rho**2 + L * lr * s2 / b) / 7, rel=1e-12)
    with pytest.raises(ValueError, match="weight"):
        B.t1_sharp_bound(*args, weight=0.0)


def test_validation_errors():
    with pytest.raises(ValueError, match="method"):
        P.worst_case("adam", lr=0.5, steps=2)
    with pytest.raises(ValueError, match="steps"):
        P.worst_case("gd", lr=0.5, steps=0)
    with pytest.raises(ValueError, match="final_gap"):
        P.worst_case("gd", lr=0.5, steps=2, measure="final_gap", initial="final")
    with pytest.raises(ValueError, match="tau"):
        P.worst_case("usam", lr=0.5, steps=2, rho=0.1, tau=1)
    with pytest.raises(ValueError, match="mu"):
        P.worst_case("sam_ball", lr=0.5, steps=2, rho=0.1, function_class="pl")
    with pytest.raises(ValueError, match="perturbation"):
        P.worst_case("sam_ball", lr=0.5, steps=2, rho=0.1, perturbation="aligned")


def test_solver_failure_is_reported_not_raised(monkeypatch):
    import cvxpy

    def boom(self, *a, **k):
        raise cvxpy.error.SolverError("forced failure")

    monkeypatch.setattr(cvxpy.Problem, "solve", boom)
    r = P.worst_case("gd", lr=0.5, steps=2)
    assert not r.ok and r.status.startswith("solver_error") and r.value is None
    row = C.solve_task(dict(method="gd", lr=0.5, steps=2))
    assert C._judge_row(row, 1.0) == "solver_failure"


def test_quiet(capsys):
    P.worst_case("sam_ball", lr=0.5, steps=2, rho=0.1)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_usam_worst_case_is_the_quadratic_at_unit_step():
    # USAM, tau = 0, eta = 1/L: PEP worst case = f = x^2/2 from w_0 = sqrt(2 Delta / L),
    # = T2's bound times 1 - (L rho)^(2T)
    rho, T = 0.5, 3
    r = P.worst_case("usam", lr=1.0, steps=T, rho=rho)
    w = B.usam_quadratic_witness(1.0, 1.0, rho, 1.0, T)
    assert w == pytest.approx(B.t2_bound(1.0, 1.0, rho, 1.0, 0, T) * (1 - rho ** (2 * T)),
                              rel=1e-12)
    assert _close(r, w)


def test_t2_sharp_bound():
    args = (1.0, 1.0, 0.3, 0.5, 2, 4)
    assert B.t2_sharp_bound(*args, weight=1.0) == pytest.approx(B.t2_bound(*args), rel=1e-12)
    sharp = B.t2_sharp_bound(*args)
    assert sharp < B.t2_bound(*args)
    for a in (0.2, 0.4, 0.7):
        assert sharp <= B.t2_sharp_bound(*args, weight=a) * (1 + 1e-9)
    with pytest.raises(ValueError, match="weight"):
        B.t2_sharp_bound(*args, weight=1e-4)  # K = A - B L^2 rho^2 < 0
    r = P.worst_case("stale_usam", lr=0.5, steps=4, rho=0.3, tau=2)
    assert r.value <= sharp * (1 + TOL)
