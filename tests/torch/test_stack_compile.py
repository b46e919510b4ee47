"""``torch.compile`` of the model under SAM: the compiled model trains with the same steps as
the eager one.

Inductor on the CPU compiles C++ kernels: the first compile of this small MLP took 33 s on
the 2-core development machine with a cold cache (4 s warm), so one test uses inductor and the
BatchNorm test uses ``aot_eager`` (the same graph capture and autograd tracing, no kernel
compilation), which is what the recompilation it checks depends on.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from stack_cases import batches, mlp, params_of
from torch import nn

from asam_theory.torch import SAM

pytestmark = pytest.mark.skipif(not hasattr(torch, "compile"), reason="torch.compile needs "
                                "torch >= 2.0")


def _train(model, forward, steps):
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, model=model, lr=0.1, momentum=0.9)
    losses = []
    for x, y in steps:
        opt.zero_grad()
        loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step(lambda x=x, y=y: F.cross_entropy(forward(x), y).backward())
        losses.append(float(loss.detach()))
    return losses


def _inductor_available() -> bool:
    import shutil

    return any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


@pytest.mark.skipif(not _inductor_available(), reason="inductor needs a C++ compiler")
def test_compile_inductor_sam_trains_like_eager():
    """SAM on ``torch.compile(model)`` (inductor): 3 steps equal the eager steps to float32
    kernel rounding — inductor's fused, vectorised kernels (tanh, the loss) differ from eager
    by a few ulps per operation; rtol 1e-4 (about 1000 float32 ulps) is wide for that and
    far below what a wrong step (a missing perturbation, a stale weight) changes."""
    data = batches(3)
    model, ref = mlp(), mlp()
    compiled = torch.compile(model, backend="inductor")
    losses = _train(model, compiled, data)
    ref_losses = _train(ref, ref, data)
    for p, q in zip(params_of(model), params_of(ref), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(ref_losses), rtol=1e-4,
                               atol=1e-6)


def test_compile_aot_eager_sam_with_batchnorm_keeps_statistics_frozen():
    """With BatchNorm, SAM's perturbed pass runs under ``bn_frozen`` (momentum 0): the compiled
    model must not bake the momentum into its graph.  Weights and running statistics after 3
    steps equal the eager run's (aot_eager runs the same aten operations: float32 rounding
    only), so the frozen pass left the statistics alone in the compiled model too."""
    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))

    data = batches(3)
    model, ref = net(), net()
    _train(model, torch.compile(model, backend="aot_eager"), data)
    _train(ref, ref, data)
    for p, q in zip(params_of(model), params_of(ref), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(model[1], name), getattr(ref[1], name),
                                   rtol=1e-5, atol=1e-7)
    assert int(model[1].num_batches_tracked) == 3  # one unperturbed pass per step
