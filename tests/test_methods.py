"""Equivalences and closed forms of the update rules, run through the engine."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asam_theory.engine import simulate
from asam_theory.methods import (
    SAM,
    SGD,
    USAM,
    AsyncSAM,
    Cost,
    SAMPa,
    rule_from_config,
)
from asam_theory.problems import FiniteSumQuadratic, ProblemWrapper, Quadratic, TwoBasin
from asam_theory.testing import problems, quadratics, rule_hyperparameters
from asam_theory.theory import exact


def _xs(problem, rule, steps=30, n_seeds=3, seed=5, x0=None):
    x0 = np.full(problem.dim, 0.7) if x0 is None else x0
    return simulate(problem, rule, x0, steps, n_seeds, seed, record=("x",),
                    check_stability=False).metrics["x"]


def _noisy(p, data):
    """The same problem with a drawn oracle: exact, Gaussian noise, or (finite sums) sampling."""
    if hasattr(p, "n"):
        return p
    return p.with_noise(data.draw(st.sampled_from([0.0, 0.3])))


@given(st.data())
def test_asyncsam_tau0_same_batch_is_exactly_sam(data):
    p = _noisy(data.draw(problems()), data)
    hp = data.draw(rule_hyperparameters(L=p.L))
    b = min(hp["batch_size"], getattr(p, "n", 8))
    mom = data.draw(st.sampled_from([0.0, 0.9]))
    common = dict(lr=hp["lr"], rho=hp["rho"], batch_size=b, momentum=mom)
    for normalize, ref in ((True, SAM(**common)), (False, USAM(**common))):
        for mode in ("descent", "lookahead"):
            a = AsyncSAM(**common, tau=0, ascent_batch=mode, normalize=normalize)
            np.testing.assert_array_equal(_xs(p, a), _xs(p, ref))


class _BatchLog(ProblemWrapper):
    """Records every (point, batch) pair at which a minibatch gradient is taken."""

    def __init__(self, problem):
        super().__init__(problem)
        self.calls = []

    def batch_grad(self, x, batch, out=None):
        self.calls.append((np.array(x), None if batch is None else np.array(batch)))
        return self.base.batch_grad(x, batch, out)


@pytest.mark.parametrize("tau,bp", [(1, 4), (2, 6), (3, 2)])
def test_lookahead_ascent_uses_the_descent_batch_of_the_same_step(tau, bp):
    """Look-ahead AsyncSAM: at step t the ascent is taken at x_{max(t - tau, 0)} on the first
    b' samples of the batch the descent of step t uses (never a later one)."""
    p = _BatchLog(FiniteSumQuadratic.random(16, 3, seed=2))
    rule = AsyncSAM(lr=0.05, rho=0.1, tau=tau, batch_size=6, ascent_batch_size=bp,
                    ascent_batch="lookahead")
    xs = simulate(p, rule, np.ones(3), 12, 2, 0, record=("x",),
                  check_stability=False).metrics["x"]
    asc, desc = p.calls[0::2], p.calls[1::2]
    assert len(asc) == len(desc) == 12
    for t, ((xa, ba), (_, bd)) in enumerate(zip(asc, desc, strict=True)):
        np.testing.assert_array_equal(ba, bd[:, :bp])
        np.testing.assert_array_equal(xa, xs[max(t - tau, 0)])


def test_lookahead_subset_needs_index_batches():
    rule = AsyncSAM(lr=0.1, rho=0.1, tau=1, batch_size=4, ascent_batch_size=2,
                    ascent_batch="lookahead")
    with pytest.raises(ValueError, match="lookahead"):
        simulate(Quadratic([1.0, 0.5]).with_noise(0.1), rule, np.ones(2), 3, 1, 0)
    with pytest.raises(ValueError, match="ascent_batch_size"):
        AsyncSAM(lr=0.1, rho=0.1, batch_size=4, ascent_batch_size=5, ascent_batch="lookahead")


