"""Bound functions equal the proofs' final expressions; input validation; the 2-cycle."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import sympy as sp

from asam_theory import proofs
from asam_theory.proofs import symbols as S
from asam_theory.proofs import t1_async_sam, t2_stale_usam, t3_pl, t4_penalty, tightness
from asam_theory.theory import bounds as B

RNG = np.random.default_rng(20240611)
# the bound functions and the lambdified sympy expressions compute the same formula in a
# different operation order: agreement to 1e-12 relative is float rounding only
RTOL = 1e-12


def _draw():
    L = RNG.uniform(0.1, 10)
    return dict(
        L=L,
        lr=RNG.uniform(0.01, 1) / L,
        rho=RNG.uniform(0, 0.99) / L,
        sigma2=RNG.uniform(0, 5),
        b=int(RNG.integers(1, 512)),
        bp=int(RNG.integers(1, 512)),
        delta=RNG.uniform(0, 10),
        T=int(RNG.integers(1, 10_000)),
        tau=int(RNG.integers(0, 16)),
        mu=L * RNG.uniform(0.01, 1),
    )


def _subs(c):
    return {
        S.L: c["L"], S.eta: c["lr"], S.rho: c["rho"], S.sigma2: c["sigma2"], S.b: c["b"],
        S.b_prime: c["bp"], S.Delta: c["delta"], S.T: c["T"], S.tau: c["tau"], S.mu: c["mu"],
    }  # fmt: skip


@pytest.mark.parametrize("i", range(50))
def test_bounds_equal_proof_final_expressions(i):
    c = _draw()
    sub = _subs(c)
    ev = lambda e: float(sp.N(e.xreplace(sub), 30))  # noqa: E731
    args = (c["delta"], c["L"], c["rho"], c["lr"], c["T"], c["sigma2"], c["b"])
    assert B.t1_bound(*args) == pytest.approx(ev(t1_async_sam.FINAL_INDEPENDENT), rel=RTOL)
    assert B.t1_bound(*args, same_batch=True) == pytest.approx(
        ev(t1_async_sam.FINAL_SAME_BATCH), rel=RTOL
    )
    assert B.t2_bound(
        c["delta"], c["L"], c["rho"], c["lr"], c["tau"], c["T"], c["sigma2"], c["b"], c["bp"]
    ) == pytest.approx(ev(t2_stale_usam.FINAL), rel=RTOL)
    if c["lr"] * c["mu"] < 1:
        assert B.t3_bound(
            c["delta"], c["L"], c["mu"], c["rho"], c["lr"], c["T"], c["sigma2"], c["b"]
        ) == pytest.approx(ev(t3_pl.FINAL), rel=RTOL)


def test_t4_functions_equal_proof_expressions():
    for _ in range(50):
        L, lr, rho = RNG.uniform(0.1, 5), RNG.uniform(0.001, 0.1), RNG.uniform(0, 1)
        tau, G = int(RNG.integers(0, 5)), RNG.uniform(0, 2)
        gn, MH = RNG.uniform(1, 50), RNG.uniform(0, 3)
        sub = {S.L: L, S.eta: lr, S.rho: rho, S.tau: tau, S.G: G, t4_penalty.A: gn, S.M_H: MH}
        def ev(e, sub=sub):
            return float(e.xreplace(sub))

        d = ev(t4_penalty.FINAL_DIRECTION)
        assert B.stale_direction_bound(L, lr, tau, G, gn) == pytest.approx(min(2, d), rel=RTOL)
        assert B.stale_fidelity_drift_bound(L, rho, lr, tau, G, gn) == pytest.approx(
            rho * L * min(2, d), rel=RTOL
        )
        if d < 2:
            assert math.sin(B.stale_angle_bound(L, lr, tau, G, gn) / 2) == pytest.approx(
                ev(t4_penalty.FINAL_SIN_HALF), rel=1e-9  # asin/sin round trip
            )
        assert B.penalty_remainder_bound(MH, rho) == pytest.approx(
            ev(t4_penalty.FINAL_REMAINDER), rel=RTOL
        )
        th = RNG.uniform(0, math.pi)
        assert B.stale_fidelity_bound(L, rho, th) == pytest.approx(
            float(t4_penalty.FINAL_FIDELITY_ANGLE.xreplace({S.rho: rho, S.L: L,
                                                            t4_penalty.S: math.sin(th / 2)})),
            rel=RTOL,
        )


def test_two_cycle_matches_proof_and_theory_sheet():
    lam = [5.0, 3.0, 1.0, 0.2]
    # docs/theory.md §2.1 numbers, quoted to 6-7 significant digits there
    for (lr, rho), amp in zip(
        [(0.1, 0.05), (0.3, 0.1), (0.35, 0.02), (0.05, 0.5)],
        [0.0166667, 0.3, 0.14, 0.0714286],
        strict=True,
    ):
        cyc = B.sam_two_cycle(lam, lr, rho)
        assert cyc["amplitude"] == pytest.approx(amp, rel=1e-5)
        sub = {tightness.lam: 5.0, S.eta: lr, S.rho: rho}
        assert cyc["amplitude"] == pytest.approx(float(tightness.AMPLITUDE.xreplace(sub)), rel=RTOL)
        assert cyc["grad_norm_sq"] == pytest.approx(float(tightness.GRAD_NORM.xreplace(sub)) ** 2)
        assert cyc["loss"] == pytest.approx(float(tightness.LOSS.xreplace(sub)), rel=RTOL)
    at = B.sam_two_cycle(lam, 1 / 5.0, 0.1)
    assert at["attains_floor"] and at["grad_norm_sq"] == pytest.approx(25 * 0.01, rel=1e-12)
    assert not B.sam_two_cycle(lam, 0.1, 0.1)["attains_floor"]


def test_two_cycle_against_simulation():
    lam = np.array([4.0, 2.5, 1.0])
    lr, rho = 1 / 4.0, 0.1
    x = np.array([0.3, -0.2, 0.5])
    for _ in range(3000):
        g = lam * x
        x = x - lr * lam * (x + rho * g / np.linalg.norm(g))
    cyc = B.sam_two_cycle(lam, lr, rho)
    # converged to the cycle: other components decay geometrically (factor < 1 per step)
    assert abs(x[0]) == pytest.approx(cyc["amplitude"], rel=1e-9)
    assert np.linalg.norm(lam * x) ** 2 == pytest.approx(0.16, rel=1e-9)  # docs/theory.md: 0.16


def test_b_prime_does_not_enter_t1():
    a = B.t1_bound(1.0, 2.0, 0.1, 0.3, 100, 1.0, 8, ascent_batch_size=1)
    b = B.t1_bound(1.0, 2.0, 0.1, 0.3, 100, 1.0, 8, ascent_batch_size=1024)
    assert a == b
    assert B.t1_bound(1.0, 2.0, 0.1, 0.3, 100, 1.0, 8, same_batch=True) > a
    # deterministic case: 2 Delta/(eta T) + L^2 rho^2
    assert B.t1_bound(1.0, 2.0, 0.1, 0.5, 10) == pytest.approx(2 / 5 + 0.04)
    # b' enters T2
    t2 = B.t2_bound
    assert t2(1, 2, 0.1, 0.3, 2, 100, 1, 8, 1) > t2(1, 2, 0.1, 0.3, 2, 100, 1, 8, 64)
    # staleness enters T2
    assert B.t2_bound(1, 2, 0.1, 0.3, 5, 100) > B.t2_bound(1, 2, 0.1, 0.3, 0, 100)


@pytest.mark.parametrize(
    "call, param",
    [
        (lambda: B.t1_bound(1, 4.0, 0.1, 0.26, 10), "lr"),
        (lambda: B.t1_bound(1, -1.0, 0.1, 0.1, 10), "L"),
        (lambda: B.t1_bound(1, 1.0, 0.1, 0.1, 0), "steps"),
        (lambda: B.t1_bound(1, 1.0, 0.1, 0.1, 10, sigma2_total=-1), "sigma2_total"),
        (lambda: B.t1_bound(1, 1.0, 0.1, 0.1, 10, batch_size=0), "batch_size"),
        (lambda: B.t1_bound(1, 1.0, 0.1, 0.1, 10, ascent_batch_size=0), "ascent_batch_size"),
        (lambda: B.t1_bound(-1, 1.0, 0.1, 0.1, 10), "delta"),
        (lambda: B.t2_bound(1, 2.0, 0.5, 0.1, 1, 10), "rho"),
        (lambda: B.t2_bound(1, 2.0, 0.1, 0.1, -1, 10), "tau"),
        (lambda: B.t2_bound(1, 2.0, 0.1, 0.6, 1, 10), "lr"),
        (lambda: B.t3_bound(1, 1.0, 2.0, 0.1, 0.5, 10), "mu"),
        (lambda: B.t3_bound(1, 1.0, 1.0, 0.1, 1.0, 10), "lr"),
        (lambda: B.sam_two_cycle([2.0, 1.0], 1.0, 0.1), "lr"),
        (lambda: B.sam_two_cycle([2.0, -1.0], 0.1, 0.1), "eigenvalues"),
        (lambda: B.stale_fidelity_bound(1.0, 0.1, 4.0), "angle"),
        (lambda: B.stale_direction_bound(1.0, 0.1, 1, 1.0, 0.0), "grad_norm"),
        (lambda: B.penalty_remainder_bound(-1, 0.1), "M_H"),
    ],
)
def test_bad_inputs_raise_value_error_naming_parameter(call, param):
    with pytest.raises(ValueError, match=rf"^{param} "):
        call()


def test_theorem_registry_points_at_existing_proofs():
    assert set(B.THEOREMS) == {"T1", "T2", "T3", "T4"}
    for th in B.THEOREMS.values():
        mod = th.proof_module.removesuffix(".py").replace("/", ".")
        importlib.import_module(mod)
        assert th.proof_ids and all(pid in proofs.BUILDERS for pid in th.proof_ids)
        assert th.statement and th.step_size_condition and th.assumptions


@pytest.mark.parametrize("name", ["t1_constants", "t1_bound", "t1_sharp_bound", "t2_bound",
                                  "t2_sharp_bound", "t3_bound"])
def test_bounds_refuse_the_ambiguous_sigma2_keyword(name):
    """sigma2= (which problems used per coordinate) is refused with the conversion; the total
    variance is sigma2_total=, and positional arguments mean the same as before."""
    fn = getattr(B, name)
    args = {"t1_constants": (1.0, 0.1, 0.5), "t1_bound": (1.0, 1.0, 0.1, 0.5, 10),
            "t1_sharp_bound": (1.0, 1.0, 0.1, 0.5, 10), "t2_bound": (1.0, 1.0, 0.1, 0.5, 1, 10),
            "t2_sharp_bound": (1.0, 1.0, 0.1, 0.5, 1, 10),
            "t3_bound": (1.0, 1.0, 0.5, 0.1, 0.5, 10)}[name]
    extra = {"batch_size": 1.0} if name == "t1_constants" else {}
    with pytest.raises(TypeError, match=r"sigma2_total=.*dim \* problem\.sigma2_per_coord"):
        fn(*args, sigma2=0.3, **extra)
    by_name = fn(*args, sigma2_total=0.3, **extra)
    by_position = fn(*args, 0.3, **extra)
    assert by_name == by_position != fn(*args, sigma2_total=0.0, **extra)


def test_problem_noise_meets_the_bound_as_the_total():
    """The per-coordinate variance of a problem enters the bound d times: the bound computed
    from problem.sigma2_total exceeds the one from the per-coordinate value by
    L lr (d - 1) s / b in T1's noise term."""
    from asam_theory.problems import Quadratic

    d, s = 8, 0.05
    p = Quadratic.from_spectrum("condition_number", d, L=1.0, kappa=10).with_noise(s)
    x0 = np.ones(d)
    total = B.t1_bound(p.delta(x0), p.L, 0.1, 0.5, 100, sigma2_total=p.sigma2_total)
    per_coord = B.t1_bound(p.delta(x0), p.L, 0.1, 0.5, 100, sigma2_total=p.sigma2_per_coord)
    assert total - per_coord == pytest.approx(p.L * 0.5 * (d - 1) * s, rel=1e-12)
