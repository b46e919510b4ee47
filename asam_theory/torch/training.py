"""Training-loop helpers shared by every method: data, models, one ``run_method`` for all.

Data: scikit-learn's ``digits`` (1797 8×8 images, 10 classes, shipped with scikit-learn), a
stratified train/test split, features scaled to [0, 1], optional *symmetric label noise* on the
training labels: with probability p a label is replaced by a uniformly drawn *different* class
(test labels stay clean), the setting where SAM's robustness to noisy labels shows.

Methods (``METHODS``): ``sgd`` (the base optimizer alone), ``sam`` (:class:`SAM`), ``asyncsam``
(:class:`AsyncSAM`, threaded), ``asyncsam-det`` (:class:`AsyncSAM`, deterministic), ``sampa``
(:class:`SAMPa`), ``asyncsam-la`` (threaded :class:`AsyncSAM` with look-ahead ascent batches,
:class:`~asam_theory.torch.lookahead.LookAhead`: the ascent of step t runs at w_{t−τ} on the
first b′ samples of the descent batch B_t). All use SGD with the same lr/momentum/weight decay
and the same descent batches.
BatchNorm statistics are recomputed from unperturbed forward passes over the training set at the
final weights before evaluation (:func:`recalibrate_bn`), for every method alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from asam_theory.torch._common import batchnorm_modules, bn_frozen, check_device
from asam_theory.torch.asyncsam import AsyncSAM, WorkerOptions
from asam_theory.torch.lookahead import LookAhead
from asam_theory.torch.sam import SAM
from asam_theory.torch.sampa import SAMPa

METHODS = ("sgd", "sam", "asyncsam", "asyncsam-det", "sampa", "asyncsam-la")
MODELS = ("mlp", "cnn")


@dataclass
class DigitsData:
    """Train/test tensors (x: float (n, 64), y: int64) and the noisy-label mask."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    noisy: torch.Tensor
    label_noise: float

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> DigitsData:
        return DigitsData(
            self.x_train.to(device, dtype), self.y_train.to(device),
            self.x_test.to(device, dtype), self.y_test.to(device),
            self.noisy.to(device), self.label_noise,
        )


def load_digits_data(
    label_noise: float = 0.0, seed: int = 0, test_fraction: float = 0.3
) -> DigitsData:
    """Digits with a stratified split (``seed``) and symmetric training-label noise p."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 <= label_noise < 0.9:
        raise ValueError(f"label_noise must be in [0, 0.9), got {label_noise!r}")
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    xtr, xte, ytr, yte = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    rng = np.random.default_rng(seed + 10_007)
    noisy = rng.random(len(ytr)) < label_noise
    shift = rng.integers(1, 10, size=len(ytr))  # a different class, uniformly
    ytr_noisy = np.where(noisy, (ytr + shift) % 10, ytr)
    return DigitsData(
        torch.tensor(xtr, dtype=torch.float32), torch.tensor(ytr_noisy, dtype=torch.int64),
        torch.tensor(xte, dtype=torch.float32), torch.tensor(yte, dtype=torch.int64),
        torch.tensor(noisy), float(label_noise),
    )


class MLP(nn.Sequential):
    """64 → hidden → hidden → 10 with ReLU."""

    def __init__(self, in_dim: int = 64, hidden: int = 128, classes: int = 10) -> None:
        super().__init__(
            nn.Linear(in_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, classes),
        )


class SmallCNN(nn.Module):
    """Two 3×3 conv + BatchNorm + ReLU blocks on the 8×8 digit, 2×2 pooling, linear head."""

    def __init__(self, channels: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.BatchNorm2d(2 * channels),
            nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * channels * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1, 8, 8)
        return self.head(self.features(x).flatten(1))


def make_model(kind: str, seed: int, hidden: int = 128) -> nn.Module:
    """``"mlp"`` or ``"cnn"``, initialised from ``torch.manual_seed(seed)``."""
    if kind not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {kind!r}")
    torch.manual_seed(seed)
    return MLP(hidden=hidden) if kind == "mlp" else SmallCNN()


def classification_loss(model: Any, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of ``model(x)`` against ``y``."""
    x, y = batch
    return F.cross_entropy(model(x), y)


class IndexSampler:
    """Batches drawn uniformly with replacement from ``(x, y)`` by a seeded generator."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, seed: int) -> None:
        self.x, self.y = x, y
        self.gen = torch.Generator(device="cpu").manual_seed(seed)

    def __call__(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(self.y), (batch_size,), generator=self.gen)
        idx = idx.to(self.x.device)
        return self.x[idx], self.y[idx]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> None:
    """Recompute BatchNorm running statistics at the current weights (cumulative average over
    unperturbed train-mode forward passes on ``x``; as ``torch.optim.swa_utils.update_bn``)."""
    bns = batchnorm_modules(model)
    if not bns:
        return
    saved = [(m, m.momentum) for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for i in range(0, len(x), batch_size):
        model(x[i : i + batch_size])
    for m, mom in saved:
        m.momentum = mom
    model.train(was_training)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in eval mode."""
    was = model.training
    model.eval()
    acc = float((model(x).argmax(1) == y).float().mean())
    model.train(was)
    return acc


