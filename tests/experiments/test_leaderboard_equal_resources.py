"""The leaderboard's look-ahead entry and its equal-resources setting: the look-ahead AsyncSAM
is timed beside the others, and in the equal-resources setting every AsyncSAM-like method runs
at the rule's b′ (b/8), whose accuracy is reported beside the tuned b′'s (no timing
assertions: the machine may be busy)."""

from __future__ import annotations

import pytest

from asam_theory.experiments.leaderboard import (
    LeaderboardConfig,
    LeaderboardMethod,
    default_methods,
    run_cell,
)
from asam_theory.torch.tuning import EQUAL_RESOURCES_FRACTION, equal_resources_ascent_batch


@pytest.mark.parametrize(("b", "expected"), [(64, 8), (512, 64), (7, 1), (1, 1)])
def test_equal_resources_rule_is_an_eighth_of_b(b: int, expected: int) -> None:
    assert EQUAL_RESOURCES_FRACTION == 8
    assert equal_resources_ascent_batch(b) == expected


@pytest.mark.parametrize("bad", [0, -4, 2.5, True])
def test_equal_resources_rule_refuses_bad_batch_sizes(bad) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        equal_resources_ascent_batch(bad)


def test_default_methods_carry_the_lookahead_variant() -> None:
    (la,) = [m for m in default_methods() if m.name == "asyncsam-la"]
    assert la.uses_second_device and la.fixed["tau"] == 1 and la.optimizer is None


def test_cell_times_lookahead_and_applies_the_rule() -> None:
    one = {"lr": 0.05, "rho": 0.05}
    methods = [LeaderboardMethod("sgd", "SGD", ({"lr": 0.05},)),
               LeaderboardMethod("asyncsam", "AsyncSAM", (one,),
                                 {"tau": 1, "ascent_batch_size": 32}, uses_second_device=True),
               LeaderboardMethod("asyncsam-la", "AsyncSAM look-ahead", (one,),
                                 {"tau": 1, "ascent_batch_size": "auto"},
                                 uses_second_device=True)]
    cfg = LeaderboardConfig(datasets=("digits",), models=("mlp",), seeds=2,
                            steps={"digits": 12}, batch_size=32, timing_rounds=1,
                            timing_steps=3, timing_warmup=1, record_points=2, width={"mlp": 16})
    cell = run_cell("digits", "mlp", methods, cfg)
    timing = cell["timing"]
    assert timing["ascent_batch_size_equal_resources"] == 4 == equal_resources_ascent_batch(32)
    # idle setting: the fixed b′ (look-ahead: the cell's AsyncSAM b′); equal: the rule's
    assert timing["ascent_batch_size"] == {"asyncsam": 32, "asyncsam-la": 32}
    for setting in ("idle", "equal"):
        assert timing[setting]["asyncsam-la"]["ratio_to_sgd_median"] > 0
    rows = {r["method"]: r for r in cell["results"]}
    assert rows["asyncsam-la"]["time_ratio_to_sgd_equal_resources"] > 0
    for name in ("asyncsam", "asyncsam-la"):
        r = rows[name]
        assert r["ascent_batch_size"] == 32 and r["ascent_batch_size_equal_resources"] == 4
        acc = r["test_acc_per_seed_equal_resources"]
        assert len(acc) == 2 and all(0.0 <= a <= 1.0 for a in acc)
        lo, hi = r["test_acc_ci_equal_resources"]
        assert lo <= r["test_acc_mean_equal_resources"] <= hi
        assert r["acc_gain_over_sgd_ci_equal_resources"][0] <= \
            r["acc_gain_over_sgd_equal_resources"] <= r["acc_gain_over_sgd_ci_equal_resources"][1]
        assert sum(r["staleness_histogram"].values()) == 2 * 12
    assert "test_acc_mean_equal_resources" not in rows["sgd"]


def test_equal_resources_accuracy_can_be_switched_off() -> None:
    methods = [LeaderboardMethod("sgd", "SGD", ({"lr": 0.05},)),
               LeaderboardMethod("asyncsam-la", "AsyncSAM look-ahead",
                                 ({"lr": 0.05, "rho": 0.05},),
                                 {"tau": 1, "ascent_batch_size": "auto"},
                                 uses_second_device=True)]
    cfg = LeaderboardConfig(datasets=("digits",), models=("mlp",), seeds=2,
                            steps={"digits": 6}, batch_size=16, timing_rounds=1,
                            timing_steps=2, timing_warmup=1, record_points=1,
                            timing_settings=("idle",), width={"mlp": 8})
    cell = run_cell("digits", "mlp", methods, cfg)
    (la,) = [r for r in cell["results"] if r["method"] == "asyncsam-la"]
    # no AsyncSAM to tune b′ in this cell: the look-ahead runs at b/2
    assert la["ascent_batch_size"] == 8 == la["hyperparameters"]["ascent_batch_size"]
    assert "test_acc_mean_equal_resources" not in la
    assert cell["timing"]["ascent_batch_size_equal_resources"] is None


def test_a_process_pool_runs_the_same_cell() -> None:
    """Selection and evaluation runs on a two-process pool give the runs of this process
    (deterministic methods; the runs are independent and seeded by their task)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    methods = [LeaderboardMethod("sgd", "SGD", ({"lr": 0.05}, {"lr": 0.1})),
               LeaderboardMethod("sam", "SAM", ({"lr": 0.05, "rho": 0.05},
                                                {"lr": 0.1, "rho": 0.1}))]
    cfg = LeaderboardConfig(datasets=("digits",), models=("mlp",), seeds=3,
                            steps={"digits": 15}, batch_size=16, timing_rounds=1,
                            timing_steps=2, timing_warmup=1, record_points=1,
                            timing_settings=("idle",), width={"mlp": 8})
    here = run_cell("digits", "mlp", methods, cfg)
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        pooled = run_cell("digits", "mlp", methods, cfg, executor=pool)
    assert here["selection"] == pooled["selection"]
    key = [(r["method"], r["seed"], r["test_acc"], r["val_acc"]) for r in here["runs"]]
    assert key == [(r["method"], r["seed"], r["test_acc"], r["val_acc"])
                   for r in pooled["runs"]]
    assert len({r["test_acc"] for r in here["runs"]}) > 1  # the runs differ among themselves
