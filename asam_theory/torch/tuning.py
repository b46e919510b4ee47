"""System-aware choice of the ascent batch size b′ (AsyncSAM, arXiv 2503.11147).

AsyncSAM hides the ascent gradient behind the descent step only if the ascent device finishes
its gradient on b′ samples before the descent device finishes its step on b samples. The rule:

    b′ = max { c ∈ candidates : median T_ascent(c) ≤ margin · median T_descent(b) },

with medians over ``repeats`` timed calls after ``warmup`` untimed ones. ``margin < 1`` keeps
headroom for what the measurement does not see (the snapshot copy, thread hand-off, the two
devices sharing memory bandwidth); the default 0.8 leaves 20 %. If no candidate fits, the smallest
candidate is returned with ``fits=False`` (AsyncSAM then waits for the worker, which the measured
staleness histogram shows).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from asam_theory.torch._common import bn_frozen, move_batch
from asam_theory.torch._worker import AscentComputer


@dataclass
class AscentBatchTuning:
    """Measurements behind a b′ choice (seconds)."""

    ascent_batch_size: int
    batch_size: int
    fits: bool
    margin: float
    descent_time_s: float
    ascent_time_s: dict[int, float] = field(default_factory=dict)
    descent_device: str = "cpu"
    ascent_device: str = "cpu"
    repeats: int = 5

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ascent_time_s"] = {str(k): v for k, v in self.ascent_time_s.items()}
        return d


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(
    fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int,
    clock: Callable[[], float],
) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        _sync(device)
        times.append(clock() - t0)
    return statistics.median(times)


def default_candidates(batch_size: int) -> list[int]:
    """Candidate b′: the multiples b·k/16, k = 1..16 (deduplicated, ≥ 1)."""
    return sorted({max(1, (batch_size * k) // 16) for k in range(1, 17)})


def tune_ascent_batch(
    descent_fn: Callable[[], Any],
    ascent_fn: Callable[[int], Any],
    batch_size: int,
    candidates: Sequence[int] | None = None,
    margin: float = 0.8,
    warmup: int = 2,
    repeats: int = 5,
    descent_device: str | torch.device = "cpu",
    ascent_device: str | torch.device = "cpu",
    clock: Callable[[], float] = time.perf_counter,
) -> AscentBatchTuning:
    """Pick b′ by measurement (rule in the module docstring).

    Args:
        descent_fn: one descent-device forward+backward at batch size ``batch_size``.
        ascent_fn: ``ascent_fn(b′)``: one ascent gradient (and normalisation) at b′.
        batch_size: b, recorded in the result.
        candidates: b′ values to try (default :func:`default_candidates`).
        margin: fraction of the descent time the ascent may use, in (0, 1].
        warmup, repeats: untimed and timed calls per measurement.
        clock: time source in seconds (``time.perf_counter``; replaceable for testing).
    """
    if not 0.0 < float(margin) <= 1.0:
        raise ValueError(f"margin must be in (0, 1], got {margin!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    cands = sorted(set(int(c) for c in (candidates or default_candidates(batch_size))))
    if not cands or cands[0] < 1:
        raise ValueError(f"candidates must be integers >= 1, got {candidates!r}")
    ddev, adev = torch.device(descent_device), torch.device(ascent_device)
    t_desc = _median_time(descent_fn, ddev, warmup, repeats, clock)
    times: dict[int, float] = {}
    chosen = None
    for c in cands:
        times[c] = _median_time(lambda c=c: ascent_fn(c), adev, warmup, repeats, clock)
        if times[c] <= margin * t_desc:
            chosen = c
        else:
            break  # ascent time grows with b′: larger candidates will not fit either
    fits = chosen is not None
    return AscentBatchTuning(
        ascent_batch_size=chosen if fits else cands[0],
        batch_size=int(batch_size),
        fits=fits,
        margin=float(margin),
        descent_time_s=t_desc,
        ascent_time_s=times,
        descent_device=str(ddev),
        ascent_device=str(adev),
        repeats=int(repeats),
    )


def tune_for_asyncsam(
    params: Sequence[torch.Tensor],
    ascent_loss: Callable[[Any, Any], torch.Tensor],
    draw: Callable[[int], Any],
    model: torch.nn.Module | None,
    batch_size: int,
    ascent_device: str | torch.device = "cpu",
    adaptive: bool = False,
    candidates: Sequence[int] | None = None,
    margin: float = 0.8,
) -> AscentBatchTuning:
    """Measure AsyncSAM's two roles on the user's model and pick b′ (used by ``AsyncSAM.tuned``).

    Descent: one forward+backward of ``ascent_loss`` at the current weights on ``draw(b)`` on the
    parameters' device (BatchNorm statistics untouched). Ascent: the normalised direction at a copy
    of the weights on ``draw(b′)`` on ``ascent_device``, with the same replica computation as
    AsyncSAM's worker. Neither leaves gradients behind.
    """
    params = list(params)
    adev = torch.device(ascent_device)
    ddev = params[0].device
    computer = AscentComputer(ascent_loss, adev, model, params, adaptive)
    target: Any = model if model is not None else params

    def descent_fn() -> None:
        batch = move_batch(draw(batch_size), ddev)
        if model is not None:
            with bn_frozen(model), torch.enable_grad():
                torch.autograd.grad(ascent_loss(target, batch), params, allow_unused=True)
        else:
            leaves = [p.detach().requires_grad_(True) for p in params]
            with torch.enable_grad():
                torch.autograd.grad(ascent_loss(leaves, batch), leaves, allow_unused=True)

    weights = [p.detach().to(adev, copy=True) for p in params]

    def ascent_fn(bp: int) -> None:
        computer.direction(weights, move_batch(draw(bp), adev))

    return tune_ascent_batch(
        descent_fn, ascent_fn, batch_size=batch_size, candidates=candidates, margin=margin,
        descent_device=ddev, ascent_device=adev,
    )
