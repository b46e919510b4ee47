r"""Our theorems T1-T4 as functions of their constants.

Every function states its theorem, assumptions and step-size condition, and names the
module of :mod:`proofs` that proves it; ``tests/test_bounds.py`` checks each function
against the final sympy expression of its proof on random constants, so statement and
proof cannot drift apart.  Invalid inputs raise ``ValueError`` naming the parameter and
its allowed range.

Setting (``docs/architecture.md`` vocabulary): ``lr`` = :math:`\eta`, ``rho`` = :math:`\rho`,
``tau`` = :math:`\tau`, ``batch_size`` = b, ``ascent_batch_size`` = b', ``L``, ``mu``,
``sigma2_total`` = :math:`\sigma^2`, ``steps`` = T, ``delta`` = :math:`\Delta = f(w_0) - f^*`.
Noise: unbiased minibatch gradients with :math:`\mathbb E\|\nabla f_B(x)-\nabla f(x)\|^2
\le \sigma^2/b` at every x.  :math:`\sigma^2` is the *total* variance of one sample's
gradient, hence the name ``sigma2_total``: for additive noise :math:`\mathcal N(0,
\tfrac{s}{b}I_d)` it is :math:`d\,s`, i.e. ``problem.sigma2_total`` = ``dim *
problem.sigma2_per_coord`` (:mod:`asam_theory.problems`).  The former keyword ``sigma2=`` is
refused with a ``TypeError`` that names this conversion (it was silently confused with the
problems' per-coordinate ``sigma2``, which gives a bound d times too small); positional
arguments are unchanged.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asam_theory.validation import check_int, check_nonnegative, check_positive, check_real

__all__ = [
    "SHARPENED",
    "THEOREMS",
    "Theorem",
    "penalty_remainder_bound",
    "sam_two_cycle",
    "stale_angle_bound",
    "stale_direction_bound",
    "stale_fidelity_bound",
    "stale_fidelity_drift_bound",
    "t1_bound",
    "t1_constants",
    "t1_sharp_bound",
    "t1_sharp_witness",
    "usam_quadratic_witness",
    "t2_bound",
    "t2_sharp_bound",
    "t3_bound",
]


@dataclass(frozen=True)
class Theorem:
    """A theorem as data, for the report."""

    id: str
    statement: str
    assumptions: tuple[str, ...]
    step_size_condition: str
    proof_module: str
    proof_ids: tuple[str, ...] = field(default_factory=tuple)


# ----------------------------------------------------------------- validation


_SIGMA2_HINT = (
    "takes sigma2_total= (the theorems' sigma^2 = E|grad f_B - grad f|^2 at b = 1, the total "
    "over coordinates: problem.sigma2_total = dim * problem.sigma2_per_coord for additive "
    "noise), not sigma2=; a problem's per-coordinate variance passed as sigma2_total gives a "
    "bound d times too small")


def _total_noise(fn: Callable[..., float]) -> Callable[..., float]:
    """Refuse the former keyword ``sigma2=`` with the conversion (``TypeError``, as for any
    unknown keyword); everything else is passed through."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> float:
        if "sigma2" in kwargs:
            raise TypeError(f"{fn.__name__} {_SIGMA2_HINT}; got sigma2={kwargs['sigma2']!r}")
        return fn(*args, **kwargs)

    return wrapper


def _lr(lr: float, L: float) -> float:
    lr = check_positive("lr", lr)
    if lr > 1.0 / L:
        raise ValueError(f"lr must lie in (0, 1/L] = (0, {1.0 / L:.6g}], got {lr!r}")
    return lr


# ------------------------------------------------------------------------ T1


