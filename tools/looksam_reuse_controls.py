"""What LookSAM's reuse term does on the leaderboard's cells: LookSAM beside two controls.

Usage::

    python tools/looksam_reuse_controls.py --dataset digits --model mlp --lr 0.05 --rho 0.1 \
        --seeds 0,1,2,3,4 [--out looksam_controls.json]

On reuse steps LookSAM (Liu et al., CVPR 2022, arXiv 2203.02714) descends along
:math:`g+\\alpha\\|g\\|\\,g_v/\\|g_v\\|`: a term of norm α|g| in the direction of the SAM
gradient's part orthogonal to g, stored at the last refresh.  The SAM gradient's own orthogonal
part has norm |g_v|, a small fraction of |g| at the leaderboard's ρ, so the reuse term is many
times larger than what SAM changes.  Per seed, exactly as the leaderboard trains a cell
(``asam_theory.experiments.leaderboard.run_task``: data split, label noise, initialisation and
batches shared by seed; the chosen lr and ρ given here), this runs

* ``sgd``;
* ``looksam`` — :class:`asam_theory.torch.LookSAM`, k = 5, α = 0.7 (the catalogue's);
* ``looksam_alpha0`` — the same with α = 0: SAM every k-th step, plain SGD on the others;
* ``looksam_random`` — the reuse term's direction replaced by a random unit vector orthogonal
  to g, drawn afresh at each refresh (the same norm α|g|): if it gains what LookSAM gains, the
  gain comes from injecting a large orthogonal step, not from the SAM gradient's direction;

and writes test accuracy, whether the run collapsed (final training loss within 0.02 of ln C
and test accuracy below 1.5/C) and the final loss, per method and seed.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from asam_theory.experiments.leaderboard import (
    LeaderboardConfig,
    LeaderboardMethod,
    RunTask,
    run_task,
)
from asam_theory.stats import paired_interval
from asam_theory.torch.looksam import LookSAM


class RandomReuseLookSAM(LookSAM):
    """LookSAM whose stored direction is a random unit vector orthogonal to g (a control)."""

    def _orthogonal(self, g: list[torch.Tensor], g_s: list[torch.Tensor]) -> list[torch.Tensor]:
        gen = self.__dict__.setdefault("_control_gen", torch.Generator().manual_seed(12_345))
        z = [torch.randn(gi.shape, generator=gen, dtype=gi.dtype) for gi in g]
        return super()._orthogonal(g, z)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--model", default="mlp")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--rho", type=float, default=0.1)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--out", default="looksam_controls.json")
    a = p.parse_args()
    cfg = LeaderboardConfig()
    hp = {"lr": a.lr, "rho": a.rho}
    k, alpha = 5, 0.7
    path = "asam_theory.torch.looksam.LookSAM"
    methods = {
        "sgd": LeaderboardMethod("sgd", "SGD", ({"lr": a.lr},)),
        "looksam": LeaderboardMethod("looksam", "LookSAM", (hp,), {"k": k, "alpha": alpha},
                                     optimizer=path),
        "looksam_alpha0": LeaderboardMethod("looksam", "LookSAM a=0", (hp,),
                                            {"k": k, "alpha": 0.0}, optimizer=path),
        "looksam_random": LeaderboardMethod("looksam", "LookSAM random", (hp,),
                                            {"k": k, "alpha": alpha},
                                            optimizer=f"{__name__}.RandomReuseLookSAM"),
    }
    seeds = [int(s) for s in a.seeds.split(",")]
    ln_c = math.log(10)
    rows: dict[str, list[dict]] = {m: [] for m in methods}
    for s in seeds:
        for name, m in methods.items():
            r = run_task(RunTask(m, {"lr": a.lr} if name == "sgd" else hp, a.dataset, a.model,
                                 s, cfg, cfg.steps[a.dataset]))
            collapsed = abs(r.final_train_loss - ln_c) < 0.02 and r.test_acc < 0.15
            rows[name].append({"seed": s, "test_acc": r.test_acc,
                               "final_train_loss": r.final_train_loss, "collapsed": collapsed})
            print(json.dumps({"method": name, **rows[name][-1]}), flush=True)
    sgd = [r["test_acc"] for r in rows["sgd"]]
    summary = {}
    for name, rs in rows.items():
        acc = [r["test_acc"] for r in rs]
        lo, hi = paired_interval(acc, sgd, confidence=0.95)
        summary[name] = {"mean_pct": 100 * float(np.mean(acc)),
                         "gain_over_sgd_pp": 100 * float(np.mean(acc) - np.mean(sgd)),
                         "gain_ci_pp": [100 * lo, 100 * hi],
                         "collapsed": sum(r["collapsed"] for r in rs)}
        print(name, json.dumps(summary[name]))
    Path(a.out).write_text(json.dumps({"args": vars(a), "runs": rows, "summary": summary},
                                      indent=1))


if __name__ == "__main__":
    main()
