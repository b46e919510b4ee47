"""The proof mutants are killed by the claims' proof checks, which hold on the correct code."""

from __future__ import annotations

import pytest

from asam_theory.claims import Settings, registry, run_check
from asam_theory.mutants import proofs as proof_mutants
from asam_theory.mutants.catalog import all_mutants

#: per mutant, the quickest of its killing checks (each builds one or two proofs)
FAST = {
    "proof-false-inequality": "T1.proof",
    "proof-relabel-quantities": "T1.proof",
    "proof-relabel-shifted": "PEP-T1.sharp_proof",
    "proof-dropped-domain": "T3.proof",
    "proof-dropped-forall": "T1.proof",
    "proof-positivity-assumed": "PEP-T1.sharp_proof",
}


def _outcome(check_id: str, seed: int) -> str:
    claim_id, name = check_id.split(".")
    claim = registry()[claim_id]
    check = next(c for c in claim.checks if c.name == name)
    return run_check(claim, check, Settings(mode="quick", seed=seed)).outcome


def test_every_proof_mutant_is_catalogued_and_names_its_fast_check():
    ids = {m.id for m in all_mutants()}
    assert {m.id for m in proof_mutants.MUTANTS} <= ids
    assert set(FAST) == {m.id for m in proof_mutants.MUTANTS}
    for m in proof_mutants.MUTANTS:
        assert m.family == "proof" and FAST[m.id] in m.checks


@pytest.mark.parametrize("mutant", proof_mutants.MUTANTS, ids=lambda m: m.id)
@pytest.mark.parametrize("seed", [0, 3])
def test_proof_mutant_is_killed(mutant, seed):
    with mutant.apply():
        assert _outcome(FAST[mutant.id], seed) == "fails"


@pytest.mark.parametrize("check_id", sorted(set(FAST.values())))
@pytest.mark.parametrize("seed", [0, 3])
def test_no_false_alarm_on_the_correct_code(check_id, seed):
    assert _outcome(check_id, seed) == "holds"