@_total_noise
def t1_constants(
    L: float,
    rho: float,
    lr: float,
    sigma2_total: float,
    batch_size: float,
    ascent_batch_size: float | None = None,
    same_batch: bool = False,
) -> tuple[float, float, float]:
    r"""Constants ``(A, B, C)`` of T1: ``(1/T) sum E|grad f(w_t)|^2 <= A Delta/(lr T) + B + C``.

    * independent perturbation (``tau >= 1``, or its own ascent batch): ``A = 2``,
      ``B = L^2 rho^2``, ``C = L lr sigma2_total / b``;
    * same batch (``tau = 0`` SAM, perturbation computed on the descent batch; needs every
      minibatch loss L-smooth): ``A = 2``, ``B = (1 + L lr) L^2 rho^2``,
      ``C = 2 L lr sigma2_total / b``.

    ``ascent_batch_size`` (b') does not enter: the normalised perturbation has norm
    ``rho`` whatever batch it came from, and the proof uses nothing else about it.  It is
    accepted (and validated) so callers can pass their configuration unchanged.
    Step size ``0 < lr <= 1/L``.  Proof: ``proofs/t1_async_sam.py``.
    """
    L, rho = check_positive("L", L), check_nonnegative("rho", rho)
    lr = _lr(lr, L)
    sigma2_total = check_nonnegative("sigma2_total", sigma2_total)
    b = check_positive("batch_size", batch_size)
    if ascent_batch_size is not None:
        check_positive("ascent_batch_size", ascent_batch_size)
    if same_batch:
        return 2.0, (1.0 + L * lr) * L**2 * rho**2, 2.0 * L * lr * sigma2_total / b
    return 2.0, L**2 * rho**2, L * lr * sigma2_total / b


@_total_noise
def t1_bound(
    delta: float,
    L: float,
    rho: float,
    lr: float,
    steps: int,
    sigma2_total: float = 0.0,
    batch_size: float = 1.0,
    ascent_batch_size: float | None = None,
    same_batch: bool = False,
) -> float:
    r"""T1 (normalised AsyncSAM, any staleness tau >= 0, L-smooth nonconvex f >= f*).

    .. math::
        \frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le\frac{2\Delta}{\eta T}+L^2\rho^2
        +\frac{L\eta\sigma^2}{b}\qquad(0<\eta\le 1/L)

    when the perturbation is independent of the descent noise
    (:math:`\mathbb E[\nabla f_B(w+\epsilon)\mid w,\epsilon]=\nabla f(w+\epsilon)`: tau >= 1,
    or tau >= 0 with its own ascent batch), and, for tau = 0 SAM on the descent batch,
    :math:`\frac{2\Delta}{\eta T}+(1+L\eta)L^2\rho^2+\frac{2L\eta\sigma^2}{b}`
    (``same_batch=True``; Young's inequality pays for the correlation ``<e, zeta>``).
    Deterministic case ``sigma2_total = 0``: :math:`2\Delta/(\eta T)+L^2\rho^2`; the floor
    :math:`L^2\rho^2` is attained at :math:`\eta=1/L` (see :func:`sam_two_cycle`).
    Proofs: ``proofs/t1_async_sam.py`` (``T1``, ``T1-same-batch``), ``proofs/tightness.py``.
    """
    delta = check_nonnegative("delta", delta)
    T = check_int("steps", steps, low=1)
    A, B, C = t1_constants(L, rho, lr, sigma2_total, batch_size, ascent_batch_size, same_batch)
    return A * delta / (float(lr) * T) + B + C


