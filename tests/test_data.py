"""``asam_theory.data``: offline MNIST-1D and digits, validation split, label noise on the
training labels only, standardisation fitted on train, a clear error for a missing extra."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest

from asam_theory.data import (
    MissingExtraError,
    load_dataset,
    raw_mnist1d,
    symmetric_label_noise,
    validation_split,
)


@pytest.mark.parametrize("name", ["digits", "mnist1d"])
def test_splits_noise_and_standardisation(name: str) -> None:
    ds = load_dataset(name, seed=3, label_noise=0.2)
    n_total = {"digits": 1257, "mnist1d": 4000}[name]
    assert ds.sizes()["train"] + ds.sizes()["val"] == n_total
    assert ds.sizes()["test"] == {"digits": 540, "mnist1d": 1000}[name]
    assert ds.x_train.shape[1] == {"digits": 64, "mnist1d": 40}[name]
    # noise only on training labels, exactly where the mask says, always to another class
    changed = ds.y_train != ds.y_train_clean
    assert np.array_equal(changed, ds.noisy)
    # the rate is binomial(n, 0.2): 5 standard errors either side (false alarm < 1e-6)
    n = ds.noisy.size
    assert abs(ds.noisy.mean() - 0.2) < 5 * np.sqrt(0.2 * 0.8 / n)
    # standardisation fitted on train: train features have mean 0 and sd 1 (or 0 if constant)
    assert np.allclose(ds.x_train.mean(0), 0.0, atol=1e-10)
    sd = ds.x_train.std(0)
    assert np.all(np.isclose(sd, 1.0) | np.isclose(sd, 0.0))
    # ... and only on train: the test features are not re-centred on themselves
    assert not np.allclose(ds.x_test.mean(0), 0.0, atol=1e-6)
    # the same seed gives the same data; another seed another split and noise, same test set
    again = load_dataset(name, seed=3, label_noise=0.2)
    assert np.array_equal(again.y_train, ds.y_train) and np.array_equal(again.x_val, ds.x_val)
    other = load_dataset(name, seed=4, label_noise=0.2)
    assert not np.array_equal(other.y_val, ds.y_val) or not np.array_equal(
        other.y_train, ds.y_train)
    assert np.array_equal(other.y_test, ds.y_test)


def test_symmetric_noise_never_keeps_the_label_and_is_uniform() -> None:
    y = np.zeros(20_000, dtype=np.int64)
    noisy, mask = symmetric_label_noise(y, 0.5, 10, np.random.default_rng(0))
    assert np.all(noisy[mask] != 0) and np.all(noisy[~mask] == 0)
    counts = np.bincount(noisy[mask], minlength=10)[1:]
    # ~10,000 changed labels over 9 classes: each ~1,111 ± 31; 6 sd tolerance
    assert np.all(np.abs(counts - mask.sum() / 9) < 6 * np.sqrt(mask.sum() / 9))
    with pytest.raises(ValueError, match="label_noise"):
        symmetric_label_noise(y, 1.0, 10, np.random.default_rng(0))


def test_validation_split_is_stratified_and_disjoint() -> None:
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    tr, va = validation_split(y, 0.2, np.random.default_rng(1))
    assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == y.size
    assert list(np.bincount(y[va])) == [2, 4, 6, 8]
    with pytest.raises(ValueError, match="val_fraction"):
        validation_split(y, 1.0, np.random.default_rng(1))


def test_mnist1d_is_generated_without_touching_global_rng() -> None:
    raw_mnist1d.cache_clear()
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002 - checking the legacy global state is left alone
    before = (random.random(), np.random.random())  # noqa: NPY002
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    xtr, ytr, xte, yte = raw_mnist1d(42)
    assert (random.random(), np.random.random()) == before  # noqa: NPY002
    assert xtr.shape == (4000, 40) and xte.shape == (1000, 40)
    assert set(np.unique(ytr)) == set(range(10))


def test_missing_mnist1d_names_the_extra(monkeypatch) -> None:
    raw_mnist1d.cache_clear()
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(MissingExtraError, match=r"asam-theory\[data\]"):
        load_dataset("mnist1d")
    raw_mnist1d.cache_clear()


def test_bad_names_and_ranges() -> None:
    with pytest.raises(ValueError, match="dataset"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="label_noise"):
        load_dataset("digits", label_noise=0.95)
