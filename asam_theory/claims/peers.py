r"""PEERS: the efficient-SAM peers against T1 where it applies, and their fidelity/cost frontier.

Two checks (sweeps in :mod:`asam_theory.sweeps.peers`):

* ``t1``: every catalogued method that T1 covers (``peers.T1_FORMS``: SAM and AE-SAM, SSAM and
  BiSAM in T1's same-batch form, AsyncSAM in the independent form; the rules' docstrings say
  why the others are not covered) on a noisy quadratic, a finite-sum quadratic, Cauchy
  regression and softmax regression: the seed mean of :math:`\frac1T\sum_{t<T}\|\nabla
  f(x_t)\|^2` at every recorded horizon must stay below ``bounds.t1_bound`` (3 standard
  errors of slack), as in the T1 claim.  Two settings (``peers.T1_SETTINGS``):
  ``transient`` (the families' own starts, b = 4, σ² = 0.01, η = 0.5/L, ρ = 0.2/L: the
  2Δ/(ηT) term dominates the bound, a perturbation 20 radii wide still passes on softmax
  regression) and ``near_stationary`` (exact gradients, starts within ρ of a stationary point
  whose curvature is near L, a certified lower bound, η = 0.8/L, ρ = 0.05/L: the bound is
  essentially T1's perturbation term L²ρ², which a perturbation of 5 radii exceeds on every
  family, ``perturbation-5x-radius`` and the peers' ``peer-perturbation-5x-radius``).
* ``frontier``: every catalogued method on softmax regression with the full batch (exact
  oracle: SAM's perturbation is then its fresh direction) and with minibatches, through a
  :class:`~asam_theory.problems.CountingOracle`: counted gradients and forwards per step must
  equal the declared (realised) cost; the fidelity :math:`\cos\angle(\epsilon_t,\nabla
  f(x_t))` of the perturbations actually applied, against the counted cost, is the frontier
  (table and figure; data, not a pass criterion).
"""

from __future__ import annotations

import numpy as np

from asam_theory.claims.base import Check, Claim, Outcome, Settings, Verdict, worst
from asam_theory.methods import method_names
from asam_theory.sweeps import peers as psims
from asam_theory.sweeps import run_sweep
from asam_theory.sweeps import theorems as sims

# ------------------------------------------------------------------------------- T1


def t1_verdict(rows: list[dict]) -> Outcome:
    """Pass: every row ``pass`` (no divergence, inside the region, no violation)."""
    ev = [sims.evaluate_row(r) for r in rows]
    bad = [r for r in ev if r["status"] != "pass"]
    w = worst(ev)
    table = [{k: r.get(k, "transient") if k == "setting" else r[k]
              for k in ("setting", "method", "family", "status", "measured", "se", "bound",
                        "ratio", "worst_t", "L", "lr", "rho")} for r in ev]
    by_setting = {}
    for r in table:
        by_setting[r["setting"]] = max(by_setting.get(r["setting"], 0.0), r["ratio"])
    return Outcome.judged(
        not bad, measured=w["measured"], bound=w["bound"], ratio=w["ratio"],
        summary=f"{len(ev)} runs (methods {sorted({r['method'] for r in ev})}): "
                f"{len(ev) - len(bad)} within T1, worst ratio {w['ratio']:.3f} "
                f"({w['method']} on {w['family']}); worst ratio per setting "
                f"{ {k: round(v, 3) for k, v in by_setting.items()} }"
                + (f"; NOT within: {[(r['method'], r['family'], r['status']) for r in bad]}"
                   if bad else ""),
        table=table, config={"forms": dict(psims.T1_FORMS)},
        figure={"rows": [{"label": f"{r['setting']}: {r['method']} / {r['family']}",
                          "ratio": r["ratio"]} for r in table]})


def _t1(settings: Settings) -> Outcome:
    cfgs = psims.t1_configs(settings.pick(150, 400, 2000), settings.pick(8, 16, 128),
                            settings.seed)
    return t1_verdict(run_sweep(psims.t1_task, cfgs, settings.executor))


def _plot_t1(v: Verdict, ax) -> None:
    rows = v.figure["rows"]
    ax.barh(range(len(rows)), [r["ratio"] for r in rows], color="C0")
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=6)
    ax.axvline(1.0, color="k", lw=1, ls="--")
    ax.set_xlabel(r"measured $\frac{1}{T}\sum\|\nabla f\|^2$ / T1 bound (worst horizon)")


# ------------------------------------------------------------------------- frontier

SETTINGS = ("full_batch", "minibatch")


def frontier_verdict(rows: list[dict]) -> Outcome:
    """Pass: counted == declared (gradients and forwards, 1e-12 relative) for every row."""
    mism = [r for r in rows
            if not (np.isclose(r["grads_counted"], r["grads_declared"], rtol=1e-12, atol=0)
                    and np.isclose(r["forwards_counted"], r["forwards_declared"], rtol=1e-12,
                                   atol=1e-15))]
    for r in rows:
        f = r["fidelity"]
        r["fidelity_per_step"] = None if f is None else f * r["perturbed_fraction"]
    sam = {r["setting"]: r["fidelity"] for r in rows if r["method"] == "sam"}
    table = [{k: r.get(k) for k in ("setting", "method", "grads_counted", "forwards_counted",
                                    "depth", "fidelity", "fidelity_se", "perturbed_fraction",
                                    "fidelity_per_step")} for r in rows]
    return Outcome.judged(
        not mism, measured=len(mism), bound=0,
        summary=f"{len(rows)} runs ({len({r['method'] for r in rows})} methods, settings "
                f"{list(SETTINGS)}): counted cost = declared in "
                f"{len(rows) - len(mism)}/{len(rows)}"
                + (f" (NOT: {[(r['setting'], r['method']) for r in mism]})" if mism else "")
                + f"; SAM's fidelity to its fresh direction {sam}",
        table=table, figure={"rows": table})


