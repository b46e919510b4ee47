"""Variance budget of the real-data claims: per-seed SD of paired accuracy differences per
data set × model × budget, split into training-seed and test-set parts.

Runs the ablation's paired variants through the one training loop
(:mod:`asam_theory.experiments.ablation`: one initialisation, descent batches and independent
ascent batches per seed, shared by all variants; SGD, SAM and AsyncSAM's deterministic run) for
SGD, SAM, AsyncSAM and the look-ahead variant at b′ = b/2 — HEADLINE's variants — at one lr and
ρ for all (``--lr``, ``--rho``: HEADLINE tunes them per method, so its SDs may differ), keeps
each run's per-example test correctness and splits each paired difference's variance with
:func:`asam_theory.stats.paired_variance_budget`; prints, per cell and comparison, the mean, the
per-seed SD and its parts, the minimum detectable effect at the cell's seeds and the seeds a
1 pp margin needs (:func:`asam_theory.stats.minimum_detectable_effect`, :func:`seeds_needed`).

    python benchmarks/variance_budget.py [--seeds 8] [--jobs 1] [--cells NAME ...] [--out F]
        [--lr 0.05] [--rho 0.05]

Cells (``--cells``): see :data:`CELLS`.  MNIST-1D cells use 10,000 test sequences.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace

import numpy as np

from asam_theory.experiments.ablation import SAM, SGD, Recipe, Variant, _config, _sweep
from asam_theory.stats import minimum_detectable_effect, paired_variance_budget, seeds_needed

ASYNCSAM_BP2 = Variant("asyncsam_bp2", tau=1, ascent="independent", ascent_fraction=0.5)
LOOKAHEAD_BP2 = Variant("lookahead_bp2", tau=1, ascent="same", ascent_fraction=0.5)
VARIANTS = (SGD, SAM, ASYNCSAM_BP2, LOOKAHEAD_BP2)
#: (minuend, subtrahend) of each reported difference
PAIRS = (("sam", "sgd"), ("asyncsam_bp2", "sam"), ("lookahead_bp2", "sam"))
#: HEADLINE's three settings first (asam_theory.claims.headline.SETTINGS), then others
CELLS = {
    "digits-cnn-600": Recipe(model="cnn", steps=600),
    "digits-clean-cnn-600": Recipe(model="cnn", steps=600, label_noise=0.0),
    "mnist1d-cnn-1000": Recipe(model="cnn", dataset="mnist1d", steps=1000, test_size=10_000),
    "digits-cnn-300": Recipe(model="cnn", steps=300),
    "digits-mlp-600": Recipe(model="mlp", steps=600),
    "mnist1d-mlp-2000": Recipe(model="mlp", dataset="mnist1d", steps=2000, test_size=10_000),
}
MARGIN = 0.01


def run_cell(name: str, recipe: Recipe, seeds: list[int], executor) -> dict:
    t0 = time.perf_counter()
    configs = [{**_config(v, recipe, s, 0), "per_example": True} for s in seeds
               for v in VARIANTS]
    rows = _sweep(configs, executor, False, name)
    hits = {v.name: np.stack([r["test_correct"] for r in rows if r["variant"]["name"] == v.name])
            for v in VARIANTS}
    acc = {k: h.mean(axis=1).tolist() for k, h in hits.items()}
    collapsed = {v.name: [r["collapsed"] for r in rows if r["variant"]["name"] == v.name]
                 for v in VARIANTS}
    out = {"cell": name, "recipe": asdict(recipe), "seeds": seeds, "per_seed": acc,
           "collapsed": collapsed,
           "wall_s": time.perf_counter() - t0, "pairs": []}
    for a, b in PAIRS:
        vb = paired_variance_budget(hits[a], hits[b])
        n = len(seeds)
        vb.update(pair=f"{a} - {b}",
                  mde=minimum_detectable_effect(vb["sd_per_seed"], n,
                                                floor_var=vb["sd_test_common"] ** 2),
                  seeds_for_1pp=seeds_needed(vb["sd_per_seed"], MARGIN,
                                             floor_var=vb["sd_test_common"] ** 2))
        out["pairs"].append(vb)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--cells", nargs="*", default=list(CELLS))
    ap.add_argument("--out", default=None)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--rho", type=float, default=0.05)
    args = ap.parse_args()
    seeds = list(range(args.seeds))
    ex = ProcessPoolExecutor(args.jobs) if args.jobs > 1 else None
    results = []
    for name in args.cells:
        res = run_cell(name, replace(CELLS[name], lr=args.lr, rho=args.rho), seeds, ex)
        results.append(res)
        print(f"## {name} ({res['wall_s']:.0f} s)  means: " + ", ".join(
            f"{k} {np.mean(v):.4f} (collapsed {sum(c is not None for c in res['collapsed'][k])})"
            for k, v in res["per_seed"].items()), flush=True)
        for p in res["pairs"]:
            print(f"  {p['pair']:>26}: mean {100 * p['mean']:+.2f} pp, per-seed SD "
                  f"{100 * p['sd_per_seed']:.2f} (train {100 * p['sd_train']:.2f}, test "
                  f"{100 * p['sd_test']:.2f}, common {100 * p['sd_test_common']:.2f}) pp; MDE "
                  f"{100 * p['mde']:.2f} pp at {len(seeds)} seeds; seeds for 1 pp: "
                  f"{p['seeds_for_1pp']}", flush=True)
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
