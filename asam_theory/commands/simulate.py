"""``asam-theory simulate``: run the rules on a problem and print a summary table."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

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
    p.add_argument("--problem", choices=sorted(PROBLEMS), default="quadratic")
    p.add_argument("--dim", type=int, default=10)
    p.add_argument("--sigma2", type=float, default=0.01,
                   help="additive gradient-noise variance per sample (ignored by finite sums)")
    p.add_argument("--lr", type=float, default=None, help="step size (default 0.5 / L)")
    p.add_argument("--rho", type=float, default=0.05)
    p.add_argument("--tau", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--ascent-batch-size", type=int, default=None)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--n-seeds", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                   help="method names from asam_theory.methods.catalog, or 'all' "
                        f"({', '.join(method_names())})")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    if args.dim < 1:
        raise ValueError(f"--dim must be an integer in [1, inf], got {args.dim}")
    problem = PROBLEMS[args.problem](args.dim, args.seed)
    if args.sigma2 and not hasattr(problem, "n"):
        problem = problem.with_noise(args.sigma2)
    lr = 0.5 / problem.L if args.lr is None else args.lr
    common = {"lr": lr, "batch_size": args.batch_size}
    names = method_names() if args.methods == ["all"] else args.methods
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
    for rule in rules:
        tr = simulate(problem, rule, x0, args.steps, args.n_seeds, args.seed,
                      record=("f", "grad_norm2", "mean_grad_norm2"), every=max(1, args.steps))
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
    print(f"{type(problem).__name__} d={problem.dim} L={problem.L:.4g} lr={lr:.4g} "
          f"rho={args.rho} tau={args.tau} steps={args.steps} seeds={args.n_seeds}")
    print(f"{'rule':<10}{'grads':>6}{'depth':>6}{'E f':>14}{'E|grad|^2':>14}"
          f"{'avg_t E|grad|^2':>17}{'diverged':>10}")
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:.4e}"  # noqa: E731
        print(f"{r['rule']:<10}{r['grads/step']:>6.3g}{r['depth']:>6.3g}{fmt(r['f']):>14}"
              f"{fmt(r['grad_norm2']):>14}{fmt(r['mean_grad_norm2']):>17}{r['diverged']:>10}")
    return 0
