"""Reading the ``tests/data/*_reference.npz`` fixtures written by ``tools/reference_*.py``:
the fixed float64 MLP (architecture of ``tools/_reference_common.py``, weights from the
fixture), its batches, and flattened weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

DATA = Path(__file__).resolve().parents[1] / "data"
BATCH = 8


def fixture(name: str) -> dict[str, np.ndarray]:
    with np.load(DATA / name) as z:
        return {k: z[k] for k in z.files}


def commit_of(fx: dict[str, np.ndarray]) -> str:
    """The reference commit stored in the fixture (40 hex digits)."""
    return "".join(f"{int(v):08x}" for v in fx["commit"])


def mlp_from(fx: dict[str, np.ndarray]) -> nn.Module:
    """5 → 6 (tanh) → 3, float64, with the fixture's initial weights."""
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.as_tensor(fx[f"init/{name}"]))
    return model


def fixture_batches(fx: dict[str, np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x = torch.as_tensor(fx["inputs"])
    y = torch.as_tensor(fx["targets"], dtype=torch.long)
    return [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, len(x), BATCH)]


def flat(model: nn.Module) -> np.ndarray:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).numpy().copy()
