r"""Pool several ``asam-theory bench --json`` runs into one verdict on this machine.

A shared machine's runs differ from minute to minute (other tenants' use of the memory system),
so "AsyncSAM/SGD on this machine" is the median over runs, not one run's median. This prints,
per ratio, the median of the run medians with its 95 % interval (runs as units), the median
over all rounds pooled, and how many runs are at or below the threshold
(:func:`asam_theory.experiments.bench_pool.pool_runs`). Runs that carry a load warning are left out
unless ``--include-warned``.

Typical use (runs ≥ 45 s apart, nothing else running):

    for i in $(seq 10); do asam-theory bench --json-out run_$i.json > /dev/null; sleep 45; done
    python benchmarks/pool_bench.py run_*.json [--threshold 1.05] [--include-warned] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

from asam_theory.experiments.bench_pool import pool_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="JSON files written by 'asam-theory bench'")
    parser.add_argument("--threshold", type=float, default=1.05,
                        help="count the runs whose median ratio is at or below this")
    parser.add_argument("--include-warned", action="store_true",
                        help="also pool runs that carry a load warning")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    runs = []
    for path in args.files:
        with open(path) as fh:
            runs.append(json.load(fh))
    try:
        res = pool_runs(runs, threshold=args.threshold, include_warned=args.include_warned)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{res['runs']} runs pooled ({res['left_out_for_load']} left out for load), "
          f"{res['rounds']} rounds; b' per run {res['ascent_batch_sizes']}")
    for name, r in res["ratios"].items():
        ci, rci = r["runs_ci95"], r["rounds_ci95"]
        count = (f"   runs <= {res['threshold']:g}: {r['runs_at_or_below']}/{res['runs']}"
                 if "asyncsam" in name else "")
        print(f"{name:36s} runs {r['median_of_runs']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"
              f"   rounds {r['pooled_rounds']:.3f} [{rci['low']:.3f}, {rci['high']:.3f}]{count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
