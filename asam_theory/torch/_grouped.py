"""Small helpers shared by the per-sample peers (BiSAM, AUSAM): gradients by param group."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def grouped(param_groups: list[dict], grads: Sequence[torch.Tensor | None],
            ) -> list[tuple[dict, torch.nn.Parameter, torch.Tensor]]:
    """``(group, p, grad)`` for every parameter in group order whose gradient is not None
    (``grads`` follows the flattened order of ``param_groups``)."""
    out = []
    i = 0
    for group in param_groups:
        for p in group["params"]:
            g = grads[i]
            i += 1
            if g is not None:
                out.append((group, p, g))
    if i != len(grads):
        raise ValueError(f"grads has {len(grads)} entries for {i} parameters")
    return out


def normalized_perturbation(triples, norm: torch.Tensor, eps: float,
                            ) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
    """``(p, ρ_group g / (‖g‖ + eps))`` as davda54/sam's ``first_step``."""
    return [(p, g * (group["rho"] / (norm + eps)).to(g)) for group, p, g in triples]
