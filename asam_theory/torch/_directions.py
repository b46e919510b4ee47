"""Where AsyncSAM's ascent direction comes from: a worker thread or the main thread.

Both sources have one interface, so the optimizer has no mode branches:

* ``submit(version, params, amp)`` — publish the current weights as ``version``, with the
  caller's autocast at that step (:class:`~asam_theory.torch.stack.AutocastState`), under which
  the ascent at those weights runs (autocast is per thread: the worker enters it itself);
* ``seal(version)`` — after this the caller may change the weights in place (its base-optimizer
  update): the snapshot of ``version`` is taken;
* ``acquire(step)`` — the :class:`~asam_theory.torch._worker.Result` step ``step`` uses (version
  v, unit direction u at w_v, and the ascent batch when fidelity probes need it);
* ``state_dict(version)`` / ``load_state_dict(state, version)`` — what a resumed run needs;
* ``close()``;
* ``main_copies`` — how many weight snapshots the calling (main) thread has copied.

:class:`ThreadedDirections` hands snapshots to a :class:`~asam_theory.torch._worker.
VersionedWorker` (the window rule is documented there); :class:`SequentialDirections` keeps the
iterates w_{t−τ}, ..., w_t and computes u at w_{max(t−τ, 0)} in the calling thread, on a freshly
drawn batch — the deterministic emulation of AsyncSAM with fixed staleness τ.

The worker knobs are grouped in :class:`WorkerOptions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from asam_theory.torch._common import check_device, move_batch
from asam_theory.torch._shared import contiguous_strides, dense_strides
from asam_theory.torch._worker import (
    NO_BATCH,
    AscentComputer,
    BatchSource,
    Job,
    Result,
    VersionedWorker,
)
from asam_theory.torch.lookahead import LookAhead, StepBatches
from asam_theory.torch.stack import NO_AUTOCAST, AutocastState, weights_changed
from asam_theory.validation import check_choice, check_int

#: where the ascent runs (:class:`WorkerOptions`)
BACKENDS = ("thread", "process")


@dataclass(frozen=True)
class WorkerOptions:
    """How and where the ascent direction is computed.

    Args:
        device: ascent device (``"cpu"``, ``"cuda:k"``, ``"mps"``).
        max_staleness: largest staleness a step may use, ≥ τ (``None``: τ — exactly τ after the
            first τ steps, waiting for the worker when it is late). Threaded mode only; the
            deterministic mode always uses exactly τ.
        timeout: seconds the main thread waits for a direction before ``TimeoutError``.
        num_threads: intra-op threads of the worker thread (``None``: the creator's count).
        fidelity_every: every k-th step (k > 0) also compute the fresh direction at w_t on the same
            ascent batch and record cos(u_stale, u_fresh) (0 = never).
        backend: ``"thread"`` (default: a worker thread of this process; works with any loss,
            model and batch source, lambdas included) or ``"process"`` (a worker
            process forked from a forkserver, :mod:`~asam_theory.torch._process`: no GIL
            shared with the training loop, which on small models is most of the thread's
            cost; the loss, the model and an independent batch source are pickled for it, and
            a script must guard its entry point with ``if __name__ == "__main__":``).
            ``AsyncSAM.tuned`` and ``asam-theory bench`` time both and pick the faster
            (``docs/performance.md``).
        keep_batches: every step's :class:`~asam_theory.torch._worker.Result` carries the
            ascent batch its direction was computed on (``AsyncSAM.last_ascent_batch``; for
            replays and probes; costs a copy per step with the process backend).
    """

    device: str | torch.device = "cpu"
    max_staleness: int | None = None
    timeout: float = 120.0
    num_threads: int | None = None
    fidelity_every: int = 0
    backend: str = "thread"
    keep_batches: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", check_device("device", self.device))
        object.__setattr__(self, "backend", check_choice("backend", self.backend, BACKENDS))
        object.__setattr__(self, "keep_batches", bool(self.keep_batches))
        if self.max_staleness is not None:
            object.__setattr__(
                self, "max_staleness", check_int("max_staleness", self.max_staleness, low=0)
            )
        t = self.timeout
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {t!r}")
        object.__setattr__(self, "timeout", float(t))
        if self.num_threads is not None:
            object.__setattr__(
                self, "num_threads", check_int("num_threads", self.num_threads, low=1)
            )
        object.__setattr__(
            self, "fidelity_every", check_int("fidelity_every", self.fidelity_every, low=0)
        )

    def staleness_bound(self, tau: int) -> int:
        """max_staleness resolved against τ (``ValueError`` when it is below τ)."""
        ms = tau if self.max_staleness is None else self.max_staleness
        if ms < tau:
            raise ValueError(f"max_staleness must be an integer >= tau (= {tau}), got {ms}")
        return ms


class DirectionSource(Protocol):
    """The interface both direction sources implement (see the module docstring)."""

    def submit(self, version: int, params: Sequence[torch.Tensor],
               amp: AutocastState = ...) -> None: ...

    def seal(self, version: int) -> None: ...

    def acquire(self, step: int) -> Result: ...

    def state_dict(self, version: int) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any], version: int) -> None: ...

    def close(self, join_timeout: float = 30.0) -> None: ...

    @property
    def main_copies(self) -> int: ...


def _to(tensors: Sequence[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    return [t.to(device) for t in tensors]


class SequentialDirections:
    """Deterministic source: u at w_{max(t−τ, 0)} computed in the calling thread.

    State: the iterates w_v for v ≥ t − τ (enough to resume bit-identically).  The ascent at
    w_s runs under the autocast of step s (as the worker backends do), entered in the calling
    thread — and disabled there when step s had none, whatever autocast surrounds step t.
    """

    def __init__(
        self,
        computer: AscentComputer,
        batches: BatchSource,
        batch_size: int | None,
        tau: int,
        keep_batch: bool,
        lookahead: LookAhead | StepBatches | None = None,
    ) -> None:
        self._computer = computer
        self._lookahead = lookahead
        self._batches = batches
        self._batch_size = batch_size
        self._tau = tau
        self._keep_batch = keep_batch
        self._device = computer.device
        self._history: dict[int, list[torch.Tensor]] = {}
        self._amp: dict[int, AutocastState] = {}
        self._copies = 0

    @property
    def main_copies(self) -> int:
        """Every snapshot: this source copies them all in the calling thread."""
        return self._copies

    def submit(self, version: int, params: Sequence[torch.Tensor],
               amp: AutocastState = NO_AUTOCAST) -> None:
        self._copies += 1
        self._history[version] = [p.detach().to(self._device, copy=True) for p in params]
        self._amp[version] = amp
        for v in [v for v in self._history if v < version - self._tau]:
            del self._history[v]
            self._amp.pop(v, None)

    def seal(self, version: int) -> None:
        """Nothing to do: :meth:`submit` copied the weights."""

    def acquire(self, step: int) -> Result:
        s = max(step - self._tau, 0)
        if s not in self._history:
            raise RuntimeError(f"AsyncSAM: iterate w_{s} missing from the history")
        la = self._lookahead
        if la is None:
            raw = self._batches.draw(self._batch_size)
        else:  # look-ahead: B_t at w_s; step batches: B_s at w_s
            raw = la.ascent_batch(step if la.lead else s, self._batch_size)
        batch = move_batch(raw, self._device)
        amp = self._amp.get(s, AutocastState())
        with (amp.enter(self._device.type) if amp.enabled
              else torch.autocast(self._device.type, enabled=False)):
            weights_changed()  # the replica's weights are re-bound to w_s
            u = self._computer.direction(self._history[s], batch)
        return Result(s, u, batch if self._keep_batch else None)

    def state_dict(self, version: int) -> dict[str, Any]:
        return {"history": {v: [w.clone() for w in ws] for v, ws in self._history.items()},
                "amp": {v: self._amp.get(v, AutocastState()).to_state()
                        for v in self._history}}

    def load_state_dict(self, state: dict[str, Any], version: int) -> None:
        self._history = {int(v): _to(ws, self._device) for v, ws in state["history"].items()}
        self._amp = {int(v): AutocastState.from_state(a)
                     for v, a in state.get("amp", {}).items()}

    def close(self, join_timeout: float = 30.0) -> None:
        """Nothing to stop."""


class ThreadedDirections:
    """Threaded source: snapshots to a :class:`VersionedWorker`, directions from its window.

    Snapshot buffers are recycled through the worker's pool. When both roles run on the CPU the
    snapshot is *deferred*: the job carries views of the live weights and the worker copies them
    when it starts the job, so the main thread does not spend a pass over the weights on it
    (:meth:`seal` covers a worker that has not started by the time the weights change). Otherwise
    the main thread's stream copies them ``non_blocking`` (into pinned buffers from CUDA to the
    CPU), with an event the worker waits on.

    State (see :meth:`state_dict`): the completed directions and the not yet computed snapshots
    that step t or later steps may still use, and the pipeline's origin.
    """

    def __init__(
        self,
        computer: AscentComputer,
        batches: BatchSource,
        batch_size: int | None,
        tau: int,
        max_staleness: int,
        descent_device: torch.device,
        options: WorkerOptions,
        lookahead: LookAhead | StepBatches | None = None,
    ) -> None:
        self._device: torch.device = options.device  # type: ignore[assignment]
        self._lookahead = lookahead
        self._tau = tau
        self._batch_size = batch_size
        self._descent_device = descent_device
        # deferred snapshots only on the CPU: on a GPU the main thread's copy is an async kernel
        # launch already, and a worker-stream copy would race the main stream's pending update
        self._defer = self._device == descent_device and self._device.type == "cpu"
        self._copies = 0
        self._filled = False
        self._timeout = options.timeout
        self.worker = VersionedWorker(
            compute=computer.direction,
            draw_batch=lambda: batches.draw(batch_size),
            device=self._device,
            tau=tau,
            max_staleness=max_staleness,
            num_threads=(
                torch.get_num_threads() if options.num_threads is None else options.num_threads
            ),
            keep_batch=options.fidelity_every > 0 or options.keep_batches,
        )

    def _buffers(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        bufs = self.worker.take_buffers()
        if bufs is None:
            pin = self._descent_device.type == "cuda" and self._device.type == "cpu"

            def make() -> list[torch.Tensor]:
                # each parameter's own layout (channels_last stays channels_last)
                return [torch.empty_strided(p.shape, p.stride() if dense_strides(
                    p.shape, p.stride()) else contiguous_strides(p.shape), dtype=p.dtype,
                    device=self._device, pin_memory=pin) for p in params]

            if not self._filled:  # the first snapshot: every buffer set, once
                self._filled = True
                self.worker.fill_pool(make)
                return self._buffers(params)
            bufs = make()
        return bufs

    def _job(self, version: int, params: Sequence[torch.Tensor], batch: Any,
             amp: AutocastState) -> Job:
        """The job for ``version``: a deferred snapshot on the CPU, else an async copy."""
        bufs = self._buffers(params)
        if self._defer:
            # the worker copies the live weights when it starts the job (off the main thread);
            # ``seal`` guarantees the copy precedes the base-optimizer update
            return Job(version, bufs, None, batch, source=list(params), amp=amp)
        self._copies += 1
        for b, p in zip(bufs, params, strict=True):
            b.copy_(p.detach(), non_blocking=True)
        # the worker waits on this event before reading: the copy is enqueued on the current
        # stream of the descent device (or of the ascent device when copying from the CPU)
        event = None
        if self._descent_device.type == "cuda":
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(self._descent_device))
        elif self._device.type == "cuda":
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(self._device))
        return Job(version, bufs, event, batch, amp=amp)

    def submit(self, version: int, params: Sequence[torch.Tensor],
               amp: AutocastState = NO_AUTOCAST) -> None:
        la = self._lookahead
        if la is None:
            self.worker.submit(self._job(version, params, NO_BATCH, amp))
        elif la.available(version + la.lead):
            # look-ahead: w_t goes with B_{t+tau}, the batch of the step that uses it;
            # step batches: with B_t, the batch of the step that published it
            batch = la.ascent_batch(version + la.lead, self._batch_size)
            self.worker.submit(self._job(version, params, batch, amp))
        # else: the batches have ended, no step will use this version

    @property
    def main_copies(self) -> int:
        """Snapshots copied by the calling thread: on the CPU those the worker had not started
        by the time of :meth:`seal`; across devices every one (an async copy on its stream)."""
        return self.worker.main_copies if self._defer else self._copies

    def seal(self, version: int) -> None:
        """Take the deferred snapshot of ``version`` now if the worker has not (see
        :meth:`~asam_theory.torch._worker.VersionedWorker.seal`; the count of such copies is
        ``worker.main_copies``)."""
        if self._defer:
            self.worker.seal(version, self._timeout)

    def acquire(self, step: int) -> Result:
        return self.worker.acquire(step, self._timeout)

    def state_dict(self, version: int) -> dict[str, Any]:
        """Directions and snapshots with version ≥ t − max_staleness, and the origin.

        Loaded into a fresh optimizer, the pipeline continues where it stopped: the next steps
        find the same completed directions, and the snapshots published but not yet computed
        are computed by the new worker (on batches drawn from the new ``ascent_batches``).
        """
        done, snaps, origin = self.worker.export(version)
        return {
            "directions": {v: [u.clone() for u in r.direction] for v, r in done.items()},
            "snapshots": {v: job.tensors for v, job in snaps.items()},
            "amp": {v: job.amp.to_state() for v, job in snaps.items()},
            "origin": origin,
        }

    def load_state_dict(self, state: dict[str, Any], version: int) -> None:
        done = {
            int(v): Result(int(v), _to(u, self._device)) for v, u in state["directions"].items()
        }
        la = self._lookahead
        amp = {int(v): AutocastState.from_state(a) for v, a in state.get("amp", {}).items()}
        jobs = {
            int(v): Job(int(v), _to(w, self._device), amp=amp.get(int(v), AutocastState()))
            if la is None else
            Job(int(v), _to(w, self._device),
                batch=la.ascent_batch(int(v) + la.lead, self._batch_size),
                amp=amp.get(int(v), AutocastState()))
            for v, w in state["snapshots"].items()
        }
        self.worker.restore(done, jobs, int(state["origin"]), version)

    def close(self, join_timeout: float = 30.0) -> None:
        """Stop and join the worker (``TimeoutError`` if ``ascent_loss`` does not return)."""
        self.worker.close(join_timeout)
