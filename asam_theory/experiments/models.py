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

* ``"resnet20"`` on a 3×32×32 image (CIFAR) — He et al.'s ResNet-20 (:class:`ResNet20`).
"""

from __future__ import annotations

import torch
from torch import nn

from asam_theory.validation import check_choice, check_int

#: model names for the leaderboard's data (1-D signals, 8×8 images)
MODEL_KINDS = ("mlp", "mlp-bn", "cnn", "cnn-bn")
#: models for 3-channel 32×32 images (CIFAR), also accepted by :func:`make_model`
IMAGE_MODEL_KINDS = ("resnet20",)
#: default width per model family
DEFAULT_WIDTH = {"mlp": 128, "cnn": 32, "resnet20": 16}


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
    """Model ``kind`` (:data:`MODEL_KINDS` or :data:`IMAGE_MODEL_KINDS`) for examples of
    ``input_shape`` (``(n,)``: 1-D signal, ``(h, w)``: image, ``(c, h, w)``: colour image for
    ResNet-20), initialised from ``torch.manual_seed(seed)``."""
    kind = check_choice("model", kind, MODEL_KINDS + IMAGE_MODEL_KINDS)
    family, bn = kind.split("-")[0], kind.endswith("-bn")
    width = check_int("width", DEFAULT_WIDTH[family] if width is None else width, low=1)
    shape = tuple(int(s) for s in input_shape)
    torch.manual_seed(seed)
    if family == "resnet20":
        return ResNet20(classes, width, tuple(shape))
    if family == "mlp":
        return MLP(int(torch.tensor(shape).prod()), width, classes, bn)
    if len(shape) == 1:
        return CNN1D(shape[0], width, classes, bn)
    if len(shape) == 2:
        return CNN2D((shape[0], shape[1]), width, classes, bn)
    raise ValueError(f"input_shape must have 1 or 2 entries for a CNN, got {input_shape!r}")


class _BasicBlock(nn.Module):
    """Two 3×3 convolutions with BatchNorm and ReLU, plus the option-A shortcut of He et al.:
    the identity, or — where the block halves the resolution and doubles the channels — the
    input subsampled by 2 and zero-padded to the new channel count (no parameters)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad = stride, c_out - c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.pad:
            half = self.pad // 2
            short = nn.functional.pad(short, (0, 0, 0, 0, half, self.pad - half))
        return torch.relu(out + short)


class ResNet20(nn.Module):
    """ResNet-20 for 32×32 images (He, Zhang, Ren & Sun, *Deep Residual Learning for Image
    Recognition*, CVPR 2016, arXiv 1512.03385, §4.2): a 3×3 convolution with w channels, three
    stages of n = 3 basic blocks with w, 2w, 4w channels (16/32/64 at w = 16; the first block of
    the second and third stage has stride 2), global average pooling and a linear head —
    6n + 2 = 20 weighted layers.  Shortcuts are option A (identity with zero-padded channels,
    parameter-free), as the paper uses on CIFAR: 269,722 parameters for 10 classes (the paper's
    0.27 M; option B's two 1×1 projections with BatchNorm would add 2,752).  He
    initialisation (normal, fan-out) for the convolutions, BatchNorm at weight 1 and bias 0.
    Input: flattened or (3, 32, 32) images."""

    def __init__(self, classes: int = 10, width: int = 16,
                 input_shape: tuple[int, ...] = (3, 32, 32)) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (channels, height, width) for resnet20, got "
                             f"{input_shape!r}")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.stem = nn.Sequential(nn.Conv2d(self.input_shape[0], width, 3, padding=1,
                                            bias=False), nn.BatchNorm2d(width), nn.ReLU())
        blocks: list[nn.Module] = []
        c_in = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            for i in range(3):
                blocks.append(_BasicBlock(c_in, c_out, 2 if stage > 0 and i == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x.reshape(-1, *self.input_shape)))
        return self.head(out.mean(dim=(2, 3)))
