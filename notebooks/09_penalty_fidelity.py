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
# # 09 · Does AsyncSAM keep SAM's penalty on a real network?
#
# **Question.** What drives SAM to flat minima is its *penalty gradient*, the part of SAM's
# descent gradient beyond the plain one (Andriushchenko & Flammarion, ICML 2022,
# arXiv 2206.06232):
#
# $$p_{\rm SAM}=\nabla f_B(w+\rho u_B)-\nabla f_B(w)\approx\rho\,\nabla^2 f_B(w)\,u_B .$$
#
# A variant that perturbs along another unit direction $u_{\rm var}$ has the penalty gradient
# $p_{\rm var}=\nabla f_B(w+\rho u_{\rm var})-\nabla f_B(w)$ on the same batch. Along
# training of a BatchNorm CNN on noisy digits, how close is $p_{\rm var}$ to $p_{\rm SAM}$ —
# for the look-ahead variant (the gradient at $w_{t-1}$ on the descent batch $B_t$), for
# AsyncSAM (the gradient at $w_{t-1}$ on an *independent* batch of b/2, Jo, Lim & Lee 2025,
# arXiv 2503.11147) and for a random unit direction (the floor)? And are the weights each
# method ends at as flat as SAM's?
#
# The tools: `asam_theory.experiments.penalty_real` (trains each method through the
# optimizers of `asam_theory.torch` and probes every direction on the run's own iterates and
# descent batch at fixed checkpoints) and `asam_theory.experiments.flatness` (Hutchinson's
# Hessian trace with its standard error, the Lanczos top eigenvalue, the m-sharpness). The
# claim `PENALTY-REAL` (`asam-theory verify --claims PENALTY-REAL`) decides the same
# questions against preregistered thresholds; `docs/penalty.md` has the larger runs. The
# quick setting trains a width-16 CNN for 64 steps on 3 seeds (about half a minute).

# %% tags=["parameters"]
QUICK = True  # False: the width-32 CNN, 600 steps, 5 seeds (about 15 min on 2 cores)

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np

