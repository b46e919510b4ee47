"""Run rollovd/LookSAM (``looksam.py``, unofficial; no official code is public) on CPU and write
its trajectory to ``tests/data/looksam_reference.npz``.

Usage::

    python tools/reference_looksam.py /path/to/LookSAM-checkout [--out ...]

Its own usage pattern, on the fixed float64 MLP and data of ``tools/_reference_common.py``:
``loss = criterion(model(x), y); loss.backward(); opt.step(t=t, samples=x, targets=y)`` with
``criterion = nn.CrossEntropyLoss()``, ``base_optimizer = torch.optim.SGD`` (lr 0.1, momentum
0.9, weight decay 5e-4), k = 3, α = 0.5 (exact in float32: the reference stores α as a float32
tensor), ρ = 0.1, for t = 0..19.  The trajectory is the weights after every step.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reference_common import (  # noqa: E402
    batches,
    build_model,
    fixed_problem,
    flat,
    reference_args,
    repo_commit,
    save,
)

HYPER = dict(k=3, alpha=0.5, rho=0.1, lr=0.1, momentum=0.9, weight_decay=5e-4)


def run_reference(repo: Path) -> tuple[dict, np.ndarray]:
    spec = importlib.util.spec_from_file_location("rollovd_looksam", repo / "looksam.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.set_default_dtype(torch.float64)
    problem = fixed_problem(seed=1)
    model = build_model(problem)
    criterion = nn.CrossEntropyLoss()
    opt = mod.LookSAM(k=HYPER["k"], alpha=HYPER["alpha"], model=model,
                      base_optimizer=torch.optim.SGD, criterion=criterion, rho=HYPER["rho"],
                      lr=HYPER["lr"], momentum=HYPER["momentum"],
                      weight_decay=HYPER["weight_decay"])
    traj = []
    for t, (x, y) in enumerate(batches(problem)):
        loss = criterion(model(x), y)
        loss.backward()
        opt.step(t=t, samples=x, targets=y, zero_sam_grad=True, zero_grad=True)
        traj.append(flat(model))
    return problem, np.array(traj)


def main() -> None:
    a = reference_args(__doc__, "looksam_reference.npz", "rollovd/LookSAM")
    problem, traj = run_reference(a.checkout.resolve())
    save(a.out, problem, traj, repo_commit(a.checkout),
         hyper=np.array([HYPER[k] for k in ("k", "alpha", "rho", "lr", "momentum",
                                             "weight_decay")], dtype=float))


if __name__ == "__main__":
    main()
