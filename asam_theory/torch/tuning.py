"""System-aware choice of the ascent batch size b′ (AsyncSAM, arXiv 2503.11147).

AsyncSAM hides the ascent gradient behind the descent step only if the ascent device finishes
its gradient on b′ samples before the descent device finishes its step on b samples — while
both run at once, since two roles that share hardware (caches, memory bandwidth, a PCIe link)
slow each other down. The rule has two parts:

    F  = { c ∈ candidates : median T_ascent(c) ≤ margin · median T_descent(b) }        (alone)
    b′ = max { c ∈ F : median_i  A_i(c) / D_i(c)  ≤  margin }                       (together)

T_ascent and T_descent are each role alone (medians over ``repeats`` timed calls after
``warmup`` untimed ones). In the second part the ascent on c samples runs in a helper thread
(on the ascent device, with ``ascent_threads`` intra-op threads) while the calling thread runs
the descent — a *pair*, the pipelined step of AsyncSAM with τ ≥ 1 — and A_i, D_i are the two
roles' times inside pair i. Their ratio is taken per pair, so the machine's drifts (other
tenants, clock changes) cancel; the median over ``pair_repeats`` pairs is compared with the
margin. The ratio grows with c, so the largest c ∈ F that passes is found by bisection over F
(about log₂|F| + 1 measurements). ``contention=False`` skips the second part (b′ = max F).

``margin`` < 1 leaves headroom for the step-to-step jitter of both roles (an ascent that is
late makes the descent wait, since the main thread takes no direction older than
``max_staleness``), the snapshot copy and the hand-off. The default 0.5 is a conservative choice,
measured with ``asam-theory bench`` on a shared 2-core CPU machine, where one role's step time
varies by ±15 % from step to step.
- Margin 0.8, roles timed alone: b′ = 288–416 of b = 512; AsyncSAM/SGD 1.07, 1.08, 1.24; mean
  wait for the worker 0.31–0.42 ms per step in two of the three runs.
- This rule: b′ = 160–224; median AsyncSAM/SGD 1.06 over 15 runs (0.99–1.24, the machine's
  spread); mean wait 0.01 ms per step in 14 of the 15.
- b′ sweeps timed in the same rounds (64–384) stayed within a run's noise. Pooled over 8 runs
  (``bench --sweep-bprime 96``), b′ = 96 gave AsyncSAM/SGD 1.041 (median of the runs) against
  1.066 for the tuned b′ = 160–224 in the same rounds, lower in 7 of 8 runs: the busier the
  worker, the slower the descent beside it (shared caches and memory bandwidth; measured by
  ``benchmarks/core_interference.py``). So the margin sets that cost too, a few per cent here,
  against the size of the ascent batch; 0.5 keeps the larger batch. Across runs the machine's
  spread is larger than this: margin 0.25 (b′ = 64–96) gave 1.04–1.11 in four quiet runs on
  one day; on another, eight runs alternating with the default (``bench --margin 0.25`` and
  ``bench``) gave 1.021–1.058 (median 1.042; b′ = 32–96) against 1.028–1.078 (median 1.045;
  b′ = 160–224): pooled over their 120 rounds each, 1.039 [1.030, 1.058] and 1.038
  [1.023, 1.075]. The smaller margin narrowed the spread, not the median.
- What a smaller b′ costs in accuracy was not measurable on the ablation's recipe
  (:mod:`asam_theory.experiments.ablation`: digits with 20 % label noise, CNN-BN, b = 64; 20 paired
  seeds): AsyncSAM at b′ = b/2, b/4 and b/8 was within 1 pp of b′ = b (95 % intervals of
  ±1.2–1.9 pp).
- Timed together, the ascent at b′ = 224 already took 0.50–0.63 of the descent.

Each measured pair is also kept as the ratio of the pair's wall time to a solo descent timed just
before it (``pair_ratio``, for information: on such a machine it is too noisy to resolve a few
per cent).

If no candidate passes the first part (``fits=False``; AsyncSAM then waits for the worker, which
the measured staleness histogram shows), or none of F passes the second
(``fits_together=False``), the ascent cannot be hidden at any b′ and a smaller b′ only helps as
far as it is cheaper: the tuner returns the largest candidate (of all, resp. of F) whose ascent
alone costs at most ``1 + FLAT`` (10 %) more than the smallest one's. On a small model the
per-call overhead dominates, the cost is flat in b′, and this keeps b′ large instead of
returning the smallest candidate.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from asam_theory.torch._common import bn_frozen, move_batch
from asam_theory.torch._worker import AscentComputer
from asam_theory.validation import check_int


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
    #: the second part (None when not measured): per measured candidate the median A/D inside
    #: a pair and the median pair time over a solo descent; whether b′ passed it
    together_ratio: dict[int, float] = field(default_factory=dict)
    pair_ratio: dict[int, float] = field(default_factory=dict)
    fits_together: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ascent_time_s"] = {str(k): v for k, v in self.ascent_time_s.items()}
        d["pair_ratio"] = {str(k): v for k, v in self.pair_ratio.items()}
        d["together_ratio"] = {str(k): v for k, v in self.together_ratio.items()}
        return d


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device, clock: Callable[[], float]) -> float:
    """Seconds of one ``fn()`` call, ``device`` synchronised before the clock stops."""
    t0 = clock()
    fn()
    _sync(device)
    return clock() - t0


def _median_time(
    fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int,
    clock: Callable[[], float],
) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    return statistics.median(_timed(fn, device, clock) for _ in range(repeats))


@dataclass(frozen=True)
class PairMeasurement:
    """Medians over pairs: ascent/descent time inside a pair (``together``), pair time over the
    solo descent timed just before it (``ratio``), and each role's time inside the pair."""

    together: float
    ratio: float
    descent_s: float
    ascent_s: float


