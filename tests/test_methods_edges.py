"""Edges of the AE-SAM, AUSAM, K-SAM and SSAM numpy rules that the equation tests leave open:
validation bounds at the limit (accepted) and just past it (rejected, naming the parameter),
the documented tie-breaking order, every field of a step's ``StepInfo`` and ``State`` against a
recomputation by hand, counted == declared cost, and the table and mask updates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from asam_theory.methods import AESAM, AUSAM, KSAM, SAM, SSAM
from asam_theory.methods.aesam import threshold_coefficient
from asam_theory.methods.ausam import scaled_probabilities
from asam_theory.methods.ksam import top_k_columns
from asam_theory.methods.ssam import top_mask
from asam_theory.problems import (
    CountingOracle,
    FiniteSumQuadratic,
    Quadratic,
    SoftmaxRegression,
)
from asam_theory.rng import SeedStreams

FS = FiniteSumQuadratic.random(12, 4, seed=3, heterogeneity=2.0)
FS20 = FiniteSumQuadratic.random(30, 20, seed=3, heterogeneity=2.0)
SOFT = SoftmaxRegression.random(n=40, n_features=3, n_classes=3, seed=4)
NOISY = Quadratic([3.0, 1.0, 0.3], rotate=True, seed=1).with_noise(0.2)
#: plain SGD base step (no momentum, no weight decay): x_{t+1} = x_t - lr * descent_grad
PLAIN = dict(lr=0.1, momentum=0.0, weight_decay=0.0)
TINY = 1e-9


# -- validation at the edges ------------------------------------------------------------------

ACCEPTED = [
    lambda: AESAM(lr=0.1, delta=0.0),
    lambda: AESAM(lr=0.1, delta=1.0 - TINY),
    lambda: AESAM(lr=0.1, lambda1=math.inf, lambda2=-math.inf),
    lambda: AESAM(lr=0.1, total_steps=1),
    lambda: KSAM(lr=0.1, batch_size=4, k=1),
    lambda: KSAM(lr=0.1, batch_size=4, k=4),
    lambda: KSAM(lr=0.1, batch_size=4, k_fraction=1.0),
    lambda: KSAM(lr=0.1, batch_size=4, k_fraction=TINY),
    lambda: SSAM(lr=0.1, sparsity=0.0),
    lambda: SSAM(lr=0.1, sparsity=1.0 - TINY),
    lambda: SSAM(lr=0.1, num_samples=1, update_freq=1, total_steps=1),
    lambda: SSAM(lr=0.1, mask="dynamic", drop_rate=0.0),
    lambda: SSAM(lr=0.1, mask="dynamic", drop_rate=1.0),
    lambda: AUSAM(lr=0.1, alpha=1.0, trans_epochs=1, epoch_length=1),
    lambda: AUSAM(lr=0.1, alpha=TINY),
    lambda: AUSAM(lr=0.1, fmin=TINY, fmax=TINY),  # fmax = fmin: uniform sampling
]


@pytest.mark.parametrize("make", ACCEPTED, ids=range(len(ACCEPTED)))
def test_values_at_the_limits_are_accepted(make):
    make()


REJECTED = [
    (lambda: AESAM(lr=0.1, delta=-TINY), "delta"),
    (lambda: AESAM(lr=0.1, delta=1.0), "delta"),
    (lambda: AESAM(lr=0.1, lambda1=math.nan), "lambda1"),
    (lambda: AESAM(lr=0.1, lambda2=math.nan), "lambda2"),
    (lambda: AESAM(lr=0.1, total_steps=0), "total_steps"),
    (lambda: KSAM(lr=0.1, batch_size=4, k=0), "k"),
    (lambda: KSAM(lr=0.1, batch_size=4, k=5), "k"),
    (lambda: KSAM(lr=0.1, batch_size=4, k_fraction=0.0), "k_fraction"),
    (lambda: KSAM(lr=0.1, batch_size=4, k_fraction=1.0 + TINY), "k_fraction"),
    (lambda: SSAM(lr=0.1, sparsity=-TINY), "sparsity"),
    (lambda: SSAM(lr=0.1, sparsity=1.0), "sparsity"),
    (lambda: SSAM(lr=0.1, num_samples=0), "num_samples"),
    (lambda: SSAM(lr=0.1, update_freq=0), "update_freq"),
    (lambda: SSAM(lr=0.1, mask="snip"), "mask"),
    (lambda: SSAM(lr=0.1, mask_start="never"), "mask_start"),
    (lambda: SSAM(lr=0.1, drop_rate=-TINY), "drop_rate"),
    (lambda: SSAM(lr=0.1, drop_rate=1.0 + TINY), "drop_rate"),
    (lambda: SSAM(lr=0.1, drop_strategy="norm"), "drop_strategy"),
    (lambda: SSAM(lr=0.1, growth_strategy="norm"), "growth_strategy"),
    (lambda: SSAM(lr=0.1, total_steps=0), "total_steps"),
    (lambda: AUSAM(lr=0.1, alpha=0.0), "alpha"),
    (lambda: AUSAM(lr=0.1, alpha=1.0 + TINY), "alpha"),
    (lambda: AUSAM(lr=0.1, fmin=0.0), "fmin"),
    (lambda: AUSAM(lr=0.1, fmin=-1.0, fmax=0.5), "fmin"),
    (lambda: AUSAM(lr=0.1, fmin=0.2, fmax=0.2 - TINY), "fmax"),
    (lambda: AUSAM(lr=0.1, trans_epochs=0), "trans_epochs"),
    (lambda: AUSAM(lr=0.1, epoch_length=0), "epoch_length"),
]


@pytest.mark.parametrize("make, name", REJECTED, ids=[n for _, n in REJECTED])
def test_values_past_the_limits_are_rejected_naming_the_parameter(make, name):
    """The message starts with the parameter's own name (``asam_theory.validation``)."""
    with pytest.raises(ValueError, match=rf"^{name} must "):
        make()


