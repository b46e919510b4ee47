"""Hyper-parameter selection on the validation split: one rule for every real-data driver.

Every method's grid point (its ``lr``, ``rho``, …) is trained on at least
:data:`MIN_SELECTION_SEEDS` *selection seeds* — disjoint from the evaluation seeds — and scored
by its validation accuracy (the test split is never looked at).  :func:`choose` then picks:

1. a point where **any** selection seed collapsed (:mod:`asam_theory.experiments.collapse`:
   a non-finite loss, or a loss stuck at ln C with chance accuracy) is **ruled out**: a recipe
   that fails on some seeds is not a recipe, however well its other seeds do;
2. among the rest, the highest mean validation accuracy over the selection seeds;
3. ties go to the smaller ρ, then the smaller lr (the gentler recipe).

If every point collapsed somewhere, the point with the fewest collapsed seeds is taken (then
rule 2 on its other seeds) and the choice is flagged ``all_collapsed``, so a report can say so.

Used by the leaderboard (:mod:`asam_theory.experiments.leaderboard`), ``HEADLINE``
(:mod:`asam_theory.claims.headline`, through :func:`asam_theory.experiments.ablation.
tune_variants`) and ``BASELINES``.  Why several seeds: with one selection seed the
leaderboard once chose SAM at lr 0.1, ρ 0.2 on the digits CNN (validation 0.932) — a point
where 8 of 12 evaluation seeds then collapsed to chance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asam_theory.validation import check_int

#: the fewest selection seeds a choice is made on
MIN_SELECTION_SEEDS = 3


@dataclass(frozen=True)
class PointRuns:
    """One grid point's selection runs: ``hp`` (the point), the validation accuracy and the
    collapse reason (``None``: did not collapse) of each selection seed, in seed order."""

    hp: Mapping[str, Any]
    val_acc: Sequence[float]
    collapsed: Sequence[str | None] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.collapsed:
            object.__setattr__(self, "collapsed", (None,) * len(self.val_acc))
        if len(self.collapsed) != len(self.val_acc):
            raise ValueError(f"collapsed must have one entry per selection seed "
                             f"({len(self.val_acc)}), got {len(self.collapsed)}")

    @property
    def n_collapsed(self) -> int:
        return sum(c is not None for c in self.collapsed)

    @property
    def mean_ok(self) -> float:
        """Mean validation accuracy over the seeds that did not collapse (NaN if none)."""
        ok = [a for a, c in zip(self.val_acc, self.collapsed, strict=True) if c is None]
        return float(np.mean(ok)) if ok else float("nan")


@dataclass(frozen=True)
class Choice:
    """The chosen point, one row per grid point (``hp`` keys, ``val_acc_mean`` over all
    seeds, ``val_acc_per_seed``, ``collapsed_per_seed``, ``ruled_out``, ``chosen``), and
    whether every point collapsed somewhere."""

    hp: dict[str, Any]
    rows: list[dict[str, Any]]
    all_collapsed: bool = False


def _key(p: PointRuns) -> tuple[float, float, float]:
    """Sort key of rule 2 and 3: best mean first, then the smaller rho, then the smaller lr."""
    return (-p.mean_ok, float(p.hp.get("rho", 0.0)), float(p.hp.get("lr", 0.0)))


def choose(points: Sequence[PointRuns], min_seeds: int = MIN_SELECTION_SEEDS) -> Choice:
    """The grid point the module's rule picks (a one-point grid is that point)."""
    if not points:
        raise ValueError("points must hold at least one grid point")
    min_seeds = check_int("min_seeds", min_seeds, low=1)
    for p in points:
        if len(points) > 1 and len(p.val_acc) < min_seeds:
            raise ValueError(f"selection needs at least {min_seeds} selection seeds per grid "
                             f"point, got {len(p.val_acc)} for {dict(p.hp)}")
    ok = [p for p in points if p.n_collapsed == 0]
    all_collapsed = not ok
    if all_collapsed:
        fewest = min(p.n_collapsed for p in points)
        ok = [p for p in points if p.n_collapsed == fewest]
    best = sorted(ok, key=_key)[0]
    rows = []
    for p in points:
        rows.append({**p.hp, "val_acc_mean": float(np.mean(p.val_acc)),
                     "val_acc_per_seed": [float(a) for a in p.val_acc],
                     "collapsed_per_seed": list(p.collapsed),
                     "ruled_out": p.n_collapsed > 0, "chosen": p is best})
    return Choice(dict(best.hp), rows, all_collapsed)


def selection_seeds(n: int, evaluation: Sequence[int], base: int) -> list[int]:
    """``n`` selection seeds ``base, base + 1, …``; ``ValueError`` if any is an evaluation
    seed (selection and evaluation must not share a seed)."""
    n = check_int("n", n, low=1)
    seeds = list(range(int(base), int(base) + n))
    shared = sorted(set(seeds) & {int(s) for s in evaluation})
    if shared:
        raise ValueError(f"selection seeds {seeds} overlap the evaluation seeds at {shared}; "
                         "choose a base beyond the evaluation seeds")
    return seeds