def sam_two_cycle(eigenvalues: np.ndarray | list[float], lr: float, rho: float) -> dict:
    r"""The 2-cycle of normalised SAM on :math:`f=\tfrac12 x^\top Hx` (docs/theory.md §2.1).

    With :math:`\lambda_1` the largest eigenvalue (simple) and :math:`0<\eta\lambda_1<2`,
    the orbit converges to :math:`\pm a v_1` with amplitude
    :math:`a=\eta\rho\lambda_1/(2-\eta\lambda_1)`; on it :math:`\|\nabla f\|^2=(\lambda_1 a)^2`
    and :math:`f=\tfrac12\lambda_1 a^2`.  At :math:`\eta=1/\lambda_1=1/L`:
    :math:`\|\nabla f\|^2=L^2\rho^2`, T1's deterministic floor, so it is attained.
    Returns ``{"amplitude", "grad_norm_sq", "loss", "t1_floor", "attains_floor"}``.
    Proof: ``proofs/tightness.py``.
    """
    lam = np.asarray(eigenvalues, dtype=float)
    if lam.ndim != 1 or lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError("eigenvalues must be a nonempty 1-D array of finite numbers > 0")
    lam1 = float(lam.max())
    lr, rho = check_positive("lr", lr), check_positive("rho", rho)
    if lr * lam1 >= 2:
        raise ValueError(f"lr must lie in (0, 2/lambda_1) = (0, {2 / lam1:.6g}), got {lr!r}")
    amp = lr * rho * lam1 / (2 - lr * lam1)
    g2 = (lam1 * amp) ** 2
    floor = lam1**2 * rho**2
    return {
        "amplitude": amp,
        "grad_norm_sq": g2,
        "loss": 0.5 * lam1 * amp**2,
        "t1_floor": floor,
        # relative tolerance 1e-12: the two are equal in exact arithmetic at lr = 1/L
        "attains_floor": bool(abs(g2 - floor) <= 1e-12 * floor),
    }


@_total_noise
def t1_sharp_bound(
    delta: float,
    L: float,
    rho: float,
    lr: float,
    steps: int,
    sigma2_total: float = 0.0,
    batch_size: float = 1.0,
    weight: float | None = None,
) -> float:
    r"""T1-sharp (T1's setting: any perturbation :math:`\|\epsilon_t\|\le\rho` independent of
    the descent noise, L-smooth f >= f*, :math:`0<\eta\le1/L`), sharpened where performance
    estimation shows T1 loose (``asam_theory.theory.pep``).  With :math:`c=L\eta`,
    :math:`A=1-\frac c2-\frac{(1-c)a}2`, :math:`B=\frac{1-c}{2a}+\frac c2`, for every
    :math:`a\in(0,1]`:

    .. math::
        \frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le\frac1A\Big[\frac{\Delta}{\eta T}
        +\Big(1-\frac1T\Big)\Big(BL^2\rho^2+\frac{L\eta\sigma^2}{2b}\Big)\Big].

    ``weight`` = a; ``None`` takes the minimising :math:`a\in(0,1]` (a root of a quadratic;
    where the ``B`` term vanishes, T = 1 or rho = 0, the infimum :math:`a\to0`, i.e.
    :math:`A=1-c/2`).  ``a = 1`` is T1 less :math:`(L^2\rho^2+L\eta\sigma^2/b)/T`; at
    :math:`\eta=1/L` the deterministic bound :math:`\frac{2\Delta}{\eta T}+(1-\frac1T)L^2\rho^2`
    is attained (:func:`t1_sharp_witness`).  Proof: ``proofs/t1_sharp.py``.
    """
    delta = check_nonnegative("delta", delta)
    T = check_int("steps", steps, low=1)
    L, rho = check_positive("L", L), check_nonnegative("rho", rho)
    lr = _lr(lr, L)
    sigma2_total = check_nonnegative("sigma2_total", sigma2_total)
    b = check_positive("batch_size", batch_size)
    c = min(L * lr, 1.0)
    s = 1.0 - 1.0 / T
    R, N, D = L**2 * rho**2, L * lr * sigma2_total / (2 * b), delta / (lr * T)
    K, M = s * (1 - c) * R / 2, s * (c * R / 2 + N)
    P, Q = 1 - c / 2, (1 - c) / 2
    if weight is not None:
        a = check_real("weight", weight, low=0.0, high=1.0, low_open=True)
        return (D + K / a + M) / (P - Q * a)
    if K == 0:  # the B term vanishes: infimum over a -> 0 (Q = 0: every a gives the same)
        return (D + M) / P
    if D + M == 0:
        return K + M / P if Q == 0 else (K + M) / (P - Q)
    a = (-K * Q + math.sqrt((K * Q) ** 2 + Q * (D + M) * K * P)) / (Q * (D + M))
    a = min(a, 1.0)
    return (D + K / a + M) / (P - Q * a)


