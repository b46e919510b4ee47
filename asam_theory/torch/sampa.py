"""SAMPa — SAM Parallelized (Xie, Pethick, Cevher, NeurIPS 2024; LIONS-EPFL/SAMPa).

Equations (``docs/methods.md`` §6.1), with f the minibatch loss:

    x̃_t     = x_t + ρ ∇f(y_t) / (‖∇f(y_t)‖₂ + 1e-12),
    y_{t+1} = x_t − η_t ∇f(y_t),
    x_{t+1} = x_t − η_t (1 − λ) ∇f(x̃_t) − η_t λ ∇f(y_{t+1}).

∇f(x̃_t) and ∇f(y_{t+1}) depend only on x_t and ∇f(y_t), so they run at the same time: the main
thread computes ∇f(x̃_t) on the descent device while a worker thread computes ∇f(y_{t+1}) on
``worker_device`` (the 2-device structure of the official ``train.py``, §6.5).  The defaults
follow the official code (LIONS-EPFL/SAMPa ``train.py``):

* ∇f(x̃_t) uses the *previous* batch B_{t−1} (the one ∇f(y_t) was computed on), ∇f(y_{t+1}) the
  current batch B_t; at the first step both use the current batch;
* ``start="zero"`` (default, as the official code): ∇f(y_0) = 0, so the first step has no
  perturbation and y_1 = x_0 — it is a plain SGD step; ``start="gradient"`` takes
  ∇f(y_0) = ∇f(x_0) on the first batch instead (one extra gradient) and then uses that batch
  as B_{−1};
* the mixed gradient (1 − λ)∇f(x̃_t) + λ∇f(y_{t+1}) is written into ``p.grad`` and the base
  optimizer steps, so the last equation holds exactly for plain SGD and becomes its
  momentum/weight-decay version otherwise;
* for ``torch.optim.SGD`` the auxiliary point is the step the official code builds from
  ∇f(y_t): y_{t+1} = x_t − η(∇f(y_t) + wd·x_t + μ·m_t) once the momentum buffer m_t exists,
  and y_{t+1} = x_t − η∇f(y_t) before it and whenever μ = 0 (weight decay enters the y-step
  only together with a momentum buffer); for other base optimizers y_{t+1} = x_t − η∇f(y_t)
  as in the equations.

Where this differs from the official code: λ = 0 is handled (∇f(y_{t+1}) is kept in its own
buffer, where the official code recovers it by dividing by λ, which gives no perturbation at
λ = 0), and BatchNorm: the perturbed pass at x̃_t runs inside :func:`bn_frozen` and the
worker's replica has momentum 0 (same convention as AsyncSAM), where the official code
updates running statistics in both passes.  ``tests/torch/test_reference_sampa.py`` compares
the default against a trajectory of the official code.

Training stack (:mod:`asam_theory.torch.stack`): the caller's autocast (read on the descent
device's type at each step) is entered for the y-gradient too, in the worker thread as on the
main thread; ``max_grad_norm=`` clips the mixed gradient before the base step;
``add_param_group`` is refused (the replica and the y-buffers cover the parameters given at
construction), and so is a DDP-wrapped model (its ``torch.autograd.grad`` passes are not
all-reduced).  No GradScaler: SAMPa runs its own backward passes; use bfloat16 autocast,
which needs no loss scaling.
"""

from __future__ import annotations

import types
import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from asam_theory.torch._common import (
    bn_frozen,
    check_device,
    move_batch,
    normalized_direction,
    resolve_base_optimizer,
)
from asam_theory.torch._worker import AscentComputer, AscentLoss, Job, VersionedWorker
from asam_theory.torch.stack import (
    AutocastState,
    check_max_grad_norm,
    clip_descent,
    is_ddp,
    weights_changed,
)
from asam_theory.validation import check_choice, check_nonnegative

__all__ = ["SAMPa"]


