"""Reference trajectory of the vSAM rule (ARSAM's published predecessor) from ajiaaa/vSAM.

Usage: ``python tools/reference_arsam.py CHECKOUT [--out tests/data/arsam_reference.npz]``
where CHECKOUT is a checkout of https://github.com/ajiaaa/vSAM (read at commit 895e0e5); the
ARSAM repository itself could not be read, so ``asam_theory.methods.ARSAM`` implements this
rule.  Runs the repository's own ``vsam/vsam.py::vSAM`` (``set_closure``, ``step``; SAM steps
store the PSF, reuse steps add :math:`\\beta^k` PSF, windowed adaptive sampling) with the loss of
``train_vsam.py`` (label-smoothed cross-entropy 0.1 via ``model/smooth_cross_entropy.py``) and
its defaults (ρ 0.05, ``max_p`` 0.8, α = (0.13, 0.13), β 0.7, SGD lr 0.05, momentum 0.9,
weight decay 1e-3), except the window ``hp_win`` = (4, 2) instead of (50, 5) and
``last_layer`` 2, so that 20 steps of a small MLP cross several windows; 64 samples at batch 32
(2 steps per epoch): the first 3 epochs (6 steps) are vSAM's SAM warm-up, then 14 adaptive
steps.  Constant learning rate (``train_vsam.py``'s cosine schedule is a schedule, not part of
the method).  Stand-ins: vSAM allocates its statistics with ``.cuda()``; on this CPU run
``torch.Tensor.cuda`` is replaced by the identity, and the run is float64; the sampling draws
(``random.random()``) come from Python's ``random`` seeded with ``PY_SEED`` before the loop.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from _reference_common import reference_args
from reference_mlp import (
    STEPS,
    flat,
    make_batches,
    make_data,
    make_init,
    make_mlp,
    save,
    use_checkout,
)

RHO, MAX_P, A1, A2, BETA, LAST_LAYER, LR, MOMENTUM, WD, SMOOTHING = (0.05, 0.8, 0.13, 0.13, 0.7,
                                                                      2, 0.05, 0.9, 1e-3, 0.1)
WINDOW, BLOCKS, BATCH, STEPS_PER_EPOCH, WARMUP_EPOCHS, PY_SEED = 4, 2, 32, 2, 3, 2


def main() -> None:
    args = reference_args(__doc__, "arsam_reference.npz", "ajiaaa/vSAM")
    use_checkout(args.checkout)
    torch.set_default_dtype(torch.float64)
    torch.Tensor.cuda = lambda self, *a, **k: self  # CPU stand-in for vSAM's .cuda() buffers
    from model.smooth_cross_entropy import smooth_crossentropy
    from vsam import vSAM

    def loss_fn(predictions, targets):  # train_vsam.py's loss_fn
        return smooth_crossentropy(predictions, targets, smoothing=SMOOTHING).mean()

    X, y = make_data()
    init = make_init()
    model = make_mlp(init)
    base = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    opt = vSAM(params=model.parameters(), base_optimizer=base, model=model, rho=RHO,
               adaptive=False, hp_win=[WINDOW, BLOCKS], max_p=MAX_P, hp1=[A1, A2], hp2=BETA,
               last_layer=LAST_LAYER)
    batches = make_batches(BATCH)
    traj, sampled, counts, prob = [flat(model)], [], [], []
    random.seed(PY_SEED)
    for t, idx in enumerate(batches):
        opt.epoch = t // STEPS_PER_EPOCH
        before = opt.sampling_number
        opt.set_closure(loss_fn, torch.from_numpy(X[idx]), torch.from_numpy(y[idx]))
        _, n_sampled = opt.step()
        sampled.append(n_sampled > before)
        counts.append(float(opt.base_sr))
        prob.append(float(opt.sampling_probability))
        traj.append(flat(model))
    print("SAM steps:", np.flatnonzero(sampled).tolist())
    save(args.out, args.checkout, X=X, y=y, init_params=flat(make_mlp(init)), batches=batches,
         params=traj,
         sampled=np.array(sampled), base_sr=counts, sampling_probability=prob,
         hyper=[RHO, MAX_P, A1, A2, BETA, LAST_LAYER, LR, MOMENTUM, WD, SMOOTHING, WINDOW,
                BLOCKS, STEPS_PER_EPOCH * WARMUP_EPOCHS, PY_SEED], steps=STEPS)


if __name__ == "__main__":
    main()
