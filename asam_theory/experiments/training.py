"""The training loop of every real-data driver: data, models, one ``run_method`` for all.

Data: :func:`tensor_data` turns a prepared :class:`asam_theory.data.Dataset` (the data layer:
MNIST-1D or scikit-learn's digits, a fixed test split, a seeded validation split carved from
train, symmetric label noise on the training labels only) into tensors; the leaderboard,
``HEADLINE``, ``ABLATION`` and ``BASELINES`` all train on it.  :func:`load_digits_data` is the
older digits loader (a per-seed test split, features scaled to [0, 1]) kept for the timing
benchmarks, which do not evaluate.

Methods: :func:`run_method` knows no method by name.  It builds the method from its entry in
:data:`asam_theory.experiments.steppers.ENTRIES` (``sgd``; ``sam``; ``asyncsam`` threaded and
``asyncsam-det`` deterministic with the independent ascent batch; ``asyncsam-la``/``-la-det``
with the look-ahead ascent batch; ``asyncsam-prev``/``-prev-det`` with the stale step's own
batch; ``sampa``) or, for any other SAM-family optimizer, from its class and step contract, and
steps it through the entry's adapter (one per step form).  All use SGD with the same
lr/momentum/weight decay and the same descent batches (one generator seeded by the run's
seed); AsyncSAM's independent ascent batches come from a second generator (seed + 1,
:class:`IndexSampler`: the first b′ samples of a b-sized draw per step).

Collapse: a run whose loss turns non-finite stops there; every run is diagnosed after
evaluation (:func:`asam_theory.experiments.collapse.diagnose`: non-finite, or stuck at ln C
with chance accuracy) and carries the reason in :attr:`RunResult.collapsed`.

BatchNorm statistics are recomputed from unperturbed forward passes over the training set at
the final weights before evaluation (:func:`recalibrate_bn`), for every method alike, so no
method gains from a different statistics schedule.
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
from asam_theory.experiments.collapse import diagnose
from asam_theory.experiments.steppers import BY_NAME, ENTRIES, BatchStep, Setup, class_entry
from asam_theory.torch._common import bn_frozen, check_device
from asam_theory.torch.asyncsam import WorkerOptions
from asam_theory.torch.bn import recalibrate_bn

#: the methods :func:`run_method` knows by name (the entries of the step-adapter list)
METHODS = tuple(e.name for e in ENTRIES)
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
        #: called with the model before each evaluation (the loop's alignment probe)
        self.hook: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """A copy for AsyncSAM's worker process: the loss, counting from zero there (the
        optimizer reports the worker's evaluations itself, ``AsyncSAM.remote_ascent_gradients``);
        no lock and no probe hook cross."""
        return {"fn": self.fn}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["fn"])

    def __call__(self, model: Any, batch: Any) -> torch.Tensor:
        with self._lock:
            self.calls += 1
            self.examples += int(len(batch[1]))
        if self.hook is not None:
            self.hook(model)
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
    per-sample table, e.g. AUSAM).

    ``draw`` = b fixes how many positions each call draws: a call for k ≤ b samples returns
    the first k of a b-sized draw (k > b draws k).  This is the one definition of AsyncSAM's
    *independent ascent batch*: A_t is the first b′ samples of the t-th b-sized draw of the
    generator seeded ``seed + 1``, so runs at different b′ share their ascent batches' prefix
    (paired across b′) and the stream does not depend on b′."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, seed: int,
                 draw: int | None = None) -> None:
        self.x, self.y = x, y
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        self.draw = draw
        self.last_indices: torch.Tensor | None = None

    def __call__(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = batch_size if self.draw is None else max(int(self.draw), batch_size)
        idx = torch.randint(0, len(self.y), (n,), generator=self.gen)[:batch_size]
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


class AlignmentProbe:
    r"""Cosine between the perturbation a method applies at step t and SAM's fresh direction
    :math:`\nabla L_{B_t}(w_t)` on the descent batch, measured from the outside.

    Before a probed step the loop :meth:`arm` s it (w_t is copied, the fresh gradient taken
    under :func:`bn_frozen`, neither counted as the method's work); during the step every
    evaluation of the loss on the trained model in the loop's thread records the
    displacement w − w_t of the weights it runs at (the hook of :class:`GradCounter`); after
    the step :meth:`finish` takes the last non-zero displacement — the perturbation of the
    step's descent pass, ρ·u — and its cosine to the fresh gradient (float64).  The workers'
    own evaluations (on their replicas, in their threads) are not seen."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.thread = threading.get_ident()
        self.cosines: list[tuple[int, float]] = []
        self._ref: list[torch.Tensor] | None = None
        self._fresh: list[torch.Tensor] = []
        self._disp: list[torch.Tensor] | None = None
        self._step = 0

    def arm(self, step: int, batch: Any) -> None:
        self._step = step
        with torch.enable_grad(), bn_frozen(self.model):
            loss = classification_loss(self.model, batch)
            grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        self._fresh = [torch.zeros_like(p) if g is None else g.detach()
                       for p, g in zip(self.params, grads, strict=True)]
        self._ref = [p.detach().clone() for p in self.params]
        self._disp = None

    def __call__(self, model: Any) -> None:
        if self._ref is None or model is not self.model or threading.get_ident() != self.thread:
            return
        disp = [p.detach() - r for p, r in zip(self.params, self._ref, strict=True)]
        if any(bool(d.any()) for d in disp):
            self._disp = [d.clone() for d in disp]

    def finish(self) -> None:
        if self._ref is not None and self._disp is not None:
            dot = sum(float((a.double() * f.double()).sum())
                      for a, f in zip(self._disp, self._fresh, strict=True))
            na = sum(float((a.double() ** 2).sum()) for a in self._disp) ** 0.5
            nf = sum(float((f.double() ** 2).sum()) for f in self._fresh) ** 0.5
            self.cosines.append((self._step, dot / max(na * nf, 1e-300)))
        self._ref = None


@dataclass
class RunResult:
    """Outcome of one training run.

    ``collapsed``: ``None``, or why the run collapsed (:mod:`asam_theory.experiments.collapse`;
    ``collapse_kind`` "non-finite" or "stuck", ``collapse_step`` the first non-finite step,
    after which the loop stopped: ``steps_done`` < ``steps``).  ``alignment``: ``(step,
    cosine)`` of the applied perturbation to SAM's fresh direction on the descent batch
    (``align_every`` of :func:`run_method`); ``fidelity``: AsyncSAM's own probe (stale against
    fresh direction on the ascent batch).  ``test_correct``: per test example, classified
    right."""

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
    collapsed: str | None = None
    collapse_kind: str | None = None
    collapse_step: int | None = None
    steps_done: int = 0
    #: AsyncSAM's worker backend ("thread", "process", "deterministic"); ``None`` otherwise
    backend: str | None = None
    alignment: list[tuple[int, float]] = field(default_factory=list)
    test_correct: np.ndarray | None = None


def _entry(method: str, optimizer: Any, optimizer_kwargs: dict[str, Any] | None,
           protocol: str):
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if method in BY_NAME:
        return BY_NAME[method]
    if optimizer is None:
        raise ValueError(f"method must be one of {METHODS} (or give optimizer=), got {method!r}")
    return class_entry(method, optimizer, protocol, optimizer_kwargs)


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
    ascent_batch_size: int | str | None = None,
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
    worker: dict[str, Any] | None = None,
    align_every: int = 0,
    loss: Any = None,
) -> RunResult:
    """Train ``model_kind`` on ``data`` with ``method`` and evaluate it.

    Descent batches come from one generator seeded by ``seed`` (identical across methods);
    AsyncSAM's independent ascent batches (size b′, default b) from a second generator
    (``seed + 1``, the first b′ samples of each b-sized draw: :class:`IndexSampler`).
    Reported time per step excludes the probes (a measurement, not part of a method) and the
    first ``warmup`` steps.

    ``model`` (optional) is a freshly built module to train instead of ``make_model(model_kind)``
    (``model_kind`` is then only a label; the module is trained in place). ``ascent_batch_size
    ="auto"`` lets the threaded AsyncSAM pick b′ from measured timings. ``record_every`` = k > 0
    records, every k steps, the training seconds so far (evaluations excluded), the gradient
    evaluations so far and the test (and validation) accuracy into ``curve``. Gradient
    evaluations are counted by wrapping the loss (:class:`GradCounter`); probes are not counted.
    ``worker``: :class:`~asam_theory.torch.asyncsam.WorkerOptions` fields for the AsyncSAM
    methods, e.g. its backend, taking precedence over ``ascent_device``, ``max_staleness``,
    ``ascent_num_threads`` and ``fidelity_every`` — one place for every threaded run.
    ``align_every`` = k > 0 measures, every k-th step of a method that perturbs through the
    loss it is given, the cosine of its perturbation to SAM's fresh direction on the descent
    batch (:class:`AlignmentProbe`).  ``loss``: the training loss ``loss(model, batch)`` of
    every method's passes (``None``: :func:`classification_loss`, looked up when the run
    starts); the methods of the per-sample form use their own cross-entropy criterion.

    Any other SAM-family optimizer joins with ``optimizer`` (its class; ``method`` is then a
    label), ``optimizer_kwargs`` (its own hyper-parameters) and ``protocol``: ``"closure"``
    (davda54/sam contract: the caller's backward at w, then ``step(closure)``) or
    ``"per_sample"`` (``step(inputs=x, targets=y)`` with ``criterion=cross_entropy``; then the
    optimizer runs its own passes and the gradient count is its ``counts["grads"]`` in
    full-batch equivalents, when it keeps one).

    A loss that turns non-finite stops the run at that step; every run is diagnosed for
    collapse (:attr:`RunResult.collapsed`).
    """
    entry = _entry(method, optimizer, optimizer_kwargs, protocol)
    dev = check_device("device", device)
    d = data.to(dev, dtype)
    if model is None:
        model = make_model(model_kind, seed, hidden=hidden)
    model = model.to(dev, dtype)
    model.train()
    loss_fn = GradCounter(classification_loss if loss is None else loss)
    sampler = IndexSampler(d.x_train, d.y_train, seed)
    options = WorkerOptions(**{"device": ascent_device, "max_staleness": max_staleness,
                               "num_threads": ascent_num_threads,
                               "fidelity_every": fidelity_every, **dict(worker or {})})
    setup = Setup(
        model=model, loss_fn=loss_fn, base=torch.optim.SGD,
        base_kwargs=dict(lr=lr, momentum=momentum, weight_decay=weight_decay), rho=rho,
        tau=tau, batch_size=batch_size, ascent_batch_size=ascent_batch_size,
        descent=(sampler(batch_size) for _ in range(steps)),
        # ascent batches are drawn where the ascent runs (no device transfer per step)
        ascent=IndexSampler(data.x_train.to(ascent_device, dtype),
                            data.y_train.to(ascent_device), seed + 1, draw=batch_size),
        n_train=len(d.y_train), worker=options, lam=lam, ascent_device=ascent_device,
        ascent_num_threads=ascent_num_threads, optimizer_kwargs=dict(optimizer_kwargs or {}))
    built = entry.build(setup)
    opt, step_fn, batches = built.optimizer, built.step, built.batches
    loss_fn.calls = loss_fn.examples = 0  # the b′ tuner's trial gradients are not the method's
    probe = AlignmentProbe(model) if align_every and step_fn.perturbs else None
    losses: list[float] = []
    curve: list[dict[str, float]] = []
    timed = steps - min(max(int(warmup), 0), steps)
    eval_s = probe_s = 0.0

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

    done = 0
    try:
        t_start = time.perf_counter()
        t0, probe0, f0 = t_start, 0.0, minor_faults()
        for i in range(steps):
            if i == steps - timed:
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                t0, probe0 = time.perf_counter(), getattr(opt, "probe_seconds", 0.0)
                f0 = minor_faults()
                eval_s = probe_s = 0.0
            batch = next(batches)
            armed = probe is not None and i % align_every == 0
            if armed:
                tp = time.perf_counter()
                probe.arm(i, batch)
                loss_fn.hook = probe
                probe_s += time.perf_counter() - tp
            loss = step_fn(batch, sampler.last_indices)
            if armed:
                loss_fn.hook = None
                probe.finish()
            value = float(loss.detach())
            losses.append(value)
            done = i + 1
            if not np.isfinite(value):
                break  # diverged: reported (step, value) by the collapse diagnosis
            if record_every and ((i + 1) % record_every == 0 or i + 1 == steps):
                te, fe = time.perf_counter(), minor_faults()
                record(i + 1, te - t_start - eval_s - probe_s
                       - getattr(opt, "probe_seconds", 0.0))
                eval_s += time.perf_counter() - te
                f0 += minor_faults() - fe  # evaluation is not part of the steps
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        wall = time.perf_counter() - t0 - eval_s
        faults = minor_faults() - f0
        probe_total = getattr(opt, "probe_seconds", 0.0) - probe0 + probe_s
        staleness = list(getattr(opt, "staleness_history", []))
        fidelity = list(getattr(opt, "fidelity_history", []))
        backend = getattr(opt, "backend", None) if hasattr(opt, "staleness_history") else None
        remote = getattr(opt, "remote_ascent_gradients", None)
        if remote is not None:  # evaluated in the worker process, on its copy of the loss
            loss_fn.calls += remote[0]
            loss_fn.examples += remote[1]
    finally:
        loss_fn.hook = None
        if hasattr(opt, "close"):
            opt.close()
    timed_done = max(done - (steps - timed), 0)
    recalibrate_bn(model, d.x_train)
    clean = ~d.noisy
    n_probe = len(fidelity)
    if isinstance(step_fn, BatchStep) and hasattr(opt, "counts"):
        loss_fn.calls = int(round(float(opt.counts["grads"])))
        loss_fn.examples = int(round(float(opt.counts["grads"]) * batch_size))
    bprime = built.ascent_batch_size
    was = model.training
    model.eval()
    with torch.no_grad():
        hit = (model(d.x_test).argmax(1) == d.y_test).cpu().numpy()
    model.train(was)
    test_acc = float(hit.mean())
    n_classes = int(max(int(d.y_train.max()), int(d.y_test.max()))) + 1
    freqs = (torch.bincount(d.y_test.cpu(), minlength=n_classes).double()
             / len(d.y_test)).tolist()
    collapse = diagnose(losses, test_acc, len(d.y_test), n_classes, class_freqs=freqs)
    return RunResult(
        method=method, model=model_kind, seed=seed, steps=steps,
        test_acc=test_acc,
        train_acc_clean=accuracy(model, d.x_train[clean], d.y_train[clean]),
        final_train_loss=float(np.mean(losses[-20:])) if losses else float("nan"),
        wall_s=wall, time_per_step_s=(wall - probe_total) / max(timed_done, 1),
        minor_faults_per_step=faults / max(timed_done, 1),
        staleness=staleness, fidelity=fidelity,
        ascent_batch_size=bprime, losses=losses,
        val_acc=None if d.x_val is None else accuracy(model, d.x_val, d.y_val),
        grad_evals=loss_fn.calls - n_probe,
        grad_examples=loss_fn.examples - n_probe * (bprime or 0),
        curve=curve, timed_steps=timed_done,
        backend=backend,
        collapsed=None if collapse is None else collapse.reason,
        collapse_kind=None if collapse is None else collapse.kind,
        collapse_step=None if collapse is None else collapse.step,
        steps_done=done, alignment=list(probe.cosines) if probe is not None else [],
        test_correct=hit,
    )


train_loop = run_method
