"""Ascent-gradient computation and the background worker thread used by AsyncSAM and SAMPa.

Two pieces, deliberately free of any reference to the optimizer object so that the optimizer can
be garbage-collected (its finaliser then stops the thread):

* :class:`AscentComputer` — evaluates ``ascent_loss(target, batch)`` at given weights on the
  ascent device and returns ∇ (raw) or the normalised SAM/ASAM direction. ``target`` is a private
  replica of the user's model whose parameters are re-bound (``p.data = w``, no copy) to the
  snapshot tensors, or — when no model is given — the list of snapshot tensors themselves.
* :class:`VersionedWorker` — one daemon thread that takes versioned weight snapshots, computes
  directions and keeps the completed ones, with the selection rule documented in
  :meth:`VersionedWorker.pick`.
"""

from __future__ import annotations

import copy
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from asam_theory.torch._common import freeze_bn_permanently, move_batch, normalized_direction
from asam_theory.torch.stack import AutocastState, weights_changed

AscentLoss = Callable[[Any, Any], torch.Tensor]


class AscentWorkerError(RuntimeError):
    """An exception raised inside the ascent worker thread, re-raised in the main thread.

    The original exception is chained as ``__cause__`` (its ``__traceback__`` holds the worker's
    frames) and the formatted worker traceback is part of the message.
    """


class BatchSource:
    """Uniform access to the user's ascent batches.

    * callable + ``batch_size`` int: ``source(batch_size)``;
    * callable + ``batch_size=None``: ``source()``;
    * iterator/iterable (only with ``batch_size=None``): ``next(iterator)``;
    * ``None``: every batch is ``None`` (losses that ignore the batch, e.g. exact gradients).
    """

    def __init__(self, source: Any) -> None:
        self._callable = None
        self._iter = None
        if source is None:
            pass
        elif hasattr(source, "__next__"):
            self._iter = source
        elif callable(source):
            self._callable = source
        elif hasattr(source, "__iter__"):
            self._iter = iter(source)
        else:
            raise ValueError(
                "ascent_batches must be a callable (batch_size) -> batch, an iterator, or None; "
                f"got {type(source).__name__}"
            )

    @property
    def sized(self) -> bool:
        """Whether batches of a requested size can be drawn."""
        return self._callable is not None

    def draw(self, batch_size: int | None) -> Any:
        if self._callable is not None:
            return self._callable() if batch_size is None else self._callable(batch_size)
        if self._iter is not None:
            if batch_size is not None:
                raise ValueError(
                    "ascent_batches given as an iterator cannot honour ascent_batch_size; "
                    "pass a callable (batch_size) -> batch"
                )
            return next(self._iter)
        return None


def param_positions(model: nn.Module, params: Sequence[torch.Tensor]) -> list[int]:
    """For each optimised parameter, its index in ``list(model.parameters())`` (how a replica of
    the model finds its copy); ``ValueError`` if ``model`` does not own one of them."""
    index = {id(p): i for i, p in enumerate(model.parameters())}
    missing = [i for i, p in enumerate(params) if id(p) not in index]
    if missing:
        raise ValueError(
            "model must own every optimised parameter; parameters at positions "
            f"{missing} are not in model.parameters()"
        )
    return [index[id(p)] for p in params]


