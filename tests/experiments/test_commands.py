"""The ``train`` and ``bench`` commands run end to end and write what they promise (no timing
assertions: the machine may be busy)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from asam_theory.cli import main
from asam_theory.experiments.allocator import MAX_MMAP_THRESHOLD, _glibc
from asam_theory.experiments.bench import LOAD_SLACK, MIN_CPU_SHARE, load_check


def test_train_bad_method_is_usage_error(tmp_path, capsys) -> None:
    rc = main(["train", "--methods", "sgd,adam", "--out", str(tmp_path)])
    assert rc == 2
    assert "adam" in capsys.readouterr().err


def test_bench_json_tiny(capsys, tmp_path) -> None:
    path = tmp_path / "bench.json"
    rc = main(["bench", "--json", "--hidden", "32", "--batch-size", "64", "--rounds", "2",
               "--steps", "2", "--warmup", "1", "--json-out", str(path), "--sweep-bprime", "8,16",
               "--default-allocator"])  # the steady allocator would stay set in this process
    assert rc == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    assert {"asyncsam_over_sgd", "sam_over_sgd", "device"} <= set(res)
    assert res["asyncsam_over_sgd"] > 0 and res["sam_over_sgd"] > 0
    assert json.loads(path.read_text()) == res
    assert 1 <= res["ascent_batch_size"] <= 64 and res["tuning"]["batch_size"] == 64
    assert sum(res["staleness_histogram"].values()) == 2 * 2
    assert json.loads(path.read_text())["device"] == res["device"]
    eq = res["equal_resources"]  # CPU descent: SGD and SAM also timed on 2 x threads cores
    assert eq["threads"] == {"sgd": 2, "sam": 2, "asyncsam": "1+1", "lookahead": "1+1",
                             "asyncsam_rule": "1+1"}
    # the equal-resources rule: AsyncSAM also timed at b′ = b/8 against SGD on both cores
    assert eq["ascent_batch_size_rule"] == 64 // 8 and eq["target"] == 1.3
    rule = eq["ratios_per_round"]["asyncsam_rule_over_sgd"]
    assert len(rule) == 2 and eq["asyncsam_rule_over_sgd"] == pytest.approx(sum(rule) / 2)
    assert (eq["asyncsam_rule_ci95"]["low"], eq["asyncsam_rule_ci95"]["high"]) == (
        min(rule), max(rule))
    assert sum(eq["staleness_histogram_rule"].values()) == 2 * 2
    floor = eq["ratios_per_round"]["split_floor_over_sgd"]  # SGD 1 thread / SGD 2 threads
    assert len(floor) == 2 and all(f > 0 for f in floor)
    assert len(floor) == 2 and eq["split_floor_over_sgd"] == pytest.approx(sum(floor) / 2)
    assert (eq["split_floor_ci95"]["low"], eq["split_floor_ci95"]["high"]) == (
        min(floor), max(floor))
    assert eq["asyncsam_over_sgd"] > 0 and eq["sam_over_sgd"] > 0
    assert len(eq["ratios_per_round"]["asyncsam_over_sgd"]) == 2
    assert set(res["step_ms_median"]) == {"sgd", "sam", "asyncsam"}  # top-level keys unchanged
    check = res["load_check"]
    assert set(check["cpu_share"]) == {"sgd", "sam", "asyncsam", "sgd_all_cores",
                                       "sam_all_cores", "sgd_control", "asyncsam@8",
                                       "asyncsam@16", "lookahead", "asyncsam_rule",
                                       "asyncsam[process]"}
    # both worker backends timed in the same rounds; the headline is the faster one's
    back = res["backends"]
    assert set(back) == {"thread", "process"} and res["backend"] in back
    assert res["asyncsam_over_sgd"] == min(b["asyncsam_over_sgd"] for b in back.values())
    for row in back.values():
        assert len(row["ratios_per_round"]) == 2 and sum(
            row["staleness_histogram"].values()) == 2 * 2
    # the look-ahead AsyncSAM is timed in the same rounds, with its ratio and interval
    la, la_r = res["lookahead"], res["ratios_per_round"]["lookahead_over_sgd"]
    assert len(la_r) == 2 and res["lookahead_over_sgd"] == pytest.approx(sum(la_r) / 2)
    ci = res["ratio_ci95"]["lookahead_over_sgd"]
    assert (ci["low"], ci["high"]) == (min(la_r), max(la_r))
    assert la["ascent_batch_size"] == res["ascent_batch_size"] and la["tau"] == 1
    assert sum(la["staleness_histogram"].values()) == 2 * 2
    assert eq["lookahead_over_sgd"] > 0
    # the A/A control and the b′ sweep are timed in the same rounds
    assert len(res["control"]["ratios_per_round"]) == 2 and res["control"][
        "sgd_control_over_sgd"] > 0
    assert set(res["bprime_sweep"]) == {"8", "16"}
    for row in res["bprime_sweep"].values():
        assert row["asyncsam_over_sgd"] > 0 and sum(row["staleness_histogram"].values()) == 4
        r = row["ratios_per_round"]  # per round, so that runs can be pooled
        assert len(r) == 2 and row["asyncsam_over_sgd"] == pytest.approx(sum(r) / 2)
        assert (row["ratio_ci95"]["low"], row["ratio_ci95"]["high"]) == (min(r), max(r))
    tuning = res["tuning"]  # the tuner timed the roles together (or nothing fitted alone)
    assert tuning["fits_together"] is None if not tuning["fits"] else tuning["together_ratio"]
    assert res["snapshots_copied_by_main_thread"] >= 0
    assert res["allocator"] == {"steady": False, "reason": "not requested"}
    for name, ci in res["ratio_ci95"].items():  # 2 rounds: the range, with coverage 1 - 2/4
        per_round = (res["control"]["ratios_per_round"] if name == "sgd_control_over_sgd"
                     else res["ratios_per_round"][name])
        assert (ci["low"], ci["high"]) == (min(per_round), max(per_round))
        assert ci["coverage"] == 0.5
    assert set(res["minor_faults_per_step"]) == set(check["cpu_share"])
    assert all(f >= 0 for f in res["minor_faults_per_step"].values())
    # the warning is printed exactly when the JSON says the machine was busy
    assert check["busy"] == (res["load_warning"] is not None)
    assert ("warning: machine busy" in captured.err) == check["busy"]


def test_bench_no_equal_resources(capsys) -> None:
    rc = main(["bench", "--json", "--hidden", "16", "--batch-size", "32", "--rounds", "1",
               "--steps", "1", "--warmup", "0", "--ascent-batch-size", "8",
               "--no-equal-resources", "--default-allocator"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["equal_resources"] is None
    assert set(res["load_check"]["cpu_share"]) == {"sgd", "sam", "asyncsam", "sgd_control",
                                                   "lookahead", "asyncsam[process]"}


def test_bench_no_lookahead(capsys) -> None:
    rc = main(["bench", "--json", "--hidden", "16", "--batch-size", "32", "--rounds", "1",
               "--steps", "1", "--warmup", "0", "--ascent-batch-size", "8", "--no-lookahead",
               "--default-allocator"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert "lookahead_over_sgd" not in res and "lookahead" not in res
    assert "lookahead_over_sgd" not in res["ratio_ci95"]
    assert "lookahead_over_sgd" not in res["equal_resources"]


def test_load_check_thresholds() -> None:
    nominal = {"sgd": 1, "asyncsam": 1, "sgd_all_cores": 2}
    quiet = load_check(0.1, {"sgd": 0.99, "asyncsam": 1.7, "sgd_all_cores": 1.9}, nominal,
                       threads=1, cpu_count=2)
    assert not quiet["busy"] and quiet["warning"] is None
    assert quiet["thresholds"]["max_load_average"] == 2 - 2 + LOAD_SLACK
    assert quiet["cpu_share"]["sgd_all_cores"] == 0.95
    loaded = load_check(1.2, {"sgd": 0.99, "asyncsam": 1.7, "sgd_all_cores": 1.9}, nominal,
                        threads=1, cpu_count=2)
    assert loaded["busy"] and "load average 1.20" in loaded["warning"]
    starved = load_check(0.1, {"sgd": 0.6, "asyncsam": 1.7, "sgd_all_cores": 1.0}, nominal,
                         threads=1, cpu_count=2)
    assert starved["busy"] and "sgd 0.60" in starved["warning"]
    assert "sgd_all_cores 0.50" in starved["warning"] and "asyncsam" not in starved["warning"]
    assert MIN_CPU_SHARE == 0.85
    big = load_check(10.0, {}, {}, threads=1, cpu_count=16)  # 16 CPUs: 14.5 runnable is fine
    assert not big["busy"]


def test_ablation_command_json_with_two_workers(tmp_path, capsys) -> None:
    from asam_theory.experiments.ablation import run_config

    out = tmp_path / "abl.json"
    rc = main(["ablation", "--quick", "--seeds", "2", "--steps", "4", "--workers", "2",
               "--no-progress", "--json-out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["workers"] == 2 and res["runs"] == 2 * 5
    study = res["batchnorm"]
    assert set(study["per_seed"]) == {"sgd", "sam", "asyncsam", "lookahead_tau1",
                                      "independent_tau0"}
    assert "gap SAM - AsyncSAM" in capsys.readouterr().out
    # the worker processes compute what this process computes (paired, seeded runs)
    cfg = {"variant": dict(name="sam"), "recipe": study["recipe"], "seed": 1,
           "fidelity_every": 5}
    assert study["per_seed"]["sam"][1] == run_config(cfg)["test_acc"]


def test_ablation_command_bad_seeds_is_usage_error(capsys) -> None:
    assert main(["ablation", "--quick", "--seeds", "1"]) == 2
    assert "--seeds" in capsys.readouterr().err


@pytest.mark.skipif(_glibc() is None, reason="the C library is not glibc")
def test_bench_steady_allocator_by_default() -> None:
    """Without ``--default-allocator`` the run fixes glibc's thresholds (in a child process:
    the setting stays for the life of the process) and says so in the JSON."""
    out = subprocess.run(
        [sys.executable, "-m", "asam_theory", "bench", "--json", "--hidden", "16",
         "--batch-size", "32", "--rounds", "1", "--steps", "2", "--warmup", "1",
         "--ascent-batch-size", "8", "--no-equal-resources"],
        capture_output=True, text=True, check=True, timeout=600)
    res = json.loads(out.stdout)
    assert res["allocator"]["steady"] is True and res["allocator"]["library"] == "glibc"
    assert res["allocator"]["mmap_threshold"] == MAX_MMAP_THRESHOLD
