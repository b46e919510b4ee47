"""The pieces a training stack needs around a SAM-type optimizer: mixed precision, clipping,
gradient accumulation and DistributedDataParallel.

Every optimizer of :mod:`asam_theory.torch` that supports these features uses the functions of
this module, so each feature has one implementation and one contract:

**autocast** (:class:`AutocastState`).  ``torch.autocast`` is thread-local: a pass that an
optimizer runs on the caller's thread sees the caller's autocast, a pass on another thread
(SAMPa's y-gradient worker, AsyncSAM's ascent worker) does not.  ``AutocastState.capture(t)``
reads the caller's autocast for device type ``t`` (enabled, dtype); ``state.enter(u)`` enters
the same autocast (same dtype) for device type ``u`` in whichever thread calls it.  A disabled
state enters nothing.  Autocast also caches the low-precision copy of every weight until the
outermost autocast region closes (a disabled ``torch.autocast(..., enabled=False)`` region
counts), and an in-place change of the weights does not invalidate it: a step that runs inside
such a region (the batch form, SAMPa, SSAM's Fisher passes, any step inside a loop-wide
region) would evaluate its pass at w + ε with the copy of w.  So every in-place change of the
weights — the perturbation, its removal, the base step — is followed by
:func:`weights_changed` (``torch.clear_autocast_cache()``, the calling thread's cache).

**GradScaler** (:class:`GradPass`, :func:`unscale_pass`).  A SAM step has two gradient passes
(the ascent at w, the descent at w + ε), each the backward of a loss scaled by the same
``torch.amp.GradScaler``.  Each pass is presented to the scaler as an optimizer of its own, a
:class:`GradPass` whose ``param_groups`` are its owner's, so the scaler keeps one inf/NaN record
per pass.  :func:`unscale_pass` divides the pass's gradients by the scale in place and returns
whether they are all finite, through the scaler's public API only (``unscale_`` then ``step``,
which calls ``GradPass.step`` exactly when no inf/NaN was found).  The contract for the
optimizer: the perturbation is built from *unscaled* gradients; if either pass has an inf/NaN
the whole step is skipped (no perturbation left on the weights, no base step, the method's
state as before the step); the *caller* calls ``scaler.update()`` once per step, after the
optimizer's step, as with any ``torch.optim`` optimizer — the scaler then backs off once if any
pass of the step overflowed (its update sums the passes' records).  A :class:`GradPass` must
live as long as its owner (the scaler keys its records by ``id``).  Under DDP a per-replica
ascent pass is not all-reduced, so an overflow on one rank is not seen by the others:
:func:`agree_finite` all-reduces the verdict (one scalar per step) and makes every rank's
scaler record the overflow, so all ranks skip the same steps and keep the same scale.

**Clipping** (:func:`clip_descent`).  ``max_grad_norm=c`` clips the descent gradient (the one
the base optimizer applies) to global 2-norm ≤ c with ``torch.nn.utils.clip_grad_norm_``, after
unscaling and before the base step; the ascent gradient is not clipped (SAM normalises it
anyway).  :func:`check_max_grad_norm` validates the option (``None`` or a positive number).

**Gradient accumulation** (:func:`accumulate`).  k micro-batches B_1..B_k of one step are
backpropagated one at a time with the weights n_i / n (n_i = |B_i|, n = Σ n_i), so ``p.grad``
ends as the gradient of the union's mean loss, ∇ (1/n) Σ_i n_i L_{B_i} = Σ_i (n_i/n) ∇L_{B_i},
with one micro-batch in memory at a time.  For SAM the ascent and the descent pass are each
accumulated over the same micro-batches under one perturbation, so the step equals SAM's step
on the union.  With a ``scaler`` each weighted loss is scaled before its backward; with a DDP
model all micro-batches but the last run under ``no_sync`` (one all-reduce per pass), or all
of them with ``sync=False`` (the ascent pass of SAM under DDP).

**DistributedDataParallel** (:func:`ascent_pass`, :func:`is_ddp`, :func:`unwrap`,
:func:`ddp_of`).  SAM under
DDP uses a per-replica perturbation: each rank's ascent gradient is its own shard's, with no
all-reduce (``model.no_sync()``), and the descent pass all-reduces as usual, so the update is
the mean over ranks r of ∇L_{B_r}(w + ε_r).  ``ascent_pass(model)`` is ``model.no_sync()`` for a
DDP-wrapped model and does nothing for any other module, so the same loop runs with and without
DDP.  Methods that reuse the first gradient as a descent gradient (LookSAM, AE-SAM, ARSAM) need
it all-reduced: their :meth:`~asam_theory.torch.SAMFamily.ascent_pass` does nothing.

**Wrappers** (:func:`original_module`).  An optimizer that keeps a private replica of the model
(AsyncSAM's worker, SAMPa) copies the module inside the wrappers — DDP's ``.module`` and
``torch.compile``'s ``._orig_mod``, in any nesting — never the wrapper itself (a DDP wrapper
holds a process group, a compiled module its graphs), while the descent passes run through
the caller's wrapper.

Sources: ``torch.amp.GradScaler`` (its documented use with several optimizers per iteration);
PyTorch's notes "Automatic Mixed Precision examples" (gradient clipping after ``unscale_``,
gradient accumulation); ``DistributedDataParallel.no_sync``; the per-replica perturbation of
SAM under data parallelism (Foret et al., ICLR 2021, arXiv 2010.01412, their discussion of
m-sharpness).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from asam_theory.validation import check_positive

__all__ = [
    "AutocastState",
    "NO_AUTOCAST",
    "GradPass",
    "FlagPass",
    "accumulate",
    "agree_finite",
    "ascent_pass",
    "batch_size_of",
    "check_max_grad_norm",
    "clip_descent",
    "ddp_of",
    "is_ddp",
    "original_module",
    "unscale_pass",
    "unwrap",
    "weights_changed",
]


# -- autocast ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AutocastState:
    """The caller's autocast for one device type: ``enabled`` and ``dtype``."""

    enabled: bool = False
    dtype: torch.dtype | None = None

    @classmethod
    def capture(cls, device_type: str) -> AutocastState:
        """The calling thread's autocast state for ``device_type`` (``"cpu"``, ``"cuda"``)."""
        if not torch.is_autocast_enabled(device_type):
            return cls()
        return cls(True, torch.get_autocast_dtype(device_type))

    def enter(self, device_type: str) -> contextlib.AbstractContextManager:
        """A context that runs its block under this autocast on ``device_type`` (nothing when
        disabled); usable in any thread."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device_type, dtype=self.dtype)

    def to_state(self) -> str | None:
        """This state for a ``state_dict`` or a message: ``None`` (disabled) or the dtype's
        name (``"bfloat16"``)."""
        return str(self.dtype).removeprefix("torch.") if self.enabled else None

    @classmethod
    def from_state(cls, state: str | None) -> AutocastState:
        """The state :meth:`to_state` returned."""
        return cls() if state is None else cls(True, getattr(torch, state))


#: autocast disabled (the default state of a snapshot published outside any autocast)
NO_AUTOCAST = AutocastState()


def weights_changed() -> None:
    """The weights were changed in place: drop autocast's cached low-precision copies (of the
    calling thread) so that the next pass casts the current weights.

    Unconditional: the cache outlives an inner autocast region whenever an outer region is
    open, even a disabled one (``torch.autocast(..., enabled=False)`` around a loop keeps the
    nesting count above zero), so "autocast is off here" does not mean "the cache is empty".
    """
    torch.clear_autocast_cache()


# -- GradScaler -------------------------------------------------------------------------------
class GradPass:
    """One gradient pass of a step, shown to a ``GradScaler`` as an optimizer of its own.

    ``param_groups`` are the owner's (read at each use, so ``add_param_group`` and
    ``load_state_dict`` are followed); ``step()`` only records that the scaler found the pass's
    gradients finite.
    """

    def __init__(self, owner: torch.optim.Optimizer, name: str) -> None:
        self._owner = owner
        self.name = name
        self.finite = False

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self._owner.param_groups

    def step(self) -> None:
        self.finite = True

    def __repr__(self) -> str:
        return f"GradPass({type(self._owner).__name__}, {self.name!r})"


def unscale_pass(scaler: torch.amp.GradScaler, grad_pass: GradPass) -> bool:
    """Unscale the pass's gradients (``p.grad`` of its param groups) in place; True when they
    are all finite.

    ``scaler.unscale_`` divides by the scale and records inf/NaN; ``scaler.step`` calls
    ``grad_pass.step()`` only when none was found.  Each pass may be unscaled once between two
    ``scaler.update()`` calls (the scaler raises otherwise).
    """
    grad_pass.finite = False
    scaler.unscale_(grad_pass)  # type: ignore[arg-type]
    scaler.step(grad_pass)  # type: ignore[arg-type]
    return grad_pass.finite


def agree_finite(scaler: torch.amp.GradScaler, finite: bool, model: nn.Module,
                 flag_pass: GradPass) -> bool:
    """Whether a per-replica pass was finite on *every* rank of ``model``'s process group
    (all-reduce of one flag).  A rank whose own pass was finite while another's was not
    records the overflow in its scaler through ``flag_pass`` (a pass whose one gradient is set
    to inf), so that ``scaler.update()`` backs off on every rank alike."""
    import torch.distributed as dist

    device = next(iter(model.parameters())).device
    bad = torch.tensor([0.0 if finite else 1.0], device=device)
    dist.all_reduce(bad, op=dist.ReduceOp.MAX, group=model.process_group)
    agreed = bool(bad.item() == 0.0)
    if finite and not agreed:
        flag_pass.raise_flag(device)
        unscale_pass(scaler, flag_pass)
    return agreed


class FlagPass(GradPass):
    """A pass over one private flag tensor whose gradient is inf (for :func:`agree_finite`)."""

    def __init__(self, owner: torch.optim.Optimizer) -> None:
        super().__init__(owner, "flag")
        self._flag = torch.zeros(1, requires_grad=True)

    def raise_flag(self, device: torch.device) -> None:
        if self._flag.device != device:
            self._flag = torch.zeros(1, device=device, requires_grad=True)
        self._flag.grad = torch.full_like(self._flag, float("inf"))

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [self._flag]}]


def check_scaler(scaler: Any) -> torch.amp.GradScaler | None:
    """``None`` or a ``torch.amp.GradScaler`` (the CUDA-only alias included)."""
    if scaler is None or isinstance(scaler, torch.amp.GradScaler):
        return scaler
    raise ValueError(f"scaler must be None or a torch.amp.GradScaler, got {type(scaler).__name__}")


# -- clipping ---------------------------------------------------------------------------------
def check_max_grad_norm(max_grad_norm: float | None) -> float | None:
    """``None`` (no clipping) or a finite number in (0, inf)."""
    return None if max_grad_norm is None else check_positive("max_grad_norm", max_grad_norm)


def clip_descent(params: Sequence[torch.Tensor], max_grad_norm: float | None) -> None:
    """Clip the gradients of ``params`` (those that have one) to global 2-norm ≤
    ``max_grad_norm`` with ``torch.nn.utils.clip_grad_norm_``; nothing for ``None``."""
    if max_grad_norm is None:
        return
    with_grad = [p for p in params if p.grad is not None]
    if with_grad:
        torch.nn.utils.clip_grad_norm_(with_grad, max_grad_norm)


# -- accumulation -----------------------------------------------------------------------------
def batch_size_of(batch: Any) -> int:
    """Samples in a batch: the first dimension of its first tensor (nested tuples, lists and
    dicts are searched in order)."""
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0:
            raise ValueError("a micro-batch tensor must have a sample dimension, got a scalar")
        return int(batch.shape[0])
    items = list(batch.values()) if isinstance(batch, dict) else batch
    if isinstance(items, (tuple, list)):
        for item in items:
            with contextlib.suppress(ValueError):
                return batch_size_of(item)
    raise ValueError(f"cannot read the number of samples of a micro-batch of type "
                     f"{type(batch).__name__}: it holds no tensor")


def accumulate(loss_fn: Callable[[Any], torch.Tensor], micro_batches: Sequence[Any], *,
               scaler: torch.amp.GradScaler | None = None, model: nn.Module | None = None,
               sync: bool = True) -> torch.Tensor:
    """Backward of the union's mean loss over ``micro_batches``, one micro-batch at a time.

    ``loss_fn(batch)`` returns the mean loss over ``batch``; its backward is weighted by
    n_i / n, so ``p.grad`` accumulates Σ_i (n_i/n) ∇L_{B_i} = ∇L_{∪B_i} (gradients already in
    ``p.grad`` are added to, as by any backward).  ``scaler`` scales each weighted loss.  With
    a DDP ``model`` every micro-batch but the last runs under ``model.no_sync()`` (``sync=True``:
    the last backward all-reduces the accumulated gradient), or every one (``sync=False``).
    Returns the union's mean loss, detached.
    """
    batches = list(micro_batches)
    if not batches:
        raise ValueError("micro_batches must hold at least one micro-batch, got none")
    sizes = [batch_size_of(b) for b in batches]
    n = sum(sizes)
    total = None
    with torch.enable_grad():
        for i, (batch, n_i) in enumerate(zip(batches, sizes, strict=True)):
            last = i == len(batches) - 1
            quiet = is_ddp(model) and (not sync or not last)
            with model.no_sync() if quiet else contextlib.nullcontext():  # type: ignore[union-attr]
                loss = loss_fn(batch) * (n_i / n)
                (loss if scaler is None else scaler.scale(loss)).backward()
            total = loss.detach() if total is None else total + loss.detach()
    return total


# -- DistributedDataParallel ------------------------------------------------------------------
def is_ddp(model: nn.Module | None) -> bool:
    """Whether ``model`` is wrapped in ``torch.nn.parallel.DistributedDataParallel``."""
    return isinstance(model, nn.parallel.DistributedDataParallel)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (``model.module``), or ``model`` itself."""
    return model.module if is_ddp(model) else model


