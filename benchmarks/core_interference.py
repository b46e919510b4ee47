r"""What a busy second core costs the first: the floor under AsyncSAM/SGD on this machine.

AsyncSAM's descent runs on one core while its worker computes the ascent on another. Cores are
not independent: they share the last-level cache, the memory bandwidth and — on most CPUs — a
power budget that lowers every core's clock as more of them work (and, in a virtual machine,
whatever the host shares between vCPUs). So the descent step runs slower *because* the other
core works, whatever AsyncSAM's own code costs. This benchmark measures that part alone.

Workload: the ``asam-theory bench`` descent step (SGD with momentum 0.9 on the MLP
64 → H → H → 10, cross-entropy on b digits, one intra-op thread), timed while the other core

* ``idle`` — runs nothing (its neighbour process waits on an event);
* ``alu`` — runs a pure-Python integer loop: execution units and clock, next to no memory
  traffic;
* ``stream`` — copies a 64 MiB array over and over: DRAM bandwidth;
* ``cache`` — copies an array the size of the weights (H² + 76 H + 10 float32 values, 4.5 MB
  at H = 1024): the shared last-level cache;
* ``ascent`` — computes AsyncSAM's ascent direction (forward/backward on b′ samples and the
  normalisation, :class:`~asam_theory.torch._worker.AscentComputer`) in a loop: the worker at
  100 % duty, in its own process (so no GIL is shared; the threaded worker's GIL share is
  what ``benchmarks/profile_asyncsam_step.py`` shows beside this).

Every neighbour is a separate process started once and switched on and off by an event, so no
start-up cost falls inside a timing. Rounds: each load in turn for ``steps`` steps (in the order
of round r's row of a Williams design, :func:`asam_theory.design.balanced_order`, so that each
load follows each other equally often); per round the ratio of each load's time per step to
``idle``'s; reported: medians over rounds with their distribution-free 95 % intervals
(:func:`asam_theory.stats.median_interval`), and ``idle_control`` — a second ``idle`` timing in
every round, whose ratio to the first shows how far a median strays by chance.

The worker's duty. AsyncSAM's worker is busy only while it computes one direction per step:
``duty`` = (one ascent on b′, timed alone) / (one descent step, timed alone). To first order
the descent step then runs ``duty × (ascent − 1)`` slower than alone, which
``predicted_descent_slowdown`` reports: the part of AsyncSAM/SGD that comes from the machine,
not from AsyncSAM (whose own main-thread work per step is the one pass w + ρu and the hand-off,
see the profile).

Run:  python benchmarks/core_interference.py [--hidden 1024] [--batch 512] [--bprime 192]
      [--rounds 15] [--steps 6] [--loads idle,alu,stream,cache,ascent] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

#: the loads a neighbour process can run (besides ``idle``), in the default order
LOADS = ("alu", "stream", "cache", "ascent")
STREAM_BYTES = 64 * 2**20


def weight_count(hidden: int) -> int:
    """Parameters of the bench MLP 64 → H → H → 10."""
    return 64 * hidden + hidden + hidden * hidden + hidden + 10 * hidden + 10


def _alu(go: Any, stop: Any, ready: Any, _: dict[str, int]) -> None:
    ready.set()
    x = 1
    while not stop.is_set():
        if not go.wait(timeout=0.1):
            continue
        while go.is_set():
            for _i in range(20_000):
                x = (x * 1103515245 + 12345) & 0xFFFFFFFF


def _copy_loop(nbytes: int) -> Callable[[Any, Any, Any], None]:
    def run(go: Any, stop: Any, ready: Any) -> None:
        import numpy as np

        a = np.ones(nbytes // 8)
        b = np.empty_like(a)
        reps = max(1, (8 * 2**20) // nbytes)  # about 8 MiB copied between checks of ``go``
        ready.set()
        while not stop.is_set():
            if not go.wait(timeout=0.1):
                continue
            while go.is_set():
                for _i in range(reps):
                    np.copyto(b, a)

    return run


def _stream(go: Any, stop: Any, ready: Any, _: dict[str, int]) -> None:
    _copy_loop(STREAM_BYTES)(go, stop, ready)


def _cache(go: Any, stop: Any, ready: Any, cfg: dict[str, int]) -> None:
    _copy_loop(4 * weight_count(cfg["hidden"]))(go, stop, ready)


def _ascent(go: Any, stop: Any, ready: Any, cfg: dict[str, int]) -> None:
    import torch

    from asam_theory.experiments.bench import _mlp
    from asam_theory.experiments.training import IndexSampler, classification_loss, load_digits_data
    from asam_theory.torch._worker import AscentComputer

    torch.set_num_threads(1)
    data = load_digits_data(seed=0)
    model = _mlp(cfg["hidden"], 1, torch.device("cpu"))
    computer = AscentComputer(classification_loss, torch.device("cpu"), model,
                              list(model.parameters()), adaptive=False)
    weights = [p.detach().clone() for p in model.parameters()]
    sampler = IndexSampler(data.x_train, data.y_train, 3)
    computer.direction(weights, sampler(cfg["bprime"]))
    ready.set()
    while not stop.is_set():
        if not go.wait(timeout=0.1):
            continue
        while go.is_set():
            computer.direction(weights, sampler(cfg["bprime"]))


_TARGETS = {"idle": None, "alu": _alu, "stream": _stream, "cache": _cache, "ascent": _ascent}


class Neighbour:
    """A process that runs ``load`` while its event is set (``idle``: no process at all)."""

    def __init__(self, load: str, cfg: dict[str, int]) -> None:
        self.load = load
        self.proc = None
        target = _TARGETS[load]
        if target is None:
            return
        ctx = mp.get_context("spawn")
        self.go, self.stop, ready = ctx.Event(), ctx.Event(), ctx.Event()
        self.proc = ctx.Process(target=target, args=(self.go, self.stop, ready, cfg),
                                daemon=True, name=f"neighbour-{load}")
        self.proc.start()
        if not ready.wait(timeout=300):
            self.close()
            raise RuntimeError(f"the {load!r} neighbour process did not start within 300 s")

    def __enter__(self) -> Neighbour:
        if self.proc is not None:
            self.go.set()
            time.sleep(0.05)  # let it reach its loop before the timing starts
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.go.clear()

    def close(self) -> None:
        if self.proc is not None:
            self.go.clear()
            self.stop.set()
            self.proc.join(timeout=30)
            if self.proc.is_alive():
                self.proc.kill()


def measure(hidden: int = 1024, batch: int = 512, bprime: int = 192, rounds: int = 15,
            steps: int = 6, loads: tuple[str, ...] = LOADS, seed: int = 0) -> dict[str, Any]:
    """Run the interleaved measurement (see the module docstring) and return its results."""
    import torch

    from asam_theory.design import balanced_order
    from asam_theory.experiments.allocator import allocator_report, steady_malloc
    from asam_theory.experiments.bench import _mlp
    from asam_theory.experiments.training import IndexSampler, classification_loss, load_digits_data
    from asam_theory.stats import median_interval
    from asam_theory.torch._worker import AscentComputer

    unknown = [x for x in loads if x not in LOADS]
    if unknown:
        raise ValueError(f"loads must be among {', '.join(LOADS)}; got {', '.join(unknown)}")
    if min(hidden, batch, bprime, rounds, steps) < 1:
        raise ValueError("hidden, batch, bprime, rounds and steps must be >= 1")
    if (os.cpu_count() or 1) < 2:
        raise RuntimeError("this benchmark needs two CPU cores (it measures one beside the other)")
    # as ``asam-theory bench`` does: no step pays for pages the kernel took back
    allocator = allocator_report(True, steady_malloc())
    torch.set_num_threads(1)
    cfg = {"hidden": hidden, "bprime": bprime}
    dev = torch.device("cpu")
    data = load_digits_data(seed=seed)
    sampler = IndexSampler(data.x_train, data.y_train, seed)
    model = _mlp(hidden, seed, dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad()
        classification_loss(model, sampler(batch)).backward()
        opt.step()

    # the duty of AsyncSAM's worker: one ascent on b′ over one descent step, each alone
    asc_model = _mlp(hidden, seed + 1, dev)
    computer = AscentComputer(classification_loss, dev, asc_model, list(asc_model.parameters()),
                              adaptive=False)
    weights = [p.detach().clone() for p in asc_model.parameters()]
    asampler = IndexSampler(data.x_train, data.y_train, seed + 1)
    t_step, t_asc = [], []
    for i in range(2 * steps + 4):
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        computer.direction(weights, asampler(bprime))
        if i >= 4:
            t_step.append(t1 - t0)
            t_asc.append(time.perf_counter() - t1)
    duty = statistics.median(t_asc) / statistics.median(t_step)

    names = ["idle", *loads, "idle_control"]
    neighbours = {n: Neighbour("idle" if n == "idle_control" else n, cfg) for n in names}
    per_round: dict[str, list[float]] = {n: [] for n in names}
    load_start = os.getloadavg()[0]
    try:
        for _ in range(3):
            step()
        for r in range(rounds):
            for n in balanced_order(names, r):
                with neighbours[n]:
                    t0 = time.perf_counter()
                    for _ in range(steps):
                        step()
                    per_round[n].append((time.perf_counter() - t0) / steps)
    finally:
        for nb in neighbours.values():
            nb.close()
    ratios = {n: [a / b for a, b in zip(per_round[n], per_round["idle"], strict=True)]
              for n in names if n != "idle"}
    out: dict[str, Any] = {
        "config": {"hidden": hidden, "batch": batch, "bprime": bprime, "rounds": rounds,
                   "steps": steps, "threads": 1, "cpu_count": os.cpu_count()},
        "step_ms_median": {n: 1e3 * statistics.median(v) for n, v in per_round.items()},
        "over_idle": {n: statistics.median(r) for n, r in ratios.items()},
        "over_idle_ci95": {n: {k: median_interval(r)[k] for k in ("low", "high", "coverage")}
                           for n, r in ratios.items()},
        "duty": duty,
        "ascent_ms_alone": 1e3 * statistics.median(t_asc),
        "descent_ms_alone": 1e3 * statistics.median(t_step),
        "loadavg_1min": {"start": load_start, "after": os.getloadavg()[0]},
        "allocator": allocator,
    }
    if "ascent" in ratios:
        out["predicted_descent_slowdown"] = duty * (out["over_idle"]["ascent"] - 1.0)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--bprime", type=int, default=192)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--loads", default=",".join(LOADS),
                    help=f"comma-separated neighbour loads among {', '.join(LOADS)}")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    loads = tuple(x.strip() for x in a.loads.split(",") if x.strip())
    res = measure(a.hidden, a.batch, a.bprime, a.rounds, a.steps, loads)
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        c = res["config"]
        print(f"SGD step (H={c['hidden']}, b={c['batch']}, 1 thread) beside a busy second "
              f"core, {c['rounds']} rounds x {c['steps']} steps; time per step over idle:")
        for n, r in res["over_idle"].items():
            ci = res["over_idle_ci95"][n]
            print(f"  {n:13s} {r:.3f}  [{ci['low']:.3f}, {ci['high']:.3f}]  "
                  f"({res['step_ms_median'][n]:.1f} ms)")
        print(f"worker duty (ascent on b'={c['bprime']} / descent step, alone): "
              f"{res['duty']:.2f}")
        if "predicted_descent_slowdown" in res:
            print(f"predicted slowdown of AsyncSAM's descent by its own worker: "
                  f"{100 * res['predicted_descent_slowdown']:+.1f} %")
    return res


if __name__ == "__main__":
    main()
