"""How long each check takes at ``--full``, measured, so that ``asam-theory verify --full``
can say how long it will take before it starts.

:data:`FULL_SECONDS` holds each check's wall time (its verdict's ``seconds``) from a
``verify --full`` run on a quiet 2-core machine (AMD EPYC, 2 CPUs, 24 GiB, torch 2.13 CPU,
``--jobs 2``, nothing else running), 2026-12-06; a check not listed there has not been timed at
``--full`` yet and is named as such.  :data:`ESTIMATED_SECONDS` holds *estimates* for checks
whose ``--full`` protocol changed since (or is new) and has not been timed yet: runs × the
measured seconds per run of the same model and steps, spread over the two processes; the
announcement keeps them apart from the measured times and says so, until a measured entry in
:data:`FULL_SECONDS` replaces them.  The times scale with the machine: a run on more cores or
a busier machine differs.  ``tools/full_durations.py`` prints the entries for a
``verdicts.json`` of a ``--full`` run.
"""

from __future__ import annotations

from collections.abc import Sequence

#: check id → seconds at ``--full`` (see the module docstring for the machine)
FULL_SECONDS: dict[str, float] = {
    # medians of master seeds 0 and 1000
    "ABLATION.direction": 89.0,
    "ABLATION.penalty": 4.0,
    "ABLATION.lookahead_recovers_sam": 456.0,
}

#: check id → *estimated* seconds at ``--full``, not measured (see the module docstring).
#: HEADLINE, tuned per method (2 lrs × 4 ρ × 3 selection seeds for SAM and each b′ of the
#: variant, 2 × 3 for SGD: 78 selection runs) with the variant also at the tuner's b′, at
#: about 3.7 CPU-seconds per 600-step digits run and 3.5 per 1,000-step MNIST-1D run (the
#: former HEADLINE --full: 197 s for 90 digits runs and its timing on 2 processes; the variance
#: budget's cells), plus 40 s of timing: noisy digits 80 seeds (asyncsam) / 30 (look-ahead),
#: clean digits 10, MNIST-1D 30 / 20.  BASELINES: the measured 22 s / 36 s (12 seeds, one
#: process) with 6 selection runs added and both on the report's 2 processes
ESTIMATED_SECONDS: dict[str, float] = {
    "HEADLINE.asyncsam": 780.0,
    "HEADLINE.lookahead": 410.0,
    "HEADLINE.asyncsam_clean": 260.0,
    "HEADLINE.lookahead_clean": 260.0,
    "HEADLINE.asyncsam_mnist1d": 390.0,
    "HEADLINE.lookahead_mnist1d": 320.0,
    "BASELINES.mlp": 25.0,
    "BASELINES.cnn": 35.0,
    # PENALTY-REAL: one study shared by its four checks (the first check carries it): 10 seeds
    # × 6 drivers on noisy and clean digits (600 steps) and MNIST-1D (2,000 steps), at the
    # default size's measured CPU cost (16 digits runs of 200 steps: 77 CPU-s of training,
    # 20 of flatness on 128 examples with 8 probes) scaled to 600 steps (about 13 s a SAM-type
    # run, 7 s an SGD run), MNIST-1D at 2.5× a digits run, and the flatness to 512 examples ×
    # 30 probes (about 12 s a run): about 5,000 CPU-seconds on the report's 2 processes
    "PENALTY-REAL.lookahead_penalty": 2500.0,
    "PENALTY-REAL.asyncsam_penalty": 1.0,
    "PENALTY-REAL.flatness_order": 1.0,
    "PENALTY-REAL.gain_shares": 1.0,
}


def full_estimate(check_ids: Sequence[str]) -> tuple[float, list[str]]:
    """``(seconds, unmeasured)``: the summed :data:`FULL_SECONDS` of the measured ones among
    ``check_ids`` and, in order, the ids without a measurement."""
    seconds = sum(FULL_SECONDS[c] for c in check_ids if c in FULL_SECONDS)
    return float(seconds), [c for c in check_ids if c not in FULL_SECONDS]


def announcement(check_ids: Sequence[str]) -> str:
    """The line ``verify --full`` prints before its first check."""
    seconds, missing = full_estimate(check_ids)
    guessed = [c for c in missing if c in ESTIMATED_SECONDS]
    missing = [c for c in missing if c not in ESTIMATED_SECONDS]
    guess = (f"about {sum(ESTIMATED_SECONDS[c] for c in guessed) / 60:.0f} min estimated, not "
             f"yet measured, for {len(guessed)} ({', '.join(guessed[:6])}"
             f"{f' and {len(guessed) - 6} more' if len(guessed) > 6 else ''})"
             if guessed else "")
    n, timed = len(check_ids), len(check_ids) - len(missing) - len(guessed)
    if timed == 0 and not guessed:
        return (f"verify --full: {n} checks, none timed at --full yet (expect tens of minutes "
                "or more on 2 cores)")
    if timed == 0:
        text = f"verify --full: {n} checks; {guess}"
    else:
        text = (f"verify --full: {n} checks; about {seconds / 60:.0f} min on a quiet 2-core "
                f"machine for the {timed} timed at --full" + (f", plus {guess}" if guess
                                                                else ""))
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more"
                                          if len(missing) > 6 else "")
        text += f", plus {len(missing)} not timed at --full yet ({shown})"
    return text
