r"""Multinomial logistic (softmax) regression, a convex finite sum with computed constants.

Data :math:`(a_i,y_i)_{i=1}^n`, :math:`a_i\in\mathbb R^p`, :math:`y_i\in\{0,\dots,K-1\}`.  The
parameter is the weight matrix :math:`W\in\mathbb R^{K\times p}` flattened row-major,
:math:`x=\operatorname{vec}(W)\in\mathbb R^{Kp}` (the layout of ``torch.nn.Linear(p, K,
bias=False).weight``), logits :math:`z_i=Wa_i`, probabilities :math:`\pi_i=\operatorname{softmax}
(z_i)`, and

.. math::
    f(x)=\frac1n\sum_{i=1}^n f_i(x),\qquad
    f_i(x)=\log\sum_k e^{z_{ik}}-z_{iy_i}+\frac\lambda2\|x\|^2 .

Derivatives (:math:`e_y` the one-hot vector, :math:`\otimes` the Kronecker product):

.. math::
    \nabla f_i=(\pi_i-e_{y_i})\otimes a_i+\lambda x,\qquad
    \nabla^2 f_i=(\operatorname{diag}\pi_i-\pi_i\pi_i^\top)\otimes a_ia_i^\top+\lambda I .

**Smoothness.** Böhning's bound (D. Böhning, "Multinomial logistic regression algorithm",
Ann. Inst. Statist. Math. 44 (1992) 197-200): for every probability vector :math:`\pi`,
:math:`\operatorname{diag}\pi-\pi\pi^\top\preceq\tfrac12(I_K-\tfrac1K\mathbf 1\mathbf 1^\top)`,
whose largest eigenvalue is :math:`\tfrac12` (:math:`K\ge2`).  Since :math:`A\preceq B`,
:math:`C\succeq0` imply :math:`A\otimes C\preceq B\otimes C`,

.. math::
    0\preceq\nabla^2f(x)-\lambda I\preceq\tfrac12(I_K-\tfrac1K\mathbf 1\mathbf 1^\top)\otimes
    \tfrac1nA^\top A
    \quad\Longrightarrow\quad L=\tfrac12\lambda_{\max}(A^\top A/n)+\lambda,

and every component is :math:`L_i`-smooth with :math:`L_i=\tfrac12\|a_i\|^2+\lambda`
(``L_component`` is their maximum).  The factor :math:`\tfrac12` is the supremum over
:math:`\pi` (attained at :math:`\pi=(\tfrac12,\tfrac12,0,\dots)`), so ``L`` is the tightest
bound of this product form.  **Strong convexity**: the logits are unchanged by adding one
vector to every row of :math:`W`, so along :math:`\mathbf 1\otimes v` the data term is flat and
:math:`\mu=\lambda` exactly (``None`` when :math:`\lambda=0`).  :math:`f\ge0`, so
``f_lower_bound = 0``; the minimum value is not known in closed form (``f_star = None``).

**BiSAM's ascent loss** (Xie, Latorre, Antonakopoulos, Pethick, Cevher, "Improving SAM
requires rethinking its optimization formulation", ICML 2024, arXiv 2407.12993): with margins
:math:`F_{ij}=z_{ij}-z_{iy_i}` and a lower bound :math:`\phi` of the 0-1 step,

.. math::
    Q_i(x)=\frac1\mu\log\sum_{j=1}^K e^{\mu\,\phi(F_{ij})},\qquad
    \phi_{\tanh}(u)=\tanh(\alpha u),\quad
    \phi_{\log}(u)=1-\log(1+e^{\gamma-u}),\ \gamma=\log(e-1),

(:math:`\phi(0)=0`).  With :math:`s_i=\operatorname{softmax}(\mu\phi(F_i))`,
:math:`\partial Q_i/\partial z_{ik}=s_{ik}\phi'(F_{ik})-[k=y_i]\sum_js_{ij}\phi'(F_{ij})` and
:math:`\nabla Q_i=(\partial Q_i/\partial z_i)\otimes a_i`
(:meth:`SoftmaxRegression.lower_bound_losses`, :meth:`SoftmaxRegression.lower_bound_grad`).
"""

