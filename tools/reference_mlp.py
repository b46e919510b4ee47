"""The fixed setting of the reference-trajectory scripts ``tools/reference_<method>.py``.

A float64 MLP ``Linear(5, 8) -> Tanh -> Linear(8, 3)`` on 64 Gaussian-class points, 20 steps;
data, initial weights and the batch order come from ``numpy.random.default_rng(SEED)`` so
the reference run and the test that replays it (``tests/torch/test_peers_reference.py``) see the
same numbers.  Every fixture stores the data, the initial weights, the batches and the
trajectory (``params`` of shape ``(steps + 1, d)``, the flattened ``named_parameters`` after each
step), as numbers only, with the reference commit encoded as in ``tools/_reference_common.py``
(five int64 words; read with ``tests/torch/reference_fixtures.py::commit_of``).  The setting
differs from ``_reference_common``'s consecutive fresh batches because these methods need a
finite data set revisited over epochs with its sample indices (AUSAM's table, vSAM's epochs)
and two data shards (RWP).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

SEED = 0
N, IN, HIDDEN, OUT = 64, 5, 8, 3
STEPS = 20


def make_data(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = 1.5 * rng.standard_normal((OUT, IN))
    y = rng.integers(0, OUT, size=N)
    X = means[y] + rng.standard_normal((N, IN))
    return X, y


def make_init(seed: int = SEED) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return [rng.standard_normal((HIDDEN, IN)) / np.sqrt(IN), 0.1 * rng.standard_normal(HIDDEN),
            rng.standard_normal((OUT, HIDDEN)) / np.sqrt(HIDDEN), 0.1 * rng.standard_normal(OUT)]


def make_batches(batch_size: int, steps: int = STEPS, seed: int = SEED) -> np.ndarray:
    """``(steps, batch_size)`` sample indices: consecutive epochs of random permutations."""
    rng = np.random.default_rng(seed + 2)
    per_epoch = N // batch_size
    perms = [rng.permutation(N) for _ in range(-(-steps // per_epoch))]
    return np.stack([perms[t // per_epoch][(t % per_epoch) * batch_size:
                                           (t % per_epoch + 1) * batch_size]
                     for t in range(steps)])


def make_mlp(init: list[np.ndarray]) -> nn.Module:
    model = nn.Sequential(nn.Linear(IN, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, OUT)).double()
    with torch.no_grad():
        for p, v in zip(model.parameters(), init, strict=True):
            p.copy_(torch.from_numpy(v))
    return model


def flat(model: nn.Module) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy().copy()


def use_checkout(path: str | Path, inner: str = "") -> Path:
    """Put the reference checkout (or its sub-folder ``inner``) first on ``sys.path``."""
    root = Path(path).resolve() / inner
    if not root.is_dir():
        raise SystemExit(f"not a directory: {root}")
    sys.path.insert(0, str(root))
    return root


def save(out: str | Path, checkout: str | Path, **arrays) -> None:
    """Write the fixture; ``checkout`` gives the reference commit (``git rev-parse HEAD`` or
    its ``REFERENCE_COMMIT`` file)."""
    from _reference_common import repo_commit

    commit = repo_commit(Path(checkout).resolve())
    words = [int(commit[i:i + 8], 16) for i in range(0, 40, 8)] if len(commit) == 40 else [0] * 5
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, commit=np.array(words, dtype=np.int64),
             **{k: np.asarray(v) for k, v in arrays.items()})
    print(f"wrote {out} (reference commit {commit}; "
          f"{', '.join(f'{k}{np.shape(v)}' for k, v in arrays.items())})")
