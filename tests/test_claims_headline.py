"""The HEADLINE claim's decision logic per setting and variant (synthetic accuracies and
timings stand in for the runs): each part can fail, an underpowered run says so with its MDE,
the time part holds only on an upper 95 % bound, the timing is judged only on an idle machine,
lr/ρ are tuned per method on selection seeds disjoint from the evaluation seeds, collapsed runs
are listed, and the verdict names its variant and setting."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import asam_theory.claims.headline as hl
import asam_theory.experiments.ablation as ab
from asam_theory.claims import Settings
from asam_theory.experiments.selection import Choice

DEFAULT = Settings(mode="default", seed=0)
FULL = Settings(mode="full", seed=0)


def _timing(ratio: float, idle: bool | None = True, spread: float = 0.01, rounds: int = 6):
    def run(settings, recipe, method, bprime=hl.BPRIME):
        per = list(np.linspace(ratio - spread, ratio + spread, rounds))
        return {"ratio_per_round": {method: per}, "idle": idle, "others_before": 0.0,
                "others_during": 0.1, "others_max": 0.5}
    return run


def _runs(gain: float, nonin: float, sd: float, n_test: int = 1000, collapse: str | None = None):
    """Per-seed accuracies with the given mean differences and per-seed SD (deterministic);
    ``collapse`` names a method whose first seed is reported collapsed."""
    seen = {}

    def run(variants, recipe, seeds, **kw):
        seen.update(kw, seeds=list(seeds), variants=[v.name for v in variants])
        rng = np.random.default_rng(7)
        n = len(seeds)
        sgd = 0.85 + 0.01 * rng.standard_normal(n)
        sam = sgd + gain + sd * rng.standard_normal(n)
        acc = {"sgd": sgd, "sam": sam}
        for v in variants[2:]:
            acc[v.name] = sam + nonin + sd * rng.standard_normal(n)
        hits = {k: rng.random((n, n_test)) < v[:, None] for k, v in acc.items()}
        collapsed = {k: [None] * n for k in acc}
        if collapse is not None:
            collapsed[collapse][0] = "training loss stuck at the constant predictor's"
        return {"recipe": {}, "seeds": list(seeds), "collapsed": collapsed,
                "per_seed": {k: list(v) for k, v in acc.items()}, "test_correct": hits}
    run.seen = seen
    return run


def _tune(grids, recipe, seeds, **kw):
    _tune.seen = {"grids": grids, "seeds": list(seeds)}
    return {name: Choice(dict(points[-1]), [{**points[-1], "chosen": True}])
            for name, (_v, points) in grids.items()}


@pytest.fixture
def fake(monkeypatch):
    def set_(timing, runs, tuner=24):
        monkeypatch.setattr(hl, "_timing", timing)
        monkeypatch.setattr(hl, "_tuner_pick", lambda recipe, seed: tuner)
        monkeypatch.setattr(ab, "run_ablation", runs)
        monkeypatch.setattr(ab, "tune_variants", _tune)
    return set_


@pytest.mark.parametrize("variant", ["asyncsam", "lookahead"])
def test_holds_when_all_three_parts_hold_and_names_the_variant(fake, variant):
    fake(_timing(1.03), _runs(gain=0.05, nonin=0.0, sd=0.0005, n_test=100_000))
    out = hl.headline_check(variant, DEFAULT)
    assert out.status == "holds", out.summary
    assert out.config["variant"] == variant and out.config["setting"] == "noisy_digits"
    assert out.config["mde_pp"] > 0 and out.config["tuner_ascent_batch_size"] == 24


def test_each_method_is_tuned_on_selection_seeds_disjoint_from_evaluation(fake):
    runs = _runs(gain=0.05, nonin=0.0, sd=0.0005, n_test=100_000)
    fake(_timing(1.03), runs)
    out = hl.headline_check("asyncsam", DEFAULT)
    grids = _tune.seen["grids"]
    assert set(grids) == {"sgd", "sam", f"asyncsam_bp{hl.BPRIME}"}
    assert all("rho" not in p for p in grids["sgd"][1])
    assert {p["lr"] for p in grids["sam"][1]} == set(hl.LRS[1])
    assert {p["rho"] for p in grids["sam"][1]} == set(hl.RHOS[1])
    assert len(_tune.seen["seeds"]) >= 3
    assert not set(_tune.seen["seeds"]) & set(runs.seen["seeds"])
    # each method evaluated at its own chosen point
    recipes = runs.seen["recipes"]
    assert recipes["sam"].rho == hl.RHOS[1][-1] and recipes["sgd"].lr == hl.LRS[1][-1]
    assert out.config["hyperparameters"]["sam"] == {"lr": hl.LRS[1][-1],
                                                    "rho": hl.RHOS[1][-1]}


def test_time_part_holds_only_on_its_upper_bound(fake):
    """A median of 1.08 whose upper 95 % bound is 1.14 does not hold (it did on the median)."""
    fake(_timing(1.08, spread=0.06), _runs(gain=0.05, nonin=0.0, sd=0.0005, n_test=100_000))
    out = hl.headline_check("asyncsam", DEFAULT)
    assert out.config["parts"]["time"] == "inconclusive" and out.status == "inconclusive"
    assert "straddle" in out.summary
    status, _ = hl._time_part({"ratio_per_round": {"m": [1.0, 1.01, 1.02, 1.03, 1.04, 1.2]},
                               "idle": True, "others_before": 0, "others_during": 0,
                               "others_max": 0.5}, "m")
    assert status == "inconclusive"  # the largest of 6 rounds is the upper bound
    status, _ = hl._time_part({"ratio_per_round": {"m": [1.0, 1.01, 1.02, 1.2]},
                               "idle": True, "others_before": 0, "others_during": 0,
                               "others_max": 0.5}, "m")
    assert status == "inconclusive"  # 4 rounds: no one-sided 95 % bound exists


def test_time_bounds_are_order_statistics_with_their_coverage():
    b = hl.time_bounds([1.5, 1.1, 1.2, 1.3, 1.0, 1.4, 1.6, 1.7, 1.8])
    # 9 rounds: the 2nd smallest and 2nd largest (coverage 1 - 2 * 10/512 >= 0.90)
    assert (b["lower"], b["upper"]) == (1.1, 1.7) and b["coverage"] >= 0.90


def test_time_part_fails_on_an_idle_machine_whatever_the_accuracy(fake):
    fake(_timing(2.0), _runs(gain=0.0, nonin=0.0, sd=0.01))
    out = hl.headline_check("asyncsam", DEFAULT)
    assert out.status == "fails" and out.config["parts"]["time"] == "fails"


def test_time_part_is_not_judged_on_a_busy_machine(fake):
    fake(_timing(2.0, idle=False), _runs(gain=0.05, nonin=0.0, sd=0.0005, n_test=100_000))
    out = hl.headline_check("asyncsam", DEFAULT)
    assert out.status == "inconclusive" and "not idle" in out.summary


def test_time_part_is_not_judged_in_a_power_run_but_accuracy_still_is(fake):
    """``judge_time=False`` (power runs): an idle machine's failing time ratio is reported,
    not judged, so the outcome is the accuracy parts' alone — a variant far below SAM still
    fails."""
    power = Settings(mode="default", seed=0, judge_time=False)
    fake(_timing(2.0), _runs(gain=0.05, nonin=0.0, sd=0.0005, n_test=100_000))
    out = hl.headline_check("asyncsam", power)
    assert out.status == "inconclusive" and out.config["parts"]["time"] == "inconclusive"
    assert "not judged in a power run" in out.summary and "median 2.000" in out.summary
    fake(_timing(2.0), _runs(gain=0.05, nonin=-0.04, sd=0.0005, n_test=100_000))
    assert hl.headline_check("asyncsam", power).status == "fails"


def test_non_inferiority_fails_when_the_loss_is_shown_beyond_the_margin(fake):
    fake(_timing(1.0), _runs(gain=0.05, nonin=-0.04, sd=0.0005, n_test=100_000))
    out = hl.headline_check("lookahead", DEFAULT)
    assert out.status == "fails" and out.config["parts"]["non_inferiority"] == "fails"


def test_underpowered_run_says_so_with_its_mde(fake):
    fake(_timing(1.0), _runs(gain=0.05, nonin=-0.005, sd=0.03))
    out = hl.headline_check("asyncsam", DEFAULT)
    assert out.status == "inconclusive" and out.config["underpowered"]
    assert "underpowered: MDE" in out.summary and out.config["mde_pp"] > 100 * hl.MARGIN
    assert out.config["seeds_needed"] is None or out.config["seeds_needed"] > 4


def test_precondition_gates_a_holds_only(fake):
    """Without SAM's gain there is nothing to keep: a non-inferior variant is inconclusive; a
    variant decisively below SAM still breaks the promise of SAM's accuracy."""
    fake(_timing(1.0), _runs(gain=-0.02, nonin=0.0, sd=0.0005, n_test=100_000))
    out = hl.headline_check("asyncsam", DEFAULT)
    assert out.status == "inconclusive" and "precondition not met" in out.summary
    fake(_timing(1.0), _runs(gain=-0.02, nonin=-0.05, sd=0.0005, n_test=100_000))
    out = hl.headline_check("asyncsam", DEFAULT)
    assert out.status == "fails" and out.config["parts"]["precondition"] != "holds"
    assert out.config["parts"]["non_inferiority"] == "fails"


