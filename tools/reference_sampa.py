"""Run the official SAMPa training loop (LIONS-EPFL/SAMPa ``train.py``) on CPU and write its
trajectory to ``tests/data/sampa_reference.npz``.

Usage::

    python tools/reference_sampa.py /path/to/SAMPa-checkout [--out tests/data/sampa_reference.npz]

The official loop runs two ranks under Lightning Fabric (DDP on two GPUs).  This script drives
``train.run`` unmodified with the smallest stand-ins for what it needs from outside:

* ``lightning.fabric``: a ``Fabric`` whose two ranks are two threads of this process,
  ``all_reduce`` a two-party sum through a barrier, ``backward`` = ``loss.backward()``,
  ``setup``/``setup_dataloaders`` identity, ``no_backward_sync`` a null context;
* ``get_dataset``/``get_model``: the fixed float64 MLP and data of
  ``tools/_reference_common.py`` (one epoch of 20 batches; tiny validation/test sets).

The trajectory is rank 0's weights after each ``optimizer.step()`` (rank 1 holds the same up
to rounding).  Hyperparameters: the official defaults ρ = 0.1, λ (``--og``) = 0.2, lr 0.1,
momentum 0.9, weight decay 5e-4.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import tempfile
import threading
import types
from pathlib import Path

import numpy as np
import torch
import torch.optim.optimizer as optim_mod

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reference_common import (  # noqa: E402
    BATCH,
    batches,
    build_model,
    fixed_problem,
    flat,
    reference_args,
    repo_commit,
    save,
)

HYPER = dict(lr=0.1, rho=0.1, og=0.2, weight_decay=5e-4, momentum=0.9)


class _Reducer:
    def __init__(self) -> None:
        self.barrier = threading.Barrier(2)
        self.slots: list[torch.Tensor | None] = [None, None]

    def all_reduce(self, rank: int, t: torch.Tensor) -> torch.Tensor:
        self.slots[rank] = t.clone()
        self.barrier.wait()
        total = self.slots[0] + self.slots[1]
        self.barrier.wait()
        return total


def _fabric_module(reducer: _Reducer) -> types.ModuleType:
    local = threading.local()

    class Fabric:
        def __init__(self, *args, **kwargs) -> None:
            self.global_rank = local.rank

        def launch(self) -> None:
            pass

        def setup(self, model, optimizer):
            return model, optimizer

        def setup_dataloaders(self, *loaders, **kwargs):
            return loaders

        def no_backward_sync(self, model, enabled=True):
            return contextlib.nullcontext()

        def backward(self, loss) -> None:
            loss.backward()

        def all_reduce(self, t, reduce_op="sum"):
            assert reduce_op == "sum"
            return reducer.all_reduce(self.global_rank, t)

    mod = types.ModuleType("lightning.fabric")
    mod.Fabric = Fabric
    mod.seed_everything = lambda seed: None
    mod._local = local
    return mod


def run_reference(repo: Path) -> tuple[dict, np.ndarray]:
    torch.set_default_dtype(torch.float64)
    problem = fixed_problem(seed=0)
    train = batches(problem)
    small = train[:2]
    reducer = _Reducer()
    fabric = _fabric_module(reducer)
    lightning = types.ModuleType("lightning")
    lightning.fabric = fabric
    sys.modules["lightning"] = lightning
    sys.modules["lightning.fabric"] = fabric
    models: dict[int, torch.nn.Module] = {}

    def get_model(args):
        m = build_model(problem)
        models[fabric._local.rank] = m
        return m

    sys.modules["get_model"] = types.SimpleNamespace(get_model=get_model)
    sys.modules["get_dataset"] = types.SimpleNamespace(
        get_dataset=lambda args: types.SimpleNamespace(train=train, valid=small, test=small))
    sys.path.insert(0, str(repo))
    train_mod = importlib.import_module("train")

    trajectory: list[np.ndarray] = []

    def hook(optimizer, args, kwargs):
        if getattr(fabric._local, "rank", None) == 0:
            trajectory.append(flat(models[0]))

    handle = optim_mod.register_optimizer_step_post_hook(hook)
    errors: list[BaseException] = []
    with tempfile.TemporaryDirectory() as tmp:
        args = types.SimpleNamespace(batch_size=BATCH, epochs=1, seed=0, save_path=tmp,
                                     dataset="fixture", model="mlp", threads=1, **HYPER)

        def worker(rank: int) -> None:
            fabric._local.rank = rank
            try:
                train_mod.run(args)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)
                reducer.barrier.abort()

        threads = [threading.Thread(target=worker, args=(r,)) for r in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    handle.remove()
    if errors:
        raise errors[0]
    return problem, np.array(trajectory)


def main() -> None:
    a = reference_args(__doc__, "sampa_reference.npz", "LIONS-EPFL/SAMPa")
    problem, traj = run_reference(a.checkout.resolve())
    save(a.out, problem, traj, repo_commit(a.checkout),
         hyper=np.array([HYPER[k] for k in ("lr", "rho", "og", "weight_decay", "momentum")]))


if __name__ == "__main__":
    main()