def test_problem_dependent_limits():
    n = SOFT.n  # 40, not a multiple of b = 6: one epoch is ceil(40 / 6) = 7 batches
    AUSAM(lr=0.1, batch_size=6, epoch_length=7).validate(SOFT)
    AUSAM(lr=0.1, batch_size=6, epoch_length=1).validate(SOFT)
    with pytest.raises(ValueError, match="^epoch_length must "):
        AUSAM(lr=0.1, batch_size=6, epoch_length=8).validate(SOFT)
    # the Fisher mask draws num_samples distinct samples: n is the limit; the dynamic mask and
    # sparsity 0 draw none, so they take any num_samples
    SSAM(lr=0.1, batch_size=3, num_samples=n).validate(SOFT)
    with pytest.raises(ValueError, match="^num_samples must "):
        SSAM(lr=0.1, batch_size=3, num_samples=n + 1).validate(SOFT)
    SSAM(lr=0.1, batch_size=3, num_samples=n + 1, mask="dynamic").validate(SOFT)
    SSAM(lr=0.1, batch_size=3, num_samples=n + 1, sparsity=0.0).validate(SOFT)
    for rule, who in ((KSAM(lr=0.1), "KSAM"), (SSAM(lr=0.1), "SSAM's Fisher mask"),
                      (AUSAM(lr=0.1), "AUSAM")):
        with pytest.raises(ValueError, match=rf"^{who} needs a finite-sum problem"):
            rule.validate(NOISY)


# -- tie-breaking --------------------------------------------------------------------------