def _frontier(settings: Settings) -> Outcome:
    steps, seeds = settings.pick(60, 200, 1000), settings.pick(4, 8, 32)
    cfgs = []
    for name, b in (("full_batch", 60), ("minibatch", 8)):
        for c in psims.frontier_configs(method_names(), steps, seeds, settings.seed):
            cfgs.append({**c, "b": b, "setting": name})
    return frontier_verdict(run_sweep(psims.frontier_task, cfgs, settings.executor))


def _plot_frontier(v: Verdict, ax) -> None:
    for setting, marker in zip(SETTINGS, ("o", "s"), strict=True):
        rows = [r for r in v.figure["rows"] if r["setting"] == setting
                and r["fidelity"] is not None]
        x = [r["grads_counted"] + r["forwards_counted"] / 3 for r in rows]
        y = [r["fidelity"] for r in rows]
        ax.scatter(x, y, marker=marker, label=setting.replace("_", " "))
        # methods at the same cost sit on one vertical: label them in turn left and right,
        # stepping the text up and down, so neighbouring labels do not overlap
        order = sorted(range(len(rows)), key=lambda i: (x[i], y[i]))
        for k, i in enumerate(order):
            frac = rows[i]["perturbed_fraction"]
            label = rows[i]["method"] + (f" ({100 * frac:.0f}% perturbed)" if frac < 0.99 else "")
            dx, dy = (4, 3 + 7 * (k % 3)) if k % 2 == 0 else (-4, -3 - 7 * (k % 3))
            ax.annotate(label, (x[i], y[i]), fontsize=6, xytext=(dx, dy),
                        textcoords="offset points", ha="left" if dx > 0 else "right",
                        arrowprops={"arrowstyle": "-", "lw": 0.3, "color": "0.6"})
    ax.set_xlabel("counted cost per step (gradients + forwards/3, full-batch units)")
    ax.set_ylabel(r"fidelity $\cos\angle(\epsilon_t,\nabla f(x_t))$ (perturbed steps)")
    ax.legend(fontsize=7, loc="center left")  # the lower right holds methods at fidelity 0
    ax.margins(x=0.15)


PEERS = Claim(
    id="PEERS",
    title="Efficient-SAM peers: T1 where it applies, counted cost and fidelity to SAM",
    statement=(
        r"For the peers whose perturbation has norm $\le\rho$ and whose descent gradient is an "
        r"unbiased minibatch gradient at the perturbed point (SAM, AE-SAM, SSAM, BiSAM: "
        r"same-batch form; AsyncSAM: independent form), T1 bounds "
        r"$\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2$. For every catalogued method the "
        r"counted cost per step equals the declared one, and the fidelity of the applied "
        r"perturbation to SAM's fresh direction $\nabla f(w_t)/\|\nabla f(w_t)\|$ against "
        r"that cost is the efficiency frontier."),
    source="our theorem T1 (proofs/t1_async_sam.py); methods docs/methods.md §6-§14b",
    checks=(
        Check("t1", "monte_carlo",
              "Each T1-covered method on a noisy quadratic, a finite-sum quadratic, Cauchy "
              r"regression and softmax regression (transient setting: $\eta=0.5/L$, "
              r"$\rho=0.2/L$, $b=4$) and, where the perturbation term dominates the bound, on "
              "a quadratic, a finite-sum quadratic, clean Cauchy regression and overlapping "
              r"softmax regression started within $\rho$ of a stationary point (exact "
              r"gradients, $\eta=0.8/L$, $\rho=0.05/L$): the seed mean of "
              r"$\frac1T\sum_{t<T}\|\nabla f(w_t)\|^2$ below t1_bound at every recorded "
              "horizon.",
              _t1, _plot_t1,
              caption="One bar per method and problem: the worst ratio over horizons of the "
                      "measured time-averaged squared gradient norm to T1's bound. Every bar "
                      "must end left of 1 (the bound holds); a bar near 1 means T1 is tight "
                      "there."),
        Check("frontier", "monte_carlo",
              "Every catalogued method on softmax regression, full batch and b = 8, through a "
              "CountingOracle: counted == declared cost; fidelity of the applied perturbation "
              "to the fresh gradient direction against the counted cost (the frontier).",
              _frontier, _plot_frontier,
              caption="The efficiency frontier: each point is a method, its counted cost per "
                      "step against the fidelity of its perturbation to the fresh gradient "
                      "direction. Up and to the left is better (closer to SAM's direction for "
                      "less gradient work)."),
    ),
)

CLAIMS: tuple[Claim, ...] = (PEERS,)
