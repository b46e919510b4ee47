"""Shared infrastructure of the efficient-SAM peers: per-sample finite-sum API, counted cost
(CountingOracle) equal to the declared cost of every catalogued method, the catalogue."""

from __future__ import annotations

import numpy as np
import pytest

from asam_theory.methods import METHODS, SAMPa, get_method, method_names, rule_from_config
from asam_theory.problems import (
    CauchyRegression,
    CountingOracle,
    FiniteSumQuadratic,
    Quadratic,
)
from asam_theory.rng import SeedStreams

FINITE_SUMS = [FiniteSumQuadratic.random(12, 3, seed=2), CauchyRegression(20, 3, seed=1)]


@pytest.mark.parametrize("p", FINITE_SUMS, ids=lambda p: p.kind)
def test_per_sample_api_shapes_means_and_finite_differences(p):
    rng = np.random.default_rng(0)
    M, b = 3, 5
    x = rng.standard_normal((M, p.dim))
    idx = np.stack([rng.choice(p.n, b, replace=False) for _ in range(M)])
    losses, grads = p.per_sample_losses(x, idx), p.per_sample_grads(x, idx)
    assert losses.shape == (M, b) and grads.shape == (M, b, p.dim)
    np.testing.assert_allclose(grads.mean(axis=1), p.batch_grad(x, idx), atol=1e-14)
    full = p.batch_indices(None, M)
    assert full.shape == (M, p.n)
    np.testing.assert_allclose(p.per_sample_losses(x, full).mean(axis=1), p.f(x), atol=1e-13)
    np.testing.assert_allclose(p.batch_loss(x, idx), losses.mean(axis=1), atol=1e-15)
    # the generic selection from all_component_grads gives the same numbers
    generic = np.take_along_axis(p.all_component_grads(x), idx[:, :, None], axis=1)
    np.testing.assert_allclose(grads, generic, atol=1e-14)
    # central differences, step 1e-6: truncation O(h^2 f''') ~ 1e-12, rounding ~ 1e-10
    h = 1e-6
    for j in range(p.dim):
        e = np.zeros(p.dim)
        e[j] = h
        fd = (p.per_sample_losses(x + e, idx) - p.per_sample_losses(x - e, idx)) / (2 * h)
        np.testing.assert_allclose(fd, grads[:, :, j], atol=1e-7)


def _run_counted(rule, problem, steps, n_seeds=3, seed=0):
    oracle = CountingOracle(problem)
    streams = SeedStreams(list(range(seed, seed + n_seeds)))
    x0 = np.full((n_seeds, problem.dim), 0.5)
    rule.validate(oracle)
    state = rule.init(x0, oracle, streams)
    for _ in range(steps):
        state, _ = rule.step(state, oracle, streams)
    return oracle, state


PROBLEMS = {
    "finite_sum": FiniteSumQuadratic.random(16, 3, seed=1),
    "noisy_quadratic": Quadratic([2.0, 1.0, 0.5], rotate=True, seed=0).with_noise(0.1),
}


@pytest.mark.parametrize("kind", sorted(PROBLEMS))
@pytest.mark.parametrize("name", method_names())
def test_counted_cost_equals_declared(name, kind):
    problem = PROBLEMS[kind]
    method = get_method(name)
    if method.rule.__dataclass_fields__.get("batch_size") is None:  # pragma: no cover
        pytest.skip("rule without a batch")
    rule = method.build(lr=0.05, batch_size=4, rho=0.05, tau=1)
    needs_finite_sum = getattr(rule, "needs_finite_sum", False)
    if needs_finite_sum and not hasattr(problem, "n"):
        pytest.skip(f"{name} needs a finite sum")
    if not getattr(rule, "supports", lambda p: True)(problem):
        pytest.skip(f"{name} needs a classification problem")
    steps = 60  # a multiple of every alternation period used here (k, update_freq)
    oracle, state = _run_counted(rule, problem, steps)
    counted = oracle.cost(rule.batch_size, steps, n_seeds=3)
    declared = rule.realised_cost(state)
    assert counted.grads_per_step == pytest.approx(declared.grads_per_step, rel=1e-12)
    assert counted.forwards_per_step == pytest.approx(declared.forwards_per_step, rel=1e-12)
    assert oracle.exact_calls == 0  # a step pays for everything it uses


def test_counted_cost_of_asyncsam_with_its_own_ascent_batch():
    rule = get_method("asyncsam").build(lr=0.05, batch_size=4, ascent_batch_size=2, rho=0.05)
    oracle, _ = _run_counted(rule, PROBLEMS["finite_sum"], 10)
    assert rule.cost.grads_per_step == 1.5
    assert oracle.cost(4, 10, 3).grads_per_step == pytest.approx(1.5)


def test_sampa_gradient_start_pays_one_gradient_at_init():
    rule = SAMPa(lr=0.05, batch_size=4, rho=0.05, start="gradient")
    oracle, _ = _run_counted(rule, PROBLEMS["finite_sum"], 10)
    assert oracle.cost(4, 10, 3).grads_per_step == pytest.approx(2 + 1 / 10)


def test_catalogue_names_each_method_once_and_rebuilds_configs():
    names = method_names()
    assert len(names) == len(set(names)) == len(METHODS)
    for m in METHODS:
        rule = m.build(lr=0.1, batch_size=2, rho=0.05)
        assert rule_from_config(rule.config()) == rule
    with pytest.raises(ValueError, match="method"):
        get_method("no-such-method")


def test_catalogue_torch_paths_import():
    pytest.importorskip("torch")
    import torch

    for m in METHODS:
        if m.torch_optimizer is not None:
            assert issubclass(m.torch_class(), torch.optim.Optimizer), m.name


def test_counting_oracle_refuses_untagged_batches_and_double_wrapping():
    p = Quadratic([1.0, 2.0])
    oracle = CountingOracle(p)
    with pytest.raises(ValueError, match="outermost"):
        oracle.batch_grad(np.zeros((1, 2)), None)
    with pytest.raises(ValueError, match="CountingOracle"):
        CountingOracle(oracle)


def test_simulate_methods_all_runs_every_catalogued_method(capsys):
    import json

    from asam_theory.cli import main

    # softmax regression: a finite sum with BiSAM's lower bound, so every method runs
    code = main(["simulate", "--methods", "all", "--problem", "softmax", "--dim", "3",
                 "--steps", "6", "--n-seeds", "2", "--batch-size", "4", "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["rule"] for r in rows] == method_names()
    code = main(["simulate", "--methods", "ksam", "sam", "--problem", "quadratic", "--dim", "3",
                 "--steps", "6", "--n-seeds", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 0 and "skipping ksam" in captured.err
    assert [r["rule"] for r in json.loads(captured.out)["rows"]] == ["sam"]
    assert main(["simulate", "--methods", "nope"]) == 2
    assert "--methods must name methods among" in capsys.readouterr().err
