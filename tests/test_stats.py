"""The distribution-free median interval (``asam_theory.stats.median_interval``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asam_theory.stats import median_interval


def _coverage(k: int, n: int) -> float:
    """1 - 2 P(Bin(n, 1/2) <= k - 1), summed exactly."""
    return 1.0 - 2.0 * sum(math.comb(n, j) for j in range(k)) / 2.0**n


def test_known_ranks() -> None:
    # n = 15: [x_(4), x_(12)] covers with 1 - 2 (1 + 15 + 105 + 455) / 2^15 = 0.96484375
    r = median_interval(range(1, 16))
    assert (r["low"], r["high"], r["rank"], r["median"]) == (4.0, 12.0, 4, 8.0)
    assert r["coverage"] == pytest.approx(0.96484375, abs=1e-15)
    # n = 5: even the range covers only 1 - 2/32 = 0.9375 < 0.95 -> the range, with that coverage
    r = median_interval([3.0, 1.0, 2.0, 5.0, 4.0])
    assert (r["low"], r["high"], r["rank"]) == (1.0, 5.0, 1)
    assert r["coverage"] == pytest.approx(0.9375)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=80),
       st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99]))
def test_interval_properties(values, confidence) -> None:
    r = median_interval(values, confidence)
    n = len(values)
    assert r["n"] == n and r["low"] <= r["median"] <= r["high"]
    assert r["low"] in values and r["high"] in values
    k = r["rank"]
    assert r["coverage"] == pytest.approx(max(_coverage(k, n), 0.0), abs=1e-12)
    if k > 1 or _coverage(1, n) >= confidence:
        assert r["coverage"] >= confidence
    if k + 1 <= (n + 1) // 2:  # the rank is the largest that reaches the level
        assert _coverage(k + 1, n) < confidence


def test_monte_carlo_coverage() -> None:
    """Skewed data (exponential, median ln 2), n = 20: the interval covers the median as often
    as its stated coverage (4,000 samples: standard error 0.003, bound 4 standard errors)."""
    rng = np.random.default_rng(0)
    samples = rng.exponential(size=(4000, 20))
    r = median_interval(samples[0])
    k = r["rank"]
    s = np.sort(samples, axis=1)
    hit = (s[:, k - 1] <= math.log(2)) & (math.log(2) <= s[:, 20 - k])
    se = math.sqrt(r["coverage"] * (1 - r["coverage"]) / 4000)
    assert abs(hit.mean() - r["coverage"]) < 4 * se


@pytest.mark.parametrize("values, confidence, name", [
    ([], 0.95, "values"), ([1.0], 1.0, "confidence"), ([1.0], 0.0, "confidence")])
def test_bad_input(values, confidence, name) -> None:
    with pytest.raises(ValueError, match=name):
        median_interval(values, confidence)
