"""The method mutants: well-formed, their patches apply and are undone, and each changes what
the method computes (the kills themselves: ``ASAM_MUTANT=<id> python -m pytest -q <tests>``,
run by the power runner)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asam_theory.methods import AUSAM
from asam_theory.mutants import all_mutants, by_id
from asam_theory.mutants.methods import MUTANTS
from asam_theory.rng import SeedStreams

ROOT = Path(__file__).resolve().parents[1]


def test_method_mutants_are_catalogued_and_name_existing_tests():
    ids = {m.id for m in all_mutants()}
    for m in MUTANTS:
        assert m.family == "method" and m.id in ids and m.tests
        for t in m.tests:
            assert (ROOT / t.split("::")[0]).is_file(), t


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if not m.id.startswith("looksam")],
                         ids=lambda m: m.id)
def test_patches_are_undone_on_exit(mutant):
    from asam_theory.methods import aesam, ausam, ssam

    before = (aesam.sam_wanted, ausam.AUSAM.select, ssam.SSAM.dynamic_mask,
              ssam.SSAM.perturbed_point)
    with mutant.apply():
        pass
    assert (aesam.sam_wanted, ausam.AUSAM.select, ssam.SSAM.dynamic_mask,
            ssam.SSAM.perturbed_point) == before


def test_aesam_mutant_changes_the_decision_through_sigma():
    from asam_theory.methods import aesam

    args = (np.array([2.8]), np.array([2.0]), np.array([0.75]), 1.0)  # sigma 0.866
    assert not aesam.sam_wanted(*args)[0]  # 2.8 < 2 + 0.866
    with by_id("aesam-sigma-squared").apply():
        assert aesam.sam_wanted(*args)[0]  # 2.8 >= 2 + 0.75
    assert not aesam.sam_wanted(*args)[0]


@pytest.mark.parametrize("mid", ["ausam-least-likely", "ausam-ignores-probabilities"])
def test_ausam_mutants_change_the_selection(mid):
    rule = AUSAM(lr=0.1, batch_size=4, alpha=0.5, trans_epochs=1)
    means = np.tile([0.0, 0.1, 1.0, 2.0], (2000, 1))
    right = np.bincount(rule.select(means, 2, SeedStreams(range(2000)))[0].ravel(), minlength=4)
    with by_id(mid).apply():
        wrong = np.bincount(rule.select(means, 2, SeedStreams(range(2000)))[0].ravel(),
                            minlength=4)
    assert np.abs(right - wrong).max() > 200  # counts out of 4000 picks
