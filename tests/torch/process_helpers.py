"""Module-level losses, models and batch sources for the worker-process tests: the process
backend pickles them for its worker, which imports this module by name (pytest puts this folder
on ``sys.path``; a spawned process inherits it)."""

from __future__ import annotations

import os
import time

import torch
from torch import nn
from torch.nn import functional as F

H = torch.diag(torch.tensor([3.0, 1.0, 0.5, 0.2], dtype=torch.float64))


def quad(params: list[torch.Tensor], batch: object = None) -> torch.Tensor:
    """½ wᵀHw of the first parameter (exact gradients: the batch is ignored)."""
    w = params[0]
    return 0.5 * w @ (H @ w)


def criterion(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


class RaiseAt:
    """A loss that raises ``ValueError`` at its ``n``-th call (counted in the worker)."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self, params: list[torch.Tensor], batch: object = None) -> torch.Tensor:
        self.calls += 1
        if self.calls >= self.n:
            raise ValueError(f"ascent loss failed on call {self.calls} (as planned)")
        return quad(params)


class Sleepy:
    """The quadratic after sleeping ``seconds`` (a slow, or hung, ascent device)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, params: list[torch.Tensor], batch: object = None) -> torch.Tensor:
        time.sleep(self.seconds)
        return quad(params)


class PidLoss:
    """The quadratic; records the pid of the process that evaluates it in a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, params: list[torch.Tensor], batch: object = None) -> torch.Tensor:
        with open(self.path, "w") as f:
            f.write(str(os.getpid()))
        return quad(params)


def net(dtype: torch.dtype = torch.float64, bn: bool = False, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(10, 16)]
    if bn:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.Tanh(), nn.Linear(16, 3)]
    return nn.Sequential(*layers).to(dtype)


class ConvNet(nn.Module):
    """A small CNN (for channels_last parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.head = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).flatten(1))
