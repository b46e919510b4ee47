r"""Synthetic nonconvex families with analytic derivatives and computed constants.

Every constant is computed from the problem's data, not guessed, and carries the region on
which it holds (``region``; ``None`` = everywhere).

* :class:`TwoBasin` – a sharp and a flat minimum of equal value (the sharp-vs-flat landscape);
* :class:`CauchyRegression` – robust regression with the nonconvex Cauchy loss, a finite sum;
* :class:`MatrixFactorization` – :math:`\tfrac12\|UV^\top-Y\|_F^2`.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import Polynomial

from asam_theory.problems.base import Ball, FiniteSum, Problem
from asam_theory.validation import check_int, check_real


def _max_abs_on_interval(p: Polynomial, lo: float, hi: float) -> float:
    """:math:`\\max_{u\\in[lo,hi]}|p(u)|` exactly: endpoints and real critical points."""
    crit = p.deriv().roots()
    crit = crit[np.abs(crit.imag) < 1e-9].real
    pts = np.concatenate([[lo, hi], crit[(crit >= lo) & (crit <= hi)]])
    return float(np.max(np.abs(p(pts))))


class TwoBasin(Problem):
    r"""Two minima of equal value and different curvature.

    .. math::
        f(x)=\varphi(x_1)+\tfrac a2\sum_{j\ge2}x_j^2,\qquad
        \varphi(u)=\frac{(u^2-1)^2\big(\kappa_s(1-u)^2+\kappa_f(1+u)^2\big)}{32}.

    :math:`\varphi\ge0` vanishes exactly at :math:`u=\pm1`, so both :math:`x=\mp e_1` are global
    minimisers with :math:`f^\*=0`; since :math:`\frac{d^2}{du^2}(u^2-1)^2=8` at :math:`\pm1`,
    :math:`\varphi''(-1)=\kappa_s` (the *sharp* basin) and :math:`\varphi''(1)=\kappa_f` (the *flat*
    one).  The default ``radius`` 2 keeps the constants near the basins' scale (``L`` ≈ 180 for
    the default curvatures; radius 3 would give ``L`` ≈ 870 because φ has degree 6).  The
    Hessian is :math:`\mathrm{diag}(\varphi''(x_1),a,\dots,a)`, so on the ball
    :math:`\|x\|\le R` (where :math:`|x_1|\le R`)
    :math:`L=\max(\max_{|u|\le R}|\varphi''(u)|,a)` and the Hessian-Lipschitz constant is
    :math:`\max_{|u|\le R}|\varphi'''(u)|`, both computed exactly from the polynomial's critical
    points.  The basins are separated at the local maximum :math:`u_b\in(-1,1)` of
    :math:`\varphi`; :meth:`basin` classifies points.
    """

    kind = "two_basin"
    SHARP, FLAT = 0, 1

    def __init__(self, dim: int = 2, *, sharp: float = 8.0, flat: float = 1.0,
                 transverse: float = 1.0, radius: float = 2.0) -> None:
        self.dim = check_int("dim", dim, low=1)
        self.sharp = check_real("sharp", sharp, low=0.0, low_open=True)
        self.flat = check_real("flat", flat, low=0.0, low_open=True)
        self.transverse = check_real("transverse", transverse, low=0.0, low_open=True)
        R = check_real("radius", radius, low=1.0, low_open=True)
        u = Polynomial([0.0, 1.0])
        self.phi = (u * u - 1) ** 2 * (self.sharp * (1 - u) ** 2 + self.flat * (1 + u) ** 2) / 32
        self.dphi, self.d2phi, self.d3phi = (self.phi.deriv(k) for k in (1, 2, 3))
        self.region = Ball(np.zeros(self.dim), R)
        self.L = max(_max_abs_on_interval(self.d2phi, -R, R),
                     self.transverse if self.dim > 1 else 0.0)
        self.hessian_lipschitz = _max_abs_on_interval(self.d3phi, -R, R)
        self.mu = None
        self.f_star = 0.0
        mins = np.zeros((2, self.dim))
        mins[0, 0], mins[1, 0] = -1.0, 1.0
        self.minimizers = mins
        crit = self.dphi.roots()
        crit = crit[np.abs(crit.imag) < 1e-9].real
        self.barrier = float(crit[(crit > -1 + 1e-9) & (crit < 1 - 1e-9)][0])
        self.barrier_height = float(self.phi(self.barrier))

    def f(self, x):
        x = self._check_x(x)
        return self.phi(x[:, 0]) + 0.5 * self.transverse * np.sum(x[:, 1:] ** 2, axis=1)

    def grad(self, x):
        g = self.transverse * x
        g[:, 0] = self.dphi(x[:, 0])
        return g

    def hess(self, x):
        x = self._check_x(x)
        h = np.zeros((x.shape[0], self.dim, self.dim))
        idx = np.arange(1, self.dim)
        h[:, idx, idx] = self.transverse
        h[:, 0, 0] = self.d2phi(x[:, 0])
        return h

    def hvp(self, x, v):
        out = self.transverse * np.asarray(v, dtype=np.float64)
        out[:, 0] = self.d2phi(x[:, 0]) * v[:, 0]
        return out

    def basin(self, x: np.ndarray) -> np.ndarray:
        """0 (:attr:`SHARP`) where :math:`x_1<u_b`, 1 (:attr:`FLAT`) otherwise."""
        return (np.atleast_2d(x)[:, 0] >= self.barrier).astype(np.int64)

    def config(self) -> dict:
        return {"type": self.kind, "params": {
            "dim": self.dim, "sharp": self.sharp, "flat": self.flat,
            "transverse": self.transverse, "radius": self.region.radius}}

    @classmethod
    def from_config(cls, params: dict) -> TwoBasin:
        return cls(**params)


# Cauchy loss psi(r) = log(1 + r^2) and its derivatives; sup|psi''| = 2 (at r = 0) and
# sup|psi'''| is attained at r = sqrt(2) - 1 (roots of r^4 - 6 r^2 + 1 = 0).
_R3 = np.sqrt(2.0) - 1.0
PSI2_SUP = 2.0
PSI3_SUP = float(4 * _R3 * (3 - _R3**2) / (1 + _R3**2) ** 3)


class CauchyRegression(FiniteSum):
    r"""Robust regression :math:`f(x)=\frac1n\sum_i\psi(a_i^\top x-y_i)`,
    :math:`\psi(r)=\log(1+r^2)`.

    :math:`\psi''(r)=\frac{2(1-r^2)}{(1+r^2)^2}\in[-\tfrac14,2]` makes ``f`` nonconvex with the
    global constants :math:`L=2\lambda_{\max}(A^\top A/n)`, per component
    :math:`L_i=2\|a_i\|^2`, and Hessian-Lipschitz
    :math:`M_H=\sup|\psi'''|\cdot\frac1n\sum_i\|a_i\|^3` with
    :math:`\sup|\psi'''|=|\psi'''(\sqrt2-1)|`.  Labels :math:`y=Ax_{\text{true}}+` sparse
    outliers; without outliers :math:`f^\*=0` at :math:`x_{\text{true}}`, otherwise ``f_star`` is
    unknown and ``f_lower_bound = 0``.
    """

    kind = "cauchy_regression"

    def __init__(self, n: int = 64, dim: int = 5, *, outlier_fraction: float = 0.1,
                 outlier_scale: float = 10.0, seed: int = 0) -> None:
        self.n = check_int("n", n, low=1)
        self.dim = check_int("dim", dim, low=1)
        self.outlier_fraction = check_real("outlier_fraction", outlier_fraction, low=0, high=1)
        self.outlier_scale = check_real("outlier_scale", outlier_scale, low=0.0)
        self.seed = check_int("seed", seed, low=0)
        rng = np.random.default_rng(seed)
        self.A = rng.standard_normal((self.n, self.dim)) / np.sqrt(self.dim)
        self.x_true = rng.standard_normal(self.dim)
        self.y = self.A @ self.x_true
        n_out = int(round(self.outlier_fraction * self.n))
        if n_out:
            which = rng.choice(self.n, size=n_out, replace=False)
            self.y[which] += self.outlier_scale * rng.standard_normal(n_out)
        row_norms = np.linalg.norm(self.A, axis=1)
        self.L = PSI2_SUP * float(np.linalg.eigvalsh(self.A.T @ self.A / self.n)[-1])
        self.L_component = PSI2_SUP * float(np.max(row_norms**2))
        self.hessian_lipschitz = PSI3_SUP * float(np.mean(row_norms**3))
        self.mu = None
        clean = n_out == 0
        self.f_star = 0.0 if clean else None
        self.minimizers = self.x_true[None, :].copy() if clean else None

    @property
    def f_lower_bound(self) -> float:
        return 0.0

    def _res(self, x):
        return x @ self.A.T - self.y  # (M, n)

    def f(self, x):
        return np.mean(np.log1p(self._res(self._check_x(x)) ** 2), axis=1)

    def grad(self, x):
        r = self._res(x)
        return (2 * r / (1 + r**2)) @ self.A / self.n

    def hess(self, x):
        r = self._res(self._check_x(x))
        w = 2 * (1 - r**2) / (1 + r**2) ** 2
        return np.einsum("mn,ni,nj->mij", w, self.A, self.A) / self.n

    def hvp(self, x, v):
        r = self._res(x)
        w = 2 * (1 - r**2) / (1 + r**2) ** 2
        return (w * (v @ self.A.T)) @ self.A / self.n

    def component_grads(self, x, idx):
        a = self.A[idx]  # (M, b, d)
        r = np.einsum("mbd,md->mb", a, x) - self.y[idx]
        return np.einsum("mb,mbd->md", 2 * r / (1 + r**2), a) / idx.shape[1]

    def all_component_grads(self, x):
        r = self._res(x)
        return (2 * r / (1 + r**2))[:, :, None] * self.A[None]

    def _sample_res(self, x, idx):
        a = self.A[idx]  # (M, b, d)
        return a, np.einsum("mbd,md->mb", a, self._check_x(x)) - self.y[idx]

    def per_sample_losses(self, x, idx):
        r""":math:`\psi(a_i^\top x-y_i)=\log(1+r_i^2)`, shape ``(M, b)``."""
        return np.log1p(self._sample_res(x, idx)[1] ** 2)

    def per_sample_grads(self, x, idx):
        r""":math:`\psi'(r_i)a_i=\frac{2r_i}{1+r_i^2}a_i`, shape ``(M, b, d)``."""
        a, r = self._sample_res(x, idx)
        return (2 * r / (1 + r**2))[:, :, None] * a

    def config(self) -> dict:
        return {"type": self.kind, "params": {
            "n": self.n, "dim": self.dim, "outlier_fraction": self.outlier_fraction,
            "outlier_scale": self.outlier_scale, "seed": self.seed}}

    @classmethod
    def from_config(cls, params: dict) -> CauchyRegression:
        return cls(**params)


class MatrixFactorization(Problem):
    r"""Matrix factorisation :math:`f(U,V)=\tfrac12\|UV^\top-Y\|_F^2`,
    :math:`x=(\mathrm{vec}\,U,\mathrm{vec}\,V)`.

    :math:`U\in\mathbb R^{p\times r}`, :math:`V\in\mathbb R^{q\times r}`, :math:`Y=U_0V_0^\top`
    (rank ``rank`` ≤ r, so :math:`f^\*=0` at :math:`(U_0,V_0)`).  With :math:`R=UV^\top-Y`:
    :math:`\nabla_U f=RV`, :math:`\nabla_V f=R^\top U`, and the Hessian's quadratic form in a
    direction :math:`(A,B)` is :math:`\|AV^\top+UB^\top\|_F^2+2\langle R,AB^\top\rangle`.
    On the ball :math:`\|x\|\le\varrho` (``radius``), for unit :math:`(A,B)`:
    :math:`\|AV^\top+UB^\top\|^2\le(\|A\|^2+\|B\|^2)(\|U\|_2^2+\|V\|_2^2)\le\varrho^2` and
    :math:`2|\langle R,AB^\top\rangle|\le\|R\|_2\le\|U\|_2\|V\|_2+\|Y\|_2\le\varrho^2/2+\|Y\|_2`, so
    :math:`L=\tfrac32\varrho^2+\|Y\|_2`.  Differentiating the quadratic form once more gives the
    Hessian-Lipschitz constant :math:`M_H=3\varrho` on the same ball.
    """

    kind = "matrix_factorization"

    def __init__(self, p: int = 4, q: int = 3, r: int = 2, *, rank: int | None = None,
                 radius: float | None = None, seed: int = 0) -> None:
        self.p, self.q, self.r = (check_int(k, v, low=1) for k, v in (("p", p), ("q", q), ("r", r)))
        self.rank = self.r if rank is None else check_int("rank", rank, low=1, high=self.r)
        self.seed = check_int("seed", seed, low=0)
        rng = np.random.default_rng(seed)
        U0 = np.zeros((self.p, self.r))
        V0 = np.zeros((self.q, self.r))
        U0[:, : self.rank] = rng.standard_normal((self.p, self.rank))
        V0[:, : self.rank] = rng.standard_normal((self.q, self.rank))
        # balance the factors (equal Frobenius norms), a minimiser either way
        s = np.sqrt(np.linalg.norm(V0) / np.linalg.norm(U0))
        U0, V0 = U0 * s, V0 / s
        self.Y = U0 @ V0.T
        self.dim = self.r * (self.p + self.q)
        x0 = np.concatenate([U0.ravel(), V0.ravel()])
        R = 2.0 * float(np.linalg.norm(x0)) if radius is None else check_real(
            "radius", radius, low=0.0, low_open=True)
        self.region = Ball(np.zeros(self.dim), R)
        self.L = 1.5 * R**2 + float(np.linalg.norm(self.Y, 2))
        self.hessian_lipschitz = 3.0 * R
        self.mu = None
        self.f_star = 0.0
        self.minimizers = x0[None, :]

    def _split(self, x):
        M = x.shape[0]
        k = self.p * self.r
        return x[:, :k].reshape(M, self.p, self.r), x[:, k:].reshape(M, self.q, self.r)

    def _join(self, U, V):
        return np.concatenate([U.reshape(U.shape[0], -1), V.reshape(V.shape[0], -1)], axis=1)

    def f(self, x):
        U, V = self._split(self._check_x(x))
        R = U @ V.transpose(0, 2, 1) - self.Y
        return 0.5 * np.sum(R**2, axis=(1, 2))

    def grad(self, x):
        U, V = self._split(x)
        R = U @ V.transpose(0, 2, 1) - self.Y
        return self._join(R @ V, R.transpose(0, 2, 1) @ U)

    def hvp(self, x, v):
        U, V = self._split(x)
        A, B = self._split(np.asarray(v, dtype=np.float64))
        Vt = V.transpose(0, 2, 1)
        R = U @ Vt - self.Y
        D = A @ Vt + U @ B.transpose(0, 2, 1)  # directional derivative of U V^T
        return self._join(D @ V + R @ B, D.transpose(0, 2, 1) @ U + R.transpose(0, 2, 1) @ A)

    def hess(self, x):
        x = self._check_x(x)
        M, d = x.shape
        xs = np.repeat(x, d, axis=0)
        basis = np.tile(np.eye(d), (M, 1))
        return self.hvp(xs, basis).reshape(M, d, d).transpose(0, 2, 1)

    def config(self) -> dict:
        return {"type": self.kind, "params": {
            "p": self.p, "q": self.q, "r": self.r, "rank": self.rank,
            "radius": self.region.radius, "seed": self.seed}}

    @classmethod
    def from_config(cls, params: dict) -> MatrixFactorization:
        return cls(**params)
