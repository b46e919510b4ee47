"""asam_theory.testing: the documented recipe runs, and the composite strategy draws only
hyperparameters its theorem accepts."""

from __future__ import annotations

import inspect
import re
import textwrap

import numpy as np
import pytest
from hypothesis import given

import asam_theory.testing as testing
from asam_theory.testing import THEOREMS, problem_with_hyperparameters


def _recipe() -> str:
    doc = testing.__doc__
    block = re.search(r"::\n\n((?:    .*\n|\n)+)", doc)
    assert block, "the module docstring lost its example"
    return textwrap.dedent(block.group(1))


def test_module_docstring_recipe_runs():
    """The example of the module docstring, executed as a user would paste it: it draws
    cases, runs AsyncSAM on them and asserts T1 (it calls its own test function)."""
    code = _recipe()
    assert "problem_with_hyperparameters" in code and "case.bound()" in code
    exec(compile(code, "asam_theory.testing docstring", "exec"), {"__name__": "__recipe__"})


@pytest.mark.parametrize("theorem", THEOREMS)
def test_composite_draws_what_the_theorem_accepts(theorem):
    @given(problem_with_hyperparameters(theorem))
    def check(case):
        p = case.problem
        assert 0 < case.lr <= 1 / p.L * (1 + 1e-12)
        assert 0 <= case.rho * p.L < 1
        if theorem == "T3":
            assert p.mu is not None and case.lr * p.mu < 1
        assert case.delta >= 0  # f(x0) >= f_lb
        assert case.sigma2_total == pytest.approx(p.dim * p.sigma2_per_coord)
        b = case.bound()  # raises if a hyperparameter were outside the theorem's range
        assert np.isfinite(b) and b >= 0
        assert case.rule().lr == case.lr

    check()


def test_cauchy_cases_have_no_f_star_but_a_delta():
    """With outliers f_star is None; the case's delta comes from the lower bound 0."""
    seen = []

    @given(problem_with_hyperparameters("T1"))
    def check(case):
        if case.problem.f_star is None:
            seen.append(case.delta)
            assert case.delta == pytest.approx(float(case.problem.f(case.x0[None])[0]))

    check()
    assert seen, "no Cauchy regression with outliers drawn in 40 examples"


def test_separately_drawn_lr_can_be_invalid_for_the_problem():
    """Why the composite exists: rule_hyperparameters() with its default L = 1 draws step
    sizes that T1 refuses on a problem with L = 10."""
    from hypothesis import find

    from asam_theory.problems import Quadratic
    from asam_theory.testing import rule_hyperparameters
    from asam_theory.theory.bounds import t1_bound

    p = Quadratic([10.0, 1.0])
    hp = find(rule_hyperparameters(), lambda hp: hp["lr"] > 1 / p.L)
    with pytest.raises(ValueError, match="lr must lie in"):
        t1_bound(1.0, p.L, hp["rho"], hp["lr"], 10)


def test_unknown_theorem_is_refused():
    @given(problem_with_hyperparameters("T9"))
    def check(case):
        raise AssertionError("drew a case for an unknown theorem")

    with pytest.raises(ValueError, match="theorem must be one of"):
        check()


def test_every_public_strategy_is_documented():
    missing = [name for name in testing.__all__
               if name not in ("seeds", "dims", "THEOREMS")
               and not inspect.getdoc(getattr(testing, name))]
    assert missing == []
    source = inspect.getsource(testing)
    for name in ("seeds", "dims", "THEOREMS"):  # module constants: documented by #: comments
        assert re.search(rf"#: .+\n{name} = ", source), name
