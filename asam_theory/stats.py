r"""Interval estimates and test thresholds used by the claims and the real-data comparisons.

* :func:`wilson` — Wilson score interval for a proportion (scipy's
  ``binomtest(k, n).proportion_ci(method="wilson")``);
* :func:`clopper_pearson` — the exact (Clopper–Pearson) interval for a proportion;
* :func:`zero_failure_runs` — how many independent runs without a failure bound the failure
  probability below a rate (the success-run theorem);
* :func:`newcombe` — Newcombe's hybrid score interval for a difference of two independent
  proportions (Newcombe, *Statistics in Medicine* 17(8), 1998, method 10);
* :func:`paired_interval` — interval for the mean of paired differences (normal, or Student t
  for few pairs);
* :func:`t_interval` — mean and Student-t interval of a sample;
* :func:`one_sided_lower` — one-sided lower confidence bound of a mean (Student t);
* :func:`median_interval` — distribution-free interval for a median from order statistics;
* :func:`bonferroni_z` — two-sided Bonferroni critical value;
* :func:`paired_variance_budget` — a paired accuracy difference's per-seed variance split into
  training-seed and test-set parts;
* :func:`minimum_detectable_effect`, :func:`seeds_needed` — the power of a one-sided test on
  the mean of paired differences;
* :func:`fieller_ratio` — Fieller's interval for a ratio of two paired means.

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


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    r"""The exact two-sided interval for a binomial proportion :math:`k/n` (Clopper &
    Pearson, *Biometrika* 26(4), 1934): the beta quantiles
    :math:`[B_{\alpha/2}(k, n-k+1),\,B_{1-\alpha/2}(k+1, n-k)]`, :math:`\alpha=1-`
    ``confidence``, with the lower end 0 at :math:`k=0` and the upper end 1 at :math:`k=n`
    (scipy's ``binomtest(k, n).proportion_ci(method="exact")``).  Its coverage is at least
    ``confidence`` for every true proportion, which the Wilson interval does not promise at
    the small n (e.g. 20 repeats) it is used with."""
    n = check_int("n", n, low=1)
    k = check_int("k", k, low=0, high=n)
    confidence = check_real("confidence", confidence, low=0, high=1, low_open=True,
                            high_open=True)
    ci = _st.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def zero_failure_runs(rate: float, confidence: float = 0.95) -> int:
    r"""The fewest independent runs that, all without a failure, show the per-run failure
    probability to be below ``rate`` at this ``confidence``: the smallest n with
    :math:`(1-\text{rate})^n\le1-\text{confidence}` (the success-run theorem; its n is the
    sample size at which the one-sided Clopper–Pearson upper bound of 0 failures in n runs,
    :math:`1-(1-\text{confidence})^{1/n}`, reaches ``rate``).  ``rate=0.05`` at 95 %: 59."""
    rate = check_real("rate", rate, low=0, high=1, low_open=True, high_open=True)
    confidence = check_real("confidence", confidence, low=0, high=1, low_open=True,
                            high_open=True)
    n = math.ceil(math.log1p(-confidence) / math.log1p(-rate))
    # the ceiling of a rounded quotient may land one above the exact n
    return n - 1 if n > 1 and (1 - rate) ** (n - 1) <= 1 - confidence else n


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


def paired_variance_budget(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    r"""Variance budget of the paired accuracy difference of two methods on one test set.

    ``correct_a``, ``correct_b``: boolean arrays ``(S, N)`` — seed s's model classifies test
    example i right.  With :math:`z_{si}=c^a_{si}-c^b_{si}` and :math:`d_s=\bar z_{s\cdot}`
    (seed s's difference in accuracy), a random-effects view (seeds and test examples drawn
    independently) splits

    .. math:: \operatorname{Var}(d_s)=\underbrace{\operatorname{Var}_s(D_s)}_{\text{training
       seed}}+\underbrace{\mathbb E_s\operatorname{Var}_i(z_{si})/N}_{\text{test set}},
       \qquad D_s=\mathbb E_i z_{si},

    and the test-set part has a *common* share :math:`v_c=\operatorname{Var}_i(\mathbb E_s
    z_{si})/N` that every seed on the same test set shares (more seeds do not shrink it).  On
    one fixed test set the seeds' sample variance :math:`s_d^2` estimates
    :math:`\operatorname{Var}_s(D_s)+v_t-v_c`, so the standard error of the mean difference
    over S seeds, as an estimate of the population difference, is
    :math:`\sqrt{s_d^2/S+v_c}`.  Returns ``{"n_seeds", "n_test", "mean", "sd_per_seed"``
    (:math:`s_d`), ``"sd_train"`` (:math:`\sqrt{\max(s_d^2-v_t+v_c,0)}`), ``"sd_test"``
    (:math:`\sqrt{v_t}`), ``"sd_test_common"`` (:math:`\sqrt{v_c}`, unbiased estimate clipped
    at 0), ``"se_mean"}`` (all in accuracy units).  The split is the usual one-way
    components-of-variance decomposition (e.g. Searle, Casella & McCulloch, *Variance
    Components*, Wiley 1992, ch. 3); the test-set part of one seed is the per-example paired
    variance of McNemar's setting (Dietterich, *Neural Computation* 10(7), 1998).
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b must be 2-d arrays of one shape (seeds, "
                         f"test examples), got {a.shape} and {b.shape}")
    s, n = a.shape
    if s < 2 or n < 2:
        raise ValueError(f"need at least 2 seeds and 2 test examples, got shape {a.shape}")
    z = a - b
    d = z.mean(axis=1)
    v_seed = float(d.var(ddof=1))
    v_test = float(z.var(axis=1, ddof=1).mean()) / n
    zbar = z.mean(axis=0)
    v_common = max(float(zbar.var(ddof=1)) - float(z.var(axis=0, ddof=1).mean()) / s, 0.0) / n
    v_train = max(v_seed - v_test + v_common, 0.0)
    return {"n_seeds": s, "n_test": n, "mean": float(d.mean()), "sd_per_seed": math.sqrt(v_seed),
            "sd_train": math.sqrt(v_train), "sd_test": math.sqrt(v_test),
            "sd_test_common": math.sqrt(v_common), "se_mean": math.sqrt(v_seed / s + v_common)}


def minimum_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8,
                              floor_var: float = 0.0) -> float:
    r"""Smallest true shift of a mean that a one-sided level-``alpha`` t test on ``n`` paired
    differences of standard deviation ``sd`` detects with probability ``power``:
    :math:`(t_{1-\alpha,n-1}+t_{\mathrm{power},n-1})\sqrt{\mathrm{sd}^2/n+v_0}` (the usual
    normal-approximation power formula with t quantiles; e.g. Chow, Shao & Wang, *Sample Size
    Calculations in Clinical Research*, 2nd ed., §3.1).  ``floor_var`` :math:`v_0` is variance
    that more pairs do not remove (a shared test set).  For a non-inferiority test at margin m
    the run is powered when the MDE is at most m.  ``inf`` for fewer than two pairs."""
    sd = check_real("sd", sd, low=0.0)
    alpha = check_real("alpha", alpha, low=0, high=1, low_open=True, high_open=True)
    power = check_real("power", power, low=0, high=1, low_open=True, high_open=True)
    n = check_int("n", n, low=1)
    if n < 2:
        return math.inf
    crit = float(_st.t.ppf(1 - alpha, n - 1) + _st.t.ppf(power, n - 1))
    return crit * math.sqrt(sd * sd / n + floor_var)


