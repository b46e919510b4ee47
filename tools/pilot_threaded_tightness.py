"""Pilot of THREADED.bounds_with_measured_staleness's tightness side at several sizes.

The check passes its tightness side when the one-sided 95 % lower ends of T1's and T3's
measured/bound ratios are at least ``TIGHT`` (0.8, from theory: expected ratios 0.91-0.95).
With few runs the standard error is itself noisy and the lower end can fall under 0.8 on
correct code.  This pilot repeats the check's statistic on seeds far from every verdict's
(``PILOT_BASE`` + …) at each (runs, steps) size and prints how often the tightness side
fails on the correct code, so the size of each mode is chosen from a pilot, not from a
verdict.

    python tools/pilot_threaded_tightness.py --repeats 100 --sizes 4x80 4x150 8x150 \
        --json-out /tmp/pilot.json
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from asam_theory.claims import threaded
from asam_theory.experiments.realrun import threaded_quadratic_run
from asam_theory.problems import Quadratic

#: pilot seeds: far from the verdict seeds (1000 + 100003·seed + 2r for seeds 0, 1, …)
PILOT_BASE = 900_000_000


def one(n_runs: int, steps: int, rep: int) -> dict:
    p = Quadratic(**threaded.TIGHT_PROBLEM)
    lr, rho = 0.95 / float(p.L), 0.1
    base = PILOT_BASE + 10_007 * rep
    runs = [threaded_quadratic_run(p, seed=base + 2 * r, sigma2=threaded.TIGHT_SIGMA2,
                                   steps=steps, lr=lr, rho=rho, tau=1, max_staleness=4,
                                   descent_delay_s=0.001, ascent_delay_s=0.003,
                                   backend=threaded.run_backend(r))
            for r in range(n_runs)]
    st = threaded.bounds_statistics(p, runs, steps, lr, rho)
    return {"T1": st["g"] / st["t1"], "T3": st["f"] / st["t3"],
            "lower_T1": st["lower"]["T1"], "lower_T3": st["lower"]["T3"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--sizes", nargs="+", default=["4x80", "4x150", "8x150"])
    ap.add_argument("--json-out")
    args = ap.parse_args()
    out = {}
    for size in args.sizes:
        n_runs, steps = (int(x) for x in size.split("x"))
        rows = [one(n_runs, steps, rep) for rep in range(args.repeats)]
        low = np.array([min(r["lower_T1"], r["lower_T3"]) for r in rows])
        k = int((low < threaded.TIGHT).sum())
        out[size] = {"repeats": args.repeats, "tight_fails": k,
                     "rate": k / args.repeats,
                     "ratio_T1_mean": float(np.mean([r["T1"] for r in rows])),
                     "ratio_T3_mean": float(np.mean([r["T3"] for r in rows])),
                     "lower_min_quantiles": {q: float(np.quantile(low, q))
                                             for q in (0.01, 0.05, 0.5)}}
        print(size, json.dumps(out[size]), flush=True)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
