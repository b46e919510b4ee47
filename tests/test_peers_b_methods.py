"""ARSAM (vSAM rule), AUSAM, BiSAM and RWP numpy rules: limits, counted == declared cost,
equations on small cases, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from asam_theory.methods import ARSAM, AUSAM, RWP, SAM, SGD, BiSAM
from asam_theory.methods.arsam import block_variance, mean_relative_change
from asam_theory.methods.ausam import scaled_probabilities
from asam_theory.problems import CountingOracle, FiniteSumQuadratic, SoftmaxRegression
from asam_theory.rng import SeedStreams

SOFT = SoftmaxRegression.random(n=40, n_features=3, n_classes=3, seed=4)
BASE = dict(lr=0.2, batch_size=8, momentum=0.9, weight_decay=1e-3)


class Info:
    """A copy of what a step's :class:`StepInfo` held (its arrays live in reused buffers)."""

    def __init__(self, info):
        self.x = info.x.copy()
        self.descent_grad = info.descent_grad.copy()
        self.skipped = info.skipped
        self.perturbation = None if info.perturbation is None else info.perturbation.copy()
        self.ascent_grad = None if info.ascent_grad is None else info.ascent_grad.copy()
        self.perturbation_norm = (None if info.perturbation is None and not info.skipped
                                  else info.perturbation_norm())


def run(rule, problem=SOFT, steps=20, seeds=(0, 1), counted=False):
    oracle = CountingOracle(problem) if counted else problem
    streams = SeedStreams(list(seeds))
    rule.validate(oracle)
    x0 = np.tile(np.linspace(-0.5, 0.5, problem.dim), (len(seeds), 1))
    state = rule.init(x0, oracle, streams)
    xs, infos = [state.x.copy()], []
    for _ in range(steps):
        state, info = rule.step(state, oracle, streams)
        xs.append(state.x.copy())
        infos.append(Info(info))
    return np.array(xs), state, infos, oracle


def test_rho_zero_gives_the_base_optimizer():
    sgd = run(SGD(**BASE))[0]
    for rule in (BiSAM(rho=0.0, **BASE), ARSAM(rho=0.0, window=4, blocks=2, warmup_steps=4,
                                               **BASE),
                 AUSAM(rho=0.0, alpha=1.0, **BASE)):
        # exact up to the order of the subset's summation (AUSAM permutes the batch)
        np.testing.assert_allclose(run(rule)[0], sgd, rtol=0, atol=1e-13, err_msg=rule.name)


def test_rwp_gamma_zero_is_sgd_on_both_shards():
    xs, _, infos, _ = run(RWP(gamma=0.0, alpha=0.5, **BASE))
    streams = SeedStreams([0, 1])
    x = xs[0]
    for t in range(3):
        b1 = SOFT.sample_batch(streams, "descent", 8)
        b2 = SOFT.sample_batch(streams, "ascent", 8)
        streams.normal("weight_noise", (SOFT.dim,))
        g = 0.5 * SOFT.batch_grad(x, b1) + 0.5 * SOFT.batch_grad(x, b2)
        np.testing.assert_allclose(infos[t].descent_grad, g, atol=1e-15)
        x = xs[t + 1]
    assert np.all(infos[0].perturbation == 0)


def test_degenerate_settings_give_sam():
    sam = run(SAM(rho=0.1, **BASE))[0]
    np.testing.assert_allclose(run(AUSAM(rho=0.1, alpha=1.0, epoch_length=2, **BASE))[0], sam,
                               rtol=0, atol=1e-13)
    np.testing.assert_allclose(run(ARSAM(rho=0.1, sampling_probability=1.0, window=4,
                                         blocks=2, warmup_steps=4, **BASE))[0], sam,
                               rtol=0, atol=0)


@pytest.mark.parametrize("rule", [
    ARSAM(rho=0.1, window=4, blocks=2, warmup_steps=4, max_p=0.8, **BASE),
    ARSAM(rho=0.1, window=4, blocks=2, warmup_steps=4, sampling_probability=0.3, **BASE),
    AUSAM(rho=0.1, alpha=0.5, epoch_length=3, trans_epochs=2, **BASE),
    BiSAM(rho=0.1, bound="tanh", mu=2.0, alpha=0.5, **BASE),
    RWP(alpha=0.3, gamma=0.05, filter_size=4, ascent_batch_size=4, **BASE),
], ids=lambda r: r.name)
def test_counted_cost_equals_declared_on_softmax(rule):
    steps = 24
    _, state, _, oracle = run(rule, steps=steps, seeds=(0, 1, 2), counted=True)
    counted = oracle.cost(rule.batch_size, steps, 3)
    declared = rule.realised_cost(state)
    assert counted.grads_per_step == pytest.approx(declared.grads_per_step, rel=1e-12)
    assert counted.forwards_per_step == pytest.approx(declared.forwards_per_step, rel=1e-12)
    assert oracle.exact_calls == 0
    if rule.name == "arsam":  # the schedule mixed SAM and reuse steps
        assert 1 < declared.grads_per_step < 2


def test_arsam_reuse_weights_decay_and_stop():
    """After the warm-up SAM steps, a never-sampling schedule reuses the PSF with weights
    beta, beta^2, ..., beta^R and then takes SGD steps."""
    rule = ARSAM(rho=0.2, beta=0.5, reuse_steps=3, window=4, blocks=2, warmup_steps=4,
                 sampling_probability=0.0, **BASE)
    _, _, infos, _ = run(rule, steps=10, seeds=(0,))
    psf = None
    for t, info in enumerate(infos):
        if t < 4:
            assert not info.skipped
            continue
        assert info.skipped and info.perturbation is None
        g = info.ascent_grad
        if psf is None:  # recover the PSF from the first reuse step: d = g + beta psf
            psf = (info.descent_grad - g) / 0.5
            assert np.abs(psf).max() > 1e-6
        w = 0.5 ** (t - 3) if t - 3 <= 3 else 0.0
        np.testing.assert_allclose(info.descent_grad, g + w * psf, atol=1e-14)


