"""The exact binomial interval and the success-run number (``asam_theory.stats``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from asam_theory.stats import clopper_pearson, zero_failure_runs


def test_clopper_pearson_known_values() -> None:
    # closed forms at the ends: k = 0 -> [0, 1 - (alpha/2)^(1/n)], k = n -> [(alpha/2)^(1/n), 1]
    lo, hi = clopper_pearson(0, 20)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 20), rel=1e-12)
    assert hi == pytest.approx(0.16843347, abs=1e-8)
    lo, hi = clopper_pearson(20, 20)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 20), rel=1e-12)
    # 5 of 10 (Clopper & Pearson's chart; Agresti & Coull, Am. Stat. 52(2), 1998): 0.187-0.813
    lo, hi = clopper_pearson(5, 10)
    assert (lo, hi) == pytest.approx((0.187086, 0.812914), abs=1e-6)
    # 19 of 20 at 95 %: 0.7513-0.9987
    assert clopper_pearson(19, 20) == pytest.approx((0.751267, 0.998735), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 200), data=st.data(),
       confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_clopper_pearson_is_the_beta_quantile_interval(n, data, confidence) -> None:
    k = data.draw(st.integers(0, n))
    lo, hi = clopper_pearson(k, n, confidence)
    a = 1 - confidence
    want_lo = 0.0 if k == 0 else float(sps.beta.ppf(a / 2, k, n - k + 1))
    want_hi = 1.0 if k == n else float(sps.beta.ppf(1 - a / 2, k + 1, n - k))
    # scipy's root finder and the beta quantile agree to ~1e-10 absolute
    assert lo == pytest.approx(want_lo, abs=1e-9) and hi == pytest.approx(want_hi, abs=1e-9)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_clopper_pearson_covers_at_least_its_level() -> None:
    """Exact coverage P(p in CI(K, n)), K ~ Bin(n, p), on a grid of p: never below 0.95."""
    n = 20
    cis = [clopper_pearson(k, n) for k in range(n + 1)]
    for p in np.linspace(0.001, 0.999, 199):
        cover = sum(sps.binom.pmf(k, n, p) for k, (lo, hi) in enumerate(cis) if lo <= p <= hi)
        assert cover >= 0.95 - 1e-12, (p, cover)


def test_zero_failure_runs_known_values() -> None:
    # 0.95^59 = 0.0485 <= 0.05 < 0.95^58 = 0.0510; 0.99^299 = 0.0496 <= 0.05 < 0.99^298
    assert zero_failure_runs(0.05) == 59 and zero_failure_runs(0.01) == 299
    assert zero_failure_runs(0.05, 0.99) == 90  # 0.95^90 = 0.0099
    assert zero_failure_runs(0.5) == 5  # 0.5^5 = 1/32 <= 0.05 < 1/16


@settings(max_examples=80, deadline=None)
@given(rate=st.floats(1e-3, 0.9), confidence=st.floats(0.5, 0.999))
def test_zero_failure_runs_is_the_smallest_such_n(rate, confidence) -> None:
    n = zero_failure_runs(rate, confidence)
    assert (1 - rate) ** n <= 1 - confidence
    assert n == 1 or (1 - rate) ** (n - 1) > 1 - confidence
    # the same n from the exact interval: 0 failures in n runs, one-sided upper bound <= rate
    assert 1 - (1 - confidence) ** (1 / n) <= rate * (1 + 1e-12)


@pytest.mark.parametrize("args, name", [((-1, 5), "k"), ((6, 5), "k"), ((0, 0), "n"),
                                        ((1, 5, 1.0), "confidence")])
def test_clopper_pearson_bad_input(args, name) -> None:
    with pytest.raises(ValueError, match=name):
        clopper_pearson(*args)


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, math.nan])
def test_zero_failure_runs_bad_rate(rate) -> None:
    with pytest.raises(ValueError, match="rate"):
        zero_failure_runs(rate)
