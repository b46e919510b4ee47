"""The engine: determinism, seed independence, recording, divergence, persistence."""

import json
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asam_theory.engine import DivergenceWarning, Trajectory, simulate, stability_limit
from asam_theory.methods import (
    SAM,
    SGD,
    USAM,
    AsyncSAM,
    SAMPa,
    rule_from_config,
)
from asam_theory.problems import (
    CauchyRegression,
    FiniteSumQuadratic,
    Quadratic,
    TwoBasin,
    problem_from_config,
)
from asam_theory.rng import SeedStreams
from asam_theory.theory import exact
from asam_theory.validation import StabilityWarning

NOISY = [
    Quadratic([3.0, 1.0, 0.2], rotate=True, shift=True).with_noise(0.2),
    FiniteSumQuadratic.random(12, 3, heterogeneity=1.0, seed=1),
    CauchyRegression(30, 3, seed=2),
    TwoBasin(2).with_noise(0.1),
]
RULES = [SGD(lr=0.05, momentum=0.9), SAM(lr=0.05, rho=0.1, batch_size=2),
         AsyncSAM(lr=0.05, rho=0.1, tau=2, batch_size=2, ascent_batch_size=1),
         AsyncSAM(lr=0.05, rho=0.1, tau=1, ascent_batch="descent", normalize=False),
         SAMPa(lr=0.05, rho=0.1, lam=0.2)]


