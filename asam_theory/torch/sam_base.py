"""Shared base of the SAM-family optimizers, and the one loss-callable interface.

:class:`SAMFamily` gives every SAM-type optimizer of :mod:`asam_theory.torch` the contract of
davda54/sam (``docs/methods.md`` §2.5) and of ``torch.optim``:

* ``base_optimizer`` is an optimizer *class*, built on this optimizer's param groups with the
  extra ``**kwargs`` (``lr``, ``momentum``, ``weight_decay``, ...); ``self.param_groups`` *is*
  the base optimizer's list, so a scheduler attached to either sees the same groups, and each
  group carries the method's hyperparameters (``rho``, ``k``, ...) next to the base ones;
* ``state_dict()``/``load_state_dict()`` save and restore this optimizer's per-parameter state
  (e.g. LookSAM's reused component), the base optimizer's state (momentum buffers) and the
  method's scalar state (step counter, running statistics) — see :meth:`_method_state`;
* perturb/restore: :meth:`_perturb` adds ε to the weights and remembers them
  (``state[p]["old_p"]``), :meth:`_restore` puts them back **only where a perturbation was
  applied** and forgets the copy, so a step without a perturbation never resets weights;
* BatchNorm as in SAM: the caller's first (unperturbed) pass updates running statistics,
  every pass the optimizer runs at a perturbed point (or any further pass of the same step)
  runs inside :func:`asam_theory.torch.bn_frozen`;
* counted cost: ``self.counts`` adds up, in full-batch equivalents of the step's batch, the
  gradient evaluations (``"grads"``) and forward-only evaluations (``"forwards"``) of every
  step — the caller's first backward included — so ``counts / steps`` can be compared with
  the numpy rule's declared :class:`~asam_theory.methods.Cost`.

The training stack (:mod:`asam_theory.torch.stack` holds the contract):

* ``max_grad_norm=c`` clips the gradient the base optimizer applies (:meth:`_base_step`);
* ``step(..., scaler=scaler)`` takes a ``torch.amp.GradScaler``: every gradient pass is
  unscaled before use (the perturbation is built from unscaled gradients), a step whose passes
  hold an inf/NaN is skipped whole (weights and method state as before it, no base step), and
  the caller calls ``scaler.update()`` once after the step;
* :meth:`ascent_pass` wraps the caller's first forward + backward: ``no_sync`` under DDP for
  the methods whose first gradient only builds the perturbation (``PER_REPLICA_ASCENT``: SAM,
  SSAM), nothing for those that reuse it as a descent gradient; with a scaler the ranks then
  agree on skipping a step (:func:`~asam_theory.torch.stack.agree_finite`).  The batch form
  runs its own passes with ``torch.autograd.grad``, which DDP does not all-reduce, so it
  refuses a DDP-wrapped ``model``;
* ``add_param_group`` works for every method whose state is built lazily; a method with state
  fixed at construction refuses it with a ``ValueError`` (``ADD_PARAM_GROUP``).

Two step interfaces, one per kind of method:

**Closure** (methods that need only mean-loss gradients: SAM, LookSAM, AE-SAM, SSAM).  As in
davda54/sam the caller runs ``loss = criterion(model(x), y); loss.backward()`` at the current
weights, then ``optimizer.step(closure)`` where ``closure()`` runs a full forward + backward at
the current (perturbed) weights and returns the loss.  A method calls the closure only on
steps that need it (LookSAM's reuse steps and AE-SAM's SGD steps do not).

**Per-sample loss** (methods that need per-sample losses or the model's outputs: K-SAM's
top-k, AUSAM's sampling table, BiSAM's logits, RWP's shards).  The optimizer is built with
``model`` and ``criterion`` and stepped with the batch::

    opt = KSAM(model.parameters(), torch.optim.SGD, model=model,
               criterion=torch.nn.functional.cross_entropy, k=32, lr=0.1)
    loss = opt.step(inputs=x, targets=y)

``criterion(output, targets, reduction="none")`` returns the per-sample losses, shape
``(b,)``, of ``output = model(inputs)`` (``torch.nn.functional.cross_entropy`` and every
``torch.nn`` functional loss have this signature); the mean loss is their mean.
``inputs`` and ``targets`` are tensors whose first dimension is the sample
(:func:`select_samples` takes a subset of both).  The optimizer runs every forward pass itself
(:meth:`SAMFamily._per_sample_losses`, :meth:`SAMFamily._mean_loss_grad`), so it can count
them, choose subsets, and freeze BatchNorm on its extra passes.  A method that needs the
outputs themselves (logits) calls ``model(inputs)`` and reads them before the criterion.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import torch
from torch import nn

from asam_theory.torch._common import bn_frozen, global_norm, resolve_base_optimizer
from asam_theory.torch.stack import (
    FlagPass,
    GradPass,
    agree_finite,
    ascent_pass,
    check_max_grad_norm,
    check_scaler,
    clip_descent,
    is_ddp,
    unscale_pass,
    weights_changed,
)
from asam_theory.validation import check_nonnegative

__all__ = ["PerSampleCriterion", "SAMFamily", "select_samples"]


class PerSampleCriterion(Protocol):
    """``criterion(output, targets, reduction="none") -> Tensor`` of shape ``(b,)``."""

    def __call__(self, output: torch.Tensor, targets: torch.Tensor, *,
                 reduction: str = ...) -> torch.Tensor: ...


def select_samples(tensor: torch.Tensor, idx: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """Rows ``idx`` of ``tensor`` along its first (sample) dimension."""
    idx_t = torch.as_tensor(idx, dtype=torch.long, device=tensor.device)
    return tensor.index_select(0, idx_t)


class SAMFamily(torch.optim.Optimizer):
    """Base class: base optimizer, perturb/restore, state dicts, counts, loss helpers.

    Args:
        params: parameters or param-group dicts.
        base_optimizer: optimizer *class* (e.g. ``torch.optim.SGD``); a fresh instance is
            accepted too (its class and settings: :func:`~asam_theory.torch._common.
            resolve_base_optimizer`).
        rho: perturbation radius ρ ≥ 0 (per group overridable).
        method_defaults: the subclass's other hyperparameters, stored in every param group.
        model: the module (per-sample interface, and BatchNorm freezing of extra passes).
        criterion: per-sample loss ``criterion(output, targets, reduction="none")``.
        max_grad_norm: clip the descent gradient to this global 2-norm before the base step
            (``None``: no clipping).
        **kwargs: passed to ``base_optimizer``.
    """

    #: whether the caller's first gradient only builds the perturbation (so that under DDP it
    #: may stay per replica: :meth:`ascent_pass`)
    PER_REPLICA_ASCENT: bool = False
    #: ``None`` when ``add_param_group`` works after construction, else why it is refused
    ADD_PARAM_GROUP: str | None = None

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer],
                 rho: float = 0.05, *, method_defaults: dict[str, Any] | None = None,
                 model: nn.Module | None = None,
                 criterion: PerSampleCriterion | None = None,
                 max_grad_norm: float | None = None, **kwargs: Any) -> None:
        base_optimizer, kwargs = resolve_base_optimizer(base_optimizer, kwargs,
                                                        type(self).__name__)
        if criterion is not None and is_ddp(model):
            raise ValueError(
                f"{type(self).__name__} runs forward and backward passes of its own with "
                "torch.autograd.grad, which DistributedDataParallel does not all-reduce; "
                "model must not be DDP-wrapped (pass model=ddp.module where the method allows "
                "per-replica passes, as SSAM's Fisher mask)")
        rho = check_nonnegative("rho", rho)
        self.max_grad_norm = check_max_grad_norm(max_grad_norm)
        defaults = dict(rho=rho, **(method_defaults or {}), **kwargs)
        super().__init__(params, defaults)
        for group in self.param_groups:
            check_nonnegative("rho", group["rho"])
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.model = model
        self.criterion = criterion
        self.t = 0
        self.counts: dict[str, float] = {"grads": 0.0, "forwards": 0.0}
        #: steps skipped because a scaled gradient held an inf/NaN
        self.skipped_steps = 0
        self._passes = (GradPass(self, "ascent"), GradPass(self, "descent"))
        self._flag_pass = FlagPass(self)
        #: the DDP model whose ascent pass runs per replica (set by :meth:`ascent_pass`)
        self._replica_model: nn.Module | None = None
        self._scaler: torch.amp.GradScaler | None = None
        self._snapshot: dict[str, Any] | None = None
        self._skipping = False
        self._unscaled: set[int] = set()
        self._constructed = True

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """``torch.optim.Optimizer.add_param_group``; the base optimizer shares the list of
        groups, so it steps the new group too.  Refused (``ValueError``) by methods whose state
        is fixed at construction (``ADD_PARAM_GROUP`` says why)."""
        if getattr(self, "_constructed", False) and self.ADD_PARAM_GROUP is not None:
            raise ValueError(f"{type(self).__name__} does not support add_param_group after "
                             f"construction: {self.ADD_PARAM_GROUP}; build it with every "
                             "param group instead")
        super().add_param_group(param_group)

    # -- the training stack (asam_theory.torch.stack) -----------------------------------------
    def ascent_pass(self, model: nn.Module | None = None):
        """Context for the caller's first forward + backward (the one before ``step``):
        ``model.no_sync()`` under DDP when this method's first gradient only builds the
        perturbation (``PER_REPLICA_ASCENT``), otherwise nothing, since the method reuses that
        gradient as a descent gradient and it must be all-reduced.  ``model`` defaults to the
        ``model=`` given at construction."""
        model = self.model if model is None else model
        if self.PER_REPLICA_ASCENT:
            self._replica_model = model if is_ddp(model) else None
            return ascent_pass(model)
        return contextlib.nullcontext()

    def _begin_step(self, scaler: torch.amp.GradScaler | None) -> None:
        """Start a step with ``scaler`` (or none); with a scaler, remember the method state
        for a possible skip."""
        self._scaler = check_scaler(scaler)
        self._skipping = False
        self._unscaled = set()
        self._snapshot = None if self._scaler is None else self._method_state()

    def _pass_finite(self, which: int) -> bool:
        """With a scaler: unscale ``p.grad`` as gradient pass ``which`` (0 the ascent, 1 the
        descent), once per step; on an inf/NaN skip the step (:meth:`_skip`) and return
        False."""
        if self._scaler is None:
            return True
        if which in self._unscaled:
            return not self._skipping
        self._unscaled.add(which)
        finite = unscale_pass(self._scaler, self._passes[which])
        if which == 0 and self._replica_model is not None:  # per-replica: every rank agrees
            finite = agree_finite(self._scaler, finite, self._replica_model, self._flag_pass)
        if finite:
            return True
        self._skip()
        return False

    def _grads_finite(self, grads: Sequence[torch.Tensor | None],
                      which: int) -> list[torch.Tensor | None] | None:
        """Unscale gradients returned by ``torch.autograd.grad`` (they pass through
        ``p.grad``); ``None`` when the step is skipped."""
        if self._scaler is None:
            return list(grads)
        params = self._params()
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        if not self._pass_finite(which):
            return None
        return [p.grad for p in params]

    def _scaled(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to backpropagate: ``scaler.scale(loss)`` with a scaler."""
        return loss if self._scaler is None else self._scaler.scale(loss)

    def _skip(self) -> None:
        """Skip the current step: weights restored, method state as before the step (the
        counts keep the work done)."""
        self._restore()
        counts = dict(self.counts)
        if self._snapshot is not None:
            self._load_method_state(self._snapshot)
        self.counts = counts
        self.skipped_steps += 1
        self._skipping = True

    def _base_step(self) -> None:
        """Clip the descent gradient in ``p.grad`` to ``max_grad_norm`` and take the base
        optimizer's step."""
        clip_descent(self._params(), self.max_grad_norm)
        self.base_optimizer.step()
        weights_changed()

    # -- parameters ---------------------------------------------------------------------------
    def _params(self) -> list[torch.nn.Parameter]:
        return [p for g in self.param_groups for p in g["params"]]

    def _group_params(self) -> list[tuple[dict, torch.nn.Parameter]]:
        """``(group, p)`` for every parameter, in the order of :meth:`_params`."""
        return [(g, p) for g in self.param_groups for p in g["params"]]

    def _pairs_with_grad(self) -> list[tuple[dict, torch.nn.Parameter]]:
        return [(g, p) for g in self.param_groups for p in g["params"] if p.grad is not None]

    @staticmethod
    def _grad_norm(grads: Sequence[torch.Tensor]) -> torch.Tensor:
        """Global ‖·‖₂ over all tensors (davda54/sam)."""
        return global_norm(list(grads))

    # -- perturb / restore --------------------------------------------------------------------
    @torch.no_grad()
    def _perturb(self, pairs: Sequence[tuple[torch.nn.Parameter, torch.Tensor]]) -> None:
        """w ← w + ε for each ``(p, ε_p)``; remembers w in ``state[p]["old_p"]``."""
        for p, e in pairs:
            self.state[p]["old_p"] = p.detach().clone()
            p.add_(e)
        weights_changed()

    @torch.no_grad()
    def _restore(self) -> None:
        """w ← ``old_p`` where a perturbation was applied (and only there); forgets it."""
        for p in self._params():
            st = self.state.get(p)
            if st and "old_p" in st:
                p.copy_(st.pop("old_p"))
        weights_changed()

    # -- evaluations (counted) ----------------------------------------------------------------
    def _closure_grad(self, closure: Callable[[], Any], fraction: float = 1.0) -> Any:
        """Run the closure (forward + backward) with grad enabled and BatchNorm frozen; with a
        scaler unscale its gradient (the descent pass): on an inf/NaN the step is skipped
        (``self._skipping``)."""
        with torch.enable_grad(), bn_frozen(self.model):
            loss = closure()
        self.counts["grads"] += fraction
        self._pass_finite(1)
        return loss

    def _require_per_sample(self) -> tuple[nn.Module, PerSampleCriterion]:
        if self.model is None or self.criterion is None:
            raise ValueError(f"{type(self).__name__} needs model= and criterion= (the per-sample "
                             "loss interface of asam_theory.torch.sam_base)")
        return self.model, self.criterion

    @torch.no_grad()
    def _per_sample_losses(self, inputs: torch.Tensor, targets: torch.Tensor, *,
                           batch_size: int, freeze_bn: bool = False) -> torch.Tensor:
        """Forward only: per-sample losses ``(b,)``; counts ``b / batch_size`` forwards."""
        model, criterion = self._require_per_sample()
        if freeze_bn:
            with bn_frozen(model):
                losses = criterion(model(inputs), targets, reduction="none")
        else:
            losses = criterion(model(inputs), targets, reduction="none")
        self.counts["forwards"] += inputs.shape[0] / batch_size
        return losses.detach()

    def _mean_loss_grad(self, inputs: torch.Tensor, targets: torch.Tensor, *, batch_size: int,
                        freeze_bn: bool = True, which: int = 1,
                        ) -> tuple[list[torch.Tensor] | None, torch.Tensor]:
        """Gradient of the mean per-sample loss over ``inputs`` at the current weights;
        counts ``len(inputs) / batch_size`` gradients.  Returns ``(grads, loss)`` (grads of
        unused parameters are zeros); with a scaler the loss is scaled and the gradients are
        unscaled as pass ``which``, and ``grads`` is ``None`` when they hold an inf/NaN (the
        step is then skipped)."""
        model, criterion = self._require_per_sample()
        params = self._params()
        with torch.enable_grad():
            with bn_frozen(model) if freeze_bn else contextlib.nullcontext():
                loss = criterion(model(inputs), targets, reduction="none").mean()
            grads = torch.autograd.grad(self._scaled(loss), params, allow_unused=True)
        self.counts["grads"] += inputs.shape[0] / batch_size
        out = self._grads_finite([torch.zeros_like(p) if g is None else g
                                  for p, g in zip(params, grads, strict=True)], which)
        return out, loss.detach()

    @torch.no_grad()
    def _base_step_with(self, grads: Sequence[torch.Tensor]) -> None:
        """Write ``grads`` into ``p.grad`` and take the base step (:meth:`_base_step`)."""
        for p, g in zip(self._params(), grads, strict=True):
            p.grad = g.detach().clone()
        self._base_step()

    # -- state ----------------------------------------------------------------------------------
    def _method_state(self) -> dict[str, Any]:
        """Scalar method state saved by :meth:`state_dict` (subclasses extend)."""
        return {"t": self.t, "counts": dict(self.counts)}

    def _load_method_state(self, state: dict[str, Any]) -> None:
        self.t = int(state.get("t", 0))
        self.counts = dict(state.get("counts", {"grads": 0.0, "forwards": 0.0}))

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        sd = super().state_dict()
        sd["base_optimizer"] = self.base_optimizer.state_dict()
        sd["method_state"] = self._method_state()
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        sd = dict(state_dict)
        base = sd.pop("base_optimizer", None)
        method = sd.pop("method_state", None)
        super().load_state_dict(sd)
        self.base_optimizer.param_groups = self.param_groups
        if base is not None:
            self.base_optimizer.load_state_dict(base)
            self.param_groups = self.base_optimizer.param_groups
        if method is not None:
            self._load_method_state(method)
