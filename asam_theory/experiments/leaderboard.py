r"""The real-data leaderboard: every method × data set × model × seeds, accuracy and cost.

Protocol, per cell (data set, model):

1. **Selection on validation.**  Each method's small learning-rate/ρ grid
   (:attr:`LeaderboardMethod.grid`) is run on ``selection_seeds`` (at least 3) seeds that are
   not evaluation seeds, and :func:`asam_theory.experiments.selection.choose` keeps a point:
   a point where any selection seed *collapsed* (:mod:`asam_theory.experiments.collapse`) is
   ruled out, then the best mean *validation* accuracy (test accuracy is never looked at; a
   one-point grid is not searched, and its row reports the evaluation runs' validation
   accuracy).  AsyncSAM's b′ is tuned once per cell (``ascent_batch_size="auto"``, measured
   timings) in its first run and then fixed, so its runs are reproducible.
2. **Evaluation.**  Every method with its chosen point on ``seeds`` seeds; for each seed the
   data set's validation split, label noise and initialisation are shared by all methods (paired
   comparisons), and the methods run in a rotating order.  Test accuracy per seed, its mean and
   Student-t 95 % interval; the paired difference to SGD with its t interval; curves of test
   accuracy against training seconds and against counted gradient evaluations.  A seed that
   collapsed is reported as such (``collapsed_per_seed`` with its reason, ``n_collapsed``, and
   the mean over the other seeds beside the mean over all): never averaged in silently.
   AsyncSAM-like methods also run at b′ = b/2 beside the tuned b′ (``*_half_batch`` fields),
   paired by seed.
3. **Timing, interleaved.**  ``timing_rounds`` rounds; in each, every method runs
   ``timing_steps`` timed steps (after ``timing_warmup`` untimed ones) in the order of round r's
   row of a Williams design (:func:`asam_theory.design.balanced_order`: every method follows
   every other equally often), in
   two settings: *idle second device* — one intra-op thread per role, so SGD and SAM use one
   core and AsyncSAM's (and SAMPa's) worker the otherwise idle second one (the AsyncSAM paper's
   setting) — and *equal resources* — SGD and SAM given both cores (two intra-op threads)
   while AsyncSAM keeps its 1 + 1 split, with b′ set by the equal-resources rule
   :func:`asam_theory.torch.tuning.equal_resources_ascent_batch` (b′ = b/8, the smallest ascent
   batch whose accuracy cost the ablation could not detect; the look-ahead variant too).  The
   accuracy at that b′ is measured on the evaluation seeds beside the tuned b′'s
   (``*_equal_resources`` fields; ``LeaderboardConfig.equal_resources_accuracy``).
   Medians and quartiles over rounds; the ratio to SGD per round.
4. **Crossover.**  AsyncSAM/SGD and SAM/SGD time per step against the MLP width on one data
   set (interleaved rounds as above, idle-device setting): on a small model the thread hand-off
   costs more than the ascent it hides; from some step cost on AsyncSAM runs at SGD's pace.

Gradient evaluations are counted (:class:`asam_theory.experiments.training.GradCounter`): one per
loss evaluation with a backward pass, on either device.  The methods are a plain list of
:class:`LeaderboardMethod` (one entry per method): a method added to
:func:`asam_theory.experiments.training.run_method` joins the board by one entry.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import os
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from asam_theory.design import balanced_order
from asam_theory.experiments.models import make_model
from asam_theory.experiments.selection import (
    MIN_SELECTION_SEEDS,
    Choice,
    PointRuns,
    choose,
    selection_seeds,
)
from asam_theory.experiments.training import RunResult, run_method, tensor_data
from asam_theory.stats import minimum_detectable_effect, paired_interval, t_interval
from asam_theory.torch.tuning import equal_resources_ascent_batch
from asam_theory.validation import check_int, check_real

SCHEMA = "asam-theory/leaderboard/1"
#: the first selection seed (evaluation seeds are 0, 1, …, below it)
SELECTION_BASE = 1000


@dataclass(frozen=True)
class LeaderboardMethod:
    """One method on the board: ``name`` as understood by :func:`run_method`, a display
    ``label``, the hyper-parameter ``grid`` (a tuple of dicts of :func:`run_method` keywords,
    e.g. ``{"lr": 0.1, "rho": 0.05}``) searched on validation, and ``fixed`` keywords (``tau``,
    ``ascent_batch_size``, ``lam``, …) used at every point."""

    name: str
    label: str
    grid: tuple[dict[str, float], ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    #: uses a worker on the second device (then it is not given two threads for equal resources)
    uses_second_device: bool = False
    #: dotted path of the torch optimizer class for a method :func:`run_method` does not know
    #: (a SAM-family optimizer; ``fixed`` then holds its own keyword arguments)
    optimizer: str | None = None
    #: its step contract: ``"closure"`` or ``"per_sample"`` (see :func:`run_method`)
    protocol: str = "closure"

    def run_kwargs(self) -> dict[str, Any]:
        """Keywords for :func:`run_method` beyond the grid point."""
        if self.optimizer is None:
            return dict(self.fixed)
        import importlib

        module, _, cls = self.optimizer.rpartition(".")
        return {"optimizer": getattr(importlib.import_module(module), cls),
                "optimizer_kwargs": dict(self.fixed), "protocol": self.protocol}


def _grid(lrs: Sequence[float], rhos: Sequence[float] | None) -> tuple[dict[str, float], ...]:
    if rhos is None:
        return tuple({"lr": lr} for lr in lrs)
    return tuple({"lr": lr, "rho": rho} for lr, rho in itertools.product(lrs, rhos))


def default_methods(lrs: Sequence[float] = (0.05, 0.1),
                    rhos: Sequence[float] = (0.05, 0.1)) -> list[LeaderboardMethod]:
    """SGD (grid over lr), SAM, AsyncSAM (τ = 1, b′ tuned), AsyncSAM with the look-ahead
    ascent batch (τ = 1, AsyncSAM's tuned b′, :class:`asam_theory.torch.LookAhead`) and
    SAMPa-0.2 (grid over lr × ρ); every method uses SGD with momentum 0.9 and weight decay 5e-4
    as base optimizer.

    Another SAM-family optimizer joins by one entry, e.g.
    ``LeaderboardMethod("looksam", "LookSAM", _grid(lrs, rhos), {"k": 5, "alpha": 0.7},
    optimizer="asam_theory.torch.looksam.LookSAM")``."""
    return [
        LeaderboardMethod("sgd", "SGD", _grid(lrs, None)),
        LeaderboardMethod("sam", "SAM", _grid(lrs, rhos)),
        LeaderboardMethod("asyncsam", "AsyncSAM", _grid(lrs, rhos),
                          {"tau": 1, "ascent_batch_size": "auto"}, uses_second_device=True),
        LeaderboardMethod("asyncsam-la", "AsyncSAM look-ahead", _grid(lrs, rhos),
                          {"tau": 1, "ascent_batch_size": "auto"}, uses_second_device=True),
        LeaderboardMethod("sampa", "SAMPa", _grid(lrs, rhos), {"lam": 0.2},
                          uses_second_device=True),
    ]


#: methods the leaderboard runs through their own branch of :func:`run_method` (or not at all:
#: USAM has no torch face here)
BUILT_IN = ("sgd", "sam", "usam", "asyncsam", "asyncsam-la", "sampa")


def catalogue_methods(lrs: Sequence[float] = (0.05, 0.1),
                      rhos: Sequence[float] = (0.05, 0.1)) -> list[LeaderboardMethod]:
    """One entry per method of the methods catalogue (``asam_theory.methods.catalog.METHODS``,
    where it exists) that has a torch optimizer and is not built in: its dotted class path, the
    lr × ρ grid, the catalogue's reference ``defaults`` that the torch class accepts, and the
    per-sample contract when the class takes a ``criterion`` (else the closure contract)."""
    import importlib
    import inspect

    try:
        catalog = importlib.import_module("asam_theory.methods.catalog")
    except ImportError:
        return []
    out = []
    for m in getattr(catalog, "METHODS", ()):
        if m.torch_optimizer is None or m.name in BUILT_IN:
            continue
        cls = m.torch_class()
        params = inspect.signature(cls).parameters
        fixed = {k: v for k, v in dict(m.defaults).items() if k in params}
        # run_method passes the model, the criterion and the training set's facts (AUSAM's
        # n_samples, epoch_length); a constructor that needs anything else is left out
        needs = [k for k, p in params.items() if p.default is inspect.Parameter.empty
                 and p.kind is inspect.Parameter.KEYWORD_ONLY and k not in fixed
                 and k not in ("model", "criterion", "n_samples", "epoch_length")]
        if needs:
            continue
        step = inspect.signature(cls.step).parameters
        out.append(LeaderboardMethod(
            m.name, getattr(m.rule, "label", m.name),
            _grid(lrs, rhos if "rho" in params else None), fixed,
            optimizer=m.torch_optimizer,
            protocol="per_sample" if "inputs" in step else "closure"))
    return out


@dataclass
class LeaderboardConfig:
    """What the leaderboard runs (see the module docstring for the protocol)."""

    datasets: tuple[str, ...] = ("mnist1d", "digits")
    models: tuple[str, ...] = ("mlp", "cnn")
    seeds: int = 5
    #: selection seeds per grid point (at least :data:`~asam_theory.experiments.selection.
    #: MIN_SELECTION_SEEDS`; seeds 1000, 1001, …, never evaluation seeds)
    selection_seeds: int = 3
    steps: dict[str, int] = field(default_factory=lambda: {"mnist1d": 2000, "digits": 600})
    batch_size: int = 64
    label_noise: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    record_points: int = 10
    fidelity_every: int = 10
    timing_rounds: int = 5
    timing_steps: int = 60
    timing_warmup: int = 10
    crossover_dataset: str = "mnist1d"
    crossover_widths: tuple[int, ...] = (64, 256, 1024, 2048)
    crossover_rounds: int = 3
    crossover_steps: int = 40
    confidence: float = 0.95
    #: model widths by kind (others: :data:`asam_theory.experiments.models.DEFAULT_WIDTH`).
    #: The MLP has 256 hidden units, as in the MNIST-1D repository's training script
    #: (greydanus/mnist1d, ``notebooks/train.py``: ``hidden_size`` 256): at 128 SGD on clean
    #: MNIST-1D reached 64.2 % [63.4, 65.0] (8 seeds), at 256 65.8 % (seeds 0–7, SD 0.6 pp),
    #: against the published 68 % (``asam_theory.claims.baselines``)
    width: dict[str, int] = field(default_factory=lambda: {"mlp": 256, "mlp-bn": 256})
    timing_settings: tuple[str, ...] = ("idle", "equal")
    #: the folder holding local copies of the data sets that are read, not generated
    #: (:data:`asam_theory.data.LOCAL_DATASETS`: CIFAR-10/100 in torchvision's format)
    data_root: str | None = None
    #: also evaluate AsyncSAM-like methods at the equal-resources rule's b′ (when timed there)
    equal_resources_accuracy: bool = True
    #: also evaluate AsyncSAM-like methods at b′ = b/2 (when the tuned b′ differs)
    half_batch_accuracy: bool = True
    #: further :class:`~asam_theory.torch.asyncsam.WorkerOptions` fields for every threaded
    #: AsyncSAM run of the board (e.g. its backend): one place for all of them
    worker: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        check_int("seeds", self.seeds, low=2, high=SELECTION_BASE)
        check_int("selection_seeds", self.selection_seeds, low=MIN_SELECTION_SEEDS)
        check_int("batch_size", self.batch_size, low=1)
        check_real("label_noise", self.label_noise, low=0.0, high=0.9, high_open=True)
        check_int("timing_rounds", self.timing_rounds, low=1)
        check_int("timing_steps", self.timing_steps, low=1)
        for d in self.datasets:
            check_int(f"steps[{d!r}]", self.steps.get(d, -1), low=1)


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    v = list(values)
    if len(v) < 2:
        return v[0], v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], statistics.median(v), q[2]


class _Threads:
    """Set torch's intra-op thread count for a block (restored on exit)."""

    def __init__(self, n: int) -> None:
        self.n, self.prev = n, torch.get_num_threads()

    def __enter__(self) -> None:
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.prev)


