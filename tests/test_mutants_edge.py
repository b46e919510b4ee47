"""The edge family's mutants are killed by EDGE's checks, and the correct code passes them.

EDGE.at_edge at quick size trains four full-batch runs; the runs do not depend on the edge
functions, so they are trained once per seed (cached here) and each mutant's edges are
re-evaluated on them — what ``run_check`` under the mutant would compute, without training
the same networks again. The ``fresh ascent`` mutant changes the training itself and is run
through the check.
"""

from __future__ import annotations

from functools import cache

import pytest

from asam_theory.claims import edge as C
from asam_theory.claims.base import Settings, run_check
from asam_theory.mutants import by_id
from asam_theory.mutants.edge import MUTANTS

_TRAIN = C._run_all


@cache
def _runs(seed: int):
    s = Settings(mode="quick", seed=seed)
    absolute, relative, ce = C._configs(s)
    return _TRAIN(absolute + relative + ce, s)


def _judge(seed: int) -> str:
    """EDGE.at_edge's verdict on the cached runs (edges computed now, under any patch)."""
    try:
        C._run_all = lambda configs, settings: _runs(seed)
        return C.at_edge(Settings(mode="quick", seed=seed)).status
    finally:
        C._run_all = _TRAIN


def _check(name: str):
    return next(c for c in C.EDGE.checks if c.name == name)


def test_every_edge_mutant_names_an_edge_check() -> None:
    for m in MUTANTS:
        assert m.family == "edge"
        assert any(c.startswith("EDGE.") for c in m.checks)


@pytest.mark.parametrize("seed", [0, 1])
def test_correct_code_holds(seed: int) -> None:
    assert _judge(seed) == "holds"


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("mutant", ["edge-tau0-for-stale", "edge-gd-for-sam"])
def test_edge_mutants_killed_by_at_edge(mutant: str, seed: int) -> None:
    with by_id(mutant).apply():
        assert _judge(seed) == "fails"


def test_tau0_mutant_killed_by_the_exact_inverse() -> None:
    check = _check("edges_invert_max_stable_lr")
    s = Settings(mode="quick", seed=0)
    assert run_check(C.EDGE, check, s).outcome == "holds"
    with by_id("edge-tau0-for-stale").apply():
        assert run_check(C.EDGE, check, s).outcome == "fails"