@given(st.data())
def test_rho_zero_reduces_every_sam_type_rule_to_sgd(data):
    p = _noisy(data.draw(problems()), data)
    hp = data.draw(rule_hyperparameters(L=p.L))
    n = getattr(p, "n", 8)
    b, bp = min(hp["batch_size"], n), min(hp["ascent_batch_size"], n)
    base = dict(lr=hp["lr"], batch_size=b, momentum=data.draw(st.sampled_from([0.0, 0.5])),
                weight_decay=data.draw(st.sampled_from([0.0, 1e-2])))
    ref = _xs(p, SGD(**base))
    for rule in (SAM(**base, rho=0.0), USAM(**base, rho=0.0),
                 AsyncSAM(**base, rho=0.0, tau=hp["tau"], ascent_batch_size=bp),
                 AsyncSAM(**base, rho=0.0, tau=hp["tau"], ascent_batch="descent"),
                 AsyncSAM(**base, rho=0.0, tau=hp["tau"], normalize=False),
                 SAMPa(**base, rho=0.0, lam=0.0, start="gradient")):
        np.testing.assert_array_equal(_xs(p, rule), ref, err_msg=rule.name)


@given(st.data())
def test_rotation_invariance_on_quadratics(data):
    lam = np.array(data.draw(st.lists(st.floats(0.05, 4.0), min_size=2, max_size=5)))
    q_diag = Quadratic(lam)
    q_rot = Quadratic(lam, rotate=True, seed=data.draw(st.integers(0, 1000)))
    Q = q_rot.eigenvectors
    hp = data.draw(rule_hyperparameters(L=q_diag.L))
    x0 = np.random.default_rng(1).standard_normal(lam.size)
    for rule in (SGD(lr=hp["lr"], momentum=0.9), SAM(lr=hp["lr"], rho=hp["rho"]),
                 USAM(lr=hp["lr"], rho=hp["rho"]),
                 AsyncSAM(lr=hp["lr"], rho=hp["rho"], tau=hp["tau"]),
                 # the zero start can put y_2 exactly on the minimiser (lr lam = 1/2 on a flat
                 # spectrum), where rho g/(|g| + eps) magnifies the rotation's rounding:
                 # compare the gradient start, whose y-sequence does not land there
                 SAMPa(lr=hp["lr"], rho=hp["rho"], lam=0.5, start="gradient")):
        a = _xs(q_diag, rule, n_seeds=1, x0=x0)
        b = _xs(q_rot, rule, n_seeds=1, x0=Q @ x0)
        # x_rot_t = Q x_t; rounding grows at most like the iterates' scale
        scale = 1 + np.abs(a).max()
        np.testing.assert_allclose(b[:, 0] @ Q, a[:, 0], atol=1e-10 * scale, err_msg=rule.name)


@given(quadratics(), st.floats(0.05, 1.9))
def test_gd_linear_rate_equals_spectral_formula(p, c):
    lr = c / p.L
    T = 40
    x0 = p.minimizer + np.linspace(1.0, 2.0, p.dim)
    xs = _xs(p, SGD(lr=lr), steps=T, n_seeds=1, x0=x0)[:, 0]
    Q, lam = p.eigenvectors, p.eigenvalues
    coef = Q.T @ (x0 - p.minimizer)
    t = np.arange(T + 1)[:, None]
    expected = p.minimizer + ((1 - lr * lam) ** t * coef) @ Q.T
    np.testing.assert_allclose(xs, expected, atol=1e-10 * (1 + np.abs(x0).max()))
    # the asymptotic rate ||x_t - x*||^(1/t) -> max |1 - lr lam| over the excited modes
    rate = np.max(np.abs(1 - lr * lam))
    err = np.linalg.norm(xs - p.minimizer, axis=1)
    if err[-2] > 1e-6 * err[0]:  # otherwise only rounding is left to measure
        assert err[-1] / err[-2] <= rate * (1 + 1e-8)


