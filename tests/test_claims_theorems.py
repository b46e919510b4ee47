"""Claims T1-T3: every check passes in quick mode, and each check can fail.

The failing cases use the real sweeps and proofs with one ingredient replaced: a bound scaled
below the measurements, a bound function perturbed by 1 %, a seed marked diverged, runs
marked out of the region.
"""

from __future__ import annotations

import numpy as np
import pytest

import asam_theory.claims.theorems as CT
import asam_theory.sweeps.theorems as sims
from asam_theory.claims import Settings, registry, run_check
from asam_theory.engine import simulate
from asam_theory.methods import AsyncSAM
from asam_theory.theory import bounds

QUICK = Settings(mode="quick")
CLAIMS = [registry()[i] for i in ("T1", "T2", "T3")]
CASES = [(c, ch) for c in CLAIMS for ch in c.checks]


@pytest.mark.parametrize("claim, check", CASES, ids=[f"{c.id}.{ch.name}" for c, ch in CASES])
def test_every_check_passes_in_quick_mode(claim, check):
    v = run_check(claim, check, QUICK)
    assert v.error is None, v.error
    assert v.passed, v.summary
    if check.name == "dominant_terms":
        # rows where one term is (nearly) attained: the mean may exceed the bound by noise,
        # never by more than the check's own allowance of 3 standard errors
        assert v.table and all(r["status"] == "pass" for r in v.table)
        assert all(r["measured"] <= r["bound"] + 3 * r["se"] for r in v.table)
        assert max(r["ratio"] for r in v.table) > 0.8  # the rows do reach their bound
    elif check.method == "monte_carlo":
        # quick mode stays quick by its size, not by a wall-clock limit: at most 2e5
        # seed-steps (configurations x steps x seeds) over the whole sweep
        assert len(v.table) * v.config["steps"] * v.config["n_seeds"] <= 200_000
        assert all(r["status"] == "pass" for r in v.table)
        assert 0 < v.ratio <= 1
        fams = sims.PL_FAMILIES if claim.id == "T3" else sims.FAMILIES
        assert {r["family"] for r in v.table} == set(fams)
        assert {r["tau"] for r in v.table} == set(sims.TAUS)
        v.to_json()  # JSON-able


def test_claims_carry_theorem_statements():
    for c in CLAIMS:
        th = bounds.THEOREMS[c.id]
        assert th.statement in c.statement and th.proof_module in c.source
        assert {ch.method for ch in c.checks} >= {"symbolic", "monte_carlo"}
    assert "exact" in {ch.method for ch in registry()["T1"].checks}


@pytest.mark.parametrize("tid", ["T1", "T2", "T3"])
def test_monte_carlo_check_fails_with_a_too_small_bound(tid):
    v = CT.monte_carlo_check(tid, QUICK, bound_scale=0.1)
    assert not v.passed
    assert any(r["status"] == "violation" for r in v.table)
    assert "bound scaled by 0.1" in v.summary


def test_evaluate_row_threshold_is_three_standard_errors():
    cfg = sims.design("T1", "quick", 200, 16, seed=3)[1]  # finite-sum quadratic: noisy
    row = {**cfg, **sims.bound_task(cfg)}
    base = sims.evaluate_row(row)
    assert base["status"] == "pass" and base["se"] > 0
    # keep only the worst horizon and put the bound 2 SE / 4 SE below its measured mean
    t, m, se = base["worst_t"], base["measured"], base["se"]
    one = {**row, "times": [t], "mean": [m], "se": [se]}
    b0 = sims.theorem_bound(row, t)
    assert sims.evaluate_row(one, (m - 2 * se) / b0)["status"] == "pass"
    low = sims.evaluate_row(one, (m - 4 * se) / b0)
    assert low["status"] == "violation" and low["z"] == pytest.approx(4.0)


def test_diverged_and_out_of_scope_rows_fail_the_check(monkeypatch):
    real = sims.bound_task

    def diverged(cfg):
        return {**real(cfg), "n_diverged": 1}

    monkeypatch.setattr(sims, "bound_task", diverged)
    v = CT.monte_carlo_check("T2", QUICK)
    assert not v.passed and {r["status"] for r in v.table} == {"diverged"}

    def outside(cfg):
        return {**real(cfg), "in_region": False}

    monkeypatch.setattr(sims, "bound_task", outside)
    v = CT.monte_carlo_check("T2", QUICK)
    assert not v.passed and {r["status"] for r in v.table} == {"out_of_scope"}


def test_leaving_the_region_is_detected():
    # start at |x| = 1.495 on the outer flank of the flat basin of TwoBasin (region |x| <= 1.5;
    # rho = 1/L ≈ 0.018): the ascent direction points outwards, so w + eps leaves the ball
    cfg = {"theorem": "T1", "family": "two_basin", "tau": 1, "ascent": "independent",
           "lr_frac": 0.5, "rho_frac": 1.0, "sigma2": 0.0, "b": 1, "bp": 1, "steps": 50,
           "n_seeds": 4, "seed": 0, "x0": [1.495, 0.0]}
    row = sims.evaluate_row({**cfg, **sims.bound_task(cfg)})
    assert row["status"] == "out_of_scope" and not row["in_region"]
    cfg["x0"] = None  # the sweep's own start stays inside
    assert sims.evaluate_row({**cfg, **sims.bound_task(cfg)})["status"] == "pass"