@contextlib.contextmanager
def ascent_pass(model: nn.Module | None) -> Iterator[None]:
    """Run SAM's ascent forward + backward inside this block: under DDP without all-reduce
    (``model.no_sync()``, each replica keeps its own shard's gradient: the per-replica
    perturbation), otherwise as it is.

    The forward must run inside the block (DDP decides at the forward whether the backward
    all-reduces).  The gradients stay in ``p.grad``; ``first_step(zero_grad=True)`` (or
    ``step(closure)``) clears them before the descent pass, whose backward all-reduces.
    """
    if is_ddp(model):
        with model.no_sync():  # type: ignore[union-attr]
            yield
    else:
        yield


def _is_compiled(model: Any) -> bool:
    """Whether ``model`` is ``torch.compile``'s wrapper (an ``OptimizedModule``; when dynamo
    was never imported there is none)."""
    frames = sys.modules.get("torch._dynamo.eval_frame")
    return frames is not None and isinstance(model, frames.OptimizedModule)


def original_module(model: nn.Module) -> nn.Module:
    """The module inside every DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrapper
    of ``model``, in any nesting order; ``model`` itself when it is not wrapped."""
    while True:
        if is_ddp(model):
            model = model.module
        elif _is_compiled(model):
            model = model._orig_mod
        else:
            return model


def ddp_of(model: nn.Module | None) -> nn.parallel.DistributedDataParallel | None:
    """The DDP wrapper among ``model``'s wrappers (``DDP(m)``, ``torch.compile(DDP(m))``,
    ...), or ``None``."""
    while model is not None:
        if is_ddp(model):
            return model  # type: ignore[return-value]
        model = model._orig_mod if _is_compiled(model) else None
    return None
