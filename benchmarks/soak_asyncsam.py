r"""Soak test of AsyncSAM's worker (thread or process backend): random delays in both roles,
every step checked.

Workload: :class:`asam_theory.torch.AsyncSAM` (SGD base, float64) on a rotated d = 8 quadratic
f(w) = ½ (w − x*)ᵀ H (w − x*). The descent closure adds a Gaussian linear term ξ·w (fresh ξ per
step, so the iterates keep moving and no two versions share a direction); the ascent loss is the
exact f, so the direction of version v is a pure function of w_v. Each role sleeps, with
probability ``p_delay`` per call, for an exponential time of mean ``mean_delay_s`` (independent
generators per role): the worker is sometimes ahead, sometimes behind, by several steps.

Checked at every step t (``violations`` lists every failure):

* no deadlock: every step finishes (a step that waits ``timeout`` seconds raises
  ``TimeoutError``; it, or any other exception from a step, is recorded and the run stops);
* staleness s_t within the window: s_t = t for t < τ (the start convention, version 0), else
  τ ≤ s_t ≤ max_staleness;
* never a direction from a future version, and the version tag is honest: the perturbation
  applied at step t, read inside the closure as (w_t + ρu) − w_t, equals ρ ∇f(w_v)/‖∇f(w_v)‖ at
  the iterate w_v, v = t − s_t, the main thread recorded (cosine > 1 − 1e-9; float64 rounding
  is ~1e-15, while consecutive iterates' directions differ by far more).

Run:  python benchmarks/soak_asyncsam.py [--steps 10000] [--tau 1] [--max-staleness 4]
      [--p-delay 0.1] [--mean-delay 0.0005] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

import numpy as np
import torch

from asam_theory.experiments.realrun import QuadraticLoss, RandomDelay
from asam_theory.problems import Quadratic
from asam_theory.torch import AsyncSAM, WorkerOptions

#: |1 − cos| allowed between the applied perturbation and the direction at the tagged version.
COS_TOL = 1e-9


def soak(
    steps: int = 10_000,
    tau: int = 1,
    max_staleness: int = 4,
    p_delay: float = 0.1,
    mean_delay_s: float = 5e-4,
    seed: int = 0,
    lr: float = 0.05,
    rho: float = 0.1,
    noise: float = 0.3,
    timeout: float = 30.0,
    backend: str = "thread",
) -> dict:
    """Run the soak; returns counts, the staleness histogram, waits and the violations."""
    p = Quadratic(eigenvalues=np.linspace(0.5, 4.0, 8), rotate=True, shift=True, seed=seed)
    H = torch.tensor(p.hessian, dtype=torch.float64)
    xs = torch.tensor(p.minimizer, dtype=torch.float64)
    w = torch.nn.Parameter(torch.ones(8, dtype=torch.float64))
    delay_main = RandomDelay(p_delay, mean_delay_s, [seed, 1])
    gen_noise = torch.Generator().manual_seed(seed)

    def f(x: torch.Tensor) -> torch.Tensor:
        r = x - xs
        return 0.5 * r @ (H @ r)

    # the exact f, with the worker's own random delays (picklable for the worker process)
    ascent_loss = QuadraticLoss(H, xs, delay_s=RandomDelay(p_delay, mean_delay_s, [seed, 2]))

    iterates: list[torch.Tensor] = []
    perturbations: list[torch.Tensor] = []
    violations: list[str] = []
    opt = AsyncSAM(
        [w], torch.optim.SGD, rho=rho, tau=tau, ascent_loss=ascent_loss, lr=lr,
        worker=WorkerOptions(max_staleness=max_staleness, timeout=timeout, backend=backend),
    )
    t0 = time.perf_counter()
    done = 0
    try:
        with opt:
            for _ in range(steps):
                iterates.append(w.detach().clone())
                xi = noise * torch.randn(8, generator=gen_noise, dtype=torch.float64)

                def closure(xi: torch.Tensor = xi) -> torch.Tensor:
                    perturbations.append(w.detach() - iterates[-1])
                    opt.zero_grad()
                    delay_main()
                    loss = f(w) + xi @ w
                    loss.backward()
                    return loss

                opt.step(closure)
                done += 1
    except Exception as exc:  # noqa: BLE001 - a timeout (deadlock) or a failed step is reported
        violations.append(f"step {done}: {type(exc).__name__}: {exc}")
    wall = time.perf_counter() - t0
    hist = opt.staleness_history
    for t, s in enumerate(hist):
        lo, hi = (t, t) if t < tau else (tau, max_staleness)
        if not lo <= s <= hi:
            violations.append(f"step {t}: staleness {s} outside [{lo}, {hi}]")
            continue
        g = H @ (iterates[t - s] - xs)
        u = perturbations[t] / rho
        cos = float(u @ g) / (float(u.norm()) * float(g.norm()))
        if not abs(1.0 - cos) <= COS_TOL:
            violations.append(
                f"step {t}: perturbation is not the direction at version {t - s} "
                f"(cos = {cos:.12f})"
            )
    waits = np.array(opt.wait_history)
    return {
        "steps": done,
        "tau": tau,
        "max_staleness": max_staleness,
        "p_delay": p_delay,
        "mean_delay_s": mean_delay_s,
        "seed": seed,
        "backend": backend,
        "staleness_histogram": {str(k): v for k, v in sorted(Counter(hist).items())},
        "wait_s": {"mean": float(waits.mean()) if done else 0.0,
                   "max": float(waits.max()) if done else 0.0},
        "wall_s": wall,
        # deferred snapshots the main thread copied itself (the worker had not started them);
        # the others the worker copied: a soak exercises both paths
        "main_thread_snapshots": opt.main_thread_snapshots,
        "violations": violations,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--tau", type=int, default=1)
    ap.add_argument("--max-staleness", type=int, default=4)
    ap.add_argument("--p-delay", type=float, default=0.1)
    ap.add_argument("--mean-delay", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", choices=("thread", "process"), default="thread",
                    help="where the ascent runs (default: thread)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    res = soak(steps=args.steps, tau=args.tau, max_staleness=args.max_staleness,
               p_delay=args.p_delay, mean_delay_s=args.mean_delay, seed=args.seed,
               backend=args.backend)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"steps {res['steps']} ({res['backend']}, tau={res['tau']}, "
              f"max_staleness={res['max_staleness']}) "
              f"in {res['wall_s']:.1f} s; staleness histogram {res['staleness_histogram']}; "
              f"wait mean {res['wait_s']['mean'] * 1e3:.3f} ms, max "
              f"{res['wait_s']['max'] * 1e3:.1f} ms; snapshots copied by the main thread "
              f"{res['main_thread_snapshots']}; violations: {len(res['violations'])}")
        for v in res["violations"][:20]:
            print("  " + v)
    return res


if __name__ == "__main__":
    sys.exit(1 if main()["violations"] else 0)