class SAMPa(torch.optim.Optimizer):
    """SAMPa-λ with its two gradients computed concurrently (``concurrent=True``).

    Args:
        params: parameters of ``model`` (or param groups).
        base_optimizer: optimizer class, built on the param groups with ``**kwargs`` (or a
            fresh instance: its class and settings).
        model: the module; ``loss_fn(model, batch) -> loss`` is evaluated on it (x̃ pass) and on a
            private replica on ``worker_device`` (y pass).
        loss_fn: minibatch loss.
        rho: radius ρ ≥ 0 (official default 0.1).
        lam: λ ∈ [0, 1] (official default 0.2, "SAMPa-0.2").
        worker_device: device of the y-gradient worker.
        concurrent: ``False`` computes both gradients one after the other in the main thread
            (same numbers; useful for exact tests).
        start: ``"zero"`` (official: ∇f(y_0) = 0) or ``"gradient"`` (∇f(y_0) = ∇f(x_0)).
        timeout: seconds to wait for the worker.
        max_grad_norm: clip the mixed gradient to this global 2-norm (``None``: no clipping).
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type[torch.optim.Optimizer],
        model: nn.Module,
        loss_fn: AscentLoss,
        rho: float = 0.1,
        lam: float = 0.2,
        worker_device: str | torch.device = "cpu",
        concurrent: bool = True,
        timeout: float = 120.0,
        worker_num_threads: int | None = None,
        start: str = "zero",
        max_grad_norm: float | None = None,
        **kwargs: Any,
    ) -> None:
        base_optimizer, kwargs = resolve_base_optimizer(base_optimizer, kwargs, "SAMPa")
        if is_ddp(model):
            raise ValueError("SAMPa computes its gradients with torch.autograd.grad, which "
                             "DistributedDataParallel does not all-reduce; model must not be "
                             "DDP-wrapped")
        self.max_grad_norm = check_max_grad_norm(max_grad_norm)
        rho = check_nonnegative("rho", rho)
        self.start = check_choice("start", start, ("zero", "gradient"))
        lam_f = float(lam)
        if not 0.0 <= lam_f <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {lam!r}")
        dev = check_device("worker_device", worker_device)
        defaults = dict(rho=rho, lam=lam_f, **kwargs)
        super().__init__(params, defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.model = model
        self.loss_fn = loss_fn
        self.lam = lam_f
        self.timeout = float(timeout)
        self.worker_device = dev
        self._params = [p for g in self.param_groups for p in g["params"]]
        self.descent_device = self._params[0].device
        self._computer = AscentComputer(loss_fn, dev, model, self._params, adaptive=False)
        # the caller's autocast at the current step, entered by the y-gradient pass
        self._amp = types.SimpleNamespace(state=AutocastState())
        self._y_gradient = self._y_gradient_fn(self._computer, self._amp, dev)
        self._g_y: list[torch.Tensor] | None = None
        self._prev_batch: Any = None
        self._t = 0
        self._worker: VersionedWorker | None = None
        if concurrent:
            self._worker = VersionedWorker(
                compute=self._y_gradient,
                draw_batch=lambda: None,
                device=dev,
                tau=0,
                max_staleness=0,
                num_threads=(
                    torch.get_num_threads() if worker_num_threads is None else worker_num_threads
                ),
                name="sampa-y-gradient",
            )
            self._finalizer = weakref.finalize(self, self._worker.close)

    @staticmethod
    def _y_gradient_fn(computer: AscentComputer, amp: types.SimpleNamespace,
                       device: torch.device):
        """``(weights, batch) -> ∇f`` under the autocast in ``amp.state`` (a function that does
        not reference the optimizer, so the worker thread does not keep it alive)."""
        def y_gradient(weights: list[torch.Tensor], batch: Any) -> list[torch.Tensor]:
            with amp.state.enter(device.type):
                weights_changed()  # the replica's weights were replaced since the last pass
                return computer.gradient(weights, batch)[0]
        return y_gradient

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Refused after construction (``ValueError``): the y-gradient replica and buffers
        cover the parameters given at construction."""
        if getattr(self, "_computer", None) is not None:
            raise ValueError("SAMPa does not support add_param_group after construction: its "
                             "y-gradient replica and buffers cover the parameters given at "
                             "construction; build it with every param group instead")
        super().add_param_group(param_group)

    def close(self) -> None:
        """Stop and join the worker thread (idempotent)."""
        if self._worker is not None:
            self._finalizer.detach()
            self._worker.close()

    def __enter__(self) -> SAMPa:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _grad_main(self, batch: Any) -> tuple[list[torch.Tensor], torch.Tensor]:
        batch = move_batch(batch, self.descent_device)
        with torch.enable_grad():
            loss = self.loss_fn(self.model, batch)
            grads = torch.autograd.grad(loss, self._params, allow_unused=True)
        g = [torch.zeros_like(p) if gi is None else gi for p, gi in zip(self._params, grads,
                                                                       strict=True)]
        return g, loss.detach()

    @torch.no_grad()
    def _y_next(self) -> list[torch.Tensor]:
        """y_{t+1} = x_t − η d_t with d_t as in the module docstring."""
        assert self._g_y is not None
        out = []
        k = 0
        sgd = isinstance(self.base_optimizer, torch.optim.SGD)
        for group in self.param_groups:
            for p in group["params"]:
                d = self._g_y[k]
                if sgd:
                    wd, mom = group.get("weight_decay", 0.0), group.get("momentum", 0.0)
                    buf = self.base_optimizer.state.get(p, {}).get("momentum_buffer")
                    if mom and buf is not None:  # the official code: both or neither
                        d = d + wd * p + mom * buf
                out.append(p.detach() - group["lr"] * d)
                k += 1
        return out

    @torch.no_grad()
    def step(self, batch: Any) -> torch.Tensor:  # type: ignore[override]
        """One SAMPa step on the current batch B_t; returns the loss at x̃_t on B_{t−1}."""
        if self._g_y is None:
            if self.start == "gradient":  # y_0 = x_0 with its gradient on the first batch
                self._g_y, _ = self._grad_main(batch)
            else:  # the official start: a zero y-gradient, so no perturbation
                self._g_y = [torch.zeros_like(p) for p in self._params]
            self._prev_batch = batch
        y_next = self._y_next()
        self._amp.state = AutocastState.capture(self.descent_device.type)
        t = self._t
        if self._worker is not None:
            y_dev = [y.to(self.worker_device, non_blocking=True) for y in y_next]
            event = None
            if self.descent_device.type == "cuda":
                event = torch.cuda.Event()
                event.record(torch.cuda.current_stream(self.descent_device))
            self._worker.submit(Job(t, y_dev, event, batch=batch))
        u, _ = normalized_direction(self._g_y, [p.detach() for p in self._params], False)
        old = [p.detach().clone() for p in self._params]
        k = 0
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(u[k], alpha=group["rho"])
                k += 1
        weights_changed()
        try:
            with bn_frozen(self.model):
                g_tilde, loss = self._grad_main(self._prev_batch)
        finally:
            for p, o in zip(self._params, old, strict=True):
                p.copy_(o)
            weights_changed()
        if self._worker is not None:
            g_y_next = self._worker.acquire(t, self.timeout).direction
            self._worker.set_origin(t + 1)
            self._worker.set_next_step(t + 1)
        else:
            g_y_next = self._y_gradient(
                [y.to(self.worker_device) for y in y_next],
                move_batch(batch, self.worker_device),
            )
        g_y_next = [g.to(self.descent_device, non_blocking=True) for g in g_y_next]
        lam = self.lam
        for p, gt, gy in zip(self._params, g_tilde, g_y_next, strict=True):
            p.grad = (1.0 - lam) * gt + lam * gy
        clip_descent(self._params, self.max_grad_norm)
        self.base_optimizer.step()
        weights_changed()
        self._g_y = g_y_next
        self._prev_batch = batch
        self._t += 1
        return loss

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """Base-optimizer state + ∇f(y_t), the previous batch and the step count."""
        return {
            "base": self.base_optimizer.state_dict(),
            "sampa": {
                "t": self._t,
                "g_y": None if self._g_y is None else [g.clone() for g in self._g_y],
                "prev_batch": self._prev_batch,
            },
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        self.base_optimizer.load_state_dict(state_dict["base"])
        self.param_groups = self.base_optimizer.param_groups
        extra = state_dict["sampa"]
        self._t = int(extra["t"])
        g = extra["g_y"]
        self._g_y = None if g is None else [x.to(self.descent_device) for x in g]
        self._prev_batch = extra["prev_batch"]
        if self._worker is not None:
            self._worker.set_origin(self._t)
            self._worker.set_next_step(self._t)
