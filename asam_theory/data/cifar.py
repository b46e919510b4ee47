r"""CIFAR-10 and CIFAR-100 (Krizhevsky, *Learning Multiple Layers of Features from Tiny Images*,
2009) read from a local copy in the format torchvision downloads; nothing is downloaded here.

The expected files under ``root`` (the python versions of the data sets, as
``torchvision.datasets.CIFAR10/100(root, download=True)`` leaves them):

* CIFAR-10: ``cifar-10-batches-py/data_batch_1`` … ``data_batch_5``, ``test_batch``,
  ``batches.meta``;
* CIFAR-100: ``cifar-100-python/train``, ``test``, ``meta``.

Each batch file is a pickled dict with ``b"data"`` (uint8, ``(n, 3072)``: the red, green and
blue 32×32 planes of each image, row-major) and ``b"labels"`` (CIFAR-10) or
``b"fine_labels"`` (CIFAR-100, the 100 classes used here); the meta file holds the class names
(``b"label_names"``, ``b"fine_label_names"``).  The pickles are read by an unpickler that
accepts only the few classes numpy arrays and these dicts need, so a tampered file cannot run
code.  A missing file raises :class:`MissingDataError` naming ``root`` and every expected file.
"""

from __future__ import annotations

import functools
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from asam_theory.validation import check_choice

#: data set -> (folder under root, training files, test files, meta file, label key, classes)
LAYOUT: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str, bytes, int]] = {
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                ("test_batch",), "batches.meta", b"labels", 10),
    "cifar100": ("cifar-100-python", ("train",), ("test",), "meta", b"fine_labels", 100),
}
#: one image: 3 channels of 32×32 pixels
IMAGE_SHAPE: tuple[int, int, int] = (3, 32, 32)

#: the only globals a CIFAR pickle may name (numpy's array reconstruction, in numpy 1 and 2)
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class MissingDataError(FileNotFoundError, ValueError):
    """A local data set is not where ``root`` says (a ``ValueError`` about ``root`` as well)."""


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a CIFAR batch may hold only arrays and dicts; this file "
                                     f"names {module}.{name}")


def _load(path: Path) -> dict:
    with path.open("rb") as f:
        out = _ArraysOnly(f, encoding="bytes").load()
    if not isinstance(out, dict):
        raise ValueError(f"{path} is not a CIFAR batch (a pickled dict), got "
                         f"{type(out).__name__}")
    return out


def expected_files(name: str) -> list[str]:
    """The files (relative to ``root``) that ``name`` needs."""
    folder, train, test, meta, _, _ = LAYOUT[check_choice("dataset", name, tuple(LAYOUT))]
    return [f"{folder}/{f}" for f in (*train, *test, meta)]


def _check_root(name: str, root: str | os.PathLike | None) -> Path:
    files = expected_files(name)
    if root is None:
        raise MissingDataError(
            f"root is required for {name}: the directory holding {files[0].split('/')[0]}/ "
            f"in torchvision's format ({', '.join(files)}); nothing is downloaded — fetch it "
            f"once with torchvision.datasets.{name.upper()}(root, "
            f"download=True) on a machine with network access")
    base = Path(root).expanduser()
    missing = [f for f in files if not (base / f).is_file()]
    if missing:
        raise MissingDataError(
            f"root={str(root)!r} does not hold {name} in torchvision's format: missing "
            f"{', '.join(missing)} (expected {', '.join(files)} under root)")
    return base


@functools.lru_cache(maxsize=2)
def _raw(name: str, root: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                        tuple[str, ...]]:
    base = _check_root(name, root)
    folder, train, test, meta, key, classes = LAYOUT[name]

    def read(files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            d = _load(base / folder / f)
            x = np.asarray(d[b"data"], dtype=np.uint8)
            y = np.asarray(d[key], dtype=np.int64)
            if x.ndim != 2 or x.shape[1] != 3072 or len(y) != len(x):
                raise ValueError(f"{base / folder / f}: data must be (n, 3072) uint8 with n "
                                 f"labels, got {x.shape} and {len(y)} labels")
            if y.size and (y.min() < 0 or y.max() >= classes):
                raise ValueError(f"{base / folder / f}: labels must lie in 0..{classes - 1}")
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    xtr, ytr = read(train)
    xte, yte = read(test)
    names_key = b"label_names" if name == "cifar10" else b"fine_label_names"
    labels = tuple(n.decode() if isinstance(n, bytes) else str(n)
                   for n in _load(base / folder / meta).get(names_key, []))
    for a in (xtr, ytr, xte, yte):
        a.setflags(write=False)
    return xtr, ytr, xte, yte, labels


def raw_cifar(name: str, root: str | os.PathLike | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(x_train uint8 (n, 3072), y_train, x_test, y_test, class names)`` of ``name``
    (``"cifar10"`` or ``"cifar100"``) read from ``root`` (cached per process)."""
    name = check_choice("dataset", name, tuple(LAYOUT))
    base = _check_root(name, root)
    return _raw(name, str(base.resolve()))


def n_classes(name: str) -> int:
    """10 or 100."""
    return LAYOUT[check_choice("dataset", name, tuple(LAYOUT))][5]
