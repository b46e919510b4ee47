"""Variance budget, minimum detectable effect, seeds needed and Fieller's ratio interval
(asam_theory.stats), and MNIST-1D's larger test set (asam_theory.data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asam_theory.stats import (
    fieller_ratio,
    minimum_detectable_effect,
    paired_variance_budget,
    seeds_needed,
)


def test_budget_of_pure_test_set_noise_is_all_test_set():
    """Independent per-example correctness (no training-seed effect, no systematic
    difference): the per-seed SD matches the test-set part, the common part is ~0."""
    rng = np.random.default_rng(0)
    a = rng.random((200, 2000)) < 0.8
    b = rng.random((200, 2000)) < 0.8
    vb = paired_variance_budget(a, b)
    expected = math.sqrt(2 * 0.8 * 0.2 / 2000)
    assert vb["sd_test"] == pytest.approx(expected, rel=0.05)
    # sample SD of 200 seeds: relative standard error about 1/sqrt(400) = 5 %
    assert vb["sd_per_seed"] == pytest.approx(expected, rel=0.2)
    assert vb["sd_test_common"] < 0.2 * expected


def test_budget_sees_a_training_seed_effect_and_a_common_test_effect():
    rng = np.random.default_rng(1)
    s, n = 100, 4000
    shift = 0.05 * rng.standard_normal(s)                   # training seed moves accuracy
    hard = rng.random(n) < 0.3                                # examples b always gets wrong
    a = rng.random((s, n)) < np.clip(0.8 + shift, 0, 1)[:, None]
    b = (rng.random((s, n)) < 0.8) & ~hard[None, :]
    vb = paired_variance_budget(a, b)
    assert vb["sd_train"] == pytest.approx(0.05, rel=0.25)
    assert vb["sd_test_common"] > 3 * vb["sd_test"] / math.sqrt(s)
    with pytest.raises(ValueError, match="shape"):
        paired_variance_budget(a, b[:, :10])


def test_mde_shrinks_with_seeds_and_seeds_needed_is_the_first_that_reaches_it():
    mdes = [minimum_detectable_effect(0.01, n) for n in (2, 4, 8, 16, 32)]
    assert all(x > y for x, y in zip(mdes, mdes[1:], strict=False))
    n = seeds_needed(0.01, 0.005)
    assert minimum_detectable_effect(0.01, n) <= 0.005 < minimum_detectable_effect(0.01, n - 1)
    assert seeds_needed(0.01, 0.005, floor_var=0.005 ** 2) is None  # the floor alone is 2.5x
    assert minimum_detectable_effect(0.01, 1) == math.inf


@given(st.floats(0.1, 2.0), st.integers(3, 40))
def test_fieller_contains_the_estimate_and_collapses_without_noise(theta, n):
    rng = np.random.default_rng(n)
    g = 0.05 + 0.01 * rng.standard_normal(n)
    exact = fieller_ratio(theta * g, g)
    # a double root: the square root of a rounded discriminant costs about sqrt(eps) digits
    assert exact["bounded"] and exact["low"] == pytest.approx(theta, rel=1e-6)
    assert exact["high"] == pytest.approx(theta, rel=1e-6)
    noisy = fieller_ratio(theta * g + 0.01 * rng.standard_normal(n), g)
    if noisy["bounded"]:
        assert noisy["low"] <= noisy["ratio"] <= noisy["high"]


def test_fieller_unbounded_when_the_denominator_is_not_significant():
    rng = np.random.default_rng(3)
    g = 0.01 * rng.standard_normal(5)
    out = fieller_ratio(rng.standard_normal(5), g - g.mean())
    assert not out["bounded"] and out["low"] == -math.inf


def test_fieller_coverage_is_close_to_nominal():
    rng = np.random.default_rng(4)
    hits = 0
    for _ in range(400):
        g = 0.03 + 0.01 * rng.standard_normal(10)
        a = 0.6 * g + 0.005 * rng.standard_normal(10)
        r = fieller_ratio(a, g, confidence=0.90)
        hits += r["low"] <= 0.6 <= r["high"]
    # 400 draws: binomial SD of the coverage 1.5 %; 4 SD band around 0.90
    assert 0.84 <= hits / 400 <= 0.96


def test_mnist1d_test_size_keeps_the_training_split():
    pytest.importorskip("mnist1d")
    from asam_theory.data import load_dataset

    big = load_dataset("mnist1d", test_size=2000)
    sizes = big.sizes()
    assert sizes["test"] == 2000 and sizes["train"] + sizes["val"] == 4000
    with pytest.raises(ValueError, match="test_size"):
        load_dataset("digits", test_size=2000)
