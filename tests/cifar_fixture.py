"""Write a tiny CIFAR-10/100 copy in torchvision's format (a test helper; nothing committed).

Images are uint8 (n, 3072), the three 32×32 colour planes row-major, with a class-dependent
mean colour plus noise, so that a model can learn them; labels cycle through the classes.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from asam_theory.data.cifar import LAYOUT


def _batch(rng: np.random.Generator, n: int, classes: int, key: bytes, start: int) -> dict:
    y = (np.arange(start, start + n) % classes).astype(np.int64)
    colour = (y[:, None] * 37 % 256).astype(np.float64)
    x = np.clip(colour + rng.normal(0, 40, (n, 3072)), 0, 255).astype(np.uint8)
    return {b"data": x, key: y.tolist(), b"batch_label": b"fixture"}


def write_cifar(root: Path, name: str = "cifar10", n_train: int = 300, n_test: int = 100,
                seed: int = 0) -> dict[str, np.ndarray]:
    """Write ``name`` under ``root`` (``n_train`` images split over the training files,
    ``n_test`` test images); returns the arrays written, for comparison."""
    folder, train, test, meta, key, classes = LAYOUT[name]
    base = Path(root) / folder
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per = n_train // len(train)
    xs, ys = [], []
    for i, f in enumerate(train):
        d = _batch(rng, per, classes, key, i * per)
        xs.append(d[b"data"])
        ys.append(np.asarray(d[key]))
        (base / f).write_bytes(pickle.dumps(d, protocol=2))
    t = _batch(rng, n_test, classes, key, 0)
    (base / test[0]).write_bytes(pickle.dumps(t, protocol=2))
    names = [f"class{c}".encode() for c in range(classes)]
    meta_key = b"label_names" if name == "cifar10" else b"fine_label_names"
    (base / meta).write_bytes(pickle.dumps({meta_key: names}, protocol=2))
    return {"x_train": np.concatenate(xs), "y_train": np.concatenate(ys),
            "x_test": t[b"data"], "y_test": np.asarray(t[key])}