def _top_reference(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest entries per row, ties towards the lower index."""
    return np.array([sorted(range(len(r)), key=lambda j: (-r[j], j))[:count] for r in scores])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("d", [5, 20, 40])
def test_ties_go_to_the_lower_index(seed, d):
    """SSAM's mask (ties in the Fisher values: lower coordinate) and K-SAM's top-k (ties in
    the losses: the sample drawn first) on scores with many ties (3 levels); beyond 16 entries
    numpy's default sort is not stable, so these rows tell a stable from an unstable sort."""
    scores = np.random.default_rng(seed).integers(0, 3, (3, d)).astype(float)
    for keep in (1, d // 2, d):
        ref = _top_reference(scores, keep)
        np.testing.assert_array_equal(top_k_columns(scores, keep), ref)
        mask = np.zeros_like(scores)
        np.put_along_axis(mask, ref, 1.0, axis=1)
        np.testing.assert_array_equal(top_mask(scores, keep), mask)


# -- StepInfo and State against hand computations --------------------------------------------

def _unit(g, eps=1e-12):
    return g / (np.linalg.norm(g, axis=1) + eps)[:, None]


def _check_common(rule, state, new, info, x, problem):
    """What every step must hand back: the counter advanced, the same workspace, a dict of
    extras, ``info.x`` the iterate the step started from, the base step taken with
    ``info.descent_grad``, and a fidelity computed against the problem's exact gradient."""
    assert new.t == state.t + 1
    assert new.ws is state.ws
    assert isinstance(new.extra, dict)
    np.testing.assert_array_equal(info.x, x)
    np.testing.assert_allclose(new.x, x - rule.lr * info.descent_grad, rtol=0, atol=1e-14)
    if info.perturbation is not None:
        e, g = info.perturbation, problem.grad(x)
        den = np.linalg.norm(e, axis=1) * np.linalg.norm(g, axis=1)
        cos = np.einsum("md,md->m", e, g) / np.where(den > 0, den, 1.0)
        np.testing.assert_allclose(info.fidelity(), np.where(den > 0, cos, 0.0), atol=1e-12)


def _steps(rule, problem, x0, steps, seeds=(0, 1, 2)):
    """Yield ``(state, new_state, info, x)`` for each step, ``x`` a copy of the start iterate."""
    streams = SeedStreams(list(seeds))
    state = rule.init(x0, problem, streams)
    for _ in range(steps):
        x = state.x.copy()
        new, info = rule.step(state, problem, streams)
        yield state, new, info, x
        state = new


def test_ksam_step_info_and_state():
    rule = KSAM(**PLAIN, batch_size=6, rho=0.3, k=2)
    replay = SeedStreams([0, 1, 2])
    x0 = np.tile([0.5, -0.2, 0.1, 0.3], (3, 1))
    for state, new, info, x in _steps(rule, FS, x0, 3):
        _check_common(rule, state, new, info, x, FS)
        sub = rule.select(x, FS, FS.sample_batch(replay, "descent", 6))
        g = FS.batch_grad(x, sub)
        e = 0.3 * _unit(g)
        np.testing.assert_allclose(info.ascent_grad, g, rtol=0, atol=1e-14)
        np.testing.assert_allclose(info.perturbation, e, rtol=0, atol=1e-14)
        np.testing.assert_allclose(info.descent_grad, FS.batch_grad(x + e, sub), atol=1e-14)
        assert not info.skipped


def test_ksam_on_the_full_batch():
    """b = n: the draw is the full batch (``None``), ranked over all n samples, for M = 3
    seeds in d = 4 (M != d, so a wrong row count cannot pass)."""
    rule = KSAM(**PLAIN, batch_size=FS.n, rho=0.2, k=5)
    rule.validate(FS)
    x0 = np.array([[0.5, -0.2, 0.1, 0.3], [1.0, 0.0, -1.0, 0.5], [0.0, 0.3, 0.2, -0.4]])
    (state, new, info, x), = _steps(rule, FS, x0, 1)
    losses = FS.per_sample_losses(x, np.broadcast_to(np.arange(FS.n), (3, FS.n)))
    sub = _top_reference(losses, 5)
    np.testing.assert_allclose(info.ascent_grad, FS.batch_grad(x, sub), atol=1e-14)


def test_aesam_step_info_on_mixed_and_skipped_steps():
    """Seeds that took SAM carry ε = ρ g/(‖g‖+eps) and the gradient at x + ε; the others
    ε = 0 and g; a step where no seed took SAM has no perturbation and is ``skipped``."""
    rule = AESAM(**PLAIN, batch_size=3, rho=0.2, delta=0.5)
    replay = SeedStreams([0, 1, 2, 3])
    mixed = 0
    x0 = np.tile([0.9, -0.4, 0.3, 0.6], (4, 1))
    for state, new, info, x in _steps(rule, FS, x0, 12, seeds=(0, 1, 2, 3)):
        _check_common(rule, state, new, info, x, FS)
        batch = FS.sample_batch(replay, "descent", 3)
        g = FS.batch_grad(x, batch)
        used = (new.extra["n_sam"] - state.extra["n_sam"]).astype(bool)
        np.testing.assert_allclose(info.ascent_grad, g, rtol=0, atol=1e-14)
        np.testing.assert_allclose(info.sam_direction, _unit(g), rtol=1e-14, atol=0)
        e = np.where(used[:, None], 0.2 * _unit(g), 0.0)
        if used.any():
            assert not info.skipped
            np.testing.assert_allclose(info.perturbation, e, rtol=0, atol=1e-14)
        else:
            assert info.skipped and info.perturbation is None
        expect = np.where(used[:, None], FS.batch_grad(x + e, batch), g)
        np.testing.assert_allclose(info.descent_grad, expect, rtol=0, atol=1e-14)
        mixed += 0 < used.sum() < 4
    assert mixed > 0
    never = AESAM(**PLAIN, batch_size=3, rho=0.2, lambda1=math.inf, lambda2=math.inf)
    (_, _, info, _), = _steps(never, FS, x0, 1, seeds=(0, 1, 2, 3))
    assert info.skipped and info.perturbation is None
    assert np.all(np.isnan(info.fidelity()))


def test_aesam_delta_zero_ties_take_sam():
    """δ = 0: μ_t = ‖g_t‖² and σ_t = 0, so ‖g_t‖² = μ_t + c σ_t exactly for every finite c,
    and the rule's ``≥`` takes SAM on every step: the run is SAM's."""
    rule = AESAM(**PLAIN, batch_size=3, rho=0.2, delta=0.0, lambda1=2.0, lambda2=-1.0)
    sam = SAM(**PLAIN, batch_size=3, rho=0.2)
    x0 = np.tile([0.9, -0.4, 0.3, 0.6], (3, 1))
    a = [n.x.copy() for _, n, _, _ in _steps(rule, FS, x0, 6)]
    b = [n.x.copy() for _, n, _, _ in _steps(sam, FS, x0, 6)]
    np.testing.assert_array_equal(a, b)


def test_aesam_threshold_schedule_ends_are_exact():
    """c_t = λ₁ from t = T on and λ₂ at t = 0, even where the other end is infinite."""
    for lam in (math.inf, -math.inf):
        assert threshold_coefficient(10, 10, 0.5, lam) == 0.5
        assert threshold_coefficient(25, 10, 0.5, lam) == 0.5
        assert threshold_coefficient(0, 10, lam, 0.3) == 0.3


def test_ssam_step_info_and_fisher_mask():
    """The Fisher mask keeps the top ⌊d(1-s)⌋ of Σ_i (∂_j f_i)² over the num_samples samples
    drawn from stream "mask" (not over all n, nor the signed sum); ε = ρ g/(‖g‖+eps) ⊙ m."""
    rule = SSAM(**PLAIN, batch_size=4, rho=0.4, sparsity=0.5, num_samples=5, update_freq=50)
    replay = SeedStreams([0, 1, 2])
    x0 = np.tile(np.linspace(-0.3, 0.35, 20), (3, 1))
    for t, (state, new, info, x) in enumerate(_steps(rule, FS20, x0, 2)):
        _check_common(rule, state, new, info, x, FS20)
        if t == 0:
            idx = FS20.sample_batch(replay, "mask", 5)
            grads = FS20.per_sample_grads(x, idx)
            ref = np.zeros_like(x)
            np.put_along_axis(ref, _top_reference(np.sum(grads**2, axis=1), 10), 1.0, axis=1)
            # the wrong variants pick other coordinates here (so the check can tell)
            full = FS20.per_sample_grads(x, np.broadcast_to(np.arange(FS20.n), (3, FS20.n)))
            assert np.any(top_mask(np.sum(full**2, axis=1), 10) != ref)
            assert np.any(top_mask(np.sum(grads, axis=1), 10) != ref)
            mask = ref
        np.testing.assert_array_equal(new.extra["mask"], mask)  # kept between refreshes
        batch = FS20.sample_batch(replay, "descent", 4)
        g = FS20.batch_grad(x, batch)
        e = 0.4 * _unit(g) * mask
        np.testing.assert_allclose(info.ascent_grad, g, rtol=0, atol=1e-14)
        np.testing.assert_allclose(info.sam_direction, _unit(g), rtol=1e-14, atol=0)
        np.testing.assert_allclose(info.perturbation, e, rtol=0, atol=1e-14)
        np.testing.assert_allclose(info.descent_grad, FS20.batch_grad(x + e, batch), atol=1e-14)


def test_ssam_fisher_mask_over_the_whole_finite_sum():
    """num_samples = n: the draw is the full batch, every sample once, for M = 3 != d."""
    rule = SSAM(**PLAIN, batch_size=4, rho=0.4, sparsity=0.5, num_samples=FS.n)
    rule.validate(FS)
    x0 = np.array([[0.5, -0.2, 0.1, 0.3], [1.0, 0.0, -1.0, 0.5], [0.0, 0.3, 0.2, -0.4]])
    (_, new, _, x), = _steps(rule, FS, x0, 1)
    full = FS.per_sample_grads(x, np.broadcast_to(np.arange(FS.n), (3, FS.n)))
    np.testing.assert_array_equal(new.extra["mask"], top_mask(np.sum(full**2, axis=1), 2))


def test_ssam_dynamic_scores_by_strategy():
    """"gradient" ranks by |g| + 1e-7 and "random" by uniforms of stream "mask" (after the
    initial mask's draw; drop before growth), each within the live / dead coordinates."""
    x0 = np.tile(np.linspace(-0.3, 0.35, 20), (3, 1))
    kept = grown = 5  # l = 10, r_0 = 0.5
    for strategy in ("gradient", "random"):
        rule = SSAM(**PLAIN, batch_size=4, rho=0.5, sparsity=0.5, mask="dynamic",
                    drop_rate=0.5, drop_strategy=strategy, growth_strategy=strategy,
                    update_freq=1, total_steps=10)
        streams = SeedStreams([0, 1, 2])
        state = rule.init(x0, FS20, streams)
        old = state.extra["mask"].copy()
        new, info = rule.step(state, FS20, streams)
        replay = SeedStreams([0, 1, 2])
        first = replay.uniform("mask", (20,))
        live = np.zeros_like(x0)
        np.put_along_axis(live, _top_reference(first, 10), 1.0, axis=1)
        np.testing.assert_array_equal(old, live)
        if strategy == "gradient":
            drop = grow = np.abs(info.ascent_grad)
        else:
            drop, grow = replay.uniform("mask", (20,)), replay.uniform("mask", (20,))
        expect = np.zeros_like(x0)
        np.put_along_axis(expect, _top_reference((drop + 1e-7) * old, kept), 1.0, axis=1)
        np.put_along_axis(expect, _top_reference((grow + 1e-7) * (1 - old), grown), 1.0,
                          axis=1)
        np.testing.assert_array_equal(new.extra["mask"], expect, err_msg=strategy)


@pytest.mark.parametrize("strategy", ["gradient", "weight"])
def test_ssam_dynamic_zero_scores_stay_on_their_side(strategy):
    """At x = 0 on a noiseless quadratic g = 0 and ε = 0, every score is 0: the 1e-7 offset
    keeps each live coordinate ahead of the dead ones for dropping and each dead one ahead of
    the live ones for growing, and ties go to the lower coordinate."""
    rule = SSAM(**PLAIN, rho=0.3, sparsity=0.5, mask="dynamic", drop_rate=0.5,
                drop_strategy=strategy, growth_strategy=strategy, update_freq=1,
                total_steps=10)
    p = Quadratic(np.linspace(0.1, 2.0, 20))
    streams = SeedStreams([0, 1])
    state = rule.init(np.zeros((2, 20)), p, streams)
    old = state.extra["mask"].copy()
    new, _ = rule.step(state, p, streams)
    for m in range(2):
        live, dead = np.flatnonzero(old[m]), np.flatnonzero(old[m] == 0)
        assert np.flatnonzero(new.extra["mask"][m]).tolist() == sorted(
            live[:5].tolist() + dead[:5].tolist())


@pytest.mark.parametrize("sparsity, drop_rate", [(0.5, 0.6), (0.25, 1.0), (0.25, 0.5)])
def test_ssam_dynamic_growth_is_capped_by_the_dead_count(sparsity, drop_rate):
    """⌊min(ℓ r_t, d s)⌋ grown: with s = 0.25 and r_0 = 1 the cap d s = 5 binds (ℓ r = 15)."""
    d = 20
    rule = SSAM(**PLAIN, batch_size=4, rho=0.3, sparsity=sparsity, mask="dynamic",
                drop_rate=drop_rate, update_freq=1, total_steps=4)
    streams = SeedStreams([0, 1])
    state = rule.init(np.full((2, d), 0.5), FS20, streams)
    live = d - d * sparsity
    for t in range(4):
        old = state.extra["mask"].copy()
        state, _ = rule.step(state, FS20, streams)
        new = state.extra["mask"]
        r = drop_rate * (1 + math.cos(math.pi * t / 4)) / 2
        assert set(np.unique(new)) <= {0.0, 1.0}
        np.testing.assert_array_equal((new * old).sum(axis=1), math.floor(live * (1 - r)))
        np.testing.assert_array_equal((new * (1 - old)).sum(axis=1),
                                      math.floor(min(live * r, d * sparsity)))


def test_ausam_step_info_table_and_probabilities():
    """Epoch 0 sets the table (sum = mean = DLP, count 1) for the batch; later epochs add the
    DLP of the selected samples to the sum, one to the count, and set mean = sum / count;
    DLP_i = |f_i(x + ε) - f_i(x)|; ``probs`` are the batch's scaled table means."""
    rule = AUSAM(**PLAIN, batch_size=8, rho=0.3, alpha=0.5, epoch_length=2, trans_epochs=3)
    x0 = np.tile(np.linspace(-0.5, 0.5, SOFT.dim), (2, 1))
    rows = np.arange(2)[:, None]
    for t, (state, new, info, x) in enumerate(_steps(rule, SOFT, x0, 6, seeds=(0, 1))):
        _check_common(rule, state, new, info, x, SOFT)
        epoch = t // 2
        batch, sel = new.extra["batch"], new.extra["selected"]
        sub = np.take_along_axis(batch, sel, axis=1)
        assert sub.shape == (2, 8 if epoch == 0 else 4)
        g = SOFT.batch_grad(x, sub)
        e = 0.3 * _unit(g)
        np.testing.assert_allclose(info.ascent_grad, g, rtol=0, atol=1e-14)
        np.testing.assert_allclose(info.perturbation, e, rtol=0, atol=1e-14)
        np.testing.assert_allclose(info.descent_grad, SOFT.batch_grad(x + e, sub), atol=1e-14)
        dlp = np.abs(SOFT.per_sample_losses(x + e, sub) - SOFT.per_sample_losses(x, sub))
        old, table = state.extra["table"], new.extra["table"].copy()
        expect = old.copy()
        if epoch == 0:
            assert new.extra["probs"] is None
            expect[rows, sub, 0] = expect[rows, sub, 2] = dlp
        else:
            probs = scaled_probabilities(old[rows, batch, 2], 0.1, rule.fmax_at(epoch))
            np.testing.assert_allclose(new.extra["probs"], probs, rtol=1e-15)
            expect[rows, sub, 0] += dlp
            expect[rows, sub, 1] += 1
            expect[rows, sub, 2] = expect[rows, sub, 0] / expect[rows, sub, 1]
        np.testing.assert_allclose(table, expect, rtol=1e-12, atol=1e-15)
    assert np.any(table[:, :, 1] >= 2)


def test_ausam_realised_cost_before_and_after_the_first_step():
    rule = AUSAM(**PLAIN, batch_size=8, rho=0.1, alpha=0.5, epoch_length=2)
    streams = SeedStreams([0, 1])
    state = rule.init(np.zeros((2, SOFT.dim)), SOFT, streams)
    assert rule.realised_cost(state) == rule.cost
    state, _ = rule.step(state, SOFT, streams)  # epoch 0: SAM on the whole batch
    assert rule.realised_cost(state).grads_per_step == 2.0
    assert rule.realised_cost(state).sequential_depth == 2.0


@pytest.mark.parametrize("alpha, size", [(0.1, 8), (0.125, 8), (0.5, 5), (1.0, 7), (0.3, 1)])
def test_ausam_subset_size_is_floor_alpha_b_at_least_one(alpha, size):
    k = AUSAM(lr=0.1, alpha=alpha).subset_size_of(size)
    assert k == max(math.floor(alpha * size), 1) and 1 <= k <= size


_MEANS = st.lists(st.floats(0.0, 10.0), min_size=2, max_size=6)


@given(a=_MEANS, b=_MEANS, shift=st.floats(-5, 5), scale=st.floats(0.5, 4))
@example(a=[1.0, 2.0, 4.0], b=[0.0, 3.0, 1.0], shift=-2.0, scale=2.0)
def test_ausam_probabilities_are_per_row_min_max(a, b, shift, scale):
    """Min-max scaling makes each row's probabilities invariant under a shift and a positive
    scaling of that row, and independent of the other rows."""
    size = min(len(a), len(b))
    a, b = np.array(a[:size]), np.array(b[:size])
    together = scaled_probabilities(np.stack([a, scale * b + shift]), 0.1, 0.5)
    np.testing.assert_allclose(together[0], scaled_probabilities(a[None], 0.1, 0.5)[0],
                               rtol=1e-9)
    np.testing.assert_allclose(together[1], scaled_probabilities(b[None], 0.1, 0.5)[0],
                               rtol=1e-6, atol=1e-9)
    assert np.all(together >= 0) and np.allclose(together.sum(axis=1), 1.0)


# -- counted cost ------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", [
    SSAM(**PLAIN, batch_size=3, rho=0.3, sparsity=0.5, num_samples=5, update_freq=3),
    SSAM(**PLAIN, batch_size=3, rho=0.3, sparsity=0.5, num_samples=5, update_freq=3,
         mask_start="after_first_step"),
    SSAM(**PLAIN, batch_size=3, rho=0.3, sparsity=0.0, num_samples=5, update_freq=3),
    SSAM(**PLAIN, batch_size=3, rho=0.3, sparsity=0.5, mask="dynamic", update_freq=2),
    KSAM(**PLAIN, batch_size=6, rho=0.3, k=2),
], ids=["ssam-first", "ssam-after", "ssam-s0", "ssam-dynamic", "ksam"])
def test_counted_cost_equals_declared(rule):
    """Fisher masks only every ``update_freq`` steps (none for s = 0 or the dynamic mask)."""
    steps, seeds = 12, 3
    oracle = CountingOracle(FS20)
    streams = SeedStreams(list(range(seeds)))
    rule.validate(oracle)
    state = rule.init(np.full((seeds, 20), 0.5), oracle, streams)
    for _ in range(steps):
        state, _ = rule.step(state, oracle, streams)
    counted = oracle.cost(rule.batch_size, steps, seeds)
    declared = rule.realised_cost(state)
    assert counted.grads_per_step == pytest.approx(declared.grads_per_step, rel=1e-12)
    assert counted.forwards_per_step == pytest.approx(declared.forwards_per_step, rel=1e-12)
    assert oracle.exact_calls == 0