def t1_sharp_witness(
    delta: float, L: float, rho: float, steps: int, lr: float | None = None
) -> dict:
    r"""The function and perturbations attaining T1-sharp (and the PEP worst case of SAM with
    an adversarial :math:`\|\epsilon_t\|\le\rho`) at :math:`\eta=1/L`: :math:`f=\frac L2x^2`
    in 1-D, :math:`w_0=\sqrt{2\Delta/L}`, :math:`\epsilon_t=-\rho`.  The first step lands on
    :math:`w_1=-\epsilon_0=\rho` (at :math:`\eta=1/L`, :math:`w_{t+1}=-\epsilon_t`), where the
    perturbed gradient vanishes and the iterate stays: :math:`\|\nabla f(w_0)\|^2=2L\Delta`,
    :math:`\|\nabla f(w_t)\|^2=L^2\rho^2` for t >= 1, so
    :math:`\frac1T\sum_{t<T}\|\nabla f(w_t)\|^2=\frac{2L\Delta}{T}+(1-\frac1T)L^2\rho^2`.
    With ``lr`` < 1/L (default 1/L) the same function and perturbations give a lower bound on
    the worst case (the iterate approaches :math:`\rho` geometrically).  Runs the T steps
    and returns ``{"avg_grad_sq", "bound", "delta"}`` (``bound`` = :func:`t1_sharp_bound`).
    """
    delta = check_nonnegative("delta", delta)
    L, rho = check_positive("L", L), check_nonnegative("rho", rho)
    T = check_int("steps", steps, low=1)
    lr = 1.0 / L if lr is None else _lr(lr, L)
    w = math.sqrt(2 * delta / L)
    total = 0.0
    for _ in range(T):
        total += (L * w) ** 2
        w = w - lr * L * (w - rho)  # gradient of f at w + eps, eps = -rho
    f0 = 0.5 * L * (2 * delta / L)
    return {"avg_grad_sq": total / T, "bound": t1_sharp_bound(delta, L, rho, lr, T),
            "delta": f0}


def usam_quadratic_witness(
    delta: float, L: float, rho: float, lr: float, steps: int, tau: int = 0
) -> float:
    r"""Stale USAM :math:`w_{t+1}=w_t-\eta\nabla f(w_t+\rho\nabla f(w_{t-\tau}))` on
    :math:`f=\frac L2x^2` from :math:`w_0=\sqrt{2\Delta/L}` (so
    :math:`\|\nabla f(w_0)\|^2=2L\Delta`, :math:`w_{t-\tau}:=w_0` for :math:`t<\tau`): returns
    :math:`\frac1T\sum_{t<T}\|\nabla f(w_t)\|^2`, a lower bound on the worst case of T2's
    measure.  For :math:`\tau=0`, :math:`\eta=1/L` it is
    :math:`\frac{2L\Delta}{T}\frac{1-(L\rho)^{2T}}{1-L^2\rho^2}`: T2's bound times
    :math:`1-(L\rho)^{2T}`, and the PEP worst case equals it (``asam_theory.claims.pep``).
    """
    delta = check_nonnegative("delta", delta)
    L, rho = check_positive("L", L), check_nonnegative("rho", rho)
    lr = _lr(lr, L)
    T, tau = check_int("steps", steps, low=1), check_int("tau", tau, low=0)
    ws = [math.sqrt(2 * delta / L)]
    total = 0.0
    for t in range(T):
        w = ws[t]
        total += (L * w) ** 2
        stale = ws[max(t - tau, 0)]
        ws.append(w - lr * L * (w + rho * L * stale))
    return total / T


# ------------------------------------------------------------------------ T2


