r"""Heterogeneous finite-sum quadratic :math:`f=\frac1n\sum_i f_i`,
:math:`f_i(x)=\tfrac12(x-s_i)^\top H_i(x-s_i)`, each :math:`H_i\succeq0` its own matrix.

With :math:`\bar H=\frac1n\sum_iH_i` and :math:`\bar c=\frac1n\sum_iH_is_i`:
:math:`\nabla f(x)=\bar Hx-\bar c`, minimiser :math:`x^\*=\bar H^{-1}\bar c` (when
:math:`\bar H\succ0`), :math:`L=\lambda_{\max}(\bar H)`, :math:`\mu=\lambda_{\min}(\bar H)`, and
every component is :math:`L_{\text{comp}}`-smooth with
:math:`L_{\text{comp}}=\max_i\lambda_{\max}(H_i)`.
Minibatches are drawn without replacement (see :class:`~asam_theory.problems.base.FiniteSum`).
"""

from __future__ import annotations

import numpy as np

from asam_theory.problems._linalg import AffineGrad
from asam_theory.problems.base import FiniteSum
from asam_theory.problems.quadratic import make_spectrum
from asam_theory.validation import check_int, check_real, check_symmetric


class FiniteSumQuadratic(FiniteSum):
    """Finite sum of ``n`` quadratics with their own Hessians ``H_i`` and centres ``s_i``.

    Parameters
    ----------
    hessians:
        Array ``(n, d, d)`` of symmetric positive semidefinite matrices.
    centers:
        Array ``(n, d)`` of the components' centres :math:`s_i`.
    """

    kind = "finite_sum_quadratic"

    def __init__(self, hessians: np.ndarray, centers: np.ndarray) -> None:
        Hs = np.asarray(hessians, dtype=np.float64)
        if Hs.ndim != 3 or Hs.shape[1] != Hs.shape[2]:
            raise ValueError(f"hessians must have shape (n, d, d), got {Hs.shape}")
        Hs = np.stack([check_symmetric(f"hessians[{i}]", h) for i, h in enumerate(Hs)])
        lam_i = np.linalg.eigvalsh(Hs)
        if lam_i.min() < -1e-12 * max(1.0, np.abs(lam_i).max()):
            raise ValueError("hessians must be positive semidefinite (each component convex)")
        S = np.asarray(centers, dtype=np.float64)
        if S.shape != Hs.shape[:2]:
            raise ValueError(f"centers must have shape {Hs.shape[:2]}, got {S.shape}")
        self._config = {"hessians": Hs.tolist(), "centers": S.tolist()}
        self._setup(Hs, S)

    def _setup(self, Hs: np.ndarray, S: np.ndarray) -> None:
        self.n, self.dim = Hs.shape[0], Hs.shape[1]
        self.Hs, self.S = Hs, S
        self.HS = np.einsum("nij,nj->ni", Hs, S)  # H_i s_i
        self.H = Hs.mean(axis=0)
        self.c = self.HS.mean(axis=0)
        self._affine = AffineGrad(self.H, self.c)
        self._const = 0.5 * float(np.mean(np.einsum("ni,ni->n", S, self.HS)))
        lam = np.linalg.eigvalsh(self.H)[::-1]
        self._lam = lam
        self.L = float(lam[0])
        self.L_component = float(np.linalg.eigvalsh(Hs)[:, -1].max())
        self.mu = float(lam[-1]) if lam[-1] > 1e-12 * lam[0] else None
        self.hessian_lipschitz = 0.0
        if self.mu is not None:
            xs = np.linalg.solve(self.H, self.c)
            self.minimizers = xs[None, :]
            self.f_star = float(self.f(self.minimizers)[0])
        else:
            self.minimizers, self.f_star = None, None

    @classmethod
    def random(cls, n: int, dim: int, *, spectrum: str = "uniform", L: float = 1.0,
               kappa: float = 10.0, heterogeneity: float = 1.0,
               seed: int = 0) -> FiniteSumQuadratic:
        r"""``n`` components with independently rotated spectra :func:`make_spectrum` and centres
        :math:`s_i\sim\mathcal N(0,\text{heterogeneity}^2 I)` (0 gives identical minimisers)."""
        n = check_int("n", n, low=1)
        dim = check_int("dim", dim, low=1)
        heterogeneity = check_real("heterogeneity", heterogeneity, low=0.0)
        rng = np.random.default_rng(check_int("seed", seed, low=0))
        lam = make_spectrum(spectrum, dim, L=L, kappa=kappa)
        Hs = np.empty((n, dim, dim))
        for i in range(n):
            from scipy.stats import special_ortho_group  # scipy.stats: 1 s to import
            Q = special_ortho_group.rvs(dim, random_state=rng) if dim > 1 else np.eye(1)
            Hs[i] = (Q * lam) @ Q.T
        Hs = 0.5 * (Hs + Hs.transpose(0, 2, 1))
        S = heterogeneity * rng.standard_normal((n, dim))
        obj = cls.__new__(cls)
        obj._config = {"random": {"n": n, "dim": dim, "spectrum": spectrum, "L": L,
                                  "kappa": kappa, "heterogeneity": heterogeneity, "seed": seed}}
        obj._setup(Hs, S)
        return obj

    @property
    def hessian(self) -> np.ndarray:
        return self.H

    @property
    def minimizer(self) -> np.ndarray | None:
        return None if self.minimizers is None else self.minimizers[0]

    @property
    def eigenvalues(self) -> np.ndarray:
        return self._lam

    def f(self, x):
        x = self._check_x(x)
        return 0.5 * np.einsum("mi,mi->m", x, x @ self.H) - x @ self.c + self._const

    def grad(self, x):
        return self._affine(x)

    def hess(self, x):
        x = self._check_x(x)
        return np.broadcast_to(self.H, (x.shape[0], self.dim, self.dim))

    def hvp(self, x, v):
        return np.asarray(v, dtype=np.float64) @ self.H

    def component_grads(self, x, idx):
        Hx = np.einsum("mkij,mj->mi", self.Hs[idx], x)
        return (Hx - self.HS[idx].sum(axis=1)) / idx.shape[1]

    def all_component_grads(self, x):
        return np.einsum("nij,mj->mni", self.Hs, x) - self.HS[None]

    def per_sample_losses(self, x, idx):
        r""":math:`f_i(x)=\tfrac12(x-s_i)^\top H_i(x-s_i)`, shape ``(M, b)``."""
        diff = self._check_x(x)[:, None, :] - self.S[idx]
        return 0.5 * np.einsum("mbi,mbij,mbj->mb", diff, self.Hs[idx], diff)

    def per_sample_grads(self, x, idx):
        r""":math:`\nabla f_i(x)=H_i(x-s_i)`, shape ``(M, b, d)``."""
        diff = self._check_x(x)[:, None, :] - self.S[idx]
        return np.einsum("mbij,mbj->mbi", self.Hs[idx], diff)

    def config(self) -> dict:
        return {"type": self.kind, "params": dict(self._config)}

    @classmethod
    def from_config(cls, params: dict) -> FiniteSumQuadratic:
        if "random" in params:
            return cls.random(**params["random"])
        return cls(params["hessians"], params["centers"])