from __future__ import annotations

import numpy as np

from asam_theory.problems.base import FiniteSum
from asam_theory.validation import check_choice, check_int, check_real

#: the 0-1 lower bounds of BiSAM
LOWER_BOUNDS = ("log", "tanh")
#: :math:`\gamma=\log(e-1)`, so that :math:`\phi_{\log}(0)=0`
BISAM_GAMMA = float(np.log(np.e - 1.0))


def _log_softmax(z: np.ndarray) -> np.ndarray:
    zmax = z.max(axis=-1, keepdims=True)
    s = z - zmax
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


class SoftmaxRegression(FiniteSum):
    r"""Multinomial logistic regression with optional L2 term (module docstring for the math).

    Parameters
    ----------
    features:
        ``(n, p)`` array of inputs :math:`a_i` (append a column of ones for an intercept).
    labels:
        ``(n,)`` integer labels in ``[0, n_classes)``.
    n_classes:
        K ≥ 2; default ``max(labels) + 1``.
    l2:
        λ ≥ 0, the L2 coefficient inside every component (gives μ = λ).
    """

    kind = "softmax_regression"

    def __init__(self, features: np.ndarray, labels: np.ndarray, n_classes: int | None = None,
                 l2: float = 0.0) -> None:
        A = np.asarray(features, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] < 1 or A.shape[1] < 1:
            raise ValueError(f"features must have shape (n, p) with n, p >= 1, got {A.shape}")
        y = np.asarray(labels)
        if y.shape != (A.shape[0],) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"labels must be {A.shape[0]} integers, got shape {y.shape} "
                             f"and dtype {y.dtype}")
        K = int(y.max()) + 1 if n_classes is None else n_classes
        K = check_int("n_classes", K, low=2)
        if y.min() < 0 or y.max() >= K:
            raise ValueError(f"labels must lie in [0, {K - 1}], got range "
                             f"[{y.min()}, {y.max()}]")
        self._config = {"features": A.tolist(), "labels": y.tolist(), "n_classes": K,
                        "l2": float(l2)}
        self._setup(A, y.astype(np.int64), K, l2)

    def _setup(self, A: np.ndarray, y: np.ndarray, K: int, l2: float) -> None:
        self.l2 = check_real("l2", l2, low=0.0)
        self.A, self.y, self.n_classes = A, y, K
        self.n, self.n_features = A.shape
        self.dim = K * self.n_features
        self.Y = np.eye(K)[y]  # one-hot, (n, K)
        gram_max = float(np.linalg.eigvalsh(A.T @ A / self.n)[-1])
        self.L = 0.5 * gram_max + self.l2
        self.L_component = 0.5 * float(np.max(np.sum(A * A, axis=1))) + self.l2
        self.mu = self.l2 if self.l2 > 0 else None
        self.f_star, self.minimizers, self.hessian_lipschitz = None, None, None

    @classmethod
    def random(cls, n: int = 60, n_features: int = 4, n_classes: int = 3, *,
               separation: float = 2.0, intercept: bool = True, l2: float = 0.0,
               seed: int = 0) -> SoftmaxRegression:
        r"""Gaussian classes: means :math:`m_k\sim\mathcal N(0,\text{separation}^2I_p)`, labels
        uniform, :math:`a_i=m_{y_i}+\mathcal N(0,I_p)`, plus a constant feature 1 when
        ``intercept`` (so ``dim = n_classes * (n_features + intercept)``)."""
        n = check_int("n", n, low=1)
        p = check_int("n_features", n_features, low=1)
        K = check_int("n_classes", n_classes, low=2)
        separation = check_real("separation", separation, low=0.0)
        rng = np.random.default_rng(check_int("seed", seed, low=0))
        means = separation * rng.standard_normal((K, p))
        y = rng.integers(0, K, size=n)
        A = means[y] + rng.standard_normal((n, p))
        if intercept:
            A = np.concatenate([A, np.ones((n, 1))], axis=1)
        obj = cls.__new__(cls)
        obj._config = {"random": {"n": n, "n_features": p, "n_classes": K,
                                  "separation": separation, "intercept": bool(intercept),
                                  "l2": float(l2), "seed": seed}}
        obj._setup(A, y.astype(np.int64), K, l2)
        return obj

    # -- logits -------------------------------------------------------------------------------
    def weights(self, x: np.ndarray) -> np.ndarray:
        """``x`` (M, d) as weight matrices (M, K, p)."""
        return x.reshape(x.shape[0], self.n_classes, self.n_features)

    def _logits(self, x: np.ndarray, idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Logits ``(M, b, K)`` and the features used (``(n, p)`` or ``(M, b, p)``)."""
        W = self.weights(x)
        if idx is None:
            return np.matmul(W, self.A.T).transpose(0, 2, 1), self.A
        a = self.A[idx]  # (M, b, p)
        return np.einsum("mbp,mkp->mbk", a, W), a

    def _onehot(self, idx: np.ndarray | None) -> np.ndarray:
        return self.Y if idx is None else self.Y[idx]

    def _residual(self, x, idx):
        z, a = self._logits(x, idx)
        return np.exp(_log_softmax(z)) - self._onehot(idx), a

    @staticmethod
    def _outer_mean(r: np.ndarray, a: np.ndarray) -> np.ndarray:
        """:math:`\\frac1b\\sum_i r_i\\otimes a_i` flattened, ``(M, K*p)``."""
        if a.ndim == 2:
            G = np.einsum("mbk,bp->mkp", r, a)
        else:
            G = np.einsum("mbk,mbp->mkp", r, a)
        return G.reshape(r.shape[0], -1) / r.shape[1]

    # -- exact derivatives --------------------------------------------------------------------
    def f(self, x):
        x = self._check_x(x)
        return self.per_sample_losses(x, None).mean(axis=1)

    def grad(self, x):
        x = self._check_x(x)
        r, a = self._residual(x, None)
        g = self._outer_mean(r, a)
        if self.l2:
            g += self.l2 * x
        return g

    def _curvature(self, x):
        z, _ = self._logits(x, None)
        P = np.exp(_log_softmax(z))  # (M, n, K)
        return P

    def hess(self, x):
        x = self._check_x(x)
        P = self._curvature(x)
        S = np.einsum("mnk,kl->mnkl", P, np.eye(self.n_classes)) \
            - np.einsum("mnk,mnl->mnkl", P, P)
        H = np.einsum("mnkl,nj,nq->mkjlq", S, self.A, self.A) / self.n
        H = H.reshape(x.shape[0], self.dim, self.dim)
        if self.l2:
            H = H + self.l2 * np.eye(self.dim)
        return H

    def hvp(self, x, v):
        x = self._check_x(x)
        v = np.asarray(v, dtype=np.float64)
        P = self._curvature(x)
        dz = np.matmul(self.weights(v), self.A.T).transpose(0, 2, 1)  # (M, n, K)
        Sdz = P * dz - P * np.sum(P * dz, axis=-1, keepdims=True)
        out = self._outer_mean(Sdz, self.A)
        if self.l2:
            out += self.l2 * v
        return out

    # -- finite sum: per-sample losses and gradients ------------------------------------------
    def per_sample_losses(self, x: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
        r"""Per-sample losses :math:`f_i(x_m)`, ``(M, b)`` for ``idx`` (M, b); every sample
        ``(M, n)`` for ``idx=None`` (a forward pass)."""
        z, _ = self._logits(x, idx)
        ls = _log_softmax(z)
        loss = -np.sum(ls * self._onehot(idx), axis=-1)
        if self.l2:
            loss += 0.5 * self.l2 * np.einsum("md,md->m", x, x)[:, None]
        return loss

    def per_sample_grads(self, x: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
        r"""Per-sample gradients :math:`\nabla f_i(x_m)`, ``(M, b, d)`` (``(M, n, d)`` for
        ``idx=None``)."""
        r, a = self._residual(x, idx)
        if a.ndim == 2:
            G = r[:, :, :, None] * a[None, :, None, :]
        else:
            G = r[:, :, :, None] * a[:, :, None, :]
        G = G.reshape(x.shape[0], r.shape[1], self.dim)
        if self.l2:
            G += self.l2 * x[:, None, :]
        return G

    def component_grads(self, x, idx):
        r, a = self._residual(x, idx)
        g = self._outer_mean(r, a)
        if self.l2:
            g += self.l2 * x
        return g

    def all_component_grads(self, x):
        return self.per_sample_grads(self._check_x(x), None)

    @property
    def f_lower_bound(self) -> float:
        return 0.0

    # -- BiSAM's 0-1 lower bound --------------------------------------------------------------
    @staticmethod
    def _phi(u: np.ndarray, bound: str, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """φ(u) and φ'(u) of the chosen 0-1 lower bound."""
        if bound == "tanh":
            t = np.tanh(alpha * u)
            return t, alpha * (1.0 - t * t)
        w = BISAM_GAMMA - u
        return 1.0 - np.logaddexp(0.0, w), 0.5 * (1.0 + np.tanh(0.5 * w))  # sigmoid(w)

    def _lower_bound_parts(self, x, idx, bound, mu, alpha):
        check_choice("bound", bound, LOWER_BOUNDS)
        mu = check_real("mu", mu, low=0.0, low_open=True)
        alpha = check_real("alpha", alpha, low=0.0, low_open=True)
        x = self._check_x(x)
        z, a = self._logits(x, idx)
        Fm = z - np.sum(z * self._onehot(idx), axis=-1, keepdims=True)  # margins, F_y = 0
        phi, dphi = self._phi(Fm, bound, alpha)
        return mu * phi, dphi, a, mu

    def lower_bound_losses(self, x: np.ndarray, idx: np.ndarray | None, bound: str = "log",
                           mu: float = 1.0, alpha: float = 0.1) -> np.ndarray:
        r"""BiSAM's per-sample ascent losses :math:`Q_i(x_m)`, ``(M, b)``; ``alpha`` is the
        tanh slope (unused by ``bound="log"``)."""
        u, _, _, mu = self._lower_bound_parts(x, idx, bound, mu, alpha)
        umax = u.max(axis=-1, keepdims=True)
        lse = umax[..., 0] + np.log(np.exp(u - umax).sum(axis=-1))
        return lse / mu

    def lower_bound_grad(self, x: np.ndarray, idx: np.ndarray | None, bound: str = "log",
                         mu: float = 1.0, alpha: float = 0.1) -> np.ndarray:
        r"""Gradient of the batch mean :math:`\frac1b\sum_{i\in B}Q_i` at each ``x_m``."""
        u, dphi, a, _ = self._lower_bound_parts(x, idx, bound, mu, alpha)
        s = np.exp(_log_softmax(u))
        sd = s * dphi
        dz = sd - self._onehot(idx) * np.sum(sd, axis=-1, keepdims=True)
        return self._outer_mean(dz, a)

    # -- description --------------------------------------------------------------------------
    def config(self) -> dict:
        return {"type": self.kind, "params": dict(self._config)}

    @classmethod
    def from_config(cls, params: dict) -> SoftmaxRegression:
        if "random" in params:
            return cls.random(**params["random"])
        return cls(np.asarray(params["features"]), np.asarray(params["labels"]),
                   params["n_classes"], params["l2"])
