"""Run the official SSAM-F (Mi-Peng/Sparse-Sharpness-Aware-Minimization ``solver/sam.py``,
class ``SSAMF``) on CPU and write its trajectory to ``tests/data/ssam_reference.npz``.

Usage::

    python tools/reference_ssam.py /path/to/Sparse-Sharpness-Aware-Minimization [--out ...]

``SSAMF`` is driven as its ``utils/engine.py::train_one_epoch`` drives it (forward, loss,
``zero_grad``, backward, ``step(closure, epoch=, batch_idx=, model=, train_data=, logger=)``)
on the fixed float64 MLP of ``tools/_reference_common.py``: a training set of 40 samples in
5 batches of 8 per epoch (no shuffling), 4 epochs = 20 steps, ``nn.CrossEntropyLoss``,
``torch.optim.SGD`` (lr 0.1, momentum 0.9, weight decay 5e-4) as the base optimizer instance,
ρ = 0.1, sparsity 0.5, num_samples 16, update_freq 1 (epoch).

Stand-ins for the GPU launcher: ``Tensor.cuda`` returns the tensor itself, and the
``DataLoader`` that ``update_mask`` builds (batch size 1, shuffled) runs with
``num_workers=0`` so that the samples it reads can be recorded; their indices are written to
the fixture (``fisher_indices``, one row per mask update) so the test can feed the same
samples.  The trajectory is the weights after every step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reference_common import (  # noqa: E402
    build_model,
    fixed_problem,
    flat,
    reference_args,
    repo_commit,
    save,
)

HYPER = dict(rho=0.1, sparsity=0.5, num_samples=16, update_freq=1, lr=0.1, momentum=0.9,
             weight_decay=5e-4)
EPOCHS, PER_EPOCH, BATCH = 4, 5, 8


class RecordingDataset(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.reads: list[int] = []

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        self.reads.append(int(i))
        return self.x[i], self.y[i]


class _Logger:
    def log(self, msg: str) -> None:
        print(msg)


def run_reference(repo: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    sys.path.insert(0, str(repo))
    from solver.sam import SSAMF  # the reference code, imported from its checkout

    torch.set_default_dtype(torch.float64)
    torch.Tensor.cuda = lambda self, *a, **k: self  # CPU stand-in for the GPU launcher
    real_loader = torch.utils.data.DataLoader

    def cpu_loader(*args, **kwargs):
        kwargs["num_workers"] = 0
        return real_loader(*args, **kwargs)

    torch.utils.data.DataLoader = cpu_loader
    torch.manual_seed(0)  # the shuffled Fisher loader draws from torch's generator

    problem = fixed_problem(seed=2)
    x = torch.as_tensor(problem["inputs"][:PER_EPOCH * BATCH])
    y = torch.as_tensor(problem["targets"][:PER_EPOCH * BATCH], dtype=torch.long)
    data = RecordingDataset(x, y)
    model = build_model(problem)
    criterion = nn.CrossEntropyLoss()
    base = torch.optim.SGD(model.parameters(), lr=HYPER["lr"], momentum=HYPER["momentum"],
                           weight_decay=HYPER["weight_decay"])
    opt = SSAMF(params=model.parameters(), base_optimizer=base, rho=HYPER["rho"],
                sparsity=HYPER["sparsity"], num_samples=HYPER["num_samples"],
                update_freq=HYPER["update_freq"])
    traj, fisher = [], []
    for epoch in range(EPOCHS):
        for batch_idx in range(PER_EPOCH):
            images = x[batch_idx * BATCH:(batch_idx + 1) * BATCH]
            targets = y[batch_idx * BATCH:(batch_idx + 1) * BATCH]

            def closure(images=images, targets=targets):
                loss = criterion(model(images), targets)
                loss.backward()

            loss = criterion(model(images), targets)
            opt.zero_grad()
            loss.backward()
            data.reads.clear()
            opt.step(closure, epoch=epoch, step=epoch * PER_EPOCH + batch_idx,
                     batch_idx=batch_idx, model=model, train_data=data, logger=_Logger())
            if data.reads:
                fisher.append(data.reads[:HYPER["num_samples"]])
            traj.append(flat(model))
    torch.utils.data.DataLoader = real_loader
    return problem, np.array(traj), np.array(fisher)


def main() -> None:
    a = reference_args(__doc__, "ssam_reference.npz",
                       "Mi-Peng/Sparse-Sharpness-Aware-Minimization")
    problem, traj, fisher = run_reference(a.checkout.resolve())
    save(a.out, problem, traj, repo_commit(a.checkout), fisher_indices=fisher,
         hyper=np.array([HYPER[k] for k in ("rho", "sparsity", "num_samples", "update_freq",
                                             "lr", "momentum", "weight_decay")], dtype=float),
         schedule=np.array([EPOCHS, PER_EPOCH, BATCH]))


if __name__ == "__main__":
    main()
