"""The timing's load meter counts AsyncSAM's worker process as the measured method's own CPU,
also after the worker has exited (it is forked and reaped by this process's forkserver, so
``os.times`` never sees it): otherwise each closed worker would read as another process's
load and an idle machine as busy."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from torch.nn import functional as F

from asam_theory.experiments import same_model_timing as smt
from asam_theory.torch import AsyncSAM, WorkerOptions

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def test_an_exited_workers_cpu_stays_counted_as_own():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.ReLU(),
                                torch.nn.Linear(1024, 10))
    opt = AsyncSAM.for_model(model, F.cross_entropy, torch.optim.SGD, rho=0.05, lr=0.01,
                             worker=WorkerOptions(backend="process", num_threads=1))
    before, self_before = smt._own_cpu_s(), _self_cpu_s()
    x, y = torch.randn(256, 512), torch.randint(0, 10, (256,))
    for _ in range(40):
        opt.step(x, y)
    pid = opt._directions.pid
    worker = smt._proc_cpu_s(pid)
    assert worker > 0.05, "the worker did too little to measure"
    opt.close()
    others_own = smt._own_cpu_s() - before - (_self_cpu_s() - self_before)
    # the worker's CPU (read while it ran) is part of what this process used, after its exit
    # too; two clock ticks of slack for the last reads
    assert others_own >= worker - 2 / 100, (others_own, worker)
