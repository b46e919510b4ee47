"""Counted cost and fidelity to SAM of every catalogued method at one setting.

Usage::

    python tools/peers_table.py [--steps 200] [--n-seeds 8]

Setting: ``FiniteSumQuadratic.random(64, 10, seed=0)``, batch 8, lr = 0.5/L, ρ = 0.05,
momentum 0, each method with its catalogue defaults plus K-SAM k = 4 (of 8) and AsyncSAM τ = 1.
Columns: gradients and forward passes per step counted by
:class:`asam_theory.problems.CountingOracle` (full-batch equivalents), the declared cost, the
fraction of seed-steps with a perturbation, the mean cosine of the applied perturbation to the
exact gradient (``StepInfo.fidelity``, over perturbed steps), and the mean cosine of the
descent direction to the exact SAM gradient :math:`\\nabla f(x+\\rho\\nabla f/\\|\\nabla f\\|)`.
"""

from __future__ import annotations

import argparse

import numpy as np

from asam_theory.methods import METHODS
from asam_theory.methods.base import row_norms, unit_rows
from asam_theory.problems import CountingOracle, FiniteSumQuadratic
from asam_theory.rng import SeedStreams


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row cosines; NaN where a row vanishes (a seed that applied no perturbation)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("md,md->m", a, b) / (row_norms(a) * row_norms(b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--n-seeds", type=int, default=8)
    a = ap.parse_args()
    problem = FiniteSumQuadratic.random(64, 10, seed=0)
    rho, b = 0.05, 8
    print(f"{'method':<10}{'grads':>8}{'fwd':>6}{'declared':>10}{'perturbed':>10}"
          f"{'cos(eps,grad)':>15}{'cos(d,SAM)':>12}")
    for m in METHODS:
        if not getattr(m.rule, "supports", lambda p: True)(problem):
            print(f"{m.name:<10}(needs a classification problem)")
            continue
        rule = m.build(lr=0.5 / problem.L, batch_size=b, rho=rho, tau=1, k=4,
                       total_steps=a.steps)
        oracle = CountingOracle(problem)
        streams = SeedStreams(list(range(a.n_seeds)))
        state = rule.init(np.full((a.n_seeds, problem.dim), 1.0), oracle, streams)
        fid, desc, applied = [], [], []
        for _ in range(a.steps):
            state, info = rule.step(state, oracle, streams)
            x = info.x
            g = problem.grad(x)
            sam = problem.grad(x + rho * unit_rows(g))
            desc.append(cos_rows(info.descent_grad, sam))
            if info.perturbation is not None:
                on = row_norms(info.perturbation) > 0
                applied.append(on)
                f = cos_rows(info.perturbation, g)
                fid.append(np.where(on, f, np.nan))
            else:
                applied.append(np.zeros(a.n_seeds, bool))
        counted = oracle.cost(b, a.steps, a.n_seeds)
        declared = rule.realised_cost(state)
        fid_mean = np.nanmean(fid) if fid and np.any(np.isfinite(fid)) else float("nan")
        print(f"{m.name:<10}{counted.grads_per_step:>8.3f}{counted.forwards_per_step:>6.2f}"
              f"{declared.grads_per_step:>10.3f}{np.mean(applied):>10.2f}"
              f"{fid_mean:>15.4f}{np.mean(desc):>12.4f}")


if __name__ == "__main__":
    main()
