"""The proof checker rejects unsound uses of relabel, declarations and sums, and accepts sound
ones (the rules: :class:`asam_theory.proofs.core.Proof`)."""

from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from asam_theory import proofs
from asam_theory.proofs.core import Given, IntegralOf, Pos, Prod, Proof, sym

eta = sym("eta_c", positive=True)
T = sym("T_c", integer=True, positive=True)
t = sym("t_c", integer=True)
k = sym("k_c", integer=True)
n = sym("n_c", integer=True, nonnegative=True)
F = sp.Function("F_c")
C = sp.Function("C_c")


def _proof() -> Proof:
    p = Proof("X", "X", "")
    p.constants |= {eta, T}
    p.index(t, step=True)
    p.index(k, n)
    p.assume_domain("DOM", [eta, T], "eta > 0, T >= 1")
    return p


def _statuses(p: Proof) -> list[str]:
    return [s.status for s in p.steps]


def test_relabel_of_fixed_quantities_is_unchecked():
    """From y <= x - eta, renaming x, y gave F(t) <= F(t+1) - eta and 0 <= -eta with no failed
    and no unchecked step; both are now unchecked, and the summary is not ok."""
    x, y = sym("x_c"), sym("y_c")
    p = _proof()
    h = p.assume_le("H", y, x - eta, "premise about two fixed quantities")
    p.relabel(h, {y: F(t), x: F(t + 1)}, "rename")
    p.relabel(h, {y: 0, x: 0}, "rename")
    assert _statuses(p) == ["unchecked", "unchecked"]
    assert "not a declared index" in p.steps[0].detail
    s = proofs.summary((p,))
    assert s["steps_unchecked"] == 2 and not proofs.ok(s)


def test_relabel_of_an_index_fixed_by_a_premise_is_unchecked():
    """Even an index cannot be instantiated when a premise fixes it (no 'for every')."""
    p = _proof()
    h = p.assume_le("H", F(k), F(k + 1) - eta, "at one k only")
    p.relabel(h, {k: 0}, "instance")
    assert _statuses(p) == ["unchecked"] and "fixed by premise H" in p.steps[0].detail
    q = _proof()
    h = q.assume_le("H", F(k), F(k + 1) - eta, "for every k", forall=(k,))
    q.relabel(h, {k: 0}, "instance")
    assert _statuses(q) == ["ok"]


def test_step_index_cannot_be_shifted_under_step_quantities():
    """f(w_t) depends on t implicitly: t := t + 1 would change F(t) but not f(w_t)."""
    f0 = sym("f(w_t)_c")
    p = _proof()
    h = p.assume_le("DEF", f0, F(t), "every t", forall=(t,))
    p.relabel(h, {t: t + 1}, "shift")
    assert _statuses(p) == ["unchecked"] and "step quantities" in p.steps[0].detail


@settings(max_examples=15, deadline=None)
@given(st.integers(-50, 50))
def test_instances_of_a_universal_fact_are_accepted_in_the_domain(c):
    p = _proof()
    cdef = p.assume_eq("CDEF", C(k + 1) - C(k), F(k), "every integer k", forall=(k,))
    inst = p.relabel(cdef, {k: t + c}, "instance")
    assert _statuses(p) == ["ok"] and inst.lhs == C(t + c + 1) - C(t + c)
    p.relabel(cdef, {k: T - 1 + c}, "instance")
    p.relabel(cdef, {k: sp.Rational(1, 2) + c}, "not an integer")
    assert _statuses(p) == ["ok", "ok", "failed"]
    # a nonnegative index only takes nonnegative values
    nn = p.assume_le("NN", 0, F(n), "every n >= 0", forall=(n,))
    p.relabel(nn, {n: abs(c)}, "in the domain")
    p.relabel(nn, {n: -abs(c) - 1}, "outside the domain")
    assert _statuses(p)[-2:] == ["ok", "failed"]


