"""The THREADED claim: quick checks pass, and the comparison detects a wrong simulation."""

import pytest

from asam_theory.claims import Settings, run_check, select
from asam_theory.claims import threaded as th


@pytest.fixture(scope="module")
def claim():
    return select(["THREADED"])[0]


@pytest.mark.parametrize("name", ["threaded_vs_simulated", "bounds_with_measured_staleness"])
def test_quick_checks_pass(claim, name):
    check = next(c for c in claim.checks if c.name == name)
    v = run_check(claim, check, Settings(mode="quick"))
    assert v.error is None, v.error
    assert v.passed, v.summary


def test_comparison_fails_against_a_wrongly_configured_simulation(claim, monkeypatch):
    real = th._replay_engine

    def wrong(p, runs, lr, rho, tau):  # a radius 1 % too large
        return real(p, runs, lr, 1.01 * rho, tau)

    monkeypatch.setattr(th, "_replay_engine", wrong)
    check = next(c for c in claim.checks if c.name == "threaded_vs_simulated")
    v = run_check(claim, check, Settings(mode="quick"))
    assert v.error is None and not v.passed


def test_noise_equivalence_rejects_a_wrong_variance():
    class Run:
        def __init__(self, rng, scale):
            self.descent_noise = scale * rng.standard_normal((200, 4))
            self.ascent_noise = rng.standard_normal((200, 4))

    import numpy as np

    rng = np.random.default_rng(0)
    assert all(v["ok"] for v in th._noise_tost([Run(rng, 1.0) for _ in range(3)], 1.0).values())
    # sigma instead of sigma^2 (variance 1.5x): the descent interval leaves 1 +- margin
    out = th._noise_tost([Run(rng, 1.5 ** 0.5) for _ in range(3)], 1.0)
    assert not out["descent"]["ok"] and out["ascent"]["ok"]


def test_bound_check_fails_when_the_bound_is_too_small(claim, monkeypatch):
    monkeypatch.setattr(th.bounds, "t1_bound", lambda *a, **k: 1e-6)
    check = next(c for c in claim.checks if c.name == "bounds_with_measured_staleness")
    v = run_check(claim, check, Settings(mode="quick"))
    assert v.error is None and not v.passed


def test_claim_says_which_check_forces_and_which_measures_the_staleness():
    from asam_theory.claims.threaded import THREADED

    forced, measured = THREADED.checks
    assert "forces" in THREADED.statement and "measures" in THREADED.statement
    assert forced.name in THREADED.statement and measured.name in THREADED.statement
    assert "forced by waiting" in forced.description
    assert "measured, not forced" in measured.description
