r"""Step time of SGD and the threaded AsyncSAM variants on the very model a claim trains, and
whether the machine's second core was idle while it was measured.

The real-data headline (``HEADLINE``) compares accuracy and time per step on *one* model: the
accuracy from the seed-exact deterministic runs of the training loop
(:mod:`asam_theory.experiments.ablation`), the time from the threaded optimizers through the
same loop (:func:`asam_theory.experiments.training.run_method`: ``"asyncsam"`` draws its ascent
batch independently, ``"asyncsam-la"`` reads the descent batch τ steps ahead through
:class:`asam_theory.torch.LookAhead`) on the model :func:`~asam_theory.experiments.ablation.
build_model` builds from the same :class:`~asam_theory.experiments.ablation.Recipe`, with the
same b′; ``worker`` carries the threaded worker's options (e.g. its backend).  Every role
gets one intra-op thread: SGD runs on one core, AsyncSAM's descent
on one core and its worker's ascent on the other (the AsyncSAM paper's idle-second-core
setting).  Rounds are interleaved in the order of a Williams design
(:func:`asam_theory.design.balanced_order`), as in ``asam-theory bench``.

**Load, read before and during timing.**  A step-time ratio measured while other processes
take the second core says nothing about the idle-core claim.  The 1-minute load average is a
poor signal for that: it decays over a minute, so a check that has just trained (or a report
that has just run other checks) counts its own past work as load.  Two direct signals are used
instead, both about *other* processes:

* before timing, :func:`runnable_others` samples the kernel's count of runnable tasks
  (``/proc/loadavg``, 4th field; Linux ``proc(5)``) while this process is idle, less the
  reading thread itself;
* during timing, :class:`CpuMeter` takes the machine's busy CPU time from ``/proc/stat`` less
  this process's own CPU time (all its threads and its child processes — AsyncSAM's worker
  process with ``backend="process"`` — :func:`os.times` and ``/proc/<pid>/stat``), per wall
  second — the cores other processes used while the methods were timed.

The second core counts as idle when both stay at or below :data:`OTHERS_MAX` (cores).  Where
``/proc`` is missing (not Linux) neither is judged and both are reported as ``None``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from asam_theory.design import balanced_order
from asam_theory.stats import median_interval
from asam_theory.validation import check_int

#: other processes' runnable tasks / busy cores tolerated for an "idle second core"
OTHERS_MAX = 0.5
#: methods :func:`time_recipe` can time, as :func:`run_method` names them
TIMED_METHODS = ("sgd", "asyncsam", "asyncsam-la")


def runnable_others(samples: int = 20, interval_s: float = 0.01) -> float | None:
    """Mean number of runnable tasks of *other* processes over ``samples`` reads of
    ``/proc/loadavg`` (its ``running/total`` field counts the reader, subtracted), taken while
    this process does nothing else; ``None`` without ``/proc``."""
    check_int("samples", samples, low=1)
    vals = []
    try:
        for _ in range(samples):
            with open("/proc/loadavg") as fh:
                vals.append(int(fh.read().split()[3].split("/")[0]) - 1)
            time.sleep(interval_s)
    except (OSError, ValueError, IndexError):
        return None
    return float(statistics.fmean(vals))


def _machine_busy_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot (``/proc/stat``'s ``cpu`` line: user,
    nice, system, irq, softirq, steal)."""
    try:
        with open("/proc/stat") as fh:
            f = fh.readline().split()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    if not f or f[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f[1:9])
    return (user + nice + system + irq + softirq + steal) / ticks


def _own_cpu_s() -> float:
    """CPU seconds of this process and its children: the reaped ones (:func:`os.times`), the
    live ones (``/proc/<pid>/stat``) and this process's forkserver with the workers it forked
    and reaped — AsyncSAM's worker process is part of the measured method, not another
    process's load."""
    t = os.times()
    return (t.user + t.system + t.children_user + t.children_system + _live_children_cpu_s()
            + _forkserver_cpu_s())


def _proc_cpu_s(pid: int, reaped: bool = False) -> float:
    """utime + stime of ``pid`` (and, with ``reaped``, cutime + cstime: its children it waited
    for) from ``/proc/<pid>/stat``; 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = sum(int(x) for x in fields[11:15 if reaped else 13])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):  # gone meanwhile, or no /proc
        return 0.0


def _forkserver_cpu_s() -> float:
    """CPU seconds of this process's forkserver (where AsyncSAM's process backend starts its
    workers) and of the workers it reaped; 0 when there is none."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    return 0.0 if pid is None else _proc_cpu_s(pid, reaped=True)


def _live_children_cpu_s() -> float:
    import multiprocessing as mp

    return sum(_proc_cpu_s(child.pid) for child in mp.active_children())


