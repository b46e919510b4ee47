"""Pooling bench runs (asam_theory.experiments.bench_pool and benchmarks/pool_bench.py): the
statistics against hand computations on synthetic runs, and the refusals."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from asam_theory.experiments.bench_pool import SAME, pool_runs
from asam_theory.stats import median_interval

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "pool_bench.py"


def fake_run(async_rounds: list[float], bprime: int = 192, warning: str | None = None,
             equal: bool = True, **config: object) -> dict:
    """A run shaped like 'asam-theory bench --json' (only the keys pooling reads)."""
    base = {"device": "cpu", "ascent_device": "cpu", "threads_per_role": 1, "hidden": 1024,
            "batch_size": 512, "tau": 1, "max_staleness": 1, "steps_per_round": 6}
    base.update(config)
    sam = [2 * x for x in async_rounds]
    ctl = [1.0 + (x - 1.0) / 10 for x in async_rounds]
    run = {**base, "ascent_batch_size": bprime, "load_warning": warning,
           "asyncsam_over_sgd": statistics.median(async_rounds),
           "sam_over_sgd": statistics.median(sam),
           "ratios_per_round": {"asyncsam_over_sgd": async_rounds, "sam_over_sgd": sam},
           "control": {"sgd_control_over_sgd": statistics.median(ctl), "ratios_per_round": ctl},
           "equal_resources": None}
    if equal:
        eq = [x * 1.8 for x in async_rounds]
        run["equal_resources"] = {
            "asyncsam_over_sgd": statistics.median(eq), "sam_over_sgd": 2.0,
            "ratios_per_round": {"asyncsam_over_sgd": eq, "sam_over_sgd": [2.0] * len(eq)}}
    return run


RUNS = [fake_run([1.00 + 0.01 * i + 0.002 * k for k in range(5)], bprime=160 + 32 * (i % 2))
        for i in range(8)]


def test_statistics_match_hand_computation() -> None:
    res = pool_runs(RUNS, threshold=1.05)
    r = res["ratios"]["asyncsam_over_sgd"]
    medians = [run["asyncsam_over_sgd"] for run in RUNS]
    flat = [x for run in RUNS for x in run["ratios_per_round"]["asyncsam_over_sgd"]]
    assert r["run_medians"] == medians
    assert r["median_of_runs"] == pytest.approx(statistics.median(medians))
    assert r["pooled_rounds"] == pytest.approx(statistics.median(flat))
    iv = median_interval(medians)
    assert (r["runs_ci95"]["low"], r["runs_ci95"]["high"]) == (iv["low"], iv["high"])
    assert r["runs_at_or_below"] == sum(m <= 1.05 for m in medians) == 5
    assert res["runs"] == 8 and res["rounds"] == 40 and res["left_out_for_load"] == 0
    assert res["ascent_batch_sizes"] == [160, 192] * 4
    assert set(res["ratios"]) == {"asyncsam_over_sgd", "sam_over_sgd", "sgd_control_over_sgd",
                                  "equal_resources_asyncsam_over_sgd",
                                  "equal_resources_sam_over_sgd"}
    sam = res["ratios"]["sam_over_sgd"]
    assert sam["median_of_runs"] == pytest.approx(2 * r["median_of_runs"])


def test_warned_runs_are_left_out_unless_asked() -> None:
    busy = fake_run([1.5] * 5, warning="load average 3.1 before the benchmark")
    res = pool_runs([*RUNS, busy])
    assert res["runs"] == 8 and res["left_out_for_load"] == 1
    assert res["ratios"]["asyncsam_over_sgd"]["median_of_runs"] == pytest.approx(
        pool_runs(RUNS)["ratios"]["asyncsam_over_sgd"]["median_of_runs"])
    assert pool_runs([*RUNS, busy], include_warned=True)["runs"] == 9
    with pytest.raises(ValueError, match="all carry a load_warning"):
        pool_runs([busy])


def test_missing_equal_resources_drops_only_those_ratios() -> None:
    res = pool_runs([fake_run([1.0, 1.1, 1.2], equal=False), fake_run([1.0, 1.02, 1.04])])
    assert set(res["ratios"]) == {"asyncsam_over_sgd", "sam_over_sgd", "sgd_control_over_sgd"}


@pytest.mark.parametrize("key", SAME)
def test_runs_of_different_configurations_are_refused(key: str) -> None:
    other = fake_run([1.0, 1.1], **{key: "something else"})
    with pytest.raises(ValueError, match=f"runs differ in {key}"):
        pool_runs([fake_run([1.0, 1.1]), other])


def test_foreign_json_and_bad_threshold_are_refused() -> None:
    with pytest.raises(ValueError, match="run 1 is not an 'asam-theory bench --json' result"):
        pool_runs([RUNS[0], {"engine_over_raw": 1.2}])
    with pytest.raises(ValueError, match="threshold must be > 0"):
        pool_runs(RUNS, threshold=0)


def test_script_as_a_user_runs_it(tmp_path: Path) -> None:
    files = []
    for i, run in enumerate(RUNS):
        f = tmp_path / f"run_{i}.json"
        f.write_text(json.dumps(run))
        files.append(str(f))
    out = subprocess.run([sys.executable, str(SCRIPT), *files, "--json"], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(json.dumps(pool_runs(RUNS)))
    text = subprocess.run([sys.executable, str(SCRIPT), *files], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert text.returncode == 0, text.stderr
    assert "8 runs pooled" in text.stdout and "runs <= 1.05: 5/8" in text.stdout
    (tmp_path / "other.json").write_text(json.dumps(fake_run([1.0], hidden=64)))
    bad = subprocess.run([sys.executable, str(SCRIPT), files[0], str(tmp_path / "other.json")],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert bad.returncode == 2 and "runs differ in hidden" in bad.stderr
