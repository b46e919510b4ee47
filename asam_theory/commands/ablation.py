"""``asam-theory ablation``: where AsyncSAM loses SAM's gain, by a paired ablation.

Runs :func:`asam_theory.experiments.ablation.full_ablation` (sequential emulation; initialisation,
descent and independent ascent batches shared by seed) and prints, per study, the
decomposition table (paired difference in percentage points, Student-t 95 % interval, share of
the SAM − AsyncSAM gap) and the mean cosine of each variant's perturbation to SAM's fresh
direction.  Settings:

* ``--quick`` — MLP, 40 steps, 2 seeds, the core variants (seconds);
* default — CNN with BatchNorm, 300 steps, 4 seeds, the six standard variants (minutes);
* ``--full`` — CNN, 600 steps, 10 seeds, the standard variants with τ ∈ {1, 2, 4} (same
  batch) and b′ ∈ {b/8, b/4, b/2, b} (independent batch), with and without BatchNorm, and ρ
  re-chosen per variant from {0.02, 0.05, 0.1, 0.2} on the validation split (3 selection
  seeds): 440 runs at most; about 30 min on 2 cores with ``--workers 2``.

``--dataset mnist1d`` runs the same grid on MNIST-1D (:mod:`asam_theory.data`, its models
from :mod:`asam_theory.experiments.models`).  ``--json`` prints the whole result (per-seed
accuracies, cosines, tables, chosen ρ) as JSON on stdout; ``--json-out FILE`` writes it to
FILE.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

NAME = "ablation"
HELP = "paired ablation of AsyncSAM's gap to SAM (staleness, batch independence, b', BN, rho)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="tiny setting (seconds)")
    mode.add_argument("--full", action="store_true",
                      help="the real grid: BN on/off, rho re-chosen, 10 seeds (~30 min, 2 cores)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="paired seeds 0, 1, ..., >= 2 (default: 4; quick 2; full 10)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per run, >= 1 (default: 300; quick 40; full 600)")
    parser.add_argument("--model", choices=("mlp", "cnn"), default=None,
                        help="the model (default: cnn; quick: mlp)")
    parser.add_argument("--dataset", choices=("digits", "mnist1d"), default="digits",
                        help="noisy digits (default) or MNIST-1D (the data extra)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes running side by side (default: 2 with --full, else 1)")
    parser.add_argument("--fidelity-every", type=int, default=None, metavar="K",
                        help="measure the cosine to SAM's direction every K steps, 0 never "
                             "(default: 20; quick 5)")
    parser.add_argument("--json", action="store_true",
                        help="print the full result as JSON on stdout instead of the tables")
    parser.add_argument("--json-out", default=None, metavar="FILE",
                        help="also write the full result as JSON to FILE (checked before any "
                             "run; default: none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ablation's arguments for the chosen mode, overridden by explicit options."""
    from asam_theory.experiments.ablation import (
        BPRIME_SWEEP,
        CORE,
        RHO_GRID,
        STANDARD,
        TAU_SWEEP,
        Recipe,
    )
    from asam_theory.validation import check_int

    core = list(CORE)
    if args.quick:
        model, steps, seeds, variants, every, workers = "mlp", 40, 2, core, 5, 1
        extra = dict(batchnorm_off=False, rho_grid=())
    elif args.full:
        model, steps, seeds, every, workers = "cnn", 600, 10, 20, 2
        variants = list(STANDARD) + list(TAU_SWEEP) + list(BPRIME_SWEEP)
        extra = dict(batchnorm_off=True, rho_grid=RHO_GRID)
    else:
        model, steps, seeds, variants, every, workers = "cnn", 300, 4, list(STANDARD), 20, 1
        extra = dict(batchnorm_off=False, rho_grid=())
    steps = check_int("--steps", args.steps, low=1) if args.steps is not None else steps
    seeds = check_int("--seeds", args.seeds, low=2) if args.seeds is not None else seeds
    workers = check_int("--workers", args.workers, low=1) if args.workers is not None \
        else workers
    every = check_int("--fidelity-every", args.fidelity_every, low=0) \
        if args.fidelity_every is not None else every
    recipe = Recipe(model=args.model or model, steps=steps, dataset=args.dataset)
    return dict(variants=variants, recipe=recipe, seeds=list(range(seeds)),
                fidelity_every=every, workers=workers, **extra)


def _print(res: dict[str, Any]) -> None:
    for study in ("batchnorm", "no_batchnorm", "rho_chosen"):
        if study not in res:
            continue
        s = res[study]
        rec = s["recipe"]
        print(f"\n== {study}: {rec['dataset']}, {rec['model']}, BatchNorm {rec['batchnorm']}, "
              f"{rec['steps']} steps, {len(s['seeds'])} paired seeds")
        if "rho" in s:
            print("   rho chosen on validation: "
                  + ", ".join(f"{k} {v:g}" for k, v in s["rho"].items()))
        print("   mean test accuracy: "
              + ", ".join(f"{k} {sum(v) / len(v):.4f}" for k, v in s["per_seed"].items()))
        if s["fidelity"]:
            print("   cosine to SAM's direction: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in s["fidelity"].items()))
        print(f"   {'comparison':48s} {'diff pp':>8s} {'95 % CI':>17s} {'share':>6s}")
        for r in s["table"]:
            share = "" if r["share_of_gap"] is None else f"{r['share_of_gap']:.2f}"
            print(f"   {r['comparison']:48s} {r['diff_pp']:8.2f} [{r['ci_low_pp']:6.2f}, "
                  f"{r['ci_high_pp']:6.2f}] {share:>6s}")
    print(f"\n{res['runs']} runs in {res['wall_s']:.0f} s")


def run(args: argparse.Namespace) -> int:
    from asam_theory.commands.common import check_out_file
    from asam_theory.experiments.ablation import full_ablation
    from asam_theory.sweeps import make_executor

    cfg = settings(args)
    if args.json_out:
        check_out_file("--json-out", args.json_out)
    workers = cfg.pop("workers")
    with make_executor(workers) as executor:  # a spawned process pool for workers > 1
        res = full_ablation(cfg.pop("variants"), cfg.pop("recipe"), cfg.pop("seeds"),
                            executor=executor, progress=not args.no_progress, **cfg)
    res["workers"] = workers
    text = json.dumps(res, indent=1)
    if args.json:
        print(text)
    else:
        _print(res)
    if args.json_out:
        path = Path(args.json_out)
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    return 0
