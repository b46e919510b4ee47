"""Reference trajectory of RWP from the official code (nblt/RWP).

Usage: ``python tools/reference_rwp.py CHECKOUT [--out tests/data/rwp_reference.npz]`` where
CHECKOUT is a checkout of https://github.com/nblt/RWP (read at commit cb0acb0).  RWP has no
optimizer class: the method is the ``train`` function of ``train_rwp_parallel.py`` (odd rank
adds filter-wise noise and scales its loss by 2α, even rank by 2(1-α), DDP averages the
gradients, plain ``torch.optim.SGD`` steps).  That function (with the file's
``AverageMeter`` and ``accuracy``) is read from the file and run unchanged; the rest of the
script (argument parsing, NCCL/CUDA setup, torchvision data) cannot run on a CPU machine, so
the launcher is replaced by its smallest stand-in: two processes (``torch.multiprocessing``),
a ``gloo`` process group, ``DistributedDataParallel`` on CPU, the float64 MLP of
``tools/reference_mlp.py``, and per-rank loaders of fixed batches (each step's 32 samples split
in two disjoint shards of 16, as a distributed sampler would).  Recipe defaults of
``recipes/run_rwp_ddp.sh``: α 0.5, γ 0.01, lr 0.1, weight decay 1e-3, momentum 0.9 (script
default); constant learning rate (the cosine schedule is a schedule, not part of the method).
The noise comes from the global torch generator, seeded with ``TORCH_SEED`` on each rank just
before ``train`` (the official ``set_seed`` seeds every rank the same).
"""

from __future__ import annotations

import ast
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from reference_mlp import STEPS, flat, make_batches, make_data, make_init, make_mlp, save

ALPHA, GAMMA, LR, MOMENTUM, WD, TORCH_SEED = 0.5, 0.01, 0.1, 0.9, 1e-3, 11
SHARD = 16


def official_functions(script: Path) -> dict:
    """Execute ``train``, ``AverageMeter`` and ``accuracy`` of the official script."""
    tree = ast.parse(script.read_text())
    keep = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
            and n.name in ("train", "AverageMeter", "accuracy")]
    ns: dict = {"torch": torch, "np": np, "time": time}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(script), "exec"), ns)  # noqa: S102
    return ns


class Loader(list):
    """A list of batches with the ``dataset`` length the official ``train`` reads."""

    def __init__(self, batches, n):
        super().__init__(batches)
        self.dataset = range(n)


def worker(rank: int, script: str, init_file: str, out: str) -> None:
    torch.set_default_dtype(torch.float64)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    X, y = make_data()
    batches = make_batches(2 * SHARD)
    shards = batches[:, rank * SHARD:(rank + 1) * SHARD]
    loader = Loader([(torch.from_numpy(X[i]), torch.from_numpy(y[i])) for i in shards], len(y))
    model = torch.nn.parallel.DistributedDataParallel(make_mlp(make_init()))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    traj = [flat(model.module)]
    optimizer.register_step_post_hook(lambda *a: traj.append(flat(model.module)))
    ns = official_functions(Path(script))
    ns.update(args=SimpleNamespace(half=False, local_rank=rank, alpha=ALPHA, gamma=GAMMA,
                                   print_freq=100, world_size=2, wandb=False),
              device=torch.device("cpu"), train_loss=[], train_err=[], arr_time=[])
    torch.manual_seed(TORCH_SEED)
    ns["train"](loader, model, torch.nn.CrossEntropyLoss(), optimizer, 0)
    if rank == 0:
        np.save(out, np.stack(traj))
    dist.destroy_process_group()


def main() -> None:
    from _reference_common import reference_args

    args = reference_args(__doc__, "rwp_reference.npz", "nblt/RWP")
    script = Path(args.checkout).resolve() / "train_rwp_parallel.py"
    if not script.is_file():
        raise SystemExit(f"not found: {script}")
    with tempfile.TemporaryDirectory() as tmp:
        traj_file = os.path.join(tmp, "traj.npy")
        mp.spawn(worker, args=(str(script), os.path.join(tmp, "pg"), traj_file), nprocs=2)
        params = np.load(traj_file)
    X, y = make_data()
    batches = make_batches(2 * SHARD)
    save(args.out, args.checkout, X=X, y=y, init_params=flat(make_mlp(make_init())),
         batches_clean=batches[:, :SHARD], batches_perturbed=batches[:, SHARD:], params=params,
         hyper=[ALPHA, GAMMA, LR, MOMENTUM, WD, TORCH_SEED], steps=STEPS)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
