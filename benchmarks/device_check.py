r"""AsyncSAM in the paper's setting: the descent on a GPU, the ascent on the CPU or a second GPU.

Jo, Lim & Lee (arXiv 2503.11147) report AsyncSAM at about 1.02× SGD's time for ResNet-20 on
CIFAR-10 with the ascent on a second device.  This script times that setting on a machine with
a GPU: ResNet-20 (:func:`asam_theory.experiments.models.make_model`, ``"resnet20"``) on
CIFAR-shaped synthetic data (3 × 32 × 32 images, 10 classes, drawn once; the step time does not
depend on the pixels), b = 128, SGD with momentum 0.9, one process.  Methods, timed in
interleaved rounds (round r's row of a Williams design) after ``--warmup`` untimed steps each,
the device synchronised around every timed block:

* ``sgd`` and ``sam`` on ``cuda:0``;
* ``asyncsam[process→cpu]`` and ``asyncsam[thread→cpu]``: the ascent on the CPU, in a worker
  process or a worker thread (``--ascent-threads`` intra-op threads), τ = 1, b′ = ``--bprime``;
* ``asyncsam[process→cuda:1]`` and ``asyncsam[thread→cuda:1]`` when a second GPU exists.

Reported per method: the median step time (ms), the median ratio to SGD over rounds with its
distribution-free 95 % interval, the staleness histogram and the mean wait for the worker.
``--cpu-dry-run`` runs the same code on the CPU at a tiny size (a CNN of width 4, b = 8): what
the test suite runs on a machine without a GPU, to keep the script working.

Run (on the GPU machine):  python benchmarks/device_check.py [--rounds 7] [--steps 20]
      [--bprime 32] [--json-out device_check.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from asam_theory.design import balanced_order
from asam_theory.experiments.bench import async_stepper, median_ci95, sam_stepper, sgd_stepper
from asam_theory.torch import SAM, AsyncSAM, WorkerOptions


class Batches:
    """Uniform draws (with replacement) from a fixed synthetic set; picklable, so a worker
    process draws its own independent ascent stream."""

    def __init__(self, n: int, shape: tuple[int, ...], classes: int, seed: int,
                 device: str = "cpu") -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, *shape, generator=g).to(device)
        self.y = torch.randint(0, classes, (n,), generator=g).to(device)
        self.gen = torch.Generator().manual_seed(seed + 1)

    def __call__(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(self.y), (b,), generator=self.gen).to(self.x.device)
        return self.x[idx], self.y[idx]


def loss_fn(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def build_model(dry: bool, seed: int) -> nn.Module:
    from asam_theory.experiments.models import make_model

    if dry:
        return make_model("cnn", (8, 8), 10, width=4, seed=seed)
    return make_model("resnet20", (3, 32, 32), 10, seed=seed)


def run(rounds: int = 7, steps: int = 20, warmup: int = 5, batch: int = 128, bprime: int = 32,
        ascent_threads: int = 4, cpu_dry_run: bool = False, seed: int = 0) -> dict[str, Any]:
    """Time every method (module docstring) and return the measurements."""
    if cpu_dry_run:
        dev, shape, batch, bprime = torch.device("cpu"), (8, 8), 8, 4
        rounds, steps, warmup = min(rounds, 2), min(steps, 2), min(warmup, 1)
    else:
        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA device: run with --cpu-dry-run to check the script")
        dev, shape = torch.device("cuda:0"), (3, 32, 32)
    descent = Batches(4096 if not cpu_dry_run else 64, shape, 10, seed, str(dev))
    kw = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}
    methods: dict[str, Callable[[], None]] = {}
    asyncs: dict[str, AsyncSAM] = {}

    m_sgd = build_model(cpu_dry_run, seed).to(dev)
    o_sgd = torch.optim.SGD(m_sgd.parameters(), **kw)
    m_sam = build_model(cpu_dry_run, seed).to(dev)
    o_sam = SAM(m_sam.parameters(), torch.optim.SGD, rho=0.05, **kw)
    methods.update(sgd=sgd_stepper(m_sgd, o_sgd, descent, batch, loss=loss_fn),
                   sam=sam_stepper(m_sam, o_sam, descent, batch, loss=loss_fn))
    targets = ["cpu"] + (["cuda:1"] if torch.cuda.device_count() > 1 else [])
    for target in targets:
        for backend in ("process", "thread"):
            name = f"asyncsam[{backend}→{target}]"
            model = build_model(cpu_dry_run, seed).to(dev)
            opt = AsyncSAM(model.parameters(), torch.optim.SGD, rho=0.05, tau=1,
                           ascent_loss=loss_fn,
                           ascent_batches=Batches(4096 if not cpu_dry_run else 64, shape, 10,
                                                  seed + 7, target),
                           ascent_batch_size=bprime, model=model,
                           worker=WorkerOptions(device=target, backend=backend,
                                                num_threads=ascent_threads), **kw)
            methods[name] = async_stepper(opt, model, descent, batch, loss=loss_fn)
            asyncs[name] = opt
    t_start = time.perf_counter()
    try:
        for fn in methods.values():
            for _ in range(warmup):
                fn()
        _sync(dev)
        n_warm = {n: len(o.staleness_history) for n, o in asyncs.items()}
        per: dict[str, list[float]] = {n: [] for n in methods}
        names = list(methods)
        for r in range(rounds):
            for n in balanced_order(names, r):
                _sync(dev)
                t0 = time.perf_counter()
                for _ in range(steps):
                    methods[n]()
                _sync(dev)
                per[n].append((time.perf_counter() - t0) / steps)
                if n in asyncs:
                    time.sleep(per[n][-1])
    finally:
        for o in asyncs.values():
            o.close()
    out: dict[str, Any] = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "cpu_dry_run": cpu_dry_run, "batch_size": batch, "ascent_batch_size": bprime,
        "rounds": rounds, "steps": steps, "ascent_threads": ascent_threads,
        "torch": torch.__version__, "wall_s": time.perf_counter() - t_start, "methods": {}}
    for n in names:
        ratios = [a / b for a, b in zip(per[n], per["sgd"], strict=True)]
        row: dict[str, Any] = {"step_ms_median": 1e3 * statistics.median(per[n]),
                               "over_sgd": statistics.median(ratios),
                               "over_sgd_ci95": median_ci95(ratios)}
        if n in asyncs:
            o = asyncs[n]
            row["staleness_histogram"] = {str(k): v for k, v in sorted(
                Counter(o.staleness_history[n_warm[n]:]).items())}
            row["mean_wait_ms"] = 1e3 * statistics.fmean(o.wait_history[n_warm[n]:])
        out["methods"][n] = row
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--bprime", type=int, default=32)
    ap.add_argument("--ascent-threads", type=int, default=4)
    ap.add_argument("--cpu-dry-run", action="store_true")
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args(argv)
    res = run(a.rounds, a.steps, a.warmup, a.batch, a.bprime, a.ascent_threads, a.cpu_dry_run)
    text = json.dumps(res, indent=2)
    if a.json_out:
        with open(a.json_out, "w") as fh:
            fh.write(text)
    print(text)
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
