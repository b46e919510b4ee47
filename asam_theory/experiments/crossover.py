r"""AsyncSAM against SGD across model widths, per worker backend: where the ascent hides.

``asam-theory bench --crossover [--widths 64,256,1024,2048] [--json]``.  Workload: the
leaderboard's MLP (:func:`asam_theory.experiments.models.make_model`, two hidden layers of the
given width) on MNIST-1D (Greydanus & Kobak, arXiv 2011.14439; scikit-learn's digits with
``dataset="digits"``), cross-entropy, b = 64, SGD with momentum 0.9 as every method's base, one
intra-op thread per role: SGD and SAM on one core, AsyncSAM's descent on one and its worker (a
thread of this process, or a process of its own) on the other — the AsyncSAM paper's setting of
an idle second device.

Per width, in the same interleaved rounds (round r's row of a Williams design,
:func:`asam_theory.design.balanced_order`), each after ``warmup`` untimed steps:

* ``sgd`` and ``sgd_control`` (a second, identical SGD: how far a median strays by chance);
* ``sam`` (davda54/sam's two passes);
* ``asyncsam[backend]`` and ``lookahead[backend]`` for each backend (τ = 1; b′ tuned once per
  width by :func:`asam_theory.torch.tuning.tune_ascent_batch`, the same for both backends);
* ``floor``: SGD plus AsyncSAM's perturbation applied and removed with a fixed direction —
  w_t + ρu written into a second buffer, the parameters pointed at it for the forward/backward
  and back — and nothing else: the physical limit of a step that adds one parameter pass.
  AsyncSAM's extra time over the floor is the hand-off and the interference of its worker.

Each ratio is the median over rounds of the per-round step time over SGD's in the same round,
with the median's distribution-free 95 % interval (:func:`asam_theory.stats.median_interval`);
``chosen`` names, per width, the backend with the smaller AsyncSAM ratio.  The machine's load
average is recorded before and after.
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
from asam_theory.experiments.bench import async_stepper, median_ci95, sam_stepper, sgd_stepper
from asam_theory.experiments.training import IndexSampler, classification_loss
from asam_theory.torch import SAM, AsyncSAM, LookAhead, WorkerOptions
from asam_theory.torch.tuning import tune_ascent_batch
from asam_theory.validation import check_choice, check_int

#: the widths of the crossover table
WIDTHS: tuple[int, ...] = (64, 256, 1024, 2048)
BACKENDS: tuple[str, ...] = ("thread", "process")
DATASETS: tuple[str, ...] = ("mnist1d", "digits")


def _data(dataset: str, seed: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...], int]:
    if dataset == "digits":
        from asam_theory.experiments.training import load_digits_data

        d = load_digits_data(seed=seed)
        return d.x_train, d.y_train, (64,), 10
    from asam_theory.data import load_dataset
    from asam_theory.experiments.training import tensor_data

    ds = load_dataset("mnist1d", seed=seed)
    td = tensor_data(ds)
    return td.x_train, td.y_train, tuple(ds.input_shape), int(ds.n_classes)


class FloorStep:
    """SGD's step plus the perturbation applied and removed with a fixed unit direction (the
    module docstring's ``floor``)."""

    def __init__(self, model: nn.Module, sampler: IndexSampler, batch_size: int,
                 rho: float, **kw: Any) -> None:
        self.model, self.sampler, self.b, self.rho = model, sampler, batch_size, rho
        self.params = list(model.parameters())
        self.opt = torch.optim.SGD(self.params, **kw)
        g = torch.Generator().manual_seed(0)
        u = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in self.params]
        norm = torch.sqrt(sum((t ** 2).sum() for t in u))
        self.u = [t / norm for t in u]
        self.perturbed = [torch.empty_like(p) for p in self.params]

    def __call__(self) -> None:
        batch = self.sampler(self.b)
        live = [p.data for p in self.params]
        with torch.no_grad():
            for w, u, q in zip(live, self.u, self.perturbed, strict=True):
                torch.add(w, u, alpha=self.rho, out=q)
        for p, q in zip(self.params, self.perturbed, strict=True):
            p.data = q
        try:
            self.opt.zero_grad()
            classification_loss(self.model, batch).backward()
        finally:
            for p, w in zip(self.params, live, strict=True):
                p.data = w
        self.opt.step()


