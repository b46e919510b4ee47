"""LookSAM, AE-SAM, K-SAM and SSAM as numpy rules: limits (ρ = 0 → SGD, degenerate settings
→ SAM), the equations on one step, and bad inputs."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asam_theory.engine import simulate
from asam_theory.methods import AESAM, KSAM, SAM, SGD, SSAM, LookSAM
from asam_theory.methods.aesam import sam_wanted
from asam_theory.methods.looksam import orthogonal_component
from asam_theory.methods.ssam import keep_count
from asam_theory.problems import CauchyRegression, CountingOracle, FiniteSumQuadratic, Quadratic
from asam_theory.rng import SeedStreams

FS = FiniteSumQuadratic.random(12, 4, seed=3, heterogeneity=2.0)
CAUCHY = CauchyRegression(24, 4, seed=2)
NOISY = Quadratic([3.0, 1.0, 0.3], rotate=True, seed=1).with_noise(0.2)
BASE = dict(lr=0.1, batch_size=4, momentum=0.9, weight_decay=1e-2)


def _xs(problem, rule, steps=25, n_seeds=3, seed=5):
    return simulate(problem, rule, np.full(problem.dim, 0.7), steps, n_seeds, seed,
                    record=("x",), check_stability=False).metrics["x"]


@pytest.mark.parametrize("p", [FS, CAUCHY], ids=["fsq", "cauchy"])
def test_rho_zero_is_the_base_optimizer(p):
    ref = _xs(p, SGD(**BASE))
    for rule in (LookSAM(**BASE, rho=0.0, k=3), AESAM(**BASE, rho=0.0),
                 SSAM(**BASE, rho=0.0, sparsity=0.5, num_samples=3, update_freq=4)):
        np.testing.assert_array_equal(_xs(p, rule), ref, err_msg=rule.name)
    # K-SAM with k = b sums the same samples in loss order: equal up to rounding
    np.testing.assert_allclose(_xs(p, KSAM(**BASE, rho=0.0, k=4)), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("p", [FS, CAUCHY], ids=["fsq", "cauchy"])
def test_degenerate_settings_are_sam(p):
    ref = _xs(p, SAM(**BASE, rho=0.2))
    np.testing.assert_array_equal(_xs(p, LookSAM(**BASE, rho=0.2, k=1)), ref)
    np.testing.assert_array_equal(_xs(p, SSAM(**BASE, rho=0.2, sparsity=0.0)), ref)
    np.testing.assert_array_equal(_xs(p, AESAM(**BASE, rho=0.2, lambda1=-np.inf,
                                               lambda2=-np.inf)), ref)
    np.testing.assert_allclose(_xs(p, KSAM(**BASE, rho=0.2, k=4)), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_xs(p, KSAM(**BASE, rho=0.2)), ref, rtol=0, atol=1e-12)


def test_aesam_never_sam_is_sgd_and_noisy_oracles_work():
    for p in (FS, NOISY):
        ref = _xs(p, SGD(**BASE))
        never = AESAM(**BASE, rho=0.2, lambda1=np.inf, lambda2=np.inf)
        np.testing.assert_array_equal(_xs(p, never), ref)
        always = AESAM(**BASE, rho=0.2, lambda1=-np.inf, lambda2=-np.inf)
        np.testing.assert_array_equal(_xs(p, always), _xs(p, SAM(**BASE, rho=0.2)))


def _one_step(rule, p, x, t_steps=1, seed=0):
    streams = SeedStreams([seed, seed + 1])
    state = rule.init(x, p, streams)
    infos = []
    for _ in range(t_steps):
        state, info = rule.step(state, p, streams)
        # a step's arrays live in reused buffers: keep copies
        for name in ("perturbation", "descent_grad", "ascent_grad", "x"):
            v = getattr(info, name)
            setattr(info, name, None if v is None else np.array(v))
        infos.append(info)
    return state, infos


def test_looksam_reuse_step_follows_the_equations():
    rule = LookSAM(lr=0.1, batch_size=3, rho=0.3, k=2, alpha=0.7)
    x0 = np.array([[0.5, -0.2, 0.1, 0.3], [1.0, 0.0, -1.0, 0.5]])
    state, infos = _one_step(rule, FS, x0, t_steps=2)
    first, second = infos
    assert first.perturbation is not None and not first.skipped
    assert second.perturbation is None and second.skipped
    assert np.all(np.isnan(second.fidelity()))
    # refresh: g_v is the part of the SAM gradient orthogonal to g
    g_v = orthogonal_component(first.ascent_grad, first.descent_grad)
    np.testing.assert_allclose(np.einsum("md,md->m", g_v, first.ascent_grad), 0, atol=1e-12)
    # reuse: d = g + alpha |g| / |g_v| g_v
    g = second.ascent_grad
    expect = g + 0.7 * (np.linalg.norm(g, axis=1) / (np.linalg.norm(g_v, axis=1) + 1e-12)
                        )[:, None] * g_v
    np.testing.assert_allclose(second.descent_grad, expect, atol=1e-13)
    np.testing.assert_allclose(state.x, second.x - 0.1 * expect, atol=1e-13)


def test_ksam_descends_on_the_top_k_losses():
    rule = KSAM(lr=0.1, batch_size=6, rho=0.1, k=2)
    x0 = np.array([[0.5, -0.2, 0.1, 0.3], [1.0, 0.0, -1.0, 0.5]])
    streams = SeedStreams([0, 1])
    batch = FS.sample_batch(SeedStreams([0, 1]), "descent", 6)  # the same first draw
    sub = rule.select(x0, FS, batch)
    losses = FS.per_sample_losses(x0, batch)
    for m in range(2):
        chosen = FS.per_sample_losses(x0[m:m + 1], sub[m:m + 1])[0]
        assert chosen.min() >= np.sort(losses[m])[-2] - 1e-15
    state = rule.init(x0, FS, streams)
    _, info = rule.step(state, FS, streams)
    np.testing.assert_allclose(info.ascent_grad, FS.batch_grad(x0, sub), atol=1e-14)
    assert rule.cost.grads_per_step == pytest.approx(2 * 2 / 6)
    assert rule.cost.forwards_per_step == 1.0


def test_ssam_mask_keeps_the_largest_fisher_values_and_shortens_epsilon():
    rule = SSAM(lr=0.1, batch_size=3, rho=0.3, sparsity=0.5, num_samples=5, update_freq=3)
    x0 = np.array([[0.5, -0.2, 0.1, 0.3], [1.0, 0.0, -1.0, 0.5]])
    state, infos = _one_step(rule, FS, x0, t_steps=4)
    mask = state.extra["mask"]
    assert np.all(mask.sum(axis=1) == 2)
    for info in infos:
        assert np.all(np.linalg.norm(info.perturbation, axis=1) <= 0.3 * (1 + 1e-12))
    # the official start: no perturbation before the first mask
    late = SSAM(lr=0.1, batch_size=3, rho=0.3, num_samples=5, mask_start="after_first_step")
    _, infos = _one_step(late, FS, x0, t_steps=2)
    assert np.all(infos[0].perturbation == 0) and np.any(infos[1].perturbation != 0)


def test_ssam_dynamic_mask_drops_and_grows_within_the_live_budget():
    rule = SSAM(lr=0.1, batch_size=3, rho=0.3, sparsity=0.5, update_freq=2, mask="dynamic",
                total_steps=6)
    x0 = np.array([[0.5, -0.2, 0.1, 0.3], [1.0, 0.0, -1.0, 0.5]])
    streams = SeedStreams([0, 1])
    state = rule.init(x0, FS, streams)
    assert np.all(state.extra["mask"].sum(axis=1) == 2)  # d - ceil(d s) live
    assert rule.death_rate(0) == 0.5 and rule.death_rate(6) == pytest.approx(0.0)
    masks = []
    for _ in range(6):
        state, info = rule.step(state, FS, streams)
        masks.append(state.extra["mask"].copy())
        assert np.all(np.linalg.norm(info.perturbation, axis=1) <= 0.3 * (1 + 1e-12))
    for m in masks:
        assert set(np.unique(m)) <= {0.0, 1.0} and np.all(m.sum(axis=1) <= 2)
    assert rule.cost.grads_per_step == 2
    # the dynamic mask needs no per-sample gradients: it runs on any oracle
    np.testing.assert_array_equal(
        _xs(NOISY, SSAM(**BASE, rho=0.0, mask="dynamic")), _xs(NOISY, SGD(**BASE)))


def test_aesam_decides_on_running_statistics():
    rule = AESAM(lr=0.05, batch_size=2, rho=0.1, delta=0.5, lambda1=0.0, lambda2=0.0)
    sq = np.array([4.0, 1.0])
    use, mu, var = rule.decide(sq, np.array([1.0, 2.0]), np.zeros(2), t=0)
    np.testing.assert_allclose(mu, [2.5, 1.5])
    np.testing.assert_allclose(var, [0.5 * 1.5**2, 0.5 * 0.5**2])
    assert use.tolist() == [True, False]
    # the threshold coefficient moves from lambda2 to lambda1 over total_steps
    r = AESAM(lr=0.1, lambda1=1.0, lambda2=-1.0, total_steps=10)
    assert [r.threshold_coefficient(t) for t in (0, 5, 10, 20)] == [-1.0, 0.0, 1.0, 1.0]


#: 0 or a normal float well above the subnormal range (so scaling by 4^k stays exact)
_NONNEG = st.one_of(st.just(0.0), st.floats(1e-6, 100))
_COEF = st.one_of(st.just(0.0), st.floats(1e-6, 3), st.floats(-3, -1e-6))


@given(sq=_NONNEG, mu=_NONNEG, var=_NONNEG, c=_COEF, k=st.integers(-6, 6))
def test_aesam_decision_is_invariant_under_a_rescaled_loss(sq, mu, var, c, k):
    """Scaling the loss by a > 0 scales ||g||^2 and mu by a^2 and sigma by a^2 (sigma^2 by
    a^4): the decision ||g||^2 >= mu + c sigma depends only on the standardised score.  With
    a^2 = 4^k and no subnormal values the scaled floats (and sqrt) are exact, so the decisions
    are equal exactly."""
    a = 4.0 ** k
    assert sam_wanted(a * sq, a * mu, a * a * var, c) == sam_wanted(sq, mu, var, c)


def _aesam_reference_decisions(sqs, delta, lambda1, lambda2, total, power):
    """AE-SAM's decisions from the squared norms, in plain floats (``power`` 0.5: sigma, the
    rule; 1.0: sigma^2, to show the test can tell the two apart)."""
    out = []
    for sq in sqs:
        mu = var = 0.0
        row = []
        for t, s in enumerate(sq):
            mu = delta * mu + (1 - delta) * s
            var = delta * var + (1 - delta) * (s - mu) ** 2
            frac = min(t / total, 1.0)
            c = frac * lambda1 + (1 - frac) * lambda2
            row.append(s >= mu + c * var ** power)
        out.append(row)
    return np.array(out)


def test_aesam_decision_sequence_with_nonzero_thresholds():
    """With lambda1 = 1.2, lambda2 = -0.6 the threshold mu_t + c_t sigma_t moves through
    sigma: the rule's per-seed decisions over 40 steps equal a plain recomputation from the
    squared norms, mix SAM and SGD steps, differ from the sigma^2 variant, and the counted
    cost is 1 + (SAM fraction)."""
    steps, delta, l1, l2 = 40, 0.8, 1.2, -0.6
    rule = AESAM(lr=0.05, batch_size=3, rho=0.1, delta=delta, lambda1=l1, lambda2=l2,
                 total_steps=steps)
    oracle = CountingOracle(FS)
    streams = SeedStreams([0, 1, 2, 3])
    state = rule.init(np.tile([0.9, -0.4, 0.3, 0.6], (4, 1)), oracle, streams)
    sqs, used = [], []
    for _ in range(steps):
        before = state.extra["n_sam"].copy()
        state, info = rule.step(state, oracle, streams)
        sqs.append([math.fsum(v * v for v in row) for row in info.ascent_grad])
        used.append(state.extra["n_sam"] - before)
    sqs, used = np.array(sqs).T, np.array(used).T.astype(bool)
    expect = _aesam_reference_decisions(sqs, delta, l1, l2, steps, 0.5)
    np.testing.assert_array_equal(used, expect)
    assert 0 < expect.mean() < 1
    assert np.any(_aesam_reference_decisions(sqs, delta, l1, l2, steps, 1.0) != expect)
    p = expect.mean()
    assert rule.realised_cost(state).grads_per_step == pytest.approx(1 + p, rel=1e-12)
    assert oracle.cost(3, steps, 4).grads_per_step == pytest.approx(1 + p, rel=1e-12)


FS20 = FiniteSumQuadratic.random(30, 20, seed=3, heterogeneity=2.0)


def _dynamic_step(rule, x0, seeds=(0, 1, 2, 3)):
    streams = SeedStreams(list(seeds))
    state = rule.init(x0, FS20, streams)
    old = state.extra["mask"].copy()
    state, info = rule.step(state, FS20, streams)
    return old, state.extra["mask"], np.array(info.x), np.array(info.perturbation)


def _top(scores, allowed, count):
    """0/1 mask of the ``count`` largest scores among ``allowed`` coordinates (ties: lower)."""
    out = np.zeros_like(scores)
    for m in range(scores.shape[0]):
        cand = [j for j in range(scores.shape[1]) if allowed[m, j]]
        cand.sort(key=lambda j: (-scores[m, j], j))
        out[m, cand[:count]] = 1.0
    return out


def test_ssam_dynamic_mask_drops_and_grows_the_stated_counts():
    """d = 20, s = 0.5: l = 10 live coordinates; at death rate r_t the update keeps
    floor(l (1 - r_t)) of the live ones and grows floor(min(l r_t, d s)) dead ones, every
    update step (update_freq 1)."""
    rule = SSAM(lr=0.05, batch_size=4, rho=0.3, sparsity=0.5, mask="dynamic",
                drop_rate=0.6, update_freq=1, total_steps=8)
    streams = SeedStreams([0, 1, 2])
    state = rule.init(np.full((3, 20), 0.5), FS20, streams)
    for t in range(8):
        old = state.extra["mask"].copy()
        state, _ = rule.step(state, FS20, streams)
        new = state.extra["mask"]
        r = 0.6 * (1 + math.cos(math.pi * t / 8)) / 2
        kept, grown = math.floor(10 * (1 - r)), math.floor(min(10 * r, 10.0))
        np.testing.assert_array_equal((new * old).sum(axis=1), kept)
        np.testing.assert_array_equal((new * (1 - old)).sum(axis=1), grown)
    assert keep_count(20, 0.5) == 10


def test_ssam_dynamic_weight_scores_are_at_the_perturbed_weights():
    """drop and growth by |w| + 1e-7 with w = x_t + eps_t (the official SSAMD scores the
    weights after the perturbation): the new mask equals an independent top-k on |x + eps|,
    and differs from the one on |x| for at least one seed (so the test can tell them apart)."""
    rule = SSAM(lr=0.05, batch_size=4, rho=1.0, sparsity=0.5, mask="dynamic",
                drop_rate=0.5, drop_strategy="weight", growth_strategy="weight",
                update_freq=1, total_steps=10)
    x0 = np.tile(np.linspace(-0.3, 0.35, 20), (4, 1))
    old, new, x, e = _dynamic_step(rule, x0)
    live = 10
    kept, grown = math.floor(live * 0.5), math.floor(min(live * 0.5, 10))

    def expected(w):
        score = np.abs(w) + 1e-7
        return _top(score, old > 0, kept) + _top(score, old == 0, grown)

    np.testing.assert_array_equal(new, expected(x + e))
    assert np.any(expected(x) != expected(x + e))


def test_ksam_catalogue_default_selects_half_the_batch():
    """The catalogue's K-SAM is not SAM plus a forward pass: k = floor(b / 2) (at least 1),
    cost 1 F + 2k/b G; an explicit k wins."""
    from asam_theory.methods.catalog import get_method

    for b, k in ((8, 4), (5, 2), (1, 1)):
        rule = get_method("ksam").build(lr=0.1, batch_size=b, rho=0.1)
        assert rule.k_eff == k
        assert rule.cost.grads_per_step == pytest.approx(2 * k / b)
        assert rule.cost.forwards_per_step == 1.0
    assert get_method("ksam").build(lr=0.1, batch_size=8, k=3).k_eff == 3
    assert KSAM(lr=0.1, batch_size=8).k_eff == 8  # the rule's own default: all (SAM)
    with pytest.raises(ValueError, match="k_fraction"):
        KSAM(lr=0.1, k_fraction=0.0)


@pytest.mark.parametrize("make, name", [
    (lambda: LookSAM(lr=0.1, k=0), "k"),
    (lambda: LookSAM(lr=0.1, alpha=-1.0), "alpha"),
    (lambda: KSAM(lr=0.1, batch_size=4, k=0), "k"),
    (lambda: KSAM(lr=0.1, batch_size=4, k=5), "k"),
    (lambda: SSAM(lr=0.1, sparsity=1.0), "sparsity"),
    (lambda: SSAM(lr=0.1, sparsity=-0.1), "sparsity"),
    (lambda: SSAM(lr=0.1, mask="snip"), "mask"),
    (lambda: SSAM(lr=0.1, mask="dynamic", drop_strategy="norm"), "drop_strategy"),
    (lambda: SSAM(lr=0.1, mask="dynamic", drop_rate=1.5), "drop_rate"),
    (lambda: SSAM(lr=0.1, num_samples=0), "num_samples"),
    (lambda: SSAM(lr=0.1, update_freq=0), "update_freq"),
    (lambda: AESAM(lr=0.1, delta=1.0), "delta"),
    (lambda: AESAM(lr=0.1, lambda1=float("nan")), "lambda1"),
    (lambda: AESAM(lr=0.1, total_steps=0), "total_steps"),
])
def test_bad_inputs_name_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_finite_sum_rules_refuse_other_problems():
    for rule in (KSAM(lr=0.1), SSAM(lr=0.1)):
        with pytest.raises(ValueError, match="finite-sum"):
            rule.validate(NOISY)
