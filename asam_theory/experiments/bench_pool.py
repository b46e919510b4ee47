"""Several ``asam-theory bench --json`` runs pooled into one verdict.

One run's median AsyncSAM/SGD carries the run's own interval (rounds as units), but on a shared
machine the runs themselves differ: what other tenants do with the memory system changes from
minute to minute, and AsyncSAM, which uses two cores, feels it more than SGD on one (measured by
``benchmarks/core_interference.py``). So the honest unit for "the median on this machine" is
the run. :func:`pool_runs` reports, per ratio:

* ``median_of_runs`` with ``runs_ci95`` — the median of the run medians and its
  distribution-free 95 % interval (:func:`asam_theory.stats.median_interval`, runs as
  independent units; coverage below 0.95 for fewer than 6 runs);
* ``pooled_rounds`` with ``rounds_ci95`` — the median over all runs' rounds together and its
  interval with rounds as units (narrower, but it takes rounds of one run as independent of each
  other, which the run-to-run spread contradicts; kept for comparison with earlier reports);
* ``runs_at_or_below`` — how many run medians are ≤ ``threshold``.

Runs are pooled only if they benchmark the same thing: the keys in :data:`SAME` must agree
(b′ may differ: the tuner picks it per run; ``ascent_batch_sizes`` lists them). Runs that
carry a ``load_warning`` are left out unless ``include_warned``; how many were left out is
reported.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from asam_theory.experiments.bench import median_ci95

#: configuration keys that must be equal in every pooled run
SAME = ("device", "ascent_device", "threads_per_role", "hidden", "batch_size", "tau",
        "max_staleness", "steps_per_round")

#: the ratios pooled: name → path into a run's JSON (the per-run median, the per-round list)
RATIOS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "asyncsam_over_sgd": (("asyncsam_over_sgd",), ("ratios_per_round", "asyncsam_over_sgd")),
    "sam_over_sgd": (("sam_over_sgd",), ("ratios_per_round", "sam_over_sgd")),
    "sgd_control_over_sgd": (("control", "sgd_control_over_sgd"),
                             ("control", "ratios_per_round")),
    "equal_resources_asyncsam_over_sgd": (
        ("equal_resources", "asyncsam_over_sgd"),
        ("equal_resources", "ratios_per_round", "asyncsam_over_sgd")),
    "equal_resources_sam_over_sgd": (
        ("equal_resources", "sam_over_sgd"),
        ("equal_resources", "ratios_per_round", "sam_over_sgd")),
}


def _get(run: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(run, dict) or key not in run or run[key] is None:
            return None
        run = run[key]
    return run


def pool_runs(runs: Sequence[dict[str, Any]], threshold: float = 1.05,
              include_warned: bool = False) -> dict[str, Any]:
    """Pool bench results (see the module docstring); ``runs`` are parsed ``bench --json``
    outputs. Raises ``ValueError`` when no run is left or the runs' configurations differ."""
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    for i, run in enumerate(runs):
        missing = [k for k in (*SAME, "asyncsam_over_sgd", "ratios_per_round") if k not in run]
        if missing:
            raise ValueError(f"run {i} is not an 'asam-theory bench --json' result: it lacks "
                             f"{', '.join(missing)}")
    kept = [r for r in runs if include_warned or not r.get("load_warning")]
    if not kept:
        raise ValueError(f"no run to pool: {len(runs)} given, all carry a load_warning "
                         "(include_warned=True pools them anyway)")
    for key in SAME:
        values = sorted({repr(r[key]) for r in kept})
        if len(values) > 1:
            raise ValueError(f"runs differ in {key} ({', '.join(values)}): pool only runs of "
                             "one configuration")
    ratios: dict[str, Any] = {}
    for name, (median_path, rounds_path) in RATIOS.items():
        medians = [_get(r, median_path) for r in kept]
        rounds = [_get(r, rounds_path) for r in kept]
        if any(m is None for m in medians) or any(x is None for x in rounds):
            continue  # e.g. equal_resources absent (CUDA descent, or switched off)
        flat = [x for per_run in rounds for x in per_run]
        ratios[name] = {
            "median_of_runs": statistics.median(medians),
            "runs_ci95": median_ci95(medians),
            "pooled_rounds": statistics.median(flat),
            "rounds_ci95": median_ci95(flat),
            "runs_at_or_below": sum(m <= threshold for m in medians),
            "run_medians": medians,
        }
    return {
        "runs": len(kept),
        "left_out_for_load": len(runs) - len(kept),
        "rounds": sum(len(r["ratios_per_round"]["asyncsam_over_sgd"]) for r in kept),
        "threshold": threshold,
        "config": {k: kept[0][k] for k in SAME},
        "ascent_batch_sizes": [r.get("ascent_batch_size") for r in kept],
        "ratios": ratios,
    }
