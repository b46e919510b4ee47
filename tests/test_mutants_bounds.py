"""Bound and PEP mutants (asam_theory.mutants.bounds / .pep): each is killed by the check
named here at quick size for two master seeds, and those checks hold on the correct code.

The killing check of each mutant was measured (quick and default, seeds 0 and 1; the table is
in the mutant modules' docstrings' references: ``asam-theory power``); here only the cheapest
one per mutant runs, so the file takes seconds, not minutes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import asam_theory.claims.pep as cpep
from asam_theory.claims import Settings, find_check, run_check
from asam_theory.mutants import bounds as mb
from asam_theory.mutants import pep as mp
from asam_theory.theory import bounds
from asam_theory.theory import pep as P

#: mutant id -> the (fast) check that kills it at quick size
KILLER = {
    "t1-gap-half": "T1.deterministic_floor_with_staleness",
    "t1-rho-half": "T1.dominant_terms",
    "t1-noise-half": "T1.dominant_terms",
    "t1-sharp-gap-half": "PEP-T1.sharpened",
    "t1-sharp-rho-half": "PEP-T1.sharpened",
    "t1-sharp-noise-half": "T1.dominant_terms",
    "t2-gap-half": "PEP-T2.tight_at_unit_step",
    "t2-stale-half": "PEP-T2.bound_holds",
    "t2-ascent-noise-half": "T2.dominant_terms",
    "t2-descent-noise-half": "T2.dominant_terms",
    "t2-kappa-half": "T2.dominant_terms",
    "t2-sharp-gap-half": "PEP-T2.sharpened",
    "t2-sharp-stale-half": "PEP-T2.sharpened",
    "t2-sharp-ascent-noise-half": "T2.dominant_terms",
    "t2-sharp-descent-noise-half": "T2.dominant_terms",
    "t2-sharp-kappa-half": "T2.dominant_terms",
    "t3-gap-half": "PEP-T3.bound_holds",
    "t3-rho-half": "T3.dominant_terms",
    "t3-noise-half": "T3.dominant_terms",
    "t4-remainder-half": "T4.remainder",
    "t4-fidelity-half": "T4.stale_fidelity",
    "t4-direction-drift-half": "T4.stale_fidelity",
    "t4-direction-cap-half": "T4.stale_fidelity",
    "t4-drift-factor-half": "T4.stale_fidelity",
    "t4-angle-half": "T4.stale_fidelity",
    "t3-doubled": "PEP-T3.tightness",
    "t2-doubled": "PEP-T2.tight_at_unit_step",
    "t1-sharp-doubled": "PEP-T1.sharpened",
    "pep-perturbation-sign-flipped": "PEP-T1.pep_validation",
    "pep-radius-doubled": "PEP-T2.tight_at_unit_step",
    "pep-radius-halved": "PEP-T3.tightness",
}
MUTANTS = {m.id: m for m in (*mb.MUTANTS, *mp.MUTANTS)}
SEEDS = (0, 1)
needs_pep = pytest.mark.skipif(not P.available(), reason="PEPit/cvxpy not installed")


def _run(check_id: str, seed: int) -> str:
    cpep._CACHE.clear()  # PEP solves are cached per process; a mutant must solve afresh
    return run_check(*find_check(check_id), Settings(mode="quick", seed=seed)).outcome


def _marks(check_id: str):
    return [needs_pep] if check_id.startswith("PEP") else []


def test_every_mutant_has_a_killer_it_names():
    assert set(KILLER) == set(MUTANTS)
    for mid, check in KILLER.items():
        assert check in MUTANTS[mid].checks, (mid, check)
        assert MUTANTS[mid].family in ("bound", "pep")


@pytest.mark.parametrize("mid", [pytest.param(k, marks=_marks(v)) for k, v in KILLER.items()])
@pytest.mark.parametrize("seed", SEEDS)
def test_mutant_killed_at_quick_size(mid, seed):
    with MUTANTS[mid].apply():
        assert _run(KILLER[mid], seed) == "fails"


@pytest.mark.parametrize("check", [pytest.param(c, marks=_marks(c))
                                   for c in sorted(set(KILLER.values()))])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_code_holds(check, seed):
    assert _run(check, seed) == "holds"


def test_mutant_patches_are_removed_on_exit():
    before = bounds.t3_bound(1.0, 1.0, 0.5, 0.2, 0.5, 3, 0.1, 2)
    with MUTANTS["t3-rho-half"].apply():
        assert bounds.t3_bound(1.0, 1.0, 0.5, 0.2, 0.5, 3, 0.1, 2) < before
    assert bounds.t3_bound(1.0, 1.0, 0.5, 0.2, 0.5, 3, 0.1, 2) == before


def test_rewritten_t2_formulas_equal_the_theorem_at_unit_scales():
    """The T2 / T2-sharp mutants rewrite the formula; with every scale 1 they are the
    theorem (relative 1e-9: the minimisation over the weight is the theorem's own)."""
    rng = np.random.default_rng(3)
    (_, t2), = mb._t2()()
    (_, t2s), = mb._t2_sharp()()
    for _ in range(50):
        L = rng.uniform(0.5, 3)
        args = (rng.uniform(0.1, 5), L, rng.uniform(0, 0.95) / L, rng.uniform(0.05, 1) / L,
                int(rng.integers(0, 6)), int(rng.integers(1, 200)), rng.uniform(0, 2),
                int(rng.integers(1, 16)), int(rng.integers(1, 16)))
        assert math.isclose(t2(*args), bounds.t2_bound(*args), rel_tol=1e-12)
        assert math.isclose(t2s(*args), bounds.t2_sharp_bound(*args), rel_tol=1e-9)


def test_each_halved_term_lowers_its_bound_by_that_term():
    """T1 at eta = 1/L: gap 2 Delta L/T, rho term L^2 rho^2, noise sigma^2/b; each mutant
    removes exactly half of its term."""
    d, L, rho, lr, T, s2, b = 1.5, 2.0, 0.3, 0.5, 10, 0.4, 4
    full = bounds.t1_bound(d, L, rho, lr, T, s2, b)
    terms = {"t1-gap-half": 2 * d / (lr * T), "t1-rho-half": L**2 * rho**2,
             "t1-noise-half": L * lr * s2 / b}
    for mid, term in terms.items():
        with MUTANTS[mid].apply():
            assert math.isclose(full - bounds.t1_bound(d, L, rho, lr, T, s2, b), term / 2,
                                rel_tol=1e-12)
