r"""Engine overhead: simulate() time over the raw cost of the same gradient evaluations.

Workload (issue: foundation benchmark): AsyncSAM (τ = 2, normalised, exact oracle) on a
rotated d = 100 quadratic, 1,000 seeds × 2,000 steps.  One AsyncSAM step evaluates two
gradients, each an ``(M, d) @ (d, d)`` product, so the raw cost is ``2 × steps`` such
products done back to back ("bare batched matrix products", with the subtraction of
:math:`Hx^\*` the gradient also needs left out).  The ratio engine/raw is measured in one
process with the two timings interleaved (A, B, A, B, …) and the median of the per-repeat
ratios is printed.  Target at one BLAS thread: ≤ 1.3.

Wall-clock ratios suffer when other processes share the cores; the thread's CPU time
(``time.thread_time``, exact at one BLAS thread, where all work runs on the calling thread)
is reported beside them as ``engine_over_raw_cpu``.  ``--kernels numpy`` swaps the fused
elementwise kernels (:mod:`asam_theory.methods._kernels`) for their numpy reference, for A/B
runs.

The engine runs the seeds in blocks sized for the L2 cache (``simulate``'s ``seed_block``;
two blocks of 500 here); ``--seed-block 1000`` runs them as one block, for A/B runs.

Run:  python benchmarks/engine_overhead.py [--repeats 5] [--seeds 1000] [--steps 2000]
      [--threads N] [--noise] [--kernels auto|numpy] [--seed-block N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from asam_theory.engine import simulate
from asam_theory.engine.simulate import block_rows
from asam_theory.methods import AsyncSAM, _kernels
from asam_theory.problems import Quadratic


def raw_cost(H: np.ndarray, x: np.ndarray, n_products: int) -> tuple[float, float]:
    """(wall, thread CPU) seconds of ``n_products`` bare ``x @ H`` products."""
    out = np.empty_like(x)
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(n_products):
        np.matmul(x, H, out=out)
    return time.perf_counter() - t0, time.thread_time() - c0


def engine_cost(problem, rule, x0, steps, n_seeds, noise: bool,
                seed_block: int | None = None) -> tuple[float, float]:
    """(wall, thread CPU) seconds of one :func:`simulate` run."""
    p = problem.with_noise(0.01) if noise else problem
    t0, c0 = time.perf_counter(), time.thread_time()
    simulate(p, rule, x0, steps, n_seeds, seed=0, record=("f",), every=steps,
             check_stability=False, seed_block=seed_block)
    return time.perf_counter() - t0, time.thread_time() - c0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--noise", action="store_true",
                    help="add Gaussian gradient noise (the raw cost still counts matmuls only)")
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS threads for both sides (default: the library's default)")
    ap.add_argument("--kernels", choices=("auto", "numpy"), default="auto",
                    help="elementwise kernels: the fastest available, or the numpy reference")
    ap.add_argument("--seed-block", type=int, default=None,
                    help="seeds per block of the engine (default: the engine's choice; "
                         "--seed-block SEEDS runs one block)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.kernels == "numpy":
        for name, fn in _kernels.NUMPY_KERNELS.items():
            setattr(_kernels, name, fn)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(args.threads):
            return _run(args)
    return _run(args)


def _run(args) -> dict:
    problem = Quadratic.from_spectrum("condition_number", args.dim, L=1.0, kappa=100.0,
                                      rotate=True, shift=True, seed=0)
    rule = AsyncSAM(lr=0.5, rho=0.05, tau=2)
    x0 = np.ones(args.dim)
    x = np.random.default_rng(0).standard_normal((args.seeds, args.dim))
    # full-batch-equivalent gradients per step (a float since b′ may differ from b)
    n_products = int(round(rule.cost.grads_per_step * args.steps))
    engine_cost(problem, rule, x0, 50, args.seeds, args.noise, args.seed_block)  # warm-up
    raw_cost(problem.hessian, x, 50)
    ratios, cpu_ratios, eng, raw = [], [], [], []
    load = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        e, ec = engine_cost(problem, rule, x0, args.steps, args.seeds, args.noise,
                            args.seed_block)
        r, rc = raw_cost(problem.hessian, x, n_products)
        eng.append(e)
        raw.append(r)
        ratios.append(e / r)
        cpu_ratios.append(ec / rc if rc > 0 else float("nan"))
    load.append(os.getloadavg()[0])
    kernels = "numpy" if args.kernels == "numpy" else _kernels.BACKEND
    rows = args.seed_block or block_rows(args.seeds, args.dim)
    result = {
        "workload": f"AsyncSAM tau=2, d={args.dim}, {args.seeds} seeds x {args.steps} steps"
                    + (", Gaussian noise" if args.noise else ", exact oracle")
                    + (f", {args.threads} BLAS thread(s)" if args.threads else "")
                    + f", {kernels} kernels, seed blocks of {rows}",
        "engine_over_raw": statistics.median(ratios),
        "engine_over_raw_per_repeat": ratios,
        "engine_over_raw_cpu": statistics.median(cpu_ratios),
        "engine_over_raw_cpu_per_repeat": cpu_ratios,
        "engine_s_median": statistics.median(eng), "raw_s_median": statistics.median(raw),
        "kernels": kernels, "threads": args.threads, "repeats": args.repeats,
        "seed_block": rows, "seed_blocks": -(-args.seeds // rows),
        "loadavg_1min": {"start": load[0], "end": load[1]}, "cpu_count": os.cpu_count(),
        # names kept from earlier versions of this script
        "ratio_median": statistics.median(ratios), "ratios": ratios,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['workload']}: engine {result['engine_s_median']:.3f} s, raw "
              f"{result['raw_s_median']:.3f} s, engine/raw median {result['ratio_median']:.3f} "
              f"(per repeat: {', '.join(f'{r:.3f}' for r in ratios)}); CPU-time ratio "
              f"{result['engine_over_raw_cpu']:.3f}")
    return result


if __name__ == "__main__":
    main()