def _batches(sampler: IndexSampler, b: int):
    while True:
        yield sampler(b)


def crossover_width(width: int, x: torch.Tensor, y: torch.Tensor, shape: tuple[int, ...],
                    classes: int, *, batch_size: int, rounds: int, steps: int, warmup: int,
                    backends: Sequence[str], tau: int, rho: float, seed: int,
                    ascent_batch_size: int | str, margin: float) -> dict[str, Any]:
    """One width's interleaved rounds (module docstring); returns its rows and measurements."""
    from asam_theory.experiments.models import make_model

    kw = {"lr": 0.01, "momentum": 0.9}

    def model() -> nn.Module:
        return make_model("mlp", shape, classes, width=width, seed=seed)

    def sampler(k: int) -> IndexSampler:
        return IndexSampler(x, y, seed + k)

    n_params = int(sum(p.numel() for p in model().parameters()))
    if ascent_batch_size == "auto":
        m = model()
        computer_w = [p.detach().clone() for p in m.parameters()]
        from asam_theory.torch._worker import AscentComputer

        computer = AscentComputer(classification_loss, torch.device("cpu"), m,
                                  list(m.parameters()), adaptive=False)
        s_d, s_a = sampler(11), sampler(12)

        def descent_fn() -> None:
            m.zero_grad()
            classification_loss(m, s_d(batch_size)).backward()

        def ascent_fn(bp: int) -> None:
            computer.direction(computer_w, s_a(bp))

        bprime = tune_ascent_batch(descent_fn, ascent_fn, batch_size=batch_size, margin=margin,
                                   ascent_threads=1).ascent_batch_size
    else:
        bprime = int(ascent_batch_size)
    def sgd() -> Callable[[], None]:
        m = model()
        return sgd_stepper(m, torch.optim.SGD(m.parameters(), **kw), sampler(0), batch_size)

    m_sam = model()
    methods: dict[str, Callable[[], None]] = {
        "sgd": sgd(),
        "sgd_control": sgd(),
        "sam": sam_stepper(m_sam, SAM(m_sam.parameters(), torch.optim.SGD, rho=rho, **kw),
                           sampler(0), batch_size),
        "floor": FloorStep(model(), sampler(0), batch_size, rho, **kw),
    }
    asyncs: dict[str, AsyncSAM] = {}
    for backend in backends:
        worker = WorkerOptions(backend=backend, num_threads=1, max_staleness=tau)
        m = model()
        opt = AsyncSAM(m.parameters(), torch.optim.SGD, rho=rho, tau=tau,
                       ascent_loss=classification_loss, ascent_batches=sampler(1),
                       ascent_batch_size=bprime, model=m, worker=worker, **kw)
        asyncs[f"asyncsam[{backend}]"] = opt
        methods[f"asyncsam[{backend}]"] = async_stepper(opt, m, sampler(0), batch_size)
        m = model()
        loader = LookAhead(_batches(sampler(0), batch_size), tau=tau)
        opt = AsyncSAM(m.parameters(), torch.optim.SGD, rho=rho, tau=tau,
                       ascent_loss=classification_loss, ascent_batches=loader,
                       ascent_batch_size=bprime, model=m, worker=worker, **kw)
        asyncs[f"lookahead[{backend}]"] = opt
        methods[f"lookahead[{backend}]"] = async_stepper(opt, m, sampler(0), batch_size, loader)
    try:
        for fn in methods.values():
            for _ in range(warmup):
                fn()
        n_warm = {n: len(o.staleness_history) for n, o in asyncs.items()}
        names = list(methods)
        per_round: dict[str, list[float]] = {n: [] for n in names}
        for r in range(rounds):
            for n in balanced_order(names, r):
                t0 = time.perf_counter()
                for _ in range(steps):
                    methods[n]()
                wall = time.perf_counter() - t0
                per_round[n].append(wall / steps)
                if n in asyncs:  # let the ascent launched by the last step finish
                    time.sleep(wall / steps)
        stale = {n: dict(sorted(Counter(o.staleness_history[n_warm[n]:]).items()))
                 for n, o in asyncs.items()}
        waits = {n: 1e3 * statistics.fmean(o.wait_history[n_warm[n]:]) for n, o in asyncs.items()}
    finally:
        for o in asyncs.values():
            o.close()

    def ratio(name: str) -> tuple[float, dict[str, float], list[float]]:
        r = [a / b for a, b in zip(per_round[name], per_round["sgd"], strict=True)]
        return statistics.median(r), median_ci95(r), r

    sam, sam_ci, _ = ratio("sam")
    floor, floor_ci, _ = ratio("floor")
    ctl, ctl_ci, _ = ratio("sgd_control")
    rows = []
    for backend in backends:
        a, a_ci, a_r = ratio(f"asyncsam[{backend}]")
        la, la_ci, _ = ratio(f"lookahead[{backend}]")
        rows.append({"width": width, "params": n_params, "backend": backend,
                     "ascent_batch_size": bprime, "asyncsam_over_sgd": a,
                     "asyncsam_ci95": a_ci, "sam_over_sgd": sam, "sam_ci95": sam_ci,
                     "lookahead_over_sgd": la, "lookahead_ci95": la_ci,
                     "asyncsam_ratios_per_round": a_r,
                     "staleness_histogram": {str(k): v for k, v in
                                             stale[f"asyncsam[{backend}]"].items()},
                     "mean_wait_ms": waits[f"asyncsam[{backend}]"]})
    chosen = min(rows, key=lambda row: row["asyncsam_over_sgd"])["backend"]
    return {"rows": rows,
            "floor": {"width": width, "params": n_params, "floor_over_sgd": floor,
                      "ci95": floor_ci},
            "control": {"width": width, "sgd_control_over_sgd": ctl, "ci95": ctl_ci},
            "chosen": {"width": width, "backend": chosen},
            "sgd_ms": 1e3 * statistics.median(per_round["sgd"])}


