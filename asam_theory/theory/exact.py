r"""Exact analysis of (stale) SAM-type methods on quadratics with additive Gaussian noise.

Source: ``docs/theory.md`` §0 (the algorithms), §1.3 and §2.2 (USAM stability on quadratics), §6
(augmented companion state, Lyapunov equation, the two reference noise models).

Setting
-------
:math:`f(x) = \tfrac12 (x-x^*)^\top H (x-x^*) + f^*` with
:math:`H = H^\top \in \mathbb R^{d\times d}`.
A minibatch gradient is :math:`\nabla f_B(x) = \nabla f(x) + \xi_B`, with
:math:`\xi_B \sim \mathcal N(0, (\sigma^2/b) I)` independent across batches; the same batch
evaluated at two points carries the same :math:`\xi_B`. Write :math:`e_t = x_t - x^*`.
:math:`\sigma^2` here is per coordinate: the argument ``sigma2_per_coord``, the same as
``problem.with_noise(sigma2_per_coord)`` (:mod:`asam_theory.problems`), and *not* the bounds'
``sigma2_total`` (= d times it).  A noisy problem passed in supplies it (a different value
given as well is a ``ValueError``); the former keyword ``sigma2=`` still works, with a
``DeprecationWarning``.

Methods (plain SGD base step, :math:`x_{t+1} = x_t - \eta\,\cdot` descent gradient):

* ``"stale_usam"`` — stale unnormalised SAM (unnormalised AsyncSAM): with
  :math:`s = \max(t-\tau, 0)` (the history is initialised with copies of :math:`x_0`),
  :math:`\epsilon_t = \rho\, g'_t`, :math:`g'_t` the ascent gradient at :math:`x_s`, and
  :math:`x_{t+1} = x_t - \eta \nabla f_{B_t}(x_t + \epsilon_t)`. ``tau=0`` is USAM, ``rho=0``
  is SGD.
* ``"delayed_sgd"`` — the descent gradient is evaluated at the stale iterate:
  :math:`x_{t+1} = x_t - \eta(H e_s + \xi_t)` (``rho`` must be 0).

Both are linear recursions :math:`e_{t+1} = e_t - \eta H_a e_t - \eta H_c e_{t-\tau} + w_t` with
:math:`(H_a, H_c) = (H, \rho H^2)` for stale USAM and :math:`(0, H)` for delayed SGD. Three models
of the ascent-gradient noise (``ascent_noise``) for stale USAM:

(a) ``"none"``: the ascent gradient is exact, :math:`w_t = -\eta\xi_t`;
(b) ``"descent_batch"``: the ascent at stale step :math:`s` uses the descent batch of step
    :math:`s`, :math:`w_t = -\eta\rho H\xi_{s} - \eta\xi_t` (for :math:`\tau = 0` the ascent and the
    descent share :math:`\xi_t`: SAM's same-batch model). A noise register
    :math:`(\xi_{t-1},\dots,\xi_{t-\tau})` is appended to the state;
(c) ``"independent"``: the ascent uses its own batch of size :math:`b'`,
    :math:`w_t = -\eta\rho H\xi'_t - \eta\xi_t`,
    :math:`\xi'_t\sim\mathcal N(0,(\sigma^2/b')I)` fresh at every step and
    independent of everything else.

The augmented state is
:math:`z_t = (e_t, e_{t-1},\dots,e_{t-\tau}, [\xi_{t-1},\dots,\xi_{t-\tau}])` and
:math:`z_{t+1} = \mathcal A z_t + \mathcal B\zeta_t`, :math:`\zeta_t\sim\mathcal N(0,\Sigma)` i.i.d.

Eigenbasis decoupling: with :math:`H = Q\,\mathrm{diag}(\lambda)\,Q^\top` and isotropic noise, the
rotated coordinates :math:`Q^\top e` and :math:`Q^\top\xi` evolve independently per eigenvalue, each
as a scalar companion of size :math:`\tau+1` (plus a scalar noise register of size :math:`\tau` in
model (b)). The noise register is a nilpotent shift in a block-triangular :math:`\mathcal A`, so the
spectrum of :math:`\mathcal A` is that of the iterate companions together with zeros: the
characteristic polynomial per eigenvalue is

.. math:: p_\lambda(z) = z^{\tau+1} - (1 - \eta a_\lambda) z^\tau + \eta c_\lambda,

:math:`(a_\lambda, c_\lambda) = (\lambda, \rho\lambda^2)` (stale USAM) or :math:`(0, \lambda)`
(delayed SGD); for :math:`\tau = 0` it is :math:`z - 1 + \eta(a_\lambda + c_\lambda)`.

Scope: normalised SAM / normalised AsyncSAM (:math:`\epsilon = \rho g/\Vert g\Vert`) is not
linear and is *not* covered by this module. Its exact deterministic behaviour on quadratics (the
1-D / top-eigenvector 2-cycle of ``docs/theory.md`` §2.1 and the SAM edge of §2.2) is handled
separately.

Start-up convention in model (b) for :math:`t < \tau`: the stale iterate is :math:`x_0` and, by
:math:`s = \max(t-\tau, 0)`, the stale ascent reuses the batch of step 0, so
:math:`w_t = -\eta\rho H\xi_0 - \eta\xi_t` for :math:`t\le\tau` (``initial_ascent_noise=
"first_batch"``, the default). This is exact in the linear state: step 0 writes :math:`\xi_0` into
every register slot. The alternative ``"prestart"`` draws the :math:`\tau` pre-start ascent batches
independently (register initialised with covariance :math:`(\sigma^2/b)I`). Stationary moments do
not depend on the convention.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.linalg import solve_discrete_lyapunov
from scipy.optimize import brentq

from asam_theory.methods.base import UpdateRule
from asam_theory.validation import (
    check_choice,
    check_int,
    check_nonnegative,
    check_positive,
    check_symmetric,
)

__all__ = [
    "AscentNoise",
    "CompanionSystem",
    "EigenCompanionSystem",
    "LyapunovResidualError",
    "Method",
    "StabilityRegion",
    "StationaryMoments",
    "TransientMoments",
    "UnstableSystemError",
    "companion_system",
    "eigen_companion_system",
    "is_stable",
    "max_stable_lr",
    "mean_trajectory",
    "spectral_radii",
    "spectral_radius",
    "stability_region",
    "stationary_covariance",
    "stationary_moments",
    "transient_moments",
]

Method = Literal["stale_usam", "delayed_sgd"]
AscentNoise = Literal["none", "descent_batch", "independent"]
InitialAscentNoise = Literal["first_batch", "prestart"]

_METHODS = ("stale_usam", "delayed_sgd")
_ASCENT_NOISE = ("none", "descent_batch", "independent")
_INITIAL = ("first_batch", "prestart")


class UnstableSystemError(ValueError):
    """The linear recursion has spectral radius >= 1: no stationary distribution exists."""


class LyapunovResidualError(ArithmeticError):
    """The discrete Lyapunov solution failed its residual check."""


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _check_lr(lr: Any) -> float:
    return check_positive("lr", lr)


def _check_rho(rho: Any, method: str) -> float:
    rho = check_nonnegative("rho", rho)
    if method == "delayed_sgd" and rho != 0.0:
        raise ValueError(f"rho must be 0 for method='delayed_sgd' (no ascent step), got {rho!r}")
    return rho


def _check_tau(tau: Any) -> int:
    return check_int("tau", tau, low=0)


def _resolve_problem(problem: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """Return ``(H, x_star, f_star)`` from an ndarray ``H`` or an object with ``.hessian``.

    ``.hessian`` may be an array or a zero-argument callable; ``.minimizer`` (default 0) and
    ``.f_star`` (default 0) are optional.
    """
    if isinstance(problem, np.ndarray | list | tuple):
        h = check_symmetric("H", problem)
        return h, np.zeros(h.shape[0]), 0.0
    if not hasattr(problem, "hessian"):
        raise ValueError("problem must be a symmetric ndarray H or an object with a .hessian")
    hess = problem.hessian
    if callable(hess):
        hess = hess()
    h = check_symmetric("problem.hessian", hess)
    x_star = getattr(problem, "minimizer", None)
    x_star = np.zeros(h.shape[0]) if x_star is None else np.asarray(x_star, dtype=np.float64)
    if x_star.shape != (h.shape[0],):
        raise ValueError(f"problem.minimizer must have shape ({h.shape[0]},), got {x_star.shape}")
    f_star = getattr(problem, "f_star", None)
    f_star = 0.0 if f_star is None else float(f_star)
    return h, x_star, f_star


def _eigenvalues(problem_or_eigs: Any) -> np.ndarray:
    """Eigenvalues from a problem / matrix H, or a 1-D array of eigenvalues itself."""
    if not hasattr(problem_or_eigs, "hessian"):
        arr = np.asarray(problem_or_eigs, dtype=np.float64)
        if arr.ndim <= 1:
            arr = np.atleast_1d(arr)
            if arr.size == 0 or not np.all(np.isfinite(arr)):
                raise ValueError("eigenvalues must be a non-empty finite 1-D array")
            return arr
    h, _, _ = _resolve_problem(problem_or_eigs)
    return np.linalg.eigvalsh(h)


def _per_coord_noise(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Accept the former keyword ``sigma2=`` (always per coordinate here) for
    ``sigma2_per_coord=``, with a ``DeprecationWarning``; both at once is a ``TypeError``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "sigma2" in kwargs:
            if "sigma2_per_coord" in kwargs:
                raise TypeError(f"{fn.__name__}: give sigma2_per_coord= only (sigma2= is its "
                                "former name)")
            warnings.warn(
                f"{fn.__name__}(sigma2=...) is now sigma2_per_coord= (the per-coordinate "
                "variance, as problem.with_noise; the bounds take sigma2_total = d times it)",
                DeprecationWarning, stacklevel=2)
            kwargs["sigma2_per_coord"] = kwargs.pop("sigma2")
        return fn(*args, **kwargs)

    return wrapper


def _resolve_noise(problem: Any, sigma2_per_coord: Any) -> float:
    """The per-coordinate variance: the argument, or the noisy problem's own; a conflict (a
    noisy problem and a different value) is a ``ValueError``."""
    own = getattr(problem, "sigma2_per_coord", None)
    if own is not None and own > 0:
        if sigma2_per_coord is not None and float(sigma2_per_coord) != float(own):
            raise ValueError(
                f"sigma2_per_coord={sigma2_per_coord!r} but the problem carries Gaussian noise "
                f"of sigma2_per_coord={own!r}; omit the argument or pass the exact problem")
        return float(own)
    return 0.0 if sigma2_per_coord is None else sigma2_per_coord


def _noise_variances(
    sigma2_per_coord: Any, batch_size: Any, ascent_batch_size: Any
) -> tuple[float, float]:
    sigma2 = check_nonnegative("sigma2_per_coord", sigma2_per_coord)
    b = check_int("batch_size", batch_size, low=1)
    b_asc = b if ascent_batch_size is None else check_int(
        "ascent_batch_size", ascent_batch_size, low=1
    )
    return sigma2 / b, sigma2 / b_asc


def _coefficients(method: str, h: np.ndarray, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """:math:`(H_a, H_c)`: the current-iterate and stale-iterate gradient operators."""
    if method == "stale_usam":
        return h, rho * (h @ h)
    return np.zeros_like(h), h


# --------------------------------------------------------------------------------------------
# companion systems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompanionSystem:
    r"""Dense augmented recursion :math:`z_{t+1} = \mathcal A z_t + \mathcal B\zeta_t`.

    ``A``: (n, n), ``B``: (n, p), ``noise_cov``: (p, p) = :math:`\Sigma`. The state is
    :math:`(e_t,\dots,e_{t-\tau},[\xi_{t-1},\dots,\xi_{t-\tau}])`, :math:`e = x - x^*`; slot
    ``j`` of the iterate history is ``z[j*d:(j+1)*d]``. ``first_step`` is ``(A_0, B_0)`` when step
    0 differs
    (model (b), :math:`\tau\ge1`, batch of step 0 reused by the stale ascent), else ``None``.
    """

    A: np.ndarray
    B: np.ndarray
    noise_cov: np.ndarray
    dim: int
    tau: int
    register_size: int
    first_step: tuple[np.ndarray, np.ndarray] | None

    @property
    def state_dim(self) -> int:
        return self.A.shape[0]

    def deterministic_step(self, z: np.ndarray) -> np.ndarray:
        r"""Mean recursion :math:`m_{t+1} = \mathcal A m_t` (the noise has mean zero)."""
        return self.A @ z


@dataclass(frozen=True)
class EigenCompanionSystem:
    r"""One scalar companion per eigenvalue of :math:`H` (eigenbasis block-diagonalisation).

    ``A``: (d, n, n), ``B``: (d, n, p), ``noise_cov``: (p, p) shared by all blocks; block ``i`` is
    the recursion of :math:`q_i^\top e_t` with :math:`H q_i = \lambda_i q_i`.
    ``eigenvalues``: (d,), ``eigenvectors``: (d, d) with columns :math:`q_i`.
    """

    A: np.ndarray
    B: np.ndarray
    noise_cov: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    tau: int
    register_size: int
    first_step: tuple[np.ndarray, np.ndarray] | None


def _assemble(
    ha: np.ndarray,
    hc: np.ndarray,
    hn: np.ndarray,
    lr: float,
    tau: int,
    ascent_noise: str,
    var_descent: float,
    var_ascent: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, tuple[np.ndarray, np.ndarray] | None]:
    r"""Assemble batched companion matrices from ``(k, d, d)`` operators.

    ``ha`` / ``hc``: gradient operators on :math:`e_t` / :math:`e_{t-\tau}`; ``hn`` = :math:`\rho H`
    multiplies the ascent noise. Used with ``k = 1`` (dense) and with ``d = 1`` (eigenbasis).
    """
    k, d, _ = ha.shape
    eye = np.broadcast_to(np.eye(d), (k, d, d))
    n_x = (tau + 1) * d
    reg = tau * d if (ascent_noise == "descent_batch" and tau >= 1) else 0
    n = n_x + reg
    a = np.zeros((k, n, n))
    a[:, :d, :d] = eye - lr * ha
    a[:, :d, tau * d : (tau + 1) * d] += -lr * hc
    for j in range(1, tau + 1):
        a[:, j * d : (j + 1) * d, (j - 1) * d : j * d] = eye

    first_step = None
    if ascent_noise == "independent":
        p = 2 * d
        b = np.zeros((k, n, p))
        b[:, :d, :d] = -lr * eye
        b[:, :d, d:] = -lr * hn
        variances = np.concatenate([np.full(d, var_descent), np.full(d, var_ascent)])
    elif ascent_noise == "descent_batch":
        p = d
        b = np.zeros((k, n, p))
        if tau == 0:
            b[:, :d, :] = -lr * (eye + hn)
        else:
            b[:, :d, :] = -lr * eye
            b[:, n_x : n_x + d, :] = eye
            # x-row reads xi_{t-tau}, the last register slot.
            a[:, :d, n - d : n] = -lr * hn
            for j in range(1, tau):
                a[:, n_x + j * d : n_x + (j + 1) * d, n_x + (j - 1) * d : n_x + j * d] = eye
            # Step 0: xi_0 is both the descent noise and the stale ascent's noise for t <= tau;
            # it is written into every register slot (whose previous content is discarded).
            a0 = a.copy()
            a0[:, :d, n_x:] = 0.0
            a0[:, n_x:, :] = 0.0
            b0 = np.zeros_like(b)
            b0[:, :d, :] = -lr * (eye + hn)
            for j in range(tau):
                b0[:, n_x + j * d : n_x + (j + 1) * d, :] = eye
            first_step = (a0, b0)
        variances = np.full(d, var_descent)
    else:  # "none", and delayed SGD
        p = d
        b = np.zeros((k, n, p))
        b[:, :d, :] = -lr * eye
        variances = np.full(d, var_descent)
    return a, b, np.diag(variances), reg // d if d else 0, first_step


def _prepare(
    method: Any, rho: Any, lr: Any, tau: Any, ascent_noise: Any
) -> tuple[str, float, float, int, str]:
    method = check_choice("method", method, _METHODS)
    lr = _check_lr(lr)
    rho = _check_rho(rho, method)
    tau = _check_tau(tau)
    ascent_noise = check_choice("ascent_noise", ascent_noise, _ASCENT_NOISE)
    if method == "delayed_sgd":
        ascent_noise = "none"  # no ascent step: the descent noise is the only noise
    return method, rho, lr, tau, ascent_noise


@_per_coord_noise
def companion_system(
    problem: Any,
    lr: float,
    rho: float = 0.0,
    tau: int = 0,
    sigma2_per_coord: float | None = None,
    batch_size: int = 1,
    ascent_batch_size: int | None = None,
    ascent_noise: AscentNoise = "descent_batch",
    method: Method = "stale_usam",
) -> CompanionSystem:
    r"""Dense augmented companion form ``(A, B, Σ)`` of ``docs/theory.md`` §6, for any ``tau >= 0``.

    For stale USAM with :math:`\tau\ge1` the first block row of :math:`\mathcal A` is
    :math:`[I-\eta H, 0,\dots,0, -\eta\rho H^2 \mid 0,\dots,0, -\eta\rho H]` (the last block only in
    model (b)); the other iterate rows shift the history. :math:`\mathcal B` is
    :math:`[-\eta I; 0;\dots]` in models (a)/(delayed SGD), :math:`[-\eta I,-\eta\rho H;0,0;\dots]`
    with :math:`\Sigma=\mathrm{diag}(\sigma^2/b\,I,\sigma^2/b'\,I)` in model (c), and
    :math:`[-\eta I;0;\dots;0;I;0;\dots]` in model (b) (for :math:`\tau=0`:
    :math:`-\eta(I+\rho H)`). ``ascent_batch_size`` defaults to ``batch_size``; ``ascent_noise`` is
    ignored for ``method="delayed_sgd"``.
    """
    method, rho, lr, tau, ascent_noise = _prepare(method, rho, lr, tau, ascent_noise)
    var_d, var_a = _noise_variances(_resolve_noise(problem, sigma2_per_coord), batch_size,
                                    ascent_batch_size)
    h, _, _ = _resolve_problem(problem)
    ha, hc = _coefficients(method, h, rho)
    a, b, cov, reg, first = _assemble(
        ha[None], hc[None], (rho * h)[None], lr, tau, ascent_noise, var_d, var_a
    )
    first_dense = None if first is None else (first[0][0], first[1][0])
    return CompanionSystem(a[0], b[0], cov, h.shape[0], tau, reg, first_dense)


@_per_coord_noise
def eigen_companion_system(
    problem: Any,
    lr: float,
    rho: float = 0.0,
    tau: int = 0,
    sigma2_per_coord: float | None = None,
    batch_size: int = 1,
    ascent_batch_size: int | None = None,
    ascent_noise: AscentNoise = "descent_batch",
    method: Method = "stale_usam",
) -> EigenCompanionSystem:
    r"""The block-diagonal form of :func:`companion_system` in :math:`H`'s eigenbasis.

    Each block is the scalar recursion of :func:`companion_system` with :math:`H\to\lambda_i`; the
    isotropic noise stays isotropic under the rotation :math:`Q^\top`, so the blocks are
    independent. Block size :math:`\tau+1` (+ :math:`\tau` in model (b), + noise dim 2 in (c)).
    """
    method, rho, lr, tau, ascent_noise = _prepare(method, rho, lr, tau, ascent_noise)
    var_d, var_a = _noise_variances(_resolve_noise(problem, sigma2_per_coord), batch_size,
                                    ascent_batch_size)
    h, _, _ = _resolve_problem(problem)
    lam, q = np.linalg.eigh(h)
    lam3 = lam[:, None, None]
    ha, hc = (lam3, rho * lam3**2) if method == "stale_usam" else (0.0 * lam3, lam3)
    a, b, cov, reg, first = _assemble(ha, hc, rho * lam3, lr, tau, ascent_noise, var_d, var_a)
    return EigenCompanionSystem(a, b, cov, lam, q, tau, reg, first)


# --------------------------------------------------------------------------------------------
# stability
# --------------------------------------------------------------------------------------------


def _scalar_coeffs(method: str, lam: np.ndarray, rho: np.ndarray | float):
    if method == "stale_usam":
        return lam, rho * lam**2
    return np.zeros_like(lam), lam


def _radii_from_coeffs(a: np.ndarray, c: np.ndarray, lr: np.ndarray, tau: int) -> np.ndarray:
    r"""Spectral radius of the scalar companion of :math:`z^{\tau+1}-(1-\eta a)z^\tau+\eta c`."""
    a, c, lr = np.broadcast_arrays(
        np.asarray(a, float), np.asarray(c, float), np.asarray(lr, float)
    )
    if tau == 0:
        return np.abs(1.0 - lr * (a + c))
    shape = a.shape
    comp = np.zeros((*shape, tau + 1, tau + 1))
    comp[..., 0, 0] = 1.0 - lr * a
    comp[..., 0, tau] = -lr * c
    idx = np.arange(1, tau + 1)
    comp[..., idx, idx - 1] = 1.0
    return np.max(np.abs(np.linalg.eigvals(comp)), axis=-1)


def spectral_radii(
    problem_or_eigenvalues: Any,
    lr: float,
    rho: float = 0.0,
    tau: int = 0,
    method: Method = "stale_usam",
) -> np.ndarray:
    r"""Per-eigenvalue spectral radius of the scalar companions, shape ``(d,)``.

    The roots of :math:`p_\lambda(z)=z^{\tau+1}-(1-\eta a_\lambda)z^\tau+\eta c_\lambda` (module
    docstring) as eigenvalues of the :math:`(\tau+1)\times(\tau+1)` companion. Independent of the
    noise model: the noise register is a nilpotent shift in a block-triangular :math:`\mathcal A`.
    """
    method = check_choice("method", method, _METHODS)
    lr = _check_lr(lr)
    rho = _check_rho(rho, method)
    tau = _check_tau(tau)
    lam = _eigenvalues(problem_or_eigenvalues)
    a, c = _scalar_coeffs(method, lam, rho)
    return _radii_from_coeffs(a, c, lr, tau)


def spectral_radius(
    problem_or_eigenvalues: Any,
    lr: float,
    rho: float = 0.0,
    tau: int = 0,
    method: Method = "stale_usam",
) -> float:
    r""":math:`\varrho(\mathcal A) = \max_i \varrho(\text{comp}_{\lambda_i})`
    (docs/theory.md §6)."""
    return float(np.max(spectral_radii(problem_or_eigenvalues, lr, rho, tau, method)))


def is_stable(
    problem_or_eigenvalues: Any,
    lr: float,
    rho: float = 0.0,
    tau: int = 0,
    method: Method = "stale_usam",
) -> bool:
    r"""Mean-square (and mean) stability: :math:`\varrho(\mathcal A) < 1`."""
    return spectral_radius(problem_or_eigenvalues, lr, rho, tau, method) < 1.0


def _crossing_lrs(a: float, c: float, tau: int) -> np.ndarray:
    r"""Step sizes :math:`\eta>0` at which a root of :math:`p(z)` lies on the unit circle.

    :math:`p(e^{i\theta}) = 0 \iff \eta = \eta(\theta) = z^\tau(1-z)/(a z^\tau + c)` with
    :math:`z = e^{i\theta}` (linear in :math:`\eta`); real coefficients let
    :math:`\theta\in(0,\pi]` suffice, and :math:`\eta(\theta)` must be real and positive.
    """
    out: list[float] = []

    def eta(theta: float) -> complex:
        z = complex(math.cos(theta), math.sin(theta))
        den = a * z**tau + c
        return z**tau * (1.0 - z) / den if den != 0 else complex(math.inf, math.inf)

    # theta = pi (z = -1) is always real.
    den_pi = a * (-1.0) ** tau + c
    if den_pi != 0.0:
        val = 2.0 * (-1.0) ** tau / den_pi
        if val > 0:
            out.append(val)
    if tau >= 1:
        # Roots of Im eta(theta) on (0, pi): a fine grid (128 points per unit of tau + 1 covers the
        # tau+1 windings of z^{tau+1}) and Brent's method on every sign change.
        n_grid = 256 * (tau + 1)
        thetas = np.linspace(0.0, math.pi, n_grid + 1)[1:-1]
        z = np.exp(1j * thetas)
        with np.errstate(divide="ignore", invalid="ignore"):
            vals = z**tau * (1.0 - z) / (a * z**tau + c)
        im = vals.imag
        for i in np.nonzero(np.sign(im[:-1]) * np.sign(im[1:]) < 0)[0]:
            lo, hi = thetas[i], thetas[i + 1]
            if not (np.isfinite(im[i]) and np.isfinite(im[i + 1])):
                continue
            root = brentq(lambda t: eta(t).imag, lo, hi, xtol=1e-15, rtol=1e-15)
            e = eta(root)
            # A sign change through a pole of eta(theta) is not a root: require |Im| tiny.
            if abs(e.imag) <= 1e-9 * max(1.0, abs(e.real)) and e.real > 0:
                out.append(e.real)
    return np.array(sorted(out))


def _max_stable_lr_scalar(a: float, c: float, tau: int) -> float:
    # Small-eta expansion of the root near 1: z = 1 - eta (a + c) + O(eta^2); the other tau roots
    # are O((eta c)^{1/tau}). Stable for small eta iff a + c > 0.
    if a + c <= 0.0:
        return 0.0
    if tau == 0:
        return 2.0 / (a + c)
    for cand in _crossing_lrs(a, c, tau):
        # A root may touch the unit circle and return: accept a crossing only if the radius is
        # actually >= 1 just beyond it (relative step 1e-7, far above the root-finding error).
        beyond = float(_radii_from_coeffs(a, c, cand * (1.0 + 1e-7), tau))
        if beyond >= 1.0:
            below = float(_radii_from_coeffs(a, c, cand * (1.0 - 1e-7), tau))
            if below < 1.0:
                return float(cand)
            # An earlier crossing slipped between two grid angles: locate it on the radius.
            return _first_crossing_by_scan(a, c, tau, cand)
    return math.inf


def _first_crossing_by_scan(a: float, c: float, tau: int, upper: float) -> float:
    """Fallback: first lr in (0, upper] with radius >= 1, by a geometric scan and bisection."""
    grid = upper * np.geomspace(1e-9, 1.0, 4000)
    radii = _radii_from_coeffs(a, c, grid, tau)
    j = int(np.argmax(radii >= 1.0))
    if j == 0:
        return 0.0
    lo, hi = float(grid[j - 1]), float(grid[j])
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(_radii_from_coeffs(a, c, mid, tau)) < 1.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return lo


def _bisect_stable_lr(stable: Callable[[float], bool], start: float, iters: int = 60) -> float:
    """Largest η with ``stable(η)``, assuming the stable set is an interval (0, η*): bracket
    from ``start`` by doubling, then bisect (``iters`` halvings: relative error 2^-60)."""
    lo, hi = 0.0, start
    while stable(hi):
        lo, hi = hi, 2 * hi
        if hi > 1e12:
            return math.inf
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return lo


def _rule_max_stable_lr(rule: UpdateRule, eigenvalues: np.ndarray) -> float | None:
    lam = np.unique(np.asarray(eigenvalues, dtype=np.float64))
    lam = lam[lam > 0]
    if lam.size == 0 or rule.companion(lam, 1.0) is None:
        return None

    def stable(lr: float) -> bool:
        mats = rule.companion(lam, lr)
        return bool(np.all(np.max(np.abs(np.linalg.eigvals(mats)), axis=-1) < 1.0))

    return _bisect_stable_lr(stable, 4.0 / lam.max())


def max_stable_lr(
    problem_or_eigenvalues: Any,
    rho: float = 0.0,
    tau: int = 0,
    method: Method | UpdateRule = "stale_usam",
    *,
    solver: Literal["auto", "roots", "bisection"] = "auto",
) -> float | None:
    r"""Largest :math:`\bar\eta` with :math:`\varrho(\mathcal A)<1` on all of :math:`(0,\bar\eta)`:
    the one stability solver of the package (the engine's :class:`StabilityWarning` uses it).

    ``method`` is one of the exact models (``"stale_usam"``, ``"delayed_sgd"``, with ``rho`` and
    ``tau``) or an :class:`~asam_theory.methods.UpdateRule`, whose linear part
    (``rule.companion``: momentum, weight decay, Nesterov, delays; a normalised perturbation is a
    bounded forcing and does not enter) is used instead and ``rho``/``tau`` are ignored.

    Solvers.  ``"roots"`` (exact models): the roots move continuously with :math:`\eta`, so
    stability is lost only at an :math:`\eta` with a root on the unit circle,
    :math:`\eta = z^\tau(1-z)/(a z^\tau + c)`, :math:`|z|=1`; each candidate is confirmed by the
    spectral radius just beyond it.  ``"bisection"``: bracketing and bisection on the spectral
    radius (for every model here the stable set is an interval :math:`(0,\eta^*)`).
    ``"auto"`` takes roots for the exact models and bisection for a rule.

    For :math:`\tau=0`: :math:`\bar\eta = \min_i 2/(\lambda_i(1+\rho\lambda_i))`
    (``docs/theory.md`` §1.3, §2.2); delayed SGD with :math:`\tau=1`:
    :math:`\bar\eta = 1/\lambda_{\max}`. Returns ``0.0`` if some direction is unstable for all
    small :math:`\eta` (:math:`a_\lambda+c_\lambda\le0`, e.g. :math:`\lambda\le0` with
    :math:`\rho\lambda>-1`), ``inf`` if never unstable, and ``None`` for a rule without a
    linear model or a spectrum without a positive eigenvalue.
    """
    solver = check_choice("solver", solver, ("auto", "roots", "bisection"))
    if isinstance(method, UpdateRule):
        if solver == "roots":
            raise ValueError("solver='roots' needs an exact model ('stale_usam' or "
                             "'delayed_sgd'), not an UpdateRule")
        return _rule_max_stable_lr(method, _eigenvalues(problem_or_eigenvalues))
    method = check_choice("method", method, _METHODS)
    rho = _check_rho(rho, method)
    tau = _check_tau(tau)
    lam = np.unique(_eigenvalues(problem_or_eigenvalues))
    a, c = _scalar_coeffs(method, lam, rho)
    if solver == "bisection":
        pos = lam[lam > 0]
        if pos.size == 0:
            return None

        def stable(lr: float) -> bool:
            return bool(np.all(_radii_from_coeffs(a, c, lr, tau) < 1.0))

        return _bisect_stable_lr(stable, 4.0 / pos.max())
    pairs = zip(a, c, strict=True)
    return min(_max_stable_lr_scalar(float(ai), float(ci), tau) for ai, ci in pairs)


@dataclass(frozen=True)
class StabilityRegion:
    r"""Spectral radius on an :math:`(\eta,\rho)` grid for several :math:`\tau`.

    ``radius[k, i, j]`` = :math:`\varrho(\mathcal A)` at ``taus[k]``, ``rhos[i]``, ``lrs[j]``
    (``contour(lrs, rhos, radius[k], levels=[1])`` draws the boundary); ``stable = radius < 1``;
    ``boundary_lr[k, i]`` = :func:`max_stable_lr` at ``(rhos[i], taus[k])``.
    """

    lrs: np.ndarray
    rhos: np.ndarray
    taus: np.ndarray
    radius: np.ndarray
    stable: np.ndarray
    boundary_lr: np.ndarray


def stability_region(
    problem_or_eigenvalues: Any,
    lrs: Any,
    rhos: Any,
    taus: Any = (0, 1, 2),
    method: Method = "stale_usam",
) -> StabilityRegion:
    """Spectral-radius grid over ``(lr, rho)`` for each ``tau`` (vectorised over the grid)."""
    method = check_choice("method", method, _METHODS)
    lam = np.unique(_eigenvalues(problem_or_eigenvalues))
    lrs = np.atleast_1d(np.asarray(lrs, dtype=np.float64))
    rhos = np.atleast_1d(np.asarray(rhos, dtype=np.float64))
    for lr in lrs:
        _check_lr(float(lr))
    for rho in rhos:
        _check_rho(float(rho), method)
    taus = np.array([_check_tau(int(t) if isinstance(t, np.integer) else t) for t in taus])
    radius = np.empty((len(taus), len(rhos), len(lrs)))
    boundary = np.empty((len(taus), len(rhos)))
    rr, ll, lm = np.meshgrid(rhos, lrs, lam, indexing="ij")
    a, c = _scalar_coeffs(method, lm, rr)
    for k, tau in enumerate(taus):
        for i, rho in enumerate(rhos):
            # One rho row at a time keeps memory at len(lrs) * len(lam) * (tau + 1)^2 floats.
            radius[k, i] = np.max(_radii_from_coeffs(a[i], c[i], ll[i], int(tau)), axis=-1)
            boundary[k, i] = max_stable_lr(lam, float(rho), int(tau), method)
    return StabilityRegion(lrs, rhos, taus, radius, radius < 1.0, boundary)


# --------------------------------------------------------------------------------------------
# stationary moments (discrete Lyapunov equation)
# --------------------------------------------------------------------------------------------


def stationary_covariance(
    A: np.ndarray, B: np.ndarray, noise_cov: np.ndarray, rtol: float = 1e-9
) -> np.ndarray:
    r"""Solve :math:`P=\mathcal AP\mathcal A^\top+\mathcal B\Sigma\mathcal B^\top`
    (docs/theory.md §6).

    Checks :math:`\varrho(\mathcal A) < 1` first (``solve_discrete_lyapunov`` returns a spurious,
    even indefinite, "solution" otherwise: :class:`UnstableSystemError` names the radius), then
    the residual :math:`\Vert APA^\top - P + Q\Vert_F \le \mathrm{rtol}\,(\Vert P\Vert_F +
    \Vert Q\Vert_F)` (:class:`LyapunovResidualError` otherwise). Returns the symmetrised P.
    """
    A = np.asarray(A, dtype=np.float64)
    q = np.asarray(B, dtype=np.float64) @ np.asarray(noise_cov, dtype=np.float64) @ B.T
    q = 0.5 * (q + q.T)
    radius = float(np.max(np.abs(np.linalg.eigvals(A)))) if A.size else 0.0
    if not radius < 1.0:
        raise UnstableSystemError(
            f"spectral radius of A is {radius:.12g} >= 1: no stationary covariance exists"
        )
    p = solve_discrete_lyapunov(A, q)
    residual = float(np.linalg.norm(A @ p @ A.T - p + q))
    scale = float(np.linalg.norm(p) + np.linalg.norm(q))
    if not residual <= rtol * scale + 1e-300:
        raise LyapunovResidualError(
            f"Lyapunov residual {residual:.3e} exceeds {rtol:g} x scale {scale:.3e} "
            f"(spectral radius {radius:.12g})"
        )
    return 0.5 * (p + p.T)


@dataclass(frozen=True)
class StationaryMoments:
    r"""Stationary moments of :math:`x_t` (``docs/theory.md`` §6).

    ``excess_loss`` = :math:`\mathbb E f - f^* = \tfrac12\mathrm{tr}(HP_{00})`, ``grad_norm_sq`` =
    :math:`\mathbb E\Vert\nabla f\Vert^2 = \mathrm{tr}(H^2P_{00})`, ``dist_sq`` =
    :math:`\mathbb E\Vert x-x^*\Vert^2 = \mathrm{tr}P_{00}`; ``cov`` = :math:`P_{00}` (d, d);
    ``spectral_radius`` of :math:`\mathcal A`; ``residual`` the largest relative Lyapunov residual.
    """

    excess_loss: float
    grad_norm_sq: float
    dist_sq: float
    cov: np.ndarray
    spectral_radius: float
    residual: float


def _rel_residual(a: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    r = np.linalg.norm(a @ p @ a.T - p + q)
    return float(r / max(np.linalg.norm(p) + np.linalg.norm(q), 1e-300))


@_per_coord_noise
def stationary_moments(
    problem: Any,
    lr: float,
    rho: float = 0.0,
    tau: int = 0,
    sigma2_per_coord: float | None = None,
    batch_size: int = 1,
    ascent_batch_size: int | None = None,
    ascent_noise: AscentNoise = "descent_batch",
    method: Method = "stale_usam",
    dense: bool = False,
    rtol: float = 1e-9,
) -> StationaryMoments:
    r"""Exact stationary :math:`\mathbb E f - f^*`, :math:`\mathbb E\Vert\nabla f\Vert^2`,
    :math:`\mathbb E\Vert x-x^*\Vert^2` from the discrete Lyapunov equation.

    ``dense=False`` solves one small Lyapunov equation per eigenvalue of :math:`H` (then
    :math:`P_{00} = Q\,\mathrm{diag}(p_i)\,Q^\top`); ``dense=True`` solves the full
    :math:`d(\tau+1)[+d\tau]` system. Both go through :func:`stationary_covariance` (radius and
    residual checked).
    """
    h, _, _ = _resolve_problem(problem)
    kwargs = dict(
        lr=lr, rho=rho, tau=tau, sigma2_per_coord=sigma2_per_coord, batch_size=batch_size,
        ascent_batch_size=ascent_batch_size, ascent_noise=ascent_noise, method=method,
    )
    d = h.shape[0]
    if dense:
        sys = companion_system(problem, **kwargs)
        p = stationary_covariance(sys.A, sys.B, sys.noise_cov, rtol)
        q = sys.B @ sys.noise_cov @ sys.B.T
        p00 = p[:d, :d]
        radius = float(np.max(np.abs(np.linalg.eigvals(sys.A))))
        residual = _rel_residual(sys.A, p, q)
    else:
        esys = eigen_companion_system(problem, **kwargs)
        p_diag = np.empty(d)
        residual = 0.0
        radius = 0.0
        for i in range(d):
            a_i, b_i = esys.A[i], esys.B[i]
            p_i = stationary_covariance(a_i, b_i, esys.noise_cov, rtol)
            p_diag[i] = p_i[0, 0]
            radius = max(radius, float(np.max(np.abs(np.linalg.eigvals(a_i)))))
            residual = max(residual, _rel_residual(a_i, p_i, b_i @ esys.noise_cov @ b_i.T))
        q_vec = esys.eigenvectors
        p00 = (q_vec * p_diag) @ q_vec.T
    p00 = 0.5 * (p00 + p00.T)
    return StationaryMoments(
        excess_loss=0.5 * float(np.sum(h * p00)),
        grad_norm_sq=float(np.sum((h @ h) * p00)),
        dist_sq=float(np.trace(p00)),
        cov=p00,
        spectral_radius=radius,
        residual=residual,
    )


# --------------------------------------------------------------------------------------------
# transient moments
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransientMoments:
    r"""Exact moments along :math:`t = 0,\dots,T` (arrays of length ``T + 1``).

    ``excess_loss[t]`` = :math:`\mathbb E f(x_t) - f^* = \tfrac12(m^\top H m + \mathrm{tr}(HC))`,
    ``grad_norm_sq[t]`` = :math:`\mathbb E\Vert\nabla f(x_t)\Vert^2=m^\top H^2m+\mathrm{tr}(H^2C)`,
    ``dist_sq[t]`` = :math:`\mathbb E\Vert x_t - x^*\Vert^2`, with :math:`m, C` the mean and
    covariance of :math:`e_t`; ``mean[t]`` = :math:`\mathbb E x_t` (T + 1, d).
    """

    steps: np.ndarray
    excess_loss: np.ndarray
    grad_norm_sq: np.ndarray
    dist_sq: np.ndarray
    mean: np.ndarray


def _initial_state(
    e0: np.ndarray, tau: int, reg: int, k: int, d: int, n: int, initial: str, var_d: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (k, n) and covariance (k, n, n) of z_0 for k blocks of iterate dimension d."""
    m = np.zeros((k, n))
    m[:, : (tau + 1) * d] = np.tile(e0.reshape(k, d), (1, tau + 1))
    c = np.zeros((k, n, n))
    if reg and initial == "prestart":
        idx = np.arange((tau + 1) * d, n)
        c[:, idx, idx] = var_d
    return m, c


@_per_coord_noise
def transient_moments(
    problem: Any,
    x0: Any,
    lr: float,
    rho: float = 0.0,
    tau: int = 0,
    sigma2_per_coord: float | None = None,
    steps: int = 100,
    batch_size: int = 1,
    ascent_batch_size: int | None = None,
    ascent_noise: AscentNoise = "descent_batch",
    method: Method = "stale_usam",
    initial_ascent_noise: InitialAscentNoise = "first_batch",
    dense: bool = False,
) -> TransientMoments:
    r"""Exact :math:`\mathbb E f(x_t)-f^*`, :math:`\mathbb E\Vert\nabla f(x_t)\Vert^2` for
    :math:`t=0..T` from a deterministic :math:`x_0` (history = copies of :math:`x_0`).

    :math:`m_{t+1} = \mathcal A m_t`, :math:`C_{t+1} = \mathcal A C_t\mathcal A^\top +
    \mathcal B\Sigma\mathcal B^\top` (step 0 uses ``first_step`` in model (b), see the module
    docstring for ``initial_ascent_noise``). ``dense=False`` runs the recursion on the batched
    per-eigenvalue companions (cost :math:`O(T d n^3)`, :math:`n\le 2\tau+1`); ``dense=True`` on
    the full matrices. Valid for unstable systems too (moments then grow).
    """
    h, x_star, _ = _resolve_problem(problem)
    d = h.shape[0]
    steps = check_int("steps", steps, low=0)
    initial = check_choice("initial_ascent_noise", initial_ascent_noise, _INITIAL)
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.shape != (d,) or not np.all(np.isfinite(x0)):
        raise ValueError(f"x0 must be a finite array of shape ({d},), got shape {x0.shape}")
    kwargs = dict(
        lr=lr, rho=rho, tau=tau, sigma2_per_coord=sigma2_per_coord, batch_size=batch_size,
        ascent_batch_size=ascent_batch_size, ascent_noise=ascent_noise, method=method,
    )
    var_d, _ = _noise_variances(_resolve_noise(problem, sigma2_per_coord), batch_size,
                                ascent_batch_size)
    e0 = x0 - x_star
    if dense:
        sys = companion_system(problem, **kwargs)
        a, b = sys.A[None], sys.B[None]
        first = None if sys.first_step is None else (sys.first_step[0][None],
                                                     sys.first_step[1][None])
        tau_, reg, k, blk = sys.tau, sys.register_size, 1, d
        e_blocks = e0
        w_loss, w_grad, w_dist = 0.5 * h, h @ h, np.eye(d)
        w_loss, w_grad, w_dist = w_loss[None], w_grad[None], w_dist[None]
        basis = np.eye(d)
    else:
        esys = eigen_companion_system(problem, **kwargs)
        a, b, first = esys.A, esys.B, esys.first_step
        tau_, reg, k, blk = esys.tau, esys.register_size, d, 1
        basis = esys.eigenvectors
        e_blocks = basis.T @ e0
        lam = esys.eigenvalues
        w_loss = (0.5 * lam)[:, None, None]
        w_grad = (lam**2)[:, None, None]
        w_dist = np.ones((d, 1, 1))
    n = a.shape[1]
    cov = sys.noise_cov if dense else esys.noise_cov
    q = b @ cov @ np.swapaxes(b, 1, 2)
    m, c = _initial_state(e_blocks, tau_, reg, k, blk, n, initial, var_d)
    a_t = np.swapaxes(a, 1, 2)

    loss = np.empty(steps + 1)
    grad = np.empty(steps + 1)
    dist = np.empty(steps + 1)
    means = np.empty((steps + 1, d))

    def record(t: int) -> None:
        mx = m[:, :blk]
        cx = c[:, :blk, :blk]
        second = cx + mx[:, :, None] * mx[:, None, :]
        loss[t] = float(np.sum(w_loss * second))
        grad[t] = float(np.sum(w_grad * second))
        dist[t] = float(np.sum(w_dist * second))
        means[t] = x_star + basis @ mx.reshape(-1)

    record(0)
    for t in range(steps):
        if t == 0 and first is not None and initial == "first_batch":
            a0, b0 = first
            m = np.einsum("kij,kj->ki", a0, m)
            c = a0 @ c @ np.swapaxes(a0, 1, 2) + b0 @ cov @ np.swapaxes(b0, 1, 2)
        else:
            m = np.einsum("kij,kj->ki", a, m)
            c = a @ c @ a_t + q
        record(t + 1)
    return TransientMoments(np.arange(steps + 1), loss, grad, dist, means)


def mean_trajectory(
    problem: Any,
    x0: Any,
    lr: float,
    rho: float = 0.0,
    tau: int = 0,
    steps: int = 100,
    method: Method = "stale_usam",
) -> np.ndarray:
    r"""Deterministic mean recursion :math:`\mathbb E x_t`, :math:`t=0..T` (shape (T + 1, d)).

    The noise has mean zero in every model, so :math:`\mathbb E e_{t+1} = \mathbb E e_t -
    \eta H_a\mathbb E e_t - \eta H_c\mathbb E e_{t-\tau}`; this is also the noise-free trajectory
    of stale USAM / delayed GD. Computed per eigen-direction.
    """
    h, x_star, _ = _resolve_problem(problem)
    method, rho, lr, tau, _ = _prepare(method, rho, lr, tau, "none")
    steps = check_int("steps", steps, low=0)
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.shape != (h.shape[0],):
        raise ValueError(f"x0 must have shape ({h.shape[0]},), got {x0.shape}")
    lam, qv = np.linalg.eigh(h)
    a, c = _scalar_coeffs(method, lam, rho)
    hist = np.tile(qv.T @ (x0 - x_star), (tau + 1, 1))  # hist[j] = e_{t-j} in the eigenbasis
    out = np.empty((steps + 1, h.shape[0]))
    out[0] = x0
    for t in range(steps):
        new = hist[0] - lr * a * hist[0] - lr * c * hist[tau]
        hist = np.roll(hist, 1, axis=0)
        hist[0] = new
        out[t + 1] = x_star + qv @ new
    return out