@pytest.mark.parametrize("name", ["t1_bound", "t2_bound", "t3_bound"])
def test_symbolic_check_fails_when_the_bound_function_drifts(monkeypatch, name):
    real = getattr(bounds, name)
    monkeypatch.setattr(bounds, name, lambda *a, **k: 1.01 * real(*a, **k))
    tid = {"t1_bound": "T1", "t2_bound": "T2", "t3_bound": "T3"}[name]
    v = CT.symbolic_check(tid, QUICK)
    assert not v.passed and v.measured == pytest.approx(0.01, rel=1e-6)


def test_exact_check_fails_with_a_too_small_bound(monkeypatch):
    real = bounds.t1_bound
    monkeypatch.setattr(bounds, "t1_bound", lambda *a, **k: 0.95 * real(*a, **k))
    v = CT.t1_deterministic_floor(QUICK)
    assert not v.passed


def test_deterministic_floor_is_attained_with_staleness():
    for tau in (1, 2):
        r = sims.deterministic_floor_task({"eigenvalues": [4.0, 1.0, 0.3], "tau": tau,
                                           "rho": 0.1, "steps": 2000, "seed": 0})
        assert r["measured"] <= r["bound"] and not r["diverged"]
        assert r["tail_ratio"] == pytest.approx(1.0, abs=1e-8)


def test_sweep_tasks_are_deterministic():
    for th in ("T1", "T2", "T3"):
        cfg = sims.design(th, "quick", 100, 8, seed=5)[1]
        assert sims.bound_task(cfg) == sims.bound_task(cfg)
    c = {"eigenvalues": [2.0, 1.0], "tau": 2, "rho": 0.05, "steps": 300, "seed": 4}
    assert sims.deterministic_floor_task(c) == sims.deterministic_floor_task(c)


@pytest.mark.parametrize("family", sims.FINITE_SUMS)
def test_one_sample_variance_closed_forms_equal_noise_variance(family):
    p, x0 = sims.make_problem(family)
    x = x0 + 3 * np.random.default_rng(1).standard_normal((20, p.dim))
    np.testing.assert_allclose(sims.one_sample_variance(p, x), p.noise_variance(x, 1),
                               rtol=1e-10)


def test_tracked_problem_changes_nothing_and_records_noise_and_region():
    p, x0 = sims.make_problem("finite_sum_quadratic")
    rule = AsyncSAM(lr=0.5 / p.L, rho=0.1, tau=2, batch_size=4, ascent_batch_size=8)
    tr = sims.Tracked(p)
    a = simulate(p, rule, x0, 60, 5, 3, record=("f",))
    b = simulate(tr, rule, x0, 60, 5, 3, record=("f",))
    np.testing.assert_array_equal(a.metrics["f"], b.metrics["f"])
    # the recorded maximum is at least the variance at the start (the first ascent point)
    assert tr.max_noise_variance >= sims.one_sample_variance(p, x0[None])[0]
    assert tr.outside is not None and not tr.outside.any()  # no region: never outside


def test_noise_bookkeeping():
    cfg = {"theorem": "T1", "family": "matrix_factorization", "tau": 1,
           "ascent": "independent", "lr_frac": 0.5, "rho_frac": 0.1, "sigma2": 0.01, "b": 4,
           "bp": 1, "steps": 40, "n_seeds": 4, "seed": 0}
    r = sims.bound_task(cfg)
    assert r["sigma2_total"] == pytest.approx(14 * 0.01)  # d * per-coordinate variance
    with pytest.raises(ValueError, match="sigma2"):
        sims.bound_task({**cfg, "family": "cauchy_regression", "sigma2": 0.1})
    # the exact oracle is run with one seed (all seeds would coincide)
    assert sims.bound_task({**cfg, "sigma2": 0.0})["n_seeds_run"] == 1


def test_same_batch_on_a_finite_sum_uses_the_component_constant():
    p, _ = sims.make_problem("cauchy_regression")
    cfg = {"theorem": "T1", "tau": 0, "ascent": "descent"}
    assert sims.smoothness(cfg, p) == p.L_component > p.L
    assert sims.smoothness({**cfg, "ascent": "independent"}, p) == p.L


@pytest.mark.parametrize("mode", ["quick", "default", "full"])
def test_designs_cover_every_family_and_tau(mode):
    for th in ("T1", "T2", "T3"):
        d = sims.design(th, mode, 100, 4)
        fams = sims.PL_FAMILIES if th == "T3" else sims.FAMILIES
        assert {c["family"] for c in d} == set(fams)
        assert {c["tau"] for c in d} == set(sims.TAUS)
        assert len({c["seed"] for c in d}) == len(d)
        assert all(c["rho_frac"] < 1 for c in d) or th != "T2"
        assert all(c["ascent"] == "independent" for c in d if c["tau"] == 0) or th == "T1"
        if mode != "quick":
            for axis, values in sims.AXES[th].items():
                if axis not in ("sigma2", "b"):
                    assert {c[axis] for c in d} >= set(values), (th, axis)
    assert len(sims.design("T1", "full", 10, 1)) > len(sims.design("T1", "default", 10, 1))