class CpuMeter:
    """Cores used by other processes during a ``with`` block: (machine busy CPU seconds − this
    process's CPU seconds) / wall seconds; ``others`` is ``None`` without ``/proc/stat``.
    (Both clocks tick at 1/``SC_CLK_TCK``, so a block should last at least a second.)"""

    others: float | None = None
    wall_s: float = 0.0

    def __enter__(self) -> CpuMeter:
        self._m0, self._o0, self._t0 = _machine_busy_s(), _own_cpu_s(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        m1, o1 = _machine_busy_s(), _own_cpu_s()
        self.wall_s = time.perf_counter() - self._t0
        if m1 is None or self._m0 is None or self.wall_s <= 0:
            self.others = None
        else:
            self.others = max(0.0, (m1 - self._m0) - (o1 - self._o0)) / self.wall_s


def time_recipe(recipe: Any, methods: Sequence[str], ascent_batch_size: int, *, rounds: int,
                steps: int, warmup: int, tau: int = 1, seed: int = 0,
                worker: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Interleaved time per step of ``methods`` (names of :data:`TIMED_METHODS`, ``"sgd"``
    first) on ``recipe``'s model and data, with b′ = ``ascent_batch_size`` and staleness
    ``tau``; one intra-op thread per role.  Returns ``{"ms_per_round": {method: [...]},
    "ratio_per_round": {method: [...]}`` (over SGD, per round), ``"ratio_median"``,
    ``"ratio_interval"`` (:func:`asam_theory.stats.median_interval`), ``"others_before"``
    (:func:`runnable_others`), ``"others_during"`` (:class:`CpuMeter`), ``"idle"`` (both at
    most :data:`OTHERS_MAX`; ``None`` when not measurable), ``"rounds"``, ``"steps"``,
    ``"warmup"``, ``"ascent_batch_size"``}``."""
    from asam_theory.experiments.ablation import build_model, load_data
    from asam_theory.experiments.training import run_method

    methods = list(methods)
    if not methods or methods[0] != "sgd" or any(m not in TIMED_METHODS for m in methods):
        raise ValueError(f"methods must start with 'sgd' and name only {TIMED_METHODS}, got "
                         f"{methods!r}")
    rounds = check_int("rounds", rounds, low=1)
    steps = check_int("steps", steps, low=1)
    warmup = check_int("warmup", warmup, low=0)
    data = load_data(recipe, 10_000 + seed)
    kw = dict(batch_size=recipe.batch_size, lr=recipe.lr, momentum=recipe.momentum,
              weight_decay=recipe.weight_decay, rho=recipe.rho, tau=tau,
              ascent_num_threads=1, steps=steps + warmup, warmup=warmup,
              worker=dict(worker or {}) or None)
    others_before = runnable_others()
    ms: dict[str, list[float]] = {m: [] for m in methods}
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with CpuMeter() as meter:
            for r in range(rounds):
                for m in balanced_order(methods, r):
                    res = run_method(m, data, model_kind=recipe.model_kind,
                                     model=build_model(recipe, 10_000 + seed + r),
                                     seed=10_000 + seed + r,
                                     ascent_batch_size=None if m == "sgd" else ascent_batch_size,
                                     **kw)
                    ms[m].append(1e3 * res.time_per_step_s)
    finally:
        torch.set_num_threads(prev)
    ratios = {m: [a / b for a, b in zip(ms[m], ms["sgd"], strict=True)] for m in methods[1:]}
    checks = [v for v in (others_before, meter.others) if v is not None]
    idle = None if not checks else all(v <= OTHERS_MAX for v in checks)
    return {"ms_per_round": ms, "ratio_per_round": ratios,
            "ratio_median": {m: statistics.median(v) for m, v in ratios.items()},
            "ratio_interval": {m: median_interval(v, 0.95) for m, v in ratios.items()},
            "others_before": others_before, "others_during": meter.others, "idle": idle,
            "others_max": OTHERS_MAX, "rounds": rounds, "steps": steps, "warmup": warmup,
            "ascent_batch_size": int(ascent_batch_size), "tau": tau,
            "cpu_count": os.cpu_count()}


def choose_backend_for_recipe(recipe: Any, method: str, ascent_batch_size: int, *,
                              rounds: int, steps: int, warmup: int, tau: int = 1,
                              seed: int = 0, worker: Mapping[str, Any] | None = None) -> Any:
    """The worker backend (thread or process) with the smaller median step time of ``method``
    on ``recipe``'s model: a pilot of ``rounds`` rounds, each timing one run per backend in
    alternating order (:func:`asam_theory.torch.backend_choice.choose_backend`'s rule: ties to
    the thread), on seeds of its own (``seed + 20_000 + r``), before the timing that judges.
    Returns the :class:`~asam_theory.torch.backend_choice.BackendChoice`."""
    from asam_theory.experiments.ablation import build_model, load_data
    from asam_theory.experiments.training import run_method
    from asam_theory.torch.backend_choice import BACKENDS, BackendChoice

    if method not in TIMED_METHODS[1:]:
        raise ValueError(f"method must be one of {TIMED_METHODS[1:]}, got {method!r}")
    data = load_data(recipe, 10_000 + seed)
    per: dict[str, list[float]] = {b: [] for b in BACKENDS}
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for r in range(check_int("rounds", rounds, low=1)):
            for b in BACKENDS if r % 2 == 0 else BACKENDS[::-1]:
                res = run_method(method, data, model_kind=recipe.model_kind,
                                 model=build_model(recipe, 30_000 + seed + r),
                                 seed=30_000 + seed + r, batch_size=recipe.batch_size,
                                 lr=recipe.lr, momentum=recipe.momentum,
                                 weight_decay=recipe.weight_decay, rho=recipe.rho, tau=tau,
                                 ascent_batch_size=ascent_batch_size, ascent_num_threads=1,
                                 steps=steps + warmup, warmup=warmup,
                                 worker={**dict(worker or {}), "backend": b})
                per[b].append(res.time_per_step_s)
    finally:
        torch.set_num_threads(prev)
    med = {b: statistics.median(v) for b, v in per.items()}
    best = min(BACKENDS, key=lambda b: (med[b], BACKENDS.index(b)))
    return BackendChoice(best, med, per, {}, rounds, steps)

