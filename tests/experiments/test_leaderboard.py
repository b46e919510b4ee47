"""The real-data leaderboard: models, counted gradient evaluations and ``asam-theory train
--quick`` end to end (schema, figures, self-contained HTML; no timing thresholds)."""

from __future__ import annotations

import json
import re
import threading

import numpy as np
import pytest
import torch

from asam_theory.cli import main
from asam_theory.data import load_dataset
from asam_theory.experiments.leaderboard import catalogue_methods
from asam_theory.experiments.models import MODEL_KINDS, make_model
from asam_theory.experiments.training import run_method, tensor_data
from asam_theory.report.leaderboard import RESULT_KEYS


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("shape", [(40,), (8, 8)])
def test_models_map_examples_to_logits(kind: str, shape: tuple[int, ...]) -> None:
    net = make_model(kind, shape, classes=10, width=8, seed=0)
    x = torch.randn(5, int(torch.tensor(shape).prod()))
    assert net(x).shape == (5, 10)
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    assert has_bn == kind.endswith("-bn")
    # same seed, same weights
    again = make_model(kind, shape, classes=10, width=8, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), again.parameters(),
                                                  strict=True))
    with pytest.raises(ValueError, match="model"):
        make_model("resnet", shape)


@pytest.mark.parametrize(("method", "per_step"), [("sgd", 1), ("sam", 2), ("asyncsam-det", 2)])
def test_gradient_evaluations_are_counted(method: str, per_step: int) -> None:
    ds = load_dataset("digits", seed=0, label_noise=0.2)
    net = make_model("mlp", ds.input_shape, width=16, seed=0)
    r = run_method(method, tensor_data(ds), model=net, steps=6, batch_size=16,
                   ascent_batch_size=8 if method.startswith("asyncsam") else None,
                   record_every=3)
    assert r.grad_evals == per_step * 6
    # SAM's second gradient is on the same b examples; AsyncSAM's ascent on b' = 8
    expected = {"sgd": 6 * 16, "sam": 12 * 16, "asyncsam-det": 6 * 16 + 6 * 8}[method]
    assert r.grad_examples == expected
    assert [p["step"] for p in r.curve] == [3, 6]
    assert r.minor_faults_per_step >= 0
    assert [p["grad_evals"] for p in r.curve] == [3 * per_step, 6 * per_step]
    assert 0.0 <= r.val_acc <= 1.0


def test_train_quick_writes_the_leaderboard(tmp_path) -> None:
    out = tmp_path / "lb"
    # the quick setting with fewer steps per run (the schema does not depend on them)
    # the built-in four and one catalogue method of each step contract (all of them: the
    # command's default; here fewer, to keep the suite's time)
    methods = {"sgd", "sam", "asyncsam", "sampa"}
    for protocol in ("closure", "per_sample"):
        methods |= {next(m.name for m in catalogue_methods() if m.protocol == protocol)}
    rc = main(["train", "--quick", "--steps", "30", "--widths", "32,64", "--no-progress",
               "--methods", ",".join(sorted(methods)), "--out", str(out),
               "--markdown", str(tmp_path / "docs" / "results.md"), "--jobs", "2"])
    assert rc == 0
    payload = json.loads((out / "results.json").read_text())
    _check_markdown(tmp_path / "docs" / "results.md", payload, len(methods))
    results = payload["results"]
    cells = {(r["method"], r["dataset"], r["model"]) for r in results}
    assert cells == {(m, d, "mlp") for m in methods for d in ("mnist1d", "digits")}
    for r in results:
        assert set(RESULT_KEYS) <= set(r)
        lo, hi = r["test_acc_ci"]
        assert lo <= r["test_acc_mean"] <= hi and len(r["test_acc_per_seed"]) == 2
        q1, q3 = r["time_per_step_iqr"]
        assert 0 < q1 <= r["time_per_step_ms"] <= q3
        assert r["time_per_step_ms_equal_resources"] > 0
        assert r["minor_faults_per_step"] >= 0
        # chosen on validation: the grid rows carry validation accuracy only
        assert r["grid"] and all("val_acc_mean" in g and "test_acc" not in str(g)
                                 for g in r["grid"])
        best = max(r["grid"], key=lambda g: g["val_acc_mean"])
        assert r["hyperparameters"]["lr"] == best["lr"]
        assert r["hyperparameters"].get("rho") == best.get("rho")
        expected = {"sgd": 1.0, "sam": 2.0}.get(r["method"])
        if expected is not None:
            assert r["grad_evals_per_step"] == expected
        if r["method"] == "asyncsam":
            assert sum(r["staleness_histogram"].values()) == 2 * 30
            assert set(r["staleness_histogram"]) <= {"0", "1"}
            assert -1.0 <= r["fidelity"]["mean"] <= 1.0 + 1e-9
            assert 1 <= r["hyperparameters"]["ascent_batch_size"] <= 64
    assert [row["width"] for row in payload["crossover"]["rows"]] == [32, 64]
    names = {f.split("/")[-1] for f in payload["figures"]}
    assert {"accuracy_vs_time_mnist1d.png", "accuracy_vs_time_digits.png",
            "accuracy_vs_grad_evals.png", "frontier.png", "crossover.png"} <= names
    for f in payload["figures"]:
        assert (out / f).stat().st_size > 0
    html = (out / "index.html").read_text()
    assert html.count("src='data:image/png;base64,") == len(payload["figures"])
    assert "src='http" not in html and "validation" in html
    assert not [t for t in threading.enumerate() if t.name == "asam-ascent"]


