"""AsyncSAM: asynchronous Sharpness-Aware Minimization (Jo, Lim, Lee 2025, arXiv 2503.11147).

SAM (``docs/methods.md`` §2.1) needs the ascent gradient g_t = ∇L_{B_t}(w_t) *before* the
descent gradient, so its two gradients run one after the other. AsyncSAM takes the ascent
gradient at stale weights w_s, s = t − τ_t, on its own (smaller) batch B′ of size b′, on another
device, while the descent device works:

    u_t     = g′_s / (‖g′_s‖₂ + 1e-12),       g′_s = ∇L_{B′}(w_s)          (SAM direction)
    u_t     = w_s² ⊙ g′_s / (‖|w_s| ⊙ g′_s‖₂ + 1e-12)                      (adaptive=True, ASAM)
    w_{t+1} = BaseOpt(w_t, ∇L_{B_t}(w_t + ρ u_t)).

Usage — a model and a loss function, stepped with the batch (README, "Use AsyncSAM (or any
method) in your PyTorch training loop")::

    opt = AsyncSAM.for_model(model, torch.nn.CrossEntropyLoss(), torch.optim.SGD,
                             rho=0.05, lr=0.1)
    for x, y in loader:
        loss = opt.step(x, y)      # w_t + ρu_{t−τ}: forward, backward, base step
    opt.close()                    # (or ``with AsyncSAM.for_model(...) as opt:``)

The worker evaluates each snapshot w_t on the batch of its own step (:class:`~asam_theory.
torch.lookahead.StepBatches`); ``ascent_batches=LookAhead(loader, tau)`` gives the same-batch
variant, any other ``ascent_batches`` an independent stream.  The general form (davda54/sam's
signature plus the AsyncSAM arguments, stepped with a closure)::

    opt = AsyncSAM(model.parameters(), torch.optim.SGD, rho=0.05, tau=1,
                   ascent_loss=loss_fn, ascent_batches=sampler, ascent_batch_size=128,
                   model=model, worker=WorkerOptions(device="cpu", max_staleness=2), lr=0.1)
    opt = AsyncSAM.tuned(..., descent_batch_size=512)   # b′ picked by measurement

The direction of each step comes from a *direction source* (``_directions``): the threaded
worker or the deterministic emulation, both with ``submit``/``acquire``, so the optimizer's step
and state code is the same in both modes.

Worker backends (``WorkerOptions(backend=...)``). ``"thread"`` (the default) runs the worker as
a thread of the training process: any loss, model and batch source work (lambdas included),
but both roles share one interpreter, and on a small model, where a step is mostly Python
dispatch, they queue up on the GIL (``docs/performance.md``). ``"process"`` runs the same worker
in a process of its own (:mod:`asam_theory.torch._process`): snapshots, directions and step batches
travel through shared-memory rings and a pipe, the loss, the model and an independent batch
source are pickled for it, and a script must guard its entry point with
``if __name__ == "__main__":``. Both follow the rules below (one window rule, one state format:
a state saved with one backend resumes with the other); :meth:`AsyncSAM.tuned` times both and
keeps the faster.

Thread backend. A daemon worker thread owns a private replica of the model on the
ascent device (``WorkerOptions.device``). At the start of step t the main thread publishes the
weights w_t as version t = number of steps so far (a step skipped by a GradScaler counts: see
"Training stack" below): on the CPU the worker copies them itself
when it starts the job (a *deferred* snapshot, off the main thread; the main thread takes the
copy only if the worker has not started by the time of its update); from CUDA the main thread's
stream copies them ``non_blocking`` into pinned memory, with a CUDA event the worker waits on.
The descent pass runs at w_t + ρu held in a second buffer that the parameters point to for the
closure (``p.data`` swapped, then swapped back), so w_t itself is never modified before the
update and nothing has to be restored: the main thread's whole extra work per step is one pass
w_t + ρu over the weights. (Code that caches the parameters' data pointers, such as CUDA graphs,
sees the two buffers alternate.) The worker computes u from the snapshot on a batch of
size b′ drawn from ``ascent_batches`` (the replica's parameters are re-bound to the snapshot, no
second copy). For step t the main thread takes the freshest completed direction whose version v
satisfies ``max(t − max_staleness, 0) ≤ v ≤ max(t − τ, origin)`` and waits (up to ``timeout``
seconds) if there is none; it records the staleness t − v it actually used. With τ = 1 and an
ascent that is faster than a descent step, the worker computes u from w_{t−1} while the main
thread descends at step t − 1, so the perturbation costs no wall time.

Start convention (matches the simulation engine, where w_{t−τ} := w_0 for t < τ): version 0 is
the weights at the first ``step``; every step t < τ uses the direction at w_0, so the first step
waits for that ascent. The threaded worker computes each snapshot once, on one ascent batch, so
the steps t < τ share that direction; the deterministic mode draws a batch at every step.

Faults. An exception in ``ascent_loss`` or ``ascent_batches`` ends the worker thread and is
re-raised in the main thread as :class:`~asam_theory.torch.AscentWorkerError` (the original
exception chained, its traceback in the message) at the next ``step``; a worker that does not
deliver within ``WorkerOptions.timeout`` gives a ``TimeoutError`` saying what it was doing
(drawing a batch, inside ``ascent_loss``, ...); a ``KeyboardInterrupt`` during ``step`` closes
the optimizer (worker joined) before propagating. Resuming from :meth:`AsyncSAM.state_dict` is
described there.

Deterministic mode (``deterministic=True``): no thread. Step t computes the direction in the
main thread at the stored iterate w_s, s = max(t − τ, 0), on a freshly drawn ascent batch, so the
trajectory is a pure function of the seeds; in float64 it reproduces
``asam_theory.methods.AsyncSAM`` run by ``asam_theory.engine.simulate``.

BatchNorm: the perturbed descent pass keeps the running statistics and ``num_batches_tracked``
(:class:`~asam_theory.torch._common.FrozenStats`: copied before the pass and back after it, two
``foreach`` calls per step), and the worker's replica has momentum 0 — so
AsyncSAM itself never changes running statistics (normalisation still uses batch statistics in
train mode). Since there is no unperturbed descent pass, recompute the statistics before
evaluation with :func:`asam_theory.torch.recalibrate_bn` (what the experiments' ``train_loop``
does for every method). Only parameters are snapshotted; the replica's buffers are its own.

Training stack (:mod:`asam_theory.torch.stack` holds the shared contract; every feature costs
nothing when unused):

* **autocast.** The caller's autocast on the descent device's type is read at every step
  (:class:`~asam_theory.torch.stack.AutocastState`) and travels with the snapshot of that
  step: the worker (thread or process; the process backend sends the state only when it
  changes) runs the ascent at w_t under the autocast of step t, same dtype, on the ascent
  device's type; the deterministic mode enters it in the main thread (and disables an autocast
  around a later step when step s had none).  The parameters are re-bound (``p.data``) for the
  descent pass and back, so autocast's cached low-precision weights are dropped after each
  change (:func:`~asam_theory.torch.stack.weights_changed`).
* **GradScaler** (``step(..., scaler=scaler)``).  The descent gradient is unscaled before
  clipping and the base step (:func:`~asam_theory.torch.stack.unscale_pass`).  The ascent
  gradient is computed by the worker without loss scaling (its direction is normalised, and
  its pass is a separate one); a non-finite direction is found on the main thread (the norm
  of u) and recorded in the scaler as an overflow.  A step whose direction or descent gradient
  holds an inf/NaN is *skipped*: no base step, the weights, the base optimizer's state and the
  perturbation buffers as before.  The version still advances: the snapshot published at the
  skipped step is the current weights, so its ascent is computed and used as any other, the
  next step publishes the same weights as a new version, and the window rule
  ``max(t − max_staleness, 0) ≤ v ≤ max(t − τ, origin)`` holds in steps as before (a skipped
  step only makes the perturbation fresher in updates).  The caller calls
  ``scaler.update()`` once after each step; ``skipped_steps`` counts the skips.
* **DistributedDataParallel.** A DDP-wrapped ``model``: the descent pass runs through the
  wrapper (its backward all-reduces), the worker's replica is a copy of ``model.module``
  (:func:`~asam_theory.torch.stack.original_module`), so each rank's ascent is computed on its
  own replica and its own b′ samples with no communication — the per-replica perturbation.
  With a scaler the ranks agree on a non-finite direction (one all-reduce of a flag per step).
* **Gradient accumulation.** The closure form accumulates inside its closure
  (:func:`~asam_theory.torch.stack.accumulate`); the batch form takes
  ``step(x, y, micro_batches=k)``.  Either way the k micro-batches share the step's one
  perturbation and give the step on their union; the ascent stays on its own b′ samples.
* **Clipping.** ``max_grad_norm=c`` clips the (unscaled, all-reduced) descent gradient with
  ``torch.nn.utils.clip_grad_norm_`` before the base step.
* **The rest.** ``channels_last`` parameters keep their layout in the replica, the snapshot
  buffers, the process backend's rings and the perturbed buffers; ``torch.compile(model)``
  trains (the replica, and the process backend's pickled model, are the original module
  ``model._orig_mod``); ``add_param_group`` after construction is refused (the replica and the
  buffers cover the parameters given at construction); LR schedulers attach to the optimizer
  or its ``base_optimizer`` and :meth:`AsyncSAM.state_dict` carries the skip count and the
  autocast of the snapshots it saves.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from asam_theory.torch._common import (
    FrozenStats,
    bn_frozen,
    cosine,
    global_norm,
    move_batch,
    normalized_direction,
    resolve_base_optimizer,
)
from asam_theory.torch._directions import (
    DirectionSource,
    SequentialDirections,
    ThreadedDirections,
    WorkerOptions,
)
from asam_theory.torch._worker import (
    AscentComputer,
    AscentLoss,
    BatchSource,
    Result,
    param_positions,
)
from asam_theory.torch.lookahead import LookAhead, StepBatches
from asam_theory.torch.stack import (
    AutocastState,
    FlagPass,
    GradPass,
    accumulate,
    agree_finite,
    check_max_grad_norm,
    check_scaler,
    clip_descent,
    ddp_of,
    original_module,
    unscale_pass,
    weights_changed,
)
from asam_theory.validation import check_int, check_nonnegative

__all__ = ["AsyncSAM", "WorkerOptions"]

#: Former constructor arguments that now live in :class:`WorkerOptions` (name there).
_WORKER_KNOBS = {
    "ascent_device": "device",
    "max_staleness": "max_staleness",
    "timeout": "timeout",
    "ascent_num_threads": "num_threads",
    "fidelity_every": "fidelity_every",
}


_MISSING_ASCENT_LOSS = """\
AsyncSAM() missing its ascent loss: the worker thread computes the perturbation itself, so it
must know the loss (davda54/sam's SAM gets it from your backward pass, AsyncSAM cannot).
For a model and a loss function, one line:
    opt = AsyncSAM.for_model(model, loss_fn, torch.optim.SGD, rho=0.05, lr=0.1)
then in the loop:  loss = opt.step(x, y)
(general form: AsyncSAM(params, torch.optim.SGD, ascent_loss=lambda m, batch: ...,
ascent_batches=..., model=model, lr=0.1), stepped with opt.step(closure))"""


class CriterionLoss:
    """``(model, (x, y)) -> loss_fn(model(x), y)``: a criterion as an AsyncSAM ascent loss."""

    def __init__(self, loss_fn: Callable[[Any, Any], torch.Tensor]) -> None:
        self.loss_fn = loss_fn

    def __call__(self, model: Any, batch: Any) -> torch.Tensor:
        inputs, targets = batch
        return self.loss_fn(model(inputs), targets)


class AsyncSAM(torch.optim.Optimizer):
    """Asynchronous SAM with the torch.optim contract (param groups, state_dict, closure step).

    The signature follows davda54/sam's ``SAM(params, base_optimizer, rho, adaptive, **kwargs)``
    plus the AsyncSAM arguments after the ``*``; :meth:`for_model` builds it from a model and a
    loss function (the common case, stepped with ``opt.step(x, y)``).

    Args:
        params: parameters or param-group dicts (each group may set its own ``rho``).
        base_optimizer: optimizer *class* (``torch.optim.SGD``, ``torch.optim.AdamW``, ...)
            instantiated on the param groups with ``**kwargs`` (davda54/sam convention; attach LR
            schedulers to ``.base_optimizer``). A fresh instance is accepted too: its class and
            settings are used (:func:`~asam_theory.torch._common.resolve_base_optimizer`).
        rho: radius ρ ≥ 0.
        adaptive: ASAM scaling T_w = diag|w| (davda54/sam ``adaptive=True``).
        tau: nominal staleness τ ≥ 0 (τ = 0: the direction at the current weights, i.e. SAM with
            the ascent on its own batch and device).
        ascent_loss: ``ascent_loss(model_or_params, batch) -> loss``; receives the replica model
            (if ``model`` is given) or the list of parameter tensors (functional mode).
            Required (a ``TypeError`` shows the :meth:`for_model` one-liner when it is missing).
        ascent_batches: source of ascent batches (see :class:`~asam_theory.torch._worker.
            BatchSource`); batches are moved to the ascent device. Called from the worker thread.
            A :class:`~asam_theory.torch.lookahead.LookAhead` (built with the same τ) makes the
            ascent *look ahead*: the snapshot w_t is handed the descent batch B_{t+τ} of the
            step that will use it (its first b′ samples), so the stale ascent is computed on
            the batch its descent uses; the training loop takes its descent batches from the
            same LookAhead. With τ = 0 this is SAM. With ``max_staleness`` > τ a step that
            takes an older version v gets the batch of step v + τ, not its own. A
            :class:`~asam_theory.torch.lookahead.StepBatches` evaluates w_t on the batch
            passed to ``step(x, y)`` at step t (the :meth:`for_model` default).
        ascent_batch_size: b′ — ``None`` (``ascent_batches()`` decides) or a positive int
            (``ascent_batches(b′)``; with a LookAhead, the first b′ samples of the batch).
            :meth:`tuned` picks b′ by measurement.
        model: the module owning ``params`` (needed for modules with BatchNorm and for
            ``ascent_loss`` written against a module); the replica is a deep copy. It may be
            wrapped in ``DistributedDataParallel`` and/or ``torch.compile``: the replica (and the
            process backend's pickled model) is then the module inside (``.module``,
            ``._orig_mod``), and the descent passes of the batch form run through the wrapper.
        worker: :class:`WorkerOptions` (ascent device, max_staleness, timeout, threads,
            fidelity probes); default ``WorkerOptions()``.
        deterministic: sequential emulation with fixed τ (see module docstring).
        max_grad_norm: clip the descent gradient to this global 2-norm before the base step
            (``None``: no clipping; see "Training stack" in the module docstring).
        **kwargs: passed to ``base_optimizer``.

    Attributes:
        staleness_history: staleness used at each step.
        skipped_steps: steps skipped by a GradScaler (an inf/NaN in the descent gradient or the
            direction).
        module: ``model`` without its DDP / ``torch.compile`` wrappers (``None`` without a
            model).
        wait_history: seconds the main thread waited for the direction at each step.
        fidelity_history: ``(step, cosine)`` pairs.
        probe_seconds: main-thread time spent on fidelity probes (not part of the method).
        tuning: the :class:`~asam_theory.torch.tuning.AscentBatchTuning` when built by
            :meth:`tuned`, else ``None``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type[torch.optim.Optimizer],
        rho: float = 0.05,
        adaptive: bool = False,
        *,
        tau: int = 1,
        ascent_loss: AscentLoss | None = None,
        ascent_batches: Any = None,
        ascent_batch_size: int | None = None,
        model: nn.Module | None = None,
        worker: WorkerOptions | None = None,
        deterministic: bool = False,
        max_grad_norm: float | None = None,
        **kwargs: Any,
    ) -> None:
        moved = sorted(set(kwargs) & (set(_WORKER_KNOBS) | {"descent_batch_size"}))
        if moved:
            hint = (
                "a measured ascent batch size comes from AsyncSAM.tuned(..., "
                "descent_batch_size=b)" if moved[0] == "descent_batch_size" else
                f"worker settings go in worker=WorkerOptions({_WORKER_KNOBS[moved[0]]}=...)"
            )
            raise ValueError(f"{moved[0]} is not an AsyncSAM argument: {hint}")
        if ascent_loss is None:
            raise TypeError(_MISSING_ASCENT_LOSS)
        base_optimizer, kwargs = resolve_base_optimizer(base_optimizer, kwargs, "AsyncSAM")
        rho = check_nonnegative("rho", rho)
        tau = check_int("tau", tau, low=0)
        if worker is None:
            worker = WorkerOptions()
        if not isinstance(worker, WorkerOptions):
            raise ValueError(f"worker must be a WorkerOptions, got {type(worker).__name__}")
        max_staleness = worker.staleness_bound(tau)
        if not callable(ascent_loss):
            raise ValueError("ascent_loss must be a callable (model_or_params, batch) -> loss")
        if ascent_batch_size is not None:
            if isinstance(ascent_batch_size, str):
                raise ValueError(
                    "ascent_batch_size must be None or an integer >= 1 (for a measured b′ use "
                    f"AsyncSAM.tuned(...)), got {ascent_batch_size!r}"
                )
            ascent_batch_size = check_int("ascent_batch_size", ascent_batch_size, low=1)

        defaults = dict(rho=rho, adaptive=bool(adaptive), **kwargs)
        super().__init__(params, defaults)
        for group in self.param_groups:
            check_nonnegative("rho (param group)", group["rho"])
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

        self.tau = tau
        self.max_staleness = max_staleness
        self.worker_options = worker
        self.ascent_device: torch.device = worker.device  # type: ignore[assignment]
        self.timeout = worker.timeout
        self.fidelity_every = worker.fidelity_every
        self.adaptive = bool(adaptive)
        self.deterministic = bool(deterministic)
        self.max_grad_norm = check_max_grad_norm(max_grad_norm)
        #: the module as given (the descent passes run through it: DDP, torch.compile)
        self.model = model
        #: the module inside its DDP / torch.compile wrappers: the replica's original
        self.module = None if model is None else original_module(model)
        self._ddp = ddp_of(model)
        self._params = [p for g in self.param_groups for p in g["params"]]
        if not self._params:
            raise ValueError("params is empty")
        self.descent_device = self._params[0].device
        #: steps skipped because a gradient held an inf/NaN (with a GradScaler)
        self.skipped_steps = 0
        self._descent_pass = GradPass(self, "descent")
        self._flag_pass = FlagPass(self)
        lookahead = ascent_batches if isinstance(ascent_batches, LookAhead) else None
        if lookahead is not None and lookahead.tau != tau:
            raise ValueError(f"ascent_batches is a LookAhead with tau={lookahead.tau}; it must "
                             f"be built with the optimizer's tau = {tau}")
        self.lookahead = lookahead
        #: the batches passed to ``step(x, y)`` when they are the ascent batches (for_model)
        self.step_batches = ascent_batches if isinstance(ascent_batches, StepBatches) else None
        if self.step_batches is not None:
            self.step_batches.keep = max(self.step_batches.keep, tau + 1)
        feed = lookahead if lookahead is not None else self.step_batches
        #: ``loss_fn(model(inputs), targets)`` of ``step(inputs, targets)`` (set by for_model)
        self.loss_fn: Callable[[Any, Any], torch.Tensor] | None = None
        batches = BatchSource(None if feed is not None else ascent_batches)
        if (ascent_batch_size is not None and not batches.sized and ascent_batches is not None
                and feed is None):
            raise ValueError(
                "ascent_batch_size given but ascent_batches is not a callable (batch_size) -> batch"
            )
        self.ascent_batch_size = ascent_batch_size
        self._ascent_loss = ascent_loss
        self.tuning: Any = None
        #: the measurements behind the backend when built by :meth:`tuned` (else ``None``)
        self.backend_choice: Any = None
        #: where the ascent runs: "deterministic" (no worker), "thread" or "process"
        self.backend = "deterministic" if self.deterministic else worker.backend

        self._version = 0
        self._closed = True  # until the direction source exists
        self._perturbed = [torch.empty_like(p) for p in self._params]  # w_t + ρu (descent)
        self._frozen_stats = FrozenStats(self.module)
        self._last_result: Result | None = None
        self.staleness_history: list[int] = []
        self.wait_history: list[float] = []
        self.fidelity_history: list[tuple[int, float]] = []
        self.probe_seconds = 0.0
        keep = self.fidelity_every > 0 or worker.keep_batches
        self._computer: AscentComputer | None = None
        self._directions: DirectionSource
        if self.backend == "process":
            from asam_theory.torch._process import ProcessDirections

            self._directions = ProcessDirections(
                ascent_loss=ascent_loss, model=self.module, params=self._params,
                adaptive=self.adaptive, ascent_batches=ascent_batches,
                batch_size=ascent_batch_size, tau=tau, max_staleness=max_staleness,
                descent_device=self.descent_device, device=self.ascent_device,
                num_threads=(torch.get_num_threads() if worker.num_threads is None
                             else worker.num_threads),
                timeout=worker.timeout, keep_batch=keep, lookahead=feed,
            )
        else:
            self._computer = AscentComputer(
                ascent_loss, self.ascent_device, self.module, self._params, self.adaptive
            )
            if self.deterministic:
                self._directions = SequentialDirections(
                    self._computer, batches, ascent_batch_size, tau, keep, feed,
                )
            else:
                self._directions = ThreadedDirections(
                    self._computer, batches, ascent_batch_size, tau, max_staleness,
                    self.descent_device, worker, feed,
                )
        self._closed = False
        # the source holds no reference to the optimizer: dropping it stops the worker
        self._finalizer = weakref.finalize(self, self._directions.close)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Refused after construction (``ValueError``): the worker's replica, its snapshot
        buffers (shared-memory rings for the process backend) and the perturbed-weight buffers
        cover the parameters given at construction."""
        if hasattr(self, "_directions"):
            raise ValueError(
                "AsyncSAM does not support add_param_group after construction: its ascent "
                "worker's replica and snapshot buffers (and the perturbed-weight buffers) cover "
                "the parameters given at construction; build it with every param group instead "
                "(AsyncSAM([{'params': ...}, {'params': ..., 'lr': ...}], ...))")
        super().add_param_group(param_group)

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        loss_fn: Callable[[Any, Any], torch.Tensor],
        base_optimizer: Any = torch.optim.SGD,
        *,
        rho: float = 0.05,
        tau: int = 1,
        adaptive: bool = False,
        ascent_batches: Any = None,
        ascent_batch_size: int | None = None,
        worker: WorkerOptions | None = None,
        deterministic: bool = False,
        max_grad_norm: float | None = None,
        **kwargs: Any,
    ) -> AsyncSAM:
        """AsyncSAM for ``model`` trained on ``loss_fn(model(x), y)``, stepped with the batch.

        ``loss = opt.step(x, y)`` runs the step's one descent pass (zero the gradients, forward
        and backward at w_t + ρu, the base optimizer's update) and returns that loss; the
        ascent runs in the worker thread on a private copy of ``model``.

        Args:
            model: the module to train (all its parameters are optimised; for param groups use
                the constructor with ``model=``); it may be wrapped in
                ``DistributedDataParallel`` or ``torch.compile`` (the descent runs through the
                wrapper, the worker's replica is a copy of the module inside).
            loss_fn: ``loss_fn(outputs, targets) -> scalar`` (``torch.nn.CrossEntropyLoss()``,
                ``torch.nn.functional.cross_entropy``, ...); the worker calls it too, so it must
                not keep state between calls.
            base_optimizer: optimizer class (default ``torch.optim.SGD``) or a fresh instance;
                its settings (``lr``, ``momentum``, ...) go in ``**kwargs``.
            rho, tau, adaptive, ascent_batch_size, worker, deterministic, max_grad_norm: as in
                the constructor (b′ = ``ascent_batch_size`` takes the first b′ samples of the
                ascent batch).
            ascent_batches: ``None`` (default): the snapshot w_t is evaluated on the batch
                passed to ``step`` at step t (:class:`~asam_theory.torch.lookahead.
                StepBatches`); a :class:`LookAhead` on the descent loader: on the batch of the
                step that uses it (the training loop then takes its batches from the
                LookAhead); any other source of ``(x, y)`` batches: an independent stream, as
                in the constructor.
            **kwargs: passed to ``base_optimizer``.
        """
        if not isinstance(model, nn.Module):
            raise ValueError("model must be a torch.nn.Module (for raw tensors use "
                             f"AsyncSAM(params, ..., ascent_loss=...)), got {type(model).__name__}")
        if not callable(loss_fn):
            raise ValueError("loss_fn must be a callable (outputs, targets) -> loss, got "
                             f"{type(loss_fn).__name__}")
        tau = check_int("tau", tau, low=0)
        if ascent_batches is None:
            ascent_batches = StepBatches(keep=tau + 1)
        opt = cls(model.parameters(), base_optimizer, rho, adaptive, tau=tau,
                  ascent_loss=CriterionLoss(loss_fn), ascent_batches=ascent_batches,
                  ascent_batch_size=ascent_batch_size, model=model, worker=worker,
                  deterministic=deterministic, max_grad_norm=max_grad_norm, **kwargs)
        opt.loss_fn = loss_fn
        return opt

    @classmethod
    def tuned(
        cls,
        params: Iterable[Any],
        base_optimizer: type[torch.optim.Optimizer],
        *,
        descent_batch_size: int,
        ascent_loss: AscentLoss,
        ascent_batches: Callable[[int], Any],
        model: nn.Module | None = None,
        worker: WorkerOptions | None = None,
        candidates: Sequence[int] | None = None,
        margin: float = 0.5,
        contention: bool = True,
        backend: str | None = None,
        **kwargs: Any,
    ) -> AsyncSAM:
        """AsyncSAM with b′ and the worker backend picked by measurement.

        b′ (:func:`~asam_theory.torch.tuning.tune_ascent_batch`): the largest candidate whose
        ascent on the ascent device takes at most ``margin`` times the descent at
        b = ``descent_batch_size``, timed alone and (with ``contention``) timed while both run
        at once.  The backend (``backend=None``; or give ``"thread"`` / ``"process"``):
        :func:`~asam_theory.torch.backend_choice.choose_backend` times a few steps of AsyncSAM
        at that b′ with each backend on a copy of the model (the given weights are not
        touched) and keeps the faster; a backend that cannot start (an ascent loss that cannot
        be pickled for a worker process) is skipped, and why is recorded.

        ``ascent_batches`` must be a callable ``(batch_size) -> batch`` (the tuner draws descent-
        and ascent-sized batches from it); the other arguments are those of the constructor. The
        measurements are kept in ``.tuning`` and ``.backend_choice``.
        """
        from asam_theory.torch.tuning import tune_for_asyncsam

        b = check_int("descent_batch_size", descent_batch_size, low=1)
        batches = BatchSource(ascent_batches)
        if not batches.sized:
            raise ValueError("AsyncSAM.tuned needs ascent_batches as a callable (batch_size)")
        def as_list(ps: Any) -> list[torch.Tensor]:
            return [ps] if isinstance(ps, torch.Tensor) else list(ps)

        groups = [{**g, "params": as_list(g["params"])} if isinstance(g, dict) else g
                  for g in as_list(params)]
        flat = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
        options = WorkerOptions() if worker is None else worker
        inner = None if model is None else original_module(model)  # timed without wrappers
        tuning = tune_for_asyncsam(
            flat, ascent_loss, batches.draw, inner, b,
            ascent_device=options.device, adaptive=bool(kwargs.get("adaptive", False)),
            candidates=candidates, margin=margin, contention=contention,
            ascent_threads=options.num_threads,
        )
        choice = None
        if backend is None:
            from asam_theory.torch.backend_choice import choose_backend

            descent_batch = batches.draw(b)

            def build(name: str) -> tuple[AsyncSAM, Callable[[], None]]:
                twin = None if inner is None else copy.deepcopy(inner)
                if twin is None:
                    ps = [p.detach().clone().requires_grad_(True) for p in flat]
                    target: Any = ps
                else:
                    all_twin = list(twin.parameters())
                    ps = [all_twin[i] for i in param_positions(inner, flat)]
                    target = twin
                trial = cls(ps, base_optimizer, ascent_loss=ascent_loss,
                            ascent_batches=ascent_batches,
                            ascent_batch_size=tuning.ascent_batch_size, model=twin,
                            worker=dataclasses.replace(options, backend=name), **kwargs)

                def step() -> None:
                    def closure() -> torch.Tensor:
                        trial.zero_grad()
                        loss = ascent_loss(target, descent_batch)
                        loss.backward()
                        return loss

                    trial.step(closure)

                return trial, step

            choice = choose_backend(build)
            options = dataclasses.replace(options, backend=choice.backend)
        else:
            options = dataclasses.replace(options, backend=backend)
        opt = cls(
            groups, base_optimizer, ascent_loss=ascent_loss, ascent_batches=ascent_batches,
            ascent_batch_size=tuning.ascent_batch_size, model=model, worker=options, **kwargs,
        )
        opt.tuning = tuning
        opt.backend_choice = choice
        return opt

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop and join the worker thread (idempotent)."""
        self._closed = True
        self._finalizer.detach()
        self._directions.close()

    def __enter__(self) -> AsyncSAM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def main_thread_snapshots(self) -> int:
        """Weight snapshots copied on the main thread so far (threaded on the CPU: only those the
        worker had not taken itself by the time of the update; otherwise every one)."""
        return self._directions.main_copies

    @property
    def remote_ascent_gradients(self) -> tuple[int, int] | None:
        """``(gradients, examples)`` the worker *process* has evaluated so far (its copy of the
        ascent loss counts them where this process cannot see); ``None`` with the thread
        backend or the deterministic mode, whose ascent calls the given loss itself."""
        src = self._directions
        if self.backend != "process":
            return None
        return src.computed, src.computed_examples  # type: ignore[attr-defined]

    @property
    def last_ascent_batch(self) -> Any:
        """The ascent batch of the direction the last step applied, on the ascent device
        (kept with ``WorkerOptions(keep_batches=True)`` or fidelity probes; else ``None``)."""
        return None if self._last_result is None else self._last_result.batch

    @property
    def version(self) -> int:
        """Number of updates taken so far (the version of the current weights)."""
        return self._version

    # ------------------------------------------------------------------ internals
    def _perturb(self, live: Sequence[torch.Tensor], u: Sequence[torch.Tensor]) -> None:
        """Point the parameters at w_t + ρ u (one pass, into ``self._perturbed``).

        ``live`` are w_t's tensors (``p.data``), given back by :meth:`_unperturb`; they are not
        modified meanwhile, so the worker may read them (deferred snapshot) while the descent
        pass runs.
        """
        k = 0
        for group in self.param_groups:
            rho = group["rho"]
            for _ in group["params"]:
                torch.add(live[k], u[k], alpha=rho, out=self._perturbed[k])
                k += 1
        for p, q in zip(self._params, self._perturbed, strict=True):
            p.data = q
        weights_changed()  # autocast's cached low-precision copies are of w_t

    def _unperturb(self, originals: Sequence[torch.Tensor]) -> None:
        for p, w in zip(self._params, originals, strict=True):
            p.data = w
        weights_changed()

    def _fresh_direction(self, batch: Any) -> list[torch.Tensor]:
        """Direction at the current weights on ``batch`` (main thread, descent device)."""
        batch = move_batch(batch, self.descent_device)
        if self.module is not None:
            leaves = list(self._params)
            target: Any = self.module  # not through DDP: a probe must not all-reduce
        else:
            leaves = [p.detach().requires_grad_(True) for p in self._params]
            target = leaves
        with torch.enable_grad(), bn_frozen(self.module):
            loss = self._ascent_loss(target, batch)
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        g = [torch.zeros_like(p) if gi is None else gi for p, gi in zip(self._params, grads,
                                                                       strict=True)]
        with torch.no_grad():
            u, _ = normalized_direction(g, [p.detach() for p in self._params], self.adaptive)
        return u

    # ------------------------------------------------------------------ step
    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Any = None, targets: Any = None, *, inputs: Any = None,
        scaler: torch.amp.GradScaler | None = None, micro_batches: int | None = None,
    ) -> Any:
        """One AsyncSAM step: ``opt.step(x, y)`` (built by :meth:`for_model`) or
        ``opt.step(closure)``.

        With a batch (``step(x, y)`` or ``step(inputs=x, targets=y)``) the optimizer zeroes the
        gradients, evaluates ``loss_fn(model(x), y)`` at the perturbed weights, back-propagates
        and updates; it returns that loss, detached.  With a ``closure``, the closure must zero
        the gradients, run a forward+backward at the (perturbed) current weights and return the
        loss; it is the only descent-device pass of the step.

        The training stack (:mod:`asam_theory.torch.stack`):

        * autocast: run ``step`` inside ``torch.autocast(...)`` — the descent pass runs under
          it, and the ascent at this step's weights runs under the same autocast in the worker
          (read at every step; the closure form may enter autocast inside the closure too, but
          only the state around ``step`` reaches the worker);
        * ``scaler``: a ``torch.amp.GradScaler``; the batch form scales its loss, a closure
          calls ``scaler.scale(loss).backward()`` itself.  The descent gradient is unscaled
          before clipping and the base step; a step whose descent gradient or applied
          direction holds an inf/NaN is skipped (no base step; the version still advances:
          see the module docstring), returning ``None`` when the direction was non-finite
          (the closure is then not called).  Call ``scaler.update()`` after each step;
        * ``micro_batches=k`` (batch form): the descent gradient accumulated over k
          micro-batches of ``(x, y)`` (:func:`~asam_theory.torch.stack.accumulate`: equal to
          the gradient of the whole batch, one micro-batch in memory at a time); the ascent
          still sees the whole step batch (its first b′ samples).  The closure form
          accumulates inside the closure.

        A ``KeyboardInterrupt`` (or ``SystemExit``) raised during the step closes the optimizer
        (worker thread joined) before it propagates; the weights are w_t again unless it arrived
        inside the base optimizer's update.
        """
        if self._closed:
            raise RuntimeError("AsyncSAM optimizer is closed")
        if scaler is not None:
            check_scaler(scaler)
        if inputs is None and (closure is None or isinstance(closure, torch.Tensor)
                               or not callable(closure)):
            inputs = closure
        elif inputs is not None and closure is not None:
            raise ValueError("AsyncSAM.step takes a closure or a batch (inputs, targets), not both")
        if inputs is not None or targets is not None:
            closure = self._batch_closure(inputs, targets, scaler, micro_batches)
        elif micro_batches is not None:
            raise ValueError("micro_batches is an option of the batch form opt.step(x, y, "
                             "micro_batches=k); a closure accumulates its micro-batches itself "
                             "(asam_theory.torch.accumulate)")
        elif (self.step_batches is not None and closure is not None
              and not self.step_batches.available(self._version)):
            raise ValueError(
                "this AsyncSAM takes its ascent batches from the batches passed to "
                "opt.step(x, y) (AsyncSAM.for_model's default, StepBatches), so a closure step "
                "gives its worker no batch: step it with opt.step(x, y), record the step's "
                "batch first (opt.step_batches.put(opt.version, batch)), or build it with "
                "ascent_batches=... (a callable (batch_size) -> batch, an iterator, a "
                "LookAhead) to step with a closure")
        elif closure is None:
            raise ValueError(
                "AsyncSAM.step needs the batch or a closure: loss = opt.step(x, y) with an "
                "optimizer from AsyncSAM.for_model(model, loss_fn, ...), or opt.step(closure) "
                "where closure() zeroes the gradients, runs forward + backward and returns the "
                "loss")
        try:
            return self._step(closure, scaler)
        except (KeyboardInterrupt, SystemExit):
            with contextlib.suppress(TimeoutError):  # a hung ascent_loss cannot be joined
                self._closed = True
                self._finalizer.detach()
                self._directions.close(join_timeout=5.0)
            raise

    def _batch_closure(self, inputs: Any, targets: Any, scaler: torch.amp.GradScaler | None,
                       micro_batches: int | None) -> Callable[[], Any]:
        """The closure of ``step(inputs, targets)``; records the batch for the ascent."""
        if self.loss_fn is None or self.model is None:
            raise ValueError(
                "opt.step(x, y) needs the model and the loss function: build the optimizer with "
                "AsyncSAM.for_model(model, loss_fn, torch.optim.SGD, rho=..., lr=...); "
                "this one takes opt.step(closure)")
        if inputs is None or targets is None:
            raise ValueError("AsyncSAM.step needs both inputs and targets: opt.step(x, y)")
        model, loss_fn = self.model, self.loss_fn
        micro = None if micro_batches is None else _split(inputs, targets, micro_batches)
        if self.step_batches is not None:
            self.step_batches.put(self._version, (inputs, targets))
        if micro is not None:
            ddp = self._ddp

            def accumulated() -> torch.Tensor:
                self.zero_grad()
                return accumulate(lambda b: loss_fn(model(b[0]), b[1]), micro, scaler=scaler,
                                  model=ddp)

            return accumulated
        if scaler is not None:
            def scaled() -> torch.Tensor:
                self.zero_grad()
                loss = loss_fn(model(inputs), targets)
                scaler.scale(loss).backward()
                return loss.detach()

            return scaled

        def closure() -> torch.Tensor:
            self.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            return loss.detach()

        return closure

    def _step(self, closure: Callable[[], Any], scaler: torch.amp.GradScaler | None) -> Any:
        t = self._version
        live = [p.data for p in self._params]  # w_t: the snapshot's source, restored after
        # the ascent at w_t runs under this step's autocast (entered by the worker)
        self._directions.submit(t, live, AutocastState.capture(self.descent_device.type))
        t0 = time.perf_counter()
        res = self._directions.acquire(t)
        self.wait_history.append(time.perf_counter() - t0)
        if not max(t - self.max_staleness, 0) <= res.version <= t:
            raise RuntimeError(  # the window rule makes this unreachable; never use a bad one
                f"AsyncSAM: step {t} got a direction of version {res.version} outside "
                f"[{max(t - self.max_staleness, 0)}, {t}]"
            )
        self._last_result = res
        if self.fidelity_every and t % self.fidelity_every == 0:
            tp = time.perf_counter()
            fresh = self._fresh_direction(res.batch)
            self.fidelity_history.append((t, cosine(res.direction, fresh)))
            self.probe_seconds += time.perf_counter() - tp

        u = res.direction
        if u[0].device != live[0].device:
            u = [d.to(p.device, non_blocking=True) for d, p in zip(u, self._params, strict=True)]
        if scaler is not None and not self._direction_finite(u, scaler):
            self._directions.seal(t)
            self._end_step(t, res, updated=False)
            return None
        self._perturb(live, u)
        try:
            with torch.enable_grad(), self._frozen_stats:
                loss = closure()
        finally:
            self._unperturb(live)
        self._directions.seal(t)  # the snapshot of w_t is taken: the update may change it
        updated = scaler is None or unscale_pass(scaler, self._descent_pass)
        if updated:
            if self.max_grad_norm is not None:
                clip_descent(self._params, self.max_grad_norm)
            self.base_optimizer.step()
            weights_changed()
        self._end_step(t, res, updated)
        return loss

    def _end_step(self, t: int, res: Result, updated: bool) -> None:
        """Close step ``t``: the version advances whether or not the base step ran (a
        skipped step leaves the weights as they were, so versions t and t + 1 hold the same
        weights)."""
        if not updated:
            self.skipped_steps += 1
        self._version += 1
        self.staleness_history.append(t - res.version)

    def _direction_finite(self, u: Sequence[torch.Tensor],
                          scaler: torch.amp.GradScaler) -> bool:
        """Whether the direction is finite (on every DDP rank); if not, the scaler records an
        overflow (so ``scaler.update()`` backs off) and the step is skipped before its descent
        pass.  Under DDP the ranks agree first (one all-reduce of a flag), so all skip the
        same steps and no rank waits in a backward the others skip."""
        finite = bool(torch.isfinite(global_norm(list(u))))
        if not finite:
            self._flag_pass.raise_flag(u[0].device)
            unscale_pass(scaler, self._flag_pass)
        if self._ddp is not None:
            finite = agree_finite(scaler, finite, self._ddp, self._flag_pass)
        return finite

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """Base-optimizer state + AsyncSAM state (``"asyncsam"``).

        ``asyncsam`` holds the version t, τ, the mode, the staleness history and the direction
        source's state:

        * deterministic: the iterates w_v, v ≥ t − τ. Resuming is bit-identical (given the same
          weights and the ascent sampler's state).
        * threaded: the completed directions and the published-but-not-yet-computed snapshots
          with version ≥ t − max_staleness, and the pipeline origin. Resuming restores the
          version and the pending directions, so every later step uses a direction from the
          same window [max(t − max_staleness, 0), t − τ] as without the interruption, and the
          directions already computed are used as they were. What may differ: when
          max_staleness > τ, *which* version in the window a step takes depends on timing (as
          in any threaded run), and a snapshot still pending at save time is evaluated on a batch
          drawn from the new optimizer's ``ascent_batches``. With max_staleness = τ and an
          ascent loss that ignores the batch (or a restored sampler), the resumed run is
          identical to the uninterrupted one.

        Take it between steps; tensors are copies (safe to keep while training continues).
        """
        extra: dict[str, Any] = {
            "version": self._version,
            "tau": self.tau,
            "deterministic": self.deterministic,
            "staleness_history": list(self.staleness_history),
            "skipped_steps": self.skipped_steps,
            "source": self._directions.state_dict(self._version),
        }
        if self.step_batches is not None:
            extra["step_batches"] = self.step_batches.state_dict()
        return {"base": self.base_optimizer.state_dict(), "asyncsam": extra}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        """Restore a :meth:`state_dict` (same τ and mode). Load the model's weights first."""
        if "base" not in state_dict or "asyncsam" not in state_dict:
            raise ValueError("state_dict is not an AsyncSAM state_dict (keys 'base', 'asyncsam')")
        extra = state_dict["asyncsam"]
        if bool(extra["deterministic"]) != self.deterministic or int(extra["tau"]) != self.tau:
            raise ValueError(
                "state_dict was saved with deterministic="
                f"{extra['deterministic']}, tau={extra['tau']}; this optimizer has "
                f"deterministic={self.deterministic}, tau={self.tau}"
            )
        self.base_optimizer.load_state_dict(state_dict["base"])
        self.param_groups = self.base_optimizer.param_groups
        self._version = int(extra["version"])
        self.staleness_history = list(extra["staleness_history"])
        self.skipped_steps = int(extra.get("skipped_steps", 0))
        if self.step_batches is not None and "step_batches" in extra:
            self.step_batches.load_state_dict(extra["step_batches"])
        self._directions.load_state_dict(extra["source"], self._version)


def _split(inputs: Any, targets: Any, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(inputs, targets)`` cut into ``k`` micro-batches along the sample dimension (sizes
    differ by at most one: ``torch.tensor_split``)."""
    if not (isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor)):
        raise ValueError("micro_batches needs inputs and targets as tensors (their first "
                         "dimension the sample); for other batches accumulate in a closure "
                         "with asam_theory.torch.accumulate")
    n = int(inputs.shape[0]) if inputs.dim() else 0
    k = check_int("micro_batches", k, low=1, high=max(n, 1))
    return list(zip(inputs.tensor_split(k), targets.tensor_split(k), strict=True))