def test_collapsed_evaluation_runs_are_listed_per_method_and_seed(fake):
    fake(_timing(1.0), _runs(gain=0.05, nonin=0.0, sd=0.0005, n_test=100_000, collapse="sam"))
    out = hl.headline_check("asyncsam", DEFAULT)
    assert out.config["collapsed"]["sam"] == [
        "seed 0: training loss stuck at the constant predictor's"]
    assert "collapsed evaluation runs: sam 1/4" in out.summary
    row = next(r for r in out.table if r["quantity"] == "collapsed evaluation runs: sam")
    assert row["mean"] == 1


@pytest.mark.parametrize("setting", ["clean_digits", "mnist1d"])
def test_other_settings_run_at_full_only(fake, setting):
    runs = _runs(gain=0.05, nonin=0.0, sd=0.0005, n_test=100_000)
    fake(_timing(1.03, rounds=9), runs)
    out = hl.headline_check("lookahead", DEFAULT, setting)
    assert out.status == "inconclusive" and "--full" in out.summary and not runs.seen
    out = hl.headline_check("lookahead", FULL, setting)
    assert out.config["setting"] == setting and out.status == "holds", out.summary
    assert len(runs.seen["seeds"]) == hl.SETTINGS[setting].full_seeds["lookahead"]


def test_full_runs_the_tuners_pick_beside_b_half_and_decides_on_b_half(fake):
    runs = _runs(gain=0.05, nonin=0.0, sd=0.0005, n_test=100_000)
    fake(_timing(1.03, rounds=9), runs, tuner=16)
    out = hl.headline_check("asyncsam", FULL)
    assert runs.seen["variants"] == ["sgd", "sam", "asyncsam_bp32", "asyncsam_bp16"]
    assert set(out.config["by_ascent_batch_size"]) == {"32", "16"}
    assert "at b′ = 16 (reported)" in out.summary
    assert set(_tune.seen["grids"]) == {"sgd", "sam", "asyncsam_bp32", "asyncsam_bp16"}


