r"""Quadratics :math:`f(x)=\tfrac12(x-x^\*)^\top H(x-x^\*)+f^\*` with any spectrum.

:math:`H=Q\,\mathrm{diag}(\lambda)\,Q^\top`; ``Q`` is the identity or a Haar-random rotation.
Constants: :math:`L=\max_i|\lambda_i|`, :math:`\mu=\min_i\lambda_i` when positive, Hessian
Lipschitz constant 0, minimiser :math:`x^\*` and minimum :math:`f^\*` when :math:`H\succeq0`
(for singular :math:`H` the minimisers form :math:`x^\*+\ker H`; ``minimizers`` holds
:math:`x^\*`).  With an indefinite spectrum ``f`` is unbounded below (``f_star = None``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asam_theory.problems._linalg import AffineGrad
from asam_theory.problems.base import Problem
from asam_theory.validation import check_choice, check_int, check_real, check_symmetric

SPECTRA = ("uniform", "power_law", "condition_number")


def make_spectrum(kind: str, dim: int, *, L: float = 1.0, low: float | None = None,
                  exponent: float = 1.0, kappa: float = 10.0) -> np.ndarray:
    r"""A deterministic spectrum of ``dim`` eigenvalues, largest first.

    * ``uniform``: evenly spaced in :math:`[\text{low}, L]` (``low`` defaults to ``L/dim``);
    * ``power_law``: :math:`\lambda_i=L\,i^{-\text{exponent}}`, :math:`i=1..d`;
    * ``condition_number``: log-spaced from :math:`L` to :math:`L/\kappa`.
    """
    check_choice("kind", kind, SPECTRA)
    dim = check_int("dim", dim, low=1)
    L = check_real("L", L, low=0.0, low_open=True)
    if kind == "uniform":
        lo = L / dim if low is None else check_real("low", low, low=0.0, high=L)
        return np.linspace(L, lo, dim)
    if kind == "power_law":
        exponent = check_real("exponent", exponent, low=0.0)
        return L * np.arange(1, dim + 1, dtype=np.float64) ** (-exponent)
    kappa = check_real("kappa", kappa, low=1.0)
    return np.geomspace(L, L / kappa, dim)


class Quadratic(Problem):
    r"""The quadratic :math:`f(x)=\tfrac12(x-x^\*)^\top H(x-x^\*)+f^\*`.

    Parameters
    ----------
    eigenvalues:
        The spectrum of :math:`H` (any real numbers); alternatively pass ``hessian``.
    hessian:
        An explicit symmetric matrix (``ValueError`` if not symmetric).
    rotate:
        Conjugate ``diag(eigenvalues)`` by a Haar-random rotation drawn from ``seed``.
    shift:
        The centre :math:`x^\*`: ``None``/``False`` for 0, ``True`` for a standard normal
        vector drawn from ``seed``, or an explicit vector.
    f_star:
        The value at the centre.
    """

    kind = "quadratic"

    def __init__(self, eigenvalues: Sequence[float] | None = None, *,
                 hessian: np.ndarray | None = None, rotate: bool = False,
                 shift: bool | Sequence[float] | None = None, f_star: float = 0.0,
                 seed: int = 0) -> None:
        if (eigenvalues is None) == (hessian is None):
            raise ValueError("pass exactly one of eigenvalues or hessian")
        rng = np.random.default_rng(check_int("seed", seed, low=0))
        self._rotate = bool(rotate)
        if hessian is not None:
            if rotate:
                raise ValueError("rotate applies to eigenvalues; an explicit hessian is used as is")
            H = check_symmetric("hessian", hessian)
            lam, Q = np.linalg.eigh(H)
            order = np.argsort(lam)[::-1]
            lam, Q = lam[order], Q[:, order]
            self._explicit_h = H.tolist()
        else:
            lam = np.asarray(eigenvalues, dtype=np.float64).ravel()
            if lam.size == 0 or not np.all(np.isfinite(lam)):
                raise ValueError("eigenvalues must be a non-empty list of finite numbers")
            order = np.argsort(lam)[::-1]
            lam = lam[order]
            from scipy.stats import special_ortho_group  # scipy.stats: 1 s to import
            Q = special_ortho_group.rvs(lam.size, random_state=rng) if (
                rotate and lam.size > 1) else np.eye(lam.size)
            H = (Q * lam) @ Q.T
            H = 0.5 * (H + H.T)
            self._explicit_h = None
        self.dim = lam.size
        self._lam, self._Q, self.H = lam, Q, H
        self._diag = not np.any(H - np.diag(np.diag(H)))
        self._h_diag = np.diag(H).copy()
        if shift is None or shift is False:
            xs = np.zeros(self.dim)
        elif shift is True:
            xs = rng.standard_normal(self.dim)
        else:
            xs = np.asarray(shift, dtype=np.float64).ravel()
            if xs.shape != (self.dim,):
                raise ValueError(f"shift must have shape ({self.dim},), got {xs.shape}")
        self._shift_cfg = shift if isinstance(shift, bool) or shift is None else xs.tolist()
        self._seed = int(seed)
        self.center = xs
        self._b = H @ xs
        self._affine = AffineGrad(H, self._b)
        self._f0 = check_real("f_star", f_star)
        self.L = float(np.max(np.abs(lam)))
        lmin = float(lam[-1])
        self.mu = lmin if lmin > 0 else None
        psd = lmin >= 0
        self.f_star = self._f0 if psd else None
        self.minimizers = xs[None, :].copy() if psd else None
        self.hessian_lipschitz = 0.0

    @classmethod
    def from_spectrum(cls, kind: str, dim: int, *, L: float = 1.0, low: float | None = None,
                      exponent: float = 1.0, kappa: float = 10.0, **kwargs) -> Quadratic:
        """A quadratic whose spectrum is :func:`make_spectrum` ``(kind, dim, ...)``."""
        q = cls(make_spectrum(kind, dim, L=L, low=low, exponent=exponent, kappa=kappa), **kwargs)
        return q

    @property
    def hessian(self) -> np.ndarray:
        return self.H

    @property
    def minimizer(self) -> np.ndarray:
        """The centre :math:`x^\\*` (a minimiser when :math:`H\\succeq0`)."""
        return self.center

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of :math:`H`, largest first."""
        return self._lam

    @property
    def eigenvectors(self) -> np.ndarray:
        """Columns are the eigenvectors, in the order of :attr:`eigenvalues`."""
        return self._Q

    def f(self, x):
        x = self._check_x(x)
        r = x - self.center
        return 0.5 * np.einsum("mi,mi->m", r, r @ self.H) + self._f0

    def grad(self, x):
        return self.batch_grad(x, None)

    def batch_grad(self, x, batch, out=None):
        if self._diag:
            g = np.multiply(x, self._h_diag, out=out if out is not None and out is not x
                            and out.shape == x.shape else None)
            g -= self._b
            return g
        return self._affine(x, out)

    def hess(self, x):
        x = self._check_x(x)
        return np.broadcast_to(self.H, (x.shape[0], self.dim, self.dim))

    def hvp(self, x, v):
        return np.asarray(v, dtype=np.float64) @ self.H

    def gd_stability_limit(self) -> float | None:
        r"""Largest stable GD step :math:`2/\lambda_{\max}`
        (``None`` if :math:`\lambda_{\max}\le0`)."""
        return 2.0 / self._lam[0] if self._lam[0] > 0 else None

    def config(self) -> dict:
        if self._explicit_h is not None:
            params = {"hessian": self._explicit_h}
        else:
            params = {"eigenvalues": self._lam.tolist(), "rotate": self._rotate}
        params.update(shift=self._shift_cfg, f_star=self._f0, seed=self._seed)
        return {"type": self.kind, "params": params}

    @classmethod
    def from_config(cls, params: dict) -> Quadratic:
        return cls(**params)
