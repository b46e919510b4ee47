r"""Base classes of the problem zoo.

A :class:`Problem` is an objective :math:`f:\mathbb R^d\to\mathbb R` evaluated on a batch of
points ``x`` of shape ``(M, d)`` (one row per simulated seed).  It provides the exact ``f``,
``grad``, ``hess`` and ``hvp`` and its constants:

* ``L`` – a smoothness constant, :math:`\|\nabla f(x)-\nabla f(y)\|\le L\|x-y\|`, valid on
  ``region`` (``None`` means all of :math:`\mathbb R^d`);
* ``mu`` – strong convexity where it exists (else ``None``);
* ``f_star`` – the minimum value where known (else ``None``), ``f_lower_bound`` a known lower bound;
* ``minimizers`` – known global minimisers, shape ``(k, d)``, or ``None``;
* ``hessian_lipschitz`` – :math:`\|\nabla^2 f(x)-\nabla^2 f(y)\|\le M_H\|x-y\|` on ``region``.

A problem is also a *stochastic oracle*: ``sample_batch(streams, stream, batch_size)`` draws a
batch (noise realisation, sample indices, or ``None`` for the exact oracle) and
``batch_grad(x, batch)`` evaluates the minibatch gradient :math:`\nabla f_B(x)`.  Evaluating
the *same* batch at two points uses the same realisation, which is what "same-batch" SAM
means.  The plain :class:`Problem` is the exact oracle; :class:`GaussianNoise` adds
:math:`\xi_B\sim\mathcal N(0,\tfrac{\sigma^2}{b}I)`; finite sums sample without replacement.

Noise convention: one name per quantity.  ``sigma2_per_coord`` is the :math:`\sigma^2` of the
additive noise above (per coordinate, one sample); ``sigma2_total`` is
:math:`\mathbb E\|\nabla f_B(x)-\nabla f(x)\|^2` at b = 1, the :math:`\sigma^2` of the theorems
(:mod:`asam_theory.theory.bounds`, whose argument is ``sigma2_total``): ``d * sigma2_per_coord``
for additive noise; a finite sum's noise depends on x and has no such constant
(``sigma2_total`` raises and names :meth:`Problem.noise_variance`).  The former name
``sigma2`` (per coordinate) still reads, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from asam_theory.rng import SeedStreams
from asam_theory.validation import check_int, check_real

Batch = Any  # None (exact), ndarray of noise (M, d), or ndarray of indices (M, b)


@dataclass(frozen=True)
class Ball:
    """The closed ball :math:`\\{x:\\|x-c\\|\\le r\\}` on which a constant is valid."""

    center: np.ndarray
    radius: float

    def contains(self, x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.atleast_2d(x) - self.center, axis=-1) <= self.radius * (1 + 1e-12)

    def describe(self) -> str:
        c = "0" if not np.any(self.center) else "c"
        return f"||x - {c}|| <= {self.radius:g}"


class Problem(ABC):
    """An objective with exact derivatives, known constants and an exact gradient oracle."""

    #: registry key used by :func:`asam_theory.problems.problem_from_config`
    kind: ClassVar[str] = ""

    dim: int
    L: float
    mu: float | None = None
    f_star: float | None = None
    minimizers: np.ndarray | None = None
    hessian_lipschitz: float | None = None
    region: Ball | None = None
    #: variance per coordinate of one sample's additive gradient noise (σ² of the model
    #: ξ_B ~ N(0, σ²/b I)); 0 = none.  The theorems' σ² is :attr:`sigma2_total`.
    sigma2_per_coord: float = 0.0

    # -- exact derivatives ------------------------------------------------------------------
    @abstractmethod
    def f(self, x: np.ndarray) -> np.ndarray:
        """Objective values, shape ``(M,)`` for ``x`` of shape ``(M, d)``."""

    @abstractmethod
    def grad(self, x: np.ndarray) -> np.ndarray:
        """Exact gradients, shape ``(M, d)``."""

    @abstractmethod
    def hess(self, x: np.ndarray) -> np.ndarray:
        """Exact Hessians, shape ``(M, d, d)``."""

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Hessian-vector products :math:`\\nabla^2 f(x_m) v_m`, shape ``(M, d)``."""
        return np.einsum("mij,mj->mi", self.hess(x), v)

    @property
    def f_lower_bound(self) -> float | None:
        """A known lower bound on ``f`` (``f_star`` when known); ``None`` when ``f`` is
        unbounded below or no bound is known.  The one accessor the theorems' Δ uses
        (:meth:`delta`); ``f_star`` is ``None`` where only a bound is known (e.g. Cauchy
        regression with outliers)."""
        return self.f_star

    def delta(self, x0: np.ndarray) -> float | np.ndarray:
        r"""The theorems' :math:`\Delta=f(x_0)-f_{\rm lb}` with ``f_lb`` = :attr:`f_lower_bound`
        (:math:`\ge f(x_0)-f^*`, so a bound stated with Δ stays valid): a float for ``x0`` of
        shape ``(d,)``, an array ``(M,)`` for ``(M, d)``.  ``ValueError`` when the problem has
        no known lower bound (then T1–T3 do not apply)."""
        lb = self.f_lower_bound
        if lb is None:
            raise ValueError(
                f"{type(self).__name__} has no known lower bound on f (f_lower_bound is None: "
                "unbounded below or unknown), so the theorems' delta = f(x0) - f_lb is undefined")
        x = np.asarray(x0, dtype=np.float64)
        if x.ndim == 1:
            return float(self.f(x[None, :])[0]) - lb
        return self.f(x) - lb

    # -- noise ------------------------------------------------------------------------------
    @property
    def sigma2_total(self) -> float:
        r""":math:`\mathbb E\|\nabla f_B(x)-\nabla f(x)\|^2` at b = 1, the same at every x:
        ``dim * sigma2_per_coord`` (0 for the exact oracle).  Pass it to the bounds
        (``t1_bound(..., sigma2_total=problem.sigma2_total)``)."""
        return self.dim * self.sigma2_per_coord

    @property
    def sigma2(self) -> float:
        """Deprecated name of :attr:`sigma2_per_coord` (per coordinate, not the bounds' σ²)."""
        warnings.warn(
            "problem.sigma2 is the per-coordinate noise variance; read "
            "problem.sigma2_per_coord, or problem.sigma2_total (= dim * sigma2_per_coord) for "
            "the bounds' sigma2_total", DeprecationWarning, stacklevel=2)
        return self.sigma2_per_coord

    @property
    def eigenvalues(self) -> np.ndarray | None:
        """Spectrum of a constant Hessian (quadratics), else ``None``."""
        return None

    # -- stochastic oracle ------------------------------------------------------------------
    @property
    def stochastic(self) -> bool:
        return False

    def check_batch_size(self, name: str, batch_size: int) -> int:
        """Validate a batch size for this oracle (``ValueError`` naming ``name``)."""
        return check_int(name, batch_size, low=1)

    def sample_batch(self, streams: SeedStreams, stream: str, batch_size: int) -> Batch:
        """Draw the next batch of ``stream`` (the exact oracle draws nothing)."""
        return None

    def batch_grad(self, x: np.ndarray, batch: Batch, out: np.ndarray | None = None,
                   ) -> np.ndarray:
        """Minibatch gradient :math:`\\nabla f_B(x)`; the exact oracle returns ``grad(x)``.

        ``out`` is a buffer the result *may* be written to (problems with a fused kernel use
        it to avoid an allocation); always use the returned array."""
        return self.grad(x)

    def batch_rows(self, batch: Batch, rows) -> Batch:
        """The draw ``batch`` restricted to the seeds ``rows`` (an index or boolean mask over
        the rows of ``x``), for a rule that evaluates only some seeds."""
        return None if batch is None else batch[rows]

    def noise_variance(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Exact :math:`\\mathbb E\\|\\nabla f_B(x)-\\nabla f(x)\\|^2` per row of ``x``."""
        return np.zeros(np.atleast_2d(x).shape[0])

    def with_noise(self, sigma2_per_coord: float) -> GaussianNoise:
        """This problem with additive Gaussian gradient noise of variance
        ``sigma2_per_coord / b`` per coordinate (``sigma2_total = dim * sigma2_per_coord``)."""
        return GaussianNoise(self, sigma2_per_coord)

    # -- description ------------------------------------------------------------------------
    @abstractmethod
    def config(self) -> dict:
        """A JSON-able description from which :func:`problem_from_config` rebuilds the problem."""

    def constants(self) -> dict:
        """The problem's constants as a JSON-able dict (``sigma2_total`` is ``None`` where the
        noise has no x-independent constant)."""
        try:
            sigma2_total: float | None = self.sigma2_total
        except ValueError:
            sigma2_total = None
        return {
            "dim": self.dim,
            "L": self.L,
            "mu": self.mu,
            "f_star": self.f_star,
            "f_lower_bound": self.f_lower_bound,
            "hessian_lipschitz": self.hessian_lipschitz,
            "sigma2_per_coord": self.sigma2_per_coord,
            "sigma2_total": sigma2_total,
            "region": None if self.region is None else self.region.describe(),
        }

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n_seeds, {self.dim}), got {x.shape}")
        return x

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config()["params"].items()
                           if not isinstance(v, list) or len(v) <= 6)
        return f"{type(self).__name__}({params})"


class ProblemWrapper(Problem):
    """A problem that behaves as the wrapped problem ``base`` except where a subclass says
    otherwise: the constants are copied at construction, every derivative and oracle method is
    delegated, and any other attribute (a family's extras, e.g. ``TwoBasin.basin``) is looked
    up on ``base``.  Subclasses override only what they change (:class:`GaussianNoise` the
    oracle, the sweeps' trackers and the cost counters what they record)."""

    #: constants copied from ``base``
    FORWARDED: ClassVar[tuple[str, ...]] = ("dim", "L", "mu", "f_star", "minimizers",
                                             "hessian_lipschitz", "region",
                                             "sigma2_per_coord")

    def __init__(self, problem: Problem) -> None:
        self.base = problem
        for name in self.FORWARDED:
            setattr(self, name, getattr(problem, name))

    def __getattr__(self, name: str):
        if name == "base":  # not set yet (e.g. during unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.base, name)

    @property
    def f_lower_bound(self) -> float | None:
        return self.base.f_lower_bound

    @property
    def sigma2_total(self) -> float:
        return self.base.sigma2_total

    @property
    def eigenvalues(self) -> np.ndarray | None:
        return self.base.eigenvalues

    @property
    def stochastic(self) -> bool:
        return self.base.stochastic

    def f(self, x):
        return self.base.f(x)

    def grad(self, x):
        return self.base.grad(x)

    def hess(self, x):
        return self.base.hess(x)

    def hvp(self, x, v):
        return self.base.hvp(x, v)

    def check_batch_size(self, name, batch_size):
        return self.base.check_batch_size(name, batch_size)

    def sample_batch(self, streams, stream, batch_size):
        return self.base.sample_batch(streams, stream, batch_size)

    def batch_grad(self, x, batch, out=None):
        return self.base.batch_grad(x, batch, out)

    def noise_variance(self, x, batch_size):
        return self.base.noise_variance(x, batch_size)

    def batch_rows(self, batch, rows):
        return self.base.batch_rows(batch, rows)

    def config(self) -> dict:
        return self.base.config()

    def constants(self) -> dict:
        return self.base.constants()


class GaussianNoise(ProblemWrapper):
    r"""Additive Gaussian gradient noise: :math:`\nabla f_B(x)=\nabla f(x)+\xi_B`,
    :math:`\xi_B\sim\mathcal N(0,\tfrac{\sigma^2}{b}I_d)`, so
    :math:`\mathbb E\|\nabla f_B-\nabla f\|^2=d\,\sigma^2/b`.

    ``sigma2_per_coord`` is the per-coordinate variance of one sample's gradient noise, and
    ``sigma2_total = dim * sigma2_per_coord`` the theorems' σ².  The same batch evaluated at
    two points carries the same :math:`\xi_B` (docs/theory.md §6, model (b)).
    """

    kind = "gaussian_noise"

    def __init__(self, problem: Problem, sigma2_per_coord: float) -> None:
        if isinstance(problem, GaussianNoise):
            raise ValueError("problem already carries Gaussian noise; wrap the exact problem")
        super().__init__(problem)
        self.sigma2_per_coord = check_real("sigma2_per_coord", sigma2_per_coord, low=0.0)

    @property
    def sigma2_total(self) -> float:
        return self.dim * self.sigma2_per_coord

    @property
    def stochastic(self) -> bool:
        return self.sigma2_per_coord > 0 or self.base.stochastic

    def check_batch_size(self, name: str, batch_size: int) -> int:
        return check_int(name, batch_size, low=1)

    def sample_batch(self, streams, stream, batch_size):
        if self.sigma2_per_coord == 0.0:
            return None
        xi = streams.normal(stream, (self.dim,))
        return xi * np.sqrt(self.sigma2_per_coord / batch_size)

    def batch_grad(self, x, batch, out=None):
        g = self.base.batch_grad(x, None, out)
        if batch is not None:
            g += batch
        return g

    def noise_variance(self, x, batch_size):
        return np.full(np.atleast_2d(x).shape[0], self.sigma2_total / batch_size)

    def config(self) -> dict:
        return {"type": self.kind, "params": {"problem": self.base.config(),
                                                "sigma2_per_coord": self.sigma2_per_coord}}

    def constants(self) -> dict:
        return Problem.constants(self)

    @classmethod
    def from_config(cls, params: dict) -> GaussianNoise:
        """``params["problem"]`` is the rebuilt wrapped problem (see
        :func:`asam_theory.problems.catalog.problem_from_config`); configs written before the
        rename carry ``sigma2`` (the same per-coordinate variance)."""
        s2 = params["sigma2_per_coord"] if "sigma2_per_coord" in params else params["sigma2"]
        return cls(params["problem"], s2)


class FiniteSum(Problem):
    r"""A finite sum :math:`f=\frac1n\sum_{i=1}^n f_i` whose oracle samples ``b`` of the ``n``
    components uniformly **without replacement**: :math:`\nabla f_B=\frac1b\sum_{i\in B}\nabla f_i`.

    Exact noise: with :math:`S(x)=\frac1n\sum_i\|\nabla f_i(x)-\nabla f(x)\|^2`,
    :math:`\mathbb E\|\nabla f_B(x)-\nabla f(x)\|^2=\frac{n-b}{n-1}\cdot\frac{S(x)}{b}`.
    """

    n: int
    #: smoothness constant of every component (max_i L_i), for bounds that need it
    L_component: float

    @property
    def sigma2_total(self) -> float:
        """Undefined: the sampling noise depends on x (``ValueError`` saying what to use)."""
        raise ValueError(
            f"{type(self).__name__} is a finite sum: its gradient noise depends on x, so there "
            "is no constant sigma2_total; use noise_variance(x, batch_size=1) (E|g_B - g|^2 at "
            "x) or its maximum along the run (as asam_theory.sweeps.theorems does)")

    @abstractmethod
    def component_grads(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Mean over ``k`` of :math:`\\nabla f_{idx[m,k]}(x_m)`, shape ``(M, d)``."""

    @abstractmethod
    def all_component_grads(self, x: np.ndarray) -> np.ndarray:
        """Every component's gradient, shape ``(M, n, d)``."""

    # -- per-sample API (K-SAM's top-k, sampling tables, data shards, Fisher masks) ----------
    @abstractmethod
    def per_sample_losses(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        r"""Component losses :math:`f_{idx[m,k]}(x_m)`, shape ``(M, b)`` for ``idx`` of shape
        ``(M, b)`` (a forward pass: no gradient).  Their mean over ``k`` with ``idx`` every
        component is ``f(x)``."""

    def batch_grad_and_losses(self, x: np.ndarray, idx: np.ndarray,
                              out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        r"""``(batch_grad(x, idx, out), per_sample_losses(x, idx))``: the gradient of a batch
        and its samples' losses, which an implementation reads off the same forward-backward
        pass (AUSAM's loss differences), so a cost counter counts it as a gradient only."""
        return self.batch_grad(x, idx, out), self.per_sample_losses(x, idx)

    def per_sample_grads(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        r"""Component gradients :math:`\nabla f_{idx[m,k]}(x_m)`, shape ``(M, b, d)``; their
        mean over ``k`` is ``batch_grad(x, idx)``.  This generic version selects from
        :meth:`all_component_grads` (exact, O(n) work); families override it."""
        idx = np.asarray(idx)
        return np.take_along_axis(self.all_component_grads(x), idx[:, :, None], axis=1)

    def batch_indices(self, batch, n_rows: int) -> np.ndarray:
        """The sample indices ``(M, b)`` of a drawn batch; the full batch (``None``) is every
        component, ``arange(n)`` in each of the ``n_rows`` rows."""
        if batch is None:
            return np.broadcast_to(np.arange(self.n), (n_rows, self.n))
        return np.asarray(batch)

    def batch_loss(self, x: np.ndarray, batch) -> np.ndarray:
        """Minibatch loss :math:`f_B(x)`, shape ``(M,)`` (a forward pass); ``f(x)`` for the
        full batch."""
        if batch is None:
            return self.f(x)
        return self.per_sample_losses(x, batch).mean(axis=1)

    @property
    def stochastic(self) -> bool:
        return True

    def check_batch_size(self, name: str, batch_size: int) -> int:
        return check_int(name, batch_size, low=1, high=self.n)

    def sample_batch(self, streams, stream, batch_size):
        if batch_size >= self.n:
            return None  # the full batch: exact gradient
        return streams.subsets(stream, self.n, batch_size)

    def batch_grad(self, x, batch, out=None):
        if batch is None:
            return self.grad(x)
        return self.component_grads(x, batch)

    def noise_variance(self, x, batch_size):
        g_all = self.all_component_grads(self._check_x(x))
        g = g_all.mean(axis=1, keepdims=True)
        s = np.sum((g_all - g) ** 2, axis=(1, 2)) / self.n
        if self.n == 1:
            return np.zeros_like(s)
        return (self.n - batch_size) / (self.n - 1) * s / batch_size
