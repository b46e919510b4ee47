"""Hypothesis strategies for problems and hyperparameters, for property-testing methods.

The recipe: :func:`problem_with_hyperparameters` draws a problem together with hyperparameters
valid for one of the theorems (``lr`` in (0, 1/L] of *that* problem, ρ in the theorem's range,
a start ``x0``, Gaussian gradient noise with its ``sigma2_total``), and the drawn
:class:`ProblemCase` computes the theorem's bound, so a property test of a rule is three
lines (``tests/test_testing.py`` runs this example)::

    from hypothesis import given, settings
    from asam_theory.engine import simulate
    from asam_theory.testing import problem_with_hyperparameters

    @settings(max_examples=5, deadline=None)
    @given(problem_with_hyperparameters(theorem="T1"))
    def test_asyncsam_meets_t1(case):
        tr = simulate(case.problem, case.rule(), case.x0, steps=case.steps, n_seeds=32,
                      seed=0, record=("mean_grad_norm2",), every=case.steps)
        s = tr.summary()
        assert s["mean_grad_norm2"] <= case.bound() + 3 * s["mean_grad_norm2_sem"]

    test_asyncsam_meets_t1()

Replace ``case.rule()`` by your own rule (``case.rule_kwargs()`` holds lr, rho, tau and the
batch sizes) to test it against the same bound.  Drawing :func:`problems` and
:func:`rule_hyperparameters` separately does not work for bounds: ``lr`` must be tied to the
problem's L (``rule_hyperparameters(L=problem.L)`` inside ``st.data()``), which the composite
does for you.

Every strategy draws small dimensions so a property test stays fast.  Requires the
``hypothesis`` package (in the ``test`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from asam_theory.methods import SAM, SGD, USAM, AsyncSAM, SAMPa, UpdateRule
from asam_theory.problems import (
    SPECTRA,
    CauchyRegression,
    FiniteSumQuadratic,
    MatrixFactorization,
    Problem,
    Quadratic,
    TwoBasin,
    make_spectrum,
)
from asam_theory.theory import bounds

__all__ = [
    "THEOREMS",
    "ProblemCase",
    "dims",
    "finite_sum_quadratics",
    "nonconvex_problems",
    "points",
    "problem_with_hyperparameters",
    "problems",
    "quadratics",
    "rule_hyperparameters",
    "rules",
    "seeds",
    "spectra",
]

#: Seeds for the problems' random data: any 31-bit integer.
seeds = st.integers(min_value=0, max_value=2**31 - 1)
#: Dimensions d of the drawn problems: 1 to 6.
dims = st.integers(min_value=1, max_value=6)

#: The theorems :func:`problem_with_hyperparameters` draws for (``asam_theory.theory.bounds``).
THEOREMS = ("T1", "T2", "T3")


@st.composite
def spectra(draw, dim=None, *, positive: bool = True) -> np.ndarray:
    """Eigenvalue lists: a named family or free values in [1e-2, 10] (negatives allowed if
    ``positive`` is False)."""
    d = draw(dims) if dim is None else dim
    if draw(st.booleans()):
        kind = draw(st.sampled_from(SPECTRA))
        L = draw(st.floats(0.1, 10.0))
        return make_spectrum(kind, d, L=L, kappa=draw(st.floats(1.0, 100.0)),
                             exponent=draw(st.floats(0.0, 2.0)))
    lo = 1e-2 if positive else -5.0
    vals = draw(st.lists(st.floats(lo, 10.0), min_size=d, max_size=d))
    return np.array(vals)


@st.composite
def quadratics(draw, *, positive: bool = True, dim=None) -> Quadratic:
    """Quadratics with drawn spectrum, optional rotation and shift."""
    lam = draw(spectra(dim, positive=positive))
    return Quadratic(lam, rotate=draw(st.booleans()), shift=draw(st.booleans()),
                     f_star=draw(st.floats(-1.0, 1.0)), seed=draw(seeds))


@st.composite
def finite_sum_quadratics(draw) -> FiniteSumQuadratic:
    """Finite sums of 2–12 quadratics in 1–4 dimensions (:meth:`FiniteSumQuadratic.random`),
    with a named spectrum, L in [0.1, 5] and heterogeneity in [0, 2]; their oracle samples
    components (noise that depends on x, so no constant ``sigma2_total``)."""
    return FiniteSumQuadratic.random(
        draw(st.integers(2, 12)), draw(st.integers(1, 4)),
        spectrum=draw(st.sampled_from(SPECTRA)), L=draw(st.floats(0.1, 5.0)),
        heterogeneity=draw(st.floats(0.0, 2.0)), seed=draw(seeds))


@st.composite
def nonconvex_problems(draw) -> Problem:
    """A sharp/flat two-basin landscape, Cauchy (robust) regression with up to 30 % outliers
    (``f_star`` is then ``None``; use ``f_lower_bound`` or :meth:`Problem.delta`), or a small
    matrix factorisation.  The two-basin and factorisation constants hold on ``region`` only."""
    kind = draw(st.sampled_from(["two_basin", "cauchy", "mf"]))
    if kind == "two_basin":
        return TwoBasin(draw(st.integers(1, 4)), sharp=draw(st.floats(1.0, 20.0)),
                        flat=draw(st.floats(0.1, 2.0)), transverse=draw(st.floats(0.1, 5.0)),
                        radius=draw(st.floats(1.5, 3.0)))
    if kind == "cauchy":
        return CauchyRegression(draw(st.integers(4, 40)), draw(st.integers(1, 5)),
                                outlier_fraction=draw(st.floats(0.0, 0.3)), seed=draw(seeds))
    return MatrixFactorization(draw(st.integers(1, 4)), draw(st.integers(1, 4)),
                               draw(st.integers(1, 2)), seed=draw(seeds))


def problems() -> st.SearchStrategy[Problem]:
    """Any problem of the zoo (exact oracles).  For a bound, draw
    :func:`problem_with_hyperparameters` instead: not every problem here meets a theorem's
    assumptions (indefinite quadratics are unbounded below, some constants hold on a region)."""
    return st.one_of(quadratics(), finite_sum_quadratics(), nonconvex_problems())


def points(problem: Problem, n: int = 4, scale: float = 1.0) -> st.SearchStrategy[np.ndarray]:
    """``(n, d)`` points inside the problem's region (a ball of radius ``scale`` otherwise)."""
    radius = scale if problem.region is None else problem.region.radius

    @st.composite
    def _pts(draw):
        rng = np.random.default_rng(draw(seeds))
        z = rng.standard_normal((n, problem.dim))
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        r = radius * rng.random((n, 1)) ** (1.0 / problem.dim)
        center = 0.0 if problem.region is None else problem.region.center
        return center + r * z

    return _pts()