@_total_noise
def t2_bound(
    delta: float,
    L: float,
    rho: float,
    lr: float,
    tau: int,
    steps: int,
    sigma2_total: float = 0.0,
    batch_size: float = 1.0,
    ascent_batch_size: float = 1.0,
) -> float:
    r"""T2 (stale USAM :math:`\epsilon_t=\rho g'_{t-\tau}`, own ascent batch b').

    .. math::
        \frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le\frac{1}{1-L^2\rho^2}\Big[
        \frac{2\Delta(1+\tau\eta L^3\rho^2)}{\eta T}+\frac{L^2\rho^2\sigma^2}{b'}
        +\frac{L\eta\sigma^2}{b}\Big]

    for :math:`0<\eta\le1/L` and :math:`0\le\rho<1/L`.  Staleness enters through
    :math:`\tau\eta L^3\rho^2` (the first tau steps reuse w_0 and
    :math:`\|\nabla f(w_0)\|^2\le2L\Delta`); b' through :math:`E\|g'\|^2\le
    \|\nabla f\|^2+\sigma^2/b'`.  In form ``A Delta/(eta T) + B + C``: ``A = 2(1 + tau eta
    L^3 rho^2)/(1 - L^2 rho^2)``, ``B = 0``, ``C = (L^2 rho^2 sigma2_total/b'
    + L eta sigma2_total/b)/(1 - L^2 rho^2)``.  With the ascent on the descent batch of step
    t - tau (tau >= 1) replace b' by b.  Proof: ``proofs/t2_stale_usam.py``.
    """
    delta = check_nonnegative("delta", delta)
    L, rho = check_positive("L", L), check_nonnegative("rho", rho)
    if rho * L >= 1:
        raise ValueError(f"rho must lie in [0, 1/L) = [0, {1.0 / L:.6g}), got {rho!r}")
    lr = _lr(lr, L)
    tau, T = check_int("tau", tau, low=0), check_int("steps", steps, low=1)
    sigma2_total = check_nonnegative("sigma2_total", sigma2_total)
    b = check_positive("batch_size", batch_size)
    bp = check_positive("ascent_batch_size", ascent_batch_size)
    kappa = 1 - L**2 * rho**2
    return (
        2 * delta * (1 + tau * lr * L**3 * rho**2) / (lr * T)
        + L**2 * rho**2 * sigma2_total / bp
        + L * lr * sigma2_total / b
    ) / kappa


@_total_noise
def t2_sharp_bound(
    delta: float,
    L: float,
    rho: float,
    lr: float,
    tau: int,
    steps: int,
    sigma2_total: float = 0.0,
    batch_size: float = 1.0,
    ascent_batch_size: float = 1.0,
    weight: float | None = None,
) -> float:
    r"""T2-sharp (T2's setting, stale USAM; :math:`0<\eta\le1/L`, :math:`0\le\rho<1/L`): T2's
    proof with Young's inequality on :math:`-\eta(1-L\eta)\langle g,e\rangle` instead of
    dropping the descent it carries.  With :math:`c=L\eta`, :math:`A=1-\frac c2-
    \frac{(1-c)a}2`, :math:`B=\frac{1-c}{2a}+\frac c2`, :math:`K=A-BL^2\rho^2>0`:

    .. math::
        \frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le\frac1K\Big[
        \frac{\Delta(1+2\tau\eta BL^3\rho^2)}{\eta T}+\frac{BL^2\rho^2\sigma^2}{b'}
        +\frac{L\eta\sigma^2}{2b}\Big].

    ``weight`` = a (``ValueError`` unless ``K > 0``); ``None`` minimises over the a in
    (0, 1] with K > 0 (bounded scalar minimisation; every a evaluated is admissible, so the
    result is a valid bound whatever the optimiser's accuracy).  ``a = 1`` is T2.
    Proof: ``proofs/t2_sharp.py``.
    """
    t2 = t2_bound(delta, L, rho, lr, tau, steps, sigma2_total, batch_size, ascent_batch_size)
    c, r2 = min(L * lr, 1.0), L**2 * rho**2
    T, b, bp = steps, batch_size, ascent_batch_size

    def value(a: float) -> float:
        A = 1 - c / 2 - (1 - c) * a / 2
        B = (1 - c) / (2 * a) + c / 2
        K = A - B * r2
        if K <= 0:
            return math.inf
        num = (delta * (1 + 2 * tau * lr * B * L * r2) / (lr * T) + B * r2 * sigma2_total / bp
               + L * lr * sigma2_total / (2 * b))
        return num / K

    if weight is not None:
        a = check_real("weight", weight, low=0.0, high=1.0, low_open=True)
        v = value(a)
        if not math.isfinite(v):
            raise ValueError(f"weight must make K = A - B L^2 rho^2 > 0, got {weight!r}")
        return v
    if c >= 1.0:
        return t2
    from scipy.optimize import minimize_scalar

    # K(a) > 0 on an interval around a = L rho (where K is largest) that contains 1
    lo, hi = 0.0, max(math.sqrt(r2), 1e-300)
    for _ in range(200):  # bisection for K(a) = 0 below L rho
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if not math.isfinite(value(mid)) else (lo, mid)
    res = minimize_scalar(value, bounds=(hi, 1.0), method="bounded",
                          options={"xatol": 1e-10})
    return min(float(res.fun), t2)


