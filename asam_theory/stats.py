r"""Interval estimates and test thresholds used by the claims and the real-data comparisons.

* :func:`wilson` — Wilson score interval for a proportion (scipy's
  ``binomtest(k, n).proportion_ci(method="wilson")``);
* :func:`newcombe` — Newcombe's hybrid score interval for a difference of two independent
  proportions (Newcombe, *Statistics in Medicine* 17(8), 1998, method 10);
* :func:`paired_interval` — interval for the mean of paired differences (normal, or Student t
  for few pairs);
* :func:`t_interval` — mean and Student-t interval of a sample;
* :func:`one_sided_lower` — one-sided lower confidence bound of a mean (Student t);
* :func:`median_interval` — distribution-free interval for a median from order statistics;
* :func:`bonferroni_z` — two-sided Bonferroni critical value.

Confidence is given as a two-sided level ``confidence`` in (0, 1) or, for the normal helpers,
as the critical value ``z``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _st

from asam_theory.validation import check_int, check_real

#: standard-normal critical values: two-sided 95 % and 90 % (= one-sided 95 %)
Z95, Z90 = 1.959963984540054, 1.6448536269514722


def _confidence_from_z(z: float) -> float:
    return float(1 - 2 * _st.norm.sf(z))


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    r"""Wilson score interval for the proportion :math:`k/n` at critical value ``z``."""
    n = check_int("n", n, low=1)
    k = check_int("k", k, low=0, high=n)
    ci = _st.binomtest(k, n).proportion_ci(confidence_level=_confidence_from_z(z),
                                           method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    r"""Newcombe's hybrid score interval for :math:`p_1-p_2` of two independent proportions,
    built from the two Wilson intervals:
    :math:`d-\sqrt{(p_1-l_1)^2+(u_2-p_2)^2},\;d+\sqrt{(u_1-p_1)^2+(p_2-l_2)^2}`."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def paired_interval(a: Sequence[float], b: Sequence[float], z: float | None = Z95,
                    confidence: float | None = None) -> tuple[float, float]:
    r"""Interval for the mean of the paired differences :math:`a_i-b_i` (seeds that share
    starts and draws pair up): normal with critical value ``z``, or Student t with ``n − 1``
    degrees of freedom at two-sided level ``confidence`` when that is given."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size == 0:
        raise ValueError("a and b must hold at least one pair")
    se = d.std(ddof=1) / math.sqrt(d.size) if d.size > 1 else 0.0
    if confidence is not None:
        confidence = check_real("confidence", confidence, low=0, high=1, low_open=True,
                                high_open=True)
        crit = float(_st.t.ppf((1 + confidence) / 2, d.size - 1)) if d.size > 1 else 0.0
    else:
        crit = float(z)
    return float(d.mean() - crit * se), float(d.mean() + crit * se)


def t_interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    r"""Mean and Student-t interval :math:`\bar x\pm t_{(1+c)/2,\,n-1}\,s/\sqrt n` (half-width 0
    for ``n = 1``): ``{"mean", "low", "high", "half_width", "n", "sd"}``."""
    confidence = check_real("confidence", confidence, low=0, high=1, low_open=True,
                            high_open=True)
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        raise ValueError("values must hold at least one number")
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "low": mean, "high": mean, "half_width": 0.0, "n": n, "sd": 0.0}
    sd = float(x.std(ddof=1))
    half = float(_st.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "half_width": half, "n": n,
            "sd": sd}


def one_sided_lower(values: Sequence[float], confidence: float = 0.95) -> float:
    r"""One-sided lower confidence bound :math:`\bar x-t_{c,\,n-1}\,s/\sqrt n` of the mean
    (``-inf`` for fewer than two values: nothing can be claimed)."""
    confidence = check_real("confidence", confidence, low=0, high=1, low_open=True,
                            high_open=True)
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return -math.inf
    return float(x.mean() - _st.t.ppf(confidence, x.size - 1) * x.std(ddof=1)
                 / math.sqrt(x.size))


def median_interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    r"""Distribution-free interval for the median of a sample of ``n`` independent values
    (Conover, *Practical Nonparametric Statistics*, 3rd ed., §3.2; the sign-test interval).

    With :math:`x_{(1)}\le\dots\le x_{(n)}` sorted and :math:`B\sim\mathrm{Bin}(n,\tfrac12)`,
    :math:`[x_{(k)},x_{(n-k+1)}]` covers the population median with probability
    :math:`1-2P(B\le k-1)`; ``k`` is the largest rank whose coverage reaches ``confidence``.
    No such rank exists for small ``n`` (fewer than 6 values at 95 %): then the range
    :math:`[x_{(1)},x_{(n)}]` is returned with its (lower) coverage. Returns
    ``{"median", "low", "high", "coverage", "rank", "n"}``.
    """
    confidence = check_real("confidence", confidence, low=0, high=1, low_open=True,
                            high_open=True)
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = int(x.size)
    if n == 0:
        raise ValueError("values must hold at least one number")
    # coverage of rank k, k = 1 .. ceil(n/2): 1 - 2 P(B <= k - 1), decreasing in k
    ranks = np.arange(1, (n + 1) // 2 + 1)
    coverage = 1.0 - 2.0 * _st.binom.cdf(ranks - 1, n, 0.5)
    ok = np.nonzero(coverage >= confidence)[0]
    i = int(ok[-1]) if ok.size else 0
    k = int(ranks[i])
    return {"median": float(np.median(x)), "low": float(x[k - 1]), "high": float(x[n - k]),
            "coverage": float(max(coverage[i], 0.0)), "rank": k, "n": n}


def bonferroni_z(n_comparisons: int, alpha: float = 0.01) -> float:
    r""":math:`z_K=\Phi^{-1}(1-\alpha/(2K))`: two-sided Bonferroni critical value for ``K``
    comparisons at family-wise level ``alpha``."""
    n_comparisons = check_int("n_comparisons", n_comparisons, low=1)
    alpha = check_real("alpha", alpha, low=0, high=1, low_open=True, high_open=True)
    return float(_st.norm.isf(alpha / (2 * n_comparisons)))


__all__ = ["Z90", "Z95", "bonferroni_z", "newcombe", "one_sided_lower", "paired_interval",
           "t_interval", "wilson"]
