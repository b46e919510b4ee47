"""What each rank of AsyncSAM's gloo DDP test runs (``test_stack_asyncsam_ddp.py``), and the
single-process reference it is compared with.

Every scenario trains the standard MLP of :mod:`stack_cases` in float64 on the global batches
of :mod:`ddp_ranks` (16 samples, rank r takes rows 8r..8r+7), with ``AsyncSAM.for_model`` on the
DDP-wrapped model, τ = 1 and b′ = 4: each rank's ascent runs on its own replica and the first 4
samples of its own shard of the step batch, with no communication.  A rank saves its weights
after every step (its scale, its skip count and its worker process's id where it has them);
``<out>/rank<rank>.pt`` holds every scenario's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from asyncsam_cases import build, reference, weights
from ddp_ranks import STEPS, WORLD, global_batches, shard
from stack_cases import fixed_scaler, mlp
from torch.nn.parallel import DistributedDataParallel as DDP

BPRIME = 4
SCALE = 2.0**10
MAX_NORM = 0.2
INF_STEP, INF_RANK = 1, 0  # the batch that holds an inf (scaler scenario): that rank's shard
SCENARIOS = ("deterministic", "thread", "process", "scaler_clip", "accumulate")


def scaler_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The global batches with an inf in rank ``INF_RANK``'s rows of step ``INF_STEP``."""
    data = global_batches() + global_batches()[:1]  # STEPS + 1 steps
    x, y = data[INF_STEP]
    x = x.clone()
    n = x.shape[0] // WORLD
    x[INF_RANK * n:(INF_RANK + 1) * n, 0] = float("inf")
    data[INF_STEP] = (x, y)
    return data


# -- ranks ---------------------------------------------------------------------------------------
def spawn_ranks(out: Path, port: int, timeout_s: float) -> list[int]:
    """Run :func:`run_rank` on ``WORLD`` spawned processes writing to ``out``; a rank still
    alive after ``timeout_s`` seconds is killed (``TimeoutError``), a rank that raised is
    reported with its traceback.  Returns the ranks' pids."""
    ctx = mp.spawn(run_rank, args=(port, str(out)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + timeout_s
    for proc in ctx.processes:
        proc.join(max(deadline - time.monotonic(), 0.0))
    stuck = [proc for proc in ctx.processes if proc.is_alive()]
    for proc in stuck:
        proc.kill()
        proc.join(5)
    if stuck:
        raise TimeoutError(f"{len(stuck)} gloo rank(s) did not finish within {timeout_s} s")
    ctx.join()  # every rank has ended: raises a rank's exception, with its traceback
    return ctx.pids()


def run_rank(rank: int, port: int, out: str) -> None:
    """Entry point of ``torch.multiprocessing.spawn``: every scenario in one process group
    (loopback only), the results of all of them saved in ``<out>/rank<rank>.pt``."""
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    try:
        results = {name: _scenario(name, rank) for name in SCENARIOS}
    finally:
        dist.destroy_process_group()
    torch.save(results, Path(out) / f"rank{rank}.pt")


def _scenario(name: str, rank: int) -> dict:
    ddp = DDP(mlp(torch.float64))
    backend = name if name in ("deterministic", "thread", "process") else (
        "thread" if name == "scaler_clip" else "deterministic")
    scaler = fixed_scaler(SCALE) if name == "scaler_clip" else None
    kwargs = {"max_grad_norm": MAX_NORM} if name == "scaler_clip" else {}
    data = scaler_batches() if name == "scaler_clip" else global_batches()
    result: dict = {"weights": [], "scales": []}
    with build(ddp, backend, ascent_batch_size=BPRIME, **kwargs) as opt:
        if backend == "process":
            result["worker_pid"] = opt._directions.pid
        assert opt.module is ddp.module
        for x, y in data:
            xs, ys = shard(x, rank), shard(y, rank)
            if name == "accumulate":
                opt.step(xs, ys, micro_batches=2)  # no all-reduce for the first micro-batch
            else:
                opt.step(xs, ys, scaler=scaler)
            if scaler is not None:
                scaler.update()
                result["scales"].append(scaler.get_scale())
            result["weights"].append(weights(ddp.module))
        result["skipped"] = opt.skipped_steps
    return result


# -- the single-process reference ------------------------------------------------------------------
def reference_run(data: list[tuple[torch.Tensor, torch.Tensor]] | None = None, *,
                  skip: tuple[int, ...] = (), max_grad_norm: float | None = None,
                  per_replica: bool = True) -> list[list[torch.Tensor]]:
    """AsyncSAM on the global batches in one process: replica r's direction from the first b′
    samples of its shard of the version's batch (``per_replica``; else every replica takes the
    direction of the first b′ samples of the global batch), the descent gradient the mean over
    r of its shard's gradient at w_t + ρ u_r (:func:`asyncsam_cases.reference`)."""
    data = global_batches() if data is None else data
    steps = []
    for x, y in data:
        if per_replica:
            ascent = [(shard(x, r)[:BPRIME], shard(y, r)[:BPRIME]) for r in range(WORLD)]
        else:
            ascent = [(x[:BPRIME], y[:BPRIME])] * WORLD
        steps.append((ascent, [(shard(x, r), shard(y, r)) for r in range(WORLD)]))
    return reference(mlp(torch.float64), steps, tau=1, skip=skip, max_grad_norm=max_grad_norm)


__all__ = ["SCENARIOS", "STEPS", "reference_run", "run_rank", "scaler_batches", "spawn_ranks"]
