"""AsyncSAM's main thread does SGD's step plus a constant per parameter tensor: the Python-level
torch calls of one step counted with a ``TorchFunctionMode`` (each call a trip through the
interpreter, which on a small model is most of a step's cost: ``docs/performance.md``).

Measured (steady state, MLP with 6 or 8 parameter tensors, SGD with momentum as base): per
parameter tensor the thread backend adds 4 calls — read ``p.data`` (w_t), ``torch.add`` into
the perturbed buffer (w_t + ρu), point ``p.data`` at it and back — and the process backend one
more (the storage check of the shared parameters); per step a constant 12 (``no_grad`` /
``enable_grad`` switches, the optimizer's profiling record, the device check of the direction,
the loss's detach, and BatchNorm's two ``foreach`` copies), plus for the process backend about
6 per batch leaf (the step batch copied into shared memory: shape, size, slice, copy). The
bounds below allow 2 calls of slack for the deferred snapshot, which the main thread copies
itself (one ``foreach`` copy) when the worker has not started it."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from asam_theory.torch import AsyncSAM, WorkerOptions

PER_PARAM = {"thread": 4, "process": 5}
PER_LEAF = {"thread": 0, "process": 6}
CONSTANT = 12
SLACK = 2
ALLOCATING = ("empty", "empty_strided", "empty_like", "zeros", "zeros_like", "clone",
              "new_empty", "new_zeros")


class CallCounter(TorchFunctionMode):
    """Counts every torch function, method and attribute access that reaches Python."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls[getattr(func, "__name__", str(func))] += 1
        return func(*args, **(kwargs or {}))


def mlp(bn: bool) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(10, 16)]
    if bn:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)]
    return nn.Sequential(*layers)


def count(step, warm: int = 6) -> Counter[str]:
    for _ in range(warm):
        step()
    with CallCounter() as c:
        step()
    return c.calls


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("backend", ["thread", "process"])
def test_one_step_is_sgd_plus_a_constant_per_parameter(backend: str, bn: bool) -> None:
    x, y = torch.randn(32, 10), torch.randint(0, 3, (32,))
    loss_fn = nn.CrossEntropyLoss()
    model = mlp(bn)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def sgd_step() -> None:
        sgd.zero_grad()
        loss_fn(model(x), y).backward()
        sgd.step()

    base = sum(count(sgd_step).values())
    model = mlp(bn)
    n = len(list(model.parameters()))
    with AsyncSAM.for_model(model, loss_fn, torch.optim.SGD, lr=0.1, momentum=0.9,
                            worker=WorkerOptions(backend=backend)) as opt:
        calls = count(lambda: opt.step(x, y))
    total = sum(calls.values())
    bound = base + PER_PARAM[backend] * n + PER_LEAF[backend] * 2 + CONSTANT + SLACK
    assert total <= bound, (total, bound, calls)
    # and no allocation on the main thread in steady state
    assert not {k: v for k, v in calls.items() if k in ALLOCATING}, calls


class WalkingBypass:
    """The former BatchNorm bypass (``bn_frozen``: walk the model, set momentum 0, clone and
    restore each counter), entered anew at every step."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        from asam_theory.torch import bn_frozen

        self._cm = bn_frozen(self.model)
        self._cm.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)


def test_the_count_catches_a_per_step_walk_and_clone() -> None:
    # the check can fail: with the former bypass a step allocates (a clone per BatchNorm
    # layer) and makes more calls than the bound allows
    x, y = torch.randn(32, 10), torch.randint(0, 3, (32,))
    model = mlp(True)
    with AsyncSAM.for_model(model, nn.CrossEntropyLoss(), torch.optim.SGD, lr=0.1) as opt:
        opt._frozen_stats = WalkingBypass(model)
        calls = count(lambda: opt.step(x, y))
    assert calls["clone"] >= 1
