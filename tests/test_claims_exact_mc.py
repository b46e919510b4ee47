"""Claim EXACT-MC: every check passes in quick mode, and each comparison has power — it fails
when the exact side is told the wrong noise model or the wrong noise variance, or when the
boundary check is handed a wrong stability limit."""

from __future__ import annotations

import math

import numpy as np
import pytest

import asam_theory.claims.exact_mc as emc
from asam_theory import stats
from asam_theory.claims import Settings, registry, run_check
from asam_theory.sweeps.exact_mc import make_rule, stability_task, stationary_task, transient_task
from asam_theory.theory import exact

QUICK = Settings(mode="quick", seed=0)


def _claim():
    return registry()["EXACT-MC"]


@pytest.fixture(scope="module")
def verdicts() -> dict:
    """Every check of the claim, run once in quick mode."""
    c = _claim()
    return {check.name: run_check(c, check, QUICK) for check in c.checks}


@pytest.mark.parametrize("name", ["transient", "stationary", "stability_boundary"])
def test_check_passes_quick(verdicts: dict, name: str) -> None:
    v = verdicts[name]
    assert v.error is None, v.error
    assert v.passed, v.summary
    assert v.table


def test_claim_in_registry_after_import() -> None:
    assert "EXACT-MC" in registry()


def test_bonferroni_value() -> None:
    # Phi^{-1}(1 - 0.01 / (2 * 100)) = 3.8906
    assert stats.bonferroni_z(100) == pytest.approx(3.8906, abs=1e-3)
    assert stats.bonferroni_z(1) == pytest.approx(2.5758, abs=1e-3)


# ------------------------------------------------------------------------ power: wrong model


def test_transient_fails_with_wrong_noise_model() -> None:
    # the exact side ignores the ascent noise (model (a)) while the engine has it
    v = emc.transient_check(QUICK, exact_ascent_noise="none")
    assert not v.passed
    assert v.measured > 3 * v.bound


def test_transient_fails_with_wrong_sigma2() -> None:
    # forgetting the engine's 1/b (b = 2): the exact side gets twice the noise variance
    v = emc.transient_check(QUICK, exact_sigma2=2 * emc.TRANSIENT_PROBLEM["sigma2"])
    assert not v.passed


def test_stationary_fails_with_wrong_noise_model() -> None:
    v = emc.stationary_check(QUICK, exact_ascent_noise="none")
    assert not v.passed
    assert v.measured > 3 * v.bound


def test_stationary_fails_with_slightly_wrong_sigma2() -> None:
    # 5 % too much noise variance on the exact side is already caught in quick mode
    cfgs = emc.stationary_configs(QUICK)
    rows = [stationary_task({**c, "exact_sigma2": 1.05 * c["sigma2"]}) for c in cfgs[:2]]
    assert max(abs(r["f_z"]) for r in rows) > stats.bonferroni_z(2 * len(cfgs))


def test_stationary_reproduces_theory_md_s6_lyapunov() -> None:
    for tau, val in emc.THEORY_MD_S6_VALUES.items():
        kw = {k: v for k, v in emc.THEORY_MD_S6.items() if k in ("lr", "rho", "batch_size")}
        st = exact.stationary_moments(np.diag(emc.THEORY_MD_S6["eigenvalues"]), tau=tau,
                                      sigma2_per_coord=emc.THEORY_MD_S6["sigma2"], **kw)
        assert abs(st.excess_loss - val) <= 0.6e-6


# ------------------------------------------------------------------------ power: boundary


def _boundary_cfg(scale: float, tau: int = 2) -> dict:
    lam, rho_lam = emc.STABILITY_SPECTRA[0]
    return emc._stability_cfg(lam, rho_lam / lam[0], tau, scale, 0, "boundary")


