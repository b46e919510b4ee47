"""Claims T4 and FLAT-BASIN: every check passes in quick mode, and each can fail."""

from __future__ import annotations

import numpy as np
import pytest

import asam_theory.claims.penalty as pen
from asam_theory import stats
from asam_theory.claims import Settings, run_check, select
from asam_theory.sweeps.penalty import basin_task, fidelity_task, make_problem, remainder_task

QUICK = Settings(mode="quick")


@pytest.mark.parametrize("cid,check", [(c.id, ch.name) for c in select(["T4", "FLAT-BASIN"])
                                       for ch in c.checks])
def test_check_passes_quick(cid, check):
    claim = select([cid])[0]
    v = run_check(claim, next(ch for ch in claim.checks if ch.name == check), QUICK)
    assert v.error is None, v.error
    assert v.passed, v.summary
    assert v.to_json()["id"] == f"{cid}.{check}"


def test_proof_verdict_fails_on_unchecked_or_failed_step():
    good = {"proof": "T4", "title": "t", "checked": 5, "failed": 0, "unchecked": 0}
    assert pen.proofs_verdict([dict(good)]).passed
    assert not pen.proofs_verdict([{**good, "unchecked": 1}]).passed
    assert not pen.proofs_verdict([{**good, "failed": 1}]).passed
    assert not pen.proofs_verdict([{**good, "checked": 0}]).passed


def test_remainder_fails_against_too_small_bound():
    v = pen._remainder(QUICK, bound_scale=1e-3)
    assert not v.passed
    assert v.ratio > 1


def test_remainder_bound_and_slope_on_one_problem():
    r = remainder_task({"problem": "matfac", "direction": "random", "rhos": pen.RHOS,
                        "n_points": 50, "seed": 3, "stale_shift": 0.1})
    assert r["violations"] == 0 and r["worst_ratio"] <= 1
    # the fitted slope is 2 for a generic direction (MatrixFactorization is cubic in x, so
    # R = rho^2 T[u,u]/2 + rho^3 (...) with a non-degenerate second-order term)
    assert np.all(np.abs(np.asarray(r["slope"]) - 2) < 0.1)


def test_remainder_slope_test_can_fail():
    # a remainder that scales as rho (a wrong Hessian term) gives slope 1 -> fails
    rows = [remainder_task({"problem": p, "direction": "random", "rhos": pen.RHOS,
                            "n_points": 40, "seed": 1, "stale_shift": 0.1})
            for p in ("cauchy", "matfac")]
    for r in rows:
        r["problem"], r["direction"] = r.get("problem", "x"), "stale"
    for r, p in zip(rows, ("cauchy", "matfac"), strict=True):
        r["problem"] = p
        r["slope"] = [s - 1.0 for s in r["slope"]]
    assert not pen.remainder_verdict(rows).passed


def test_fidelity_fails_against_too_small_bound():
    cfg = {"problem": "quadratic", "lr_L": 0.5, "rho": 0.05, "tau": 1, "noise": "exact",
           "sigma2": 0.0, "batch": 8, "n_seeds": 4, "steps": 60, "burn_in": 30, "seed": 0}
    ok = fidelity_task(cfg)
    assert ok["fid_violations"] == 0 and ok["angle_violations"] == 0
    assert ok["vectorised_rel_error"] < 1e-12
    bad = fidelity_task({**cfg, "bound_scale": 0.5})
    assert bad["fid_violations"] > 0


def test_fidelity_measures_sam_exactly_at_tau0():
    r = fidelity_task({"problem": "cauchy", "lr_L": 0.5, "rho": 0.05, "tau": 0,
                       "noise": "exact", "sigma2": 0.0, "batch": 8, "n_seeds": 4,
                       "steps": 40, "burn_in": 20, "seed": 2})
    # StepInfo.fidelity normalises with the 1e-12 guard of davda54/sam: cos = 1 - O(1e-12/|g|)
    assert r["fidelity"] == pytest.approx(1.0, abs=1e-6)
    assert r["mean_loss"] == pytest.approx(0.0, abs=1e-12)


def test_basin_statistics():
    lo, hi = stats.wilson(0, 50)
    assert abs(lo) < 1e-12 and 0 < hi < 0.1
    lo, hi = stats.wilson(25, 50)
    assert lo < 0.5 < hi
    d = stats.newcombe(40, 50, 20, 50)
    assert d[0] > 0 and d[0] < 0.4 < d[1]
    assert stats.paired_interval(np.ones(10), np.ones(10)) == pytest.approx((0.0, 0.0), abs=1e-12)


def _basin_rows():
    cfg = {"lr": 0.2, "rho": 0.15, "sigma2": 0.03, "in_regime": True, "n_seeds": 120,
           "steps": 1000, "seed": 0}
    return [{**cfg, "method": m, "tau": t, **basin_task({**cfg, "method": m, "tau": t})}
            for m, t in pen.METHODS]


