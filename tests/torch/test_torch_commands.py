"""The ``train`` and ``bench`` commands run end to end and write what they promise (no timing
assertions: the machine may be busy)."""

from __future__ import annotations

import json

from asam_theory.cli import main


def test_train_bad_method_is_usage_error(tmp_path, capsys) -> None:
    rc = main(["train", "--methods", "sgd,adam", "--out", str(tmp_path)])
    assert rc == 2
    assert "adam" in capsys.readouterr().err


def test_bench_json_tiny(capsys, tmp_path) -> None:
    path = tmp_path / "bench.json"
    rc = main(["bench", "--json", "--hidden", "32", "--batch-size", "64", "--rounds", "2",
               "--steps", "2", "--warmup", "1", "--out", str(path)])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert {"asyncsam_over_sgd", "sam_over_sgd", "device"} <= set(res)
    assert res["asyncsam_over_sgd"] > 0 and res["sam_over_sgd"] > 0
    assert 1 <= res["ascent_batch_size"] <= 64 and res["tuning"]["batch_size"] == 64
    assert sum(res["staleness_histogram"].values()) == 2 * 2
    assert json.loads(path.read_text())["device"] == res["device"]


def test_ablation_command_json_with_two_workers(tmp_path, capsys) -> None:
    from asam_theory.torch.ablation import run_config

    out = tmp_path / "abl.json"
    rc = main(["ablation", "--quick", "--seeds", "2", "--steps", "4", "--workers", "2",
               "--no-progress", "--json", str(out)])
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