# ------------------------------------------------------------------------ T3


@_total_noise
def t3_bound(
    delta: float,
    L: float,
    mu: float,
    rho: float,
    lr: float,
    steps: int,
    sigma2_total: float = 0.0,
    batch_size: float = 1.0,
) -> float:
    r"""T3 (PL :math:`f-f^*\le\|\nabla f\|^2/(2\mu)`, normalised AsyncSAM, any tau,
    perturbation independent of the descent noise).

    .. math::
        \mathbb E f(w_T)-f^*\le(1-\eta\mu)^T\Delta+R,\qquad
        R=\frac{L^2\rho^2+L\eta\sigma^2/b}{2\mu}

    for :math:`0<\eta\le1/L` and :math:`\eta\mu<1` (``mu <= L`` always holds for an
    L-smooth PL function).  Proof: ``proofs/t3_pl.py``.
    """
    delta = check_nonnegative("delta", delta)
    L, mu, rho = check_positive("L", L), check_positive("mu", mu), check_nonnegative("rho", rho)
    if mu > L:
        raise ValueError(f"mu must lie in (0, L] = (0, {L:.6g}], got {mu!r}")
    lr = _lr(lr, L)
    if lr * mu >= 1:
        raise ValueError(f"lr must lie in (0, 1/mu) = (0, {1.0 / mu:.6g}), got {lr!r}")
    T = check_int("steps", steps, low=0)
    sigma2_total = check_nonnegative("sigma2_total", sigma2_total)
    b = check_positive("batch_size", batch_size)
    return (1 - lr * mu) ** T * delta + (L**2 * rho**2 + L * lr * sigma2_total / b) / (2 * mu)


# ------------------------------------------------------------------------ T4


def penalty_remainder_bound(M_H: float, rho: float) -> float:
    r"""T4(a): :math:`\nabla f(w+\rho v)=\nabla f(w)+\rho H(w)v+R`,
    :math:`\|R\|\le\frac{M_H}{2}\rho^2` for a unit v and an M_H-Lipschitz Hessian.
    Proof: ``proofs/t4_penalty.py``."""
    return check_nonnegative("M_H", M_H) * check_nonnegative("rho", rho) ** 2 / 2


def stale_fidelity_bound(L: float, rho: float, angle: float) -> float:
    r"""T4(b): :math:`\|\rho Hu_{t-\tau}-\rho Hu_t\|\le\rho L\|u_{t-\tau}-u_t\|
    =2\rho L\sin(\theta/2)`, ``angle`` = theta in [0, pi], ``|H| <= L``.
    Proof: ``proofs/t4_penalty.py``."""
    L, rho = check_positive("L", L), check_nonnegative("rho", rho)
    th = float(angle)
    if not (0 <= th <= math.pi):
        raise ValueError(f"angle must lie in [0, pi], got {angle!r}")
    return 2 * rho * L * math.sin(th / 2)


