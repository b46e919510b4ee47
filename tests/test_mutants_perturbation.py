"""The perturbation mutants: each is killed at quick size by a check that measures the
perturbation applied, and those checks pass on the correct code."""

import pytest

from asam_theory.claims import Settings, registry, run_check
from asam_theory.mutants import perturbation as family


def _check(check_id):
    claim_id, name = check_id.split(".")
    claim = registry()[claim_id]
    return claim, next(c for c in claim.checks if c.name == name)


@pytest.mark.parametrize("i", range(len(family.MUTANTS)), ids=lambda i: family.MUTANTS[i].id)
def test_mutant_is_killed_by_the_engine_replay_of_threaded_runs(i):
    mutant = family.MUTANTS[i]
    claim, check = _check("THREADED.threaded_vs_simulated")
    with mutant.apply():
        v = run_check(claim, check, Settings(mode="quick", seed=i % 2))
    assert v.outcome == "fails", v.summary


@pytest.mark.parametrize("mutant_id", [m.id for m in family.MUTANTS
                                       if "T4.stale_fidelity" in m.checks])
def test_t4_measures_the_perturbation_applied(mutant_id):
    """Every mutant naming T4.stale_fidelity fails it, and without an exception: the ones
    that make runs diverge (20x radius, rho g/||g||^2) are reported as diverged, not
    crashed (a crash is an error, not a kill)."""
    mutant = next(m for m in family.MUTANTS if m.id == mutant_id)
    claim, check = _check("T4.stale_fidelity")
    with mutant.apply():
        v = run_check(claim, check, Settings(mode="quick", seed=1))
    assert v.outcome == "fails" and v.error is None, (v.summary, v.error)


def test_t4_passes_on_the_correct_code():
    claim, check = _check("T4.stale_fidelity")
    v = run_check(claim, check, Settings(mode="quick", seed=1))
    assert v.outcome == "holds", v.summary


def test_mutants_restore_the_rules():
    from asam_theory.methods.rules import AsyncSAM, _Perturbed

    before = (_Perturbed.perturb, AsyncSAM.step)
    for m in family.MUTANTS:
        with m.apply():
            pass
    assert (_Perturbed.perturb, AsyncSAM.step) == before
    ids = {f"{c.id}.{k.name}" for c in registry().values() for k in c.checks}
    assert all(m.family == "method" and set(m.checks) <= ids for m in family.MUTANTS)
