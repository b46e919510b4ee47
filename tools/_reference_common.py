"""Fixed problem shared by the ``tools/reference_*.py`` scripts: a small float64 MLP
(5 → 6, tanh → 3), 20 batches of 8 samples with 3 classes, all drawn from
``numpy.random.default_rng(seed)``; the initial weights, data and the reference trajectory are
written to the fixture (numbers only), and the tests rebuild the same architecture from them.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
import torch
from torch import nn

N_IN, N_HIDDEN, N_OUT = 5, 6, 3
BATCH, STEPS = 8, 20


def make_mlp() -> nn.Module:
    """The architecture (mirrored in ``tests/torch/test_reference_*.py``)."""
    return nn.Sequential(nn.Linear(N_IN, N_HIDDEN), nn.Tanh(), nn.Linear(N_HIDDEN, N_OUT))


def fixed_problem(seed: int = 0) -> dict[str, np.ndarray]:
    """Initial weights (flattened per parameter), inputs ``(STEPS*BATCH, N_IN)`` and labels."""
    rng = np.random.default_rng(seed)
    model = make_mlp()
    params = {}
    for name, p in model.named_parameters():
        params[f"init/{name}"] = rng.standard_normal(tuple(p.shape)) * 0.7
    x = rng.standard_normal((STEPS * BATCH, N_IN))
    y = rng.integers(0, N_OUT, STEPS * BATCH)
    return {**params, "inputs": x, "targets": y}


def build_model(problem: dict[str, np.ndarray]) -> nn.Module:
    """float64 model with the fixture's initial weights."""
    model = make_mlp().double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.as_tensor(problem[f"init/{name}"]))
    return model


def batches(problem: dict[str, np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x = torch.as_tensor(problem["inputs"])
    y = torch.as_tensor(problem["targets"], dtype=torch.long)
    return [(x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]) for i in range(STEPS)]


def flat(model: nn.Module) -> np.ndarray:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).numpy().copy()


#: where the fixtures go: the project's tests/data
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data"


def reference_args(doc: str, fixture: str, what: str) -> argparse.Namespace:
    """The command line every ``tools/reference_*.py`` takes: ``checkout`` (a local checkout of
    ``what``) and ``--out`` (default ``tests/data/<fixture>``)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("checkout", type=Path, help=f"checkout of {what}")
    ap.add_argument("--out", type=Path, default=FIXTURES / fixture)
    return ap.parse_args()


def repo_commit(path: Path) -> str:
    """Commit of the reference checkout (``git rev-parse HEAD``, or the REFERENCE_COMMIT file
    a ``git archive`` export can carry), else ``"unknown"``."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], check=True,
                             capture_output=True, text=True)
        return out.stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        f = path / "REFERENCE_COMMIT"
        return f.read_text().strip() if f.exists() else "unknown"


def save(out: Path, problem: dict[str, np.ndarray], trajectory: np.ndarray, commit: str,
         **extra: np.ndarray) -> None:
    """Numbers only: the commit is stored as its 40 hex digits' integer value."""
    out.parent.mkdir(parents=True, exist_ok=True)
    commit_int = np.array([int(commit[i:i + 8], 16) for i in range(0, 40, 8)], dtype=np.int64) \
        if len(commit) == 40 else np.zeros(5, dtype=np.int64)
    np.savez_compressed(out, trajectory=trajectory, commit=commit_int, **problem, **extra)
    print(f"wrote {out} (reference commit {commit})")
