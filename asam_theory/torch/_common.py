"""Shared helpers for the PyTorch optimizers: validation, BatchNorm bypass, norms, devices.

BatchNorm convention (davda54/sam ``example/utility/bypass_bn.py``, see
``docs/methods.md`` §2.5): running statistics are updated only by *unperturbed* forward passes.
:func:`bn_frozen` sets ``momentum = 0`` on every ``_BatchNorm`` module for the duration of a pass
(so ``running = (1 - 0) * running + 0 * batch`` is unchanged) and additionally restores
``num_batches_tracked`` afterwards, so that modules with ``momentum=None`` (cumulative average,
which reads that counter) are untouched as well.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

#: Guard added to the gradient norm, as in davda54/sam: ε = ρ g / (‖g‖ + 1e-12).
NORM_EPS = 1e-12


def check_device(name: str, device: str | torch.device) -> torch.device:
    """Parse a device and check it exists here; ``ValueError`` names the parameter otherwise.

    Allowed: ``"cpu"``, ``"cuda"``/``"cuda:k"`` with ``k < torch.cuda.device_count()``, ``"mps"``
    where available.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"{name} must be a torch device (allowed: 'cpu', 'cuda', 'cuda:k', 'mps'), "
            f"got {device!r}"
        ) from exc
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        idx = 0 if dev.index is None else dev.index
        if idx >= n:
            raise ValueError(
                f"{name}={device!r} is not available: this machine has {n} CUDA device(s); "
                f"allowed: 'cpu'" + (f" or 'cuda:0'..'cuda:{n - 1}'" if n else "")
            )
        return torch.device("cuda", idx)
    if dev.type == "mps" and torch.backends.mps.is_available():
        return dev
    raise ValueError(
        f"{name}={device!r} is not available on this machine; allowed: 'cpu', 'cuda:k'"
    )


def batchnorm_modules(model: nn.Module | None) -> list[nn.modules.batchnorm._BatchNorm]:
    """All BatchNorm modules of ``model`` (empty list for ``None``)."""
    if model is None:
        return []
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextlib.contextmanager
def bn_frozen(model: nn.Module | None) -> Iterator[None]:
    """Forward passes inside this block leave BatchNorm running statistics unchanged.

    Sets ``momentum = 0`` (davda54/sam ``disable_running_stats``) and restores both the momentum
    and ``num_batches_tracked`` on exit. Normalisation still uses the batch statistics in train
    mode, exactly as in the unperturbed pass.
    """
    saved = []
    for m in batchnorm_modules(model):
        nbt = None if m.num_batches_tracked is None else m.num_batches_tracked.clone()
        saved.append((m, m.momentum, nbt))
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom, nbt in saved:
            m.momentum = mom
            if nbt is not None:
                m.num_batches_tracked.copy_(nbt)


class FrozenStats:
    """BatchNorm running statistics kept across a block: AsyncSAM's perturbed descent pass.

    The modules are found once, when the guard is built (no walk over the model per step);
    entering copies their ``running_mean``, ``running_var`` and ``num_batches_tracked`` into
    buffers allocated on the first use, leaving copies them back — two ``foreach`` calls per
    step whatever the number of layers. The end state equals :func:`bn_frozen`'s (momentum 0
    keeps ``running = 1·running + 0·batch``, the counter restored) whenever the batch statistics
    are finite, and stays intact when they are not (``0·nan`` would poison momentum 0).
    Normalisation inside the block uses the batch statistics in train mode, as always. The
    buffers are read from the modules at every entry, so a model moved after the guard was
    built is still covered; modules added later are not.
    """

    def __init__(self, model: nn.Module | None) -> None:
        self.modules = [m for m in batchnorm_modules(model) if m.track_running_stats]
        self._saved: list[torch.Tensor] | None = None
        self._live: list[torch.Tensor] = []

    def _buffers(self) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        for m in self.modules:
            out += [m.running_mean, m.running_var, m.num_batches_tracked]
        return out

    def __enter__(self) -> FrozenStats:
        if not self.modules:
            return self
        live = self._live = self._buffers()
        if self._saved is None or len(self._saved) != len(live):
            self._saved = [b.clone() for b in live]
            return self
        try:
            torch._foreach_copy_(self._saved, live)
        except RuntimeError:  # a buffer changed shape, dtype or device: start again
            self._saved = [b.clone() for b in live]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.modules:
            torch._foreach_copy_(self._live, self._saved)


def freeze_bn_permanently(model: nn.Module) -> None:
    """Set ``momentum = 0`` on every BatchNorm of ``model`` (used for private replicas)."""
    for m in batchnorm_modules(model):
        m.momentum = 0.0


def global_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """‖(t_1, ..., t_k)‖₂ computed as in davda54/sam: the norm of the stack of per-tensor norms."""
    if not tensors:
        raise ValueError("global_norm needs at least one tensor")
    dev = tensors[0].device
    if _one_device(tensors):  # one foreach kernel call instead of k (same per-tensor results)
        return torch.norm(torch.stack(torch._foreach_norm(list(tensors), 2)), p=2)
    return torch.norm(torch.stack([t.norm(p=2).to(dev) for t in tensors]), p=2)


def _one_device(tensors: Sequence[torch.Tensor]) -> bool:
    dev = tensors[0].device
    return all(t.device == dev for t in tensors)


