"""AsyncSAM: asynchronous Sharpness-Aware Minimization (Jo, Lim, Lee 2025, arXiv 2503.11147).

SAM (``docs/methods.md`` §2.1) needs the ascent gradient g_t = ∇L_{B_t}(w_t) *before* the
descent gradient, so its two gradients run one after the other. AsyncSAM takes the ascent
gradient at stale weights w_s, s = t − τ_t, on its own (smaller) batch B′ of size b′, on another
device, while the descent device works:

    u_t     = g′_s / (‖g′_s‖₂ + 1e-12),       g′_s = ∇L_{B′}(w_s)          (SAM direction)
    u_t     = w_s² ⊙ g′_s / (‖|w_s| ⊙ g′_s‖₂ + 1e-12)                      (adaptive=True, ASAM)
    w_{t+1} = BaseOpt(w_t, ∇L_{B_t}(w_t + ρ u_t)).

Threaded mode (default). A daemon worker thread owns a private replica of the model on
``ascent_device``. At the start of step t the main thread copies the weights w_t into a snapshot
buffer on the ascent device (``non_blocking`` from CUDA into pinned memory, with a CUDA event the
worker waits on) tagged with the version t = number of updates so far; when both roles share a
device that snapshot is also the copy the perturbation is undone from, so a step copies the
weights once. The worker computes u from the snapshot on a batch of size b′ drawn from
``ascent_batches`` (the replica's parameters are re-bound to the snapshot, no second copy).
For step t the main thread takes the freshest completed direction whose version v satisfies
``max(t − max_staleness, 0) ≤ v ≤ max(t − τ, origin)`` and waits (up to ``timeout`` seconds)
if there is none; it records the staleness t − v it actually used. With τ = 1 and an ascent that
is faster than a descent step, the worker computes u from w_{t−1} while the main thread descends
at step t − 1, so the perturbation costs no wall time.

Start convention (matches the simulation engine, where w_{t−τ} := w_0 for t < τ): version 0 is
the weights at the first ``step``; every step t < τ uses the direction at w_0, so the first step
waits for that ascent. The threaded worker computes each snapshot once, on one ascent batch, so
the steps t < τ share that direction; the deterministic mode draws a batch at every step.

Deterministic mode (``deterministic=True``): no thread. Step t computes the direction in the
main thread at the stored iterate w_s, s = max(t − τ, 0), on a freshly drawn ascent batch, so the
trajectory is a pure function of the seeds; in float64 it reproduces
``asam_theory.methods.AsyncSAM`` run by ``asam_theory.engine.simulate``.

BatchNorm: the perturbed descent pass runs inside :func:`bn_frozen` (momentum 0, running
statistics and ``num_batches_tracked`` restored), and the worker's replica has momentum 0 — so
AsyncSAM itself never changes running statistics (normalisation still uses batch statistics in
train mode). Since there is no unperturbed descent pass, recompute the statistics before
evaluation with :func:`asam_theory.torch.training.recalibrate_bn` (what ``train_loop`` does for
every method). Only parameters are snapshotted; the replica's buffers are its own.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from asam_theory.torch._common import (
    bn_frozen,
    check_device,
    cosine,
    move_batch,
)
from asam_theory.torch._worker import (
    AscentComputer,
    AscentLoss,
    BatchSource,
    Job,
    Result,
    VersionedWorker,
)
from asam_theory.validation import check_int, check_nonnegative

__all__ = ["AsyncSAM"]


class AsyncSAM(torch.optim.Optimizer):
    """Asynchronous SAM with the torch.optim contract (param groups, state_dict, closure step).

    Args:
        params: parameters or param-group dicts (each group may set its own ``rho``).
        base_optimizer: optimizer *class* (``torch.optim.SGD``, ``torch.optim.AdamW``, ...)
            instantiated on the param groups with ``**kwargs`` (davda54/sam convention; attach LR
            schedulers to ``.base_optimizer``).
        rho: radius ρ ≥ 0.
        tau: nominal staleness τ ≥ 0 (τ = 0: the direction at the current weights, i.e. SAM with
            the ascent on its own batch and device).
        ascent_device: device of the ascent computation (``"cpu"``, ``"cuda:k"``).
        ascent_batch_size: b′ — ``None`` (``ascent_batches()`` decides), a positive int
            (``ascent_batches(b′)``), or ``"auto"`` (:func:`tune_ascent_batch` picks the largest
            b′ whose ascent time fits under the descent time; needs ``descent_batch_size``).
        adaptive: ASAM scaling T_w = diag|w| (davda54/sam ``adaptive=True``).
        max_staleness: largest staleness a step may use, ≥ τ (default τ: exactly τ after the
            first τ steps, waiting for the worker when it is late).
        ascent_loss: ``ascent_loss(model_or_params, batch) -> loss``; receives the replica model
            (if ``model`` is given) or the list of parameter tensors (functional mode).
        ascent_batches: source of ascent batches (see :class:`~asam_theory.torch._worker.
            BatchSource`); batches are moved to ``ascent_device``. Called from the worker thread.
        model: the module owning ``params`` (needed for modules with BatchNorm and for
            ``ascent_loss`` written against a module); the replica is a deep copy.
        deterministic: sequential emulation with fixed τ (see module docstring).
        timeout: seconds the main thread waits for a direction before ``TimeoutError``.
        fidelity_every: every k-th step (k > 0) also compute the fresh direction at w_t on the
            same ascent batch and record cos(u_stale, u_fresh) in ``fidelity_history``.
        descent_batch_size: b, used by ``ascent_batch_size="auto"``.
        ascent_num_threads: intra-op threads of the worker (default: the creator's count).
        **kwargs: passed to ``base_optimizer``.

    Attributes:
        staleness_history: staleness used at each step.
        wait_history: seconds the main thread waited for the worker at each step.
        fidelity_history: ``(step, cosine)`` pairs.
        probe_seconds: main-thread time spent on fidelity probes (not part of the method).
        tuning: the :class:`AscentBatchTuning` when ``ascent_batch_size="auto"``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type[torch.optim.Optimizer],
        rho: float = 0.05,
        tau: int = 1,
        ascent_device: str | torch.device = "cpu",
        ascent_batch_size: int | str | None = None,
        adaptive: bool = False,
        max_staleness: int | None = None,
        *,
        ascent_loss: AscentLoss,
        ascent_batches: Any = None,
        model: nn.Module | None = None,
        deterministic: bool = False,
        timeout: float = 120.0,
        fidelity_every: int = 0,
        descent_batch_size: int | None = None,
        ascent_num_threads: int | None = None,
        **kwargs: Any,
    ) -> None:
        rho = check_nonnegative("rho", rho)
        tau = check_int("tau", tau, low=0)
        if max_staleness is None:
            max_staleness = tau
        max_staleness = check_int("max_staleness", max_staleness, low=0)
        if max_staleness < tau:
            raise ValueError(
                f"max_staleness must be an integer >= tau (= {tau}), got {max_staleness}"
            )
        dev = check_device("ascent_device", ascent_device)
        if not callable(ascent_loss):
            raise ValueError("ascent_loss must be a callable (model_or_params, batch) -> loss")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        self.fidelity_every = check_int("fidelity_every", fidelity_every, low=0)
        auto = isinstance(ascent_batch_size, str)
        if auto and ascent_batch_size != "auto":
            raise ValueError(
                "ascent_batch_size must be None, an integer >= 1 or 'auto', "
                f"got {ascent_batch_size!r}"
            )
        if not auto and ascent_batch_size is not None:
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
        self.ascent_device = dev
        self.adaptive = bool(adaptive)
        self.deterministic = bool(deterministic)
        self.timeout = float(timeout)
        self.model = model
        self._params = [p for g in self.param_groups for p in g["params"]]
        if not self._params:
            raise ValueError("params is empty")
        self.descent_device = self._params[0].device
        self._source = BatchSource(ascent_batches)
        self._computer = AscentComputer(ascent_loss, dev, model, self._params, self.adaptive)
        self._ascent_loss = ascent_loss
        self.tuning = None
        if auto:
            if descent_batch_size is None:
                raise ValueError("ascent_batch_size='auto' needs descent_batch_size (b >= 1)")
            b = check_int("descent_batch_size", descent_batch_size, low=1)
            if not self._source.sized:
                raise ValueError(
                    "ascent_batch_size='auto' needs ascent_batches as a callable (batch_size)"
                )
            self.tuning = self._autotune(b)
            ascent_batch_size = self.tuning.ascent_batch_size
        elif ascent_batch_size is not None and not self._source.sized and (
            ascent_batches is not None
        ):
            raise ValueError(
                "ascent_batch_size given but ascent_batches is not a callable (batch_size) -> batch"
            )
        self.ascent_batch_size: int | None = ascent_batch_size  # type: ignore[assignment]

        self._version = 0
        self._same_device = dev == self.descent_device
        self._closed = False
        self._old = [] if self._same_device else [torch.empty_like(p) for p in self._params]
        self._history: dict[int, list[torch.Tensor]] = {}
        self._last_result: Result | None = None
        self.staleness_history: list[int] = []
        self.wait_history: list[float] = []
        self.fidelity_history: list[tuple[int, float]] = []
        self.probe_seconds = 0.0
        self._worker: VersionedWorker | None = None
        if not self.deterministic:
            source, bsz = self._source, self.ascent_batch_size
            self._worker = VersionedWorker(
                compute=self._computer.direction,
                draw_batch=lambda: source.draw(bsz),
                device=dev,
                tau=tau,
                max_staleness=max_staleness,
                num_threads=(
                    torch.get_num_threads() if ascent_num_threads is None else ascent_num_threads
                ),
                keep_batch=self.fidelity_every > 0,
            )
            self._finalizer = weakref.finalize(self, _close_worker, self._worker)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop and join the worker thread (idempotent)."""
        self._closed = True
        if self._worker is not None:
            self._finalizer.detach()
            self._worker.close()

    def __enter__(self) -> AsyncSAM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        """Number of updates taken so far (the version of the current weights)."""
        return self._version

    # ------------------------------------------------------------------ internals
    def _autotune(self, b: int) -> Any:
        from asam_theory.torch.tuning import tune_ascent_batch

        target = self.model if self.model is not None else self._params
        params = self._params
        loss_fn = self._ascent_loss
        source = self._source
        descent_device = self.descent_device

        def descent_fn() -> None:
            batch = move_batch(source.draw(b), descent_device)
            if self.model is not None:
                ctx = bn_frozen(self.model)
                with ctx, torch.enable_grad():
                    loss = loss_fn(target, batch)
                    torch.autograd.grad(loss, params, allow_unused=True)
            else:
                leaves = [p.detach().requires_grad_(True) for p in params]
                with torch.enable_grad():
                    loss = loss_fn(leaves, batch)
                    torch.autograd.grad(loss, leaves, allow_unused=True)

        weights = [p.detach().to(self.ascent_device, copy=True) for p in params]

        def ascent_fn(bp: int) -> None:
            batch = move_batch(source.draw(bp), self.ascent_device)
            self._computer.direction(weights, batch)

        return tune_ascent_batch(
            descent_fn,
            ascent_fn,
            batch_size=b,
            descent_device=self.descent_device,
            ascent_device=self.ascent_device,
        )

    def _copy_weights(self) -> tuple[list[torch.Tensor], Any]:
        """Copy the current weights to the ascent device (snapshot buffers reused)."""
        bufs = self._worker.take_buffers() if self._worker is not None else None
        if bufs is None:
            pin = self.descent_device.type == "cuda" and self.ascent_device.type == "cpu"
            bufs = [
                torch.empty(p.shape, dtype=p.dtype, device=self.ascent_device, pin_memory=pin)
                for p in self._params
            ]
        if self._same_device:
            torch._foreach_copy_(bufs, [p.detach() for p in self._params])
        else:
            for b, p in zip(bufs, self._params, strict=True):
                b.copy_(p.detach(), non_blocking=True)
        # the worker waits on this event before reading: the copy is enqueued on the current
        # stream of the descent device (or of the ascent device when copying from the CPU)
        event = None
        if self.descent_device.type == "cuda":
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(self.descent_device))
        elif self.ascent_device.type == "cuda":
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(self.ascent_device))
        return bufs, event

    def _publish(self) -> list[torch.Tensor]:
        """Snapshot w_t as version t; return a copy of w_t usable for the restore."""
        if self.deterministic:
            snap = [p.detach().to(self.ascent_device, copy=True) for p in self._params]
            self._history[self._version] = snap
            for v in [v for v in self._history if v < self._version - self.tau]:
                del self._history[v]
        else:
            snap, event = self._copy_weights()
            assert self._worker is not None
            self._worker.submit(Job(self._version, snap, event))
        if self._same_device:
            return snap  # read-only for the worker and for the restore
        torch._foreach_copy_(self._old, [p.detach() for p in self._params])
        return self._old

    def _direction_for(self, t: int) -> Result:
        if self.deterministic:
            s = max(t - self.tau, 0)
            if s not in self._history:
                raise RuntimeError(f"AsyncSAM: iterate w_{s} missing from the history")
            batch = move_batch(self._source.draw(self.ascent_batch_size), self.ascent_device)
            u = self._computer.direction(self._history[s], batch)
            return Result(s, u, batch if self.fidelity_every else None)
        assert self._worker is not None
        res = self._worker.acquire(t, self.timeout)
        self._worker.set_next_step(t + 1)
        return res

    def _fresh_direction(self, batch: Any) -> list[torch.Tensor]:
        """Direction at the current weights on ``batch`` (main thread, descent device)."""
        batch = move_batch(batch, self.descent_device)
        if self.model is not None:
            leaves = list(self._params)
            target: Any = self.model
        else:
            leaves = [p.detach().requires_grad_(True) for p in self._params]
            target = leaves
        with torch.enable_grad(), bn_frozen(self.model):
            loss = self._ascent_loss(target, batch)
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        from asam_theory.torch._common import normalized_direction

        g = [torch.zeros_like(p) if gi is None else gi for p, gi in zip(self._params, grads,
                                                                       strict=True)]
        with torch.no_grad():
            u, _ = normalized_direction(g, [p.detach() for p in self._params], self.adaptive)
        return u

    # ------------------------------------------------------------------ step
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One AsyncSAM step.

        ``closure`` must zero the gradients, run a forward+backward at the (perturbed) current
        weights and return the loss; it is the only descent-device pass of the step.
        """
        if closure is None:
            raise ValueError("AsyncSAM.step requires closure (forward + backward, returns loss)")
        if self._closed:
            raise RuntimeError("AsyncSAM optimizer is closed")
        t = self._version
        # version t is published at the start of step t: the snapshot doubles as the restore
        # copy when both roles share a device (one copy of the weights per step)
        saved = self._publish()
        t0 = time.perf_counter()
        res = self._direction_for(t)
        self.wait_history.append(time.perf_counter() - t0)
        self._last_result = res
        if self.fidelity_every and t % self.fidelity_every == 0:
            tp = time.perf_counter()
            fresh = self._fresh_direction(res.batch)
            self.fidelity_history.append((t, cosine(res.direction, fresh)))
            self.probe_seconds += time.perf_counter() - tp

        u = res.direction
        if not self._same_device:
            u = [d.to(p.device, non_blocking=True) for d, p in zip(u, self._params, strict=True)]
        k = 0
        for group in self.param_groups:
            n = len(group["params"])
            torch._foreach_add_(group["params"], u[k:k + n], alpha=group["rho"])
            k += n
        try:
            with torch.enable_grad(), bn_frozen(self.model):
                loss = closure()
        finally:
            torch._foreach_copy_(self._params, saved)
        self.base_optimizer.step()
        self._version += 1
        self.staleness_history.append(t - res.version)
        return loss

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """Base-optimizer state + AsyncSAM state.

        ``asyncsam`` holds the version, the staleness history and either the iterate history
        (deterministic: w_v for v ≥ t − τ, enough to resume bit-identically) or the freshest
        completed direction with its version (threaded).
        """
        extra: dict[str, Any] = {
            "version": self._version,
            "tau": self.tau,
            "deterministic": self.deterministic,
            "staleness_history": list(self.staleness_history),
        }
        if self.deterministic:
            extra["history"] = {v: [w.clone() for w in ws] for v, ws in self._history.items()}
        else:
            res = self._worker.freshest() if self._worker is not None else None
            # only a direction the next step may still use (staleness <= max_staleness)
            if res is not None and res.version >= self._version - self.max_staleness:
                extra["direction"] = [u.clone() for u in res.direction]
                extra["direction_version"] = res.version
        return {"base": self.base_optimizer.state_dict(), "asyncsam": extra}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        """Restore a :meth:`state_dict`. Load the model's weights before calling this.

        Threaded mode restarts its pipeline at the loaded version (``origin``): the saved
        direction is used while its staleness is ≤ ``max_staleness``; versions from the origin
        on are snapshotted afresh.
        """
        if "base" not in state_dict or "asyncsam" not in state_dict:
            raise ValueError("state_dict is not an AsyncSAM state_dict (keys 'base', 'asyncsam')")
        self.base_optimizer.load_state_dict(state_dict["base"])
        self.param_groups = self.base_optimizer.param_groups
        extra = state_dict["asyncsam"]
        if bool(extra["deterministic"]) != self.deterministic or int(extra["tau"]) != self.tau:
            raise ValueError(
                "state_dict was saved with deterministic="
                f"{extra['deterministic']}, tau={extra['tau']}; this optimizer has "
                f"deterministic={self.deterministic}, tau={self.tau}"
            )
        self._version = int(extra["version"])
        self.staleness_history = list(extra["staleness_history"])
        if self.deterministic:
            self._history = {
                int(v): [w.to(self.ascent_device) for w in ws]
                for v, ws in extra["history"].items()
            }
        else:
            assert self._worker is not None
            self._worker.set_origin(self._version)
            if "direction" in extra:
                u = [d.to(self.ascent_device) for d in extra["direction"]]
                self._worker.preload(Result(int(extra["direction_version"]), u), self._version)
            self._worker.set_next_step(self._version)


def _close_worker(worker: VersionedWorker) -> None:
    worker.close()
