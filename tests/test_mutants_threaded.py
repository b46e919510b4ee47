"""The threaded mutants: each is killed by the THREADED checks at quick size, and the correct
code passes them (two master seeds)."""

import numpy as np
import pytest

from asam_theory.claims import Settings, registry, run_check
from asam_theory.mutants import threaded as family


def _check(check_id):
    claim_id, name = check_id.split(".")
    claim = registry()[claim_id]
    return claim, next(c for c in claim.checks if c.name == name)


@pytest.mark.parametrize("mutant", family.MUTANTS, ids=lambda m: m.id)
def test_mutant_is_killed_at_quick_size(mutant):
    claim, check = _check("THREADED.threaded_vs_simulated")
    with mutant.apply():
        v = run_check(claim, check, Settings(mode="quick", seed=1))
    assert v.outcome == "fails", v.summary


@pytest.mark.parametrize("mutant", [m for m in family.MUTANTS
                                    if m.id in ("threaded-no-perturbation", "threaded-rho-10x")],
                         ids=lambda m: m.id)
def test_radius_mutants_break_the_tight_bounds(mutant):
    claim, check = _check("THREADED.bounds_with_measured_staleness")
    with mutant.apply():
        v = run_check(claim, check, Settings(mode="quick", seed=0))
    assert v.outcome == "fails", v.summary


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("check_id", ["THREADED.threaded_vs_simulated",
                                      "THREADED.bounds_with_measured_staleness"])
def test_correct_code_passes(check_id, seed):
    claim, check = _check(check_id)
    v = run_check(claim, check, Settings(mode="quick", seed=seed))
    assert v.outcome == "holds", v.summary


def test_every_mutant_names_the_threaded_checks():
    ids = {f"{c.id}.{k.name}" for c in registry().values() for k in c.checks}
    for m in family.MUTANTS:
        assert m.family == "threaded" and set(m.checks) <= ids


def _process_run_is_wrong() -> bool:
    """One run of ``threaded_vs_simulated``'s setting with the worker in a spawned process
    (``backend="process"``, 40 steps): whether it breaks the check's criteria — its iterates
    leave the engine's replay by more than ``REPLAY_TOL``, or its staleness is not exactly τ
    after the warm-up."""
    from asam_theory.claims import threaded as th
    from asam_theory.experiments.realrun import threaded_quadratic_run

    lr, rho, tau, steps = 0.1, 0.05, 1, 40
    p = th._problem()
    runs = [threaded_quadratic_run(p, seed=7, sigma2=th.SIGMA2, backend="process", steps=steps,
                                   lr=lr, rho=rho, tau=tau, max_staleness=tau)]
    err = th._replay_error(runs, th._replay_engine(p, runs, lr, rho, tau))
    staleness_ok = np.array_equal(runs[0].staleness, np.minimum(np.arange(steps), tau))
    return err > th.REPLAY_TOL or not staleness_ok


@pytest.mark.slow
@pytest.mark.parametrize("mutant", family.MUTANTS, ids=lambda m: m.id)
def test_mutant_reaches_the_worker_process_backend(mutant):
    """Every third THREADED run puts the worker in a spawned process, which a patch made in
    the training process does not reach: each mutant changes what the training process does
    with the worker's direction (or the τ it builds the worker with), so a process-backend run
    is wrong under it too — and right without it."""
    with mutant.apply():
        assert _process_run_is_wrong()


@pytest.mark.slow
def test_correct_process_backend_run_replays():
    assert not _process_run_is_wrong()


@pytest.mark.slow
def test_killed_through_the_power_runners_processes(tmp_path):
    """What the quick power gate runs: each job in a process of the power runner, where every
    third THREADED run starts AsyncSAM's worker as a spawned process of its own — the correct
    code is judged there (no error) and holds, and a threaded mutant is killed."""
    from asam_theory.mutants import power

    out = power.run_power("quick", 1, 0, jobs=1, progress=False, root=tmp_path,
                          mutant_ids=["threaded-plain-sgd"],
                          claim_ids=["THREADED"])
    for c in out["checks"]:
        assert c["error_rate"] == 0.0 and c["outcomes"] == ["holds"], c
    (m,) = out["mutants"]
    assert m["kill_rate"] == 1.0 and not m["errors"], m
