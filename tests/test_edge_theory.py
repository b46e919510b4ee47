"""Edges of stability (asam_theory.theory.edge) against the exact stability solver and the proof.

The stale-USAM edge is the inverse of ``theory.exact.max_stable_lr``: at the edge λ* of step
size η, the largest stable step size of the spectrum {λ*} is η again. ``max_stable_lr`` finds
roots on the unit circle (Brent on the phase), the edge is found on the spectral radius or by
closed forms, so the two computations are independent. Tolerance 1e-7 relative: both solvers
resolve their root to ~1e-12; the spectral radius of a (τ+1)-companion near a double root on
the circle is accurate only to ~sqrt(machine eps) in the parameter, hence not tighter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asam_theory.proofs import edge as edge_proof
from asam_theory.theory import edge as E
from asam_theory.theory.exact import is_stable, max_stable_lr

lrs = st.floats(1e-3, 1.0)
ks = st.floats(1e-3, 3.0)
taus = st.integers(0, 6)


@settings(max_examples=60, deadline=None)
@given(lr=lrs, k=ks, tau=taus)
def test_stale_usam_edge_inverts_max_stable_lr(lr: float, k: float, tau: int) -> None:
    rho = k * lr
    lam = E.stale_usam_edge(lr, rho, tau)
    assert max_stable_lr([lam], rho, tau) == pytest.approx(lr, rel=1e-7)
    assert is_stable([lam * (1 - 1e-5)], lr, rho, tau)
    assert not is_stable([lam * (1 + 1e-5)], lr, rho, tau)


@settings(max_examples=40, deadline=None)
@given(lr=lrs, k=st.floats(1e-3, 1.0), tau=st.integers(1, 7))
def test_staleness_never_lowers_the_edge_below_usam_when_rho_le_lr(lr, k, tau) -> None:
    """Proved in proofs/edge.py: ρ ≤ η ⇒ λ*_τ ≥ λ*_0, equality iff τ even."""
    rho = k * lr
    e0, et = E.usam_edge(lr, rho), E.stale_usam_edge(lr, rho, tau)
    if tau % 2 == 0:
        assert et == pytest.approx(e0, rel=1e-12)
        # the closed form agrees with the numerical search
        assert E._numeric_a(k, tau) / lr == pytest.approx(e0, rel=1e-7)
    else:
        assert et > e0 * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(k=st.floats(1e-3, 5.0))
def test_tau1_closed_form_matches_numerical_search(k: float) -> None:
    assert E._tau1_a(k) == pytest.approx(E._numeric_a(k, 1), rel=1e-7)


def test_closed_forms_match_the_proof() -> None:
    p = edge_proof.build()
    assert p.counts()["failed"] == 0 and p.counts()["unchecked"] == 0
    kk = edge_proof.kk
    for k in (0.01, 0.1, 1 / 9, 0.3, 0.9):
        assert float(p.final["usam"].subs(kk, k)) == pytest.approx(
            E.stale_usam_edge_dimensionless(k, 0), rel=1e-13)
        want = p.final["tau1_minus_one"] if k <= 1 / 9 else p.final["tau1_complex"]
        assert float(want.subs(kk, k)) == pytest.approx(
            E.stale_usam_edge_dimensionless(k, 1), rel=1e-13)


@settings(max_examples=40, deadline=None)
@given(lr=lrs, rho=st.floats(1e-4, 1.0), g=st.floats(1e-3, 1e3))
def test_sam_edge_is_usam_edge_at_rho_over_grad_norm_and_below_gd(lr, rho, g) -> None:
    lam = E.sam_edge(lr, rho, g)
    assert lam == pytest.approx(E.usam_edge(lr, rho / g), rel=1e-14)
    assert lam < E.gd_edge(lr)
    # the linearised SAM factor 1 - ηλ - ηρλ²/‖g‖ is -1 at the edge
    assert 1 - lr * lam - lr * rho * lam**2 / g == pytest.approx(-1.0, abs=1e-9)


def test_edges_reduce_to_gd_without_perturbation() -> None:
    for tau in range(5):
        assert E.stale_usam_edge(0.1, 0.0, tau) == pytest.approx(20.0)
    assert E.usam_edge(0.1, 0.0) == pytest.approx(20.0)


def test_documented_reference_numbers() -> None:
    """docs/theory.md §2.2: (η, ρ) = (0.1, 0.05) gives λ* = 12.360680; §2.4's table."""
    assert E.usam_edge(0.1, 0.05) == pytest.approx(12.360680, abs=1e-6)
    assert E.stale_usam_edge(0.05, 0.01, 1) == pytest.approx(math.sqrt(5) / 0.05, rel=1e-12)
    assert E.stale_usam_edge(0.05, 0.01, 2) == pytest.approx(E.usam_edge(0.05, 0.01))


def test_dispatch_and_validation() -> None:
    assert E.edge("gd", 0.1) == 20.0
    assert E.edge("stale_sam", 0.1, 0.05, 2, grad_norm=2.0) == pytest.approx(
        E.stale_usam_edge(0.1, 0.025, 2))
    with pytest.raises(ValueError, match="grad_norm"):
        E.edge("sam", 0.1, 0.05)
    with pytest.raises(ValueError, match="method"):
        E.edge("adam", 0.1)
    with pytest.raises(ValueError, match="lr"):
        E.gd_edge(-1.0)
    with pytest.raises(ValueError, match="tau"):
        E.stale_usam_edge(0.1, 0.01, -1)


def test_odd_tau_edges_decrease_towards_usam() -> None:
    """At k = ρ/η = 0.2 the odd-τ edges fall towards USAM's (the ordering the claim tests)."""
    e = [E.stale_usam_edge_dimensionless(0.2, t) for t in range(6)]
    assert e[1] > e[3] > e[5] > e[0]
    assert np.allclose([e[2], e[4]], e[0])