def stale_direction_bound(L: float, lr: float, tau: int, G: float, grad_norm: float) -> float:
    r"""T4(c,d): :math:`\|u_{t-\tau}-u_t\|\le\min\big(2,\frac{2L\eta\tau G}{\|g_t\|}\big)`
    (direction lemma :math:`\|a/\|a\|-b/\|b\|\|\le2\|a-b\|/\|a\|` and drift
    :math:`\|g_t-g_{t-\tau}\|\le L\eta\tau G`, G bounding every descent direction's norm;
    2 is the trivial bound for unit vectors).  Proof: ``proofs/t4_penalty.py``."""
    L, lr = check_positive("L", L), check_positive("lr", lr)
    tau, G = check_int("tau", tau, low=0), check_nonnegative("G", G)
    gn = check_positive("grad_norm", grad_norm)
    return min(2.0, 2 * L * lr * tau * G / gn)


def stale_angle_bound(L: float, lr: float, tau: int, G: float, grad_norm: float) -> float:
    r"""T4(d): the angle theta between u_{t-tau} and u_t satisfies
    :math:`\sin(\theta/2)\le L\eta\tau G/\|g_t\|`, i.e.
    :math:`\theta\le2\arcsin\min(1,L\eta\tau G/\|g_t\|)`.  Returns that bound on theta
    (radians).  Proof: ``proofs/t4_penalty.py``."""
    d = stale_direction_bound(L, lr, tau, G, grad_norm)
    return 2 * math.asin(min(1.0, d / 2))


def stale_fidelity_drift_bound(
    L: float, rho: float, lr: float, tau: int, G: float, grad_norm: float
) -> float:
    r"""T4: penalty-term loss :math:`\|\rho H(u_{t-\tau}-u_t)\|\le\rho L\min(2,
    2L\eta\tau G/\|g_t\|)`.  Proof: ``proofs/t4_penalty.py``."""
    L, rho = check_positive("L", L), check_nonnegative("rho", rho)
    return L * rho * stale_direction_bound(L, lr, tau, G, grad_norm)


# ----------------------------------------------------------------- registry