def test_every_setting_and_variant_is_a_check():
    names = [c.name for c in hl.HEADLINE.checks]
    assert names == ["asyncsam", "lookahead", "asyncsam_clean", "lookahead_clean",
                     "asyncsam_mnist1d", "lookahead_mnist1d"]
    assert hl.SETTINGS["mnist1d"].test_size == 10_000
    assert hl._recipe(FULL, "mnist1d").test_size == 10_000


def test_the_second_variant_reuses_the_first_ones_sgd_and_sam_runs(monkeypatch):
    """Within one verify run (one ``Settings``) both variants compare against the same SGD and
    SAM runs: the second check trains only its own variant; a fresh ``Settings`` trains all."""
    calls: list[str] = []

    def fake_run(cfg: dict) -> dict:
        name, seed = cfg["variant"]["name"], cfg["seed"]
        calls.append(name)
        rng = np.random.default_rng(zlib.crc32(f"{name} {seed} {cfg['recipe']['lr']}".encode()))
        return {"val_acc": 0.8 + 0.01 * rng.random(), "test_acc": 0.8, "collapsed": None,
                "fidelity": None, "test_correct": rng.random(50) < 0.8}

    monkeypatch.setattr(hl, "_timing", _timing(1.03))
    monkeypatch.setattr(hl, "_tuner_pick", lambda recipe, seed: hl.BPRIME)
    monkeypatch.setattr(ab, "run_config", fake_run)
    shared = Settings(mode="default", seed=0)
    first = hl.headline_check("asyncsam", shared)
    n_first = len(calls)
    assert {"sgd", "sam", f"asyncsam_bp{hl.BPRIME}"} == set(calls)
    calls.clear()
    second = hl.headline_check("lookahead", shared)
    assert set(calls) == {f"lookahead_bp{hl.BPRIME}"} and len(calls) < n_first
    assert second.config["per_seed"]["sam"] == first.config["per_seed"]["sam"]
    assert second.config["hyperparameters"]["sgd"] == first.config["hyperparameters"]["sgd"]
    calls.clear()
    hl.headline_check("lookahead", Settings(mode="default", seed=0))
    assert {"sgd", "sam", f"lookahead_bp{hl.BPRIME}"} == set(calls)