def _check_markdown(md_path, payload: dict, n_methods: int) -> None:
    """The Markdown page: one table row per method and cell with the accuracy it was given,
    every linked figure copied beside it, and where and how long it ran."""
    md = md_path.read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert links and len(links) == len(payload["figures"])
    for link in links:
        assert (md_path.parent / link).stat().st_size > 0
    for d in ("mnist1d", "digits"):
        block = md.split(f"### {d} / mlp")[1].split("###")[0]
        rows = [ln for ln in block.splitlines() if ln.startswith("| ") and "%" not in ln
                and not ln.startswith("| method")]
        assert len(rows) >= n_methods
        for r in payload["results"]:
            if r["dataset"] == d:
                assert f"| {r['label']} | {100 * r['test_acc_mean']:.1f} [" in block
    env = payload["environment"]
    assert f"| wall time | {payload['wall_s'] / 60:.1f} min" in md
    assert env["finished"] in md and f"{env['cpu_count']} CPUs" in md
    assert "`asam-theory train" in md or "`asam-theory " in md


def test_markdown_must_name_a_md_file(tmp_path, capsys) -> None:
    rc = main(["train", "--quick", "--out", str(tmp_path / "lb"), "--markdown",
               str(tmp_path / "results.html")])
    assert rc == 2 and "--markdown must name a .md file" in capsys.readouterr().err
    assert not (tmp_path / "lb").exists()


def test_an_optimizer_class_joins_by_one_entry() -> None:
    """A method run_method does not know joins through its class and the closure contract:
    SAM named by its dotted path gives SAM's run exactly (MLP without BatchNorm, same seeds)."""
    from asam_theory.experiments.leaderboard import LeaderboardMethod

    entry = LeaderboardMethod("sam-by-class", "SAM (class)", ({"lr": 0.1, "rho": 0.05},),
                              optimizer="asam_theory.torch.sam.SAM")
    ds = load_dataset("digits", seed=0, label_noise=0.2)
    runs = []
    for name, extra in (("sam", {}), ("sam-by-class", entry.run_kwargs())):
        net = make_model("mlp", ds.input_shape, width=16, seed=0)
        runs.append(run_method(name, tensor_data(ds), model=net, steps=5, batch_size=16,
                               lr=0.1, rho=0.05, **extra))
    assert runs[1].grad_evals == runs[0].grad_evals == 10
    assert runs[1].losses == runs[0].losses and runs[1].test_acc == runs[0].test_acc
    with pytest.raises(ValueError, match="method"):
        run_method("looksam", tensor_data(ds), steps=1)


def test_catalogue_entries_become_leaderboard_methods(monkeypatch) -> None:
    """Each catalogue method with a torch face that is not built in joins the board with the
    catalogue defaults its class accepts; no catalogue module, no extra methods."""
    import sys
    import types

    from asam_theory.experiments.leaderboard import catalogue_methods

    entry = types.SimpleNamespace(name="sam2", rule=types.SimpleNamespace(label="SAM 2"),
                                  torch_optimizer="asam_theory.torch.sam.SAM",
                                  defaults={"adaptive": True, "not_a_kwarg": 3},
                                  torch_class=lambda: __import__(
                                      "asam_theory.torch.sam", fromlist=["SAM"]).SAM)
    builtin = types.SimpleNamespace(name="sgd", torch_optimizer="torch.optim.SGD")
    fake = types.ModuleType("asam_theory.methods.catalog")
    fake.METHODS = (builtin, entry)
    monkeypatch.setitem(sys.modules, "asam_theory.methods.catalog", fake)
    (m,) = catalogue_methods(lrs=(0.1,), rhos=(0.05,))
    assert (m.name, m.label, m.protocol) == ("sam2", "SAM 2", "closure")
    assert m.fixed == {"adaptive": True} and m.grid == ({"lr": 0.1, "rho": 0.05},)
    monkeypatch.setitem(sys.modules, "asam_theory.methods.catalog", None)
    assert catalogue_methods() == []


def test_every_catalogued_method_with_a_torch_face_joins_the_board() -> None:
    """All eight peers join; AUSAM gets the training set's size and epoch length and, at each
    step, the positions of the batch it draws (its per-sample table is indexed by them)."""
    from asam_theory.experiments.leaderboard import BUILT_IN
    from asam_theory.methods.catalog import METHODS

    names = {m.name for m in catalogue_methods()}
    assert names == {m.name for m in METHODS
                     if m.torch_optimizer is not None and m.name not in BUILT_IN}
    (ausam,) = [m for m in catalogue_methods(lrs=(0.1,), rhos=(0.05,)) if m.name == "ausam"]
    ds = load_dataset("digits", seed=0, label_noise=0.2)
    net = make_model("mlp", ds.input_shape, width=16, seed=0)
    run = run_method("ausam", tensor_data(ds), model=net, steps=4, batch_size=16, lr=0.1,
                     rho=0.05, **ausam.run_kwargs())
    assert len(run.losses) == 4 and all(np.isfinite(run.losses))
