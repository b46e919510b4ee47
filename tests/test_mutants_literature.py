"""The literature, exact-analysis and cost mutants (asam_theory.mutants.literature): each is
killed by every check it names at quick size, and leaves no trace once its block ends (the
same check holds again on the correct code)."""

from __future__ import annotations

import pytest

from asam_theory.claims import Settings, registry, run_check
from asam_theory.mutants.literature import MUTANTS

PAIRS = [(m, cid) for m in MUTANTS for cid in m.checks]


def _check(cid: str):
    claim_id, name = cid.split(".")
    claim = registry()[claim_id]
    return claim, next(ch for ch in claim.checks if ch.name == name)


@pytest.mark.parametrize(("mutant", "check_id"), PAIRS, ids=[f"{m.id}:{c}" for m, c in PAIRS])
def test_mutant_killed_then_correct_code_holds(mutant, check_id):
    claim, check = _check(check_id)
    settings = Settings(mode="quick", seed=0)
    with mutant.apply():
        killed = run_check(claim, check, settings)
    assert killed.outcome == "fails", killed.summary
    assert killed.error is None, "a kill must come from the comparison, not from a crash"
    assert run_check(claim, check, settings).outcome == "holds"
