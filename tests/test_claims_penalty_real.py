"""PENALTY-REAL (asam_theory.claims.penalty_real): each check's verdict at quick size on the
correct code, each fidelity mutant (asam_theory.mutants.fidelity) killed by the checks that
name it, and the pure functions the checks decide with (phase minimum, kept shares, Spearman,
the trace's consistency with the top eigenvalue, the three-way rule)."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asam_theory.claims import penalty_real as PR
from asam_theory.claims.base import Settings
from asam_theory.claims.preregistered import threshold
from asam_theory.mutants import by_id
from asam_theory.mutants.fidelity import MUTANTS

QUICK = Settings("quick")
CHECKS = {c.name: c for c in PR.PENALTY_REAL.checks}


def _outcomes(names) -> dict:
    return {n: CHECKS[n].run(QUICK) for n in names}


@pytest.fixture(scope="module")
def correct() -> dict:
    """The four checks on the correct code at quick size (one study, shared)."""
    return _outcomes(CHECKS)


@pytest.fixture(scope="module")
def mutated(correct) -> dict:
    """``{mutant id: {check name: outcome}}`` for the checks each fidelity mutant names (the
    correct study is computed first, so each mutant's study is its own: the cache key holds
    the measuring functions' identity)."""
    out = {}
    for m in MUTANTS:
        with m.apply():
            out[m.id] = _outcomes([c.split(".", 1)[1] for c in m.checks])
    return out


# --------------------------------------------------------------------------- the correct code


def test_verdict_seeds_are_not_the_pilot_seeds():
    """The thresholds came from the pilot seeds 0-2; every mode's verdict seeds start at 10."""
    for mode in ("quick", "default", "full"):
        p = PR.plan(Settings(mode))
        assert min(p.seeds) >= PR.SEED_OFFSET > 2 and len(set(p.seeds)) == len(p.seeds)
        assert all(s.steps > PR.FIRST_CHECKPOINT for s in p.settings)


def test_thresholds_come_from_the_preregistered_table():
    assert PR.LEVEL == threshold("PENALTY-REAL.level")
    assert PR.CONFIDENCE == threshold("PENALTY-REAL.confidence")
    assert PR.TRACE_SE_SLACK == threshold("PENALTY-REAL.trace_se_slack")
    assert PR.MIN_CELLS == threshold("PENALTY-REAL.min_cells")


def test_lookahead_keeps_sams_penalty_at_quick_size(correct):
    out = correct["lookahead_penalty"]
    row = out.table[0]
    assert out.status == "holds", out.summary
    assert row["lower_95"] >= PR.LEVEL and out.ratio == pytest.approx(row["lower_95"] / PR.LEVEL)
    # the negative control sits far below the level on the same runs
    assert row["random_mean_cosine"] < PR.LEVEL < row["mean_cosine"]


def test_asyncsam_is_judged_with_its_controls_met(correct):
    """AsyncSAM's verdict is an empirical answer; at quick size the positive control (the
    look-ahead probe along AsyncSAM's run) reaches the level, so the verdict is the three-way
    rule's on AsyncSAM's own bounds, and its cosine is below the look-ahead's."""
    out = correct["asyncsam_penalty"]
    row = out.table[0]
    assert row["positive_control_mean"] >= PR.LEVEL
    b = PR._bounds(out.config["per_seed"][row["setting"]]["phase_min"])
    assert out.status == PR._three_way(b, PR.LEVEL, "x")[0], out.summary
    assert row["mean_cosine"] < correct["lookahead_penalty"].table[0]["mean_cosine"]


def test_sam_ends_flatter_than_sgd_at_quick_size(correct):
    out = correct["flatness_order"]
    assert out.status == "holds", out.summary
    assert out.config["inconsistent_traces"] == []
    gain = next(r for r in out.table if "comparison" in r)
    assert gain["lower_95"] > PR.FLATNESS_MARGIN


def test_gain_shares_needs_more_cells_than_quick_has(correct):
    """Quick runs one setting and two variants: fewer cells than a rank correlation needs."""
    out = correct["gain_shares"]
    assert len(out.table) < PR.MIN_CELLS
    assert out.status == "inconclusive" and f"at least {PR.MIN_CELLS}" in out.summary


# --------------------------------------------------------------------------- the mutants


def test_every_fidelity_mutant_names_penalty_real_checks():
    for m in MUTANTS:
        assert m.checks and all(c.split(".", 1)[1] in CHECKS for c in m.checks)
        assert all(c.startswith("PENALTY-REAL.") for c in m.checks)


@pytest.mark.parametrize("mutant", ["penalty-random-direction", "penalty-at-w"])
def test_penalty_mutants_fail_the_lookahead_and_take_asyncsams_control(mutated, mutant):
    got = mutated[mutant]
    assert got["lookahead_penalty"].status == "fails", got["lookahead_penalty"].summary
    # empirical: the positive control is lost, so the outcome changes to inconclusive
    assert got["asyncsam_penalty"].status == "inconclusive"
    assert "positive control not met" in got["asyncsam_penalty"].summary


def test_penalty_at_w_is_caught_as_a_zero_penalty(mutated):
    assert "zero or non-finite" in mutated["penalty-at-w"]["lookahead_penalty"].summary


def test_unit_probe_traces_fail_both_flatness_checks(mutated):
    got = mutated["hutchinson-unit-probes"]
    for name in ("flatness_order", "gain_shares"):
        assert got[name].status == "fails", got[name].summary
        assert got[name].config["inconsistent_traces"]
        assert "inconsistent with their top eigenvalue" in got[name].summary


def test_mutant_is_undone_after_its_block():
    """The cache is keyed on the code: after a mutant the correct code's functions are back."""
    before = PR._code_identity()
    with by_id("penalty-at-w").apply():
        assert PR._code_identity() != before
    assert PR._code_identity() == before


# --------------------------------------------------------------------------- pure functions


def _rows(cos: list[float | None], probe: str = "p") -> list[dict]:
    return [{"probe": probe, "step": 10 * i, "cos_penalty": c} for i, c in enumerate(cos)]


@given(st.lists(st.floats(-1, 1), min_size=2, max_size=12), st.randoms(use_true_random=False))
def test_phase_minimum_is_the_lower_half_mean(cos, rnd):
    rows = _rows(cos) + _rows([0.9] * len(cos), probe="other")
    rnd.shuffle(rows)  # order of the rows does not matter: they are sorted by step
    half = len(cos) // 2
    expected = min(np.mean(cos[:half]), np.mean(cos[half:]))
    assert PR.phase_minimum(rows, "p") == pytest.approx(expected, abs=1e-12)
    assert PR.phase_minimum(rows, "p") <= max(np.mean(cos[:half]), np.mean(cos[half:]))


def test_phase_minimum_needs_two_checkpoints_and_propagates_undefined():
    with pytest.raises(ValueError, match="at least 2 checkpoints"):
        PR.phase_minimum(_rows([0.5]), "p")
    assert math.isnan(PR.phase_minimum(_rows([0.5, None, 0.7, 0.8]), "p"))


def _flat(acc: dict, trace: dict) -> dict:
    return {d: {"acc": np.asarray(acc[d], float), "trace": np.asarray(trace[d], float)}
            for d in acc}


@given(st.floats(-0.5, 1.5), st.floats(-0.5, 1.5),
       st.lists(st.tuples(st.floats(0.5, 0.9), st.floats(0.01, 0.1), st.floats(20, 200),
                          st.floats(0.2, 0.8)), min_size=2, max_size=6))
def test_shares_are_exact_on_interpolated_runs(sa, sf, seeds):
    """A variant whose accuracy is SGD's + sa·(SAM − SGD) and whose trace is
    SGD^(1−sf)·SAM^sf, seed by seed, keeps exactly (sa, sf) of SAM's gains."""
    sgd_acc = np.array([s[0] for s in seeds])
    sam_acc = sgd_acc + np.array([s[1] for s in seeds])
    sgd_tr = np.array([s[2] for s in seeds])
    sam_tr = sgd_tr * np.array([s[3] for s in seeds])
    var_acc = sgd_acc + sa * (sam_acc - sgd_acc)
    var_tr = sgd_tr ** (1 - sf) * sam_tr ** sf
    flat = _flat({"sgd": sgd_acc, "sam": sam_acc, "v": var_acc, "sgd2": sgd_acc},
                 {"sgd": sgd_tr, "sam": sam_tr, "v": var_tr, "sgd2": sgd_tr})
    got = PR.shares(flat, ["v", "sam", "sgd2"])
    assert got["v"] == pytest.approx((sa, sf), abs=1e-9)
    assert got["sam"] == pytest.approx((1.0, 1.0)) and got["sgd2"] == pytest.approx((0.0, 0.0))


def test_shares_are_undefined_without_a_sam_gain():
    flat = _flat({"sgd": [0.8, 0.7], "sam": [0.8, 0.7], "v": [0.9, 0.9]},
                 {"sgd": [50, 60], "sam": [50, 60], "v": [40, 40]})
    assert all(math.isnan(x) for x in PR.shares(flat, ["v"])["v"])


@given(st.integers(3, 15).flatmap(lambda n: st.permutations(range(n))))
def test_spearman_is_rank_based(perm):
    """Invariant under increasing transforms, odd under a reflection, ±1 on monotone data, and
    Spearman's closed form 1 − 6Σd²/(n(n²−1)) without ties."""
    n = len(perm)
    cells = [(float(i), float(p)) for i, p in enumerate(perm)]
    rho = PR._spearman(cells)
    d2 = sum((i - p) ** 2 for i, p in enumerate(perm))
    assert rho == pytest.approx(1 - 6 * d2 / (n * (n * n - 1)), abs=1e-12)
    moved = [(math.exp(x / 5), y ** 3 + y) for x, y in cells]
    assert PR._spearman(moved) == pytest.approx(rho, abs=1e-12)
    assert PR._spearman([(-x, y) for x, y in cells]) == pytest.approx(-rho, abs=1e-12)
    assert PR._spearman([(x, 2 * x + 1) for x, _ in cells]) == pytest.approx(1.0)
    assert PR._spearman([(x, -x) for x, _ in cells]) == pytest.approx(-1.0)


def test_spearman_is_undefined_on_constant_or_missing_data():
    assert math.isnan(PR._spearman([(1.0, 2.0), (1.0, 3.0), (1.0, 4.0)]))
    assert math.isnan(PR._spearman([(1.0, 2.0), (2.0, math.nan), (3.0, 4.0)]))
    assert math.isnan(PR._spearman([(1.0, 2.0)]))


@given(st.lists(st.tuples(st.floats(-5, 500), st.floats(0, 20), st.floats(0.1, 100)),
                min_size=1, max_size=8))
def test_trace_consistency_flags_exactly_the_traces_below_the_top_eigenvalue(runs):
    f = {"trace": np.array([r[0] for r in runs]), "se": np.array([r[1] for r in runs]),
         "lambda_max": np.array([r[2] for r in runs])}
    bad = {b["index"] for b in PR.trace_consistency({"m": f})}
    expected = {i for i, (tr, se, lam) in enumerate(runs)
                if tr <= 0 or tr + PR.TRACE_SE_SLACK * se < lam}
    assert bad == expected


@given(st.floats(-1, 1), st.floats(0.001, 1), st.integers(2, 12), st.floats(-1, 1))
def test_three_way_follows_the_bounds(mean, sd, n, level):
    t = _student(n)
    half = t * sd / math.sqrt(n)
    b = {"mean": mean, "lower": mean - half, "upper": mean + half, "sd": sd, "n": n,
         "mde": 1.0}
    # the seeds-needed search (up to 10,000 t quantiles) only words the reason: stubbed here
    with mock.patch.object(PR, "seeds_needed", lambda *a, **k: 7):
        status, _ = PR._three_way(b, level, "x")
    assert status == ("holds" if mean - half >= level else
                      "fails" if mean + half < level else "inconclusive")


def _student(n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(PR.CONFIDENCE, n - 1))


def test_bounds_are_the_one_sided_t_bounds():
    x = [0.2, 0.5, 0.9, 0.4]
    b = PR._bounds(x)
    half = _student(4) * np.std(x, ddof=1) / 2
    assert b["lower"] == pytest.approx(np.mean(x) - half)
    assert b["upper"] == pytest.approx(np.mean(x) + half)
    assert PR._three_way(PR._bounds([0.7]), 0.5, "x")[0] == "inconclusive"


def test_collapsed_seeds_are_left_out_of_the_pairs():
    runs = [{"setting": "s", "driver": d, "seed": k, "collapsed": (d, k) == ("sam", 2),
             "collapse": "stuck" if (d, k) == ("sam", 2) else None}
            for d in ("sgd", "sam") for k in (1, 2, 3)]
    seeds, bad = PR.usable_seeds(runs, "s")
    assert seeds == [1, 3] and bad == [{"driver": "sam", "seed": 2, "reason": "stuck"}]