class AscentComputer:
    """Computes ascent directions at given weights on ``device``.

    Args:
        ascent_loss: ``ascent_loss(model_or_params, batch) -> scalar tensor``.
        device: ascent device.
        model: the user's model; a deep copy is placed on ``device`` (BatchNorm momentum 0, train
            mode, so the replica never changes running statistics and the user's model is not
            touched). ``None`` = functional mode (the loss receives a list of tensors).
        param_index: for each optimised parameter, its index in ``list(model.parameters())``.
        adaptive: ASAM scaling (see :func:`normalized_direction`).
    """

    def __init__(
        self,
        ascent_loss: AscentLoss,
        device: torch.device,
        model: nn.Module | None,
        params: Sequence[torch.Tensor],
        adaptive: bool,
    ) -> None:
        self.ascent_loss = ascent_loss
        self.device = device
        self.adaptive = adaptive
        self.replica: nn.Module | None = None
        self.replica_params: list[torch.nn.Parameter] = []
        if model is not None:
            positions = param_positions(model, params)
            with torch.no_grad():
                replica = copy.deepcopy(model).to(device)
            for p in replica.parameters():
                p.grad = None
            freeze_bn_permanently(replica)
            replica.train()
            all_rp = list(replica.parameters())
            self.replica = replica
            self.replica_params = [all_rp[i] for i in positions]

    def gradient(
        self, weights: Sequence[torch.Tensor], batch: Any
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(∇ ascent_loss at ``weights`` on ``batch``, loss as a detached tensor — no device
        synchronisation). ``weights`` on this device."""
        if self.replica is not None:
            with torch.no_grad():
                for rp, w in zip(self.replica_params, weights, strict=True):
                    rp.data = w
            target: Any = self.replica
            leaves: list[torch.Tensor] = list(self.replica_params)
        else:
            leaves = [w.detach().requires_grad_(True) for w in weights]
            target = leaves
        with torch.enable_grad():
            loss = self.ascent_loss(target, batch)
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        out = [
            torch.zeros_like(w) if g is None else g.detach()
            for w, g in zip(weights, grads, strict=True)
        ]
        return out, loss.detach()

    def direction(self, weights: Sequence[torch.Tensor], batch: Any) -> list[torch.Tensor]:
        """Unit ascent direction u at ``weights`` (ε = ρ u), on this device."""
        grads, _ = self.gradient(weights, batch)
        with torch.no_grad():
            u, _ = normalized_direction(grads, weights, self.adaptive,
                                        inplace=_own_storage(grads))
        return u


def _own_storage(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether each tensor is contiguous and has a storage of its own, so scaling them in place
    changes nothing else (autograd may hand one gradient tensor to two leaves, e.g. both inputs
    of an addition, or expanded and view gradients)."""
    seen = set()
    for t in tensors:
        if not t.is_contiguous():
            return False
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            return False
        seen.add(ptr)
    return True


def window(step: int, tau: int, max_staleness: int, origin: int) -> tuple[int, int]:
    """The versions step ``step`` may take its direction from: ``[lo, hi]`` with
    ``lo = max(step − max_staleness, 0)`` and ``hi = max(step − τ, origin)`` (``origin``: the
    pipeline's first version, 0, or the version a restored run resumed at)."""
    return max(step - max_staleness, 0), max(step - tau, origin)


def choose_pending(pending: Iterable[int], lo: int, hi: int) -> tuple[int | None, list[int]]:
    """Which pending snapshot a worker computes next, given the window ``[lo, hi]`` of the next
    step the main thread will ask for: ``(chosen, dropped)``.

    Pending versions older than ``lo`` are useless and dropped.  If some pending version lies
    in ``[lo, hi]``, the freshest of them is chosen and the older ones are dropped (the main
    thread always prefers fresher directions, so they would never be used).  Otherwise the
    oldest pending version is chosen (it is too fresh now and will be needed first); ``None``
    when nothing is pending.  Both worker backends (thread and process) use this rule, so a
    main thread can never wait for a version that will not be computed: every version is
    published, and the one the next step needs is never dropped."""
    versions = sorted(pending)
    dropped = [v for v in versions if v < lo]
    live = [v for v in versions if v >= lo]
    if not live:
        return None, dropped
    in_range = [v for v in live if v <= hi]
    if in_range:
        chosen = in_range[-1]
        return chosen, dropped + in_range[:-1]
    return live[0], dropped


def freshest(done: Iterable[int], lo: int, hi: int) -> int | None:
    """The freshest completed version in ``[lo, hi]`` (``None`` if there is none): the direction
    a step takes."""
    usable = [v for v in done if lo <= v <= hi]
    return max(usable) if usable else None


NO_BATCH = object()


@dataclass
class Job:
    """A weight snapshot handed to the worker (tensors live on the worker's device)."""

    version: int
    tensors: list[torch.Tensor]
    event: Any = None  # torch.cuda.Event to wait on before reading ``tensors``
    batch: Any = NO_BATCH  # a fixed batch for this job (SAMPa); default: draw one
    #: deferred snapshot: live weights to copy into ``tensors`` before computing (``None``: the
    #: copy is done). Whoever copies first — the worker when it starts the job, or the main
    #: thread in :meth:`VersionedWorker.seal` — clears it; see there.
    source: list[torch.Tensor] | None = None
    #: the autocast the ascent of this snapshot runs under: the caller's at the step that
    #: published it (:class:`~asam_theory.torch.stack.AutocastState`; disabled by default)
    amp: AutocastState = field(default_factory=AutocastState)

    def take_snapshot(self) -> None:
        """Copy the deferred snapshot ``source`` into ``tensors``; the copy is then done."""
        torch._foreach_copy_(self.tensors, self.source)
        self.source = None


@dataclass
class Result:
    """A completed direction: version of the snapshot it was computed at, u, and its batch."""

    version: int
    direction: list[torch.Tensor]
    batch: Any = None
    compute_s: float = 0.0


@dataclass
class _Shared:
    cond: threading.Condition = field(default_factory=threading.Condition)
    pending: dict[int, Job] = field(default_factory=dict)
    done: dict[int, Result] = field(default_factory=dict)
    pool: list[list[torch.Tensor]] = field(default_factory=list)
    next_step: int = 0
    origin: int = 0
    stop: bool = False
    error: BaseException | None = None
    error_tb: str = ""
    busy: int | None = None
    current: Job | None = None  # the job being computed (its snapshot stays read-only)
    phase: str = "starting"  # what the worker is doing, for TimeoutError messages
    generation: int = 0  # bumped by :meth:`VersionedWorker.restore`; older results are dropped


class VersionedWorker:
    """Background thread computing ascent directions from versioned snapshots.

    Versions: the main thread publishes the weights after its k-th update as version k (version
    0 = the weights at the first step, or at ``origin`` after a restore). For step t it accepts a
    completed direction with version v in the *window*

        max(t − max_staleness, 0) ≤ v ≤ max(t − τ, origin)

    and takes the freshest one there (staleness t − v). The worker chooses what to compute next
    by :meth:`pick`; that rule guarantees the main thread can never wait forever for a version
    that will not be computed (every version ≥ origin is published, and the needed one is never
    discarded).
    """

    def __init__(
        self,
        compute: Callable[[list[torch.Tensor], Any], list[torch.Tensor]],
        draw_batch: Callable[[], Any],
        device: torch.device,
        tau: int,
        max_staleness: int,
        num_threads: int | None,
        name: str = "asam-ascent",
        keep_batch: bool = False,
    ) -> None:
        self.shared = _Shared()
        self.tau = tau
        self.max_staleness = max_staleness
        self._compute = compute
        self._draw = draw_batch
        self._device = device
        self._num_threads = num_threads
        self._keep_batch = keep_batch
        #: deferred snapshots the main thread copied itself (the worker had not started them)
        self.main_copies = 0
        #: snapshot buffer sets kept for reuse: enough for every version that can be out at
        #: once (the window's max_staleness + 1, and the one being published)
        self.pool_size = max_staleness + 2
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    # -- window / selection -------------------------------------------------------------------
    def window(self, step: int) -> tuple[int, int]:
        return window(step, self.tau, self.max_staleness, self.shared.origin)

    def pick(self) -> int | None:
        """Which pending snapshot to compute next (called with the lock held): the rule of
        :func:`choose_pending` on the window of the next step the main thread will ask for;
        the snapshots it drops go back to the pool."""
        sh = self.shared
        lo, hi = self.window(sh.next_step)
        chosen, dropped = choose_pending(sh.pending, lo, hi)
        for v in dropped:
            self._recycle(sh.pending.pop(v).tensors)
        return chosen

    def _recycle(self, tensors: list[torch.Tensor]) -> None:
        if len(self.shared.pool) < self.pool_size:
            self.shared.pool.append(tensors)

    def fill_pool(self, make: Callable[[], list[torch.Tensor]]) -> None:
        """Put ``pool_size`` buffer sets made by ``make`` in the pool (called once, before the
        first job): in steady state a snapshot then never allocates."""
        with self.shared.cond:
            while len(self.shared.pool) < self.pool_size:
                self.shared.pool.append(make())

    # -- main-thread API ----------------------------------------------------------------------
    def take_buffers(self) -> list[torch.Tensor] | None:
        with self.shared.cond:
            return self.shared.pool.pop() if self.shared.pool else None

    def submit(self, job: Job) -> None:
        with self.shared.cond:
            self.raise_if_failed()
            self.shared.pending[job.version] = job
            self.shared.cond.notify_all()

    def seal(self, version: int, timeout: float) -> bool:
        """Make sure the deferred snapshot of ``version`` is taken; the caller may then change
        the live weights (called by the main thread before its base-optimizer update).

        A job published with ``source`` (live weights, same device) is copied by the worker when
        it starts the job, off the main thread. If the worker has not started it, the main thread
        copies it here itself; if the worker is copying it right now, this waits for the copy
        (a few hundred microseconds), at most ``timeout`` seconds. A job the worker dropped, or a
        dead worker, needs nothing. Returns whether the main thread took the copy (counted in
        ``main_copies``).
        """
        sh = self.shared
        deadline = time.monotonic() + timeout
        with sh.cond:
            job = sh.pending.get(version)
            if job is not None:
                if job.source is None:
                    return False
                job.take_snapshot()
                self.main_copies += 1
                return True
            job = sh.current
            while (job is not None and job.version == version and job.source is not None
                   and sh.error is None):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"AsyncSAM: the worker did not finish copying the snapshot of version "
                        f"{version} within timeout={timeout:g}s; it is {sh.phase}"
                    )
                sh.cond.wait(timeout=min(remaining, 0.5))
            return False

    def set_next_step(self, step: int) -> None:
        # no notify: the worker sleeps only with nothing pending, which this cannot change
        with self.shared.cond:
            self.shared.next_step = step

    def acquire(self, step: int, timeout: float) -> Result:
        """Block until a direction in the window of ``step`` exists; return the freshest.

        On return the worker plans for step + 1 (its ``next_step``).
        """
        sh = self.shared
        deadline = time.monotonic() + timeout
        with sh.cond:
            sh.next_step = step
            lo, hi = self.window(step)
            while True:
                self.raise_if_failed()
                if sh.stop:
                    raise RuntimeError("AsyncSAM worker is closed; create a new optimizer")
                v = freshest(sh.done, lo, hi)
                if v is not None:
                    for old in [w for w in sh.done if w < v]:
                        del sh.done[old]
                    sh.next_step = step + 1
                    return sh.done[v]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    state = (
                        sh.phase if sh.busy is not None
                        else f"idle with pending versions {sorted(sh.pending)}"
                    )
                    alive = self.thread.is_alive()
                    raise TimeoutError(
                        f"AsyncSAM: no ascent direction with version in [{lo}, {hi}] for step "
                        f"{step} after timeout={timeout:g}s (tau={self.tau}, "
                        f"max_staleness={self.max_staleness}); the ascent worker on "
                        f"{self._device} is {'alive' if alive else 'dead'} and {state}. "
                        "Increase timeout, lower ascent_batch_size, or check ascent_loss / "
                        "ascent_batches for a hang."
                    )
                sh.cond.wait(timeout=min(remaining, 0.5))

    def export(self, step: int) -> tuple[dict[int, Result], dict[int, Job], int]:
        """What step ``step`` and later steps can still use: (done, snapshots, origin).

        ``done`` holds the completed directions with version ≥ the lower end of the window of
        ``step``; ``snapshots`` the jobs of the versions published but not yet computed
        (pending or in flight) in the same range, each with a copy of its weights;
        ``origin`` the pipeline's origin.
        """
        sh = self.shared
        with sh.cond:
            lo, _ = self.window(step)
            done = {v: r for v, r in sh.done.items() if v >= lo}
            jobs = dict(sh.pending)
            if sh.current is not None:
                jobs[sh.current.version] = sh.current
            snaps = {}
            for v, job in sorted(jobs.items()):
                if v < lo or v in done:
                    continue
                if job.event is not None:
                    job.event.synchronize()
                snaps[v] = Job(v, [t.clone() for t in job.tensors], amp=job.amp)
            return done, snaps, sh.origin

    def restore(
        self, done: dict[int, Result], jobs: dict[int, Job], origin: int, next_step: int
    ) -> None:
        """Replace the pipeline by an exported one (results in flight are discarded)."""
        sh = self.shared
        with sh.cond:
            self.raise_if_failed()
            sh.generation += 1
            for job in sh.pending.values():
                self._recycle(job.tensors)
            sh.pending = dict(jobs)
            sh.done = dict(done)
            sh.origin = origin
            sh.next_step = next_step
            sh.cond.notify_all()

    def set_origin(self, origin: int) -> None:
        with self.shared.cond:
            self.shared.origin = origin

    def raise_if_failed(self) -> None:
        err = self.shared.error
        if err is not None:
            raise AscentWorkerError(
                f"AsyncSAM ascent worker raised {type(err).__name__}: {err}\n"
                f"--- worker traceback ---\n{self.shared.error_tb}"
            ) from err

    def close(self, join_timeout: float = 30.0) -> None:
        with self.shared.cond:
            self.shared.stop = True
            self.shared.cond.notify_all()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout=join_timeout)
        if self.thread.is_alive():  # pragma: no cover - only when ascent_loss hangs
            raise TimeoutError(
                f"AsyncSAM worker did not stop within {join_timeout}s (ascent_loss still running)"
            )

    # -- worker thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        sh = self.shared
        if self._num_threads is not None:
            torch.set_num_threads(self._num_threads)
        stream_ctx: Any = None
        if self._device.type == "cuda":
            torch.cuda.set_device(self._device)
            stream_ctx = torch.cuda.stream(torch.cuda.Stream(self._device))
        try:
            if stream_ctx is not None:
                stream_ctx.__enter__()
            while True:
                with sh.cond:
                    chosen = None
                    while not sh.stop and (chosen := self.pick()) is None:
                        sh.cond.wait()
                    if sh.stop:
                        return
                    job = sh.pending.pop(chosen)
                    sh.busy, sh.current, gen = chosen, job, sh.generation
                v = job.version
                t0 = time.perf_counter()
                if job.source is not None:  # deferred snapshot: the main thread waits in seal
                    sh.phase = f"copying the weights of version {v} (deferred snapshot)"
                    job.take_snapshot()
                    with sh.cond:
                        sh.cond.notify_all()
                if job.event is not None:
                    sh.phase = f"waiting for the snapshot copy of version {v} (CUDA event)"
                    job.event.synchronize()
                if job.batch is NO_BATCH:
                    sh.phase = f"drawing an ascent batch for version {v} (in ascent_batches)"
                    raw = self._draw()
                else:
                    raw = job.batch
                sh.phase = f"moving the ascent batch of version {v} to {self._device}"
                batch = move_batch(raw, self._device)
                sh.phase = (
                    f"computing the ascent direction of version {v} (in ascent_loss: forward, "
                    "backward, normalisation)"
                )
                with job.amp.enter(self._device.type):
                    weights_changed()  # the replica's weights were re-bound since the last pass
                    direction = self._compute(job.tensors, batch)
                if self._device.type == "cuda":
                    sh.phase = f"synchronising {self._device} after version {v}"
                    torch.cuda.current_stream(self._device).synchronize()
                res = Result(
                    v, direction, batch if self._keep_batch else None, time.perf_counter() - t0,
                )
                with sh.cond:
                    sh.busy, sh.current, sh.phase = None, None, "idle"
                    if gen != sh.generation:  # the pipeline was restored meanwhile
                        sh.cond.notify_all()
                        continue
                    sh.done[v] = res
                    lo, _ = self.window(sh.next_step)
                    for old in [v for v in sh.done if v < lo]:
                        del sh.done[old]
                    self._recycle(job.tensors)
                    sh.cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            with sh.cond:
                sh.error = exc
                sh.error_tb = traceback.format_exc()
                sh.busy, sh.current = None, None
                sh.phase = f"dead after {type(exc).__name__}"
                sh.cond.notify_all()
        finally:
            if stream_ctx is not None:
                stream_ctx.__exit__(None, None, None)
