# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · The real-data leaderboard
#
# **Question.** On real data with noisy labels, where does each method land between
# accuracy and cost — and does AsyncSAM deliver SAM's accuracy at SGD's time per step, or
# is its model too small for the hidden ascent to pay for the thread hand-off? This notebook
# reads a `results.json` written by `asam-theory train` (the leaderboard: every method ×
# data set × model × seeds, hyper-parameters chosen on validation, interleaved timing) and
# explores it: the table, the paired gains over SGD, the counted gradient work, the
# efficiency frontier and AsyncSAM's crossover against model width.

# %% tags=["parameters"]
QUICK = True  # False: more seeds and steps when the leaderboard is built here
RESULTS = None  # path to a results.json from `asam-theory train`; None: build a small one

# %%
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

plt.rcParams.update({"figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## Load (or build) a leaderboard
#
# Without a `results.json` at hand, a small leaderboard is built here with the public API:
# digits with 20 % symmetric label noise, an MLP, SGD/SAM/AsyncSAM/SAMPa, a two-point ρ
# grid searched on the validation split. `asam-theory train --out DIR` builds the full one
# (MNIST-1D and digits, MLP and CNN, 5 seeds) with the same code.

# %%
from asam_theory.experiments.leaderboard import LeaderboardConfig, default_methods, run_leaderboard
from asam_theory.report.leaderboard import write_leaderboard

if RESULTS is None:
    STEPS = 150 if QUICK else 600
    cfg = LeaderboardConfig(
        datasets=("digits",), models=("mlp",), seeds=3 if QUICK else 5,
        steps={"digits": STEPS}, timing_rounds=2 if QUICK else 5,
        timing_steps=10 if QUICK else 60, timing_warmup=3,
        crossover_dataset="digits", crossover_widths=(32, 256) if QUICK else (64, 256, 1024),
        crossover_rounds=1 if QUICK else 3, crossover_steps=10 if QUICK else 40,
    )
    out = Path(tempfile.mkdtemp()) / "leaderboard"
    payload = run_leaderboard(cfg, default_methods(lrs=(0.1,)), progress=False)
    RESULTS = write_leaderboard(out, payload, mode="notebook")["results"]
board = json.loads(Path(RESULTS).read_text())
results = board["results"]
print(f"{len(results)} results from {RESULTS}")

# %% [markdown]
# ## The table
#
# One row per (method, data set, model): test accuracy with its Student-t 95 % interval over
# seeds, time per step with an idle second core (median over interleaved rounds) and with
# equal resources (SGD and SAM on both cores), and the gradient evaluations per step that
# were counted, not declared.

# %%
header = (f"{'data':8s} {'model':6s} {'method':9s} {'test acc':>8s} {'95% CI':>17s} "
          f"{'ms/step':>8s} {'×SGD':>6s} {'×SGD eq':>8s} {'grads':>6s} {'examples':>8s}")
print(header)
for r in results:
    eq = r.get("time_ratio_to_sgd_equal_resources")
    print(f"{r['dataset']:8s} {r['model']:6s} {r['label']:9s} {r['test_acc_mean']:8.4f} "
          f"[{r['test_acc_ci'][0]:.4f}, {r['test_acc_ci'][1]:.4f}] "
          f"{r['time_per_step_ms']:8.3f} {r['time_ratio_to_sgd']:6.2f} "
          f"{(eq if eq is not None else float('nan')):8.2f} {r['grad_evals_per_step']:6.2f} "
          f"{r['sample_gradients_per_step']:8.3f}")

# %% [markdown]
# ## What was chosen, and on what
#
# Each method's grid was run on selection seeds and the point with the best mean
# **validation** accuracy kept; the test split played no part.

# %%
for r in results:
    grid = ", ".join(f"{ {k: v for k, v in g.items() if k in ('lr', 'rho')} } → "
                     f"{g['val_acc_mean']:.3f}" for g in r["grid"])
    print(f"{r['dataset']}/{r['model']} {r['label']:9s} chose lr={r['hyperparameters']['lr']}"
          f" rho={r['hyperparameters'].get('rho')}   grid: {grid}")

# %% [markdown]
# ## Accuracy gain over SGD against time cost, and the crossover
#
# Left: the efficiency frontier — each method's paired accuracy gain over SGD (95 % interval
# over seeds) against its time per step relative to SGD's (interval over timing rounds);
# hollow markers: equal resources. Right: AsyncSAM's and SAM's time per step relative to
# SGD's against the MLP width. On a small model the thread hand-off costs more than the
# ascent it hides; the crossover is the width from which AsyncSAM runs at SGD's pace.

# %%
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3.8))
colors = {"sam": "tab:blue", "asyncsam": "tab:red", "sampa": "tab:green"}
for r in results:
    if r["method"] == "sgd":
        continue
    x, y = r["time_ratio_to_sgd"], 100 * r["acc_gain_over_sgd"]
    (ylo, yhi), (xlo, xhi) = (100 * np.asarray(r["acc_gain_over_sgd_ci"]),
                              r["time_ratio_to_sgd_ci"])
    c = colors.get(r["method"], "k")
    ax0.errorbar([x], [y], xerr=[[max(x - xlo, 0)], [max(xhi - x, 0)]],
                 yerr=[[y - ylo], [yhi - y]], fmt="o", color=c, capsize=3,
                 label=f"{r['label']} ({r['dataset']}/{r['model']})")
    if r.get("time_ratio_to_sgd_equal_resources") is not None:
        ax0.plot([r["time_ratio_to_sgd_equal_resources"]], [y], "o", mfc="none", color=c)