def test_basin_comparison_fails_when_sgd_is_the_candidate():
    rows = _basin_rows()
    assert pen.basin_verdict(rows).passed
    # SGD is not "more often than SGD": the one-sided comparison must fail
    assert not pen.basin_verdict(rows, candidates=("sgd",)).passed
    # and SGD is significantly *less* often than SAM here
    assert not pen.basin_verdict(rows, candidates=("sgd",), base="sam").passed


def test_basin_task_outcomes_are_consistent():
    r = basin_task({"lr": 0.2, "rho": 0.15, "sigma2": 0.03, "method": "sgd", "tau": 0,
                    "n_seeds": 50, "steps": 300, "seed": 4})
    assert r["n_flat"] == sum(r["flat_ind"]) and r["n"] == 50
    p = make_problem("two_basin")
    assert p.L > 0 and p.hessian_lipschitz > 0


def _t4_rows(tau_run, tau_declared, steps=80, n_seeds=4, seed=0):
    """Rows as the sweep returns them (config merged with the task's result)."""
    cfgs = [{"problem": "quadratic", "lr_L": 0.05, "rho": 0.05, "tau": t, "noise": "exact",
             "sigma2": 0.0, "batch": 8, "n_seeds": n_seeds, "steps": steps,
             "burn_in": steps // 2, "seed": seed, "declared_tau": d}
            for t, d in ((0, 0), (tau_run, tau_declared))]
    return [{**c, **fidelity_task(c)} for c in cfgs]


def test_min_independent_starts_is_the_success_run_number():
    """59 starts without a violation bound the per-start violation rate below 5 % at 95 %
    confidence, 58 do not (0.95^59 = 0.0485, 0.95^58 = 0.0510)."""
    n = pen.MIN_INDEPENDENT_STARTS
    assert n == stats.zero_failure_runs(pen.VIOLATION_RATE) == 59
    assert (1 - pen.VIOLATION_RATE) ** n <= 0.05 < (1 - pen.VIOLATION_RATE) ** (n - 1)
    # the one-sided Clopper-Pearson upper bound of 0 in n (two-sided 90 % interval's end)
    assert stats.clopper_pearson(0, n, 0.90)[1] <= pen.VIOLATION_RATE
    assert stats.clopper_pearson(0, n - 1, 0.90)[1] > pen.VIOLATION_RATE


def test_a_priori_penalty_loss_bound_is_non_trivial_and_holds():
    rows = _t4_rows(2, 2, n_seeds=pen.MIN_INDEPENDENT_STARTS)
    r = rows[1]
    assert r["loss_violations"] == 0 and r["vectorised_rel_error"] < 1e-12
    # at eta L = 0.05 the drift over 2 steps is small against ||g_t||: the bound binds
    assert r["loss_nontrivial"] > 0.9 and 0 < r["loss_worst_ratio_nontrivial"] < 1
    assert sum(r["loss_nontrivial_by_seed"]) == r["loss_nontrivial_steps"]
    v = pen.fidelity_verdict(rows)
    assert v.status == "holds", v.summary
    assert v.measured["independent_starts"] == pen.MIN_INDEPENDENT_STARTS
    assert v.measured["nontrivial_steps"] == r["loss_nontrivial_steps"]  # tau = 0 left out
    assert v.ratio == r["loss_worst_ratio_nontrivial"]


def test_too_few_independent_starts_leave_it_inconclusive():
    """Four starts reach the non-trivial range: too few to decide, whatever the steps."""
    rows = _t4_rows(2, 2)
    v = pen.fidelity_verdict(rows)
    assert v.status == "inconclusive" and v.measured["independent_starts"] == 4
    assert "4 independent starts" in v.summary and "59 needed" in v.summary
    assert pen.fidelity_verdict(rows, min_starts=4).status == "holds"


def test_runs_from_one_start_count_once():
    """The runs at tau = 1, 2, 4 from the same 4 starts are not 12 independent starts."""
    rows = _t4_rows(2, 2)
    more = [{**c, **fidelity_task(c)} for c in ({**rows[1], "tau": t, "declared_tau": t}
                                                  for t in (1, 4))]
    v = pen.fidelity_verdict(rows + more, min_starts=5)
    assert v.measured["independent_starts"] == 4 and v.status == "inconclusive"
    other_seed = _t4_rows(2, 2, seed=1)
    v = pen.fidelity_verdict(rows + other_seed, min_starts=8)
    assert v.measured["independent_starts"] == 8 and v.status == "holds"


def test_a_priori_bound_fails_when_the_run_is_staler_than_declared():
    # the rule uses tau = 8 while the bound is computed for tau = 1: the loss of fidelity
    # comes from staleness, and the a-priori bound (unlike 2 rho L sin(theta/2) at the
    # measured angle) catches it, on the steps where it is non-trivial
    rows = _t4_rows(8, 1)
    assert rows[1]["loss_violations"] > 0 and rows[1]["fid_violations"] == 0
    assert rows[1]["loss_violations_nontrivial"] > 0
    v = pen.fidelity_verdict(rows)
    assert v.status == "fails" and v.ratio > 1


def test_a_bound_that_is_only_ever_at_its_cap_decides_nothing():
    rows = _t4_rows(2, 2, n_seeds=pen.MIN_INDEPENDENT_STARTS)
    assert pen.fidelity_verdict(rows).passed
    # the same runs with the bound at its cap on every step: nothing about staleness is tested
    trivial = [{**r, "loss_nontrivial_steps": 0, "loss_nontrivial": 0.0,
                "loss_nontrivial_by_seed": [0] * len(r["loss_nontrivial_by_seed"]),
                "loss_worst_ratio_nontrivial": None} for r in rows]
    v = pen.fidelity_verdict(trivial)
    assert v.status == "inconclusive" and v.ratio is None
    assert v.measured["nontrivial_steps"] == 0 and v.measured["independent_starts"] == 0
    # a violation at a capped step (||H|| > L) still fails it
    capped = [{**r, "loss_violations": 1} for r in trivial]
    assert pen.fidelity_verdict(capped).status == "fails"


def test_a_diverging_run_is_reported_and_fails_not_raises():
    """lr = 5/L diverges on the quadratic: the task reports the seeds and the first step
    (the iterate's norm there), leaves their later steps out, and the verdict fails."""
    cfg = {"problem": "quadratic", "lr_L": 5.0, "rho": 0.05, "tau": 1, "noise": "exact",
           "sigma2": 0.0, "batch": 8, "n_seeds": 4, "steps": 600, "burn_in": 300, "seed": 0}
    r = {**cfg, **fidelity_task(cfg)}
    assert r["diverged_seeds"] > 0
    first = r["first_divergence"]
    assert 0 < first["step"] < cfg["steps"] and first["seed"] in range(4)
    v = pen.fidelity_verdict([r])
    assert v.status == "fails" and "DIVERGED" in v.summary
    assert f"at step {first['step']}" in v.summary
    # every seed diverged before the burn-in ended: no fidelity to trend, still a verdict
    assert pen.fidelity_verdict([{**r, "fidelity": None}]).status == "fails"


def _synthetic_basin(flat: dict, n: int, cfg=(0.2, 0.15, 0.03), in_regime=True):
    """Task rows with given numbers of flat seeds per method (seeds 0..k-1 flat)."""
    lr, rho, s2 = cfg
    rows = []
    for m, t in pen.METHODS:
        k = flat[pen._label(m, t)]
        rows.append({"lr": lr, "rho": rho, "sigma2": s2, "in_regime": in_regime, "method": m,
                     "tau": t, "n": n, "n_flat": k, "flat_ind": [1] * k + [0] * (n - k),
                     "n_at_barrier": 0, "n_diverged": 0, "cycle_amplitude_sharp": 0.1})
    return rows


def test_flat_basin_is_a_non_inferiority_test_with_the_stated_margin():
    near = {"sgd": 100, "sam": 250, "asyncsam_tau1": 249, "asyncsam_tau2": 250}
    assert pen.basin_verdict(_synthetic_basin(near, 250)).passed
    # 15 points below SAM is outside the margin 0.05 even though both are well above SGD
    far = {"sgd": 100, "sam": 250, "asyncsam_tau1": 212, "asyncsam_tau2": 250}
    v = pen.basin_verdict(_synthetic_basin(far, 250))
    assert not v.passed and v.status == "fails"
    # few seeds: "not significantly less than SAM" would pass (17/20 vs 20/20 has a 95%
    # interval reaching 0), non-inferiority does not: too little data to claim "as often"
    small = {"sgd": 2, "sam": 20, "asyncsam_tau1": 17, "asyncsam_tau2": 20}
    rows = _synthetic_basin(small, 20)
    up = stats.newcombe(17, 20, 20, 20)[1]
    assert up >= 0
    assert not pen.basin_verdict(rows).passed


def test_all_flat_configuration_is_uninformative_not_a_pass():
    all_flat = {"sgd": 250, "sam": 250, "asyncsam_tau1": 250, "asyncsam_tau2": 250}
    v = pen.basin_verdict(_synthetic_basin(all_flat, 250))
    assert v.status == "inconclusive" and not v.passed
    assert v.table[0]["uninformative"] and v.table[0]["claim_holds"] is None
    # next to an informative configuration it is reported and not counted
    good = {"sgd": 100, "sam": 250, "asyncsam_tau1": 250, "asyncsam_tau2": 250}
    rows = _synthetic_basin(all_flat, 250) + _synthetic_basin(good, 250, cfg=(0.15, 0.2, 0.01))
    v = pen.basin_verdict(rows)
    assert v.passed and "1/1 informative" in v.summary and "1 uninformative" in v.summary
