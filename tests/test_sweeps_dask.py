"""Sweeps on a live Dask cluster: the path of ``asam-theory verify --scheduler ADDRESS``.

A ``distributed.LocalCluster`` with two worker processes runs a real sweep (the EXACT-MC
transient task, small) through ``make_executor(scheduler=address)`` and ``run_sweep``; the rows
must equal the inline run's bit for bit (tasks are deterministic in their config; the workers
run one BLAS thread, and OpenBLAS's sums per output element do not depend on the thread
count).  Then one task kills its own worker process (SIGKILL, as an out-of-memory killer or a
crashed node would) the first time it runs: the sweep must still complete with identical rows.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from asam_theory.sweeps import DaskExecutor, make_executor, run_sweep  # noqa: E402
from asam_theory.sweeps.exact_mc import transient_task  # noqa: E402

#: the index of the config whose first attempt kills its worker
CRASH_INDEX = 3


def _configs() -> list[dict]:
    base = {"eigenvalues": [2.0, 1.0, 0.5, 0.25], "problem_seed": 3, "sigma2": 0.09,
            "lr": 0.15, "rho": 0.4, "steps": 40, "n_seeds": 64, "times": [1, 5, 20, 40]}
    cfgs = []
    for tau in (0, 1, 2, 4):
        for model, b, b_asc in (("descent_batch", 2, None), ("independent", 2, 1)):
            cfgs.append({**base, "tau": tau, "model": model, "batch_size": b,
                         "ascent_batch_size": b_asc, "seed": 10 * tau + b})
    return cfgs


def _crash_once(marker_dir: str, cfg: dict) -> dict:
    """``transient_task``, except that the first run of config ``CRASH_INDEX`` kills the worker
    process it runs in (the marker file makes the rerun behave)."""
    marker = Path(marker_dir) / "crashed"
    if cfg.get("seed") == _configs()[CRASH_INDEX]["seed"] and cfg["model"] == \
            _configs()[CRASH_INDEX]["model"] and not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(0.2)  # let the other worker be busy with its own tasks: a kill mid-sweep
        os.kill(os.getpid(), signal.SIGKILL)
    return transient_task(cfg)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None, silence_logs=logging.CRITICAL,
                                  worker_class=distributed.Nanny) as lc:
        yield lc
    # closed: no worker process is left behind
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not multiprocessing.active_children()


@pytest.fixture(scope="module")
def inline_rows():
    return run_sweep(transient_task, _configs(), None)


def test_live_cluster_equals_inline_bit_for_bit(cluster, inline_rows):
    with make_executor(scheduler=cluster.scheduler_address) as ex:
        assert isinstance(ex, DaskExecutor)
        rows = run_sweep(transient_task, _configs(), ex)
        workers = ex.client.run(os.getpid)
    assert len(workers) == 2 and os.getpid() not in workers.values()  # really elsewhere
    assert rows == inline_rows  # exact float equality, row by row


def test_sweep_survives_a_killed_worker(cluster, inline_rows, tmp_path):
    task = functools.partial(_crash_once, str(tmp_path))
    with make_executor(scheduler=cluster.scheduler_address) as ex:
        before = set(ex.client.run(os.getpid).values())
        rows = run_sweep(task, _configs(), ex)
    killed = int((tmp_path / "crashed").read_text())
    assert killed in before  # a worker process of the cluster was killed mid-sweep
    assert rows == inline_rows


def test_dask_executor_rejects_bad_resubmits():
    with pytest.raises(ValueError, match="resubmits"):
        DaskExecutor(client=None, resubmits=-1)
