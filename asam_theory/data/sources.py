"""The data sets: MNIST-1D generated offline by ``mnist1d``, scikit-learn's digits, and
CIFAR-10/100 from a local copy (:mod:`asam_theory.data.cifar`).

* MNIST-1D (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024,
  arXiv 2011.14439): ``mnist1d.data.make_dataset(get_dataset_args())`` builds 5,000 sequences of
  length 40 from ten 1-D templates (padding, shear, translation, correlated and i.i.d. noise) and
  splits them 4,000 / 1,000; it is computed in a few seconds and never downloads (unlike
  ``mnist1d.data.get_dataset``, which is not used).  ``make_dataset`` reseeds the global
  ``random``/``numpy.random`` state; :func:`raw_mnist1d` restores both afterwards.  Optional
  package: the ``data`` extra.
* Digits (scikit-learn, the UCI optical digits test set): 1,797 images of 8×8 pixels in 0..16,
  split 70 / 30 stratified with a fixed seed.

The raw arrays are generated once per process and data seed (cached); :func:`load_dataset`
then carves the validation split, adds label noise and standardises
(:func:`asam_theory.data.base.prepare`).
"""

from __future__ import annotations

import functools
import os
import random

import numpy as np

from asam_theory.data.base import Dataset, MissingExtraError, prepare
from asam_theory.validation import check_choice, check_int

#: data sets :func:`load_dataset` builds by itself (what the leaderboard can run)
DATASETS = ("mnist1d", "digits")
#: data sets read from a local copy (``root``)
LOCAL_DATASETS = ("cifar10", "cifar100")


#: MNIST-1D's published sizes: 4,000 training and 1,000 test sequences
MNIST1D_TRAIN, MNIST1D_TEST = 4000, 1000


@functools.lru_cache(maxsize=4)
def raw_mnist1d(data_seed: int = 42, test_size: int = MNIST1D_TEST
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""MNIST-1D's ``(x_train (4000, 40), y_train, x_test (test_size, 40), y_test)`` generated
    with the package's arguments and ``seed = data_seed`` (42 is the published one).

    ``test_size`` other than 1,000 asks ``make_dataset`` for ``num_samples = 4000 + test_size``
    sequences and ``train_split = 4000 / num_samples`` (its own arguments): the training split
    keeps its 4,000 sequences, drawn by the same generator, and a larger test set shrinks the
    test-set part of an accuracy's error (binomial, :math:`\sqrt{p(1-p)/n}`)."""
    data_seed = check_int("data_seed", data_seed, low=0)
    test_size = check_int("test_size", test_size, low=10)
    if test_size % 10:
        raise ValueError(f"test_size must be a multiple of 10 (ten classes), got {test_size}")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise MissingExtraError("mnist1d", "data", "the MNIST-1D data set") from exc
    args = get_dataset_args()
    args.seed = data_seed
    if test_size != MNIST1D_TEST:
        args.num_samples = MNIST1D_TRAIN + test_size
        # half a sample above the exact share: int(len * split) must give 4,000, not 3,999
        args.train_split = (MNIST1D_TRAIN + 0.5) / args.num_samples
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        d = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
    out = (np.asarray(d["x"], np.float64), np.asarray(d["y"], np.int64),
           np.asarray(d["x_test"], np.float64), np.asarray(d["y_test"], np.int64))
    for a in out:
        a.setflags(write=False)
    return out


@functools.lru_cache(maxsize=4)
def raw_digits(data_seed: int = 0, test_fraction: float = 0.3
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn digits split stratified into train/test with ``random_state=data_seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    out = tuple(np.asarray(a) for a in train_test_split(
        x.astype(np.float64), y.astype(np.int64), test_size=test_fraction,
        random_state=data_seed, stratify=y))
    for a in out:
        a.setflags(write=False)
    return out[0], out[2], out[1], out[3]


def load_dataset(name: str, *, seed: int = 0, label_noise: float = 0.0,
                 val_fraction: float = 0.2, data_seed: int | None = None,
                 test_size: int | None = None, root: str | os.PathLike | None = None
                 ) -> Dataset:
    """The data set ``name`` (one of :data:`DATASETS` or :data:`LOCAL_DATASETS`) prepared for
    run ``seed``.

    The train/test split is fixed by ``data_seed`` (default: 42 for MNIST-1D, the published
    generation seed; 0 for digits), so every run is evaluated on the same test set; ``seed``
    draws the validation split and the label noise.  ``test_size`` (MNIST-1D only; default
    the published 1,000) generates that many test sequences (:func:`raw_mnist1d`).
    ``"cifar10"``/``"cifar100"`` are read from ``root``, a local copy in torchvision's format
    (:mod:`asam_theory.data.cifar`; its fixed train/test split, images flattened to 3,072
    features, ``input_shape`` (3, 32, 32)); ``root`` applies to them only.
    """
    name = check_choice("dataset", name, DATASETS + LOCAL_DATASETS)
    if name in LOCAL_DATASETS:
        if test_size is not None or data_seed is not None:
            raise ValueError(f"test_size and data_seed do not apply to {name} (its split is "
                             f"the published one), got test_size={test_size!r}, "
                             f"data_seed={data_seed!r}")
        from asam_theory.data.cifar import IMAGE_SHAPE, n_classes, raw_cifar

        xtr, ytr, xte, yte, labels = raw_cifar(name, root)
        return prepare(name, xtr, ytr, xte, yte, n_classes=n_classes(name),
                       input_shape=IMAGE_SHAPE, label_noise=label_noise,
                       val_fraction=val_fraction, seed=seed,
                       info={"root": str(root), "class_names": list(labels)})
    if root is not None:
        raise ValueError(f"root applies to the local data sets (cifar10, cifar100) only, got "
                         f"root={str(root)!r} for {name!r}")
    if name == "mnist1d":
        ds = 42 if data_seed is None else data_seed
        xtr, ytr, xte, yte = raw_mnist1d(ds, MNIST1D_TEST if test_size is None else test_size)
        shape: tuple[int, ...] = (40,)
    elif test_size is not None:
        raise ValueError(f"test_size applies to mnist1d only (digits' test split is fixed), "
                         f"got test_size={test_size!r} for {name!r}")
    else:
        ds = 0 if data_seed is None else data_seed
        xtr, ytr, xte, yte = raw_digits(ds)
        shape = (8, 8)
    return prepare(name, xtr, ytr, xte, yte, n_classes=10, input_shape=shape,
                   label_noise=label_noise, val_fraction=val_fraction, seed=seed,
                   info={"data_seed": ds})
