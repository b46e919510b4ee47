"""PEERS.t1's near-stationary setting: a perturbation 5 or 20 radii wide breaks T1 on every
family, for SAM/AsyncSAM (``perturbation-*``) and for the peers (``peer-perturbation-*``),
while the correct code stays within T1."""

import pytest

from asam_theory.claims import Settings, registry, run_check
from asam_theory.mutants import by_id
from asam_theory.mutants import peers as family

CLAIM = registry()["PEERS"]
CHECK = next(c for c in CLAIM.checks if c.name == "t1")
MUTANTS = ("perturbation-5x-radius", "peer-perturbation-5x-radius",
           "peer-perturbation-20x-radius")


def _near_stationary(v):
    return [r for r in v.table if r["setting"] == "near_stationary"]


@pytest.mark.parametrize("seed", [0, 1])
def test_correct_code_stays_within_t1(seed):
    v = run_check(CLAIM, CHECK, Settings(mode="quick", seed=seed))
    assert v.outcome == "holds", v.summary
    assert {r["family"] for r in _near_stationary(v)} == {
        "quadratic", "finite_sum_quadratic", "cauchy_clean", "softmax_overlap"}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("mutant_id", MUTANTS)
def test_wide_perturbation_breaks_t1_on_every_family(mutant_id, seed):
    with by_id(mutant_id).apply():
        v = run_check(CLAIM, CHECK, Settings(mode="quick", seed=seed))
    assert v.outcome == "fails", v.summary
    # the mutant reaches the methods it patches: SAM/AsyncSAM through _Perturbed.perturb, the
    # peers (AE-SAM, SSAM, BiSAM) through _Perturbed.perturbation
    hit = {"sam", "asyncsam"} if mutant_id.startswith("perturbation") else {"aesam", "ssam",
                                                                              "bisam"}
    broken = {r["family"] for r in _near_stationary(v) if r["method"] in hit and r["ratio"] > 1}
    assert broken == {"quadratic", "finite_sum_quadratic", "cauchy_clean", "softmax_overlap"}


def test_mutants_restore_the_rule_and_name_peers_t1():
    from asam_theory.methods.rules import _Perturbed

    before = _Perturbed.perturbation
    for m in family.MUTANTS:
        with m.apply():
            assert _Perturbed.perturbation is not before
        assert m.checks == ("PEERS.t1",)
    assert _Perturbed.perturbation is before
