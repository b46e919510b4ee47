"""The leaderboard's Markdown page from a synthetic payload: rows sorted by accuracy with
their intervals in %, the seeds that collapsed (count, mean without them, each with its
reason), SGD as the reference, the MDE column, the equal-resources rows, the crossover table
and where it ran (no training)."""

from __future__ import annotations

from asam_theory.report.leaderboard import leaderboard_markdown, write_leaderboard_markdown


def _row(method: str, label: str, acc: float, gain: float | None, **extra) -> dict:
    r = {"method": method, "label": label, "dataset": "digits", "model": "cnn",
         "test_acc_mean": acc, "test_acc_ci": [acc - 0.01, acc + 0.01],
         "time_per_step_ms": 10.0, "time_ratio_to_sgd": 1.0, "grad_evals_per_step": 1.0,
         "time_ratio_to_sgd_equal_resources": 1.0,
         "hyperparameters": {"lr": 0.05, "rho": 0.1} if method != "sgd" else {"lr": 0.1}}
    if gain is not None:
        r.update(acc_gain_over_sgd=gain, acc_gain_over_sgd_ci=[gain - 0.02, gain + 0.02])
    if method != "sgd":  # as the leaderboard: no MDE of SGD against itself
        r["acc_gain_over_sgd_mde"] = 0.019
    return {**r, **extra}


PAYLOAD = {
    "results": [
        _row("sgd", "SGD", 0.80, 0.0),
        _row("asyncsam", "AsyncSAM", 0.83, 0.03, ascent_batch_size=12,
             ascent_batch_size_equal_resources=8, test_acc_mean_equal_resources=0.825,
             test_acc_ci_equal_resources=[0.81, 0.84], acc_equal_resources_minus_tuned=-0.005,
             acc_equal_resources_minus_tuned_ci=[-0.02, 0.01]),
        _row("sam", "SAM", 0.86, 0.06,
             collapsed_per_seed=[None, "training loss stuck at the constant predictor's", None],
             test_acc_mean_not_collapsed=0.9),
    ],
    "config": {"datasets": ["digits"], "models": ["cnn"], "seeds": 10, "label_noise": 0.2,
               "batch_size": 64, "momentum": 0.9, "weight_decay": 5e-4,
               "steps": {"digits": 600}, "selection_seeds": 1, "timing_rounds": 5,
               "timing_steps": 60, "timing_warmup": 10, "width": {"mlp": 256},
               "methods": [{"label": "SGD"}, {"label": "SAM"}, {"label": "AsyncSAM"}]},
    "environment": {"cpu_count": 2, "cpu_model": "Test CPU", "platform": "Linux",
                    "python": "3.11", "torch": "2.13", "finished": "2026-12-06T06:00:00",
                    "loadavg_1min": {"before": 0.1, "after": 1.9}, "training_processes": 2},
    "crossover": {"dataset": "digits", "threshold": 1.1, "crossover_width": None,
                  "rows": [{"width": 64, "asyncsam_over_sgd": 1.5, "asyncsam_over_sgd_iqr": 1}]},
    "wall_s": 3000.0,
}


def test_markdown_tables_and_provenance() -> None:
    md = leaderboard_markdown(PAYLOAD, ["results/frontier.png"], command="asam-theory train")
    body = md.split("### digits / cnn")[1]
    order = [ln.split("|")[1].strip() for ln in body.splitlines()
             if ln.startswith("| ") and not ln.startswith("| method")][:3]
    assert order == ["SAM", "AsyncSAM", "SGD"]
    assert "| SAM | 86.0 [85.0, 87.0] | 1/3 | 90.0 | +6.0 [+4.0, +8.0] | 1.9 |" in body
    assert "| SGD | 80.0 [79.0, 81.0] | – | – | (reference) | – |" in body
    assert "| AsyncSAM | 12 | 8 | 82.5 [81.0, 84.0] | – | -0.5 [-2.0, +1.0] |" in body
    assert "- SAM, seed 1: training loss stuck at the constant predictor's" in body
    assert "AsyncSAM ≤ 1.10 × SGD: **none**" in md and "| 64 | 1.500 |" in md
    assert "| wall time | 50.0 min (3000 s) |" in md
    assert "2 CPUs (Test CPU)" in md and "in 2 process(es)" in md
    assert "| 1-minute load | 0.10 before, 1.90 after |" in md
    assert "![frontier](results/frontier.png)" in md
    assert '{"mlp": 256}' in md


def test_write_copies_the_figures_beside_the_page(tmp_path) -> None:
    figs = tmp_path / "out" / "figures"
    figs.mkdir(parents=True)
    (figs / "frontier.png").write_bytes(b"\x89PNG fake")
    path = write_leaderboard_markdown(tmp_path / "docs" / "results.md", PAYLOAD, figs,
                                      command="asam-theory train")
    assert (tmp_path / "docs" / "results" / "frontier.png").read_bytes() == b"\x89PNG fake"
    assert "![frontier](results/frontier.png)" in path.read_text()