def seeds_needed(sd: float, effect: float, alpha: float = 0.05, power: float = 0.8,
                 floor_var: float = 0.0, max_seeds: int = 10_000) -> int | None:
    """The fewest pairs whose :func:`minimum_detectable_effect` is at most ``effect`` (``None``
    when ``max_seeds`` do not suffice, e.g. when the floor alone exceeds it)."""
    effect = check_real("effect", effect, low=0.0, low_open=True)
    for n in range(2, max_seeds + 1):
        if minimum_detectable_effect(sd, n, alpha, power, floor_var) <= effect:
            return n
    return None


def fieller_ratio(num: Sequence[float], den: Sequence[float], confidence: float = 0.90
                  ) -> dict[str, float]:
    r"""Fieller's interval for :math:`\theta=\mu_a/\mu_g` from paired samples ``num``
    (:math:`a_s`) and ``den`` (:math:`g_s`) (Fieller, *J. R. Stat. Soc. Suppl.* 7, 1940; the
    paired form e.g. Franz, *BMC Bioinformatics* 8:321, 2007): the set of θ where the t test of
    :math:`\bar a-\theta\bar g=0` does not reject at two-sided level ``confidence``, i.e. the
    θ with :math:`(\bar a-\theta\bar g)^2\le t^2(s_{aa}-2\theta s_{ag}+\theta^2s_{gg})/n`.
    Bounded when the denominator's mean is itself significant (:math:`\bar g^2>t^2s_{gg}/n`);
    otherwise ``low = -inf``, ``high = inf`` (``bounded`` False).  A two-sided 90 % interval's
    lower end is a one-sided 95 % lower bound.  Returns ``{"ratio", "low", "high", "bounded"}``.
    """
    confidence = check_real("confidence", confidence, low=0, high=1, low_open=True,
                            high_open=True)
    a = np.asarray(num, dtype=np.float64)
    g = np.asarray(den, dtype=np.float64)
    if a.shape != g.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(f"num and den must be 1-d of one length >= 2, got {a.shape}, {g.shape}")
    n = a.size
    t2 = float(_st.t.ppf((1 + confidence) / 2, n - 1)) ** 2
    ma, mg = float(a.mean()), float(g.mean())
    c = np.cov(np.vstack([a, g]), ddof=1) / n
    saa, sag, sgg = float(c[0, 0]), float(c[0, 1]), float(c[1, 1])
    ratio = ma / mg if mg != 0 else math.nan
    qa = mg * mg - t2 * sgg
    qb = ma * mg - t2 * sag
    qc = ma * ma - t2 * saa
    disc = qb * qb - qa * qc
    if -1e-12 * qb * qb <= disc < 0:  # exactly proportional samples: a double root, rounded
        disc = 0.0
    if qa <= 0 or disc < 0:
        return {"ratio": ratio, "low": -math.inf, "high": math.inf, "bounded": False}
    root = math.sqrt(disc)
    return {"ratio": ratio, "low": (qb - root) / qa, "high": (qb + root) / qa, "bounded": True}


__all__ = ["Z90", "Z95", "bonferroni_z", "clopper_pearson", "fieller_ratio",
           "minimum_detectable_effect", "newcombe", "one_sided_lower", "paired_interval",
           "paired_variance_budget", "seeds_needed", "t_interval", "wilson",
           "zero_failure_runs"]
