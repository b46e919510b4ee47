"""Reference trajectory of BiSAM from the official code (LIONS-EPFL/BiSAM).

Usage: ``python tools/reference_bisam.py CHECKOUT [--out tests/data/bisam_reference.npz]``
where CHECKOUT is a checkout of https://github.com/LIONS-EPFL/BiSAM (read at commit
be996e4).  Runs the repository's own ``utility/sam.py::SAM`` with its ascent losses
``loss_fnc.perturbation_loss_log`` / ``perturbation_loss_tanh`` and descent loss
``loss_fnc.smooth_crossentropy``, in the order of its ``train.py`` loop (first
forward/backward on the ascent loss, ``first_step``, second forward/backward on the
label-smoothed loss, ``second_step``) with ``train.py``'s defaults (ρ 0.05, μ 1, α 0.1,
SGD lr 0.1, momentum 0.9, weight decay 5e-4, label smoothing 0.1), on CPU in float64 with the
small MLP of ``tools/reference_mlp.py`` for 20 steps at batch 16 and a constant learning rate
(the cosine schedule of ``train.py`` is a schedule, not part of the method).  The loop here is
the stand-in for ``train.py`` (which needs CIFAR).
"""

from __future__ import annotations

import torch
from _reference_common import reference_args
from reference_mlp import (
    flat,
    make_batches,
    make_data,
    make_init,
    make_mlp,
    save,
    use_checkout,
)

RHO, MU, ALPHA, LR, MOMENTUM, WD, SMOOTHING, BATCH = 0.05, 1.0, 0.1, 0.1, 0.9, 5e-4, 0.1, 16


def run(variant: str) -> list:
    from loss_fnc import perturbation_loss_log, perturbation_loss_tanh, smooth_crossentropy
    from utility.bypass_bn import disable_running_stats, enable_running_stats
    from utility.sam import SAM

    X, y = make_data()
    model = make_mlp(make_init())
    opt = SAM(model.parameters(), torch.optim.SGD, rho=RHO, adaptive=False, lr=LR,
              momentum=MOMENTUM, weight_decay=WD)
    traj = [flat(model)]
    for idx in make_batches(BATCH):
        inputs, targets = torch.from_numpy(X[idx]), torch.from_numpy(y[idx])
        enable_running_stats(model)
        predictions = model(inputs)
        if variant == "log":
            loss = perturbation_loss_log(predictions, targets, MU)
        else:
            loss = perturbation_loss_tanh(predictions, targets, MU, ALPHA)
        loss.mean().backward()
        opt.first_step(zero_grad=True)
        disable_running_stats(model)
        smooth_crossentropy(model(inputs), targets, smoothing=SMOOTHING).mean().backward()
        opt.second_step(zero_grad=True)
        traj.append(flat(model))
    return traj


def main() -> None:
    args = reference_args(__doc__, "bisam_reference.npz", "LIONS-EPFL/BiSAM")
    use_checkout(args.checkout)
    torch.set_default_dtype(torch.float64)
    X, y = make_data()
    save(args.out, args.checkout, X=X, y=y, init_params=flat(make_mlp(make_init())),
         batches=make_batches(BATCH), params_log=run("log"), params_tanh=run("tanh"),
         hyper=[RHO, MU, ALPHA, LR, MOMENTUM, WD, SMOOTHING])


if __name__ == "__main__":
    main()