@dataclass
class RunResult:
    """Outcome of one training run."""

    method: str
    model: str
    seed: int
    steps: int
    test_acc: float
    train_acc_clean: float
    final_train_loss: float
    wall_s: float
    time_per_step_s: float
    staleness: list[int] = field(default_factory=list)
    fidelity: list[tuple[int, float]] = field(default_factory=list)
    ascent_batch_size: int | None = None
    losses: list[float] = field(default_factory=list)


def run_method(
    method: str,
    data: DigitsData,
    model_kind: str = "mlp",
    seed: int = 0,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    rho: float = 0.05,
    tau: int = 1,
    max_staleness: int | None = None,
    ascent_batch_size: int | None = None,
    lam: float = 0.2,
    device: str | torch.device = "cpu",
    ascent_device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    fidelity_every: int = 0,
    hidden: int = 128,
) -> RunResult:
    """Train ``model_kind`` on ``data`` with ``method`` and evaluate it.

    Descent batches come from one generator seeded by ``seed`` (identical across methods);
    AsyncSAM's ascent batches (size b′, default b) from a second generator (``seed + 1``).
    Reported time per step excludes the fidelity probes (a measurement, not part of a method).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    dev = check_device("device", device)
    d = data.to(dev, dtype)
    model = make_model(model_kind, seed, hidden=hidden).to(dev, dtype)
    model.train()
    sampler = IndexSampler(d.x_train, d.y_train, seed)
    base = torch.optim.SGD
    kw = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
    bprime = batch_size if ascent_batch_size is None else ascent_batch_size
    opt: Any
    lookahead: LookAhead | None = None
    if method == "sgd":
        opt = base(model.parameters(), **kw)
    elif method == "sam":
        opt = SAM(model.parameters(), base, rho=rho, **kw)
    elif method == "asyncsam-la":
        # the loader knows its next batches: the same descent batches, read tau steps ahead
        lookahead = LookAhead((sampler(batch_size) for _ in range(steps)), tau=tau)
        opt = AsyncSAM(
            model.parameters(), base, rho=rho, tau=tau, ascent_batch_size=bprime,
            worker=WorkerOptions(device=ascent_device, max_staleness=max_staleness,
                                 fidelity_every=fidelity_every),
            ascent_loss=classification_loss, ascent_batches=lookahead, model=model, **kw,
        )
    elif method in ("asyncsam", "asyncsam-det"):
        opt = AsyncSAM(
            model.parameters(), base, rho=rho, tau=tau, ascent_batch_size=bprime,
            worker=WorkerOptions(device=ascent_device, max_staleness=max_staleness,
                                 fidelity_every=fidelity_every),
            ascent_loss=classification_loss,
            # ascent batches are drawn where the ascent runs (no device transfer per step)
            ascent_batches=IndexSampler(data.x_train.to(ascent_device, dtype),
                                        data.y_train.to(ascent_device), seed + 1),
            model=model, deterministic=method == "asyncsam-det", **kw,
        )
    else:
        opt = SAMPa(
            model.parameters(), base, model, classification_loss, rho=rho, lam=lam,
            worker_device=ascent_device, **kw,
        )
    losses: list[float] = []
    try:
        t0 = time.perf_counter()
        for _ in range(steps):
            batch = sampler(batch_size) if lookahead is None else next(lookahead)
            if method == "sgd":
                opt.zero_grad()
                loss = classification_loss(model, batch)
                loss.backward()
                opt.step()
            elif method == "sam":
                opt.zero_grad()
                loss = classification_loss(model, batch)
                loss.backward()
                opt.first_step(zero_grad=True)
                with bn_frozen(model):
                    classification_loss(model, batch).backward()
                opt.second_step(zero_grad=True)
            elif method == "sampa":
                loss = opt.step(batch)
            else:
                def closure(batch: Any = batch) -> torch.Tensor:
                    opt.zero_grad()
                    out = classification_loss(model, batch)
                    out.backward()
                    return out

                loss = opt.step(closure)
            losses.append(float(loss.detach()))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        wall = time.perf_counter() - t0
        probe = getattr(opt, "probe_seconds", 0.0)
        staleness = list(getattr(opt, "staleness_history", []))
        fidelity = list(getattr(opt, "fidelity_history", []))
    finally:
        if hasattr(opt, "close"):
            opt.close()
    recalibrate_bn(model, d.x_train)
    clean = ~d.noisy
    return RunResult(
        method=method, model=model_kind, seed=seed, steps=steps,
        test_acc=accuracy(model, d.x_test, d.y_test),
        train_acc_clean=accuracy(model, d.x_train[clean], d.y_train[clean]),
        final_train_loss=float(np.mean(losses[-20:])) if losses else float("nan"),
        wall_s=wall, time_per_step_s=(wall - probe) / max(steps, 1),
        staleness=staleness, fidelity=fidelity,
        ascent_batch_size=bprime if method.startswith("asyncsam") else None,
        losses=losses,
    )


train_loop = run_method
