"""Write the exploration notebooks from the cell lists below (stored without outputs).

Run ``python notebooks/_build.py`` after editing a cell here; ``tests/test_notebooks.py``
checks that the committed ``.ipynb`` files are exactly what this script writes and executes
each of them.  Every notebook opens with its question, has one cell tagged ``parameters``
(``QUICK = True``: the setting the tests run; ``QUICK = False`` for the full setting, e.g.
``papermill -p QUICK False``) and ends with a Markdown conclusion that its last code cell
asserts on the computed numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

Cell = tuple[str, str]


def md(text: str) -> Cell:
    return ("markdown", dedent(text).strip("\n"))


def code(text: str) -> Cell:
    return ("code", dedent(text).strip("\n"))


def params(text: str) -> Cell:
    return ("parameters", dedent(text).strip("\n"))


SETUP = code("""
    import warnings

    import matplotlib.pyplot as plt
    import numpy as np

    plt.rcParams.update({"figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3})
""")

# --------------------------------------------------------------------------- 01 quickstart

QUICKSTART: list[Cell] = [
    md(r"""
    # 01 · Quickstart

    **Question.** On a noisy quadratic, how do SGD, SAM and AsyncSAM (perturbation from
    weights τ = 2 steps old) behave, and does the running average
    $\frac1t\sum_{k<t}\mathbb E\|\nabla f(w_k)\|^2$ stay below our theorem T1?

    The tour: a problem from `asam_theory.problems`, three rules from `asam_theory.methods`,
    the vectorised engine `asam_theory.engine.simulate`, a bound from
    `asam_theory.theory.bounds`, one figure.
    """),
    params("""
    QUICK = True  # False: more seeds and steps
    """),
    SETUP,
    code("""
    from asam_theory.engine import simulate
    from asam_theory.methods import SAM, SGD, AsyncSAM
    from asam_theory.problems import Quadratic
    from asam_theory.theory import bounds

    STEPS, SEEDS = (300, 200) if QUICK else (3000, 2000)
    """),
    md(r"""
    A 20-dimensional rotated quadratic with condition number 50 and $L = 1$, with additive
    Gaussian gradient noise of variance `s` **per coordinate** (so the total per-sample
    variance that the bounds call $\sigma^2$ is $d\,s$).
    """),
    code("""
    d, s = 20, 0.01
    problem = Quadratic.from_spectrum("condition_number", d, L=1.0, kappa=50, rotate=True,
                                      shift=True).with_noise(s)
    x0 = np.zeros(d)
    delta = float(problem.f(x0[None])[0] - problem.f_star)  # Δ = f(w_0) − f*
    print(f"d = {problem.dim}, L = {problem.L}, mu = {problem.mu:.3f}, "
          f"noise per coordinate s = {problem.sigma2}, Δ = {delta:.4f}")
    """),
    md(r"""
    Three rules with the same step $\eta = 0.5$ and radius $\rho = 0.05$. SAM takes its
    ascent on the descent batch; AsyncSAM takes it at $w_{t-2}$ on its own batch.
    """),
    code("""
    lr, rho = 0.5, 0.05
    rules = {"SGD": SGD(lr=lr), "SAM": SAM(lr=lr, rho=rho),
             "AsyncSAM τ=2": AsyncSAM(lr=lr, rho=rho, tau=2)}
    runs = {name: simulate(problem, rule, x0, steps=STEPS, n_seeds=SEEDS, seed=0,
                           record=("f", "mean_grad_norm2"), every=5)
            for name, rule in rules.items()}
    for name, tr in runs.items():
        print(f"{name:14s}", {k: round(v, 5) for k, v in tr.summary().items()
                             if k in ("f", "mean_grad_norm2")})
    """),
    md(r"""
    T1 bounds the running average for every $t$:
    $\frac{2\Delta}{\eta t} + L^2\rho^2 + \frac{L\eta\sigma^2}{b}$ when the perturbation is
    independent of the descent noise (SGD is the case $\rho = 0$; AsyncSAM with its own batch),
    and $\frac{2\Delta}{\eta t} + (1+L\eta)L^2\rho^2 + \frac{2L\eta\sigma^2}{b}$ for SAM on the
    descent batch (`same_batch=True`).
    """),
    code("""
    SIGMA2 = d * s  # the bounds' σ²: total per-sample variance

    def t1(name: str, t: int) -> float:
        r = 0.0 if name == "SGD" else rho
        return bounds.t1_bound(delta, problem.L, r, lr, t, sigma2=SIGMA2,
                               same_batch=(name == "SAM"))

    fig, ax = plt.subplots(figsize=(7, 4))
    for (name, tr), color in zip(runs.items(), ("C0", "C1", "C2")):
        t = tr.times[1:]
        ax.plot(t, np.nanmean(tr.metrics["mean_grad_norm2"][1:], axis=1), color=color,
                label=f"{name}: measured")
        ax.plot(t, [t1(name, int(k)) for k in t], color=color, ls="--", label=f"{name}: T1")
    ax.set(xscale="log", yscale="log", xlabel="t",
           ylabel=r"$\\frac{1}{t}\\sum_{k<t}\\mathbb{E}\\|\\nabla f(w_k)\\|^2$",
           title="running average against T1")
    ax.legend(fontsize=8, ncol=2);
    """),
    md(r"""
    **What the figure shows.** For each rule the measured running average of
    $\mathbb E\|\nabla f\|^2$ (solid) lies below its T1 bound (dashed) at every recorded $t$,
    and the bound's $2\Delta/(\eta t)$ term makes it loose early; later it flattens towards its
    constant floor. On this problem the three measured curves nearly coincide: at the last step
    they lie within 20 % of one another, so the two-step-old perturbation of AsyncSAM costs
    nothing visible against SAM. The cell below asserts both statements on the numbers above.
    """),
    code("""
    for name, tr in runs.items():
        measured = np.nanmean(tr.metrics["mean_grad_norm2"][1:], axis=1)
        bound = np.array([t1(name, int(k)) for k in tr.times[1:]])
        assert np.all(measured <= bound), (name, float(np.max(measured / bound)))
    final = {name: tr.summary()["mean_grad_norm2"] for name, tr in runs.items()}
    assert max(final.values()) <= 1.2 * min(final.values()), final
    print("worst measured/T1:", max(
        float(np.max(np.nanmean(tr.metrics["mean_grad_norm2"][1:], axis=1)
                     / [t1(n, int(k)) for k in tr.times[1:]])) for n, tr in runs.items()))
    """),
]

# ------------------------------------------------------------- 02 staleness & neighbourhood

STALENESS: list[Cell] = [
    md(r"""
    # 02 · Staleness and the neighbourhood

    **Question.** How does the average squared gradient norm
    $\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2$ of normalised AsyncSAM depend on the
    staleness τ, the radius ρ and the step η — and does it stay below T1,

    $$\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le\frac{2\Delta}{\eta T}+L^2\rho^2
    +\frac{L\eta\sigma^2}{b},\qquad 0<\eta\le 1/L,$$

    which does not depend on τ at all?
    """),
    params("""
    QUICK = True  # False: the full grid, more seeds, longer runs
    """),
    SETUP,
    code("""
    from asam_theory.engine import simulate
    from asam_theory.methods import AsyncSAM
    from asam_theory.problems import Quadratic
    from asam_theory.theory import bounds

    if QUICK:
        STEPS, SEEDS = 400, 100
        TAUS, RHOS, LRS = (0, 1, 2, 4, 8), (0.05, 0.1, 0.2), (0.1, 0.5, 1.0)
    else:
        STEPS, SEEDS = 2000, 1000
        TAUS, RHOS, LRS = (0, 1, 2, 4, 8, 16, 32), (0.02, 0.05, 0.1, 0.2, 0.4), \\
            (0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
    """),
    md(r"""
    The problem: a rotated, shifted 10-dimensional quadratic, $L = 1$, condition number 20,
    with Gaussian gradient noise of per-coordinate variance $s$. **Convention:**
    `problem.with_noise(s)` draws $\xi\sim\mathcal N(0, \tfrac{s}{b}I_d)$, so
    $\mathbb E\|\xi\|^2 = d\,s/b$; the bounds' `sigma2` is the *total* per-sample variance,
    so we pass $\sigma^2 = d\,s$. AsyncSAM takes its ascent on its own batch
    (`ascent_batch="independent"`, the default), the case T1's first form covers for every τ ≥ 0.
    """),
    code("""
    d, s = 10, 0.01
    SIGMA2 = d * s
    problem = Quadratic.from_spectrum("condition_number", d, L=1.0, kappa=20, rotate=True,
                                      shift=True).with_noise(s)
    x0 = np.zeros(d)
    delta = float(problem.f(x0[None])[0] - problem.f_star)

    rows = []
    for tau in TAUS:
        for rho in RHOS:
            for lr in LRS:
                tr = simulate(problem, AsyncSAM(lr=lr, rho=rho, tau=tau), x0, steps=STEPS,
                              n_seeds=SEEDS, seed=0, record=("mean_grad_norm2",), every=STEPS)
                sm = tr.summary()
                rows.append(dict(tau=tau, rho=rho, lr=lr, measured=sm["mean_grad_norm2"],
                                 sem=sm["mean_grad_norm2_sem"], diverged=sm["n_diverged"],
                                 bound=bounds.t1_bound(delta, problem.L, rho, lr, STEPS,
                                                       sigma2=SIGMA2)))
    ratio = np.array([r["measured"] / r["bound"] for r in rows])
    print(f"{len(rows)} configurations; measured/T1 from {ratio.min():.3f} to {ratio.max():.3f}")
    """),
    code("""
    def pick(**kw: float) -> list[dict]:
        return [r for r in rows if all(r[k] == v for k, v in kw.items())]

    lr_mid = LRS[len(LRS) // 2]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    for i, rho in enumerate(RHOS):
        sel = pick(rho=rho, lr=lr_mid)
        ax.errorbar([r["tau"] for r in sel], [r["measured"] for r in sel],
                    yerr=[2 * r["sem"] for r in sel], marker="o", color=f"C{i}",
                    label=f"ρ={rho}")
        ax.axhline(sel[0]["bound"], color=f"C{i}", ls="--")
    ax.set(xlabel="staleness τ", ylabel="(1/T) Σ E‖∇f‖²", yscale="log",
           title=f"η={lr_mid}: measured (solid) vs T1 (dashed)")
    ax.legend(fontsize=8)

    ax = axes[1]
    rho_mid = RHOS[len(RHOS) // 2]
    for i, tau in enumerate((TAUS[0], TAUS[-1])):
        sel = pick(rho=rho_mid, tau=tau)
        ax.plot([r["lr"] for r in sel], [r["measured"] for r in sel], "o-", color=f"C{i}",
                label=f"measured, τ={tau}")
    ax.plot(LRS, [r["bound"] for r in pick(rho=rho_mid, tau=TAUS[0])], "k--", label="T1")
    ax.set(xlabel="step η", yscale="log", title=f"ρ={rho_mid}")
    ax.legend(fontsize=8)

    ax = axes[2]
    sc = ax.scatter([r["bound"] for r in rows], [r["measured"] for r in rows],
                    c=[r["tau"] for r in rows], cmap="viridis", s=18)
    lim = [min(r["measured"] for r in rows) / 2, max(r["bound"] for r in rows) * 2]
    ax.plot(lim, lim, "k:", label="measured = bound")
    ax.set(xscale="log", yscale="log", xlabel="T1 bound", ylabel="measured",
           title="every configuration")
    fig.colorbar(sc, ax=ax, label="τ")
    ax.legend(fontsize=8)
    fig.tight_layout()
    """),
    md(r"""
    **What the figures show.** Every configuration of the sweep lies below the diagonal of the
    right panel: the measured average stays under T1 even after adding three standard errors
    of the Monte-Carlo mean. Staleness, absent from T1, moves the measured average by less
    than a quarter of the bound at every (ρ, η), and its effect grows with ρ: the largest
    spread over τ at the largest ρ exceeds the largest spread at the smallest ρ (left panel:
    the curves rise with τ only at large ρ). Larger ρ also lifts the bound's floor
    $L^2\rho^2$. The cell below asserts these statements.
    """),
    code("""
    for r in rows:
        assert r["diverged"] == 0, r
        assert r["measured"] + 3 * r["sem"] <= r["bound"], r
    spread = {}
    for rho in RHOS:
        for lr in LRS:
            sel = pick(rho=rho, lr=lr)
            spread[rho, lr] = max(r["measured"] for r in sel) - min(r["measured"] for r in sel)
            assert spread[rho, lr] < 0.25 * sel[0]["bound"], (rho, lr, spread[rho, lr])
    widest = {rho: max(spread[rho, lr] for lr in LRS) for rho in RHOS}
    assert widest[RHOS[-1]] > widest[RHOS[0]], widest
    print("worst measured/T1 =", round(float(ratio.max()), 3))
    """),
]

# ------------------------------------------------------------ 03 gradient-norm penalty

PENALTY: list[Cell] = [
    md(r"""
    # 03 · The gradient-norm penalty under staleness

    **Question.** SAM's perturbation $\rho\,\nabla f(w)/\|\nabla f(w)\|$ adds, to first order,
    the penalty term $\rho H u$ with $u$ the unit gradient. AsyncSAM uses the unit gradient of
    weights τ steps old. (i) How faithful is the stale direction — the cosine between the
    perturbation used and the fresh gradient (the engine's `"fidelity"` record) — as τ grows,
    and does the angle respect T4(d),
    $\theta\le2\arcsin\min\big(1, L\eta\tau G/\|\nabla f(w_t)\|\big)$?
    (ii) On a landscape with a sharp and a flat minimum (`TwoBasin`), where do SGD, SAM and
    AsyncSAM end?
    """),
    params("""
    QUICK = True  # False: more seeds and steps
    """),
    SETUP,
    code("""
    from scipy.stats import binomtest

    from asam_theory.engine import simulate
    from asam_theory.methods import SAM, SGD, AsyncSAM
    from asam_theory.problems import Quadratic, TwoBasin
    from asam_theory.theory import bounds

    STEPS, SEEDS = (200, 100) if QUICK else (1000, 1000)
    BASIN_STEPS, BASIN_SEEDS = (1000, 1000) if QUICK else (3000, 5000)
    TAUS = (0, 1, 2, 4, 8, 16)
    """),
    md(r"""
    ## (i) Fidelity against τ

    A rotated 10-dimensional quadratic ($L = 1$, condition number 20), random starts at
    distance ~6 from the minimiser, $\eta = 0.5$, $\rho = 0.1$; once with the exact gradient,
    once with gradient noise of per-coordinate variance 0.01.
    """),
    code("""
    d, lr, rho = 10, 0.5, 0.1
    quad = Quadratic.from_spectrum("condition_number", d, L=1.0, kappa=20, rotate=True,
                                   shift=True)
    x0 = quad.center + 2.0 * np.random.default_rng(1).standard_normal((SEEDS, d))
    angle_bound = np.vectorize(bounds.stale_angle_bound)

    fidelity, violations = {}, {}
    for label, prob in (("exact", quad), ("noisy", quad.with_noise(0.01))):
        for tau in TAUS:
            tr = simulate(prob, AsyncSAM(lr=lr, rho=rho, tau=tau), x0, steps=STEPS,
                          n_seeds=SEEDS, seed=0,
                          record=("grad_norm2", "fidelity", "descent_grad_norm2"))
            fid = tr.step_metrics["fidelity"]  # (steps, seeds)
            fidelity[label, tau] = fid
            if label == "exact" and tau > 0:
                # G bounds every descent direction of the run (per seed)
                G = np.sqrt(tr.step_metrics["descent_grad_norm2"].max(axis=0))
                grad_norm = np.sqrt(tr.metrics["grad_norm2"][:-1])
                theta = np.arccos(np.clip(fid, -1.0, 1.0))
                bound = angle_bound(quad.L, lr, tau, np.broadcast_to(G, grad_norm.shape),
                                    grad_norm)
                violations[tau] = int(np.sum(theta > bound + 1e-9))
    mean_fid = {k: float(v.mean()) for k, v in fidelity.items()}
    for label in ("exact", "noisy"):
        print(label, {tau: round(mean_fid[label, tau], 3) for tau in TAUS})
    print("T4(d) violations per τ:", violations)
    """),
    code("""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for i, tau in enumerate(TAUS):
        axes[0].plot(fidelity["exact", tau].mean(axis=1), color=plt.cm.viridis(i / len(TAUS)),
                     label=f"τ={tau}")
    axes[0].set(xlabel="step t", ylabel="mean cos(ε_t, ∇f(w_t))", title="exact gradients")
    axes[0].legend(fontsize=8)
    for label, marker in (("exact", "o"), ("noisy", "s")):
        axes[1].plot(TAUS, [mean_fid[label, t] for t in TAUS], marker=marker, label=label)
    axes[1].set(xlabel="staleness τ", ylabel="fidelity averaged over steps and seeds",
                xscale="symlog", title="fidelity against τ")
    axes[1].legend()
    fig.tight_layout()
    """),
    md(r"""
    ## (ii) Sharp or flat: where each method ends

    `TwoBasin`: $f(x) = \varphi(x_1) + \tfrac12\|x_{2:}\|^2$ with equal minima at
    $x_1 = -1$ (curvature 8, *sharp*) and $x_1 = +1$ (curvature 1, *flat*); `basin(x)`
    classifies a point by the side of the barrier it lies on. Starts spread uniformly over
    $x_1\in[-1.6, 1.6]$ (about 62 % of them on the flat side), gradient noise of
    per-coordinate variance 0.2, $\eta = 0.1$, $\rho = 0.2$. A seed whose iterate leaves
    every bound counts as *diverged*. Intervals: 95 % Wilson intervals on the fraction of all
    seeds that end in the flat basin.
    """),
    code("""
    landscape = TwoBasin(dim=2, sharp=8.0, flat=1.0)
    rng = np.random.default_rng(0)
    starts = np.c_[rng.uniform(-1.6, 1.6, BASIN_SEEDS), rng.normal(0.0, 0.5, BASIN_SEEDS)]
    lr_b, rho_b = 0.1, 0.2
    methods = {"SGD": SGD(lr=lr_b), "SAM": SAM(lr=lr_b, rho=rho_b)}
    methods.update({f"AsyncSAM τ={t}": AsyncSAM(lr=lr_b, rho=rho_b, tau=t) for t in (1, 2, 8)})

    ends = {}
    for name, rule in methods.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a few far starts diverge; counted below
            tr = simulate(landscape.with_noise(0.2), rule, starts, steps=BASIN_STEPS,
                          n_seeds=BASIN_SEEDS, seed=0, record=("f",), every=BASIN_STEPS)
        ok = ~tr.diverged
        n_flat = int(np.sum(landscape.basin(tr.x_final[ok]) == TwoBasin.FLAT))
        ci = binomtest(n_flat, BASIN_SEEDS).proportion_ci(method="wilson")
        ends[name] = dict(flat=n_flat / BASIN_SEEDS, lo=ci.low, hi=ci.high,
                          diverged=int(tr.diverged.sum()))
    start_flat = float(np.mean(landscape.basin(starts) == TwoBasin.FLAT))
    for name, e in ends.items():
        print(f"{name:14s} flat {e['flat']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]  "
              f"diverged {e['diverged']}")
    """),
    code("""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    u = np.linspace(-1.8, 1.8, 400)
    axes[0].plot(u, landscape.phi(u))
    axes[0].axvline(landscape.barrier, color="k", ls=":", label="barrier")
    axes[0].set(xlabel="$x_1$", ylabel="φ", ylim=(0, 3), title="sharp (left) and flat (right)")
    axes[0].legend()
    names = list(ends)
    y = [ends[n]["flat"] for n in names]
    err = [[ends[n]["flat"] - ends[n]["lo"] for n in names],
           [ends[n]["hi"] - ends[n]["flat"] for n in names]]
    axes[1].bar(names, y, yerr=err, capsize=4, color=["C0", "C1", "C2", "C2", "C2"])
    axes[1].axhline(start_flat, color="k", ls="--", label="fraction of starts on the flat side")
    axes[1].set(ylabel="fraction ending in the flat basin", ylim=(0, 1.05))
    axes[1].tick_params(axis="x", rotation=20)
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    """),
    md(r"""
    **What the figures show.** (i) With exact gradients the perturbation of τ = 0 is the fresh
    gradient direction (fidelity 1); the fidelity averaged over steps and seeds falls
    monotonically as τ grows, with and without gradient noise, and every measured angle
    between stale and fresh directions satisfies T4(d). Late in the exact runs, SAM-type
    iterates oscillate around the minimiser, so a stale direction can even point against the
    fresh one (negative cosine). (ii) SGD ends in the flat basin at about the rate its starts
    lie on the flat side, while SAM and AsyncSAM (τ = 1, 2, 8) end there far more often: each
    of their 95 % intervals lies above SGD's. A stale perturbation keeps the flat-minimum
    preference. The cell below asserts these statements.
    """),
    code("""
    assert all(v == 0 for v in violations.values()), violations
    assert mean_fid["exact", 0] > 0.999999
    for label in ("exact", "noisy"):
        seq = [mean_fid[label, t] for t in TAUS]
        assert all(a > b for a, b in zip(seq, seq[1:])), (label, seq)
    assert abs(ends["SGD"]["flat"] - start_flat) < 0.1, (ends["SGD"], start_flat)
    for name in names[1:]:
        assert ends[name]["lo"] > ends["SGD"]["hi"], (name, ends[name], ends["SGD"])
    print("fidelity decreases with τ; T4(d) holds; SAM/AsyncSAM prefer the flat basin")
    """),
]

# ------------------------------------------------------------------ 04 exact quadratics

EXACT: list[Cell] = [
    md(r"""
    # 04 · Exact analysis on quadratics

    **Question.** For stale unnormalised SAM (stale USAM,
    $w_{t+1} = w_t - \eta\nabla f_{B_t}(w_t + \rho\,g'_{t-\tau})$) on a quadratic, where in
    the (η, ρ) plane is the method stable for τ = 0…4, and do the exact stationary moments
    from the discrete Lyapunov equation (`asam_theory.theory.exact`) match Monte Carlo from
    the engine?
    """),
    params("""
    QUICK = True  # False: finer grid, more seeds
    """),
    SETUP,
    code("""
    from asam_theory.engine import simulate
    from asam_theory.methods import AsyncSAM
    from asam_theory.problems import Quadratic
    from asam_theory.theory import exact

    N_LR, N_RHO = (120, 60) if QUICK else (400, 200)
    STEPS, SEEDS = (600, 2000) if QUICK else (2000, 20000)
    TAUS = (0, 1, 2, 3, 4)
    """),
    md(r"""
    ## Stability regions

    A rotated 4-dimensional quadratic with eigenvalues 2, 1, 0.5, 0.25 ($L = 2$). For each
    τ, `exact.stability_region` computes the spectral radius of the augmented companion
    matrix on the grid, and `boundary_lr` the exact largest stable step $\bar\eta(\rho, \tau)$
    (stable on all of $(0, \bar\eta)$).
    """),
    code("""
    quad = Quadratic([2.0, 1.0, 0.5, 0.25], rotate=True, shift=True)
    lrs = np.linspace(0.01, 1.8, N_LR)
    rhos = np.linspace(0.0, 0.5, N_RHO)
    region = exact.stability_region(quad, lrs, rhos, taus=TAUS)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, tau in enumerate(TAUS):
        ax.plot(region.boundary_lr[k], rhos, color=plt.cm.plasma(k / len(TAUS)),
                ls=("-", "-", "--", "-", ":")[k % 5], lw=3 if tau == 0 else 1.5,
                label=f"τ={tau}")
    ax.set(xlabel="step η", ylabel="radius ρ", xlim=(0, 1.05 * region.boundary_lr.max()),
           title="stale USAM: stable to the left of each curve")
    ax.legend()
    i = int(np.argmin(np.abs(rhos - 0.1)))
    print("largest stable η at ρ ≈ 0.1:",
          {int(t): round(float(region.boundary_lr[k, i]), 4) for k, t in enumerate(TAUS)})
    """),
    md(r"""
    ## Stationary moments: Lyapunov against Monte Carlo

    The engine's stale USAM is `AsyncSAM(normalize=False, ascent_batch="descent")`: the
    ascent at $w_{t-\tau}$ reuses the descent batch of step $t-\tau$, which is `exact`'s
    noise model `ascent_noise="descent_batch"`. **Noise convention:** `exact` draws
    $\xi_B\sim\mathcal N(0, \tfrac{\sigma^2}{b}I)$ — per-coordinate $\sigma^2$, the same
    convention as the engine's `with_noise(s)` — so we pass `sigma2 = s` unchanged (unlike
    the bounds, whose σ² is the total $d\,s$). The last check below confirms this: the total
    variance $d\,s$ would miss the Monte Carlo by a factor of about $d$.
    """),
    code("""
    s, lr, rho = 0.05, 0.3, 0.1
    noisy = quad.with_noise(s)
    moments = []
    for tau in TAUS:
        ex = exact.stationary_moments(quad, lr, rho, tau, sigma2=s,
                                      ascent_noise="descent_batch")
        wrong = exact.stationary_moments(quad, lr, rho, tau, sigma2=quad.dim * s,
                                         ascent_noise="descent_batch")
        rule = AsyncSAM(lr=lr, rho=rho, tau=tau, normalize=False, ascent_batch="descent")
        tr = simulate(noisy, rule, quad.center, steps=STEPS, n_seeds=SEEDS, seed=0,
                      record=("f", "grad_norm2"), every=STEPS)
        sm = tr.summary()
        moments.append(dict(tau=tau, exact_loss=ex.excess_loss, exact_grad=ex.grad_norm_sq,
                            wrong_loss=wrong.excess_loss,
                            mc_loss=sm["f"] - quad.f_star, mc_loss_sem=sm["f_sem"],
                            mc_grad=sm["grad_norm2"], mc_grad_sem=sm["grad_norm2_sem"],
                            radius=ex.spectral_radius))
    for m in moments:
        print({k: round(v, 5) if isinstance(v, float) else v for k, v in m.items()})
    """),
    code("""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key, label in ((axes[0], "loss", "E f − f*"), (axes[1], "grad", "E‖∇f‖²")):
        ax.plot(TAUS, [m[f"exact_{key}"] for m in moments], "k_", ms=25, mew=2,
                label="exact (Lyapunov)")
        ax.errorbar(TAUS, [m[f"mc_{key}"] for m in moments],
                    yerr=[3 * m[f"mc_{key}_sem"] for m in moments], fmt="o", capsize=4,
                    label=f"Monte Carlo ± 3 s.e. ({SEEDS} seeds)")
        ax.set(xlabel="staleness τ", ylabel=f"stationary {label}", title=label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    """),
    md(r"""
    **What the figures show.** At ρ = 0 the method is SGD whatever τ, and every curve starts
    at $\eta = 2/L = 1$. For ρ > 0 the boundary moves with τ, and not monotonically. Even
    delays (τ = 2, 4; dashed and dotted, on top of the thick τ = 0 curve) keep exactly the
    boundary of τ = 0, $\eta = \min_\lambda 2/(\lambda(1+\rho\lambda))$: for τ = 0 a root
    leaves the unit circle through $z = -1$, and since $(-1)^\tau = 1$ for even τ, $z = -1$ is
    a root at the same η for every even delay. Odd delays
    (τ = 1, 3) *enlarge* the stable range of η for $0 < \rho < 1/L$, most for τ = 1; all
    curves meet again at $\rho = 1/L$. Every grid point left of a boundary is stable
    (radius < 1). The exact
    stationary $\mathbb E f - f^*$ and $\mathbb E\|\nabla f\|^2$ agree with Monte Carlo within
    4 standard errors for every τ, with the per-coordinate σ² passed unchanged; the total
    variance $d\,s$ would be off by more than 10 standard errors. The cell below asserts these
    statements.
    """),
    code("""
    L = quad.L
    assert np.allclose(region.boundary_lr[:, 0], 2.0 / L, rtol=1e-9), region.boundary_lr[:, 0]
    for k in range(len(TAUS)):
        for i in range(len(rhos)):
            below = lrs < region.boundary_lr[k, i] * (1 - 1e-9)
            assert np.all(region.stable[k, i, below]), (TAUS[k], rhos[i])
    b = region.boundary_lr  # (tau, rho)
    assert np.allclose(b[2], b[0], rtol=1e-6) and np.allclose(b[4], b[0], rtol=1e-6)
    inside = (rhos > 0) & (rhos < 1 / L - 1e-9)
    assert np.all(b[1, inside] > b[0, inside]) and np.all(b[3, inside] > b[0, inside])
    assert np.all(b[1] >= b[3] * (1 - 1e-9))
    edge = int(np.argmin(np.abs(rhos - 1 / L)))
    assert np.allclose(b[:, edge], b[0, edge])
    for m in moments:
        assert m["radius"] < 1.0
        assert abs(m["mc_loss"] - m["exact_loss"]) <= 4 * m["mc_loss_sem"], m
        assert abs(m["mc_grad"] - m["exact_grad"]) <= 4 * m["mc_grad_sem"], m
        assert abs(m["mc_loss"] - m["wrong_loss"]) > 10 * m["mc_loss_sem"], m
    print("stability regions consistent; Lyapunov = Monte Carlo for τ =", TAUS)
    """),
]

# ------------------------------------------------------------------- 05 threaded AsyncSAM

THREADED: list[Cell] = [
    md(r"""
    # 05 · A real threaded AsyncSAM run

    **Question.** When AsyncSAM's ascent runs in a real worker thread
    (`asam_theory.torch.AsyncSAM`), what staleness do the steps actually use, what does a
    step cost, and does the network still learn? Two experiments: the threaded quadratic of
    `asam_theory.torch.realrun` with emulated device times (fast ascent vs slow ascent), and
    a small MLP on scikit-learn's digits trained with SGD, SAM and threaded AsyncSAM.
    """),
    params("""
    QUICK = True  # False: more steps, a wider network
    """),
    SETUP,
    code("""
    import torch

    from asam_theory.torch import run_method, threaded_quadratic_run
    from asam_theory.torch.training import load_digits_data

    torch.set_num_threads(1)  # one intra-op thread each for the main thread and the worker
    STEPS, HIDDEN, QSTEPS = (80, 32, 150) if QUICK else (600, 128, 1000)
    TAU = 1
    """),
    md(r"""
    ## Staleness on the threaded quadratic

    Each descent gradient sleeps 1 ms. *Fast ascent*: the ascent costs nothing extra and
    `max_staleness = τ = 1`, so every step after the first uses exactly the direction of
    the previous weights (waiting if needed). *Slow ascent*: each ascent sleeps 4 ms and a
    step may use any direction up to 8 versions old, so the main thread runs ahead of the
    worker and the used staleness exceeds τ.
    """),
    code("""
    quad_runs = {
        "fast ascent": threaded_quadratic_run(steps=QSTEPS, tau=TAU, sigma2=0.01,
                                              descent_delay_s=1e-3),
        "slow ascent": threaded_quadratic_run(steps=QSTEPS, tau=TAU, max_staleness=8,
                                              sigma2=0.01, descent_delay_s=1e-3,
                                              ascent_delay_s=4e-3),
    }
    for name, run in quad_runs.items():
        print(f"{name}: staleness counts {np.bincount(run.staleness).tolist()}, "
              f"{1e3 * run.wall_s / QSTEPS:.2f} ms/step, "
              f"mean wait {1e3 * run.wait_s.mean():.2f} ms, "
              f"(1/T) Σ ‖∇f‖² = {run.mean_grad_norm2:.4f}")
    """),
    md(r"""
    ## Digits: accuracy and time per step

    A 64–32–32–10 MLP (quick setting), batch 32, SGD base with momentum 0.9; the same
    descent batches for every method. AsyncSAM runs threaded with τ = 1 and
    `max_staleness = 3`.
    """),
    code("""
    data = load_digits_data(seed=0)
    common = dict(model_kind="mlp", hidden=HIDDEN, steps=STEPS, batch_size=32, lr=0.1,
                  rho=0.05, seed=0)
    results = {
        "SGD": run_method("sgd", data, **common),
        "SAM": run_method("sam", data, **common),
        "AsyncSAM": run_method("asyncsam", data, tau=TAU, max_staleness=3, **common),
    }
    for name, r in results.items():
        print(f"{name:9s} test acc {r.test_acc:.3f}  {1e3 * r.time_per_step_s:.2f} ms/step")
    """),
    code("""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for i, (name, run) in enumerate(quad_runs.items()):
        counts = np.bincount(run.staleness, minlength=10)[:10]
        axes[0].bar(np.arange(10) + (i - 0.5) * 0.4, counts / counts.sum(), width=0.4,
                    label=f"quadratic, {name}")
    counts = np.bincount(results["AsyncSAM"].staleness, minlength=10)[:10]
    axes[0].plot(np.arange(10), counts / counts.sum(), "ko--", label="digits AsyncSAM")
    axes[0].axvline(TAU, color="gray", ls=":")
    axes[0].set(xlabel="staleness used", ylabel="fraction of steps", title="staleness")
    axes[0].legend(fontsize=8)
    names = list(results)
    axes[1].bar(names, [1e3 * results[n].time_per_step_s for n in names],
                color=["C0", "C1", "C2"])
    axes[1].set(ylabel="ms per step", title="time per step (this machine)")
    axes[2].bar(names, [results[n].test_acc for n in names], color=["C0", "C1", "C2"])
    axes[2].axhline(0.1, color="k", ls=":", label="chance")
    axes[2].set(ylabel="test accuracy", ylim=(0, 1), title=f"digits after {STEPS} steps")
    axes[2].legend()
    fig.tight_layout()
    """),
    md(r"""
    **What the figures show.** With `max_staleness = τ` the threaded optimizer uses exactly
    staleness τ on every step after the first (the first step uses the direction at $w_0$,
    staleness 0); with a slow ascent and room to run ahead, the staleness actually used
    exceeds τ on average and never exceeds `max_staleness`. The histogram is measured, not
    assumed: it depends on the relative speed of the two threads. The times per step are
    those of this machine: AsyncSAM hides the ascent only when the worker has a core or
    device of its own, so the middle panel is a measurement to read, not a claim. All three
    methods learn the digits far above chance. The cell below asserts the staleness
    statements and the accuracies.
    """),
    code("""
    fast, slow = quad_runs["fast ascent"].staleness, quad_runs["slow ascent"].staleness
    assert fast[0] == 0 and np.all(fast[TAU:] == TAU), np.bincount(fast)
    assert slow.max() <= 8 and slow.mean() > TAU, np.bincount(slow)
    stale = np.asarray(results["AsyncSAM"].staleness)
    assert len(stale) == STEPS and stale.max() <= 3
    for name, r in results.items():
        assert r.test_acc > 0.5, (name, r.test_acc)
        assert np.isfinite(r.time_per_step_s) and r.time_per_step_s > 0
    print("staleness as configured; every method far above chance")
    """),
]

NOTEBOOKS: dict[str, list[Cell]] = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_staleness_and_neighbourhood.ipynb": STALENESS,
    "03_gradient_norm_penalty.ipynb": PENALTY,
    "04_exact_quadratics.ipynb": EXACT,
    "05_threaded_asyncsam.ipynb": THREADED,
}


def build(cells: list[Cell]) -> nbformat.NotebookNode:
    """A notebook without outputs from ``(kind, source)`` cells."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, source) in enumerate(cells):
        cell_id = f"cell-{i:02d}"
        if kind == "markdown":
            nb.cells.append(new_markdown_cell(source, id=cell_id))
        else:
            cell = new_code_cell(source, id=cell_id)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(cells: list[Cell]) -> str:
    """The exact text this script writes for ``cells``."""
    return nbformat.writes(build(cells)) + "\n"


def main(argv: list[str]) -> int:
    """Write every notebook (``--check``: only report which differ, exit 1 if any)."""
    check = "--check" in argv
    stale = []
    for name, cells in NOTEBOOKS.items():
        path = HERE / name
        text = render(cells)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not check:
            path.write_text(text, encoding="utf-8")
    verb = "differ" if check else "written"
    print(f"{len(stale)} notebook(s) {verb}: {', '.join(stale) or '-'}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