class PairTimer:
    """Times the pipelined step T_pair(c) against a solo descent (see the module docstring).

    One helper thread (intra-op threads set to ``ascent_threads``) runs the ascents; call
    :meth:`measure` for a candidate, :meth:`close` when done (also a context manager).
    """

    def __init__(
        self, descent_fn: Callable[[], Any], ascent_fn: Callable[[int], Any],
        descent_device: torch.device, ascent_device: torch.device,
        ascent_threads: int | None = None, clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._descent, self._ascent = descent_fn, ascent_fn
        self._ddev, self._adev = descent_device, ascent_device
        self._clock = clock
        threads = torch.get_num_threads() if ascent_threads is None else int(ascent_threads)
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="asam-tune",
            initializer=torch.set_num_threads, initargs=(threads,),
        )

    def pair(self, c: int) -> tuple[float, float, float]:
        """One descent with the ascent on ``c`` samples running beside it: wall seconds of the
        pair, of the descent and of the ascent (each timed in its own thread)."""
        t0 = self._clock()
        fut = self._pool.submit(_timed, lambda: self._ascent(c), self._adev, self._clock)
        t_desc = _timed(self._descent, self._ddev, self._clock)
        t_asc = fut.result()
        return self._clock() - t0, t_desc, t_asc

    def measure(self, c: int, repeats: int, warmup: int = 1) -> PairMeasurement:
        """``repeats`` pairs, each right after a solo descent (medians in the result)."""
        for _ in range(warmup):
            self.pair(c)
        together, ratios, descents, ascents = [], [], [], []
        for _ in range(repeats):
            solo = _timed(self._descent, self._ddev, self._clock)
            total, t_desc, t_asc = self.pair(c)
            together.append(t_asc / t_desc)
            ratios.append(total / solo)
            descents.append(t_desc)
            ascents.append(t_asc)
        med = statistics.median
        return PairMeasurement(med(together), med(ratios), med(descents), med(ascents))

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> PairTimer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: relative tolerance of "the same cost" in the fallback (see :func:`_largest_flat`)
FLAT = 0.1


def _largest_flat(cands: Sequence[int], times: dict[int, float]) -> int:
    """Fallback when no candidate passes: the largest measured candidate whose ascent alone costs
    at most ``1 + FLAT`` times the smallest one's. On a small model the per-call overhead
    dominates and the cost is flat in b′: shrinking b′ then saves no time, only accuracy."""
    base = times[cands[0]]
    return max(c for c in cands if c in times and times[c] <= (1.0 + FLAT) * base)