def normalized_direction(
    grads: Sequence[torch.Tensor], weights: Sequence[torch.Tensor], adaptive: bool,
    inplace: bool = False,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The SAM/ASAM unit ascent direction u with ε = ρ u (davda54/sam ``first_step``).

    * ``adaptive=False`` (SAM): u = g / (‖g‖₂ + 1e-12), ‖·‖ the global norm over all tensors.
    * ``adaptive=True`` (ASAM, T_w = diag|w|): u = w² ⊙ g / (‖|w| ⊙ g‖₂ + 1e-12).

    Returns ``(u, ‖·‖)`` where the norm is the un-guarded one (for diagnostics). On one device
    the elementwise work is a few foreach calls (each a loop in C++ over the tensors): fewer
    Python-level operations, hence fewer hand-offs of the GIL when a worker thread runs this
    beside the training loop; the results are identical to the per-tensor formulas.
    ``inplace=True`` (SAM direction on one device) scales ``grads`` themselves and returns them
    as u — for callers that own fresh gradients (AsyncSAM's worker), one pass and one
    allocation of the size of the model fewer.
    """
    if _one_device([*grads, *weights]):
        grads = list(grads)
        if adaptive:
            weights = list(weights)
            scaled = torch._foreach_mul(torch._foreach_abs(weights), grads)
            norm = global_norm(scaled)
            scale = 1.0 / (norm + NORM_EPS)
            u = torch._foreach_mul(torch._foreach_mul(torch._foreach_pow(weights, 2), grads),
                                   scale)
        else:
            norm = global_norm(grads)
            scale = 1.0 / (norm + NORM_EPS)
            if inplace:
                torch._foreach_mul_(grads, scale)
                return grads, norm
            u = torch._foreach_mul(grads, scale)
        return list(u), norm
    if adaptive:
        scaled = [w.abs() * g for w, g in zip(weights, grads, strict=True)]
    else:
        scaled = list(grads)
    norm = global_norm(scaled)
    scale = 1.0 / (norm + NORM_EPS)
    if adaptive:
        u = [w.pow(2) * g * scale.to(g.device) for w, g in zip(weights, grads, strict=True)]
    else:
        u = [g * scale.to(g.device) for g in grads]
    return u, norm


def move_batch(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move every tensor inside a (nested tuple/list/dict) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, tuple):
        return tuple(move_batch(b, device, non_blocking) for b in batch)
    if isinstance(batch, list):
        return [move_batch(b, device, non_blocking) for b in batch]
    if isinstance(batch, dict):
        return {k: move_batch(v, device, non_blocking) for k, v in batch.items()}
    return batch


def cosine(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """Cosine of the angle between two parameter-shaped lists (flattened, float64)."""
    pairs = zip(a, b, strict=True)
    dot = sum(float((x.double() * y.double().to(x.device)).sum()) for x, y in pairs)
    na = math.sqrt(sum(float(x.double().pow(2).sum()) for x in a))
    nb = math.sqrt(sum(float(y.double().pow(2).sum()) for y in b))
    if na == 0.0 or nb == 0.0:
        return float("nan")
    return dot / (na * nb)


def resolve_base_optimizer(
    base_optimizer: Any, kwargs: dict[str, Any], owner: str
) -> tuple[Any, dict[str, Any]]:
    """The base optimizer's class (or factory) and its keyword arguments.

    The davda54/sam convention is a *class* such as ``torch.optim.SGD`` with its settings as
    keyword arguments.  An optimizer *instance* that has not stepped yet (no state) and uses one
    setting for all its parameters is accepted as well: its class and its ``defaults`` (those its
    constructor takes) are used, keyword arguments given here override them, and the instance
    itself is not used.  An instance with state or with per-group settings raises a
    ``ValueError`` that shows the one-line fix (its state or groups would otherwise be lost).
    """
    if isinstance(base_optimizer, torch.optim.Optimizer):
        cls = type(base_optimizer)
        fix = (f"pass the class instead: {owner}(params, torch.optim.{cls.__name__}, "
               "rho=..., lr=..., ...)")
        if base_optimizer.state:
            raise ValueError(
                f"base_optimizer is a {cls.__name__} instance that has already stepped (it has "
                f"state, which {owner} would not carry over); {fix}")
        defaults = base_optimizer.defaults
        per_group = sorted({k for g in base_optimizer.param_groups for k, v in g.items()
                            if k != "params" and k in defaults and _differs(v, defaults[k])})
        if per_group:
            raise ValueError(
                f"base_optimizer is a {cls.__name__} instance with per-group settings "
                f"{per_group}; {owner} builds its base optimizer on its own param groups, so "
                f"give the groups to {owner} (each group dict may set {per_group}) and {fix}")
        import inspect

        accepted = inspect.signature(cls.__init__).parameters
        merged = {k: v for k, v in defaults.items() if k in accepted and k != "params"}
        merged.update(kwargs)
        return cls, merged
    if isinstance(base_optimizer, type) or callable(base_optimizer):
        return base_optimizer, kwargs
    raise ValueError(
        f"base_optimizer must be a torch.optim.Optimizer class such as torch.optim.SGD (its "
        f"settings as keyword arguments: {owner}(params, torch.optim.SGD, rho=0.05, lr=0.1)), "
        f"got {type(base_optimizer).__name__}")


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except (RuntimeError, TypeError, ValueError):  # tensors, tuples of tensors
        return a is not b
