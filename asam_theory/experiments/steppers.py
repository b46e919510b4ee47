"""One adapter per step form, and the methods of the training loop as a plain list.

The training loop (:func:`asam_theory.experiments.training.run_method`) knows no method by
name: it builds a method from its :class:`MethodEntry` and calls the entry's step adapter once
per descent batch.  The optimizers of :mod:`asam_theory.torch` are stepped in one of five
forms (README, "Use AsyncSAM (or any method) in your PyTorch training loop"):

* :class:`PlainStep` — the base optimizer alone: ``loss.backward(); opt.step()`` (SGD);
* :class:`ClosureStep` — davda54/sam's closure form: the caller's backward at w, then
  ``opt.step(closure)`` with the closure re-evaluating at the perturbed weights (SAM, LookSAM,
  AE-SAM, ARSAM, SSAM — the last also given the batch to refresh its mask);
* :class:`DescentClosureStep` — AsyncSAM: the closure is the step's only descent pass, at
  w + ρu (the ascent runs on the worker or, ``deterministic=True``, in the calling thread);
* :class:`BatchStep` — ``opt.step(inputs=x, targets=y)`` with the optimizer running its own
  passes (K-SAM, AUSAM — also given the batch's positions —, BiSAM, RWP);
* :class:`PairStep` — SAMPa's ``opt.step((x, y))``.

A new method adds one :class:`MethodEntry` to :data:`ENTRIES` (its builder and its form); a
SAM-family class the list does not name joins through :func:`class_entry`.  Every adapter
returns the training loss it saw: the loss at w where the form computes one (plain, closure,
batch forms), else the loss at the perturbed weights (AsyncSAM, SAMPa).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from asam_theory.torch.asyncsam import AsyncSAM, WorkerOptions
from asam_theory.torch.lookahead import LookAhead, StepBatches
from asam_theory.torch.sam import SAM
from asam_theory.torch.sampa import SAMPa


@dataclass
class Setup:
    """What a method's builder is given: the model and its counted loss, the base optimizer
    and its keywords, the method's own hyper-parameters and the run's batches.

    ``descent`` yields the descent batches B_0, B_1, … (one per step); ``ascent`` is the
    independent ascent-batch stream (a callable ``(b′) -> batch``, see
    :class:`asam_theory.experiments.training.IndexSampler`); ``worker`` the AsyncSAM worker
    options (device, threads, backend, … — one place for all threaded methods)."""

    model: nn.Module
    loss_fn: Callable[[Any, Any], torch.Tensor]
    base: type[torch.optim.Optimizer]
    base_kwargs: dict[str, Any]
    rho: float
    tau: int
    batch_size: int
    ascent_batch_size: int | str | None
    descent: Iterator[Any]
    ascent: Callable[[int], Any]
    n_train: int
    worker: WorkerOptions
    lam: float = 0.2
    ascent_device: torch.device | str = "cpu"
    ascent_num_threads: int | None = None
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Built:
    """A built method: the optimizer, its step adapter, the descent batches the loop takes
    (a look-ahead reads them τ steps early) and b′ where the method has one."""

    optimizer: Any
    step: Any
    batches: Iterator[Any]
    ascent_batch_size: int | None = None


# ---------------------------------------------------------------------------- step forms
class PlainStep:
    """The base optimizer alone: forward, backward, ``opt.step()``."""

    #: whether the loop's alignment probe applies (a perturbation to measure)
    perturbs = False

    def __init__(self, opt: Any, model: nn.Module, loss_fn: Callable) -> None:
        self.opt, self.model, self.loss_fn = opt, model, loss_fn

    def __call__(self, batch: Any, indices: torch.Tensor | None) -> torch.Tensor:
        self.opt.zero_grad()
        loss = self.loss_fn(self.model, batch)
        loss.backward()
        self.opt.step()
        return loss


class ClosureStep(PlainStep):
    """davda54/sam's form: the caller's backward at w, then ``opt.step(closure)``; an
    optimizer whose step takes ``mask_inputs``/``mask_targets`` (SSAM) is given the batch."""

    perturbs = True

    def __init__(self, opt: Any, model: nn.Module, loss_fn: Callable) -> None:
        super().__init__(opt, model, loss_fn)
        self.with_mask = "mask_inputs" in inspect.signature(opt.step).parameters

    def __call__(self, batch: Any, indices: torch.Tensor | None) -> torch.Tensor:
        self.opt.zero_grad()
        loss = self.loss_fn(self.model, batch)
        loss.backward()

        def closure() -> torch.Tensor:
            out = self.loss_fn(self.model, batch)
            out.backward()
            return out

        mask = {"mask_inputs": batch[0], "mask_targets": batch[1]} if self.with_mask else {}
        self.opt.step(closure, **mask)
        return loss


class DescentClosureStep(PlainStep):
    """AsyncSAM's form: ``opt.step(closure)``, the closure zeroing, evaluating at the
    perturbed weights and back-propagating (the step's only descent pass).  With step batches
    (the "previous batch" ascent) the batch of step t is recorded for the snapshot w_t first,
    as ``opt.step(x, y)`` does."""

    perturbs = True

    def __call__(self, batch: Any, indices: torch.Tensor | None) -> torch.Tensor:
        if self.opt.step_batches is not None:
            self.opt.step_batches.put(self.opt.version, batch)

        def closure() -> torch.Tensor:
            self.opt.zero_grad()
            out = self.loss_fn(self.model, batch)
            out.backward()
            return out

        return self.opt.step(closure)


class BatchStep(PlainStep):
    """``opt.step(inputs=x, targets=y)``: the optimizer runs its own passes with its
    per-sample criterion; one that keeps a per-sample table (AUSAM) gets the positions."""

    perturbs = False

    def __init__(self, opt: Any, model: nn.Module, loss_fn: Callable) -> None:
        super().__init__(opt, model, loss_fn)
        self.with_indices = "indices" in inspect.signature(opt.step).parameters

    def __call__(self, batch: Any, indices: torch.Tensor | None) -> torch.Tensor:
        where = {"indices": indices} if self.with_indices else {}
        return self.opt.step(inputs=batch[0], targets=batch[1], **where)


class PairStep(PlainStep):
    """SAMPa's form: ``opt.step((x, y))``."""

    perturbs = False

    def __call__(self, batch: Any, indices: torch.Tensor | None) -> torch.Tensor:
        return self.opt.step(batch)


# ---------------------------------------------------------------------------- builders
@dataclass(frozen=True)
class MethodEntry:
    """One method of the loop: its ``name``, its ``build(setup) -> Built`` and a line of
    description."""

    name: str
    build: Callable[[Setup], Built]
    doc: str = ""


def _sgd(s: Setup) -> Built:
    opt = s.base(s.model.parameters(), **s.base_kwargs)
    return Built(opt, PlainStep(opt, s.model, s.loss_fn), s.descent)


def _sam(s: Setup) -> Built:
    opt = SAM(s.model.parameters(), s.base, rho=s.rho, model=s.model, **s.base_kwargs)
    return Built(opt, ClosureStep(opt, s.model, s.loss_fn), s.descent)


def _sampa(s: Setup) -> Built:
    opt = SAMPa(s.model.parameters(), s.base, s.model, s.loss_fn, rho=s.rho, lam=s.lam,
                worker_device=s.ascent_device, worker_num_threads=s.ascent_num_threads,
                **s.base_kwargs)
    return Built(opt, PairStep(opt, s.model, s.loss_fn), s.descent)


#: AsyncSAM's ascent batches (ablation names): ``independent`` — the first b′ samples of
#: the t-th draw of the independent stream; ``same`` — of B_t itself, read τ steps early
#: (:class:`LookAhead`); ``previous`` — of B_{t−τ}, the batch of the stale step
#: (:class:`StepBatches`, SAMPa's choice for τ = 1)
ASCENTS = ("independent", "same", "previous")


def _asyncsam(ascent: str, deterministic: bool) -> Callable[[Setup], Built]:
    def build(s: Setup) -> Built:
        batches = s.descent
        if ascent == "same":
            batches = LookAhead(s.descent, tau=s.tau)
            source: Any = batches
        elif ascent == "previous":
            source = StepBatches(keep=s.tau + 1)
        else:
            source = s.ascent
        common = dict(rho=s.rho, tau=s.tau, ascent_loss=s.loss_fn, ascent_batches=source,
                      model=s.model, worker=s.worker, deterministic=deterministic,
                      **s.base_kwargs)
        if s.ascent_batch_size == "auto":
            if ascent != "independent" or deterministic:
                raise ValueError("ascent_batch_size='auto' is available for the threaded "
                                 "independent-batch AsyncSAM only; give b' as an integer")
            opt = AsyncSAM.tuned(s.model.parameters(), s.base, descent_batch_size=s.batch_size,
                                 **common)
        else:
            bp = s.batch_size if s.ascent_batch_size is None else s.ascent_batch_size
            opt = AsyncSAM(s.model.parameters(), s.base, ascent_batch_size=bp, **common)
        return Built(opt, DescentClosureStep(opt, s.model, s.loss_fn), batches,
                     opt.ascent_batch_size)

    return build


def class_entry(name: str, optimizer: type, protocol: str,
                optimizer_kwargs: dict[str, Any] | None = None) -> MethodEntry:
    """An entry for a SAM-family optimizer class the list does not name: ``protocol``
    ``"closure"`` (:class:`ClosureStep`) or ``"per_sample"`` (:class:`BatchStep`, with
    ``criterion=cross_entropy``); the class is given what it accepts of the model, ρ, the
    training set's size and epoch length, and ``optimizer_kwargs``."""

    def build(s: Setup) -> Built:
        accepts = inspect.signature(optimizer).parameters
        extra = dict(optimizer_kwargs or {})
        if protocol == "per_sample" or "criterion" in accepts:
            extra["criterion"] = F.cross_entropy
        if "model" in accepts:  # BatchNorm bypass, own passes
            extra["model"] = s.model
        if "rho" in accepts:  # (RWP, e.g., perturbs with its own scale instead)
            extra["rho"] = s.rho
        if "n_samples" in accepts:  # a per-sample table over the training set (AUSAM)
            extra.setdefault("n_samples", s.n_train)
        if "epoch_length" in accepts:
            extra.setdefault("epoch_length", max(1, -(-s.n_train // s.batch_size)))
        opt = optimizer(s.model.parameters(), s.base, **extra, **s.base_kwargs)
        form = BatchStep if protocol == "per_sample" else ClosureStep
        return Built(opt, form(opt, s.model, s.loss_fn), s.descent)

    return MethodEntry(name, build, f"{optimizer.__name__} ({protocol} form)")


#: the methods the loop knows by name, in the order of :data:`~asam_theory.experiments.
#: training.METHODS`
ENTRIES: tuple[MethodEntry, ...] = (
    MethodEntry("sgd", _sgd, "the base optimizer alone"),
    MethodEntry("sam", _sam, "SAM (closure form, BatchNorm frozen in the second pass)"),
    MethodEntry("asyncsam", _asyncsam("independent", False),
                "AsyncSAM, threaded, independent ascent batch"),
    MethodEntry("asyncsam-det", _asyncsam("independent", True),
                "AsyncSAM, deterministic fixed-τ sequential run, independent ascent batch"),
    MethodEntry("sampa", _sampa, "SAMPa (its two gradients concurrently)"),
    MethodEntry("asyncsam-la", _asyncsam("same", False),
                "AsyncSAM, threaded, look-ahead ascent batch (B_t read τ steps early)"),
    MethodEntry("asyncsam-la-det", _asyncsam("same", True),
                "AsyncSAM, deterministic, look-ahead ascent batch"),
    MethodEntry("asyncsam-prev", _asyncsam("previous", False),
                "AsyncSAM, threaded, ascent on the stale step's own batch B_{t−τ}"),
    MethodEntry("asyncsam-prev-det", _asyncsam("previous", True),
                "AsyncSAM, deterministic, ascent on B_{t−τ}"),
)

#: name → entry
BY_NAME: dict[str, MethodEntry] = {e.name: e for e in ENTRIES}


def asyncsam_name(ascent: str, deterministic: bool) -> str:
    """The :data:`ENTRIES` name of AsyncSAM with ascent batch ``ascent`` (one of
    :data:`ASCENTS`) in the given mode."""
    if ascent not in ASCENTS:
        raise ValueError(f"ascent must be one of {ASCENTS}, got {ascent!r}")
    stem = {"independent": "asyncsam", "same": "asyncsam-la", "previous": "asyncsam-prev"}
    return stem[ascent] + ("-det" if deterministic else "")
