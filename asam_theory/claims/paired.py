r"""Paired accuracy comparisons for the real-data claims: one-sided bounds with the test-set
floor, the minimum detectable effect, and three-way decisions that say when a run is too small.

Seeds pair up (one initialisation, one batch order per seed, shared by the methods compared).
For the mean paired difference :math:`\bar d` over S seeds on a fixed test set, the standard
error used is :math:`\sqrt{s_d^2/S+v_c}` (:func:`asam_theory.stats.paired_variance_budget`:
:math:`v_c` is the test-set variance common to all seeds, which more seeds do not remove; it is
0 when per-example results are not given), with Student-t quantiles on S − 1 degrees of freedom.

The minimum detectable effect (MDE) of a one-sided 5 % test with 80 % power is
:math:`(t_{0.95}+t_{0.80})\,\mathrm{se}` (:func:`asam_theory.stats.minimum_detectable_effect`).
A **non-inferiority** comparison at margin m (difference a − b, H0: δ ≤ −m) *holds* when the
one-sided 95 % lower bound exceeds −m, *fails* when the one-sided 95 % upper bound is below −m
(inferiority by more than the margin is shown), and is otherwise *inconclusive* — said to be
**underpowered** when MDE > m (the run could not have shown non-inferiority even with no true
loss), with the seeds a decision would need (:func:`asam_theory.stats.seeds_needed`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _st

from asam_theory.stats import minimum_detectable_effect, paired_variance_budget, seeds_needed

#: one-sided confidence of every bound here, and the power the MDE refers to
CONFIDENCE, POWER = 0.95, 0.80


@dataclass(frozen=True)
class Paired:
    """One paired comparison a − b (accuracy units): ``mean``, per-seed ``sd``, ``floor_var``
    (common test-set variance), ``se``, one-sided 95 % ``lower``/``upper`` bounds, ``mde`` and
    ``n`` seeds."""

    mean: float
    sd: float
    floor_var: float
    se: float
    lower: float
    upper: float
    mde: float
    n: int

    def seeds_for(self, effect: float) -> int | None:
        """Seeds whose MDE is at most ``effect`` at this per-seed SD and floor."""
        return seeds_needed(max(self.sd, 1e-12), effect, 1 - CONFIDENCE, POWER, self.floor_var)

    def pp(self) -> dict[str, float]:
        """The fields in percentage points (``n`` as is), for tables and configs."""
        return {k: (v if k == "n" else 100 * v) for k, v in asdict(self).items()
                if k != "floor_var"}


def paired(a: Sequence[float], b: Sequence[float], correct_a: np.ndarray | None = None,
           correct_b: np.ndarray | None = None) -> Paired:
    """The comparison of per-seed accuracies ``a`` − ``b`` (with the per-example results
    ``correct_*`` of shape (seeds, test examples), the common test-set variance is added)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = int(d.size)
    if n < 2:
        raise ValueError(f"a paired comparison needs at least 2 seeds, got {n}")
    sd = float(d.std(ddof=1))
    floor = 0.0
    if correct_a is not None and correct_b is not None:
        floor = paired_variance_budget(correct_a, correct_b)["sd_test_common"] ** 2
    se = math.sqrt(sd * sd / n + floor)
    t = float(_st.t.ppf(CONFIDENCE, n - 1))
    mde = minimum_detectable_effect(sd, n, 1 - CONFIDENCE, POWER, floor)
    return Paired(float(d.mean()), sd, floor, se, float(d.mean()) - t * se,
                  float(d.mean()) + t * se, mde, n)


def non_inferiority(c: Paired, margin: float) -> tuple[str, str]:
    """``(status, reason)`` of ``c`` non-inferior at ``margin`` (module docstring)."""
    m_pp, mde_pp = 100 * margin, 100 * c.mde
    if c.lower > -margin:
        return "holds", (f"lower bound {100 * c.lower:+.2f} pp > −{m_pp:g} pp")
    if c.upper < -margin:
        return "fails", (f"upper bound {100 * c.upper:+.2f} pp < −{m_pp:g} pp: inferior by "
                         f"more than the margin")
    need = c.seeds_for(margin)
    if c.mde > margin:
        return "inconclusive", (f"inconclusive (underpowered: MDE {mde_pp:.2f} pp > margin "
                                f"{m_pp:g} pp; a decision needs about "
                                f"{need if need else 'more than 10,000'} seeds)")
    return "inconclusive", (f"inconclusive (bounds {100 * c.lower:+.2f} … {100 * c.upper:+.2f} "
                            f"pp straddle −{m_pp:g} pp at MDE {mde_pp:.2f} pp)")


def superiority(c: Paired, minimum: float = 0.0) -> tuple[str, str]:
    """``(status, reason)`` of a − b > ``minimum``: holds when the lower bound exceeds it,
    fails when the upper bound is below it, else inconclusive (underpowered when the MDE
    exceeds the observed distance to ``minimum`` … or the effect is simply small)."""
    if c.lower > minimum:
        return "holds", f"lower bound {100 * c.lower:+.2f} pp > {100 * minimum:g} pp"
    if c.upper < minimum:
        return "fails", f"upper bound {100 * c.upper:+.2f} pp < {100 * minimum:g} pp"
    return "inconclusive", (f"bounds {100 * c.lower:+.2f} … {100 * c.upper:+.2f} pp include "
                            f"{100 * minimum:g} pp (MDE {100 * c.mde:.2f} pp at {c.n} seeds)")
