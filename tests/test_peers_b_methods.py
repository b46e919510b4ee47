"""ARSAM (vSAM rule), AUSAM, BiSAM and RWP numpy rules: limits, counted == declared cost,
equations on small cases, bad inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import norm

from asam_theory.methods import ARSAM, AUSAM, RWP, SAM, SGD, BiSAM
from asam_theory.methods.arsam import block_variance, mean_relative_change
from asam_theory.methods.ausam import scaled_probabilities
from asam_theory.problems import (
    CountingOracle,
    FiniteSumQuadratic,
    ProblemWrapper,
    SoftmaxRegression,
)
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


class Replay(ProblemWrapper):
    """``problem`` whose descent draws are the given batches, in order (to run SGD or SAM on
    the batches of AUSAM's epochs)."""

    def __init__(self, problem, batches):
        super().__init__(problem)
        self.batches = list(batches)

    def sample_batch(self, streams, stream, batch_size):
        assert stream == "descent"
        return self.batches.pop(0)


def ausam_batches(rule, steps=20, seeds=(0, 1)):
    """The batches ``(M, size)`` of AUSAM's epochs over ``steps`` steps."""
    streams = SeedStreams(list(seeds))
    state = rule.init(np.zeros((len(seeds), SOFT.dim)), SOFT, streams)
    out = []
    for _ in range(steps):
        state, _ = rule.step(state, SOFT, streams)
        out.append(state.extra["batch"].copy())
    return out


def test_rho_zero_gives_the_base_optimizer():
    sgd = run(SGD(**BASE))[0]
    for rule in (BiSAM(rho=0.0, **BASE), ARSAM(rho=0.0, window=4, blocks=2, warmup_steps=4,
                                               **BASE)):
        np.testing.assert_allclose(run(rule)[0], sgd, rtol=0, atol=1e-13, err_msg=rule.name)
    # AUSAM draws epochs: SGD on the same batches (exact up to the subset's summation order)
    rule = AUSAM(rho=0.0, alpha=1.0, **BASE)
    np.testing.assert_allclose(run(rule)[0], run(SGD(**BASE), Replay(SOFT, ausam_batches(rule)))[0],
                               rtol=0, atol=1e-13)


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
    ausam = AUSAM(rho=0.1, alpha=1.0, epoch_length=2, **BASE)
    np.testing.assert_allclose(
        run(ausam)[0], run(SAM(rho=0.1, **BASE), Replay(SOFT, ausam_batches(ausam)))[0],
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


def test_ausam_epochs_measure_every_sample_once():
    """Batches are epochs (a fresh permutation, the last batch partial): in epoch 0 every one
    of the n samples is measured once, so no table entry keeps its initial 1.0; later epochs
    again see every sample once and select k = floor(alpha |B|) of each batch."""
    rule = AUSAM(rho=0.1, alpha=0.5, trans_epochs=2, **{**BASE, "batch_size": 6})
    per_epoch = -(-SOFT.n // 6)  # 7 steps: 6 batches of 6 and one of 4
    streams = SeedStreams([0, 1, 2])
    state = rule.init(np.zeros((3, SOFT.dim)), SOFT, streams)
    assert state.extra["epoch_length"] == per_epoch
    orders = []
    for epoch in range(3):
        seen = []
        for j in range(per_epoch):
            state, _ = rule.step(state, SOFT, streams)
            batch = state.extra["batch"]
            assert batch.shape == (3, 6 if j < per_epoch - 1 else 4)
            k = state.extra["selected"].shape[1]
            assert k == (batch.shape[1] if epoch == 0 else batch.shape[1] // 2)
            seen.append(batch)
        seen = np.concatenate(seen, axis=1)
        for m in range(3):
            assert sorted(seen[m]) == list(range(SOFT.n)), (epoch, m)
        orders.append(seen)
        if epoch == 0:
            table = state.extra["table"]
            assert np.all(table[:, :, 2] != 1.0) and np.all(table[:, :, 1] == 1)
            np.testing.assert_array_equal(table[:, :, 0], table[:, :, 2])
    assert not np.array_equal(orders[0], orders[1])  # a fresh permutation every epoch
    with pytest.raises(ValueError, match="epoch_length"):
        AUSAM(lr=0.1, batch_size=6, epoch_length=per_epoch + 1).validate(SOFT)


def _inclusion_probabilities(p, k):
    """P(i among the first k of successive draws without replacement, each proportional to
    p among the samples left), by enumerating the ordered draws."""
    out = np.zeros(len(p))
    for seq in itertools.permutations(range(len(p)), k):
        prob, left = 1.0, 1.0
        for i in seq:
            prob *= p[i] / left
            left -= p[i]
        out[list(seq)] += prob
    return out


def test_ausam_selection_follows_the_table_probabilities():
    """The subset is a draw without replacement proportional to the scaled table means (the
    law of ``torch.multinomial``): the inclusion frequency of each position over N = 20000
    independent draws is within z = 4.6 standard errors of the exact inclusion probability.
    False alarm 5 positions x 2 Phi(-z) = 2e-5; power: a deviation of z + 1.645 = 6.3 SE
    (<= 0.023 here) is detected with probability >= 0.95; the least-likely and the uniform
    selections deviate by more than 0.1."""
    rule = AUSAM(rho=0.1, alpha=0.4, trans_epochs=1, lr=0.1, batch_size=5)
    means = np.array([0.05, 0.3, 0.8, 1.0, 0.5])
    n_draws, k = 20000, rule.subset_size
    assert k == 2
    streams = SeedStreams(list(range(n_draws)))
    sel, p = rule.select(np.tile(means, (n_draws, 1)), 3, streams)
    exact_p = scaled_probabilities(means[None, :], 0.1, 0.5 + 1e-9)[0]
    np.testing.assert_allclose(p[0], exact_p, rtol=1e-12)
    assert sel.shape == (n_draws, k) and np.all(np.diff(np.sort(sel, axis=1), axis=1) > 0)
    freq = np.bincount(sel.ravel(), minlength=5) / n_draws
    pi = _inclusion_probabilities(exact_p, k)
    assert pi.sum() == pytest.approx(k)
    se = np.sqrt(pi * (1 - pi) / n_draws)
    z = norm.isf(2e-5 / 5 / 2)  # two-sided, Bonferroni over the 5 positions: 4.6
    assert np.all(np.abs(freq - pi) <= z * se), (freq, pi)
    # the law is not uniform: the test can tell (least likely position < half the uniform)
    assert pi[0] < 0.5 * k / 5 < pi[3]


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
