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

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from asam_theory.experiments.allocator import minor_faults
from asam_theory.torch._common import bn_frozen, check_device
from asam_theory.torch.asyncsam import AsyncSAM, WorkerOptions
from asam_theory.torch.bn import recalibrate_bn
from asam_theory.torch.lookahead import LookAhead
from asam_theory.torch.sam import SAM
from asam_theory.torch.sampa import SAMPa

METHODS = ("sgd", "sam", "asyncsam", "asyncsam-det", "sampa", "asyncsam-la")
#: step contracts of other optimizers (see :func:`run_method`)
PROTOCOLS = ("closure", "per_sample")
MODELS = ("mlp", "cnn")


@dataclass
class DigitsData:
    """Train/test tensors (x: float (n, d), y: int64), the noisy-label mask and, optionally, a
    validation split (``x_val``, ``y_val``); :func:`tensor_data` builds one from an
    :class:`asam_theory.data.Dataset`."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    noisy: torch.Tensor
    label_noise: float
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> DigitsData:
        val = (None, None) if self.x_val is None else (self.x_val.to(device, dtype),
                                                        self.y_val.to(device))
        return DigitsData(
            self.x_train.to(device, dtype), self.y_train.to(device),
            self.x_test.to(device, dtype), self.y_test.to(device),
            self.noisy.to(device), self.label_noise, *val,
        )


#: the tensors of a prepared data set (any data set, not only digits)
TensorData = DigitsData


def tensor_data(ds: Any) -> DigitsData:
    """Tensors (float32 features, int64 labels) of an :class:`asam_theory.data.Dataset`."""
    f = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    i = lambda a: torch.tensor(np.asarray(a), dtype=torch.int64)  # noqa: E731
    return DigitsData(f(ds.x_train), i(ds.y_train), f(ds.x_test), i(ds.y_test),
                      torch.tensor(np.asarray(ds.noisy)), float(ds.label_noise),
                      f(ds.x_val), i(ds.y_val))


class GradCounter:
    """Wraps a loss ``fn(model, batch)`` and counts its calls and the examples they saw (each
    call is followed by one backward pass in every method here: one gradient evaluation);
    thread-safe, since AsyncSAM's and SAMPa's workers call it from their own threads."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.calls = 0
        self.examples = 0
        self._lock = threading.Lock()

    def __call__(self, model: Any, batch: Any) -> torch.Tensor:
        with self._lock:
            self.calls += 1
            self.examples += int(len(batch[1]))
        return self.fn(model, batch)


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
    """Batches drawn uniformly with replacement from ``(x, y)`` by a seeded generator;
    ``last_indices`` holds the positions of the last batch drawn (for optimizers that keep a
    per-sample table, e.g. AUSAM)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, seed: int) -> None:
        self.x, self.y = x, y
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        self.last_indices: torch.Tensor | None = None

    def __call__(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(self.y), (batch_size,), generator=self.gen)
        idx = idx.to(self.x.device)
        self.last_indices = idx
        return self.x[idx], self.y[idx]


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
    val_acc: float | None = None
    grad_evals: int = 0
    grad_examples: int = 0
    curve: list[dict[str, float]] = field(default_factory=list)
    timed_steps: int = 0
    #: minor page faults of the process per timed step (all threads): fresh pages from the
    #: kernel, see :mod:`asam_theory.experiments.allocator`
    minor_faults_per_step: float = 0.0


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
    model: nn.Module | None = None,
    record_every: int = 0,
    warmup: int = 0,
    ascent_num_threads: int | None = None,
    optimizer: Any = None,
    optimizer_kwargs: dict[str, Any] | None = None,
    protocol: str = "closure",
) -> RunResult:
    """Train ``model_kind`` on ``data`` with ``method`` and evaluate it.

    Descent batches come from one generator seeded by ``seed`` (identical across methods);
    AsyncSAM's ascent batches (size b′, default b) from a second generator (``seed + 1``).
    Reported time per step excludes the fidelity probes (a measurement, not part of a method)
    and the first ``warmup`` steps.

    ``model`` (optional) is a freshly built module to train instead of ``make_model(model_kind)``
    (``model_kind`` is then only a label). ``ascent_batch_size="auto"`` lets AsyncSAM pick b′
    from measured timings. ``record_every`` = k > 0 records, every k steps, the training
    seconds so far (evaluations excluded), the gradient evaluations so far and the test (and
    validation) accuracy into ``curve``. Gradient evaluations are counted by wrapping the loss
    (:class:`GradCounter`); AsyncSAM's fidelity probes are not counted.

    Any other SAM-family optimizer joins with ``optimizer`` (its class; ``method`` is then a
    label), ``optimizer_kwargs`` (its own hyper-parameters) and ``protocol``: ``"closure"``
    (davda54/sam contract: the caller's backward at w, then ``step(closure)``) or
    ``"per_sample"`` (``step(inputs=x, targets=y)`` with ``criterion=cross_entropy``; then the
    optimizer runs its own passes and the gradient count is its ``counts["grads"]`` in
    full-batch equivalents, when it keeps one).
    """
    if method not in METHODS and optimizer is None:
        raise ValueError(f"method must be one of {METHODS} (or give optimizer=), got {method!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    dev = check_device("device", device)
    d = data.to(dev, dtype)
    if model is None:
        model = make_model(model_kind, seed, hidden=hidden)
    model = model.to(dev, dtype)
    model.train()
    loss_fn = GradCounter(classification_loss)
    sampler = IndexSampler(d.x_train, d.y_train, seed)
    base = torch.optim.SGD
    kw = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
    bprime: Any = batch_size if ascent_batch_size is None else ascent_batch_size
    opt: Any
    lookahead: LookAhead | None = None
    if method == "sgd":
        opt = base(model.parameters(), **kw)
    elif method == "sam":
        opt = SAM(model.parameters(), base, rho=rho, **kw)
    elif method.startswith("asyncsam"):
        worker = WorkerOptions(device=ascent_device, max_staleness=max_staleness,
                               num_threads=ascent_num_threads, fidelity_every=fidelity_every)
        if method == "asyncsam-la":
            # the loader knows its next batches: the same descent batches, read tau ahead
            lookahead = LookAhead((sampler(batch_size) for _ in range(steps)), tau=tau)
            ascent_batches: Any = lookahead
        else:
            # ascent batches are drawn where the ascent runs (no device transfer per step)
            ascent_batches = IndexSampler(data.x_train.to(ascent_device, dtype),
                                          data.y_train.to(ascent_device), seed + 1)
        common = dict(rho=rho, tau=tau, ascent_loss=loss_fn, ascent_batches=ascent_batches,
                      model=model, worker=worker, deterministic=method == "asyncsam-det", **kw)
        if bprime == "auto":
            if lookahead is not None:
                raise ValueError("ascent_batch_size='auto' is not available with asyncsam-la; "
                                 "give b' as an integer")
            opt = AsyncSAM.tuned(model.parameters(), base, descent_batch_size=batch_size,
                                 **common)
        else:
            opt = AsyncSAM(model.parameters(), base, ascent_batch_size=bprime, **common)
    elif method == "sampa":
        opt = SAMPa(
            model.parameters(), base, model, loss_fn, rho=rho, lam=lam,
            worker_device=ascent_device, worker_num_threads=ascent_num_threads, **kw,
        )
    else:  # a SAM-family optimizer class with the davda54/sam or per-sample contract
        import inspect

        extra = dict(optimizer_kwargs or {})
        accepts = inspect.signature(optimizer).parameters
        if protocol == "per_sample" or "criterion" in accepts:
            extra["criterion"] = F.cross_entropy
        if "model" in accepts:  # BatchNorm bypass, own passes
            extra["model"] = model
        if "rho" in accepts:  # (RWP, e.g., perturbs with its own scale instead)
            extra["rho"] = rho
        if "n_samples" in accepts:  # a per-sample table over the training set (AUSAM)
            extra.setdefault("n_samples", len(d.y_train))
        if "epoch_length" in accepts:
            extra.setdefault("epoch_length", max(1, -(-len(d.y_train) // batch_size)))
        opt = optimizer(model.parameters(), base, **extra, **kw)
        # SSAM-like steps refresh a mask from data: they get the step's batch
        with_mask = "mask_inputs" in inspect.signature(opt.step).parameters
        with_indices = "indices" in inspect.signature(opt.step).parameters
    if method.startswith("asyncsam"):
        bprime = opt.ascent_batch_size
    loss_fn.calls = loss_fn.examples = 0  # the b′ tuner's trial gradients are not the method's
    losses: list[float] = []
    curve: list[dict[str, float]] = []
    timed = steps - min(max(int(warmup), 0), steps)
    eval_s = 0.0

    def record(step: int, train_s: float) -> None:
        probes = len(getattr(opt, "fidelity_history", []))
        if d.x_val is not None:
            recalibrate_bn(model, d.x_train[:1024])
        point = {"step": step, "train_s": train_s,
                 "grad_evals": loss_fn.calls - probes,
                 "test_acc": accuracy(model, d.x_test, d.y_test)}
        if d.x_val is not None:
            point["val_acc"] = accuracy(model, d.x_val, d.y_val)
        curve.append(point)

    try:
        t_start = time.perf_counter()
        t0, probe0, f0 = t_start, 0.0, minor_faults()
        for i in range(steps):
            if i == steps - timed:
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                t0, probe0 = time.perf_counter(), getattr(opt, "probe_seconds", 0.0)
                f0 = minor_faults()
                eval_s = 0.0
            batch = sampler(batch_size) if lookahead is None else next(lookahead)
            if method == "sgd":
                opt.zero_grad()
                loss = loss_fn(model, batch)
                loss.backward()
                opt.step()
            elif method == "sam":
                opt.zero_grad()
                loss = loss_fn(model, batch)
                loss.backward()
                opt.first_step(zero_grad=True)
                with bn_frozen(model):
                    loss_fn(model, batch).backward()
                opt.second_step(zero_grad=True)
            elif method == "sampa":
                loss = opt.step(batch)
            elif method not in METHODS and protocol == "per_sample":
                where = {"indices": sampler.last_indices} if with_indices else {}
                loss = opt.step(inputs=batch[0], targets=batch[1], **where)
            elif method not in METHODS:  # closure contract: first gradient by the caller
                opt.zero_grad()
                loss = loss_fn(model, batch)
                loss.backward()

                def closure(batch: Any = batch) -> torch.Tensor:
                    out = loss_fn(model, batch)
                    out.backward()
                    return out

                mask = {"mask_inputs": batch[0], "mask_targets": batch[1]} if with_mask else {}
                opt.step(closure, **mask)  # the loss recorded is the one at w, as for SAM
            else:
                def closure(batch: Any = batch) -> torch.Tensor:
                    opt.zero_grad()
                    out = loss_fn(model, batch)
                    out.backward()
                    return out

                loss = opt.step(closure)
            losses.append(float(loss.detach()))
            if record_every and ((i + 1) % record_every == 0 or i + 1 == steps):
                te, fe = time.perf_counter(), minor_faults()
                record(i + 1, te - t_start - eval_s - getattr(opt, "probe_seconds", 0.0))
                eval_s += time.perf_counter() - te
                f0 += minor_faults() - fe  # evaluation is not part of the steps
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        wall = time.perf_counter() - t0 - eval_s
        faults = minor_faults() - f0
        probe = getattr(opt, "probe_seconds", 0.0) - probe0
        staleness = list(getattr(opt, "staleness_history", []))
        fidelity = list(getattr(opt, "fidelity_history", []))
    finally:
        if hasattr(opt, "close"):
            opt.close()
    recalibrate_bn(model, d.x_train)
    clean = ~d.noisy
    n_probe = len(fidelity)
    if protocol == "per_sample" and method not in METHODS and hasattr(opt, "counts"):
        loss_fn.calls = int(round(float(opt.counts["grads"])))
        loss_fn.examples = int(round(float(opt.counts["grads"]) * batch_size))
    return RunResult(
        method=method, model=model_kind, seed=seed, steps=steps,
        test_acc=accuracy(model, d.x_test, d.y_test),
        train_acc_clean=accuracy(model, d.x_train[clean], d.y_train[clean]),
        final_train_loss=float(np.mean(losses[-20:])) if losses else float("nan"),
        wall_s=wall, time_per_step_s=(wall - probe) / max(timed, 1),
        minor_faults_per_step=faults / max(timed, 1),
        staleness=staleness, fidelity=fidelity,
        ascent_batch_size=bprime if method.startswith("asyncsam") else None,
        losses=losses,
        val_acc=None if d.x_val is None else accuracy(model, d.x_val, d.y_val),
        grad_evals=loss_fn.calls - n_probe,
        grad_examples=loss_fn.examples - n_probe * (bprime or 0)
        if method.startswith("asyncsam") else loss_fn.examples,
        curve=curve, timed_steps=timed,
    )


train_loop = run_method