def run_crossover(widths: Sequence[int] = WIDTHS, *, batch_size: int = 64, rounds: int = 7,
                  steps: int = 30, warmup: int = 5, backends: Sequence[str] = BACKENDS,
                  tau: int = 1, rho: float = 0.05, seed: int = 0,
                  ascent_batch_size: int | str = "auto", margin: float = 0.5,
                  dataset: str = "mnist1d",
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The crossover table (module docstring): ``{"crossover": [rows], "floor": [...],
    "control": [...], "chosen": [...], "sgd_ms": {width: ms}, "config", "load"}``; a row per
    width and backend: ``width, params, backend, ascent_batch_size, asyncsam_over_sgd,
    sam_over_sgd, lookahead_over_sgd`` (with their 95 % intervals, the staleness histogram and
    the mean wait for the worker)."""
    widths = [check_int("widths entry", w, low=1) for w in widths]
    if not widths:
        raise ValueError("widths must list at least one width >= 1")
    for b in backends:
        check_choice("backends entry", b, BACKENDS)
    check_choice("dataset", dataset, DATASETS)
    for name, v, low in (("batch_size", batch_size, 1), ("rounds", rounds, 1),
                         ("steps", steps, 1), ("warmup", warmup, 0), ("tau", tau, 0)):
        check_int(name, v, low=low)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    try:
        x, y, shape, classes = _data(dataset, seed)
        out: dict[str, Any] = {"crossover": [], "floor": [], "control": [], "chosen": [],
                               "sgd_ms": {}}
        for w in widths:
            if progress is not None:
                progress(f"width {w}")
            res = crossover_width(w, x, y, shape, classes, batch_size=batch_size,
                                  rounds=rounds, steps=steps, warmup=warmup, backends=backends,
                                  tau=tau, rho=rho, seed=seed,
                                  ascent_batch_size=ascent_batch_size, margin=margin)
            out["crossover"] += res["rows"]
            out["floor"].append(res["floor"])
            out["control"].append(res["control"])
            out["chosen"].append(res["chosen"])
            out["sgd_ms"][str(w)] = res["sgd_ms"]
    finally:
        torch.set_num_threads(prev)
    out["config"] = {"widths": widths, "batch_size": batch_size, "rounds": rounds,
                     "steps": steps, "warmup": warmup, "backends": list(backends), "tau": tau,
                     "rho": rho, "seed": seed, "dataset": dataset, "threads_per_role": 1,
                     "ascent_batch_size": ascent_batch_size, "margin": margin}
    out["load"] = {"loadavg_before": load_before,
                   "loadavg_after": os.getloadavg()[0] if hasattr(os, "getloadavg")
                   else float("nan"), "cpu_count": os.cpu_count(),
                   "wall_s": time.perf_counter() - t0}
    return out
