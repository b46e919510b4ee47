r"""Preparing a classification data set: validation split, label noise, standardisation.

Given a fixed train/test split, :func:`prepare` carves a validation split from the training
split (stratified, seeded), corrupts the labels of the remaining training examples with
*symmetric label noise* (each label, with probability p, is replaced by a class drawn uniformly
among the *other* K − 1 classes — the "symmetric" model of Patrini et al., CVPR 2017,
arXiv 1609.03683; validation and test labels stay clean), and standardises every feature with
the mean and standard deviation of the (noisy-label) training inputs only,

.. math:: x \mapsto (x-\hat\mu_{\rm train})/\max(\hat\sigma_{\rm train},\,10^{-8}),

applied to the three splits alike (a constant feature, e.g. a blank digit pixel, is centred
and left unscaled).  Hyper-parameters are chosen on the validation split, never on test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asam_theory.validation import check_int, check_real

#: scale floor for (near-)constant features
STD_FLOOR = 1e-8


class MissingExtraError(ImportError):
    """An optional package is missing; the message names the extra that installs it."""

    def __init__(self, package: str, extra: str, what: str) -> None:
        super().__init__(
            f"{what} needs the optional package {package!r}, which is not installed; "
            f'install it with: pip install "asam-theory[{extra}]"'
        )
        self.package = package
        self.extra = extra


@dataclass(frozen=True)
class Dataset:
    """A prepared classification data set (features float64 ``(n, d)``, labels int64).

    ``y_train`` holds the (noisy) training labels the optimizer sees, ``y_train_clean`` the
    true ones, ``noisy`` the mask of corrupted labels; ``input_shape`` is the shape of one
    example for a convolutional model (``(40,)`` for MNIST-1D, ``(8, 8)`` for digits).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    y_train_clean: np.ndarray
    noisy: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    input_shape: tuple[int, ...]
    label_noise: float
    seed: int
    info: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def sizes(self) -> dict[str, int]:
        """``{"train", "val", "test"}`` example counts."""
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def symmetric_label_noise(y: np.ndarray, p: float, n_classes: int,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each label, independently with probability ``p``, becomes a uniformly drawn *different*
    class; returns ``(noisy labels, mask of changed labels)``."""
    p = check_real("label_noise", p, low=0.0, high=1.0, high_open=True)
    n_classes = check_int("n_classes", n_classes, low=2)
    y = np.asarray(y, dtype=np.int64)
    mask = rng.random(y.shape[0]) < p
    shift = rng.integers(1, n_classes, size=y.shape[0])
    return np.where(mask, (y + shift) % n_classes, y), mask


def validation_split(y: np.ndarray, fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of the indices of ``y``: ``(train indices, validation indices)`` with
    ``round(fraction · n_c)`` validation examples of each class c (at least one)."""
    fraction = check_real("val_fraction", fraction, low=0.0, high=1.0, low_open=True,
                          high_open=True)
    y = np.asarray(y)
    val: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        val.append(idx[: max(1, int(round(fraction * idx.size)))])
    v = np.sort(np.concatenate(val))
    t = np.setdiff1d(np.arange(y.size), v)
    return t, v


def standardise(x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Standardise every array with the per-feature mean and std of ``x_train`` (std floored at
    :data:`STD_FLOOR`, so a constant feature is centred only)."""
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    sd = np.where(sd > STD_FLOOR, sd, 1.0)
    return tuple((np.asarray(a, dtype=np.float64) - mu) / sd for a in (x_train, *others))


def prepare(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
            y_test: np.ndarray, *, n_classes: int, input_shape: tuple[int, ...],
            label_noise: float = 0.0, val_fraction: float = 0.2, seed: int = 0,
            info: dict | None = None) -> Dataset:
    """Validation split (seeded, stratified), symmetric noise on the remaining training labels,
    standardisation fitted on the training inputs; see the module docstring."""
    seed = check_int("seed", seed, low=0)
    label_noise = check_real("label_noise", label_noise, low=0.0, high=0.9, high_open=True)
    rng = np.random.default_rng([seed, 0x5EED])
    tr, va = validation_split(y_train, val_fraction, rng)
    y_clean = np.asarray(y_train, dtype=np.int64)[tr]
    y_noisy, mask = symmetric_label_noise(y_clean, label_noise, n_classes, rng)
    xs = standardise(np.asarray(x_train, dtype=np.float64)[tr],
                     np.asarray(x_train, dtype=np.float64)[va], np.asarray(x_test, np.float64))
    return Dataset(
        name=name, x_train=xs[0], y_train=y_noisy, y_train_clean=y_clean, noisy=mask,
        x_val=xs[1], y_val=np.asarray(y_train, dtype=np.int64)[va], x_test=xs[2],
        y_test=np.asarray(y_test, dtype=np.int64), n_classes=n_classes,
        input_shape=tuple(input_shape), label_noise=float(label_noise), seed=seed,
        info=dict(info or {}, val_fraction=val_fraction),
    )
