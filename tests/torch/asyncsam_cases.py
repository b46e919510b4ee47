"""AsyncSAM in the training-stack tests (``test_stack_asyncsam*.py``): one builder for its three
direction sources, a written-out reference trajectory, and module-level losses and batch sources
(the process backend pickles them for its worker, which imports this module by name: pytest puts
this folder on ``sys.path`` and a spawned process inherits it).

Every backend runs at ``max_staleness = τ`` with a deterministic ascent stream (the step's own
batch, :class:`~asam_theory.torch.StepBatches`, or one fixed batch), where the deterministic
mode, the worker thread and the worker process compute the same directions in the same order
(``tests/torch/test_torch_process.py`` checks that bit for bit), so one reference serves all.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from stack_cases import BASE
from torch import nn

from asam_theory.torch import AsyncSAM, WorkerOptions

#: the three direction sources: the main thread (sequential emulation), a worker thread, a
#: worker process
BACKENDS = ("deterministic", "thread", "process")
RHO = 0.05


def build(model: nn.Module, backend: str, *, tau: int = 1, base: Any = torch.optim.SGD,
          loss_fn: Any = None, ascent: Any = None, ascent_batch_size: int | None = None,
          **kwargs: Any) -> AsyncSAM:
    """``AsyncSAM.for_model`` on ``model`` with ``backend`` at ``max_staleness = τ``; the
    ascent batches are the step batches (``ascent=None``) or ``ascent``."""
    det = backend == "deterministic"
    worker = WorkerOptions(backend="thread" if det else backend, max_staleness=tau,
                           timeout=60.0)
    return AsyncSAM.for_model(model, nn.CrossEntropyLoss() if loss_fn is None else loss_fn,
                              base, rho=RHO, tau=tau, deterministic=det, worker=worker,
                              ascent_batches=ascent, ascent_batch_size=ascent_batch_size,
                              **BASE, **kwargs)


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# -- the reference --------------------------------------------------------------------------------
def _grads(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
    model.zero_grad()
    with torch.enable_grad():
        F.cross_entropy(model(batch[0]), batch[1]).backward()
    return [p.grad.detach().clone() for p in model.parameters()]


def unit(grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """SAM's direction g / (‖g‖₂ + 1e-12), the global norm as davda54/sam's."""
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    return [g / (norm + 1e-12) for g in grads]


def _gradient_at(model: nn.Module, point: Sequence[torch.Tensor],
                 batch: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
    """∇L_batch at the weights ``point`` (the model is left there)."""
    with torch.no_grad():
        for p, v in zip(model.parameters(), point, strict=True):
            p.copy_(v)
    return _grads(model, batch)


def reference(model: nn.Module, steps: Iterable[Any], *, tau: int = 1, skip: Iterable[int] = (),
              max_grad_norm: float | None = None) -> list[list[torch.Tensor]]:
    """AsyncSAM written out on ``model`` (trained in place), one entry per step t of ``steps``:
    ``(ascent_shards, descent_shards)``, each a list over replicas r of ``(x, y)``.

    Version t is the weights at the start of step t (a skipped step counts); step t perturbs
    replica r by ρ u_r with u_r the unit gradient at w_{max(t−τ, 0)} on ``ascent_shards`` of
    step max(t − τ, 0), descends on the mean over r of ∇L_{descent_r}(w_t + ρ u_r), optionally
    clipped, with SGD (the shared settings ``BASE``); a step in ``skip`` leaves the weights and
    the base optimizer as they are.  Returns the weights after each step.
    """
    params = list(model.parameters())
    base = torch.optim.SGD(params, **BASE)
    skipped = set(skip)
    versions: list[list[torch.Tensor]] = []
    ascents: list[Any] = []
    trajectory = []
    for t, (ascent, descent) in enumerate(steps):
        w = weights(model)
        versions.append(w)
        ascents.append(ascent)
        s = max(t - tau, 0)
        if t not in skipped:
            per_replica = []
            for r, shard in enumerate(descent):
                u = unit(_gradient_at(model, versions[s], ascents[s][r]))
                point = [wi + RHO * ui for wi, ui in zip(w, u, strict=True)]
                per_replica.append(_gradient_at(model, point, shard))
            _gradient_at(model, w, descent[0])  # back at w_t
            for i, p in enumerate(params):
                p.grad = torch.stack([g[i] for g in per_replica]).mean(0)
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            base.step()
        trajectory.append(weights(model))
    return trajectory


# -- module-level losses and batch sources (picklable for the worker process) ----------------------
class FixedBatch:
    """An ascent stream that returns one batch every time (its first ``n`` samples when asked
    for ``n``)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __call__(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.x, self.y) if n is None else (self.x[:n], self.y[:n])


class RecordingLoss:
    """Cross-entropy that appends, for every call, the caller's autocast state on
    ``device_type`` and where it ran to the JSON-lines file ``path`` (in whichever thread or
    process evaluates it)."""

    def __init__(self, path: str, device_type: str = "cpu") -> None:
        self.path = path
        self.device_type = device_type

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        dev = self.device_type
        record = {"n": int(outputs.shape[0]), "enabled": torch.is_autocast_enabled(dev),
                  "dtype": str(torch.get_autocast_dtype(dev)), "out": str(outputs.dtype),
                  "pid": os.getpid(), "thread": threading.current_thread().name}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        return F.cross_entropy(outputs, targets)


def records(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class LayoutLoss:
    """An ascent loss ``(model, batch)`` that records, at each call, whether every 4-D
    parameter of the model it receives (the worker's replica) is ``channels_last``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        four_d = [p for p in model.parameters() if p.dim() == 4]
        kept = bool(four_d) and all(p.is_contiguous(memory_format=torch.channels_last)
                                    for p in four_d)
        with open(self.path, "a") as f:
            f.write(f"{int(kept)}\n")
        return F.cross_entropy(model(batch[0]), batch[1])


def convnet(seed: int = 0) -> nn.Module:
    """A small float64 CNN (its two convolution weights are 4-D: ``channels_last`` applies)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3),
                         nn.Tanh(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).double()


def image_batches(steps: int, n: int = 16, seed: int = 2
                  ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 2, 6, 6, generator=g, dtype=torch.float64),
             torch.randint(0, 3, (n,), generator=g)) for _ in range(steps)]
