"""``asam-theory train``: the real-data leaderboard.

Every method (SGD, SAM, AsyncSAM τ = 1 with b′ tuned from measured timings, SAMPa-0.2) × data
set (MNIST-1D, digits; 20 % symmetric label noise on the training labels) × model (MLP, CNN) ×
seeds, each method's lr/ρ chosen on the validation split; test accuracy with 95 % intervals,
interleaved time per step with an idle second core and with equal resources, counted gradient
evaluations, AsyncSAM's staleness and penalty fidelity, and its crossover against model width
(:mod:`asam_theory.experiments.leaderboard`).  Writes ``DIR/index.html`` (self-contained),
``DIR/results.json`` and ``DIR/figures/``.

``--quick`` (≤ 2 min on 2 idle cores): MLPs only, 2 seeds, 150 steps, a 2-point ρ grid, one
timing round.  Default (≤ 20 min on 2 idle cores): MLP and CNN, 5 seeds, 2,000 steps on MNIST-1D
and 600 on digits, lr ∈ {0.05, 0.1} × ρ ∈ {0.05, 0.1}.  MNIST-1D needs the ``data`` extra
(``pip install "asam-theory[data]"``).

Two label settings: the default 20 % symmetric noise (where SAM's robustness shows) and clean
labels, ``--label-noise 0`` — the setting of the published MNIST-1D baselines (MLP 68 %, CNN
94 %; Greydanus & Kobak, arXiv 2011.14439), which claim ``BASELINES``
(:mod:`asam_theory.claims.baselines`) holds the leaderboard's SGD rows to at this budget.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

NAME = "train"
HELP = ("the real-data leaderboard: every method x MNIST-1D/digits (label noise) x model x "
        "seeds; index.html + results.json + figures")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="leaderboard", help="output directory")
    parser.add_argument("--quick", action="store_true", help="small setting (about a minute)")
    parser.add_argument("--seeds", type=int, default=None, help="evaluation seeds (>= 2)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per run (default per data set)")
    parser.add_argument("--datasets", default="mnist1d,digits")
    parser.add_argument("--models", default=None,
                        help="comma list of mlp, cnn, mlp-bn, cnn-bn (default mlp,cnn; "
                             "quick: mlp)")
    parser.add_argument("--methods", default=None, help="comma list (default: all)")
    parser.add_argument("--label-noise", type=float, default=0.2,
                        help="symmetric noise on the training labels (default 0.2); 0 gives "
                             "the clean-label setting of the published MNIST-1D baselines "
                             "(claim BASELINES)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lrs", default=None, help="lr grid, comma list")
    parser.add_argument("--rhos", default=None, help="rho grid, comma list")
    parser.add_argument("--timing-rounds", type=int, default=None)
    parser.add_argument("--widths", default=None, help="crossover MLP widths, comma list")
    parser.add_argument("--no-crossover", action="store_true")
    parser.add_argument("--no-progress", action="store_true")


def _floats(text: str | None, default: tuple[float, ...]) -> tuple[float, ...]:
    if text is None:
        return default
    return tuple(float(x) for x in text.split(",") if x.strip())


def build_config(args: argparse.Namespace):
    """The :class:`LeaderboardConfig` and method list for these arguments."""
    from asam_theory.data import DATASETS
    from asam_theory.experiments.leaderboard import (
        LeaderboardConfig,
        catalogue_methods,
        default_methods,
    )
    from asam_theory.experiments.models import MODEL_KINDS

    q = args.quick
    datasets = tuple(d.strip() for d in args.datasets.split(",") if d.strip())
    for d in datasets:
        if d not in DATASETS:
            raise ValueError(f"--datasets: {d!r} is not one of {list(DATASETS)}")
    models = tuple(m.strip() for m in (args.models or ("mlp" if q else "mlp,cnn")).split(",")
                   if m.strip())
    for m in models:
        if m not in MODEL_KINDS:
            raise ValueError(f"--models: {m!r} is not one of {list(MODEL_KINDS)}")
    lrs, rhos = _floats(args.lrs, (0.1,) if q else (0.05, 0.1)), _floats(args.rhos, (0.05, 0.1))
    # the built-in four, then every other method of the methods catalogue with a torch face
    methods = default_methods(lrs=lrs, rhos=rhos) + catalogue_methods(lrs=lrs, rhos=rhos)
    if args.methods:
        names = [m.strip() for m in args.methods.split(",") if m.strip()]
        known = [m.name for m in methods]
        for n in names:
            if n not in known:
                raise ValueError(f"--methods: {n!r} is not one of {known}")
        methods = [m for m in methods if m.name in names]
    steps = {"mnist1d": 150, "digits": 150} if q else {"mnist1d": 2000, "digits": 600}
    if args.steps is not None:
        steps = dict.fromkeys(steps, args.steps)
    widths = (64, 512) if q else (64, 256, 1024, 2048)
    if args.widths:
        widths = tuple(int(w) for w in args.widths.split(",") if w.strip())
    cfg = LeaderboardConfig(
        datasets=datasets, models=models,
        seeds=args.seeds if args.seeds is not None else (2 if q else 5),
        steps=steps, batch_size=args.batch_size, label_noise=args.label_noise,
        timing_rounds=args.timing_rounds or (1 if q else 5),
        timing_steps=10 if q else 60, timing_warmup=3 if q else 10,
        crossover_dataset=datasets[0], crossover_widths=widths,
        crossover_rounds=1 if q else 3, crossover_steps=10 if q else 40,
    )
    return cfg, methods


def run(args: argparse.Namespace) -> int:
    from asam_theory.experiments.leaderboard import run_leaderboard
    from asam_theory.report.leaderboard import leaderboard_rows, write_leaderboard

    cfg, methods = build_config(args)
    payload = run_leaderboard(cfg, methods, progress=not args.no_progress,
                              with_crossover=not args.no_crossover)
    out = Path(args.out)
    command = "asam-theory " + " ".join(shlex.quote(a) for a in sys.argv[1:]) \
        if sys.argv and sys.argv[0].endswith("asam-theory") else "asam-theory train"
    paths = write_leaderboard(out, payload, command=command,
                              mode="quick" if args.quick else "default")
    for row in leaderboard_rows(payload["results"]):
        print(f"{row['dataset']:8s} {row['model']:6s} {row['method']:9s} "
              f"{row['test acc [95% CI]']}  {row['ms/step idle 2nd core']:8.3f} ms/step "
              f"(x{row['× SGD']}; equal {row['× SGD (equal)']})  "
              f"{row['grad evals/step']:.2f} grads/step", flush=True)
    print(f"wrote {paths['index']} and {paths['results']} ({payload['wall_s']:.0f} s)")
    return 0
