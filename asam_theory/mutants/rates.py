r"""Kill and false-alarm rates of the power runner, with their intervals.

A run's record has an ``outcome``: ``holds``, ``fails``, ``inconclusive``, or ``error`` (the
check raised, or the harness could not judge the run).  An error is never a kill and never a
false alarm: it counts in a rate's denominator (a repeat that could not show anything) and is
reported apart.

**Decided checks** (the theory's): a repeat *kills* when it reports ``fails``; the kill rate
is :math:`k/n` over the mutant's ``n`` repeats, the false-alarm rate the same on the correct
code (:func:`fails_rate`).

**Empirical checks** (``Check.empirical``: an open question whose answer on the correct code
may be ``fails``): let :math:`o^*` be the correct code's *modal* outcome over its repeats
(errors left out; a tie goes to the outcome first in ``holds``, ``inconclusive``, ``fails``,
so a split never makes ``fails`` the reference).  A repeat *flips* when its outcome is neither
:math:`o^*` nor an error — ``fails`` → ``holds`` included: a mutant that makes AsyncSAM look
good must show.  With :math:`k_c` the correct code's flip rate (its "false-alarm" counterpart)
and :math:`k_m` the mutant's, the kill rate is Abbott's corrected rate (Abbott, *J. Econ.
Entomol.* 18, 1925, the effect net of the control's own rate)

.. math:: \kappa=\max\Big(0,\frac{k_m-k_c}{1-k_c}\Big)

— the share of the repeats that the correct code leaves at :math:`o^*` which the mutant moves
off it; :math:`\kappa>0` needs :math:`k_m>k_c` (:func:`flip_kill`).  Its interval maps the
Clopper–Pearson interval of :math:`k_m` through the same formula, :math:`k_c` held fixed;
the one-sided Fisher exact test of :math:`k_m>k_c` (its p-value reported) also accounts
for :math:`k_c`'s own noise.

Every rate carries its exact 95 % Clopper–Pearson interval
(:func:`asam_theory.stats.clopper_pearson`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from asam_theory.stats import clopper_pearson

#: the confidence of every interval in the power report
CONFIDENCE = 0.95
#: the check outcomes in the order that breaks a tie of the modal outcome (a split never makes
#: ``fails`` the reference)
TIE_ORDER = ("holds", "inconclusive", "fails")


@dataclass(frozen=True)
class Rate:
    """``k`` events in ``n`` runs (``errors`` of them errors), ``rate`` = k/n and its
    Clopper–Pearson interval ``[low, high]``."""

    k: int
    n: int
    errors: int
    rate: float
    low: float
    high: float

    def to_json(self) -> dict:
        return asdict(self)


def _rate(k: int, n: int, errors: int) -> Rate:
    lo, hi = clopper_pearson(k, n, CONFIDENCE)
    return Rate(k, n, errors, k / n, lo, hi)


def fails_rate(records: Sequence[dict]) -> Rate | None:
    """The share of runs that report ``fails`` (``None`` without runs)."""
    if not records:
        return None
    outs = [r["outcome"] for r in records]
    return _rate(outs.count("fails"), len(outs), outs.count("error"))


def modal_outcome(records: Sequence[dict]) -> str | None:
    """The correct code's usual outcome :math:`o^*`: the most common non-error outcome, a tie
    going to the outcome first in ``holds``, ``inconclusive``, ``fails``; ``None`` when every
    run is an error (or there is none)."""
    outs = [r["outcome"] for r in records if r["outcome"] != "error"]
    if not outs:
        return None
    return max(TIE_ORDER, key=lambda o: (outs.count(o), -TIE_ORDER.index(o)))


def flip_rate(records: Sequence[dict], reference: str) -> Rate | None:
    """The share of runs whose outcome is neither ``reference`` nor an error."""
    if not records:
        return None
    outs = [r["outcome"] for r in records]
    k = sum(o not in (reference, "error") for o in outs)
    return _rate(k, len(outs), outs.count("error"))


@dataclass(frozen=True)
class FlipKill:
    """An empirical check's kill of one mutant: its flip :class:`Rate` ``mutant``, the
    correct code's ``correct`` and ``reference`` outcome, the corrected ``rate`` κ with its
    interval ``[low, high]``, and the one-sided Fisher p-value of :math:`k_m>k_c`."""

    reference: str
    mutant: Rate
    correct: Rate
    rate: float
    low: float
    high: float
    fisher_p: float

    def to_json(self) -> dict:
        return {"reference": self.reference, "mutant": self.mutant.to_json(),
                "correct": self.correct.to_json(), "rate": self.rate, "low": self.low,
                "high": self.high, "fisher_p": self.fisher_p}


def abbott(k_m: float, k_c: float) -> float:
    r""":math:`\max(0,(k_m-k_c)/(1-k_c))` (``k_c`` < 1; the modal outcome's share is at least
    a third, so a correct code's flip rate is at most 2/3)."""
    return max(0.0, (k_m - k_c) / (1.0 - k_c))


def flip_kill(mutant: Sequence[dict], correct: Sequence[dict]) -> FlipKill | None:
    """The empirical kill of a mutant by a check (module docstring); ``None`` without runs
    on either side or when every correct run was an error (no reference to flip from)."""
    from scipy.stats import fisher_exact

    reference = modal_outcome(correct)
    if reference is None or not mutant:
        return None
    m = flip_rate(mutant, reference)
    c = flip_rate(correct, reference)
    assert m is not None and c is not None
    _, p = fisher_exact([[m.k, m.n - m.k], [c.k, c.n - c.k]], alternative="greater")
    return FlipKill(reference, m, c, abbott(m.rate, c.rate), abbott(m.low, c.rate),
                    abbott(m.high, c.rate), float(p))


__all__ = ["CONFIDENCE", "TIE_ORDER", "FlipKill", "Rate", "abbott", "fails_rate", "flip_kill",
           "flip_rate", "modal_outcome"]
