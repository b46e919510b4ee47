"""The problem zoo: objectives with exact derivatives, computed constants and stochastic oracles.

All functions take ``x`` of shape ``(M, d)`` (one row per seed).  See
:class:`~asam_theory.problems.base.Problem` for the interface and
:mod:`~asam_theory.problems.catalog` for the list of families.
"""

from asam_theory.problems.base import Ball, FiniteSum, GaussianNoise, Problem, ProblemWrapper
from asam_theory.problems.catalog import FAMILIES, PROBLEMS, problem_from_config
from asam_theory.problems.counting import CountedCost, CountingOracle, TaggedBatch
from asam_theory.problems.finite_sum import FiniteSumQuadratic
from asam_theory.problems.nonconvex import CauchyRegression, MatrixFactorization, TwoBasin
from asam_theory.problems.quadratic import SPECTRA, Quadratic, make_spectrum
from asam_theory.problems.softmax import SoftmaxRegression

__all__ = [
    "FAMILIES", "Ball", "CauchyRegression", "CountedCost", "CountingOracle", "FiniteSum",
    "FiniteSumQuadratic", "GaussianNoise",
    "MatrixFactorization", "PROBLEMS", "Problem", "ProblemWrapper", "Quadratic", "SPECTRA",
    "SoftmaxRegression", "TaggedBatch", "TwoBasin", "make_spectrum", "problem_from_config",
]
