"""What each rank of the gloo DDP test runs (``test_stack_ddp.py``), and the single-process
references it is compared with.

Every scenario trains the standard MLP of :mod:`stack_cases` in float64 on the same global
batches of 16 samples; rank r takes rows 8r..8r+7.  A rank saves its weights after every step
(and its scaler's scale) to ``<out>/<scenario>_<rank>.pt``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from stack_cases import BASE, batches, fixed_scaler, mlp, params_of
from torch.nn.parallel import DistributedDataParallel as DDP

from asam_theory.torch import SAM, LookSAM, accumulate

WORLD = 2
STEPS = 4
RHO = 0.05
MAX_NORM = 0.2
SCALE = 2.0**10
INF_STEP, INF_RANK = 1, 0  # the step and the rank whose ascent overflows (scaler scenario)
MICRO = (3, 5)  # micro-batch sizes of a rank's 8-sample shard (accumulation scenario)
SCENARIOS = ("sam_closure", "sam_two_step_scaler_clip", "sam_accumulate", "looksam_synced")


def global_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    return batches(STEPS, torch.float64, seed=11)


def shard(x: torch.Tensor, r: int) -> torch.Tensor:
    n = x.shape[0] // WORLD
    return x[r * n:(r + 1) * n]


def _loss(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


# -- ranks ---------------------------------------------------------------------------------------
def run_rank(rank: int, port: int, out: str) -> None:
    """Entry point of ``torch.multiprocessing.spawn``: every scenario in one process group."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        for name in SCENARIOS:
            torch.save(_SCENARIO_FNS[name](rank), Path(out) / f"{name}_{rank}.pt")
            dist.barrier()
    finally:
        dist.destroy_process_group()


def _sam_closure(rank: int) -> dict:
    ddp = DDP(mlp(torch.float64))
    opt = SAM(ddp.parameters(), torch.optim.SGD, rho=RHO, model=ddp, **BASE)
    weights = []
    for x, y in global_batches():
        batch = (shard(x, rank), shard(y, rank))
        opt.zero_grad()
        with opt.ascent_pass(ddp):  # per replica: no all-reduce
            _loss(ddp, batch).backward()
        opt.step(lambda batch=batch: _loss(ddp, batch).backward())  # all-reduced
        weights.append(params_of(ddp.module))
    return {"weights": weights}


def _sam_two_step_scaler_clip(rank: int) -> dict:
    ddp = DDP(mlp(torch.float64))
    opt = SAM(ddp.parameters(), torch.optim.SGD, rho=RHO, max_grad_norm=MAX_NORM, **BASE)
    scaler = fixed_scaler(SCALE)
    weights, scales = [], []
    for t, (x, y) in enumerate(global_batches()):
        batch = (shard(x, rank), shard(y, rank))
        # an overflow in one rank's ascent pass only: its descent pass, all-reduced, is finite,
        # so only the ranks' agreement makes the other rank skip the step too
        blow_up = float("inf") if (t, rank) == (INF_STEP, INF_RANK) else 1.0
        with opt.ascent_pass(ddp):
            scaler.scale(_loss(ddp, batch) * blow_up).backward()
        opt.first_step(zero_grad=True, scaler=scaler)
        scaler.scale(_loss(ddp, batch)).backward()
        opt.second_step(zero_grad=True, scaler=scaler)
        scaler.update()
        weights.append(params_of(ddp.module))
        scales.append(scaler.get_scale())
    return {"weights": weights, "scales": scales, "skipped": opt.skipped_steps}


def _sam_accumulate(rank: int) -> dict:
    ddp = DDP(mlp(torch.float64))
    opt = SAM(ddp.parameters(), torch.optim.SGD, rho=RHO, model=ddp, **BASE)
    weights = []
    for x, y in global_batches():
        xs, ys = shard(x, rank), shard(y, rank)
        micro = [(xs[:MICRO[0]], ys[:MICRO[0]]), (xs[MICRO[0]:], ys[MICRO[0]:])]

        def loss_fn(batch):
            return _loss(ddp, batch)

        opt.zero_grad()
        with opt.ascent_pass(ddp):
            accumulate(loss_fn, micro)
        opt.step(lambda micro=micro: accumulate(loss_fn, micro, model=ddp))
        weights.append(params_of(ddp.module))
    return {"weights": weights}


def _looksam_synced(rank: int) -> dict:
    ddp = DDP(mlp(torch.float64))
    opt = LookSAM(ddp.parameters(), torch.optim.SGD, rho=RHO, k=2, model=ddp, **BASE)
    weights = []
    for x, y in global_batches():
        batch = (shard(x, rank), shard(y, rank))
        opt.zero_grad()
        with opt.ascent_pass(ddp):  # LookSAM reuses this gradient: it stays all-reduced
            _loss(ddp, batch).backward()
        opt.step(lambda batch=batch: _loss(ddp, batch).backward())
        weights.append(params_of(ddp.module))
    return {"weights": weights}


_SCENARIO_FNS = {"sam_closure": _sam_closure,
                 "sam_two_step_scaler_clip": _sam_two_step_scaler_clip,
                 "sam_accumulate": _sam_accumulate, "looksam_synced": _looksam_synced}


# -- single-process references ------------------------------------------------------------------
def _grad(model, batch) -> list[torch.Tensor]:
    model.zero_grad()
    _loss(model, batch).backward()
    return [p.grad.clone() for p in model.parameters()]


def reference_sam(*, per_replica: bool = True, max_grad_norm: float | None = None,
                  skip: int | None = None) -> list[list[torch.Tensor]]:
    """SAM on the global batches, written out: rank r's perturbation ε_r = ρ g_r/(‖g_r‖ +
    1e-12) from its own shard's gradient (``per_replica``) or from the global gradient, the
    descent gradient the mean over r of ∇L_{B_r}(w + ε_r), optionally clipped, then SGD;
    step ``skip`` is left out (weights unchanged)."""
    model = mlp(torch.float64)
    params = list(model.parameters())
    base = torch.optim.SGD(params, **BASE)
    out = []
    for t, (x, y) in enumerate(global_batches()):
        if t != skip:
            shards = [(shard(x, r), shard(y, r)) for r in range(WORLD)]
            w = [p.detach().clone() for p in params]
            descent = [torch.zeros_like(p) for p in params]
            for r in range(WORLD):
                g = _grad(model, shards[r] if per_replica else (x, y))
                norm = torch.linalg.vector_norm(torch.stack([gi.norm() for gi in g]))
                with torch.no_grad():
                    for p, gi in zip(params, g, strict=True):
                        p.add_(gi * (RHO / (norm + 1e-12)))
                for d, gi in zip(descent, _grad(model, shards[r]), strict=True):
                    d.add_(gi / WORLD)
                with torch.no_grad():
                    for p, wi in zip(params, w, strict=True):
                        p.copy_(wi)
            for p, d in zip(params, descent, strict=True):
                p.grad = d
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            base.step()
        out.append(params_of(model))
    return out


def reference_looksam() -> list[list[torch.Tensor]]:
    """LookSAM on the global batches in one process (every gradient all-reduced under DDP is
    the global batch's: equal shards, so the mean of the shard means)."""
    model = mlp(torch.float64)
    opt = LookSAM(model.parameters(), torch.optim.SGD, rho=RHO, k=2, **BASE)
    out = []
    for x, y in global_batches():
        opt.zero_grad()
        _loss(model, (x, y)).backward()
        opt.step(lambda x=x, y=y: _loss(model, (x, y)).backward())
        out.append(params_of(model))
    return out
