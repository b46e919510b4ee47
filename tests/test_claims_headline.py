"""The HEADLINE claim's decision logic per variant (synthetic accuracies and timings stand in
for the runs): each part can fail, an underpowered run says so with its MDE, the timing is
judged only on an idle machine, and the verdict names its variant."""

from __future__ import annotations

import numpy as np
import pytest

import asam_theory.claims.headline as hl
import asam_theory.experiments.ablation as ab
from asam_theory.claims import Settings

DEFAULT = Settings(mode="default", seed=0)


def _timing(ratio: float, idle: bool | None = True, spread: float = 0.01):
    def run(settings, recipe, method):
        rounds = [ratio - spread, ratio, ratio + spread]
        return {"ratio_median": {method: ratio},
                "ratio_interval": {method: {"low": min(rounds), "high": max(rounds)}},
                "ratio_per_round": {method: rounds}, "idle": idle, "others_before": 0.0,
                "others_during": 0.1, "others_max": 0.5}
    return run


def _runs(gain: float, nonin: float, sd: float, n_test: int = 1000):
    """Per-seed accuracies with the given mean differences and per-seed SD (deterministic)."""
    def run(variants, recipe, seeds, **kw):
        rng = np.random.default_rng(7)
        n = len(seeds)
        sgd = 0.85 + 0.01 * rng.standard_normal(n)
        e1, e2 = (sd * rng.standard_normal(n) for _ in range(2))
        sam = sgd + gain + e1
        var = sam + nonin + e2
        acc = {"sgd": sgd, "sam": sam, variants[2].name: var}
        hits = {k: rng.random((n, n_test)) < v[:, None] for k, v in acc.items()}
        return {"recipe": {}, "per_seed": {k: list(v) for k, v in acc.items()},
                "test_correct": hits}
    return run


@pytest.fixture
def fake(monkeypatch):
    def set_(timing, runs):
        monkeypatch.setattr(hl, "_timing", timing)
        monkeypatch.setattr(hl, "_tuner_pick", lambda recipe, seed: 24)
        monkeypatch.setattr(ab, "run_ablation", runs)
    return set_


@pytest.mark.parametrize("variant", ["asyncsam", "lookahead"])
def test_holds_when_all_three_parts_hold_and_names_the_variant(fake, variant):
    fake(_timing(1.03), _runs(gain=0.05, nonin=0.0, sd=0.0005, n_test=100_000))
    out = hl.headline_check(variant, DEFAULT)
    assert out.status == "holds", out.summary
    assert out.config["variant"] == variant
    assert out.config["mde_pp"] > 0 and out.config["tuner_ascent_batch_size"] == 24


def test_time_part_fails_on_an_idle_machine_whatever_the_accuracy(fake):
    fake(_timing(2.0), _runs(gain=0.0, nonin=0.0, sd=0.01))
    out = hl.headline_check("asyncsam", DEFAULT)
    assert out.status == "fails" and out.config["parts"]["time"] == "fails"


def test_time_part_is_not_judged_on_a_busy_machine(fake):
    fake(_timing(2.0, idle=False), _runs(gain=0.05, nonin=0.0, sd=0.0005, n_test=100_000))
    out = hl.headline_check("asyncsam", DEFAULT)
    assert out.status == "inconclusive" and "not idle" in out.summary


def test_non_inferiority_fails_when_the_loss_is_shown_beyond_the_margin(fake):
    fake(_timing(1.0), _runs(gain=0.05, nonin=-0.04, sd=0.0005, n_test=100_000))
    out = hl.headline_check("lookahead", DEFAULT)
    assert out.status == "fails" and out.config["parts"]["non_inferiority"] == "fails"


def test_underpowered_run_says_so_with_its_mde(fake):
    fake(_timing(1.0), _runs(gain=0.05, nonin=-0.005, sd=0.03))
    out = hl.headline_check("asyncsam", DEFAULT)
    assert out.status == "inconclusive"
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