ax0.axhline(0, color="k", lw=0.8)
ax0.axvline(1, color="k", lw=0.8, ls=":")
ax0.set_xlabel("time per step / SGD's")
ax0.set_ylabel("test accuracy gain over SGD (pp)")
ax0.legend(fontsize=7)
cross = board.get("crossover")
if cross:
    widths = [row["width"] for row in cross["rows"]]
    for name, style in (("asyncsam", "o-"), ("sam", "s--")):
        ax1.plot(widths, [row[f"{name}_ratio_to_sgd"] for row in cross["rows"]], style,
                 color=colors[name], label=name)
    ax1.axhline(1.0, color="k", lw=0.8)
    ax1.axhline(cross["threshold"], color="k", lw=0.8, ls=":")
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("MLP width")
    ax1.set_ylabel("time per step / SGD's")
    ax1.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What the figures show.** The left panel places every method against SGD: up is more
# accurate, right is slower per step; intervals that cross zero mean the seeds cannot tell
# the method from SGD. SAM pays two sequential gradients per step; AsyncSAM also counts two
# gradient evaluations per step, but its ascent runs on b′ ≤ b examples and on the second
# core, so what it costs in wall time depends on the machine: the right panel measures it
# against the model width, and on a loaded machine or a tiny model it can exceed SAM's (the
# numbers are this machine's, measured, not assumed). The cell below asserts what holds
# whatever the machine: intervals contain their means, the gradient work counted per step
# (1 for SGD, 2 for SAM, 2 calls with 1 + b′/b examples' worth for AsyncSAM), AsyncSAM's
# staleness within τ = 1, hyper-parameters chosen by validation accuracy, and every method
# far above chance.

# %%
n_seeds = board["config"]["seeds"]
for r in results:
    lo, hi = r["test_acc_ci"]
    assert lo <= r["test_acc_mean"] <= hi and len(r["test_acc_per_seed"]) == n_seeds
    assert r["test_acc_mean"] > 0.5, (r["method"], r["test_acc_mean"])  # chance is 0.1
    best = max(r["grid"], key=lambda g: g["val_acc_mean"])
    assert r["hyperparameters"]["lr"] == best["lr"]
    assert r["hyperparameters"].get("rho") == best.get("rho")
    b = r["hyperparameters"]["batch_size"]
    if r["method"] == "sgd":
        assert r["grad_evals_per_step"] == 1.0
    if r["method"] == "sam":
        assert r["grad_evals_per_step"] == 2.0 and r["sample_gradients_per_step"] == 2.0
    if r["method"] == "asyncsam":
        bp, steps = r["hyperparameters"]["ascent_batch_size"], r["hyperparameters"]["steps"]
        # one ascent per step; the worker's last ascent may be cut short when the run ends
        assert abs(r["grad_evals_per_step"] - 2.0) <= 1 / steps
        assert abs(r["sample_gradients_per_step"] - (1 + bp / b)) <= bp / (b * steps)
        assert bp <= b and set(r["staleness_histogram"]) <= {"0", "1"}
        assert sum(r["staleness_histogram"].values()) == n_seeds * steps
print("intervals, counted gradient work, staleness and validation-based choice as stated")