@pytest.mark.parametrize("problem", NOISY, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_m_seeds_equal_m_single_seed_runs(problem, rule):
    x0 = np.full(problem.dim, 0.5)
    many = simulate(problem, rule, x0, 25, n_seeds=4, seed=10, record=("x", "f"))
    for i in range(4):
        one = simulate(problem, rule, x0, 25, n_seeds=1, seed=10 + i, record=("x", "f"))
        # same random draws; only BLAS may block an (M, d) @ (d, d) product differently for
        # M = 4 and M = 1, which changes the summation order by an ulp per step
        np.testing.assert_allclose(many.metrics["x"][:, i], one.metrics["x"][:, 0],
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(many.metrics["f"][:, i], one.metrics["f"][:, 0],
                                   rtol=1e-12, atol=1e-14)


def test_deterministic_given_a_seed_and_different_across_seeds():
    p, r = NOISY[0], RULES[2]
    a = simulate(p, r, np.ones(3), 50, n_seeds=3, seed=1, record=("x",))
    b = simulate(p, r, np.ones(3), 50, n_seeds=3, seed=1, record=("x",))
    np.testing.assert_array_equal(a.metrics["x"], b.metrics["x"])
    assert not np.allclose(a.metrics["x"][-1, 0], a.metrics["x"][-1, 1])


@given(st.integers(1, 7), st.integers(1, 5))
def test_random_streams_do_not_depend_on_the_block_size(block, width):
    a = SeedStreams([3, 4], block=block)
    b = SeedStreams([3, 4], block=64)
    for _ in range(9):
        np.testing.assert_array_equal(a.normal("descent", (width,)), b.normal("descent", (width,)))
        np.testing.assert_array_equal(a.subsets("ascent", 6, 2), b.subsets("ascent", 6, 2))


def test_recording_grid_and_metrics():
    p = Quadratic([2.0, 1.0], shift=True)
    tr = simulate(p, AsyncSAM(lr=0.1, rho=0.05, tau=1), np.zeros(2), 23, n_seeds=2, every=5,
                  record=("f", "grad_norm2", "dist2", "x", "mean_grad_norm2", "fidelity",
                          "perturbation_norm", "descent_grad_norm2",
                          ("first_coord", lambda prob, x: x[:, 0])))
    assert tr.times.tolist() == [0, 5, 10, 15, 20, 23]
    assert tr.step_times.tolist() == [0, 5, 10, 15, 20]
    x = tr.metrics["x"]
    np.testing.assert_allclose(tr.metrics["f"], p.f(x.reshape(-1, 2)).reshape(6, 2))
    np.testing.assert_allclose(tr.metrics["first_coord"], x[..., 0])
    np.testing.assert_allclose(tr.metrics["dist2"], np.sum((x - p.minimizer) ** 2, axis=-1))
    # exact gradients: fidelity of tau=1 AsyncSAM is the cosine of consecutive gradients
    assert np.all(tr.step_metrics["fidelity"] <= 1 + 1e-12)
    np.testing.assert_allclose(tr.step_metrics["perturbation_norm"], 0.05, rtol=1e-9)


def test_mean_grad_norm2_is_the_running_average_over_steps():
    p = Quadratic([2.0, 1.0])
    tr = simulate(p, SGD(lr=0.1), np.ones(2), 10, record=("x", "mean_grad_norm2"))
    xs = tr.metrics["x"][:, 0]
    g2 = np.sum(p.grad(xs) ** 2, axis=1)
    for t in range(1, 11):
        assert tr.metrics["mean_grad_norm2"][t, 0] == pytest.approx(g2[:t].mean(), rel=1e-12)


def test_divergence_is_reported_per_seed_and_kept_out_of_summaries():
    p = Quadratic([4.0, 1.0]).with_noise(1.0)
    x0 = np.array([[1e-3, 0.0], [1.0, 1.0], [1e-6, 0.0]])
    with pytest.warns(StabilityWarning, match=r"stability limit 0\.5"):
        with pytest.warns(DivergenceWarning, match=r"seeds diverged"):
            tr = simulate(p, SGD(lr=0.51), x0, 4000, n_seeds=3, divergence_threshold=1e6)
    assert tr.diverged.all()
    for _seed, step, value in tr.divergences():
        assert 0 < step <= 4000 and value > 1e6
    s = tr.summary()
    assert s["n_diverged"] == 3 and s["f"] is None and "first_divergence" in s
    ok = simulate(p, SGD(lr=0.1), x0, 50, n_seeds=3)
    s = ok.summary()
    assert s["n_diverged"] == 0 and np.isfinite(s["f"]) and np.isfinite(s["f_sem"])


def test_partial_divergence_summary_has_no_nan():
    p = Quadratic([1.0])
    x0 = np.array([[1.0], [1e12]])  # the second seed starts beyond the threshold's scale
    with pytest.warns(DivergenceWarning):
        tr = simulate(p, SGD(lr=0.5), x0, 5, n_seeds=2, divergence_threshold=1e3)
    s = tr.summary()
    assert s["n_diverged"] == 1 and s["first_divergence"]["step"] == 1
    assert all(not (isinstance(v, float) and np.isnan(v)) for v in s.values())


def test_no_warning_in_the_stable_regime():
    p = Quadratic([4.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulate(p, SGD(lr=0.49), np.ones(2), 100)


def test_stale_usam_limit_agrees_with_the_exact_module():
    p = Quadratic([4.0, 2.5, 1.0, 0.3])
    for tau in range(5):
        for rho in (0.0, 0.05, 0.3):
            rule = AsyncSAM(lr=0.01, rho=rho, tau=tau, normalize=False)
            ours = exact.max_stable_lr(p.eigenvalues, method=rule)
            theirs = exact.max_stable_lr(p, rho=rho, tau=tau, method="stale_usam")
            assert ours == pytest.approx(theirs, rel=1e-9), (tau, rho)
    assert stability_limit(p, USAM(lr=0.1, rho=0.05)) == pytest.approx(2 / (4 * 1.2))
    assert stability_limit(TwoBasin(2), SGD(lr=0.1)) is None


def test_save_load_round_trip_and_rerun_from_config(tmp_path):
    p = FiniteSumQuadratic.random(8, 2, seed=3)
    rule = AsyncSAM(lr=0.1, rho=0.05, tau=2, batch_size=2, ascent_batch_size=3)
    tr = simulate(p, rule, [1.0, -1.0], 30, n_seeds=3, seed=4, record=("f", "x", "fidelity"))
    path = tr.save(tmp_path / "run.npz")
    back = Trajectory.load(path)
    for k in tr.metrics:
        np.testing.assert_array_equal(back.metrics[k], tr.metrics[k])
    np.testing.assert_array_equal(back.step_metrics["fidelity"], tr.step_metrics["fidelity"])
    assert back.config == json.loads(json.dumps(tr.config))
    c = back.config
    again = simulate(problem_from_config(c["problem"]), rule_from_config(c["rule"]),
                     np.array(c["x0"]), c["steps"], c["n_seeds"], c["seed"], record=("x",))
    np.testing.assert_array_equal(again.metrics["x"], tr.metrics["x"])


@pytest.mark.parametrize("kwargs, match", [
    ({"n_seeds": 0}, r"n_seeds must be an integer in \[1, inf\]"),
    ({"steps": -1}, "steps"),
    ({"every": 0}, "every"),
    ({"x0": np.ones(3)}, "x0 must have shape"),
    ({"record": ("nope",)}, "record entry 'nope' is unknown"),
    ({"rule": AsyncSAM(lr=0.1, batch_size=2, ascent_batch_size=9)},
     r"ascent_batch_size must be an integer in \[1, 6\]"),
    ({"rule": SGD(lr=0.1, batch_size=7)}, r"batch_size must be an integer in \[1, 6\]"),
])
def test_bad_engine_input(kwargs, match):
    p = FiniteSumQuadratic.random(6, 2)
    args = {"problem": p, "rule": SGD(lr=0.1), "x0": np.ones(2), "steps": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        simulate(**args)


def test_dist2_needs_known_minimisers():
    with pytest.raises(ValueError, match="minimisers"):
        simulate(CauchyRegression(20, 2, outlier_fraction=0.3), SGD(lr=0.1), np.zeros(2), 3,
                 record=("dist2",))


def test_a_run_whose_seeds_all_diverge_stops_early_with_nan_records():
    p = Quadratic([4.0])
    with pytest.warns(DivergenceWarning):
        tr = simulate(p, SGD(lr=1.0), np.ones(1), 10**7, n_seeds=2, every=10**6,
                      record=("f", "descent_grad_norm2"), check_stability=False)
    assert tr.diverged.all() and tr.metrics["f"].shape == (11, 2)
    assert np.isnan(tr.metrics["f"][1:]).all() and np.isnan(tr.step_metrics[
        "descent_grad_norm2"][1:]).all()


def test_fidelity_of_exact_sam_is_one_and_of_sgd_an_error():
    p = TwoBasin(3)  # exact oracle
    tr = simulate(p, SAM(lr=0.01, rho=0.05), np.full(3, 0.5), 20, n_seeds=2,
                  record=("fidelity",))
    # the exact cosine: rounding only (no 1e-12 norm guard in the measurement)
    np.testing.assert_allclose(tr.step_metrics["fidelity"], 1.0, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="fidelity needs a perturbation"):
        simulate(p, SGD(lr=0.1), np.zeros(3), 2, record=("fidelity",))


@pytest.mark.parametrize("problem", NOISY, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_seed_blocks_give_the_run_of_one_block(problem, rule):
    # blocks of 2 and 3 seeds against one block of 7: the same draws and the same records
    # (to rounding, as for n_seeds), including the per-seed divergence bookkeeping
    x0 = np.random.default_rng(0).normal(size=(7, problem.dim))
    x0[4] *= 1e3  # a start whose seed diverges under the threshold below
    rec = ("x", "f", "mean_grad_norm2", "perturbation_norm" if rule.name != "sgd"
           else "descent_grad_norm2")
    kw = dict(n_seeds=7, seed=3, record=rec, every=4, divergence_threshold=50.0,
              check_stability=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        one = simulate(problem, rule, x0, 30, seed_block=7, **kw)
        for block in (2, 3):
            blk = simulate(problem, rule, x0, 30, seed_block=block, **kw)
            assert blk.config["seed_blocks"] == -(-7 // block) and one.config["seed_blocks"] == 1
            for name in one.metrics:
                np.testing.assert_allclose(blk.metrics[name], one.metrics[name], rtol=1e-12,
                                           atol=1e-14, equal_nan=True)
            for name in one.step_metrics:
                np.testing.assert_allclose(blk.step_metrics[name], one.step_metrics[name],
                                           rtol=1e-12, atol=1e-14, equal_nan=True)
            np.testing.assert_allclose(blk.x_final, one.x_final, rtol=1e-12, atol=1e-14,
                                       equal_nan=True)
            np.testing.assert_array_equal(blk.diverged_at, one.diverged_at)
    assert one.diverged_at[4] > 0  # the check above covered a diverging seed


def test_block_rows_keeps_arrays_near_the_cache_budget():
    from asam_theory.engine.simulate import BLOCK_BYTES, MIN_BLOCK_ROWS, block_rows

    assert block_rows(1000, 100) == 500  # 655 rows fit 512 KiB: two even blocks
    assert block_rows(100, 100) == 100 and block_rows(20000, 2) == 20000
    for m, d in [(1000, 100), (5000, 50), (3000, 1000), (7, 3)]:
        r = block_rows(m, d)
        assert 1 <= r <= m
        n_blocks = -(-m // r)
        # as few blocks as the budget allows, at least MIN_BLOCK_ROWS seeds per block
        assert n_blocks == -(-m // max(MIN_BLOCK_ROWS, BLOCK_BYTES // (8 * d)))
    with pytest.raises(ValueError, match="seed_block"):
        simulate(Quadratic([1.0]), SGD(lr=0.1), np.ones(1), 3, seed_block=0)


def test_engine_overhead_benchmark_runs_and_reports_its_blocks(capsys):
    # a smoke run of benchmarks/engine_overhead.py (timings are not asserted)
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "engine_overhead.py"
    spec = importlib.util.spec_from_file_location("engine_overhead", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--repeats", "1", "--steps", "5", "--seeds", "300", "--dim", "300",
                    "--threads", "1", "--json"])
    assert res["engine_over_raw"] > 0 and len(res["engine_over_raw_per_repeat"]) == 1
    assert res["seed_blocks"] == 2 and res["seed_block"] == 150  # 300 × 300 floats: 2 blocks
    assert '"engine_over_raw"' in capsys.readouterr().out


def test_sam_steps_survive_a_gradient_that_returns_its_input():
    # SAM-type steps write x + ε into the slot of the next iterate; a problem whose gradient is
    # (a view of) its input must not have that gradient overwritten by the base step
    class Identity(Quadratic):
        def batch_grad(self, x, batch, out=None):
            return x  # ∇½‖x‖² = x, returned without a copy

    plain = Quadratic([1.0, 1.0, 1.0])
    x0 = np.array([1.0, -2.0, 0.5])
    rec = ("x", "descent_grad_norm2", "fidelity")
    for rule in (SAM(lr=0.1, rho=0.2), AsyncSAM(lr=0.1, rho=0.2, tau=2),
                 SAM(lr=0.1, rho=0.2, momentum=0.9)):
        a = simulate(Identity([1.0, 1.0, 1.0]), rule, x0, 30, n_seeds=2, record=rec)
        b = simulate(plain, rule, x0, 30, n_seeds=2, record=rec)
        np.testing.assert_allclose(a.metrics["x"], b.metrics["x"], rtol=0, atol=1e-15)
        for name in ("descent_grad_norm2", "fidelity"):
            np.testing.assert_allclose(a.step_metrics[name], b.step_metrics[name], rtol=1e-14,
                                       atol=1e-15)