def largest_passing(
    fitting: Sequence[int], passes: Callable[[int], bool]
) -> int | None:
    """Bisection for the largest c in ascending ``fitting`` with ``passes(c)`` (assumed to hold
    up to some c and fail beyond); ``None`` if even the first fails."""
    lo, hi = -1, len(fitting)  # fitting[lo] passes (or none does), fitting[hi] fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if passes(fitting[mid]):
            lo = mid
        else:
            hi = mid
    return fitting[lo] if lo >= 0 else None


#: b′/b of the equal-resources rule: the smallest fraction the ablation measured harmless
EQUAL_RESOURCES_FRACTION = 8


def equal_resources_ascent_batch(batch_size: int) -> int:
    r"""b′ for the *equal-resources* setting: :math:`b' = \max(1, \lfloor b/8 \rfloor)`.

    There SGD and SAM get both cores while AsyncSAM splits them 1 + 1 (descent on one, ascent
    worker on the other), so AsyncSAM/SGD is at least the descent's one-core time over SGD's
    two-core time, whatever b′; what b′ still changes is the worker's pressure on the
    descent beside it (shared caches and memory bandwidth: b′ = 96 gave AsyncSAM/SGD 1.041
    against 1.066 at b′ = 160–224 in the same rounds, and the smaller margin narrowed the
    spread, above) and the risk of an ascent that is late.  The rule takes the smallest b′
    whose accuracy cost the ablation could not detect: b′ = b/2, b/4 and b/8 were each within
    1 pp of b′ = b (digits with 20 % label noise, CNN-BN, b = 64, 20 paired seeds, 95 %
    intervals of ±1.2–1.9 pp; above and :mod:`asam_theory.experiments.ablation`).  It needs
    no timing, so it is the same on every machine.  ``ValueError`` for ``batch_size`` < 1.
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    return max(1, batch_size // EQUAL_RESOURCES_FRACTION)


def default_candidates(batch_size: int) -> list[int]:
    """Candidate b′: the multiples b·k/16, k = 1..16 (deduplicated, ≥ 1)."""
    return sorted({max(1, (batch_size * k) // 16) for k in range(1, 17)})


def tune_ascent_batch(
    descent_fn: Callable[[], Any],
    ascent_fn: Callable[[int], Any],
    batch_size: int,
    candidates: Sequence[int] | None = None,
    margin: float = 0.5,
    warmup: int = 2,
    repeats: int = 5,
    descent_device: str | torch.device = "cpu",
    ascent_device: str | torch.device = "cpu",
    clock: Callable[[], float] = time.perf_counter,
    contention: bool = True,
    pair_repeats: int = 7,
    ascent_threads: int | None = None,
    measure_pair: Callable[[int], PairMeasurement] | None = None,
) -> AscentBatchTuning:
    """Pick b′ by measurement (rule in the module docstring).

    Args:
        descent_fn: one descent-device forward+backward at batch size ``batch_size``.
        ascent_fn: ``ascent_fn(b′)``: one ascent gradient (and normalisation) at b′.
        batch_size: b, recorded in the result.
        candidates: b′ values to try (default :func:`default_candidates`).
        margin: fraction of the descent time the ascent may take, in (0, 1].
        warmup, repeats: untimed and timed calls per solo measurement.
        clock: time source in seconds (``time.perf_counter``; replaceable for testing).
        contention: also time the roles together (second part of the rule).
        pair_repeats: pairs per candidate in the second part.
        ascent_threads: intra-op threads of the helper thread that runs the ascents in the
            second part (default: the caller's); use the AsyncSAM worker's setting.
        measure_pair: ``measure_pair(c)`` → :class:`PairMeasurement` (default: a
            :class:`PairTimer`; replaceable for testing).
    """
    if not 0.0 < float(margin) <= 1.0:
        raise ValueError(f"margin must be in (0, 1], got {margin!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if repeats < 1 or warmup < 0 or pair_repeats < 1:
        raise ValueError(f"repeats and pair_repeats must be >= 1 and warmup >= 0, got "
                         f"{repeats}, {pair_repeats}, {warmup}")
    cands = sorted(set(int(c) for c in (candidates or default_candidates(batch_size))))
    if not cands or cands[0] < 1:
        raise ValueError(f"candidates must be integers >= 1, got {candidates!r}")
    ddev, adev = torch.device(descent_device), torch.device(ascent_device)
    t_desc = _median_time(descent_fn, ddev, warmup, repeats, clock)
    times: dict[int, float] = {}

    def alone(c: int) -> float:
        if c not in times:
            times[c] = _median_time(lambda: ascent_fn(c), adev, warmup, repeats, clock)
        return times[c]

    fitting: list[int] = []
    for c in cands:
        if alone(c) > margin * t_desc:
            break  # ascent time grows with b′: larger candidates will not fit either
        fitting.append(c)
    fits = bool(fitting)
    if fits:
        chosen = fitting[-1]
    else:  # nothing hides: a smaller batch only costs accuracy where the cost is flat in b′
        for c in cands[1:]:
            if alone(c) > (1.0 + FLAT) * times[cands[0]]:
                break
        chosen = _largest_flat(cands, times)
    together: dict[int, float] = {}
    pair: dict[int, float] = {}
    fits_together: bool | None = None
    if fits and contention:
        timer = (PairTimer(descent_fn, ascent_fn, ddev, adev, ascent_threads, clock)
                 if measure_pair is None else contextlib.nullcontext())
        with timer:
            measure = measure_pair or (lambda c: timer.measure(c, pair_repeats))

            def passes(c: int) -> bool:
                m = measure(c)
                together[c], pair[c] = m.together, m.ratio
                return m.together <= margin

            best = largest_passing(fitting, passes)
        fits_together = best is not None
        chosen = best if best is not None else _largest_flat(fitting, times)
    return AscentBatchTuning(
        ascent_batch_size=chosen,
        batch_size=int(batch_size),
        fits=fits,
        margin=float(margin),
        descent_time_s=t_desc,
        ascent_time_s=times,
        descent_device=str(ddev),
        ascent_device=str(adev),
        repeats=int(repeats),
        together_ratio=together,
        pair_ratio=pair,
        fits_together=fits_together,
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
    margin: float = 0.5,
    contention: bool = True,
    ascent_threads: int | None = None,
) -> AscentBatchTuning:
    """Measure AsyncSAM's two roles on the user's model and pick b′ (used by ``AsyncSAM.tuned``).

    Descent: one forward+backward of ``ascent_loss`` at the current weights on a batch of b
    samples on the parameters' device (BatchNorm statistics untouched). Ascent: the normalised
    direction at a copy of the weights on b′ samples on ``ascent_device``, with the same replica
    computation as AsyncSAM's worker (``ascent_threads`` intra-op threads when the two are timed
    together). The batches are drawn once, in the calling thread (``draw`` need not be
    thread-safe). Neither role leaves gradients behind.
    """
    params = list(params)
    adev = torch.device(ascent_device)
    ddev = params[0].device
    computer = AscentComputer(ascent_loss, adev, model, params, adaptive)
    target: Any = model if model is not None else params
    descent_batch = move_batch(draw(batch_size), ddev)

    def descent_fn() -> None:
        if model is not None:
            with bn_frozen(model), torch.enable_grad():
                torch.autograd.grad(ascent_loss(target, descent_batch), params,
                                    allow_unused=True)
        else:
            leaves = [p.detach().requires_grad_(True) for p in params]
            with torch.enable_grad():
                torch.autograd.grad(ascent_loss(leaves, descent_batch), leaves,
                                    allow_unused=True)

    weights = [p.detach().to(adev, copy=True) for p in params]
    ascent_batches: dict[int, Any] = {}
    lock = threading.Lock()

    def ascent_fn(bp: int) -> None:
        with lock:  # drawn on the first (solo, calling-thread) call for each b′
            if bp not in ascent_batches:
                ascent_batches[bp] = move_batch(draw(bp), adev)
        computer.direction(weights, ascent_batches[bp])

    return tune_ascent_batch(
        descent_fn, ascent_fn, batch_size=batch_size, candidates=candidates, margin=margin,
        descent_device=ddev, ascent_device=adev, contention=contention,
        ascent_threads=ascent_threads,
    )