plt.rcParams.update({"figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3})

# %%
from asam_theory.experiments.penalty_real import Probe, run_penalty
from asam_theory.experiments.probe_runs import DRIVERS, SETTINGS

setting = replace(SETTINGS[0], steps=64, width=16) if QUICK else SETTINGS[0]
seeds = (0, 1, 2) if QUICK else (0, 1, 2, 3, 4)
# each method's own direction, and the random control
probes = (Probe("look-ahead", 1, "same", 1.0), Probe("AsyncSAM", 1, "independent", 0.5),
          Probe("random", 0, "random"))
flat = ({"probes": 6, "ms": (16,), "train_examples": 64, "lanczos_ncv": 4,
         "lanczos_tol": 1e-2} if QUICK else
        {"probes": 30, "ms": (16, 64), "train_examples": 512, "lanczos_ncv": 6})
result = run_penalty((setting,), DRIVERS, seeds, n_checkpoints=4 if QUICK else 6,
                     probes=probes, flat=flat, first_checkpoint=30)
runs = result["runs"]
print(setting)
print("drivers:", [d.name for d in DRIVERS], "seeds:", seeds)

# %% [markdown]
# ## The penalty-gradient cosine along training
#
# At each checkpoint $t$ of a run, on its descent batch $B_t$ and at its own weights, every
# probe's penalty gradient is compared with SAM's: $\cos(p_{\rm var}, p_{\rm SAM})$. The left
# panel follows the look-ahead's run, the right one AsyncSAM's; each line is the mean over
# seeds of one probe.

# %%
def curve(driver: str, probe: str) -> tuple[list[int], np.ndarray]:
    """Steps and, per step, the mean cosine over seeds of ``probe`` along ``driver``'s run."""
    rows = [r for run in runs if run["driver"] == driver for r in run["rows"]
            if r["probe"] == probe]
    steps = sorted({r["step"] for r in rows})
    return steps, np.array([np.mean([r["cos_penalty"] for r in rows if r["step"] == t])
                            for t in steps])


fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for ax, driver in zip(axes, ("lookahead", "asyncsam"), strict=True):
    for probe, style in (("look-ahead", "C0o-"), ("AsyncSAM", "C1s-"), ("random", "0.5")):
        steps, cos = curve(driver, probe)
        ax.plot(steps, cos, style, label=probe)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_title(f"along the {driver} run")
    ax.set_xlabel("training step")
axes[0].set_ylabel(r"cos($p_{\rm var}$, $p_{\rm SAM}$), mean over seeds")
axes[0].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Per seed, the mean cosine over the checkpoints of each method's own run (the look-ahead's
# probe along its run, AsyncSAM's along its run, the random direction along both), and the
# norm ratio $\|p_{\rm var}\|/\|p_{\rm SAM}\|$.

# %%
def per_seed(driver: str, probe: str, metric: str = "cos_penalty") -> np.ndarray:
    """Each seed's mean of ``metric`` over the checkpoints of ``driver``'s run."""
    return np.array([np.mean([r[metric] for r in run["rows"] if r["probe"] == probe])
                     for run in runs if run["driver"] == driver])


own = {"look-ahead": per_seed("lookahead", "look-ahead"),
       "AsyncSAM": per_seed("asyncsam", "AsyncSAM"),
       "random": np.concatenate([per_seed("lookahead", "random"),
                                 per_seed("asyncsam", "random")])}
ratio = {"look-ahead": per_seed("lookahead", "look-ahead", "norm_ratio"),
         "AsyncSAM": per_seed("asyncsam", "AsyncSAM", "norm_ratio"),
         "random": per_seed("lookahead", "random", "norm_ratio")}
for name, c in own.items():
    print(f"{name:>10}: cos per seed {np.round(c, 3)}  mean {c.mean():.3f};  "
          f"norm ratio mean {ratio[name].mean():.3f}")

# %% [markdown]
# ## Flatness of the solutions
#
# At the final weights (BatchNorm statistics recomputed there): the Hessian trace by
# Hutchinson's estimator with its standard error, the top eigenvalue by Lanczos, and the test
# accuracy. The figure shows, per seed, each method's log trace minus SGD's on the same seed:
# below 0 is flatter than SGD.

# %%
names = [d.name for d in DRIVERS]
trace = {d: np.array([r["flatness"]["trace"] for r in runs if r["driver"] == d]) for d in names}
for d in names:
    fl = [r["flatness"] for r in runs if r["driver"] == d]
    acc = np.mean([r["test_acc"] for r in runs if r["driver"] == d])
    se = np.mean([f["trace_se"] for f in fl])
    print(f"{d:>10}: tr H {trace[d].mean():7.2f} (probe SE {se:.2f})"
          f"  λ_max {np.mean([f['lambda_max'] for f in fl]):6.2f}  test acc {100 * acc:.1f} %")

fig, ax = plt.subplots(figsize=(6, 3.4))
for i, d in enumerate(names):
    diff = np.log(trace[d]) - np.log(trace["sgd"])
    ax.plot([i] * len(diff), diff, "o", color=f"C{i}")
    ax.plot([i - 0.2, i + 0.2], [diff.mean()] * 2, color=f"C{i}")
ax.axhline(0, color="k", lw=0.8)
ax.set_xticks(range(len(names)), names)
ax.set_ylabel("log tr H − log tr H (SGD, same seed)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What the figure shows
#
# Along the look-ahead's run its own direction keeps most of SAM's penalty gradient: the
# cosine stays far above the random direction's, whose cosine sits near 0 with a penalty a
# fraction of SAM's size. AsyncSAM's direction from an independent batch keeps much less of
# it, along its own run as well as along the look-ahead's — the independence of the ascent
# batch, not its staleness, removes most of the penalty (`docs/penalty.md` §3 has the full
# grid over τ, b′ and independence). SAM's solutions have a smaller Hessian trace than SGD's
# on average; where the variants land between the two is what `PENALTY-REAL`'s
# `flatness_order` places with intervals at its larger sizes. At this quick size (64 steps,
# three seeds) the numbers are a demonstration, not a verdict.

# %%
# the look-ahead's penalty cosine exceeds the random direction's on every seed and on average
assert own["look-ahead"].min() > own["random"].max()
# ... and AsyncSAM's, on average
assert own["look-ahead"].mean() > own["AsyncSAM"].mean()
# a random direction keeps a small share of the penalty's size
assert ratio["random"].mean() < 0.5 < ratio["look-ahead"].mean()
# SAM ends flatter than SGD (mean log-trace ratio over seeds)
assert np.mean(np.log(trace["sam"]) - np.log(trace["sgd"])) < 0
