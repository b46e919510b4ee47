r"""m-sharpness against b′: SAM with a perturbation micro-batch of m samples beside AsyncSAM
with an ascent batch of b′ = m.

Foret et al. (ICLR 2021, arXiv 2010.01412, §4) and Andriushchenko & Flammarion (ICML 2022,
arXiv 2206.06232) found that SAM generalises better when its ascent uses small micro-batches
(m-sharpness), and Luo et al. (NeurIPS 2025, arXiv 2509.18001) that SAM improves as the
perturbation's micro-batch shrinks.  AsyncSAM (Jo, Lim & Lee 2025, arXiv 2503.11147) takes its
ascent on an independent batch of b′ samples, and the ablation
(:mod:`asam_theory.experiments.ablation`) finds that the independence loses SAM's gain.  This
experiment puts the two side by side on one setting, paired by seed (same initialisation, same
descent batches):

* ``sgd``;
* ``sam_m{m}`` — SAM whose ascent is the gradient on the first m samples of the descent batch
  :math:`B_t` at :math:`w_t` (``Driver(kind="sam_micro", bprime=m)``; m = b is SAM);
* ``asyncsam_m{m}`` — AsyncSAM, τ = 1, its ascent on the first b′ = m samples of an
  independent batch at :math:`w_{t-1}` (``Driver(kind="asyncsam", bprime=m)``);

for m ∈ {8, 16, 32, 64}, every method at the setting's lr and ρ.  :func:`compare` reports each
method's test accuracy and the paired differences (percentage points) with Student-t intervals
and the minimum detectable effect (one-sided 5 %, power 80 %,
:func:`asam_theory.stats.minimum_detectable_effect`):
SAM_m − SGD, AsyncSAM_m − SGD, AsyncSAM_m − SAM_m (what independence and staleness cost at the
same m), SAM_m − SAM_b (does a smaller micro-batch help SAM) and AsyncSAM_m − SAM_b (does a
small b′ recover SAM's accuracy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from asam_theory.experiments.probe_runs import SETTINGS, Driver, Setting, train
from asam_theory.stats import minimum_detectable_effect, paired_interval, t_interval
from asam_theory.validation import check_int

__all__ = ["MS", "compare", "drivers", "run_msharp"]

#: the micro-batch / ascent-batch sizes compared
MS: tuple[int, ...] = (8, 16, 32, 64)


def drivers(ms: Sequence[int] = MS) -> tuple[Driver, ...]:
    """SGD, then SAM with micro-batch m and AsyncSAM (τ = 1) with b′ = m for each m."""
    ms = [check_int("m", m, low=1) for m in ms]
    return (Driver("sgd", "sgd"),
            *(Driver(f"sam_m{m}", "sam_micro", tau=0, bprime=m) for m in ms),
            *(Driver(f"asyncsam_m{m}", "asyncsam", tau=1, bprime=m) for m in ms))


def _task(config: dict[str, Any]) -> dict[str, Any]:
    """One run from a picklable config (one intra-op thread; the pool runs configs side by
    side)."""
    setting, driver = Setting(**config["setting"]), Driver(**config["driver"])
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = train(setting, driver, int(config["seed"]), keep=0)
    finally:
        torch.set_num_threads(prev)
    return {"driver": driver.name, "seed": int(config["seed"]), "test_acc": out["test_acc"],
            "val_acc": out["val_acc"], "final_loss": out["final_loss"],
            "collapsed": out["collapsed"], "collapse": out["collapse"]}


def run_msharp(setting: Setting = SETTINGS[0], seeds: Sequence[int] = range(10),
               ms: Sequence[int] = MS, executor: Executor | None = None,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every driver of :func:`drivers` on every seed (``executor``: e.g. a process pool;
    ``None``: here, in order), then :func:`compare`."""
    configs = [{"setting": asdict(setting), "driver": asdict(d), "seed": int(s)}
               for s in seeds for d in drivers(ms)]
    results = map(_task, configs) if executor is None else executor.map(_task, configs)
    rows = []
    for r in results:
        rows.append(r)
        if progress is not None:
            progress(f"{r['driver']} seed {r['seed']}: {100 * r['test_acc']:.1f} %")
    return {"setting": asdict(setting), "seeds": list(seeds), "ms": list(ms), "runs": rows,
            **compare(rows, ms, setting.batch_size)}


def compare(rows: Sequence[dict[str, Any]], ms: Sequence[int], b: int,
            confidence: float = 0.95) -> dict[str, Any]:
    """Per-method accuracy (mean, t-interval, collapsed runs) and the paired comparisons of the
    module docstring (seeds present for both methods pair up)."""
    acc: dict[str, dict[int, float]] = {}
    collapsed: dict[str, int] = {}
    for r in rows:
        acc.setdefault(r["driver"], {})[r["seed"]] = float(r["test_acc"])
        collapsed[r["driver"]] = collapsed.get(r["driver"], 0) + bool(r["collapsed"])
    methods = {}
    for name, by_seed in acc.items():
        ci = t_interval(list(by_seed.values()), confidence)
        methods[name] = {"mean_pct": 100 * ci["mean"], "ci_pct": [100 * ci["low"],
                                                                    100 * ci["high"]],
                         "n": ci["n"], "collapsed": collapsed[name]}
    full = f"sam_m{b}" if f"sam_m{b}" in acc else None
    pairs = []
    for m in ms:
        pairs += [(f"sam_m{m}", "sgd"), (f"asyncsam_m{m}", "sgd"),
                  (f"asyncsam_m{m}", f"sam_m{m}")]
        if full is not None and m != b:  # (at m = b both are the pairs above)
            pairs += [(f"sam_m{m}", full), (f"asyncsam_m{m}", full)]
    comparisons = []
    for a, c in pairs:
        if a not in acc or c not in acc:
            continue
        seeds = sorted(set(acc[a]) & set(acc[c]))
        x = [acc[a][s] for s in seeds]
        y = [acc[c][s] for s in seeds]
        diff = np.subtract(x, y)
        lo, hi = paired_interval(x, y, confidence=confidence)
        sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
        comparisons.append({"a": a, "b": c, "diff_pp": 100 * float(diff.mean()),
                            "ci_pp": [100 * lo, 100 * hi],
                            "mde_pp": 100 * minimum_detectable_effect(sd, len(diff)),
                            "n": len(diff)})
    return {"methods": methods, "comparisons": comparisons}


def markdown(result: dict[str, Any]) -> str:
    """The comparison as two Markdown tables (methods; paired differences)."""
    lines = ["| method | test acc % [95 % CI] | collapsed |", "|---|---|---|"]
    for name, m in result["methods"].items():
        lines.append(f"| {name} | {m['mean_pct']:.1f} [{m['ci_pct'][0]:.1f}, "
                     f"{m['ci_pct'][1]:.1f}] | {m['collapsed']} of {m['n']} |")
    lines += ["", "| comparison | diff, pp [95 % CI] | MDE, pp | seeds |", "|---|---|---|---|"]
    for c in result["comparisons"]:
        lines.append(f"| {c['a']} − {c['b']} | {c['diff_pp']:+.1f} [{c['ci_pp'][0]:+.1f}, "
                     f"{c['ci_pp'][1]:+.1f}] | {c['mde_pp']:.1f} | {c['n']} |")
    return "\n".join(lines)