THEOREMS: dict[str, Theorem] = {
    "T1": Theorem(
        "T1",
        r"Normalised AsyncSAM ($\|\epsilon_t\|=\rho$, any $\tau\ge0$): "
        r"$\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le\frac{2\Delta}{\eta T}+L^2\rho^2"
        r"+\frac{L\eta\sigma^2}{b}$ for a perturbation independent of the descent noise; "
        r"$\frac{2\Delta}{\eta T}+(1+L\eta)L^2\rho^2+\frac{2L\eta\sigma^2}{b}$ for $\tau=0$ SAM on "
        r"the descent batch. $b'$ does not enter. The floor $L^2\rho^2$ is attained at "
        r"$\eta=1/L$ (SAM 2-cycle).",
        (
            r"$f$ $L$-smooth, $f\ge f^*$, $\Delta=f(w_0)-f^*$",
            r"unbiased minibatch gradients, $\mathbb E\|\nabla f_B-\nabla f\|^2\le\sigma^2/b$",
            r"same-batch case only: every minibatch loss $L$-smooth",
        ),
        r"$0<\eta\le 1/L$",
        "proofs/t1_async_sam.py",
        ("T1", "T1-same-batch", "T1-tight"),
    ),
    "T2": Theorem(
        "T2",
        r"Stale USAM $\epsilon_t=\rho g'_{t-\tau}$: $\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2"
        r"\le\frac{1}{1-L^2\rho^2}\big[\frac{2\Delta(1+\tau\eta L^3\rho^2)}{\eta T}"
        r"+\frac{L^2\rho^2\sigma^2}{b'}+\frac{L\eta\sigma^2}{b}\big]$.",
        (
            r"$f$ $L$-smooth, $f\ge f^*$",
            r"unbiased gradients; descent variance $\sigma^2/b$, ascent variance $\sigma^2/b'$",
            r"$w_{t-\tau}:=w_0$ for $t<\tau$",
        ),
        r"$0<\eta\le1/L$, $0\le\rho<1/L$",
        "proofs/t2_stale_usam.py",
        ("T2",),
    ),
    "T3": Theorem(
        "T3",
        r"PL: $\mathbb E f(w_T)-f^*\le(1-\eta\mu)^T\Delta+\frac{L^2\rho^2+L\eta\sigma^2/b}{2\mu}$ "
        r"(normalised AsyncSAM, any $\tau$, perturbation independent of the descent noise).",
        (
            r"$f$ $L$-smooth and $\mu$-PL: $f-f^*\le\|\nabla f\|^2/(2\mu)$",
            r"unbiased minibatch gradients with variance $\sigma^2/b$",
        ),
        r"$0<\eta\le1/L$, $\eta\mu<1$",
        "proofs/t3_pl.py",
        ("T3",),
    ),
    "T4": Theorem(
        "T4",
        r"$\nabla f(w+\rho u_{t-\tau})=\nabla f(w)+\rho Hu_{t-\tau}+R$, "
        r"$\|R\|\le\frac{M_H}{2}\rho^2$; $\|\rho Hu_{t-\tau}-\rho Hu_t\|\le2\rho L\sin(\theta/2)$; "
        r"$\|u_{t-\tau}-u_t\|\le\frac{2\|g_t-g_{t-\tau}\|}{\|g_t\|}"
        r"\le\frac{2L\eta\tau G}{\|g_t\|}$.",
        (
            r"Hessian $M_H$-Lipschitz, $\|H\|\le L$",
            r"descent directions bounded: $\|d_k\|\le G$",
        ),
        "none (holds for every step size)",
        "proofs/t4_penalty.py",
        ("T4", "EXP"),
    ),
}

#: sharpened theorems (kept apart from :data:`THEOREMS`, whose originals stay as they are)
SHARPENED: dict[str, Theorem] = {
    "T1-sharp": Theorem(
        "T1-sharp",
        r"T1 sharpened: for every $a\in(0,1]$, with $c=L\eta$, $A=1-\frac c2-\frac{(1-c)a}2$, "
        r"$B=\frac{1-c}{2a}+\frac c2$: $\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le"
        r"\frac1A\big[\frac{\Delta}{\eta T}+(1-\frac1T)(BL^2\rho^2+\frac{L\eta\sigma^2}{2b})"
        r"\big]$; at $\eta=1/L$: $\frac{2\Delta}{\eta T}+(1-\frac1T)L^2\rho^2$, attained.",
        (
            r"$f$ $L$-smooth, $f\ge f^*$, $\Delta=f(w_0)-f^*$",
            r"any perturbation $\|\epsilon_t\|\le\rho$ independent of the descent noise",
        ),
        r"$0<\eta\le 1/L$",
        "proofs/t1_sharp.py",
        ("T1-sharp",),
    ),
    "T2-sharp": Theorem(
        "T2-sharp",
        r"T2 sharpened: for every $a\in(0,1]$ with $K=A-BL^2\rho^2>0$: "
        r"$\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le\frac1K\big[\frac{\Delta(1+2\tau"
        r"\eta BL^3\rho^2)}{\eta T}+\frac{BL^2\rho^2\sigma^2}{b'}+\frac{L\eta\sigma^2}{2b}\big]$"
        r" ($a=1$: T2).",
        (r"$f$ $L$-smooth, $f\ge f^*$", r"stale USAM, own ascent batch $b'$"),
        r"$0<\eta\le1/L$, $0\le\rho<1/L$",
        "proofs/t2_sharp.py",
        ("T2-sharp",),
    ),
}
