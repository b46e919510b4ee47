"""Step-time benchmark: AsyncSAM vs SAM vs the base optimizer, interleaved in one run.

Workload: an MLP 64 → H → H → 10 (wide H so matrix products dominate Python overhead) trained
with cross-entropy on batches of b digits (drawn with replacement), SGD with momentum 0.9 as the
base optimizer of every method. On CPU every role gets one intra-op thread
(``torch.set_num_threads(1)``): SGD and SAM run on one core, AsyncSAM's main thread descends on
one core while its worker computes the ascent on the other. With CUDA, descent runs on the GPU
and the ascent on the CPU.

Protocol: b′ is chosen by :func:`tune_ascent_batch` (``ascent_batch_size="auto"``: the largest
candidate whose ascent takes at most ``margin`` times the descent, timed alone and timed while
both run; its measurements are in ``tuning``); every
method takes ``warmup`` untimed steps; then ``rounds`` rounds, each running ``steps`` steps of
every method back to back, in the order of round r's row of a Williams design
(:func:`asam_theory.design.balanced_order`): slow drifts in machine load hit all methods alike,
and every method follows every other equally often, so that what a block leaves behind (caches,
a two-thread block's OpenMP threads) does not always fall on the same successor. Per round,
time/step of each method and the ratios to SGD; reported: medians over rounds.  After
AsyncSAM's steps the benchmark pauses (untimed, one AsyncSAM step long) so that the ascent its
last step launched does not run into the next method's timing.

Precision: ``ratio_ci95`` gives each median ratio a distribution-free 95 % interval (the
sign-test interval of :func:`asam_theory.stats.median_interval`, rounds taken as independent).

Control: a second, identical SGD runs in every round; ``control.sgd_control_over_sgd`` (its
median ratio to SGD, ideally 1) shows how far a median strays by chance in this run — read
AsyncSAM/SGD against it.

b′ sweep: ``bprime_sweep`` adds one AsyncSAM per listed b′ to the same rounds (each with its
own model copy and worker) and reports ``bprime_sweep = {b′: {"asyncsam_over_sgd", ...}}`` —
the price in step time of a larger ascent batch, measured in one run (with the per-round ratios
and their interval, so that several runs can be pooled).

Backends (``backends``, both by default): AsyncSAM is timed with each worker backend in the
same rounds (``WorkerOptions(backend=...)``: a thread of this process, or a process of its
own), each with its own model copy and the same b′; ``backends`` holds each one's ratio to SGD
with its interval, per-round ratios and staleness, and ``backend`` names the faster, whose
ratio is ``asyncsam_over_sgd`` (its interval in ``ratio_ci95``).  The other AsyncSAM blocks —
``staleness_histogram``, the look-ahead, the b′ sweep and equal resources — use the thread
backend.

Look-ahead (``lookahead``, on by default): the threaded AsyncSAM whose worker reads the
descent batch τ steps ahead (:class:`asam_theory.torch.LookAhead`; same b′, τ and worker as
AsyncSAM, its own model copy) is timed in the same rounds, with the same per-round ratio to SGD:
``lookahead_over_sgd``, its interval in ``ratio_ci95``, its per-round ratios and quartiles, and
``lookahead`` (its step time, staleness, CPU share).

Equal resources (CPU descent): the default ratios give SGD and SAM one core while AsyncSAM uses
two (descent + ascent thread).  ``equal_resources`` also times SGD and SAM with ``2 * threads``
intra-op threads in the same rounds — the comparison a CPU-only user with two cores faces —
and reports ``equal_resources = {"asyncsam_over_sgd", "sam_over_sgd", ...}`` (with
``lookahead_over_sgd`` when the look-ahead is timed).  There AsyncSAM is also timed at the
equal-resources rule's b′ (:func:`asam_theory.torch.tuning.equal_resources_ascent_batch`:
b/8, the smallest ascent batch whose accuracy cost the ablation could not detect):
``asyncsam_rule_over_sgd`` with its interval, against the target :data:`EQUAL_RESOURCES_TARGET`
(reported, not judged).  ``split_floor_over_sgd`` (with ``split_floor_ci95``) is SGD on
``threads`` threads over SGD on ``2 * threads``: AsyncSAM's descent alone costs the former, so no
b′ brings a ``threads + threads`` split below it — the target is reachable only where SGD gains
less than that from the second core (default CPU workload, quiet 2-core machine,
2026-12-06: floor 1.86, AsyncSAM at b/8 1.90 [1.84, 1.96]; an earlier run 1.80 at b/8).

Allocator: by default the benchmark first fixes the C allocator's thresholds for the process
(:func:`~asam_theory.experiments.allocator.steady_malloc`), so that no method's steps pay for pages
the kernel hands back after a heap trim — which otherwise falls on whichever method runs at
that moment. ``minor_faults_per_step`` (per method, all threads of the process) shows it; with
``steady_allocator=False`` the C library's defaults stay.

Load awareness (:func:`load_check`): the comparison is void when other processes took the cores
the benchmark needs.  Two signals, both recorded: the 1-minute load average *before* the
benchmark started (other processes only) must not exceed ``cpu_count - 2 * threads +
LOAD_SLACK``; and every method's CPU share — process CPU seconds per wall second divided by the
threads it should keep busy (``threads`` for SGD/SAM and AsyncSAM's main thread, ``2 *
threads`` for the equal-resources SGD/SAM) — must reach ``MIN_CPU_SHARE``.  A method that got
less than 85 % of its cores was time-sliced with other work, and its step time measures that.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from asam_theory.design import balanced_order
from asam_theory.experiments.allocator import allocator_report, minor_faults, steady_malloc
from asam_theory.experiments.training import IndexSampler, classification_loss, load_digits_data
from asam_theory.stats import median_interval
from asam_theory.torch._common import bn_frozen
from asam_theory.torch._worker import AscentComputer
from asam_theory.torch.asyncsam import AsyncSAM, WorkerOptions
from asam_theory.torch.lookahead import LookAhead
from asam_theory.torch.sam import SAM
from asam_theory.torch.tuning import equal_resources_ascent_batch, tune_ascent_batch
from asam_theory.validation import check_int

#: a batch source of the timed steps (``b → batch``, e.g. an :class:`IndexSampler`) and the
#: loss they take of a model on a batch (default :func:`classification_loss`)
Sampler = Callable[[int], Any]
Loss = Callable[[nn.Module, Any], torch.Tensor]


def _mlp(hidden: int, seed: int, device: torch.device) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, 10),
    ).to(device)


def sgd_stepper(model: nn.Module, opt: torch.optim.Optimizer, sampler: Sampler,
                b: int, loss: Loss = classification_loss) -> Callable[[], None]:
    """One timed SGD step: a batch of ``b`` from ``sampler`` (any ``b → batch`` callable),
    forward, ``loss(model, batch)``, backward, update."""
    def step() -> None:
        opt.zero_grad()
        loss(model, sampler(b)).backward()
        opt.step()

    return step


def sam_stepper(model: nn.Module, opt: SAM, sampler: Sampler, b: int,
                loss: Loss = classification_loss) -> Callable[[], None]:
    """One timed SAM step (two passes on one batch, BatchNorm frozen in the second)."""
    def step() -> None:
        batch = sampler(b)
        opt.zero_grad()
        loss(model, batch).backward()
        opt.first_step(zero_grad=True)
        with bn_frozen(model):
            loss(model, batch).backward()
        opt.second_step(zero_grad=True)

    return step


def async_stepper(opt: AsyncSAM, model: nn.Module, sampler: Sampler, b: int,
                  loader: LookAhead | None = None, loss: Loss = classification_loss
                  ) -> Callable[[], None]:
    """One timed AsyncSAM step in the closure form, on a batch of ``b`` from ``sampler`` or,
    for the look-ahead variant, the next batch of ``loader``."""
    def step() -> None:
        batch = sampler(b) if loader is None else next(loader)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            out = loss(model, batch)
            out.backward()
            return out

        opt.step(closure)

    return step


def median_ci95(values: Sequence[float]) -> dict[str, float]:
    """The median's distribution-free 95 % interval (:func:`asam_theory.stats.median_interval`)
    as the results carry it: ``{"low", "high", "coverage"}``; here over rounds, in
    :mod:`asam_theory.experiments.bench_pool` also over runs."""
    r = median_interval(values, 0.95)
    return {"low": r["low"], "high": r["high"], "coverage": r["coverage"]}


def _ratios(per_round: dict[str, list[float]], name: str, base: str = "sgd") -> list[float]:
    """Per-round step time of method ``name`` over that of ``base``."""
    return [a / b for a, b in zip(per_round[name], per_round[base], strict=True)]


def _quartiles(values: list[float]) -> list[float]:
    """[Q1, median, Q3] (the median alone for fewer than two values)."""
    if len(values) < 2:
        return [values[0]] * 3
    q = statistics.quantiles(values, n=4, method="inclusive")
    return [q[0], statistics.median(values), q[2]]


#: AsyncSAM/SGD the equal-resources rule aims at (SGD and SAM on both cores, AsyncSAM 1 + 1)
EQUAL_RESOURCES_TARGET = 1.3
#: load-average slack (runnable processes) above the cores the benchmark leaves free
LOAD_SLACK = 0.5
#: least CPU share (CPU seconds / wall seconds / nominal threads) of every timed method
MIN_CPU_SHARE = 0.85


def _loadavg() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def load_check(load_start: float, cpu_per_wall: dict[str, float], nominal: dict[str, int],
               threads: int, cpu_count: int | None = None) -> dict[str, Any]:
    """Whether the machine was too busy for the ratios to mean what they say.

    ``load_start``: 1-minute load average before the benchmark; ``cpu_per_wall``: median process
    CPU seconds per wall second of each method; ``nominal``: the threads each should keep busy.
    Returns ``{"busy", "warning", "cpu_share", "thresholds"}`` (``warning`` is ``None`` when not
    busy); see the module docstring for the criteria.
    """
    cpu_count = cpu_count or os.cpu_count() or 1
    max_load = cpu_count - 2 * threads + LOAD_SLACK
    share = {n: cpu_per_wall[n] / nominal[n] for n in cpu_per_wall}
    reasons = []
    if load_start == load_start and load_start > max_load:  # NaN (no getloadavg): not judged
        reasons.append(f"load average {load_start:.2f} before the run exceeds {max_load:.2f} "
                       f"({cpu_count} CPUs, the benchmark needs {2 * threads})")
    low = {n: v for n, v in share.items() if v < MIN_CPU_SHARE}
    if low:
        reasons.append("CPU share below " + f"{MIN_CPU_SHARE:.2f}: " + ", ".join(
            f"{n} {v:.2f}" for n, v in sorted(low.items())))
    warning = None
    if reasons:
        warning = ("machine busy, the step-time ratios are not a valid comparison: "
                   + "; ".join(reasons))
    return {"busy": bool(reasons), "warning": warning, "cpu_share": share,
            "thresholds": {"max_load_average": max_load, "min_cpu_share": MIN_CPU_SHARE,
                           "cpu_count": cpu_count}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_bench(
    hidden: int | None = None,
    batch_size: int | None = None,
    rounds: int = 15,
    steps: int = 6,
    warmup: int = 4,
    device: str | None = None,
    ascent_device: str = "cpu",
    threads: int = 1,
    tau: int = 1,
    max_staleness: int | None = None,
    ascent_batch_size: int | str = "auto",
    margin: float = 0.5,
    contention: bool = True,
    seed: int = 0,
    equal_resources: bool = True,
    bprime_sweep: Sequence[int] = (),
    steady_allocator: bool = True,
    lookahead: bool = True,
    backends: Sequence[str] = ("thread", "process"),
) -> dict[str, Any]:
    """Run the interleaved benchmark and return its measurements (see module docstring).

    Defaults: H = 1024, b = 512 on CPU; H = 4096, b = 4096 with CUDA.  ``equal_resources``
    (CPU descent only) also times SGD and SAM with ``2 * threads`` intra-op threads.
    ``steady_allocator`` fixes the C allocator's thresholds for the whole process first
    (:func:`~asam_theory.experiments.allocator.steady_malloc`; it stays set after the call).
    ``lookahead`` also times the look-ahead AsyncSAM in the same rounds.
    """
    load_start = _loadavg()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if hidden is None:
        hidden = 4096 if dev.type == "cuda" else 1024
    if batch_size is None:
        batch_size = 4096 if dev.type == "cuda" else 512
    if rounds < 1 or steps < 1 or warmup < 0:
        raise ValueError("rounds and steps must be >= 1, warmup >= 0")
    sweep = [check_int("bprime_sweep entry", b, low=1) for b in bprime_sweep]
    allocator = steady_malloc() if steady_allocator else None
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        data = load_digits_data(seed=seed).to(dev)
        sampler = IndexSampler(data.x_train, data.y_train, seed)
        x_cpu, y_cpu = data.x_train.cpu(), data.y_train.cpu()
        ascent_sampler = IndexSampler(x_cpu, y_cpu, seed + 1)

        m_sgd, m_sam, m_async = (_mlp(hidden, seed, dev) for _ in range(3))
        kw = dict(lr=0.01, momentum=0.9)
        o_sgd = torch.optim.SGD(m_sgd.parameters(), **kw)
        o_sam = SAM(m_sam.parameters(), torch.optim.SGD, rho=0.05, **kw)
        candidates = sorted({max(1, batch_size * k // 16) for k in range(1, 17)}
                            | {c for c in (8, 16, 32, 64, 128, 256) if c < batch_size})
        tuning = None
        if ascent_batch_size == "auto":
            adev = torch.device(ascent_device)
            computer = AscentComputer(
                classification_loss, adev, m_async, list(m_async.parameters()), adaptive=False
            )
            weights = [p.detach().to(adev, copy=True) for p in m_async.parameters()]

            def descent_fn() -> None:
                # the descent device's gradient in an AsyncSAM step: forward+backward on b
                m_async.zero_grad()
                classification_loss(m_async, sampler(batch_size)).backward()

            def ascent_fn(bp: int) -> None:
                computer.direction(weights, ascent_sampler(bp))

            tuning = tune_ascent_batch(
                descent_fn, ascent_fn, batch_size=batch_size, candidates=candidates,
                margin=margin, descent_device=dev, ascent_device=adev, contention=contention,
                ascent_threads=threads,
            )
            m_async.zero_grad(set_to_none=True)
            bprime = tuning.ascent_batch_size
        else:
            bprime = int(ascent_batch_size)
        def make_async(model: nn.Module, bp: int, batches: Any,
                       backend: str = "thread") -> AsyncSAM:
            return AsyncSAM(
                model.parameters(), torch.optim.SGD, rho=0.05, tau=tau,
                ascent_batch_size=bp, ascent_loss=classification_loss,
                ascent_batches=batches, model=model,
                worker=WorkerOptions(device=ascent_device, max_staleness=max_staleness,
                                     num_threads=threads, backend=backend),
                **kw,
            )

        o_async = make_async(m_async, bprime, ascent_sampler)
        swept = {bp: _mlp(hidden, seed, dev) for bp in sweep}
        o_swept = {bp: make_async(m, bp, IndexSampler(x_cpu, y_cpu, seed + 2 + i))
                   for i, (bp, m) in enumerate(swept.items())}

        step_sgd = sgd_stepper(m_sgd, o_sgd, sampler, batch_size)
        m_ctl = _mlp(hidden, seed, dev)  # the A/A control: a second, identical SGD
        step_ctl = sgd_stepper(m_ctl, torch.optim.SGD(m_ctl.parameters(), **kw), sampler,
                               batch_size)
        step_sam = sam_stepper(m_sam, o_sam, sampler, batch_size)

        def async_stepper_here(opt: AsyncSAM, model: nn.Module,
                               loader: LookAhead | None = None) -> Callable[[], None]:
            return async_stepper(opt, model, sampler, batch_size, loader)

        methods: dict[str, Callable[[], None]] = {
            "sgd": step_sgd, "sam": step_sam, "asyncsam": async_stepper_here(o_async, m_async),
            "sgd_control": step_ctl,
        }
        # intra-op threads per method (AsyncSAM: its main thread; the worker has its own)
        nominal = {"sgd": threads, "sam": threads, "asyncsam": threads, "sgd_control": threads}
        asyncs = {"asyncsam": o_async}
        for backend in [b for b in backends if b != "thread"]:
            m_b = _mlp(hidden, seed, dev)
            n = f"asyncsam[{backend}]"
            asyncs[n] = make_async(m_b, bprime, IndexSampler(x_cpu, y_cpu, seed + 1), backend)
            methods[n] = async_stepper_here(asyncs[n], m_b)
            nominal[n] = threads
        for bp, opt in o_swept.items():
            methods[f"asyncsam@{bp}"] = async_stepper_here(opt, swept[bp])
            nominal[f"asyncsam@{bp}"] = threads
            asyncs[f"asyncsam@{bp}"] = opt
        if lookahead:  # the descent batches, read tau ahead by the worker
            m_la = _mlp(hidden, seed, dev)
            loader = LookAhead(iter(lambda: sampler(batch_size), None), tau=tau)
            o_la = make_async(m_la, bprime, loader)
            methods["lookahead"] = async_stepper_here(o_la, m_la, loader)
            nominal["lookahead"] = threads
            asyncs["lookahead"] = o_la
        equal = equal_resources and dev.type == "cpu"
        if equal:
            methods.update({"sgd_all_cores": step_sgd, "sam_all_cores": step_sam})
            nominal.update({"sgd_all_cores": 2 * threads, "sam_all_cores": 2 * threads})
            b_rule = equal_resources_ascent_batch(batch_size)
            m_rule = _mlp(hidden, seed, dev)
            o_rule = make_async(m_rule, b_rule, IndexSampler(x_cpu, y_cpu, seed + 2 + len(sweep)))
            methods["asyncsam_rule"] = async_stepper_here(o_rule, m_rule)
            nominal["asyncsam_rule"] = threads
            asyncs["asyncsam_rule"] = o_rule
        try:
            for n, fn in methods.items():
                torch.set_num_threads(nominal[n])
                for _ in range(warmup):
                    fn()
                _sync(dev)
            n_warm = {n: len(o.staleness_history) for n, o in asyncs.items()}
            names = list(methods)
            per_round: dict[str, list[float]] = {n: [] for n in names}
            cpu_per_wall: dict[str, list[float]] = {n: [] for n in names}
            faults: dict[str, int] = dict.fromkeys(names, 0)
            load_before = _loadavg()
            for r in range(rounds):
                for n in balanced_order(names, r):
                    torch.set_num_threads(nominal[n])
                    _sync(dev)
                    t0, c0, f0 = time.perf_counter(), time.process_time(), minor_faults()
                    for _ in range(steps):
                        methods[n]()
                    _sync(dev)
                    wall = time.perf_counter() - t0
                    faults[n] += minor_faults() - f0
                    per_round[n].append(wall / steps)
                    cpu_per_wall[n].append((time.process_time() - c0) / wall)
                    if n in asyncs:  # let the ascent launched by the last step finish
                        time.sleep(wall / steps)
            torch.set_num_threads(threads)
            staleness = Counter(o_async.staleness_history[n_warm["asyncsam"]:])
            waits = o_async.wait_history[n_warm["asyncsam"]:]
            main_copies = o_async.main_thread_snapshots
            sweep_block = {}
            for bp in sweep:
                n = f"asyncsam@{bp}"
                r = _ratios(per_round, n)
                sweep_block[str(bp)] = {
                    "asyncsam_over_sgd": statistics.median(r),
                    "ratio_quartiles": _quartiles(r),
                    "ratio_ci95": median_ci95(r),
                    "ratios_per_round": r,
                    "step_ms_median": 1e3 * statistics.median(per_round[n]),
                    "staleness_histogram": {str(k): v for k, v in sorted(Counter(
                        asyncs[n].staleness_history[n_warm[n]:]).items())},
                }
        finally:
            for o in asyncs.values():
                o.close()
        ratio_async, ratio_sam, ratio_ctl = (_ratios(per_round, n)
                                             for n in ("asyncsam", "sam", "sgd_control"))
        cpw = {n: statistics.median(v) for n, v in cpu_per_wall.items()}
        ratio_la = _ratios(per_round, "lookahead") if lookahead else None
        core = ("sgd", "sam", "asyncsam")
        if equal:
            eq_async = _ratios(per_round, "asyncsam", "sgd_all_cores")
            eq_sam = _ratios(per_round, "sam_all_cores", "sgd_all_cores")
            equal_block: dict[str, Any] | None = {
                "asyncsam_over_sgd": statistics.median(eq_async),
                "sam_over_sgd": statistics.median(eq_sam),
                "threads": {"sgd": 2 * threads, "sam": 2 * threads,
                            "asyncsam": f"{threads}+{threads}"},
                "step_ms_median": {
                    "sgd": 1e3 * statistics.median(per_round["sgd_all_cores"]),
                    "sam": 1e3 * statistics.median(per_round["sam_all_cores"]),
                    "asyncsam": 1e3 * statistics.median(per_round["asyncsam"])},
                "ratios_per_round": {"asyncsam_over_sgd": eq_async, "sam_over_sgd": eq_sam},
                "cpu_per_wall_median": {"sgd": cpw["sgd_all_cores"],
                                        "sam": cpw["sam_all_cores"]},
            }
            # the best any threads + threads split can reach: its descent alone, on `threads`
            # threads, costs SGD's step on `threads` threads (same rounds, per-round ratio)
            floor = _ratios(per_round, "sgd", "sgd_all_cores")
            equal_block.update(split_floor_over_sgd=statistics.median(floor),
                               split_floor_ci95=median_ci95(floor))
            equal_block["ratios_per_round"]["split_floor_over_sgd"] = floor
            eq_rule = _ratios(per_round, "asyncsam_rule", "sgd_all_cores")
            equal_block.update(
                ascent_batch_size_rule=b_rule, asyncsam_rule_over_sgd=statistics.median(eq_rule),
                asyncsam_rule_ci95=median_ci95(eq_rule), target=EQUAL_RESOURCES_TARGET)
            equal_block["ratios_per_round"]["asyncsam_rule_over_sgd"] = eq_rule
            equal_block["step_ms_median"]["asyncsam_rule"] = (
                1e3 * statistics.median(per_round["asyncsam_rule"]))
            equal_block["threads"]["asyncsam_rule"] = f"{threads}+{threads}"
            equal_block["staleness_histogram_rule"] = {str(k): v for k, v in sorted(Counter(
                o_rule.staleness_history[n_warm["asyncsam_rule"]:]).items())}
            if lookahead:
                eq_la = _ratios(per_round, "lookahead", "sgd_all_cores")
                equal_block["lookahead_over_sgd"] = statistics.median(eq_la)
                equal_block["threads"]["lookahead"] = f"{threads}+{threads}"
                equal_block["step_ms_median"]["lookahead"] = (
                    1e3 * statistics.median(per_round["lookahead"]))
                equal_block["ratios_per_round"]["lookahead_over_sgd"] = eq_la
        else:
            equal_block = None
        load = load_check(load_start, cpw if dev.type == "cpu" else {}, nominal, threads)
        la_block: dict[str, Any] = {}
        if lookahead:
            la_block = {
                "lookahead_over_sgd": statistics.median(ratio_la),
                "lookahead": {
                    "ascent_batch_size": bprime, "tau": tau,
                    "step_ms_median": 1e3 * statistics.median(per_round["lookahead"]),
                    "step_ms_per_round": [1e3 * x for x in per_round["lookahead"]],
                    "cpu_per_wall_median": cpw["lookahead"],
                    "staleness_histogram": {str(k): v for k, v in sorted(Counter(
                        o_la.staleness_history[n_warm["lookahead"]:]).items())},
                },
            }
        by_backend = {"thread": ratio_async, **{
            b: _ratios(per_round, f"asyncsam[{b}]") for b in backends if b != "thread"}}
        backends_block = {b: {
            "asyncsam_over_sgd": statistics.median(r), "ci95": median_ci95(r),
            "ratios_per_round": r,
            "step_ms_median": 1e3 * statistics.median(
                per_round["asyncsam" if b == "thread" else f"asyncsam[{b}]"]),
            "staleness_histogram": {str(k): v for k, v in sorted(Counter(
                asyncs["asyncsam" if b == "thread" else f"asyncsam[{b}]"].staleness_history[
                    n_warm["asyncsam" if b == "thread" else f"asyncsam[{b}]"]:]).items())},
        } for b, r in by_backend.items()}
        chosen = min(backends_block, key=lambda b: backends_block[b]["asyncsam_over_sgd"])
        out = {
            # the faster backend's ratio (both in ``backends``; the rest of the record — the
            # staleness, the look-ahead, the sweep, equal resources — is the thread backend's)
            "asyncsam_over_sgd": backends_block[chosen]["asyncsam_over_sgd"],
            "backend": chosen,
            "backends": backends_block,
            "sam_over_sgd": statistics.median(ratio_sam),
            "device": str(dev),
            "ascent_device": str(torch.device(ascent_device)),
            "device_name": (torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"),
            "threads_per_role": threads,
            "hidden": hidden,
            "batch_size": batch_size,
            "ascent_batch_size": bprime,
            "tau": tau,
            "max_staleness": o_async.max_staleness,
            "rounds": rounds,
            "steps_per_round": steps,
            "step_ms_median": {n: 1e3 * statistics.median(per_round[n]) for n in core},
            "step_ms_per_round": {n: [1e3 * x for x in per_round[n]] for n in core},
            "ratios_per_round": {"asyncsam_over_sgd": ratio_async, "sam_over_sgd": ratio_sam},
            "ratio_quartiles": {
                "asyncsam_over_sgd": _quartiles(ratio_async),
                "sam_over_sgd": _quartiles(ratio_sam),
            },
            # distribution-free 95 % intervals for the medians over rounds (sign-test interval,
            # rounds taken as independent; coverage below 0.95 for fewer than 6 rounds)
            "ratio_ci95": {n: median_ci95(r) for n, r in (
                ("asyncsam_over_sgd", ratio_async), ("sam_over_sgd", ratio_sam),
                ("sgd_control_over_sgd", ratio_ctl), ("lookahead_over_sgd", ratio_la))
                if r is not None},
            # A/A control: a second, identical SGD timed in the same rounds; its ratio to SGD
            # shows how far from 1 the medians stray by chance on this machine in this run
            "control": {
                "sgd_control_over_sgd": statistics.median(ratio_ctl),
                "ratio_quartiles": _quartiles(ratio_ctl),
                "ratios_per_round": ratio_ctl,
            },
            "staleness_histogram": {str(k): staleness[k] for k in sorted(staleness)},
            "mean_wait_ms": 1e3 * statistics.fmean(waits) if waits else 0.0,
            # snapshots the main thread copied itself because the worker had not started them
            # (the worker normally takes the copy, off the main thread)
            "snapshots_copied_by_main_thread": main_copies,
            # process CPU seconds per wall second while each method ran: ≈ 1 for SGD/SAM on one
            # core; AsyncSAM above 1 when its worker really ran on a second core (a value near 1
            # means other processes took that core and the ratio measures contention)
            "cpu_per_wall_median": {n: cpw[n] for n in core},
            # pages the process faulted in per step while each method ran (all threads): fresh
            # memory from the kernel, which the steady allocator keeps low
            "minor_faults_per_step": {n: faults[n] / (rounds * steps) for n in names},
            "allocator": allocator_report(steady_allocator, allocator),
            "loadavg_1min": {"start": load_start, "before": load_before, "after": _loadavg()},
            "tuning": tuning.to_dict() if tuning is not None else None,
            "equal_resources": equal_block,
            "bprime_sweep": sweep_block,
            "load_check": {k: v for k, v in load.items() if k != "warning"},
            "load_warning": load["warning"],
        }
        out.update(la_block)
        pick = by_backend[chosen]
        out["ratios_per_round"]["asyncsam_over_sgd"] = pick
        out["ratio_quartiles"]["asyncsam_over_sgd"] = _quartiles(pick)
        out["ratio_ci95"]["asyncsam_over_sgd"] = median_ci95(pick)
        if lookahead:
            out["ratios_per_round"]["lookahead_over_sgd"] = ratio_la
            out["ratio_quartiles"]["lookahead_over_sgd"] = _quartiles(ratio_la)
        return out
    finally:
        torch.set_num_threads(prev_threads)
