"""How long each check takes at ``--full``, measured, so that ``asam-theory verify --full``
can say how long it will take before it starts.

:data:`FULL_SECONDS` holds each check's wall time (its verdict's ``seconds``) from a
``verify --full`` run on a quiet 2-core machine (AMD EPYC, 2 CPUs, 24 GiB, torch 2.13 CPU,
``--jobs 2``, nothing else running), 2026-12-06; a check not listed there has not been timed at
``--full`` yet and is named as such.  The times scale with the machine: a run on more cores or
a busier machine differs.  ``tools/full_durations.py`` prints the entries for a
``verdicts.json`` of a ``--full`` run.
"""

from __future__ import annotations

from collections.abc import Sequence

#: check id → seconds at ``--full`` (see the module docstring for the machine)
FULL_SECONDS: dict[str, float] = {
    # medians of master seeds 0 and 1000
    "HEADLINE.asyncsam": 197.0,
    "HEADLINE.lookahead": 199.0,
    "ABLATION.direction": 89.0,
    "ABLATION.penalty": 4.0,
    "ABLATION.lookahead_recovers_sam": 456.0,
    # master seed 0
    "BASELINES.mlp": 22.0,
    "BASELINES.cnn": 36.0,
}


def full_estimate(check_ids: Sequence[str]) -> tuple[float, list[str]]:
    """``(seconds, unmeasured)``: the summed :data:`FULL_SECONDS` of the measured ones among
    ``check_ids`` and, in order, the ids without a measurement."""
    seconds = sum(FULL_SECONDS[c] for c in check_ids if c in FULL_SECONDS)
    return float(seconds), [c for c in check_ids if c not in FULL_SECONDS]


def announcement(check_ids: Sequence[str]) -> str:
    """The line ``verify --full`` prints before its first check."""
    seconds, missing = full_estimate(check_ids)
    n, timed = len(check_ids), len(check_ids) - len(missing)
    if timed == 0:
        return (f"verify --full: {n} checks, none timed at --full yet (expect tens of minutes "
                "or more on 2 cores)")
    text = (f"verify --full: {n} checks; about {seconds / 60:.0f} min on a quiet 2-core "
            f"machine for the {timed} timed at --full")
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more"
                                          if len(missing) > 6 else "")
        text += f", plus {len(missing)} not timed at --full yet ({shown})"
    return text