def test_positivity_only_from_a_declaration_is_unchecked():
    a = sym("a_c", positive=True)
    p = _proof()
    p.constants |= {a}
    h = p.assume_le("H", 0, F(0), "")
    p.le(0, a * F(0), [Prod(Pos(a), Given(h))], "a > 0 by declaration only")
    assert _statuses(p) == ["unchecked"] and "declarations of ['a_c']" in p.steps[0].detail
    assert proofs.summary((p,))["steps_unchecked"] == 1
    # listed as a premise: checked
    p.assume_domain("A", [a], "a > 0")
    p.le(0, a * F(0), [Prod(Pos(a), Given(h))], "a > 0 by premise A")
    assert _statuses(p)[-1] == "ok"


def test_positivity_derived_by_a_step_licenses_the_declaration():
    A = sym("A_c", positive=True)
    x = sym("x_c2")
    p = _proof()
    p.constants |= {A, x}
    d = p.assume_eq("ADEF", A, x, "name A")
    half = p.assume_le("HALF", sp.Rational(1, 2), x, "x >= 1/2")
    h = p.assume_le("H", 0, F(0), "")
    p.le(0, F(0) / A, [Prod(Pos(1 / A), Given(h))], "before the derivation")
    p.positive(A, [Given(half)], "A = x >= 1/2 > 0", using=[d])
    p.le(0, F(0) / A, [Prod(Pos(1 / A), Given(h))], "after the derivation")
    assert _statuses(p) == ["unchecked", "ok", "ok"]
    # a derivation that leaves nothing positive is refused
    B = sym("B_c", positive=True)
    p.constants |= {B}
    p.positive(B, [], "no certificate")
    assert _statuses(p)[-1] == "unchecked"


def test_sum_over_range_and_index_checks():
    p = _proof()
    ok = p.assume_le("OK", F(t), F(t + 1), "every t", forall=((t, 0, T - 1),))
    fixed = p.assume_le("FIXED", F(t), eta, "at one t only")
    p.sum_over(ok, t, 0, T - 1, "sound")
    p.sum_over(fixed, t, 0, T - 1, "index fixed by a premise")
    p.sum_over(ok, t, 0, T, "beyond the quantified range")
    p.sum_over(ok, t, 5, 2, "reversed range")
    p.sum_over(ok, t, 0, t + 3, "index free in the bounds")
    p.sum_over(ok, t, 0, sp.Rational(5, 2), "not an integer range")
    assert _statuses(p) == ["ok", "unchecked", "failed", "failed", "failed", "failed"]
    nn = p.assume_le("NN", 0, F(n), "every n >= 0", forall=(n,))
    p.sum_over(nn, n, -1, T, "below the declared domain")
    p.sum_over(nn, n, 0, T, "sound")
    assert _statuses(p)[-2:] == ["failed", "ok"]


def test_integral_needs_the_fact_for_every_point_of_the_interval():
    s = sym("s_c")
    N = sp.Function("N_c")
    p = _proof()
    p.index(s)
    h = p.assume_le("H", N(s), eta * s, "s in [0, 1]", forall=((s, 0, 1),))
    fixed = p.assume_le("FX", N(s), eta * s, "one s only")
    integral = sp.Integral(N(s), (s, 0, 1))
    p.le(integral, eta / 2, [IntegralOf(h, s, 0, 1)], "sound")
    p.le(integral, eta / 2, [IntegralOf(fixed, s, 0, 1)], "s fixed by the premise")
    p.le(sp.Integral(N(s), (s, 0, 2)), 2 * eta, [IntegralOf(h, s, 0, 2)], "beyond [0, 1]")
    assert _statuses(p) == ["ok", "unchecked", "failed"]


def test_forall_must_name_a_declared_index():
    p = _proof()
    with pytest.raises(ValueError, match="not an index"):
        p.assume_le("H", 0, eta, "", forall=(sym("z_c"),))