@st.composite
def rule_hyperparameters(draw, *, L: float = 1.0) -> dict:
    """``lr`` in (0, 1/L], ``rho`` in [0, 0.5], ``tau`` in {0, 1, 2, 4, 8}, batch sizes 1–8.

    ``L`` is the smoothness constant of the problem the rule will run on; the default 1 fits
    only problems with L ≤ 1.  Draw it inside ``st.data()`` with the problem's L, or use
    :func:`problem_with_hyperparameters`, which ties ``lr`` and ``rho`` to the problem."""
    return {
        "lr": draw(st.floats(1e-3, 1.0)) / L,
        "rho": draw(st.floats(0.0, 0.5)),
        "tau": draw(st.sampled_from([0, 1, 2, 4, 8])),
        "batch_size": draw(st.integers(1, 8)),
        "ascent_batch_size": draw(st.integers(1, 8)),
    }


@st.composite
def rules(draw, *, L: float = 1.0) -> UpdateRule:
    """Any rule (SGD, SAM, USAM, AsyncSAM, SAMPa) with :func:`rule_hyperparameters` drawn for
    smoothness ``L`` (step size at most 1/L)."""
    hp = draw(rule_hyperparameters(L=L))
    kind = draw(st.sampled_from(["sgd", "sam", "usam", "asyncsam", "sampa"]))
    base = {"lr": hp["lr"], "batch_size": hp["batch_size"]}
    if kind == "sgd":
        return SGD(**base)
    if kind == "sam":
        return SAM(**base, rho=hp["rho"])
    if kind == "usam":
        return USAM(**base, rho=hp["rho"])
    if kind == "sampa":
        return SAMPa(**base, rho=hp["rho"], lam=draw(st.floats(0.0, 1.0)))
    return AsyncSAM(**base, rho=hp["rho"], tau=hp["tau"], normalize=draw(st.booleans()),
                    ascent_batch_size=hp["ascent_batch_size"])


# ----------------------------------------------------------------- problems with hyperparameters


