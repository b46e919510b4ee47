r"""Where the time of a threaded AsyncSAM step goes (CPU, one intra-op thread per role).

Workload: the ``asam-theory bench`` MLP (64 → H → H → 10, cross-entropy on digits, SGD with
momentum 0.9), b = 512 descent samples, b′ ascent samples (default b/4) in the worker thread.

Measured, interleaved over ``rounds`` rounds of ``steps`` steps (medians over rounds, ms/step):

* ``sgd``: zero_grad + forward/backward on b + SGD step (one thread);
* ``sgd+bg``: the same while a background thread computes ascent directions on b′ in a loop
  (what AsyncSAM's worker does): the slowdown over ``sgd`` is interference between the two
  threads (shared caches and memory bandwidth, the GIL for their Python parts), not AsyncSAM code;
* ``asyncsam``: one AsyncSAM step, split into its sections on the main thread by wrapping the
  optimizer's own methods — publish (hand w_t to the worker, which copies it itself on the
  CPU), acquire (waiting for the worker), perturb (w_t + ρu into the second buffer), closure
  (forward/backward at w_t + ρu), seal (the snapshot copy, when the worker had not taken it),
  base step, and the rest (bookkeeping); plus the worker's compute time per direction and the
  number of snapshots the main thread had to copy;
* ``bg_alone``: the background ascent alone (one direction on b′);
* ``sgd+bgproc`` (``--process``): SGD beside the same ascent loop in a separate process — the
  hardware interference without the GIL.

Every section is timed in wall time and in the main thread's CPU time (``... cpu``): wall − CPU
is blocking (GIL, locks, cores taken by other processes); CPU time above SGD's for the same
forward/backward is interference (caches, memory bandwidth).

Also a cProfile of the main thread over the AsyncSAM steps (top functions by own time) with
``--cprofile``.

The script first fixes the C allocator's thresholds for the process, as ``asam-theory bench``
does (:func:`~asam_theory.experiments.allocator.steady_malloc`; ``--default-allocator`` keeps the C
library's defaults), so that its sections are timed under the bench's conditions.

Run:  python benchmarks/profile_asyncsam_step.py [--hidden 1024] [--batch 512] [--bprime 128]
      [--rounds 7] [--steps 8] [--tau 1] [--cprofile] [--process] [--json]
      [--default-allocator]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing as mp
import pstats
import statistics
import threading
import time
from collections import defaultdict
from typing import Any

import torch
from torch import nn

from asam_theory.design import balanced_order
from asam_theory.experiments.allocator import allocator_report, steady_malloc
from asam_theory.experiments.training import IndexSampler, classification_loss, load_digits_data
from asam_theory.torch import AsyncSAM, WorkerOptions
from asam_theory.torch._worker import AscentComputer


def mlp(hidden: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 10))


class Background:
    """A thread computing ascent directions on b′ in a loop (AsyncSAM's worker, minus the
    hand-off), started and stopped around a measurement."""

    def __init__(self, model: nn.Module, sampler: IndexSampler, bprime: int) -> None:
        self.computer = AscentComputer(classification_loss, torch.device("cpu"), model,
                                       list(model.parameters()), adaptive=False)
        self.weights = [p.detach().clone() for p in model.parameters()]
        self.sampler, self.bprime = sampler, bprime
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.count = 0

    def one(self) -> None:
        self.computer.direction(self.weights, self.sampler(self.bprime))

    def _loop(self) -> None:
        torch.set_num_threads(1)
        while not self.stop.is_set():
            self.one()
            self.count += 1

    def __enter__(self) -> Background:
        self.stop.clear()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join()


def _ascent_process(hidden: int, bprime: int, ready: Any, stop: Any) -> None:
    """Target of the background *process*: the same ascent loop as :class:`Background`, in its
    own interpreter (no shared GIL)."""
    torch.set_num_threads(1)
    data = load_digits_data(seed=0)
    model = mlp(hidden, seed=1)
    computer = AscentComputer(classification_loss, torch.device("cpu"), model,
                              list(model.parameters()), adaptive=False)
    weights = [p.detach().clone() for p in model.parameters()]
    sampler = IndexSampler(data.x_train, data.y_train, 3)
    computer.direction(weights, sampler(bprime))
    ready.set()
    while not stop.is_set():
        computer.direction(weights, sampler(bprime))


class BackgroundProcess:
    """:class:`Background` in a spawned process: separates interference through the hardware
    (caches, memory bandwidth: present here too) from the GIL (absent here)."""

    def __init__(self, hidden: int, bprime: int) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.stop = ctx.Event(), ctx.Event()
        self.proc = ctx.Process(target=_ascent_process, args=(hidden, bprime, self.ready,
                                                              self.stop), daemon=True)
        self.proc.start()
        if not self.ready.wait(timeout=300):
            raise RuntimeError("background process did not start")
        self.stop.set()  # idle between measurements: restarted by __enter__
        self.proc.join()
        self.hidden, self.bprime = hidden, bprime

    def __enter__(self) -> BackgroundProcess:
        ctx = mp.get_context("spawn")
        self.ready, self.stop = ctx.Event(), ctx.Event()
        self.proc = ctx.Process(target=_ascent_process, args=(self.hidden, self.bprime,
                                                              self.ready, self.stop), daemon=True)
        self.proc.start()
        self.ready.wait(timeout=300)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.proc.join(timeout=60)


def timed(sections: dict[str, float], name: str, fn: Any) -> Any:
    """Wrap ``fn``: add its wall time to ``sections[name]`` and the calling thread's CPU time to
    ``sections[name + " cpu"]``. Wall − CPU is time the thread was blocked (waiting for the GIL,
    a lock, or a core taken by another process); CPU time above the undisturbed run's is work
    slowed by the other thread (shared caches, memory bandwidth)."""
    def wrapper(*a: Any, **k: Any) -> Any:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return fn(*a, **k)
        finally:
            sections[name] += time.perf_counter() - t0
            sections[name + " cpu"] += time.thread_time() - c0

    return wrapper


class Instrumented:
    """An AsyncSAM (one backend) whose main-thread sections are timed (wall and thread CPU)."""

    def __init__(self, backend: str, hidden: int, bprime: int, tau: int,
                 sampler: IndexSampler, asampler: IndexSampler) -> None:
        self.backend = backend
        self.model = mlp(hidden)
        self.opt = AsyncSAM(self.model.parameters(), torch.optim.SGD, rho=0.05, tau=tau,
                            lr=0.01, momentum=0.9, ascent_loss=classification_loss,
                            ascent_batches=asampler, ascent_batch_size=bprime, model=self.model,
                            worker=WorkerOptions(num_threads=1, backend=backend))
        self.sec: dict[str, float] = defaultdict(float)
        sec, opt = self.sec, self.opt
        src = opt._directions
        src.submit = timed(sec, "publish", src.submit)  # type: ignore[method-assign]
        src.acquire = timed(sec, "acquire", src.acquire)  # type: ignore[method-assign]
        src.seal = timed(sec, "seal", src.seal)  # type: ignore[method-assign]
        opt._perturb = timed(sec, "perturb", opt._perturb)  # type: ignore[method-assign]
        opt.base_optimizer.step = timed(sec, "base_step",  # type: ignore[method-assign]
                                        opt.base_optimizer.step)
        self.fwd_bwd = timed(sec, "closure", fwd_bwd)
        self.sampler = sampler
        self.split: dict[str, list[float]] = defaultdict(list)

    def step(self, batch: int) -> None:
        b = self.sampler(batch)

        def closure() -> torch.Tensor:
            self.opt.zero_grad()
            return self.fwd_bwd(self.model, b)

        timed(self.sec, "step", self.opt.step)(closure)


def fwd_bwd(model: nn.Module, b: Any) -> torch.Tensor:
    loss = classification_loss(model, b)
    loss.backward()
    return loss


def split_of(parts: dict[str, float], sgd: dict[str, float]) -> dict[str, float]:
    """Where an AsyncSAM step's extra time over SGD's goes (ms; section medians of the same
    rounds): ``blocked`` — wall minus CPU time of the main thread beyond SGD's (waiting for the
    GIL, a lock or the worker); ``hand-off`` — the CPU time of publishing, acquiring and
    sealing; ``extra calls`` — the perturbation and the step's other bookkeeping (CPU);
    ``slowed work`` — the CPU time of the forward/backward and the base step beyond SGD's own
    (interference: the GIL's hand-offs, caches, memory bandwidth)."""
    blocked = (parts["step"] - parts["step cpu"]) - (
        (sgd["fwd_bwd"] + sgd["base_step"]) - (sgd["fwd_bwd cpu"] + sgd["base_step cpu"]))
    handoff = parts["publish cpu"] + parts["acquire cpu"] + parts["seal cpu"]
    known = sum(parts[k + " cpu"] for k in ("publish", "acquire", "perturb", "closure", "seal",
                                            "base_step"))
    extra = parts["perturb cpu"] + (parts["step cpu"] - known)
    slowed = (parts["closure cpu"] + parts["base_step cpu"]) - (sgd["fwd_bwd cpu"]
                                                               + sgd["base_step cpu"])
    return {"blocked": blocked, "hand-off": handoff, "extra calls": extra,
            "slowed work": slowed, "total over SGD": parts["step"] - (sgd["fwd_bwd"]
                                                                      + sgd["base_step"])}


def profile(hidden: int = 1024, batch: int = 512, bprime: int = 128, rounds: int = 7,
            steps: int = 8, tau: int = 1, use_cprofile: bool = False,
            with_process: bool = False, backends: tuple[str, ...] = ("thread",)
            ) -> dict[str, Any]:
    torch.set_num_threads(1)
    data = load_digits_data(seed=0)
    sampler = IndexSampler(data.x_train, data.y_train, 0)
    m_sgd, m_bg = mlp(hidden), mlp(hidden)
    sgd = torch.optim.SGD(m_sgd.parameters(), lr=0.01, momentum=0.9)
    runs = {b: Instrumented(b, hidden, bprime, tau, sampler,
                            IndexSampler(data.x_train, data.y_train, 1)) for b in backends}
    names = {b: "asyncsam" if b == "thread" else f"asyncsam[{b}]" for b in backends}
    bg = Background(m_bg, IndexSampler(data.x_train, data.y_train, 2), bprime)

    sgd_sec: dict[str, float] = defaultdict(float)

    sgd_fwd_bwd = timed(sgd_sec, "fwd_bwd", fwd_bwd)
    sgd_base = timed(sgd_sec, "base_step", sgd.step)

    def step_sgd() -> None:
        sgd.zero_grad()
        sgd_fwd_bwd(m_sgd, sampler(batch))
        sgd_base()

    prof = cProfile.Profile() if use_cprofile else None
    per: dict[str, list[float]] = defaultdict(list)
    sgd_split: dict[str, dict[str, list[float]]] = {"sgd": defaultdict(list),
                                                    "sgd+bg": defaultdict(list),
                                                    "sgd+bgproc": defaultdict(list)}
    bgproc = BackgroundProcess(hidden, bprime) if with_process else None
    try:
        for _ in range(3):
            step_sgd()
            for run in runs.values():
                run.step(batch)
            bg.one()
        n_warm = {b: len(run.opt.staleness_history) for b, run in runs.items()}
        by_name = {names[b]: run for b, run in runs.items()}
        for r in range(rounds):
            order = ["sgd", "sgd+bg", *by_name, "bg_alone"]
            if bgproc is not None:
                order.append("sgd+bgproc")
            for name in balanced_order(order, r):
                t0 = time.perf_counter()
                if name == "sgd":
                    sgd_sec.clear()
                    for _ in range(steps):
                        step_sgd()
                    for k, v in sgd_sec.items():
                        sgd_split[name][k].append(v / steps)
                elif name in ("sgd+bg", "sgd+bgproc"):
                    with bg if name == "sgd+bg" else bgproc:  # type: ignore[attr-defined]
                        sgd_sec.clear()
                        t0 = time.perf_counter()
                        for _ in range(steps):
                            step_sgd()
                        wall = time.perf_counter() - t0
                        for k, v in sgd_sec.items():
                            sgd_split[name][k].append(v / steps)
                    per[name].append(wall / steps)
                    continue
                elif name == "bg_alone":
                    for _ in range(steps):
                        bg.one()
                else:
                    run = by_name[name]
                    run.sec.clear()
                    if prof is not None and run.backend == "thread":
                        prof.enable()
                    for _ in range(steps):
                        run.step(batch)
                    if prof is not None and run.backend == "thread":
                        prof.disable()
                    for k, v in run.sec.items():
                        run.split[k].append(v / steps)
                per[name].append((time.perf_counter() - t0) / steps)
        extra: dict[str, dict[str, Any]] = {}
        for b, run in runs.items():
            res = run.opt._last_result
            stale = run.opt.staleness_history[n_warm[b]:]
            waits = run.opt.wait_history[n_warm[b]:]
            extra[b] = {
                "snapshots_copied_by_main_thread": run.opt.main_thread_snapshots,
                "worker_last_compute_ms": None if res is None else 1e3 * res.compute_s,
                "staleness_histogram": {str(s): stale.count(s) for s in sorted(set(stale))},
                "mean_wait_ms": 1e3 * statistics.fmean(waits) if waits else 0.0}
    finally:
        for run in runs.values():
            run.opt.close()
    med = {k: 1e3 * statistics.median(v) for k, v in per.items()}
    sgd_parts = {n: {k: 1e3 * statistics.median(v) for k, v in d.items()}
                 for n, d in sgd_split.items()}
    sections, splits = {}, {}
    for b, run in runs.items():
        parts = {k: 1e3 * statistics.median(v) for k, v in run.split.items()}
        known = sum(parts.get(k, 0.0) for k in ("publish", "acquire", "perturb", "closure",
                                               "seal", "base_step"))
        parts["rest (bookkeeping)"] = parts.get("step", 0.0) - known
        sections[b] = parts
        splits[b] = split_of(parts, sgd_parts["sgd"])
    first = names[backends[0]]
    out: dict[str, Any] = {
        "config": {"hidden": hidden, "batch": batch, "bprime": bprime, "tau": tau,
                   "rounds": rounds, "steps": steps, "threads_per_role": 1,
                   "backends": list(backends)},
        "ms_per_step": med,
        "asyncsam_sections_ms": sections[backends[0]],
        "sections_ms_by_backend": sections,
        "split_ms_by_backend": splits,
        "sgd_sections_ms": sgd_parts,
        "worker_last_compute_ms": extra[backends[0]]["worker_last_compute_ms"],
        "snapshots_copied_by_main_thread": extra[backends[0]][
            "snapshots_copied_by_main_thread"],
        "by_backend": extra,
        "ratios": {
            "asyncsam_over_sgd": med[first] / med["sgd"],
            "sgd_with_background_over_sgd": med["sgd+bg"] / med["sgd"],
            "asyncsam_over_sgd_with_background": med[first] / med["sgd+bg"],
            **{f"{names[b]}_over_sgd": med[names[b]] / med["sgd"] for b in backends},
        },
        "staleness_histogram": extra[backends[0]]["staleness_histogram"],
        "mean_wait_ms": extra[backends[0]]["mean_wait_ms"],
    }
    if "sgd+bgproc" in med:
        out["ratios"]["sgd_with_background_process_over_sgd"] = med["sgd+bgproc"] / med["sgd"]
    if prof is not None:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(12)
        out["cprofile_main_thread"] = s.getvalue()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--bprime", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--tau", type=int, default=1)
    ap.add_argument("--cprofile", action="store_true")
    ap.add_argument("--process", action="store_true",
                    help="also run SGD beside an ascent loop in a separate process")
    ap.add_argument("--backends", default="thread",
                    help="AsyncSAM worker backends to time, comma-separated (thread,process)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--default-allocator", action="store_true",
                    help="keep the C allocator's default thresholds (by default they are fixed, "
                         "as in `asam-theory bench`)")
    a = ap.parse_args(argv)
    allocator = None if a.default_allocator else steady_malloc()
    backends = tuple(b.strip() for b in a.backends.split(",") if b.strip())
    res = profile(a.hidden, a.batch, a.bprime, a.rounds, a.steps, a.tau, a.cprofile, a.process,
                  backends)
    res["allocator"] = allocator_report(not a.default_allocator, allocator)
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print(json.dumps({k: v for k, v in res.items() if k != "cprofile_main_thread"},
                         indent=2))
        if "cprofile_main_thread" in res:
            print(res["cprofile_main_thread"])
    return res


if __name__ == "__main__":
    main()