@pytest.mark.parametrize("lr, rho, amplitude", [(0.1, 0.05, 0.0166667), (0.3, 0.1, 0.3),
                                                (0.35, 0.02, 0.14), (0.05, 0.5, 0.0714286)])
def test_sam_settles_on_the_top_eigenvector_two_cycle(lr, rho, amplitude):
    # docs/theory.md §2.1: |x_inf| = lr rho lam1 / (2 - lr lam1) along v1, other components decay
    p = Quadratic([5.0, 3.0, 1.0, 0.2], rotate=True, seed=4)
    x0 = p.eigenvectors @ np.array([0.3, 0.2, -0.4, 0.1])
    xs = _xs(p, SAM(lr=lr, rho=rho), steps=3000, n_seeds=1, x0=x0)[:, 0]
    coords = xs @ p.eigenvectors
    lam1 = 5.0
    assert lr * rho * lam1 / (2 - lr * lam1) == pytest.approx(amplitude, rel=1e-5)
    assert abs(coords[-1, 0]) == pytest.approx(lr * rho * lam1 / (2 - lr * lam1), rel=1e-9)
    assert coords[-1, 0] == pytest.approx(-coords[-2, 0], rel=1e-9)  # a 2-cycle
    assert np.max(np.abs(coords[-1, 1:])) < 1e-9


def test_stability_limits_match_closed_forms():
    lam = np.array([4.0, 1.0])

    def limit(rule, eigenvalues=lam):
        return exact.max_stable_lr(eigenvalues, method=rule)

    assert limit(SGD(lr=0.1)) == pytest.approx(0.5, rel=1e-12)
    # heavy ball (dampening 0): stable iff lr lam < 2 (1 + mu)
    assert limit(SGD(lr=0.1, momentum=0.9)) == pytest.approx(2 * 1.9 / 4, rel=1e-10)
    # USAM: lr lam (1 + rho lam) < 2 (docs/theory.md §2.2)
    assert limit(USAM(lr=0.1, rho=0.5)) == pytest.approx(2 / (4 * 3), rel=1e-10)
    # normalised rules: the perturbation is bounded, the linear part is the base step's
    assert limit(SAM(lr=0.1, rho=0.5)) == pytest.approx(0.5, rel=1e-12)
    assert limit(AsyncSAM(lr=0.1, rho=0.5, tau=3)) == pytest.approx(0.5)
    # stale USAM, tau = 1: z^2 - (1 - lr lam) z + lr rho lam^2 = 0; the root z = -1 is the
    # boundary: 1 + (1 - lr lam) + lr rho lam^2 = 0 -> lr = 2 / (lam - rho lam^2) when it is
    # smaller than the |z| = 1 complex boundary lr rho lam^2 = 1
    r = AsyncSAM(lr=0.1, rho=0.05, tau=1, normalize=False)
    expected = min(2 / (4.0 - 0.05 * 16), 1 / (0.05 * 16))
    assert limit(r, np.array([4.0])) == pytest.approx(expected, rel=1e-10)
    # the exact model by both solvers
    for solver in ("roots", "bisection"):
        assert exact.max_stable_lr([4.0], rho=0.05, tau=1, solver=solver) == pytest.approx(
            expected, rel=1e-10)


def test_sampa_rho_zero_lam_zero_is_sgd_and_its_linear_model():
    p = Quadratic([2.0, 0.5], rotate=True, seed=1)
    x0 = np.array([1.0, -1.0])
    # with rho = 0 SAMPa's linear model is exact: compare the companion recursion
    rule = SAMPa(lr=0.3, rho=0.0, lam=0.4, start="gradient")
    xs = _xs(p, rule, steps=20, n_seeds=1, x0=x0)[:, 0] @ p.eigenvectors
    A = rule.companion(p.eigenvalues, 0.3)
    z = np.stack([x0 @ p.eigenvectors] * 2, axis=1)  # (x_0, y_0) per eigen-direction
    for t in range(20):
        np.testing.assert_allclose(xs[t], z[:, 0], atol=1e-12)
        z = np.einsum("kij,kj->ki", A, z)


