"""Run the penalty-fidelity / flatness study or the m-sharpness-against-b′ comparison and write
JSON and Markdown (until the command line has a sub-command for them).

Usage::

    python tools/penalty_study.py penalty --settings digits-noisy-cnn --seeds 0,1,2 \
        --checkpoints 8 --flat-probes 100 --jobs 2 --out runs/penalty
    python tools/penalty_study.py msharp --setting digits-noisy-cnn --seeds 0-9 --jobs 2 \
        --out runs/msharp

``--steps`` shortens every run (a smoke test); ``--jobs`` runs the runs in that many processes
(one intra-op thread each).  ``penalty`` writes ``penalty.json`` and ``penalty.md`` (the probe
table along each driver's trajectory and the flatness per driver), ``msharp`` writes
``msharp.json`` and ``msharp.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from asam_theory.experiments import msharp_bprime, penalty_real
from asam_theory.experiments.probe_runs import DRIVERS, SETTINGS

BY_NAME = {s.name: s for s in SETTINGS}


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def _say(line: str) -> None:
    print(line, flush=True)


@contextlib.contextmanager
def _pool(jobs: int) -> Iterator[Executor | None]:
    """A process pool of ``jobs`` workers (``None`` for one job), shut down on exit."""
    if jobs <= 1:
        yield None
        return
    with ProcessPoolExecutor(jobs) as pool:
        yield pool


def _flatness_table(runs: list[dict]) -> str:
    """Per setting and driver: test accuracy, λ_max, Hutchinson trace and m-sharpness, each the
    mean over seeds with its Student-t 95 % interval (the trace's own probe SE, averaged over
    seeds, beside it)."""
    from asam_theory.stats import t_interval

    def cell(values: list[float], digits: int) -> str:
        ci = t_interval(values)
        return f"{ci['mean']:.{digits}f} [{ci['low']:.{digits}f}, {ci['high']:.{digits}f}]"

    lines = ["| setting | driver | seeds | test acc % | λ_max | tr H (probe SE) | "
             "m-sharpness by m |", "|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["setting"], r["driver"]), []).append(r)
    for (setting, driver), rs in groups.items():
        acc = cell([100 * r["test_acc"] for r in rs], 1)
        flat = [r["flatness"] for r in rs if r["flatness"]]
        if not flat:
            lines.append(f"| {setting} | {driver} | {len(rs)} | {acc} | – | – | – |")
            continue
        se = float(np.mean([f["trace_se"] for f in flat]))
        ms = "; ".join(f"{m}: {cell([f['m_sharpness'][m][0] for f in flat], 3)}"
                       for m in flat[0]["m_sharpness"])
        lines.append(f"| {setting} | {driver} | {len(rs)} | {acc} | "
                     f"{cell([f['lambda_max'] for f in flat], 2)} | "
                     f"{cell([f['trace'] for f in flat], 1)} ({se:.1f}) | {ms} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("penalty")
    a.add_argument("--settings", default="digits-noisy-cnn")
    a.add_argument("--seeds", default="0,1,2")
    a.add_argument("--checkpoints", type=int, default=8)
    a.add_argument("--flat-probes", type=int, default=100, help="0: no flatness")
    a.add_argument("--flat-examples", type=int, default=None,
                   help="training examples the Hessian measures use (default: all)")
    a.add_argument("--steps", type=int, default=None)
    a.add_argument("--jobs", type=int, default=1)
    a.add_argument("--out", default="penalty")
    b = sub.add_parser("msharp")
    b.add_argument("--setting", default="digits-noisy-cnn")
    b.add_argument("--seeds", default="0-9")
    b.add_argument("--steps", type=int, default=None)
    b.add_argument("--jobs", type=int, default=1)
    b.add_argument("--out", default="msharp")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.what == "penalty":
        settings = [BY_NAME[s] for s in args.settings.split(",")]
        flat = ({"probes": args.flat_probes, "ms": (16, 64),
                 "train_examples": args.flat_examples} if args.flat_probes else None)
        with _pool(args.jobs) as executor:
            res = penalty_real.run_penalty(settings, DRIVERS, _seeds(args.seeds),
                                           n_checkpoints=args.checkpoints, flat=flat,
                                           steps=args.steps, executor=executor,
                                           progress=_say)
        res["wall_s"] = time.perf_counter() - start
        (out / "penalty.json").write_text(json.dumps(res, indent=1, default=float))
        parts = []
        for s in settings:
            for d in DRIVERS:
                parts += [f"### {s.name}, along {d.name}'s trajectory", "",
                          penalty_real.table(res["summary"], d.name, s.name), ""]
        parts += ["### Flatness at the end of training", "", _flatness_table(res["runs"])]
        (out / "penalty.md").write_text("\n".join(parts) + "\n")
    else:
        setting = BY_NAME[args.setting]
        if args.steps is not None:
            setting = replace(setting, steps=args.steps)
        with _pool(args.jobs) as executor:
            res = msharp_bprime.run_msharp(setting, _seeds(args.seeds), executor=executor,
                                           progress=_say)
        res["wall_s"] = time.perf_counter() - start
        (out / "msharp.json").write_text(json.dumps(res, indent=1, default=float))
        (out / "msharp.md").write_text(msharp_bprime.markdown(res) + "\n")
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
