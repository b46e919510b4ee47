"""BatchNorm after SAM-type training: recompute the running statistics at the final weights.

Every optimizer of :mod:`asam_theory.torch` leaves BatchNorm running statistics to the
unperturbed passes (:func:`~asam_theory.torch.bn_frozen`), and AsyncSAM's and SAMPa's replicas
never update them, so the statistics are an average over weights of past steps.  Before
evaluation they are recomputed at the final weights: a cumulative average over train-mode
forward passes on training inputs (``momentum = None``), as ``torch.optim.swa_utils.update_bn``
does for averaged weights (Izmailov et al., UAI 2018, arXiv 1803.05407).
"""

from __future__ import annotations

import torch
from torch import nn

from asam_theory.torch._common import batchnorm_modules
from asam_theory.validation import check_int

__all__ = ["recalibrate_bn"]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> None:
    """Recompute BatchNorm running statistics at the current weights (cumulative average over
    unperturbed train-mode forward passes on ``x`` in batches of ``batch_size``; as
    ``torch.optim.swa_utils.update_bn``).  The modules' momentum and the model's train/eval
    mode are restored; a model without BatchNorm is left untouched."""
    batch_size = check_int("batch_size", batch_size, low=1)
    bns = batchnorm_modules(model)
    if not bns:
        return
    saved = [(m, m.momentum) for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for i in range(0, len(x), batch_size):
        model(x[i : i + batch_size])
    for m, mom in saved:
        m.momentum = mom
    model.train(was_training)
