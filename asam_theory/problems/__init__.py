"""The problem zoo: objectives with exact derivatives, computed constants and stochastic oracles.

All functions take ``x`` of shape ``(M, d)`` (one row per seed).  See
:class:`~asam_theory.problems.base.Problem` for the interface.
"""

from asam_theory.problems.base import Ball, FiniteSum, GaussianNoise, Problem
from asam_theory.problems.finite_sum import FiniteSumQuadratic
from asam_theory.problems.nonconvex import CauchyRegression, MatrixFactorization, TwoBasin
from asam_theory.problems.quadratic import SPECTRA, Quadratic, make_spectrum

PROBLEMS: dict[str, type[Problem]] = {
    cls.kind: cls
    for cls in (Quadratic, FiniteSumQuadratic, TwoBasin, CauchyRegression, MatrixFactorization,
                GaussianNoise)
}


def problem_from_config(config: dict) -> Problem:
    """Rebuild a problem from :meth:`Problem.config` output."""
    try:
        cls = PROBLEMS[config["type"]]
    except KeyError as exc:
        raise ValueError(f"unknown problem type {config.get('type')!r}; "
                         f"known: {sorted(PROBLEMS)}") from exc
    return cls.from_config(config["params"])


__all__ = [
    "Ball", "CauchyRegression", "FiniteSum", "FiniteSumQuadratic", "GaussianNoise",
    "MatrixFactorization", "PROBLEMS", "Problem", "Quadratic", "SPECTRA", "TwoBasin",
    "make_spectrum", "problem_from_config",
]
