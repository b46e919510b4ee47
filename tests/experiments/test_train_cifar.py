"""``asam-theory train --datasets cifar10 --data-root DIR``: the leaderboard reads a local
CIFAR copy (a few hundred generated images in torchvision's format, ``tests/cifar_fixture``)
and trains the ResNet-20 on it; the data-root options' errors name what is wrong."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from asam_theory.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cifar_fixture import write_cifar  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("cifar")
    write_cifar(r, "cifar10", n_train=300, n_test=100)
    return r


def test_train_reads_the_local_copy_and_trains_resnet20(root, tmp_path) -> None:
    out = tmp_path / "lb"
    rc = main(["train", "--quick", "--datasets", "cifar10", "--data-root", str(root),
               "--models", "resnet20", "--methods", "sgd,asyncsam", "--steps", "4",
               "--batch-size", "16", "--seeds", "2", "--timing-rounds", "1",
               "--no-crossover", "--no-progress", "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    text = json.dumps(res)
    assert "cifar10" in text and "resnet20" in text
    rows = [r for r in res["results"] if r["dataset"] == "cifar10"]
    assert {r["method"] for r in rows} == {"sgd", "asyncsam"}
    assert all(r["model"] == "resnet20" for r in rows)
    # 100 test images: every accuracy a multiple of 1/100
    for r in rows:
        for a in r["test_acc_per_seed"]:
            assert abs(a * 100 - round(a * 100)) < 1e-9


@pytest.mark.parametrize("argv, message", [
    (["--datasets", "cifar10"], "give its folder with --data-root"),
    (["--datasets", "digits", "--data-root", "."], "applies to the local data sets"),
    (["--datasets", "cifar10", "--data-root", "/nonexistent/cifar"], "is not a folder"),
    (["--datasets", "digits", "--models", "resnet20"], "32 x 32 colour images"),
])
def test_data_root_errors_name_the_option(argv, message, tmp_path, capsys) -> None:
    rc = main(["train", "--quick", *argv, "--out", str(tmp_path / "lb")])
    assert rc == 2
    assert message in capsys.readouterr().err
