"""``asam-theory simulate``: run the rules on a problem and print a summary table."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import numpy as np

from asam_theory.commands.common import print_grouped
from asam_theory.engine import simulate
from asam_theory.methods import get_method, method_names
from asam_theory.problems import (
    CauchyRegression,
    FiniteSumQuadratic,
    MatrixFactorization,
    Quadratic,
    SoftmaxRegression,
    TwoBasin,
)

NAME = "simulate"
HELP = ("Simulate the catalogued methods (SGD, SAM, AsyncSAM and the efficient-SAM peers) on a "
        "problem and print a summary table.")
DEFAULT_METHODS = ("sgd", "sam", "usam", "asyncsam", "sampa")

PROBLEMS = {
    "quadratic": lambda d, seed: Quadratic.from_spectrum("condition_number", d, L=1.0,
                                                         kappa=20.0, rotate=True, shift=True,
                                                         seed=seed),
    "finite_sum": lambda d, seed: FiniteSumQuadratic.random(32, d, seed=seed),
    "two_basin": lambda d, seed: TwoBasin(d, radius=2.0),
    "cauchy": lambda d, seed: CauchyRegression(64, d, seed=seed),
    "matrix_factorization": lambda d, seed: MatrixFactorization(4, 3, 2, seed=seed),
    "softmax": lambda d, seed: SoftmaxRegression.random(60, d, 3, seed=seed),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--problem", choices=sorted(PROBLEMS), default="quadratic",
                   help="the problem: quadratic (rotated, shifted, condition number 20), "
                        "finite_sum (32 random quadratics), two_basin, cauchy (Cauchy "
                        "regression, 64 points), matrix_factorization, softmax (softmax "
                        "regression, 60 points, 3 classes)")
    p.add_argument("--dim", type=int, default=10,
                   help="dimension d of the parameter (matrix_factorization fixes its own)")
    p.add_argument("--sigma2", type=float, default=0.01,
                   help="additive gradient-noise variance per coordinate and sample, "
                        "sigma2_per_coord (the theorems' sigma^2 is d times it); 0 for exact "
                        "gradients; ignored by finite sums, whose noise is their sampling")
    p.add_argument("--lr", type=float, default=None,
                   help="step size eta > 0 (default: 0.5 / L of the problem)")
    p.add_argument("--rho", type=float, default=0.05, help="SAM radius rho >= 0")
    p.add_argument("--tau", type=int, default=1,
                   help="staleness tau >= 0 of AsyncSAM's perturbation, in steps")
    p.add_argument("--batch-size", type=int, default=1, help="descent minibatch size b >= 1")
    p.add_argument("--ascent-batch-size", type=int, default=None,
                   help="ascent minibatch size b' >= 1 (default: the descent batch size)")
    p.add_argument("--steps", type=int, default=1000, help="steps per run (>= 1)")
    p.add_argument("--n-seeds", type=int, default=100,
                   help="independent runs (seeds) averaged per method (>= 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="master seed (>= 0): seeds seed, seed + 1, ... and the problem's draw")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), metavar="NAME",
                   help="method names from asam_theory.methods.catalog, or 'all' "
                        f"({', '.join(method_names())})")
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON on stdout instead of a table")


def _validate(args: argparse.Namespace) -> list[str]:
    """Every argument checked before any work; returns the method names."""
    from asam_theory.validation import check_int, check_nonnegative, check_positive

    check_int("--dim", args.dim, low=1)
    check_nonnegative("--sigma2", args.sigma2)
    if args.lr is not None:
        check_positive("--lr", args.lr)
    check_nonnegative("--rho", args.rho)
    check_int("--tau", args.tau, low=0)
    check_int("--batch-size", args.batch_size, low=1)
    if args.ascent_batch_size is not None:
        check_int("--ascent-batch-size", args.ascent_batch_size, low=1)
    check_int("--steps", args.steps, low=1)
    check_int("--n-seeds", args.n_seeds, low=1)
    check_int("--seed", args.seed, low=0)
    names = method_names() if args.methods == ["all"] else list(args.methods)
    for n in names:
        if n not in method_names():
            raise ValueError(f"--methods must name methods among {method_names()} or be "
                             f"'all', got {n!r}")
    return names


def run(args: argparse.Namespace) -> int:
    names = _validate(args)
    base = PROBLEMS[args.problem](args.dim, args.seed)
    problem = base
    if args.sigma2 and not hasattr(base, "n"):
        problem = base.with_noise(args.sigma2)
    lr = 0.5 / problem.L if args.lr is None else args.lr
    common = {"lr": lr, "batch_size": args.batch_size}
    methods = [get_method(n) for n in names]
    rules = []
    for m in methods:
        if m.rule.needs_finite_sum and not hasattr(problem, "n"):
            print(f"skipping {m.name}: it needs a finite-sum problem (--problem finite_sum "
                  "or cauchy)", file=sys.stderr)
            continue
        if not getattr(m.rule, "supports", lambda p: True)(problem):
            print(f"skipping {m.name}: it needs a classification problem (--problem softmax)",
                  file=sys.stderr)
            continue
        rules.append(m.build(**common, rho=args.rho, tau=args.tau,
                             ascent_batch_size=args.ascent_batch_size))
    x0 = np.full(problem.dim, 0.5) if args.problem != "two_basin" else np.r_[
        0.0, np.full(problem.dim - 1, 0.5)]
    rows = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = [(rule, simulate(problem, rule, x0, args.steps, args.n_seeds, args.seed,
                                record=("f", "grad_norm2", "mean_grad_norm2"),
                                every=max(1, args.steps))) for rule in rules]
    print_grouped(NAME, caught)
    for rule, tr in runs:
        s = tr.summary()
        rows.append({"rule": rule.name, "grads/step": rule.cost.grads_per_step,
                     "depth": rule.cost.sequential_depth,
                     "forwards/step": rule.cost.forwards_per_step, "f": s["f"],
                     "grad_norm2": s["grad_norm2"], "mean_grad_norm2": s["mean_grad_norm2"],
                     "diverged": s["n_diverged"]})
    if args.json:
        print(json.dumps({"problem": problem.config(), "constants": problem.constants(),
                          "lr": lr, "rows": rows}, indent=2))
        return 0
    noise = (f"sigma2_per_coord={args.sigma2:g}" if problem is not base else
             "noise: minibatch sampling" if hasattr(base, "n") else "exact gradients")
    print(f"{args.problem} ({type(base).__name__}) d={problem.dim} L={problem.L:.4g} "
          f"{noise} lr={lr:.4g} rho={args.rho} tau={args.tau} steps={args.steps} "
          f"seeds={args.n_seeds}")
    print(f"{'rule':<10}{'grads':>6}{'depth':>6}{'E f':>14}{'E|grad|^2':>14}"
          f"{'avg_t E|grad|^2':>17}{'diverged':>10}")
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:.4e}"  # noqa: E731
        print(f"{r['rule']:<10}{r['grads/step']:>6.3g}{r['depth']:>6.3g}{fmt(r['f']):>14}"
              f"{fmt(r['grad_norm2']):>14}{fmt(r['mean_grad_norm2']):>17}{r['diverged']:>10}")
    return 0