def test_costs_are_declared():
    assert SGD(lr=0.1).cost == Cost(1, 1)
    assert SAM(lr=0.1).cost == Cost(2, 2) and USAM(lr=0.1).cost == Cost(2, 2)
    assert AsyncSAM(lr=0.1, tau=0).cost == Cost(2, 2)
    assert AsyncSAM(lr=0.1, tau=2).cost == Cost(2, 1)
    assert SAMPa(lr=0.1).cost == Cost(2, 1)


def test_asyncsam_uses_the_stale_iterate():
    # deterministic, tau = 3: the perturbation at step t is rho * unit(grad(x_{max(t-3, 0)}))
    p = TwoBasin(2)
    rule = AsyncSAM(lr=0.01, rho=0.1, tau=3)
    tr = simulate(p, rule, [0.3, 0.5], 12, record=("x", "perturbation_norm"))
    xs = tr.metrics["x"][:, 0]
    x = xs[0].copy()
    for t in range(12):
        g = p.grad(xs[max(t - 3, 0)][None])[0]
        e = 0.1 * g / (np.linalg.norm(g) + 1e-12)
        x = x - 0.01 * p.grad((x + e)[None])[0]
        np.testing.assert_allclose(xs[t + 1], x, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(tr.step_metrics["perturbation_norm"], 0.1, rtol=1e-10)


def test_independent_ascent_batch_has_its_own_size():
    p = FiniteSumQuadratic.random(10, 2, seed=0)
    rule = AsyncSAM(lr=0.1, rho=0.1, tau=1, batch_size=2, ascent_batch_size=10)
    # b' = n: the ascent gradient is exact, so the perturbation is the exact stale direction
    state = rule.init(np.ones((3, 2)), p, __import__("asam_theory").rng.SeedStreams([0, 1, 2]))
    from asam_theory.rng import SeedStreams
    streams = SeedStreams([0, 1, 2])
    state, info = rule.step(state, p, streams)
    np.testing.assert_allclose(info.ascent_grad, p.grad(np.ones((3, 2))))


@pytest.mark.parametrize("factory, match", [
    (lambda: SAM(lr=0.1, rho=-0.1), r"rho must lie in \[0, inf\)"),
    (lambda: AsyncSAM(lr=0.1, tau=-1), r"tau must be an integer in \[0, inf\]"),
    (lambda: AsyncSAM(lr=0.1, tau=1.5), "tau must be an integer"),
    (lambda: AsyncSAM(lr=0.1, ascent_batch_size=0), "ascent_batch_size"),
    (lambda: AsyncSAM(lr=0.1, ascent_batch="other"), "ascent_batch must be one of"),
    (lambda: SGD(lr=0.0), r"lr must lie in \(0, inf\)"),
    (lambda: SGD(lr=-1.0), "lr"),
    (lambda: SGD(lr=0.1, momentum=1.0), "momentum"),
    (lambda: SGD(lr=0.1, batch_size=0), "batch_size"),
    (lambda: SAMPa(lr=0.1, lam=1.5), "lam"),
    (lambda: SGD(lr=0.1, nesterov=True), "nesterov"),
])
def test_bad_hyperparameters_raise_named_errors(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_rule_config_round_trip():
    for rule in (SGD(lr=0.1, momentum=0.9, nesterov=True), SAM(lr=0.2, rho=0.1),
                 USAM(lr=0.1, rho=0.3), AsyncSAM(lr=0.1, tau=4, ascent_batch_size=3),
                 SAMPa(lr=0.1, lam=0.2)):
        assert rule_from_config(rule.config()) == rule
