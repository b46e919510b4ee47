r"""Flatness of a trained network: top Hessian eigenvalue, Hessian trace, m-sharpness.

Three numbers for the weights :math:`w` a method ends at, each of a loss that is a fixed
function of :math:`w` (the model in eval mode: BatchNorm normalises with its running
statistics, recomputed at :math:`w` beforehand by the caller):

* **top eigenvalue** :math:`\lambda_{\max}(\nabla^2 L(w))` of the training loss — the EDGE
  claim's Lanczos (:func:`asam_theory.experiments.sharpness.top_eigenvalue`; Cohen et al.,
  ICLR 2021, arXiv 2103.00065);
* **Hessian trace** :math:`\operatorname{tr}\nabla^2L(w)` by Hutchinson's estimator
  (Hutchinson, *Commun. Stat. Simul. Comput.* 19(2), 1990) with Rademacher probes
  :math:`v\in\{-1,1\}^n`: :math:`\hat T=\frac1N\sum_{j=1}^N v_j^\top\nabla^2L\,v_j`, unbiased,
  with per-probe variance :math:`2(\|H\|_F^2-\sum_iH_{ii}^2)` (Avron & Toledo, J. ACM 58(2),
  2011) and the reported standard error :math:`s/\sqrt N` (:math:`s` the sample standard
  deviation of the :math:`N` products);
* **m-sharpness** (Foret et al., ICLR 2021, arXiv 2010.01412, §4; Andriushchenko & Flammarion,
  ICML 2022, arXiv 2206.06232, eq. (2)): the worst-case loss increase within radius ρ, averaged
  over held-out batches :math:`M_1,\dots,M_K` of size m (consecutive disjoint slices of a
  seeded permutation of the held-out set), each worst case approximated by one normalised
  gradient-ascent step — exactly what is computed:

  .. math::
      S_m(w)=\frac1K\sum_{k=1}^K\Big[L_{M_k}\big(w+\rho\,g_k/\|g_k\|\big)-L_{M_k}(w)\Big],
      \qquad g_k=\nabla L_{M_k}(w),

  reported with its standard error over the K batches.  On a quadratic
  :math:`L_M(w)=\tfrac12w^\top H_Mw-b_M^\top w` the bracket is
  :math:`\rho\|g\|+\tfrac{\rho^2}{2}g^\top H_Mg/\|g\|^2` exactly.

Hessian-vector products are forward-over-reverse (``torch.func.jvp`` of ``torch.func.grad``,
Pearlmutter's trick), batched over probes with ``torch.func.vmap``.  Why not
``curvlinops-for-pytorch`` (3.0.1, the usual library for Hessian operators): it installs
``backpack-for-pytorch``, which requires ``torchvision`` (a second binary pinned to one torch
build), ``unfoldNd``, ``einconv`` and ``linear_operator`` — for a product that is three lines of
``torch.func`` here; :mod:`asam_theory.experiments.sharpness` made the same choice for the
eigenvalue after timing both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vmap
from torch.nn import functional as F

from asam_theory.experiments.sharpness import top_eigenvalue
from asam_theory.torch._common import NORM_EPS
from asam_theory.validation import check_int, check_nonnegative

__all__ = ["Flatness", "flatness", "functional_loss", "hutchinson_trace", "m_sharpness"]

#: a loss as a function of the parameters (a tuple of tensors) and of a batch
BatchLoss = Callable[[tuple[torch.Tensor, ...], object], torch.Tensor]


def functional_loss(model: nn.Module) -> tuple[BatchLoss, tuple[torch.Tensor, ...]]:
    """``(loss(params, (x, y)), params)``: mean cross-entropy of ``model`` with the given
    parameters (``functional_call``; buffers such as BatchNorm's running statistics are the
    module's own) and the model's trainable parameters, detached."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]

    def loss(params: tuple[torch.Tensor, ...], batch: object) -> torch.Tensor:
        x, y = batch  # type: ignore[misc]
        return F.cross_entropy(functional_call(model, dict(zip(names, params, strict=True)),
                                               (x,)), y)

    params = tuple(p.detach() for n, p in model.named_parameters() if p.requires_grad)
    return loss, params


def _rademacher(count: int, n: int, generator: torch.Generator,
                dtype: torch.dtype) -> torch.Tensor:
    """``count`` Rademacher vectors of length ``n`` (entries ±1 with probability ½), rows."""
    bits = torch.randint(0, 2, (count, n), generator=generator)
    return (2 * bits - 1).to(dtype)


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat(v: torch.Tensor, like: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    out, k = [], 0
    for p in like:
        out.append(v[k:k + p.numel()].view_as(p))
        k += p.numel()
    return tuple(out)


def hutchinson_trace(loss: Callable[[tuple[torch.Tensor, ...]], torch.Tensor],
                     params: Sequence[torch.Tensor], probes: int = 100, seed: int = 0,
                     chunk: int = 25) -> dict[str, float]:
    r"""Hutchinson's estimate of :math:`\operatorname{tr}\nabla^2` ``loss`` at ``params``.

    ``loss(params)`` is the (full-data) loss as a function of a tuple of tensors; ``probes``
    Rademacher vectors drawn from ``seed`` (the same seed, the same probes); the Hessian-vector
    products run ``chunk`` at a time under ``vmap``.  Returns ``{"trace", "se", "probes",
    "sd"}``: the mean of :math:`v_j^\top Hv_j`, its standard error :math:`s/\sqrt N` and the
    per-probe standard deviation :math:`s`."""
    probes = check_int("probes", probes, low=2)
    chunk = check_int("chunk", chunk, low=1)
    params = tuple(params)
    n = sum(p.numel() for p in params)
    gen = torch.Generator().manual_seed(int(seed))
    grad_fn = grad(lambda ps: loss(ps))

    def quad(v: torch.Tensor) -> torch.Tensor:
        tangent = _unflat(v, params)
        _, hv = jvp(grad_fn, (params,), (tangent,))
        return (_flat(hv) * v).sum()

    values = []
    for start in range(0, probes, chunk):
        vs = _rademacher(min(chunk, probes - start), n, gen, params[0].dtype)
        values.append(vmap(quad)(vs).detach().double())
    samples = torch.cat(values).numpy()
    sd = float(samples.std(ddof=1))
    return {"trace": float(samples.mean()), "se": sd / math.sqrt(probes), "probes": probes,
            "sd": sd}


def m_sharpness(loss: BatchLoss, params: Sequence[torch.Tensor], batches: Sequence[object],
                rho: float) -> dict[str, float]:
    r"""The one-step m-sharpness :math:`S_m` of the module docstring over ``batches`` (each a
    batch of size m, as ``loss`` takes it): ``{"m_sharpness", "se", "batches",
    "per_batch"}``."""
    rho = check_nonnegative("rho", rho)
    if not batches:
        raise ValueError("batches must hold at least one batch")
    params = tuple(p.detach() for p in params)
    rises = []
    for batch in batches:
        leaves = tuple(p.clone().requires_grad_(True) for p in params)
        with torch.enable_grad():
            value = loss(leaves, batch)
            g = torch.autograd.grad(value, leaves)
        norm = torch.sqrt(sum((gi.double() ** 2).sum() for gi in g))
        scale = rho / (float(norm) + NORM_EPS)
        with torch.no_grad():
            up = tuple(p + scale * gi for p, gi in zip(params, g, strict=True))
            rises.append(float(loss(up, batch)) - float(value.detach()))
    arr = np.asarray(rises)
    se = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else math.nan
    return {"m_sharpness": float(arr.mean()), "se": se, "batches": int(arr.size),
            "per_batch": rises}


def held_out_batches(x: torch.Tensor, y: torch.Tensor, m: int, seed: int = 0,
                     max_batches: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Disjoint batches of size ``m``: consecutive slices of a permutation drawn from ``seed``
    (the last incomplete slice dropped; at most ``max_batches``)."""
    m = check_int("m", m, low=1, high=len(y))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(int(seed)))
    k = len(y) // m if max_batches is None else min(len(y) // m,
                                                     check_int("max_batches", max_batches, low=1))
    return [(x[perm[i * m:(i + 1) * m]], y[perm[i * m:(i + 1) * m]]) for i in range(k)]


@dataclass(frozen=True)
class Flatness:
    """The three measures of one trained model (module docstring); ``m_sharpness`` maps m to
    ``(value, standard error)``."""

    lambda_max: float
    trace: float
    trace_se: float
    m_sharpness: dict[int, tuple[float, float]]
    probes: int
    rho: float

    def as_dict(self) -> dict:
        out = asdict(self)
        out["m_sharpness"] = {str(m): list(v) for m, v in self.m_sharpness.items()}
        return out


def flatness(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
             held_out: tuple[torch.Tensor, torch.Tensor], *, rho: float,
             ms: Sequence[int] = (16, 64), probes: int = 100, seed: int = 0,
             max_batches: int | None = 64, train_examples: int | None = None,
             lanczos_tol: float = 1e-6, lanczos_ncv: int | None = None) -> Flatness:
    """Top eigenvalue and Hutchinson trace of the loss on ``train`` (all of it, or the first
    ``train_examples`` of a permutation drawn from ``seed``: each Hessian-vector product costs
    about four passes over them), m-sharpness at radius ``rho`` on disjoint batches of each
    size in ``ms`` from ``held_out``.  ``lanczos_tol`` and ``lanczos_ncv`` go to
    :func:`~asam_theory.experiments.sharpness.top_eigenvalue` (a smaller Lanczos basis, e.g.
    6, needs fewer products: on the digits CNN 7 instead of 21, the same eigenvalue to 1e-5
    relative).  The model is put in eval mode for the measurement
    (BatchNorm's running statistics, which the caller recomputes at the final weights) and
    restored to its mode afterwards."""
    was = model.training
    model.eval()
    try:
        loss, params = functional_loss(model)
        full = (train[0], train[1])
        if train_examples is not None:
            (full,) = held_out_batches(*full, train_examples, seed + 1, max_batches=1)
        live = [p for p in model.parameters() if p.requires_grad]
        lam = top_eigenvalue(lambda: loss(tuple(live), full), live, tol=lanczos_tol,
                             ncv=lanczos_ncv).value
        tr = hutchinson_trace(lambda ps: loss(ps, full), params, probes=probes, seed=seed)
        sharp = {}
        for m in ms:
            r = m_sharpness(loss, params, held_out_batches(*held_out, m, seed, max_batches),
                            rho)
            sharp[int(m)] = (r["m_sharpness"], r["se"])
    finally:
        model.train(was)
    return Flatness(lambda_max=lam, trace=tr["trace"], trace_se=tr["se"], m_sharpness=sharp,
                    probes=probes, rho=float(rho))
