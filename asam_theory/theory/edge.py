r"""Edges of stability: the largest curvature at which each method is linearly stable at its lr.

Source: ``docs/theory.md`` §2.2 (GD, USAM, SAM) and §2.4 (stale USAM for every τ; stale SAM),
proved in ``proofs/edge.py``; the stability polynomial is the one of
:mod:`asam_theory.theory.exact`.

Along an eigenvector of the Hessian with eigenvalue :math:`\lambda`, a full-batch method
linearised at a point is a scalar linear recursion; its *edge* is the largest :math:`\lambda^*`
such that the recursion is stable for every :math:`\lambda\in(0,\lambda^*)`. Cohen et al.
(*Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability*, ICLR 2021,
arXiv 2103.00065) observe that full-batch GD on networks raises the top Hessian eigenvalue
(progressive sharpening) until it reaches :math:`2/\eta` and then hovers there; the functions
below give the same edge for the SAM family.

* GD: :math:`1-\eta\lambda` reaches :math:`-1` at :math:`\lambda^*=2/\eta`.
* USAM (:math:`\epsilon=\rho\nabla f`): :math:`1-\eta\lambda(1+\rho\lambda)=-1` at
  :math:`\lambda^*_0=\frac{\sqrt{1+8\rho/\eta}-1}{2\rho}` (Agarwala & Dauphin, ICML 2023,
  arXiv 2302.08692, describe the same stabilisation).
* SAM (:math:`\epsilon=\rho\nabla f/\Vert\nabla f\Vert`), with the normalisation frozen at the
  current gradient norm: USAM's edge with :math:`\rho\to\rho/\Vert\nabla f\Vert`,
  :math:`\lambda^*=\frac{\Vert g\Vert}{2\rho}\big(\sqrt{1+8\rho/(\eta\Vert g\Vert)}-1\big)`
  (Long & Bartlett, arXiv 2309.12488, who observe real runs at it).
* Stale USAM (:math:`\epsilon_t=\rho\nabla f(x_{t-\tau})`): the recursion
  :math:`x_{t+1}=(1-\eta\lambda)x_t-\eta\rho\lambda^2x_{t-\tau}` with characteristic polynomial
  :math:`p(z)=z^{\tau+1}-(1-a)z^\tau+ka^2`, :math:`a=\eta\lambda`, :math:`k=\rho/\eta`. The edge
  is :math:`\lambda^*_\tau=a^*_\tau(k)/\eta` with :math:`a^*_\tau(k)` the first :math:`a>0` at
  which a root reaches the unit circle: the inverse of :func:`~asam_theory.theory.exact.
  max_stable_lr` in the sense ``max_stable_lr([edge], rho, tau) == lr``. Proved closed forms
  (``proofs/edge.py``), for :math:`\rho\le\eta` (:math:`k\le1`):

  - every τ: :math:`\lambda^*_\tau\ge\lambda^*_0` (staleness never lowers USAM's edge);
  - even τ: :math:`\lambda^*_\tau=\lambda^*_0` (a root leaves through :math:`z=-1`);
  - odd τ: :math:`\lambda^*_\tau>\lambda^*_0`; for τ = 1
    :math:`a^*_1=\frac{1-\sqrt{1-8k}}{2k}` if :math:`k\le1/9` (through :math:`z=-1`), else
    :math:`a^*_1=1/\sqrt k` (a complex pair with :math:`|z|^2=ka^2=1`).

  Other cases (odd τ ≥ 3, or :math:`\rho>\eta`) are solved numerically: the spectral radius of
  the companion matrix on a grid of :math:`a\in(0,\bar a]`, :math:`\bar a=\min(1/\sqrt k,\tau+2)`
  (beyond :math:`1/\sqrt k` the product of the roots exceeds 1 in modulus, beyond
  :math:`\tau+2` their sum does), refined by bisection.
* Stale normalised SAM: stale USAM's edge with :math:`\rho\to\rho/\Vert\nabla f\Vert`. This is a
  **heuristic** (the normalisation is frozen at one gradient norm, as for SAM's edge above; the
  stale gradient's norm differs from the current one), not proved.

Full-batch runs test the staleness part of AsyncSAM only: AsyncSAM with its own ascent batch is
a stochastic method, whose minibatch noise these edges do not describe.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from asam_theory.theory.exact import _radii_from_coeffs
from asam_theory.validation import check_choice, check_int, check_nonnegative, check_positive

__all__ = [
    "EDGE_METHODS",
    "EdgeMethod",
    "edge",
    "gd_edge",
    "sam_edge",
    "stale_sam_edge",
    "stale_usam_edge",
    "stale_usam_edge_dimensionless",
    "usam_edge",
]

EdgeMethod = Literal["gd", "usam", "sam", "stale_usam", "stale_sam"]
EDGE_METHODS = ("gd", "usam", "sam", "stale_usam", "stale_sam")

#: grid points of the numerical edge search before bisection
_GRID = 4096


def gd_edge(lr: float) -> float:
    r"""Gradient descent: :math:`2/\eta`."""
    return 2.0 / check_positive("lr", lr)


def _usam_a(k: float) -> float:
    r""":math:`a^*_0(k)=(\sqrt{1+8k}-1)/(2k)`, the root of :math:`a+ka^2=2` (:math:`2` at k=0),
    written as :math:`4/(1+\sqrt{1+8k})` so that small k loses no digits."""
    return 4.0 / (1.0 + math.sqrt(1.0 + 8.0 * k))


def usam_edge(lr: float, rho: float) -> float:
    r"""USAM: :math:`\lambda^*_0=\frac{\sqrt{1+8\rho/\eta}-1}{2\rho}` (root of
    :math:`\eta\lambda(1+\rho\lambda)=2`; :math:`2/\eta` at :math:`\rho=0`)."""
    lr = check_positive("lr", lr)
    rho = check_nonnegative("rho", rho)
    return _usam_a(rho / lr) / lr


def sam_edge(lr: float, rho: float, grad_norm: float) -> float:
    r"""SAM with the normalisation frozen at :math:`\Vert\nabla f\Vert` = ``grad_norm``:
    :math:`\frac{\Vert g\Vert}{2\rho}\big(\sqrt{1+8\rho/(\eta\Vert g\Vert)}-1\big)<2/\eta`."""
    lr = check_positive("lr", lr)
    rho = check_nonnegative("rho", rho)
    grad_norm = check_positive("grad_norm", grad_norm)
    return _usam_a(rho / (lr * grad_norm)) / lr


def _tau1_a(k: float) -> float:
    r"""τ = 1: :math:`(1-\sqrt{1-8k})/(2k)` for :math:`k\le1/9` (written as
    :math:`4/(1+\sqrt{1-8k})`), else :math:`1/\sqrt k`; valid for every k > 0 (the Jury
    conditions :math:`ka^2<1`, :math:`ka^2-a+2>0` of the quadratic)."""
    if k <= 1.0 / 9.0:
        return 4.0 / (1.0 + math.sqrt(1.0 - 8.0 * k))
    return 1.0 / math.sqrt(k)


def _numeric_a(k: float, tau: int) -> float:
    """First a > 0 with spectral radius >= 1 (grid over (0, a_max], then bisection)."""
    a_max = min(1.0 / math.sqrt(k), tau + 2.0) * (1.0 + 1e-9)
    grid = np.linspace(a_max / _GRID, a_max, _GRID)
    radii = _radii_from_coeffs(grid, k * grid**2, 1.0, tau)
    j = int(np.argmax(radii >= 1.0))
    if radii[j] < 1.0:  # pragma: no cover - a_max is unstable by the bound above
        raise ArithmeticError(f"no instability found below a = {a_max} (k={k}, tau={tau})")
    lo = 0.0 if j == 0 else float(grid[j - 1])
    hi = float(grid[j])
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if float(_radii_from_coeffs(mid, k * mid**2, 1.0, tau)) < 1.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 4e-16 * hi:
            break
    return 0.5 * (lo + hi)


def stale_usam_edge_dimensionless(k: float, tau: int) -> float:
    r""":math:`a^*_\tau(k)=\eta\lambda^*_\tau` as a function of :math:`k=\rho/\eta` and τ
    (closed forms where proved, else the numerical search; module docstring)."""
    k = check_nonnegative("k", k)
    tau = check_int("tau", tau, low=0)
    if k == 0.0:
        return 2.0
    if tau == 0 or (tau % 2 == 0 and k <= 1.0):
        return _usam_a(k)
    if tau == 1:
        return _tau1_a(k)
    return _numeric_a(k, tau)


def stale_usam_edge(lr: float, rho: float, tau: int) -> float:
    r"""Stale USAM (perturbation :math:`\rho\nabla f(x_{t-\tau})`): the largest :math:`\lambda^*`
    with the linear recursion stable for every :math:`\lambda\in(0,\lambda^*)` at step size
    ``lr``; ``max_stable_lr([stale_usam_edge(lr, rho, tau)], rho, tau) == lr``. τ = 0 is USAM."""
    lr = check_positive("lr", lr)
    rho = check_nonnegative("rho", rho)
    tau = check_int("tau", tau, low=0)
    return stale_usam_edge_dimensionless(rho / lr, tau) / lr


def stale_sam_edge(lr: float, rho: float, tau: int, grad_norm: float) -> float:
    r"""Stale normalised SAM, **heuristic**: stale USAM's edge with
    :math:`\rho\to\rho/\Vert\nabla f\Vert` (``grad_norm``). τ = 0 is :func:`sam_edge`."""
    grad_norm = check_positive("grad_norm", grad_norm)
    return stale_usam_edge(lr, check_nonnegative("rho", rho) / grad_norm, tau)


def edge(method: EdgeMethod, lr: float, rho: float = 0.0, tau: int = 0,
         grad_norm: float | None = None) -> float:
    """The edge of ``method`` (one of :data:`EDGE_METHODS`); ``grad_norm`` is required by the
    normalised methods ``"sam"`` and ``"stale_sam"``, ``tau`` is used by the stale ones."""
    method = check_choice("method", method, EDGE_METHODS)
    if method == "gd":
        return gd_edge(lr)
    if method == "usam":
        return usam_edge(lr, rho)
    if method == "stale_usam":
        return stale_usam_edge(lr, rho, tau)
    if grad_norm is None:
        raise ValueError(f"grad_norm must be a positive number for method={method!r}, got None")
    if method == "sam":
        return sam_edge(lr, rho, grad_norm)
    return stale_sam_edge(lr, rho, tau, grad_norm)
