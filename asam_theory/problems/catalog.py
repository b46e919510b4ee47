"""The problem families as one list, and rebuilding a problem from its ``config()``."""

from __future__ import annotations

from asam_theory.problems.base import GaussianNoise, Problem
from asam_theory.problems.finite_sum import FiniteSumQuadratic
from asam_theory.problems.nonconvex import CauchyRegression, MatrixFactorization, TwoBasin
from asam_theory.problems.quadratic import Quadratic
from asam_theory.problems.softmax import SoftmaxRegression

#: every problem class that :func:`problem_from_config` rebuilds, keyed by its ``kind``
FAMILIES: tuple[type[Problem], ...] = (Quadratic, FiniteSumQuadratic, TwoBasin,
                                       CauchyRegression, MatrixFactorization, GaussianNoise,
                                       SoftmaxRegression)
PROBLEMS: dict[str, type[Problem]] = {cls.kind: cls for cls in FAMILIES}


def problem_from_config(config: dict) -> Problem:
    """Rebuild a problem from :meth:`Problem.config` output; a wrapper's nested
    ``params["problem"]`` is rebuilt first and handed to its ``from_config``."""
    try:
        cls = PROBLEMS[config["type"]]
    except KeyError as exc:
        raise ValueError(f"unknown problem type {config.get('type')!r}; "
                         f"known: {sorted(PROBLEMS)}") from exc
    params = dict(config["params"])
    if isinstance(params.get("problem"), dict) and "type" in params["problem"]:
        params["problem"] = problem_from_config(params["problem"])
    return cls.from_config(params)
