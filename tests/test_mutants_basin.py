"""FLAT-BASIN.flat_fraction asserts both sides of its statement: an AsyncSAM that is SAM does
not show the loss predicted at rho = 0.1, a missing perturbation fails the in-regime side, and
the correct code holds on both sides."""

import pytest

from asam_theory.claims import Settings, registry, run_check
from asam_theory.mutants import by_id

CLAIM = registry()["FLAT-BASIN"]
CHECK = CLAIM.checks[0]


def _run(seed, mutant_id=None):
    if mutant_id is None:
        return run_check(CLAIM, CHECK, Settings(mode="quick", seed=seed))
    with by_id(mutant_id).apply():
        return run_check(CLAIM, CHECK, Settings(mode="quick", seed=seed))


@pytest.mark.parametrize("seed", [0, 1])
def test_correct_code_holds_on_both_sides(seed):
    v = _run(seed)
    assert v.outcome == "holds", v.summary
    assert v.config["inside_holds"] and v.config["predicted_loss_seen"]
    predicted = [r for r in v.table if r.get("predicted_loss")]
    assert predicted and all(r[f"{c}_loss_lower_one_sided95"] > 0
                             for r in predicted for c in r["predicted_loss"])


@pytest.mark.parametrize("seed", [0, 1])
def test_asyncsam_made_sam_misses_the_predicted_loss(seed):
    v = _run(seed, "asyncsam-is-sam")
    assert v.outcome == "fails", v.summary
    assert not v.config["predicted_loss_seen"]


@pytest.mark.parametrize("seed", [0, 1])
def test_missing_perturbation_fails_inside_the_regime(seed):
    v = _run(seed, "perturbation-missing")
    assert v.outcome == "fails", v.summary
    assert not v.config["inside_holds"]
