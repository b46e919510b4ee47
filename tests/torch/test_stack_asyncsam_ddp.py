"""AsyncSAM under DistributedDataParallel on the gloo backend: 2 processes on the loopback
interface (``torch.multiprocessing.spawn``), float64, compared with a single-process reference
that applies the same per-replica perturbations to the same global batch, to 1e-10 relative.

* ``AsyncSAM.for_model(ddp, ...)``: the descent all-reduces through DDP's backward, each rank's
  ascent runs on its own replica (a copy of ``ddp.module``) and its own b′ samples with no
  communication — in the deterministic mode, the worker thread and the worker process (one
  per rank, spawned inside the spawned rank), at ``max_staleness = τ``; the reference with one
  perturbation for every replica differs (the test tells them apart);
* a GradScaler with an inf in one rank's shard: that step is skipped on both ranks (its
  all-reduced descent gradient is non-finite), and so is the next one, whose direction is
  non-finite on that rank only (the ranks agree; without the agreement the other rank would
  wait in an all-reduce forever); ``max_grad_norm`` clips the all-reduced descent gradient;
* ``step(x, y, micro_batches=2)``: accumulation with one all-reduce per step.

All scenarios run in one spawn (one process group), bounded by ``TIMEOUT_S``; afterwards no rank
and no worker process is alive.
"""

from __future__ import annotations

import asyncsam_ddp_ranks as ranks
import psutil
import pytest
import torch
import torch.distributed as dist
from test_stack_ddp import TIMEOUT_S, _close, _far, _free_port

from asam_theory.torch._process import worker_pid_alive

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is unavailable")


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("asyncsam_ddp")
    pids = ranks.spawn_ranks(out, _free_port(), TIMEOUT_S)
    per_rank = [torch.load(out / f"rank{r}.pt") for r in range(ranks.WORLD)]
    return {name: [rank[name] for rank in per_rank] for name in ranks.SCENARIOS}, pids


@pytest.mark.parametrize("scenario", ["deterministic", "thread", "process", "accumulate"])
def test_ddp_gloo_asyncsam_ascent_is_per_replica_and_accumulate(ddp_results, scenario):
    """Every rank's weights after every step equal the reference's; ``accumulate`` is the
    deterministic mode stepped with ``micro_batches=2``."""
    results, _ = ddp_results
    ref = ranks.reference_run()
    for rank in results[scenario]:
        assert len(rank["weights"]) == ranks.STEPS
        for w, w_ref in zip(rank["weights"], ref, strict=True):
            _close(w, w_ref)
    shared = ranks.reference_run(per_replica=False)
    assert _far(results[scenario][0]["weights"][-1], shared[-1])


def test_ddp_gloo_scaler_inf_on_one_rank_skips_on_every_rank_and_max_grad_norm(ddp_results):
    results, _ = ddp_results
    ref = ranks.reference_run(ranks.scaler_batches(), skip=(ranks.INF_STEP, ranks.INF_STEP + 1),
                              max_grad_norm=ranks.MAX_NORM)
    halvings = [0 if t < ranks.INF_STEP else 1 if t == ranks.INF_STEP else 2
                for t in range(ranks.STEPS + 1)]
    for rank in results["scaler_clip"]:
        assert rank["scales"] == [ranks.SCALE / 2**h for h in halvings]
        assert rank["skipped"] == 2
        for w, w_ref in zip(rank["weights"], ref, strict=True):
            _close(w, w_ref)
    unclipped = ranks.reference_run(ranks.scaler_batches(),
                                    skip=(ranks.INF_STEP, ranks.INF_STEP + 1))
    assert _far(results["scaler_clip"][0]["weights"][-1], unclipped[-1])  # clipping acts


def test_ddp_gloo_asyncsam_leaves_no_process_behind(ddp_results):
    results, pids = ddp_results
    workers = [rank["worker_pid"] for rank in results["process"]]
    assert len(set(workers) | set(pids)) == 4  # two ranks, a worker process each
    assert [pid for pid in workers if worker_pid_alive(pid)] == []
    alive = [pid for pid in pids
             if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