def test_boundary_pair_converges_then_diverges() -> None:
    lo, hi = stability_task(_boundary_cfg(0.99)), stability_task(_boundary_cfg(1.01))
    assert not lo["diverged"] and lo["dist2_end"] <= emc.SHRINK * lo["dist2_start"]
    assert hi["diverged"] and hi["divergence_step"] <= _boundary_cfg(1.01)["steps"]
    assert lo["engine_limit"] == pytest.approx(lo["eta_star"], rel=1e-9)
    assert hi["engine_warned"] and not lo["engine_warned"]


@pytest.mark.parametrize("eta_star_scale", [1.03, 0.97])
def test_boundary_check_fails_with_a_wrong_limit(eta_star_scale: float) -> None:
    # a boundary 3 % off (as a wrong root condition would give): with 1.03 the runs at
    # (1 - 1e-2) of it lie beyond the true eta* and diverge; with 0.97 the runs at (1 + 1e-2)
    # of it are stable and converge, so the converge/diverge criterion fails either way
    v = emc.stability_check(QUICK, eta_star_scale=eta_star_scale)
    assert not v.passed
    bnd = [r for r in v.table if r["kind"] == "boundary"]
    wrong_side = [r for r in bnd if (r["scale"] < 1) == (eta_star_scale > 1)]
    assert wrong_side and not any(r["outcome_ok"] for r in wrong_side)


def test_steps_follow_the_radius() -> None:
    # T = ceil(log(factor * margin) / log r+) for tau = 0 where r+ = 1 + 2 delta exactly
    lam = [2.0, 1.0]
    t = emc.stability_steps(lam, 0.1, 0, 1.01)
    t_plus = math.log(emc.DIVERGENCE_FACTOR * emc.GROWTH_MARGIN) / math.log(1.02)
    assert t >= math.ceil(t_plus)


# ------------------------------------------------------------------------ tasks and conventions


def test_engine_noise_convention_matches_exact() -> None:
    # one step of SGD from x* (b = 4): E||x_1 - x*||^2 = lr^2 d sigma2 / b in both
    cfg = {"eigenvalues": [1.0, 0.5, 0.2], "problem_seed": 1, "sigma2": 0.3, "lr": 0.1,
           "rho": 0.0, "tau": 0, "model": "sgd", "batch_size": 4, "n_seeds": 4000, "seed": 0,
           "steps": 1, "times": [1], "x0_offset": [0.0, 0.0, 0.0]}
    r = transient_task(cfg)
    assert abs(r["f_z"][0]) < 4.5
    ex = exact.transient_moments(np.eye(3), np.zeros(3), lr=0.1, sigma2_per_coord=0.3, steps=1,
                                 batch_size=4, method="delayed_sgd")
    assert ex.dist_sq[1] == pytest.approx(0.1**2 * 3 * 0.3 / 4)


def test_make_rule_rejects_unknown_model() -> None:
    with pytest.raises(ValueError, match="model"):
        make_rule({"model": "sam", "lr": 0.1})


def test_plots_draw(verdicts: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for check in _claim().checks:
        fig, ax = plt.subplots()
        check.plot(verdicts[check.name], ax)
        plt.close(fig)


def test_a_divergence_fails_the_check_with_its_step_instead_of_raising():
    """A run that diverges inside the stability region is a finding, not a crash: the task
    reports the seeds and the first (seed, step, value), the check fails on it."""
    cfg = {**emc.transient_configs(QUICK)[0], "lr": 5.0, "n_seeds": 8}
    with pytest.warns(Warning, match="diverged"):  # the engine's own report, expected here
        r = transient_task(cfg)
    assert r["diverged"] > 0 and len(r["divergences"][0]) == 3
    out = emc.diverged_outcome([{**cfg, **r}, {**cfg, "diverged": 0}])
    assert out is not None and out.status == "fails"
    assert "diverged in 1 of 2 runs" in out.summary and str(r["divergences"][0]) in out.summary
    assert emc.diverged_outcome([{**cfg, "diverged": 0}]) is None
    with pytest.warns(Warning, match="diverged"):
        st = stationary_task({**emc.stationary_configs(QUICK)[0], "lr": 5.0, "n_seeds": 8})
    assert st["diverged"] > 0
