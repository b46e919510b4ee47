"""The PEP checks added for the perturbation encoding and T3's tightness: the closed-form
quadratic worst case of USAM / stale USAM, T3's witness, and both checks' verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asam_theory.claims import pep as cp
from asam_theory.theory import bounds
from asam_theory.theory import pep as P

pytestmark = pytest.mark.skipif(not P.available(), reason="PEPit/cvxpy not installed")


@pytest.mark.parametrize("measure,lr,rho,tau,T,mu", [
    ("final_gap", 0.6, 0.4, 0, 2, 0.1),
    ("avg_grad_sq", 0.9, 0.2, 1, 3, 0.0),
])
def test_quadratic_closed_form_equals_the_pep(measure, lr, rho, tau, T, mu):
    """Primal and dual of the quadratic-class PEP equal the closed form to 1e-5 (the
    claim's REL_TOL; Clarabel delivers ~1e-7 here)."""
    r = P.worst_case("stale_usam" if tau else "usam", lr=lr, steps=T, rho=rho, tau=tau, mu=mu,
                     function_class="quadratic", measure=measure)
    exact = cp.quadratic_worst_case(measure, lr, rho, tau, T, mu)
    assert r.ok
    assert abs(r.primal / exact - 1) < cp.REL_TOL and abs(r.dual / exact - 1) < cp.REL_TOL


def test_quadratic_closed_form_is_attained_by_a_1d_run():
    """The maximising eigenvalue's 1-D quadratic, run as the method, gives the value."""
    lr, rho, tau, T, mu = 0.5, 0.3, 1, 4, 0.1
    grid = np.linspace(mu, 1.0, 2001)
    ps = cp.linear_polynomials(grid, lr, rho, tau, T)
    lam = grid[int(np.argmax(ps[T] ** 2))]
    w = [math.sqrt(2 / lam)]  # f(w0) = lam w0^2 / 2 = 1
    for t in range(T):
        w.append(w[t] - lr * lam * (w[t] + rho * lam * w[max(t - tau, 0)]))
    value = lam * w[T] ** 2 / 2
    assert value <= cp.quadratic_worst_case("final_gap", lr, rho, tau, T, mu) * (1 + 1e-12)
    assert value >= cp.quadratic_worst_case("final_gap", lr, rho, tau, T, mu) * (1 - 1e-5)


def test_sympy_recursion_check_rejects_a_wrong_recursion(monkeypatch):
    assert cp._sympy_polynomials_ok()

    def wrong(lam, lr, rho, tau, steps):
        ps = [lam * 0 + 1]
        for t in range(steps):
            ps.append(ps[t] - lr * lam * (ps[t] - rho * lam * ps[max(t - tau, 0)]))
        return ps

    monkeypatch.setattr(cp, "linear_polynomials", wrong)
    assert not cp._sympy_polynomials_ok()


def test_t3_witness_runs_sam_with_the_adversarial_perturbation():
    L, rho, lr, T = 2.0, 0.15, 0.4, 5
    w = math.sqrt(2 * 1.0 / L)
    for _ in range(T):
        w = w - lr * L * (w - rho * math.copysign(1.0, w))
    assert math.isclose(cp.t3_witness(1.0, L, rho, lr, T), L * w * w / 2, rel_tol=1e-12)
    # a member of T3's class: never above the bound
    assert cp.t3_witness(1.0, L, rho, lr, T) <= bounds.t3_bound(1.0, L, 0.5 * L, rho, lr, T)


def test_t3_tightness_holds_and_fails_for_a_looser_bound(monkeypatch):
    from asam_theory.claims import Settings

    out = cp.t3_tightness(Settings(mode="quick"))
    assert out.status == "holds" and out.ratio >= cp.T3_TIGHT_MIN
    true = bounds.t3_bound
    monkeypatch.setattr(bounds, "t3_bound", lambda *a, **k: 1.3 * true(*a, **k))
    assert cp.t3_tightness(Settings(mode="quick")).status == "fails"
