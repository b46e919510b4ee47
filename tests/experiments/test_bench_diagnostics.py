"""The AsyncSAM diagnostics in benchmarks/: core_interference.py and profile_asyncsam_step.py
(smoke runs as a user runs them, timings not asserted, and their argument checks)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "core_interference.py"
PROFILE = ROOT / "benchmarks" / "profile_asyncsam_step.py"


def load_module():
    spec = importlib.util.spec_from_file_location("core_interference", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_json(script: Path, *args: str) -> dict:
    """Run a benchmark script as a user does, at tiny sizes, and return its ``--json`` output."""
    out = subprocess.run(
        [sys.executable, str(script), "--hidden", "32", "--batch", "16", "--bprime", "4",
         "--rounds", "2", "--steps", "2", "--json", *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_weight_count_matches_the_bench_mlp() -> None:
    import torch

    from asam_theory.experiments.bench import _mlp

    mod = load_module()
    for h in (1, 7, 64):
        n = sum(p.numel() for p in _mlp(h, 0, torch.device("cpu")).parameters())
        assert mod.weight_count(h) == n


def test_unknown_load_is_named() -> None:
    with pytest.raises(ValueError, match=r"loads must be among alu, stream, cache, ascent; "
                                         r"got gpu"):
        load_module().measure(loads=("alu", "gpu"))


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        load_module().measure(rounds=0)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPU cores")
def test_smoke_run_reports_every_load_against_idle() -> None:
    # the script as a user runs it (its neighbours are spawned processes that import it by path)
    res = run_json(SCRIPT)
    loads = {"alu", "stream", "cache", "ascent", "idle_control"}
    assert set(res["over_idle"]) == loads
    assert set(res["step_ms_median"]) == loads | {"idle"}
    for n in loads:
        ci = res["over_idle_ci95"][n]
        assert 0 < ci["low"] <= res["over_idle"][n] <= ci["high"]
    assert res["duty"] > 0
    assert res["duty"] == pytest.approx(res["ascent_ms_alone"] / res["descent_ms_alone"])
    assert res["predicted_descent_slowdown"] == pytest.approx(
        res["duty"] * (res["over_idle"]["ascent"] - 1.0))
    assert res["config"] == {"hidden": 32, "batch": 16, "bprime": 4, "rounds": 2, "steps": 2,
                             "threads": 1, "cpu_count": os.cpu_count()}
    assert res["allocator"]["steady"] is (res["allocator"].get("library") == "glibc")


def test_profile_smoke_run_splits_the_step_under_the_steady_allocator() -> None:
    res = run_json(PROFILE)
    assert res["allocator"]["steady"] is (res["allocator"].get("library") == "glibc")
    assert set(res["ms_per_step"]) == {"sgd", "sgd+bg", "asyncsam", "bg_alone"}
    parts = res["asyncsam_sections_ms"]
    known = ("publish", "acquire", "perturb", "closure", "seal", "base_step")
    assert parts["rest (bookkeeping)"] == pytest.approx(
        parts["step"] - sum(parts[k] for k in known))
    assert all(parts[k] > 0 for k in ("perturb", "closure", "base_step", "step"))
    assert sum(res["staleness_histogram"].values()) == 2 * 2  # rounds x steps, after warm-up