def _run(method: LeaderboardMethod, hp: dict[str, Any], data, ds, model: str, seed: int,
         cfg: LeaderboardConfig, steps: int, *, width: int | None = None, warmup: int = 0,
         record: bool = False, bprime: int | None = None, fidelity: bool = False,
         backend: str | None = None) -> RunResult:
    kw = method.run_kwargs()
    kw.update(hp)
    worker = dict(cfg.worker)
    if backend is not None and method.name.startswith("asyncsam"):
        worker["backend"] = backend
    if bprime is not None and "ascent_batch_size" in method.fixed and method.optimizer is None:
        kw["ascent_batch_size"] = bprime
    net = make_model(model, ds.input_shape, ds.n_classes,
                     width=width if width is not None else cfg.width.get(model), seed=seed)
    return run_method(
        method.name, data, model_kind=model, model=net, seed=seed, steps=steps,
        batch_size=cfg.batch_size, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
        warmup=warmup, record_every=max(1, steps // cfg.record_points) if record else 0,
        fidelity_every=cfg.fidelity_every if fidelity else 0, ascent_num_threads=1,
        worker=worker or None, **kw,
    )


@dataclass(frozen=True)
class RunTask:
    """One training run of a cell, self-contained so that a process pool can run it: the
    data set is loaded in the worker from (``dataset``, ``seed``, ``cfg.label_noise``)."""

    method: LeaderboardMethod
    hp: dict[str, Any]
    dataset: str
    model: str
    seed: int
    cfg: LeaderboardConfig
    steps: int
    record: bool = False
    bprime: int | None = None
    fidelity: bool = False


def data_root(cfg: LeaderboardConfig, dataset: str) -> str | None:
    """The root ``load_dataset`` reads ``dataset`` from: ``cfg.data_root`` for a local data
    set (CIFAR), ``None`` for the generated ones."""
    from asam_theory.data import LOCAL_DATASETS

    return cfg.data_root if dataset in LOCAL_DATASETS else None


def run_task(task: RunTask) -> RunResult:
    """Run ``task`` with one intra-op thread per role (the idle-device setting)."""
    from asam_theory.data import load_dataset

    ds = load_dataset(task.dataset, seed=task.seed, label_noise=task.cfg.label_noise,
                      root=data_root(task.cfg, task.dataset))
    with _Threads(1):
        return _run(task.method, task.hp, tensor_data(ds), ds, task.model, task.seed, task.cfg,
                    task.steps, record=task.record, bprime=task.bprime,
                    fidelity=task.fidelity)


def _map(tasks: Sequence[RunTask], executor: Executor | None,
         tick: Callable[[], None]) -> list[RunResult]:
    """:func:`run_task` over ``tasks``, results in order, on ``executor`` (``None``: here)."""
    results = map(run_task, tasks) if executor is None else executor.map(run_task, tasks)
    out = []
    for r in results:
        out.append(r)
        tick()
    return out


def tune_ascent_batch(method: LeaderboardMethod, dataset: str, model: str,
                      cfg: LeaderboardConfig, seed: int) -> tuple[int, str]:
    """The b′ and the worker backend ``AsyncSAM.tuned`` picks for ``method`` on this cell
    (measured timings, then one step on the data of ``seed``), run in this process while no
    other run of the board is (the pool, if any, is idle between cells' phases)."""
    r = run_task(RunTask(method, dict(method.grid[0]), dataset, model, seed, cfg, 1))
    return int(r.ascent_batch_size), str(r.backend)


def sgd_baseline(dataset: str, model: str, seed: int, cfg: LeaderboardConfig, lr: float,
                 steps: int | None = None) -> RunResult:
    """One SGD run on ``dataset`` exactly as the leaderboard trains it — ``cfg``'s batch size,
    momentum, weight decay, model width, label noise and (unless ``steps`` is given) steps,
    the data set's split for ``seed``, one intra-op thread — at learning rate ``lr``: the run
    behind the published-baseline check (``asam_theory.claims.baselines``)."""
    check_real("lr", lr, low=0.0, low_open=True)
    sgd = LeaderboardMethod("sgd", "SGD", ({"lr": lr},))
    return run_task(RunTask(sgd, {"lr": lr}, dataset, model, seed, cfg,
                            cfg.steps[dataset] if steps is None else steps))


def _tunes_bprime(m: LeaderboardMethod) -> bool:
    """Whether ``m`` takes the cell's AsyncSAM b′ (a built-in AsyncSAM-like method)."""
    return "ascent_batch_size" in m.fixed and m.optimizer is None


def _rotated(items: Sequence[Any], r: int) -> list[Any]:
    k = r % len(items)
    return list(items[k:]) + list(items[:k])


def time_methods(methods: Sequence[LeaderboardMethod], hps: dict[str, dict], data, ds,
                 model: str, cfg: LeaderboardConfig, *, bprime: int | None,
                 width: int | None = None, rounds: int | None = None,
                 steps: int | None = None, settings: Sequence[str] = ("idle", "equal"),
                 tick: Callable[[], None] | None = None,
                 backend: str | None = None) -> dict[str, Any]:
    """Interleaved time per step (ms) of every method in the ``settings`` (``"idle"``: one
    thread per role; ``"equal"``: SGD/SAM-like methods with two threads); per setting and
    method the per-round values, median, quartiles and the per-round ratio to SGD.  The
    AsyncSAM-like methods run with the worker ``backend`` (the one the cell's tuning chose;
    ``None``: ``cfg.worker``'s, else each run's own choice), recorded as ``"backend"``."""
    rounds = cfg.timing_rounds if rounds is None else rounds
    steps = cfg.timing_steps if steps is None else steps
    per: dict[str, dict[str, list[float]]] = {s: {m.name: [] for m in methods} for s in settings}
    faults: dict[str, dict[str, list[float]]] = {s: {m.name: [] for m in methods}
                                                 for s in settings}
    b_used: dict[str, int | None] = {}
    for r in range(rounds):
        for setting in settings:
            for m in balanced_order(list(methods), r):
                threads = 2 if setting == "equal" and not m.uses_second_device else 1
                bp = (equal_resources_ascent_batch(cfg.batch_size)
                      if setting == "equal" and _tunes_bprime(m) else bprime)
                with _Threads(threads):
                    res = _run(m, hps[m.name], data, ds, model, 10_000 + r, cfg,
                               steps + cfg.timing_warmup, width=width, warmup=cfg.timing_warmup,
                               bprime=bp, backend=backend)
                per[setting][m.name].append(1e3 * res.time_per_step_s)
                faults[setting][m.name].append(res.minor_faults_per_step)
                if res.ascent_batch_size is not None and setting != "equal":
                    b_used[m.name] = res.ascent_batch_size
                if tick is not None:
                    tick()
    out: dict[str, Any] = {"rounds": rounds, "steps": steps, "warmup": cfg.timing_warmup,
                           "backend": backend,
                           "ascent_batch_size": b_used,
                           "ascent_batch_size_equal_resources":
                               equal_resources_ascent_batch(cfg.batch_size)
                               if "equal" in settings else None}
    for setting, d in per.items():
        sgd = d.get("sgd")
        rows = {}
        for name, v in d.items():
            q1, med, q3 = _quartiles(v)
            row = {"ms_per_round": v, "median_ms": med, "iqr_ms": [q1, q3],
                   "minor_faults_per_step_median": statistics.median(faults[setting][name])}
            if sgd:
                ratios = [a / b for a, b in zip(v, sgd, strict=True)]
                rq1, rmed, rq3 = _quartiles(ratios)
                ci = t_interval(ratios, cfg.confidence) if len(ratios) > 1 else None
                row.update(ratio_to_sgd_per_round=ratios, ratio_to_sgd_median=rmed,
                           ratio_to_sgd_iqr=[rq1, rq3],
                           ratio_to_sgd_ci=[ci["low"], ci["high"]] if ci else [rmed, rmed])
            rows[name] = row
        out[setting] = rows
    return out


def _mean_curve(runs: Sequence[RunResult]) -> list[dict[str, float]]:
    n = min(len(r.curve) for r in runs)
    out = []
    for i in range(n):
        pts = [r.curve[i] for r in runs]
        out.append({k: float(np.mean([p[k] for p in pts])) for k in pts[0]})
    return out


def collapse_fields(rs: Sequence[RunResult]) -> dict[str, Any]:
    """Per seed, why each run collapsed (``None``: it did not), how many did, and the mean
    test accuracy over the runs that did not (``None`` if all did)."""
    ok = [r.test_acc for r in rs if r.collapsed is None]
    return {"collapsed_per_seed": [r.collapsed for r in rs],
            "n_collapsed": sum(r.collapsed is not None for r in rs),
            "test_acc_mean_not_collapsed": float(np.mean(ok)) if ok else None}


def _extra_bprime(rs: Sequence[RunResult], acc: Sequence[float],
                  sgd_acc: Sequence[float] | None, bprime: int, tag: str,
                  confidence: float) -> dict[str, Any]:
    """The fields of an AsyncSAM-like method's runs at a second b′ (``*_{tag}``): accuracy
    with its interval, collapses, the gain over SGD and the difference to the tuned b′, both
    paired by seed."""
    acc_x = [r.test_acc for r in rs]
    ci = t_interval(acc_x, confidence)
    out: dict[str, Any] = {
        f"ascent_batch_size_{tag}": bprime, f"test_acc_per_seed_{tag}": acc_x,
        f"test_acc_mean_{tag}": ci["mean"], f"test_acc_ci_{tag}": [ci["low"], ci["high"]],
        **{f"{k}_{tag}": v for k, v in collapse_fields(rs).items()}}
    if sgd_acc is not None:
        lo, hi = paired_interval(acc_x, sgd_acc, confidence=confidence)
        out[f"acc_gain_over_sgd_{tag}"] = float(np.mean(acc_x) - np.mean(sgd_acc))
        out[f"acc_gain_over_sgd_ci_{tag}"] = [lo, hi]
    lo, hi = paired_interval(acc_x, acc, confidence=confidence)
    out[f"acc_{tag}_minus_tuned"] = float(np.mean(acc_x) - np.mean(acc))
    out[f"acc_{tag}_minus_tuned_ci"] = [lo, hi]
    return out


def run_tasks(tasks: Sequence[RunTask], executor: Executor | None = None) -> list[RunResult]:
    """:func:`run_task` over ``tasks``, results in order, on ``executor`` (``None``: here)."""
    return _map(tasks, executor, lambda: None)


def select_methods(methods: Sequence[LeaderboardMethod], dataset: str, model: str,
                   cfg: LeaderboardConfig, *, steps: int, bprime: int | None = None,
                   executor: Executor | None = None,
                   tick: Callable[[], None] | None = None,
                   seeds: Sequence[int] | None = None) -> dict[str, Choice]:
    """Each searched method's grid point, chosen on the validation split over
    ``cfg.selection_seeds`` selection seeds (1000, 1001, …; or the given ``seeds``, at least
    :data:`~asam_theory.experiments.selection.MIN_SELECTION_SEEDS`, which the caller keeps
    apart from its evaluation seeds) by :func:`asam_theory.experiments.selection.choose` (a
    point with a collapsed seed is ruled out); methods with a one-point grid are not run.
    ``bprime`` fixes the AsyncSAM-like methods' b′.  Returns ``{name: Choice}`` for the
    searched methods."""
    tick = tick or (lambda: None)
    searched = [m for m in methods if len(m.grid) > 1]
    if not searched:
        return {}
    if seeds is None:
        seeds = selection_seeds(cfg.selection_seeds, range(cfg.seeds), SELECTION_BASE)
    tasks = [RunTask(m, dict(hp), dataset, model, sd, cfg, steps, bprime=bprime)
             for m in searched for hp in m.grid for sd in seeds]
    done = iter(_map(tasks, executor, tick))
    out: dict[str, Choice] = {}
    for m in searched:
        points = []
        for hp in m.grid:
            rs = [next(done) for _ in seeds]
            points.append(PointRuns(dict(hp), [float(r.val_acc) for r in rs],
                                    [r.collapsed for r in rs]))
        out[m.name] = choose(points, min_seeds=MIN_SELECTION_SEEDS)
    return out


def run_cell(dataset: str, model: str, methods: Sequence[LeaderboardMethod],
             cfg: LeaderboardConfig, tick: Callable[[], None] | None = None,
             executor: Executor | None = None) -> dict[str, Any]:
    """Selection, evaluation and timing of every method on one (data set, model) cell; returns
    ``{"results": [...], "selection": [...], "timing": {...}, "runs": [...]}``.  Training runs
    use one intra-op thread per role (the idle-device setting); ``executor`` (a process pool)
    runs the selection and evaluation runs side by side — the b′ tuning before them and the
    timing after them run in this process with the pool idle."""
    with _Threads(1):
        return _run_cell(dataset, model, methods, cfg, tick, executor)


def _run_cell(dataset: str, model: str, methods: Sequence[LeaderboardMethod],
              cfg: LeaderboardConfig, tick: Callable[[], None] | None,
              executor: Executor | None = None) -> dict[str, Any]:
    from asam_theory.data import load_dataset

    steps = cfg.steps[dataset]
    tick = tick or (lambda: None)
    # 0. AsyncSAM's b′ for every AsyncSAM-like method of the cell: tuned once by measured
    #    timings (before any other run) when it is "auto", else the given one
    asy = next((m for m in methods if m.name == "asyncsam" and _tunes_bprime(m)), None)
    bprime: int | None = None
    backend = cfg.worker.get("backend", "thread")
    if asy is not None:
        given = asy.fixed["ascent_batch_size"]
        if given == "auto":
            bprime, picked = tune_ascent_batch(asy, dataset, model, cfg, 1000)
            backend = cfg.worker.get("backend", picked)
        else:
            bprime = int(given)
    elif any(_tunes_bprime(m) for m in methods):
        # the look-ahead does not tune b′ itself (run_method); without AsyncSAM's: b/2
        bprime = max(1, cfg.batch_size // 2)
    # 1. selection on validation (seeds 1000 + k: neither evaluation nor timing seeds)
    choices = select_methods(methods, dataset, model, cfg, steps=steps, bprime=bprime,
                             executor=executor, tick=tick)
    chosen = {m.name: choices[m.name].hp if m.name in choices else dict(m.grid[0])
              for m in methods}
    selection: list[dict[str, Any]] = [
        {"dataset": dataset, "model": model, "method": name, **row}
        for name, c in choices.items() for row in c.rows]
    # 2. evaluation, methods in rotating order per seed
    runs: dict[str, list[RunResult]] = {m.name: [] for m in methods}
    b_eq = equal_resources_ascent_batch(cfg.batch_size)
    b_half = max(1, cfg.batch_size // 2)
    eq_acc = cfg.equal_resources_accuracy and "equal" in cfg.timing_settings
    runs_eq: dict[str, list[RunResult]] = {m.name: [] for m in methods
                                           if eq_acc and _tunes_bprime(m)}
    runs_half: dict[str, list[RunResult]] = {m.name: [] for m in methods
                                             if cfg.half_batch_accuracy and _tunes_bprime(m)
                                             and bprime != b_half}
    tasks, keys = [], []
    for s in range(cfg.seeds):
        for m in _rotated(list(methods), s):
            tasks.append(RunTask(m, chosen[m.name], dataset, model, s, cfg, steps, record=True,
                                 bprime=bprime, fidelity=True))
            keys.append(runs[m.name])
            # the same seed at the equal-resources rule's b′ and at b/2
            for extra, b_extra in ((runs_eq, b_eq), (runs_half, b_half)):
                if m.name in extra:
                    tasks.append(RunTask(m, chosen[m.name], dataset, model, s, cfg, steps,
                                         bprime=b_extra))
                    keys.append(extra[m.name])
    for dest, r in zip(keys, _map(tasks, executor, tick), strict=True):
        dest.append(r)
    for m in methods:
        if len(m.grid) == 1:
            vals = [r.val_acc for r in runs[m.name]]
            selection.append({"dataset": dataset, "model": model, "method": m.name,
                              **m.grid[0], "val_acc_mean": float(np.mean(vals)),
                              "val_acc_per_seed": vals, "single_point": True})
    # 3. interleaved timing, both settings
    ds = load_dataset(dataset, seed=1000, label_noise=cfg.label_noise,
                      root=data_root(cfg, dataset))
    timing = time_methods(methods, chosen, tensor_data(ds), ds, model, cfg, bprime=bprime,
                          settings=cfg.timing_settings, tick=tick, backend=backend)
    results = []
    sgd_acc = [r.test_acc for r in runs["sgd"]] if "sgd" in runs else None
    for m in methods:
        rs = runs[m.name]
        acc = [r.test_acc for r in rs]
        ci = t_interval(acc, cfg.confidence)
        idle, equal = timing["idle"][m.name], timing.get("equal", {}).get(m.name)
        hyper = {**{k: v for k, v in m.fixed.items()}, **chosen[m.name],
                 "momentum": cfg.momentum, "weight_decay": cfg.weight_decay,
                 "batch_size": cfg.batch_size, "steps": steps}
        if "ascent_batch_size" in m.fixed:
            hyper["ascent_batch_size"] = bprime
            hyper["ascent_batch_size_rule"] = m.fixed["ascent_batch_size"]
        entry: dict[str, Any] = {
            "method": m.name, "label": m.label, "dataset": dataset, "model": model,
            "test_acc_mean": ci["mean"], "test_acc_ci": [ci["low"], ci["high"]],
            "test_acc_per_seed": acc, **collapse_fields(rs),
            "selection_all_collapsed": choices[m.name].all_collapsed
            if m.name in choices else False,
            "val_acc_per_seed": [r.val_acc for r in rs],
            "train_acc_clean_mean": float(np.mean([r.train_acc_clean for r in rs])),
            "time_per_step_ms": idle["median_ms"], "time_per_step_iqr": idle["iqr_ms"],
            # pages the process faulted in per timed step (fresh memory from the kernel: part
            # of the step time that depends on the allocator's state, not on the method)
            "minor_faults_per_step": idle["minor_faults_per_step_median"],
            "time_ratio_to_sgd": idle.get("ratio_to_sgd_median"),
            "time_ratio_to_sgd_ci": idle.get("ratio_to_sgd_ci"),
            "time_per_step_ms_equal_resources": equal["median_ms"] if equal else None,
            "time_per_step_iqr_equal_resources": equal["iqr_ms"] if equal else None,
            "time_ratio_to_sgd_equal_resources": equal.get("ratio_to_sgd_median")
            if equal else None,
            "time_per_step_ms_training_runs": float(np.median([1e3 * r.time_per_step_s
                                                               for r in rs])),
            "grad_evals_per_step": float(np.mean([r.grad_evals / r.steps for r in rs])),
            "sample_gradients_per_step": float(np.mean(
                [r.grad_examples / (r.steps * cfg.batch_size) for r in rs])),
            "hyperparameters": hyper,
            "grid": [{k: v for k, v in row.items() if k not in ("dataset", "model", "method")}
                     for row in selection if row["method"] == m.name],
            "curve": _mean_curve(rs),
        }
        if sgd_acc is not None:
            lo, hi = paired_interval(acc, sgd_acc, confidence=cfg.confidence)
            entry["acc_gain_over_sgd"] = float(np.mean(acc) - np.mean(sgd_acc))
            entry["acc_gain_over_sgd_ci"] = [lo, hi]
            if m.name != "sgd":
                # the smallest gain these seeds detect (one-sided 5 %, power 80 %)
                diff = np.asarray(acc) - np.asarray(sgd_acc)
                entry["acc_gain_over_sgd_mde"] = minimum_detectable_effect(
                    float(diff.std(ddof=1)) if len(diff) > 1 else 0.0, len(diff))
        if m.name.startswith("asyncsam"):
            hist: Counter[int] = Counter()
            fid: list[float] = []
            for r in rs:
                hist.update(r.staleness)
                fid.extend(c for _, c in r.fidelity if c == c)
            entry["staleness_histogram"] = {str(k): hist[k] for k in sorted(hist)}
            entry["fidelity"] = ({"mean": float(np.mean(fid)), "min": float(np.min(fid)),
                                  "n": len(fid)} if fid else None)
            entry["ascent_batch_size"] = bprime
        if m.name in runs_half:
            entry.update(_extra_bprime(runs_half[m.name], acc, sgd_acc, b_half, "half_batch",
                                       cfg.confidence))
        if m.name in runs_eq:
            entry.update(_extra_bprime(runs_eq[m.name], acc, sgd_acc, b_eq, "equal_resources",
                                       cfg.confidence))
        results.append(entry)
    per_seed = [{"dataset": dataset, "model": model, "method": name, "seed": r.seed,
                 "test_acc": r.test_acc, "val_acc": r.val_acc,
                 "time_per_step_ms": 1e3 * r.time_per_step_s, "grad_evals": r.grad_evals,
                 "steps": r.steps, "ascent_batch_size": r.ascent_batch_size,
                 "collapsed": r.collapsed}
                for group in (runs, runs_half, runs_eq) for name, rs in group.items()
                for r in rs]
    return {"results": results, "selection": selection, "timing": timing, "runs": per_seed}


def crossover(cfg: LeaderboardConfig, methods: Sequence[LeaderboardMethod],
              model: str = "mlp", tick: Callable[[], None] | None = None) -> dict[str, Any]:
    """Time per step relative to SGD against the model width (idle-device setting, interleaved
    rounds); the methods' first grid points are used (time does not depend on lr or ρ)."""
    with _Threads(1):
        return _crossover(cfg, methods, model, tick)


def _crossover(cfg: LeaderboardConfig, methods: Sequence[LeaderboardMethod], model: str,
               tick: Callable[[], None] | None) -> dict[str, Any]:
    from asam_theory.data import load_dataset

    ds = load_dataset(cfg.crossover_dataset, seed=2000, label_noise=cfg.label_noise,
                      root=data_root(cfg, cfg.crossover_dataset))
    td = tensor_data(ds)
    hps = {m.name: dict(m.grid[0]) for m in methods}
    rows = []
    for w in cfg.crossover_widths:
        t = time_methods(methods, hps, td, ds, model, cfg, bprime=None, width=w,
                         rounds=cfg.crossover_rounds, steps=cfg.crossover_steps,
                         settings=("idle",), tick=tick)
        net = make_model(model, ds.input_shape, ds.n_classes, width=w)
        row = {"width": w, "parameters": int(sum(p.numel() for p in net.parameters())),
               "ascent_batch_size": t["ascent_batch_size"]}
        for name, v in t["idle"].items():
            row[f"{name}_ms"] = v["median_ms"]
            row[f"{name}_ratio_to_sgd"] = v.get("ratio_to_sgd_median")
            row[f"{name}_ratio_to_sgd_iqr"] = v.get("ratio_to_sgd_iqr")
        rows.append(row)
    cross = None
    for row in rows:
        r = row.get("asyncsam_ratio_to_sgd")
        if r is not None and r <= 1.10:
            cross = row["width"]
            break
    return {"dataset": cfg.crossover_dataset, "model": model, "rows": rows,
            "threshold": 1.10, "crossover_width": cross}


def cpu_model() -> str | None:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`;
    ``None`` where neither says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def run_leaderboard(cfg: LeaderboardConfig, methods: Sequence[LeaderboardMethod] | None = None,
                    progress: bool = True, with_crossover: bool = True,
                    executor: Executor | None = None, jobs: int = 1) -> dict[str, Any]:
    """Run every cell (and the crossover sweep); returns the ``results.json`` payload less its
    ``figures`` list (see :data:`SCHEMA`).  ``executor`` runs each cell's selection and
    evaluation runs side by side (``jobs`` is what it was given, recorded in the
    environment); tuning and timing stay in this process with the pool idle."""
    cfg.validate()
    methods = list(default_methods() if methods is None else methods)
    eq_runs = (cfg.seeds * sum(_tunes_bprime(m) for m in methods)
               if cfg.equal_resources_accuracy and "equal" in cfg.timing_settings else 0)
    # (an upper count: the b/2 runs are skipped where the tuned b′ is b/2)
    eq_runs += cfg.seeds * sum(_tunes_bprime(m) for m in methods) * cfg.half_batch_accuracy
    per_cell = (sum(len(m.grid) * cfg.selection_seeds for m in methods if len(m.grid) > 1)
                + cfg.seeds * len(methods) + eq_runs
                + cfg.timing_rounds * len(cfg.timing_settings) * len(methods))
    n_runs = len(cfg.datasets) * len(cfg.models) * per_cell
    if with_crossover:
        n_runs += len(cfg.crossover_widths) * cfg.crossover_rounds * min(3, len(methods))
    from tqdm.auto import tqdm

    bar = tqdm(total=n_runs, desc="leaderboard runs", disable=not progress, unit="run")
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    payload: dict[str, Any] = {"schema": SCHEMA, "results": [], "selection": [],
                               "timing": {}, "runs": []}
    try:
        for d in cfg.datasets:
            for model in cfg.models:
                bar.set_postfix_str(f"{d}/{model}")
                cell = run_cell(d, model, methods, cfg, tick=lambda: bar.update(1),
                                executor=executor)
                payload["results"] += cell["results"]
                payload["selection"] += cell["selection"]
                payload["runs"] += cell["runs"]
                payload["timing"][f"{d}/{model}"] = cell["timing"]
        if with_crossover:
            bar.set_postfix_str("crossover")
            cm = [m for m in methods if m.name in ("sgd", "sam", "asyncsam")]
            payload["crossover"] = crossover(cfg, cm, tick=lambda: bar.update(1))
    finally:
        bar.close()
    payload["config"] = {**asdict(cfg), "methods": [
        {"name": m.name, "label": m.label, "grid": list(m.grid), "fixed": m.fixed}
        for m in methods]}
    payload["environment"] = {
        "torch": torch.__version__, "cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
        "platform": platform.platform(), "python": platform.python_version(),
        "training_processes": jobs,
        "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "loadavg_1min": {"before": load0,
                         "after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
    }
    payload["wall_s"] = time.perf_counter() - t0
    return payload
