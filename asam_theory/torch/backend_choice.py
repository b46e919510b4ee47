"""Which worker backend runs AsyncSAM faster on this machine: measured, not guessed.

The thread backend shares the training process's interpreter (and its GIL) with the training
loop; the process backend does not, but hands weights, batches and directions through shared
memory and a pipe.  Which costs less depends on the model, the batch, the machine and its load
(``docs/performance.md``: on a quiet 2-core CPU the process wins on small models, where both
roles are mostly Python dispatch; on wide ones the two are within a few per cent).  So
:func:`choose_backend` times them: ``rounds`` rounds of ``steps`` steps of each backend, in
alternating order (ABBA...), after ``warmup`` untimed steps; the backend with the smaller
median step time is chosen (ties, and a backend that cannot start, go to the thread).  The
measurements are kept in :class:`BackendChoice`.

``AsyncSAM.tuned`` runs it on a copy of the model (the user's weights are not touched);
``asam-theory bench`` and ``bench --crossover`` report both backends and which one it picks.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from asam_theory.validation import check_int

#: the backends, in the order ties are broken
BACKENDS = ("thread", "process")


@dataclass
class BackendChoice:
    """The chosen backend and the measurements behind it (seconds per step)."""

    backend: str
    step_s: dict[str, float] = field(default_factory=dict)
    per_round: dict[str, list[float]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    rounds: int = 0
    steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_backend(
    build: Callable[[str], tuple[Any, Callable[[], None]]],
    backends: Sequence[str] = BACKENDS,
    rounds: int = 4,
    steps: int = 10,
    warmup: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> BackendChoice:
    """Time one optimizer per backend and return the faster (module docstring).

    ``build(backend)`` returns ``(optimizer, step)``: an optimizer (closed afterwards if it has
    ``close``) and a function that takes one training step with it.  A backend whose ``build``
    raises (e.g. a loss that cannot be pickled for a worker process) is skipped and its error
    recorded in ``unavailable``.
    """
    rounds = check_int("rounds", rounds, low=1)
    steps = check_int("steps", steps, low=1)
    warmup = check_int("warmup", warmup, low=0)
    built: dict[str, tuple[Any, Callable[[], None]]] = {}
    unavailable: dict[str, str] = {}
    try:
        for b in backends:
            try:
                built[b] = build(b)
            except (ValueError, RuntimeError, TimeoutError, OSError) as exc:
                unavailable[b] = f"{type(exc).__name__}: {exc}"
        if not built:
            raise RuntimeError(f"no AsyncSAM backend could start: {unavailable}")
        names = list(built)
        for b in names:
            for _ in range(warmup):
                built[b][1]()
        per_round: dict[str, list[float]] = {b: [] for b in names}
        for r in range(rounds):
            for b in names if r % 2 == 0 else reversed(names):
                step = built[b][1]
                t0 = clock()
                for _ in range(steps):
                    step()
                per_round[b].append((clock() - t0) / steps)
    finally:
        for opt, _ in built.values():
            if hasattr(opt, "close"):
                opt.close()
    medians = {b: statistics.median(v) for b, v in per_round.items()}
    best = min(names, key=lambda b: (medians[b], BACKENDS.index(b) if b in BACKENDS else 99))
    return BackendChoice(best, medians, per_round, unavailable, rounds, steps)
