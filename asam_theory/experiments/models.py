"""Models for the real-data leaderboard: MLPs and small CNNs, each with an optional BatchNorm.

* ``"mlp"`` — d → w → w → K with ReLU (:class:`MLP`; ``"mlp-bn"`` adds BatchNorm1d after each
  hidden linear layer);
* ``"cnn"`` on a 1-D input of length n (MNIST-1D) — three 1-D convolutions with ReLU, kernel
  5/3/3 and stride 2 (the MNIST-1D reference CNN of Greydanus & Kobak, arXiv 2011.14439, with w
  channels), then a linear head (:class:`CNN1D`);
* ``"cnn"`` on an 8×8 image (digits) — two 3×3 convolutions with w and 2w channels, ReLU, a 2×2
  max-pool and a linear head (:class:`CNN2D`).

``"-bn"`` variants put BatchNorm after every hidden layer (convolution or linear).  The width w
sets the step cost (used for AsyncSAM's crossover figure).
"""

from __future__ import annotations

import torch
from torch import nn

from asam_theory.validation import check_choice, check_int

#: model names accepted by :func:`make_model`
MODEL_KINDS = ("mlp", "mlp-bn", "cnn", "cnn-bn")
#: default width per model family
DEFAULT_WIDTH = {"mlp": 128, "cnn": 32}


def _norm1d(on: bool, n: int) -> list[nn.Module]:
    return [nn.BatchNorm1d(n)] if on else []


class MLP(nn.Sequential):
    """d → w → w → K with ReLU (BatchNorm1d after each hidden linear layer if ``batchnorm``)."""

    def __init__(self, in_dim: int, width: int = 128, classes: int = 10,
                 batchnorm: bool = False) -> None:
        super().__init__(
            nn.Flatten(),
            nn.Linear(in_dim, width), *_norm1d(batchnorm, width), nn.ReLU(),
            nn.Linear(width, width), *_norm1d(batchnorm, width), nn.ReLU(),
            nn.Linear(width, classes),
        )


class CNN1D(nn.Module):
    """Three Conv1d (kernels 5, 3, 3; stride 2; w channels) + ReLU on a length-n signal, then a
    linear head (BatchNorm1d after each convolution if ``batchnorm``)."""

    def __init__(self, length: int, width: int = 32, classes: int = 10,
                 batchnorm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, n = 1, length
        for k, pad in ((5, 1), (3, 1), (3, 1)):
            layers += [nn.Conv1d(c_in, width, k, stride=2, padding=pad),
                       *_norm1d(batchnorm, width), nn.ReLU()]
            c_in, n = width, (n + 2 * pad - k) // 2 + 1
        self.length = length
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width * n, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(-1, 1, self.length)).flatten(1))


class CNN2D(nn.Module):
    """Two 3×3 Conv2d (w, 2w channels) + ReLU on an h×w image, 2×2 max-pool, linear head
    (BatchNorm2d after each convolution if ``batchnorm``)."""

    def __init__(self, shape: tuple[int, int], width: int = 16, classes: int = 10,
                 batchnorm: bool = False) -> None:
        super().__init__()
        bn = (lambda c: [nn.BatchNorm2d(c)]) if batchnorm else (lambda c: [])
        self.shape = tuple(shape)
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), *bn(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), *bn(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * width * (shape[0] // 2) * (shape[1] // 2), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(-1, 1, *self.shape)).flatten(1))


def make_model(kind: str, input_shape: tuple[int, ...], classes: int = 10,
               width: int | None = None, seed: int = 0) -> nn.Module:
    """Model ``kind`` (:data:`MODEL_KINDS`) for examples of ``input_shape`` (``(n,)``: 1-D
    signal, ``(h, w)``: image), initialised from ``torch.manual_seed(seed)``."""
    kind = check_choice("model", kind, MODEL_KINDS)
    family, bn = kind.split("-")[0], kind.endswith("-bn")
    width = check_int("width", DEFAULT_WIDTH[family] if width is None else width, low=1)
    shape = tuple(int(s) for s in input_shape)
    torch.manual_seed(seed)
    if family == "mlp":
        return MLP(int(torch.tensor(shape).prod()), width, classes, bn)
    if len(shape) == 1:
        return CNN1D(shape[0], width, classes, bn)
    if len(shape) == 2:
        return CNN2D((shape[0], shape[1]), width, classes, bn)
    raise ValueError(f"input_shape must have 1 or 2 entries for a CNN, got {input_shape!r}")
