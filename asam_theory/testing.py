"""Hypothesis strategies for problems and hyperparameters, for property-testing methods.

Users can property-test their own rules against the package's problems and bounds::

    from hypothesis import given
    from asam_theory.testing import problems, rule_hyperparameters

    @given(problems(), rule_hyperparameters())
    def test_my_rule(problem, hp): ...

Every strategy draws small dimensions so a property test stays fast.  Requires the
``hypothesis`` package (in the ``test`` extra).
"""

from __future__ import annotations

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

seeds = st.integers(min_value=0, max_value=2**31 - 1)
dims = st.integers(min_value=1, max_value=6)


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
    return FiniteSumQuadratic.random(
        draw(st.integers(2, 12)), draw(st.integers(1, 4)),
        spectrum=draw(st.sampled_from(SPECTRA)), L=draw(st.floats(0.1, 5.0)),
        heterogeneity=draw(st.floats(0.0, 2.0)), seed=draw(seeds))


@st.composite
def nonconvex_problems(draw) -> Problem:
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
    """Any problem of the zoo (exact oracles)."""
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
    """``lr`` in (0, 1/L], ``rho`` in [0, 0.5], ``tau`` in {0,…,8}, batch sizes 1–8."""
    return {
        "lr": draw(st.floats(1e-3, 1.0)) / L,
        "rho": draw(st.floats(0.0, 0.5)),
        "tau": draw(st.sampled_from([0, 1, 2, 4, 8])),
        "batch_size": draw(st.integers(1, 8)),
        "ascent_batch_size": draw(st.integers(1, 8)),
    }


@st.composite
def rules(draw, *, L: float = 1.0) -> UpdateRule:
    """Any rule with drawn hyperparameters (step size at most 1/L)."""
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