@dataclass(frozen=True)
class ProblemCase:
    r"""A problem, a start and hyperparameters that satisfy one theorem's assumptions.

    Drawn by :func:`problem_with_hyperparameters`.  ``problem`` carries additive Gaussian
    gradient noise (``problem.sigma2_per_coord``, possibly 0), so its ``sigma2_total`` is the
    theorem's :math:`\sigma^2`; :attr:`delta` is :math:`\Delta=f(x_0)-f_{\rm lb}` from the
    problem's lower bound (``f_star`` where known).

    Attributes:
        problem, x0: the problem (noisy) and the start, shape ``(d,)``.
        lr, rho, tau, batch_size, ascent_batch_size: η ∈ (0, 1/L] (and ηµ < 1 for T3),
            ρ (ρL < 1 for T2), τ, b and b′.
        steps: a horizon T for the bound and the run.
        theorem: ``"T1"``, ``"T2"`` or ``"T3"``.
    """

    problem: Problem
    x0: np.ndarray
    lr: float
    rho: float
    tau: int
    batch_size: int
    ascent_batch_size: int
    steps: int
    theorem: str

    @property
    def delta(self) -> float:
        """Δ = f(x0) − f_lb (:meth:`Problem.delta`)."""
        return float(self.problem.delta(self.x0))

    @property
    def sigma2_total(self) -> float:
        """The theorems' σ² of :attr:`problem` (``dim * sigma2_per_coord``)."""
        return self.problem.sigma2_total

    def rule_kwargs(self) -> dict:
        """``lr``, ``rho``, ``tau``, ``batch_size``, ``ascent_batch_size`` as keywords."""
        return {"lr": self.lr, "rho": self.rho, "tau": self.tau,
                "batch_size": self.batch_size, "ascent_batch_size": self.ascent_batch_size}

    def rule(self) -> UpdateRule:
        """The rule the theorem is about, with these hyperparameters: normalised AsyncSAM on
        its own ascent batch (T1, T3) or stale USAM, AsyncSAM unnormalised (T2)."""
        return AsyncSAM(**self.rule_kwargs(), normalize=self.theorem != "T2")

    def bound(self, steps: int | None = None) -> float:
        """The theorem's bound at horizon ``steps`` (default :attr:`steps`): on
        :math:`\\frac1T\\sum_{t<T}\\mathbb E\\|\\nabla f(w_t)\\|^2` (T1, T2; the engine's
        ``mean_grad_norm2`` at t = T) or on :math:`\\mathbb E f(w_T)-f^*` (T3)."""
        T = self.steps if steps is None else steps
        p = self.problem
        if self.theorem == "T1":
            return bounds.t1_bound(self.delta, p.L, self.rho, self.lr, T,
                                   sigma2_total=self.sigma2_total, batch_size=self.batch_size,
                                   ascent_batch_size=self.ascent_batch_size)
        if self.theorem == "T2":
            return bounds.t2_bound(self.delta, p.L, self.rho, self.lr, self.tau, T,
                                   sigma2_total=self.sigma2_total, batch_size=self.batch_size,
                                   ascent_batch_size=self.ascent_batch_size)
        return bounds.t3_bound(self.delta, p.L, p.mu, self.rho, self.lr, T,
                               sigma2_total=self.sigma2_total, batch_size=self.batch_size)


@st.composite
def problem_with_hyperparameters(draw, theorem: str = "T1", *, noise: bool = True,
                                 max_steps: int = 200) -> ProblemCase:
    """A :class:`ProblemCase`: a problem with hyperparameters valid for ``theorem``.

    * Problems: quadratics with a positive spectrum (T1, T2, T3: L-smooth everywhere, f* known,
      µ > 0 for T3's PL condition) and Cauchy regression (T1, T2: L-smooth everywhere, f ≥ 0,
      ``f_star`` unknown with outliers), each with Gaussian gradient noise of
      ``sigma2_per_coord`` in [0, 0.1] (0 when ``noise`` is False).
    * ``lr = c/L`` with c in [0.01, 1] (T3: c ≤ 0.99, so ηµ < 1); ``rho = r/L`` with r in
      [0, 0.9] (T2 needs ρL < 1; the same range keeps T1's L²ρ² term of the order of the
      others); τ in {0, 1, 2, 4}; b, b′ in 1–8; T in [10, ``max_steps``].
    * ``x0``: the problem's minimiser (0 for Cauchy regression) plus a random vector of
      length 0.5–3.
    """
    if theorem not in THEOREMS:
        raise ValueError(f"theorem must be one of {THEOREMS}, got {theorem!r}")
    kind = "quadratic" if theorem == "T3" else draw(st.sampled_from(["quadratic", "cauchy"]))
    if kind == "quadratic":
        base: Problem = draw(quadratics(positive=True))
        centre = base.minimizers[0]
    else:
        base = CauchyRegression(draw(st.integers(4, 40)), draw(st.integers(1, 5)),
                                outlier_fraction=draw(st.floats(0.0, 0.3)), seed=draw(seeds))
        centre = np.zeros(base.dim)
    s = draw(st.floats(0.0, 0.1)) if noise else 0.0
    problem = base.with_noise(s)
    rng = np.random.default_rng(draw(seeds))
    z = rng.standard_normal(problem.dim)
    x0 = centre + draw(st.floats(0.5, 3.0)) * z / max(np.linalg.norm(z), 1e-12)
    L = problem.L
    return ProblemCase(
        problem=problem, x0=x0,
        lr=draw(st.floats(0.01, 0.99 if theorem == "T3" else 1.0)) / L,
        rho=draw(st.floats(0.0, 0.9)) / L,
        tau=draw(st.sampled_from([0, 1, 2, 4])),
        batch_size=draw(st.integers(1, 8)), ascent_batch_size=draw(st.integers(1, 8)),
        steps=draw(st.integers(10, max(10, int(max_steps)))), theorem=theorem)
