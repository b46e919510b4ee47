r"""When a training run has *collapsed*: a non-finite loss, or a loss no better than the
constant predictor's with chance accuracy.

A collapsed run is reported as such — per seed, with its reason — and never averaged in
silently as an accuracy; a collapse during hyper-parameter selection rules that grid point out
(:mod:`asam_theory.experiments.selection`).  Three kinds:

* **non-finite** — a training loss that is NaN or ±inf at some step (the loop stops there and
  reports the step and the value);
* **stuck** and **diverged** — both of

  1. the mean of the last :data:`STUCK_WINDOW` training losses is at least
     :math:`\ln C-\delta` (C classes, δ = :data:`STUCK_NATS`): no better than the
     cross-entropy :math:`\ln C` of the constant uniform predictor — *stuck* when it lies
     within δ of :math:`\ln C`, *diverged* when it lies above :math:`\ln C+\delta` (a
     finite loss that grew, e.g. 50 nats after 20 steps at lr 30), and
  2. the test accuracy lies inside the two-sided :math:`1-\alpha` binomial band of chance,
     :math:`[q_{\alpha/2},\,q_{1-\alpha/2}]/n` with :math:`q` the quantiles of
     :math:`\mathrm{Bin}(n, 1/C)` over the n test examples, :math:`\alpha` =
     :data:`CHANCE_ALPHA`, widened to the test set's smallest and largest class frequency
     when they are given (a predictor of one constant class scores exactly that class's
     frequency, which on an unbalanced test set may lie outside the binomial band).

Why :data:`STUCK_NATS` = 0.05 nats (fixed from theory, before any run was judged): for a
calibrated predictor Q the cross-entropy is :math:`H(Y\mid Q)`, and Fano's inequality
(Cover & Thomas, *Elements of Information Theory*, 2nd ed., Thm 2.10.1) bounds it by the
error probability of :math:`\hat Y=\arg\max Q`: :math:`H(Y\mid Q)\le h(P_e)+P_e\ln(C-1)`.
A loss of at least :math:`\ln C-\delta` therefore forces :math:`P_e` close to the chance
error :math:`(C-1)/C`: for C = 10 and δ = 0.05 the accuracy is at most 0.21
(:func:`fano_accuracy_bound`), so a run whose loss sits in that band has learned nothing a
test would call learning.  Conversely, the stuck state's own noise is far below δ: at uniform
outputs every example's loss is exactly :math:`\ln C`, whatever the batch.  The case this
rule was written for (SAM at lr 0.1, ρ = 0.2 on the digits CNN with BatchNorm) sat at
2.303 = ln 10 from its first steps with test accuracy 0.098–0.106.

:data:`CHANCE_ALPHA` = 10⁻³: a run that has in fact learned is called stuck only if its loss
is in the band *and* its accuracy falls in chance's 99.9 % band, so a mistaken "collapsed"
needs both (for n = 540 digits test examples the band is about [0.06, 0.14]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as _st

from asam_theory.validation import check_int, check_real

#: losses (the last k steps) whose mean decides the "stuck" part
STUCK_WINDOW = 20
#: nats: a mean loss within this of ln C counts as the constant predictor's (module docstring)
STUCK_NATS = 0.05
#: two-sided level of the binomial band of chance accuracy
CHANCE_ALPHA = 1e-3
#: the kinds of collapse
KINDS = ("non-finite", "stuck", "diverged")


@dataclass(frozen=True)
class Collapse:
    """A collapsed run: ``kind`` (one of :data:`KINDS`), the ``reason`` in words, and the
    ``step`` of the first non-finite loss (``None`` for a stuck run)."""

    kind: str
    reason: str
    step: int | None = None


def chance_band(n_test: int, n_classes: int, alpha: float = CHANCE_ALPHA) -> tuple[float, float]:
    """The two-sided ``1 - alpha`` band of the accuracy of a chance predictor on ``n_test``
    examples of ``n_classes`` classes: binomial quantiles of Bin(n, 1/C) over n."""
    n = check_int("n_test", n_test, low=1)
    c = check_int("n_classes", n_classes, low=2)
    alpha = check_real("alpha", alpha, low=0.0, high=1.0, low_open=True, high_open=True)
    lo = float(_st.binom.ppf(alpha / 2, n, 1 / c)) / n
    hi = float(_st.binom.ppf(1 - alpha / 2, n, 1 / c)) / n
    return lo, hi


def fano_accuracy_bound(n_classes: int, nats: float = STUCK_NATS) -> float:
    r"""The largest accuracy a calibrated predictor can have when its cross-entropy is at
    least :math:`\ln C - \delta`: the largest :math:`1-P_e` with
    :math:`h(P_e)+P_e\ln(C-1)\ge\ln C-\delta` (Fano's inequality; bisection on the
    increasing branch :math:`P_e\le(C-1)/C`)."""
    c = check_int("n_classes", n_classes, low=2)
    delta = check_real("nats", nats, low=0.0, high=math.log(c))

    def fano(pe: float) -> float:
        h = 0.0 if pe in (0.0, 1.0) else -pe * math.log(pe) - (1 - pe) * math.log(1 - pe)
        return h + pe * math.log(c - 1)

    lo, hi = 0.0, (c - 1) / c  # fano increases on [0, (C-1)/C] from 0 to ln C
    target = math.log(c) - delta
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fano(mid) < target else (lo, mid)
    return 1.0 - hi


def first_nonfinite(losses: Sequence[float]) -> tuple[int, float] | None:
    """``(step, value)`` of the first non-finite loss, else ``None``."""
    for i, v in enumerate(losses):
        if not math.isfinite(v):
            return i, float(v)
    return None


def diagnose(losses: Sequence[float], test_acc: float, n_test: int, n_classes: int, *,
             class_freqs: Sequence[float] | None = None, window: int = STUCK_WINDOW,
             nats: float = STUCK_NATS, alpha: float = CHANCE_ALPHA) -> Collapse | None:
    """The :class:`Collapse` of a run with training ``losses`` (one per step) and
    ``test_acc`` on ``n_test`` examples of ``n_classes`` classes (``class_freqs``: the test
    set's class frequencies, which widen the chance band), or ``None`` when it did not
    collapse (module docstring)."""
    window = check_int("window", window, low=1)
    bad = first_nonfinite(losses)
    if bad is not None:
        step, value = bad
        return Collapse("non-finite", f"training loss {value} at step {step}", step)
    if len(losses) < window:
        return None
    tail = float(sum(losses[-window:]) / window)
    ln_c = math.log(n_classes)
    lo, hi = chance_band(n_test, n_classes, alpha)
    if class_freqs is not None and len(class_freqs):
        lo, hi = min(lo, float(min(class_freqs))), max(hi, float(max(class_freqs)))
    if tail >= ln_c - nats and lo <= test_acc <= hi:
        stuck = tail <= ln_c + nats
        where = (f"stuck at the constant predictor's: mean of the last {window} {tail:.4f} "
                 f"within {nats} of ln {n_classes} = {ln_c:.4f}" if stuck else
                 f"diverged above the constant predictor's: mean of the last {window} "
                 f"{tail:.4g} > ln {n_classes} + {nats}")
        return Collapse("stuck" if stuck else "diverged", (
            f"training loss {where}, test accuracy {test_acc:.4f} inside chance's "
            f"{100 * (1 - alpha):g} % band [{lo:.3f}, {hi:.3f}]"))
    return None
