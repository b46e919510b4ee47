"""Reference trajectory of AUSAM from the official code (ajiaaa/AUSAM).

Usage: ``python tools/reference_ausam.py CHECKOUT [--out tests/data/ausam_reference.npz]``
where CHECKOUT is a checkout of https://github.com/ajiaaa/AUSAM (read at commit 13ee7bf).
Runs the repository's own ``AUSAM/sam/ausam.py::AUSAM`` (``sampledata_index``, ``first_step``,
``second_step_without_norm``, ``impt_roc``) with its ``model/smooth_cross_entropy.py`` loss,
in the order of the loop of ``AUSAM/train.py`` and with its defaults (α 0.5, ρ 0.1,
fmin 0.1, fmax 0.5, SGD lr 0.1, momentum 0.9, weight decay 1e-3, label smoothing 0.1), except:
``trans_epoch`` 3 (instead of 30, so that 20 steps see both the fmax ramp and its end), batch 16
on 64 samples (4 steps per epoch, 5 epochs), constant learning rate (``train.py``'s cosine
schedule is a schedule, not part of the method).  Stand-ins for the launcher: ``train.py``
needs CIFAR and a GPU; here the loop runs on CPU in float64 (the module-level
``device`` of ``ausam.py`` falls back to CPU by itself) with the small MLP of
``tools/reference_mlp.py``; the sampling draws (``torch.multinomial``) come from the global
torch generator seeded with ``TORCH_SEED`` just before the loop.
"""

from __future__ import annotations

from types import SimpleNamespace

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

ALPHA, RHO, FMIN, FMAX, TRANS, LR, MOMENTUM, WD, SMOOTHING = (0.5, 0.1, 0.1, 0.5, 3, 0.1, 0.9,
                                                              1e-3, 0.1)
BATCH, STEPS_PER_EPOCH, TORCH_SEED = 16, 4, 1234


def main() -> None:
    args = reference_args(__doc__, "ausam_reference.npz", "ajiaaa/AUSAM")
    use_checkout(args.checkout, "AUSAM")
    torch.set_default_dtype(torch.float64)
    from model.smooth_cross_entropy import smooth_crossentropy
    from sam.ausam import AUSAM
    from utility.bypass_bn import disable_running_stats, enable_running_stats

    X, y = make_data()
    init = make_init()
    model = make_mlp(init)
    base = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    opt = AUSAM(model.parameters(), base, rho=RHO, rho_scheduler=None, adaptive=False,
                storage_size=len(y), alpha=ALPHA, beta=0.5)
    hp = SimpleNamespace(fmin=FMIN)
    batches = make_batches(BATCH)
    traj, chosen = [flat(model)], []
    torch.manual_seed(TORCH_SEED)
    start_epoch = 0
    for t, idx in enumerate(batches):
        epoch = t // STEPS_PER_EPOCH
        if epoch <= start_epoch + TRANS:  # train.py's fmax ramp, evaluated once per epoch
            fmax_ = FMAX - ((start_epoch + TRANS - epoch) / TRANS) * (FMAX - FMIN) + 0.000000001
        inputs, targets, index = (torch.from_numpy(X[idx]), torch.from_numpy(y[idx]),
                                  torch.from_numpy(idx))
        tf = opt.sampledata_index(hp, epoch, index, fmax_)
        enable_running_stats(model)
        loss_bef = smooth_crossentropy(model(inputs[tf]), targets[tf], smoothing=SMOOTHING)
        loss_bef.mean().backward()
        opt.first_step(zero_grad=True)
        disable_running_stats(model)
        loss_aft = smooth_crossentropy(model(inputs[tf]), targets[tf], smoothing=SMOOTHING)
        loss_aft.mean().backward()
        opt.second_step_without_norm(zero_grad=True)
        roc = torch.abs(loss_aft - loss_bef)
        opt.impt_roc(epoch, index, tf, roc)
        traj.append(flat(model))
        full = np.full(BATCH, -1)
        full[: len(tf)] = tf.numpy()
        chosen.append(full)
    save(args.out, args.checkout, X=X, y=y, init_params=flat(make_mlp(init)), batches=batches,
         params=traj, chosen=np.stack(chosen), table=opt.impt.numpy(),
         hyper=[ALPHA, RHO, FMIN, FMAX, TRANS, LR, MOMENTUM, WD, SMOOTHING, STEPS_PER_EPOCH,
                TORCH_SEED], steps=STEPS)


if __name__ == "__main__":
    main()
