"""Mutants of the published-baseline claim (asam_theory.mutants.baselines) are killed by the
MLP check at quick size for two master seeds, the correct code gives no false alarm there, and
the mutant leaves no trace once its block ends."""

from __future__ import annotations

import numpy as np
import pytest

from asam_theory.claims import Settings, find_check, registry, run_check
from asam_theory.mutants.baselines import MUTANTS

BY_ID = {m.id: m for m in MUTANTS}


def _run(check_id: str, seed: int) -> str:
    return run_check(*find_check(check_id), Settings(mode="quick", seed=seed)).outcome


def test_every_mutant_names_checks_that_exist():
    reg = registry()
    for m in MUTANTS:
        assert m.family == "real_data"
        for cid in m.checks:
            claim, name = cid.split(".")
            assert name in {c.name for c in reg[claim].checks}, cid


@pytest.mark.parametrize("mutant", sorted(BY_ID))
@pytest.mark.parametrize("seed", [0, 1])
def test_killed_at_quick_size(mutant, seed):
    with BY_ID[mutant].apply():
        assert _run("BASELINES.mlp", seed) == "fails"


@pytest.mark.parametrize("seed", [0, 1])
def test_correct_code_gives_no_false_alarm(seed):
    assert _run("BASELINES.mlp", seed) == "holds"


def test_shuffled_labels_keep_the_label_multiset_and_break_the_pairing():
    from asam_theory import data

    ds = data.load_dataset("digits", seed=3)
    with BY_ID["mnist1d-labels-shuffled"].apply():
        bad = data.load_dataset("digits", seed=3)
    assert np.array_equal(np.sort(bad.y_train), np.sort(ds.y_train))
    assert np.mean(bad.y_train == ds.y_train) < 0.3  # chance agreement is about 0.1
    np.testing.assert_array_equal(bad.x_train, ds.x_train)
    assert np.array_equal(data.load_dataset("digits", seed=3).y_train, ds.y_train)