def test_arsam_schedule_helpers():
    hist = np.array([[1.0, 2.0, 3.0, 6.0]])
    np.testing.assert_allclose(mean_relative_change(hist), [(1 + 0.5 + 1) / 3])
    np.testing.assert_allclose(mean_relative_change(np.array([[4.0, 3.0, 2.0]])),
                               [(-0.25 - 1 / 3) / 2])
    v = block_variance(np.array([[4.0, 1.0, 3.0, 2.0]]), 2)  # sorted 1,2 | 3,4: var 0.5 each
    np.testing.assert_allclose(v, [0.5])


def test_ausam_probabilities_and_table():
    p = scaled_probabilities(np.array([[0.0, 1.0, 0.5], [2.0, 2.0, 2.0]]), 0.1, 0.5)
    np.testing.assert_allclose(p[0], np.array([0.1, 0.5, 0.3]) / 0.9)
    np.testing.assert_allclose(p[1], np.full(3, 1 / 3))
    rule = AUSAM(rho=0.1, alpha=0.5, epoch_length=2, trans_epochs=3, **BASE)
    assert rule.fmax_at(0) == pytest.approx(0.1 + 1e-9)
    assert rule.fmax_at(3) == rule.fmax_at(9) == pytest.approx(0.5 + 1e-9)
    _, state, infos, _ = run(rule, steps=6, seeds=(0,))
    table = state.extra["table"][0]
    seen = table[:, 1] > 1
    assert seen.any()
    np.testing.assert_allclose(table[:, 2], table[:, 0] / table[:, 1])
    assert state.extra["selected"].shape == (1, 4)
    # the perturbation has norm rho; the descent gradient is the subset's
    for info in infos:
        # rho ||g|| / (||g|| + 1e-12): relative 1e-12 / ||g|| below 1e-9 here
        np.testing.assert_allclose(info.perturbation_norm, 0.1, rtol=1e-9)


def test_bisam_ascent_is_the_lower_bound_gradient():
    rule = BiSAM(rho=0.1, **BASE)
    _, _, infos, _ = run(rule, steps=2, seeds=(5,))
    info = infos[0]
    streams = SeedStreams([5])
    idx = SOFT.sample_batch(streams, "descent", 8)
    q = SOFT.lower_bound_grad(info.x, idx, "log", 1.0, 0.1)
    np.testing.assert_allclose(info.ascent_grad, q, atol=1e-15)
    np.testing.assert_allclose(info.perturbation, 0.1 * q / (np.linalg.norm(q) + 1e-12),
                               atol=1e-15)
    # the ascent direction differs from SAM's (it follows a different loss)
    g = SOFT.batch_grad(info.x, idx)
    cos = float(q[0] @ g[0] / np.linalg.norm(q) / np.linalg.norm(g))
    assert cos < 1 - 1e-6


def test_rwp_noise_is_filter_wise():
    rule = RWP(alpha=0.5, gamma=0.1, filter_size=4, **BASE)
    _, _, infos, _ = run(rule, steps=1, seeds=(2,))
    streams = SeedStreams([2])
    SOFT.sample_batch(streams, "descent", 8)
    SOFT.sample_batch(streams, "ascent", 8)
    z = streams.normal("weight_noise", (SOFT.dim,))
    x = infos[0].x
    std = 0.1 * np.repeat(np.linalg.norm(x.reshape(1, 3, 4), axis=2), 4, axis=1)
    np.testing.assert_allclose(infos[0].perturbation, z * std, atol=1e-15)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="alpha"):
        AUSAM(lr=0.1, alpha=0.0)
    with pytest.raises(ValueError, match="alpha"):
        AUSAM(lr=0.1, alpha=1.5)
    with pytest.raises(ValueError, match="trans_epochs"):
        AUSAM(lr=0.1, trans_epochs=0)
    with pytest.raises(ValueError, match="sampling_probability"):
        ARSAM(lr=0.1, sampling_probability=1.5)
    with pytest.raises(ValueError, match="warmup_steps"):
        ARSAM(lr=0.1, window=10, warmup_steps=5)
    with pytest.raises(ValueError, match="blocks"):
        ARSAM(lr=0.1, window=4, blocks=3)
    with pytest.raises(ValueError, match="beta"):
        ARSAM(lr=0.1, beta=1.0)
    with pytest.raises(ValueError, match="alpha"):
        RWP(lr=0.1, alpha=1.5)
    with pytest.raises(ValueError, match="gamma"):
        RWP(lr=0.1, gamma=-1.0)
    with pytest.raises(ValueError, match="filter_size"):
        RWP(lr=0.1, filter_size=5).validate(SOFT)
    with pytest.raises(ValueError, match="bound"):
        BiSAM(lr=0.1, bound="hinge")
    with pytest.raises(ValueError, match="mu"):
        BiSAM(lr=0.1, mu=0.0)
    with pytest.raises(ValueError, match="lower_bound_grad"):
        BiSAM(lr=0.1).validate(FiniteSumQuadratic.random(5, 2))
    assert not BiSAM.supports(CountingOracle(FiniteSumQuadratic.random(5, 2)))
    assert BiSAM.supports(CountingOracle(SOFT))
