"""``asam-theory bench --crossover``: the table's shape at a tiny size (timings are not judged
here: a unit test never holds a wall time to a threshold)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from asam_theory.experiments.crossover import run_crossover

KEYS = {"width", "params", "backend", "ascent_batch_size", "asyncsam_over_sgd", "sam_over_sgd",
        "lookahead_over_sgd"}


def test_one_row_per_width_and_backend_and_a_floor_per_width():
    res = run_crossover([8, 16], batch_size=8, rounds=1, steps=1, warmup=1,
                        ascent_batch_size=4, dataset="digits")
    rows = res["crossover"]
    assert [(r["width"], r["backend"]) for r in rows] == [
        (8, "thread"), (8, "process"), (16, "thread"), (16, "process")]
    for r in rows:
        assert KEYS <= set(r) and r["ascent_batch_size"] == 4
        assert r["asyncsam_over_sgd"] > 0 and r["sam_over_sgd"] > 0
    # the MLP 64 -> w -> w -> 10 has (64 + 1) w + (w + 1) w + (w + 1) 10 parameters
    assert rows[0]["params"] == 65 * 8 + 9 * 8 + 9 * 10
    assert [f["width"] for f in res["floor"]] == [8, 16]
    assert {c["backend"] for c in res["chosen"]} <= {"thread", "process"}
    assert res["config"]["threads_per_role"] == 1 and res["load"]["cpu_count"] >= 1


@pytest.mark.parametrize(("kw", "name"), [({"widths": []}, "widths"),
                                          ({"backends": ("gpu",)}, "backends entry"),
                                          ({"dataset": "cifar"}, "dataset")])
def test_bad_arguments_are_named(kw, name):
    args = {"widths": [8], "rounds": 1, "steps": 1, "warmup": 0, **kw}
    with pytest.raises(ValueError, match=name):
        run_crossover(**args)


def test_cli_prints_the_table_as_json():
    out = subprocess.run(
        [sys.executable, "-m", "asam_theory.cli", "bench", "--crossover", "--widths", "8",
         "--batch-size", "8", "--ascent-batch-size", "4", "--rounds", "1", "--steps", "1",
         "--warmup", "0", "--backends", "process", "--json"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert [r["backend"] for r in res["crossover"]] == ["process"]
    assert res["config"]["dataset"] == "mnist1d"
