"""``asam-theory train``: the real-data leaderboard.

Every method (SGD, SAM, AsyncSAM τ = 1 with b′ tuned from measured timings, AsyncSAM with
the look-ahead ascent batch, SAMPa-0.2) × data set (MNIST-1D, digits; 20 % symmetric label
noise on the training labels) × model (MLP, CNN) × seeds, each method's lr/ρ chosen on the
validation split over at least 3 selection seeds (a grid point where a selection seed
collapsed is ruled out); test accuracy with 95 % intervals and every collapsed run flagged per
seed, interleaved time per step with an idle second core and with equal resources (AsyncSAM
at b′ = b/8 there, its accuracy at that b′ and at b/2 reported too), counted gradient
evaluations, AsyncSAM's staleness and penalty fidelity, and its crossover against model width
(:mod:`asam_theory.experiments.leaderboard`).  Writes ``DIR/index.html`` (self-contained),
``DIR/results.json`` and ``DIR/figures/``.

``--quick`` (about 3 min on 2 idle cores): MLPs only, 2 seeds, 150 steps, a 2-point ρ grid,
3 selection seeds, one timing round.  Default (about 30 min on 2 idle cores — estimated from the
former 20 min with one selection seed: the selection runs triple): MLP and CNN, 5 seeds, 2,000
steps on MNIST-1D and 600 on digits, lr ∈ {0.05, 0.1} × ρ ∈ {0.05, 0.1}, 3 selection
seeds.  MNIST-1D needs the ``data`` extra (``pip install "asam-theory[data]"``).

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
    parser.add_argument("--out", default="leaderboard", metavar="DIR",
                        help="output folder, created before any run: DIR/index.html, "
                             "DIR/results.json and DIR/figures/")
    parser.add_argument("--quick", action="store_true",
                        help="small setting (MLPs, 2 seeds, 150 steps; about a minute)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="evaluation seeds, >= 2 (default: 5; quick: 2)")
    parser.add_argument("--selection-seeds", type=int, default=3, metavar="N",
                        help="selection seeds per grid point, >= 3 (seeds 1000, 1001, ...; "
                             "never evaluation seeds)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per run, >= 1 (default: 2000 on mnist1d and 600 on digits; "
                             "quick: 150)")
    parser.add_argument("--datasets", default="mnist1d,digits", metavar="LIST",
                        help="comma list of data sets: mnist1d (needs the data extra), "
                             "digits, and with --data-root cifar10, cifar100")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="folder with a local copy of CIFAR-10/100 in torchvision's "
                             "format (cifar-10-batches-py/, cifar-100-python/); nothing is "
                             "downloaded (default: none)")
    parser.add_argument("--models", default=None, metavar="LIST",
                        help="comma list of mlp, cnn, mlp-bn, cnn-bn, and resnet20 for "
                             "the CIFAR data sets (default: mlp,cnn; quick: mlp)")
    parser.add_argument("--methods", default=None, metavar="LIST",
                        help="comma list of method names (default: all)")
    parser.add_argument("--label-noise", type=float, default=0.2, metavar="P",
                        help="fraction of training labels replaced by a uniformly drawn "
                             "class, in [0, 1)")
    parser.add_argument("--batch-size", type=int, default=64, help="minibatch size (>= 1)")
    parser.add_argument("--lrs", default=None, metavar="LIST",
                        help="lr grid, comma list (default: 0.05,0.1; quick: 0.1)")
    parser.add_argument("--rhos", default=None, metavar="LIST",
                        help="rho grid, comma list (default: 0.05,0.1)")
    parser.add_argument("--timing-rounds", type=int, default=None, metavar="N",
                        help="interleaved timing rounds, >= 1 (default: 5; quick: 1)")
    parser.add_argument("--widths", default=None, metavar="LIST",
                        help="crossover MLP widths, comma list (default: 64,256,1024,2048; "
                             "quick: 64,512)")
    parser.add_argument("--no-crossover", action="store_true",
                        help="skip the crossover against model width")
    parser.add_argument("--markdown", default=None, metavar="FILE.md",
                        help="also write the leaderboard as a Markdown page (e.g. "
                             "docs/results.md), its figures copied beside it into FILE/ "
                             "(default: none)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="processes for the training runs (selection and evaluation; "
                             "b' tuning and timing always run alone, the pool idle); the "
                             "threaded methods' staleness then reflects the shared cores and "
                             "is reported")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _floats(text: str | None, default: tuple[float, ...], option: str = "--lrs"
            ) -> tuple[float, ...]:
    if text is None:
        return default
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise ValueError(f"{option} must be a comma list of numbers > 0, got {text!r}") from exc
    if not vals or any(not (v > 0 and v < float("inf")) for v in vals):
        raise ValueError(f"{option} must be a comma list of numbers > 0, got {text!r}")
    return vals


def build_config(args: argparse.Namespace):
    """The :class:`LeaderboardConfig` and method list for these arguments."""
    from asam_theory.data import DATASETS, LOCAL_DATASETS
    from asam_theory.experiments.leaderboard import (
        LeaderboardConfig,
        catalogue_methods,
        default_methods,
    )
    from asam_theory.experiments.models import IMAGE_MODEL_KINDS, MODEL_KINDS

    q = args.quick
    datasets = tuple(d.strip() for d in args.datasets.split(",") if d.strip())
    for d in datasets:
        if d not in DATASETS + LOCAL_DATASETS:
            raise ValueError(f"--datasets: {d!r} is not one of {list(DATASETS + LOCAL_DATASETS)}")
    local = [d for d in datasets if d in LOCAL_DATASETS]
    if local and args.data_root is None:
        raise ValueError(f"--datasets {','.join(local)} are read from a local copy: give its "
                         "folder with --data-root DIR (torchvision's format; nothing downloads)")
    if args.data_root is not None and not local:
        raise ValueError("--data-root applies to the local data sets "
                         f"{list(LOCAL_DATASETS)} only, none of which is in --datasets")
    if args.data_root is not None and not Path(args.data_root).is_dir():
        raise ValueError(f"--data-root {args.data_root!r} is not a folder")
    models = tuple(m.strip() for m in (args.models or ("mlp" if q else "mlp,cnn")).split(",")
                   if m.strip())
    for m in models:
        if m not in MODEL_KINDS + IMAGE_MODEL_KINDS:
            raise ValueError(f"--models: {m!r} is not one of "
                             f"{list(MODEL_KINDS + IMAGE_MODEL_KINDS)}")
        if m in IMAGE_MODEL_KINDS and any(d not in LOCAL_DATASETS for d in datasets):
            raise ValueError(f"--models {m} takes 32 x 32 colour images: use it with "
                             f"--datasets among {list(LOCAL_DATASETS)} only")
    from asam_theory.validation import check_int, check_real

    if args.seeds is not None:
        check_int("--seeds", args.seeds, low=2, high=999)
    check_int("--selection-seeds", args.selection_seeds, low=3)
    if args.steps is not None:
        check_int("--steps", args.steps, low=1)
    if args.timing_rounds is not None:
        check_int("--timing-rounds", args.timing_rounds, low=1)
    check_int("--batch-size", args.batch_size, low=1)
    check_real("--label-noise", args.label_noise, low=0.0, high=1.0, high_open=True)
    lrs = _floats(args.lrs, (0.1,) if q else (0.05, 0.1), "--lrs")
    rhos = _floats(args.rhos, (0.05, 0.1), "--rhos")
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
    # CIFAR: 5 epochs of its 40,000 training images at b = 64 (quick: as the others)
    steps.update(dict.fromkeys(LOCAL_DATASETS, 150 if q else 3125))
    if args.steps is not None:
        steps = dict.fromkeys(steps, args.steps)
    widths = (64, 512) if q else (64, 256, 1024, 2048)
    if args.widths:
        try:
            widths = tuple(int(w) for w in args.widths.split(",") if w.strip())
        except ValueError as exc:
            raise ValueError(f"--widths must be a comma list of integers >= 1, got "
                             f"{args.widths!r}") from exc
        if not widths or min(widths) < 1:
            raise ValueError(f"--widths must be a comma list of integers >= 1, got "
                             f"{args.widths!r}")
    cfg = LeaderboardConfig(
        datasets=datasets, models=models,
        seeds=args.seeds if args.seeds is not None else (2 if q else 5),
        selection_seeds=args.selection_seeds,
        steps=steps, batch_size=args.batch_size, label_noise=args.label_noise,
        timing_rounds=args.timing_rounds or (1 if q else 5),
        timing_steps=10 if q else 60, timing_warmup=3 if q else 10,
        crossover_dataset=datasets[0], crossover_widths=widths,
        crossover_rounds=1 if q else 3, crossover_steps=10 if q else 40,
        data_root=None if args.data_root is None else str(args.data_root),
    )
    return cfg, methods


def run(args: argparse.Namespace) -> int:
    from asam_theory.commands.common import check_out_dir
    from asam_theory.experiments.leaderboard import run_leaderboard
    from asam_theory.report.leaderboard import (
        leaderboard_rows,
        write_leaderboard,
        write_leaderboard_markdown,
    )
    from asam_theory.sweeps import make_executor
    from asam_theory.validation import check_int

    cfg, methods = build_config(args)
    check_int("--jobs", args.jobs, low=1)
    if args.markdown is not None and not str(args.markdown).endswith(".md"):
        raise ValueError(f"--markdown must name a .md file, got {args.markdown!r}")
    check_out_dir("--out", args.out)  # before any run
    with make_executor(args.jobs) as executor:
        payload = run_leaderboard(cfg, methods, progress=not args.no_progress,
                                  with_crossover=not args.no_crossover, executor=executor,
                                  jobs=args.jobs)
    out = Path(args.out)
    mode = "quick" if args.quick else "default"
    command = "asam-theory " + " ".join(shlex.quote(a) for a in sys.argv[1:]) \
        if sys.argv and sys.argv[0].endswith("asam-theory") else "asam-theory train"
    paths = write_leaderboard(out, payload, command=command, mode=mode)
    if args.markdown is not None:
        md = write_leaderboard_markdown(args.markdown, payload, out / "figures",
                                        command=command, mode=mode)
        print(f"wrote {md}")
    for row in leaderboard_rows(payload["results"]):
        print(f"{row['dataset']:8s} {row['model']:6s} {row['method']:9s} "
              f"{row['test acc [95% CI]']} (collapsed {row['collapsed seeds']})  "
              f"{row['ms/step idle 2nd core']:8.3f} ms/step "
              f"(x{row['× SGD']}; equal {row['× SGD (equal)']})  "
              f"{row['grad evals/step']:.2f} grads/step", flush=True)
    print(f"wrote {paths['index']} and {paths['results']} ({payload['wall_s']:.0f} s)")
    return 0
