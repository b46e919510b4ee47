"""Exactness of the problem zoo: derivatives, constants, oracles."""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asam_theory.problems import (
    CauchyRegression,
    FiniteSumQuadratic,
    MatrixFactorization,
    Quadratic,
    TwoBasin,
    problem_from_config,
)
from asam_theory.rng import SeedStreams
from asam_theory.testing import points, problems, quadratics


def _fd_grad(p, x, h):
    eye = np.eye(p.dim)
    return np.stack([(p.f(x + h * eye[i]) - p.f(x - h * eye[i])) / (2 * h)
                     for i in range(p.dim)], axis=1)


def _fd_hess(p, x, h):
    eye = np.eye(p.dim)
    return np.stack([(p.grad(x + h * eye[i]) - p.grad(x - h * eye[i])) / (2 * h)
                     for i in range(p.dim)], axis=2)


@given(st.data())
def test_gradient_and_hessian_match_finite_differences(data):
    p = data.draw(problems())
    x = data.draw(points(p, n=3, scale=2.0))
    h = 1e-5
    # central differences: truncation h^2 |f'''| / 6 plus rounding ~1e-16 |f| / h; with the
    # constants of the zoo inside its regions both stay below 1e-6 relative to the scale
    g = p.grad(x)
    scale = 1.0 + np.abs(g).max() + np.abs(p.f(x)).max()
    assert np.allclose(g, _fd_grad(p, x, h), atol=1e-6 * scale, rtol=0)
    H = p.hess(x)
    hscale = 1.0 + np.abs(H).max() + np.abs(g).max()
    assert np.allclose(H, _fd_hess(p, x, h), atol=1e-6 * hscale, rtol=0)
    assert np.allclose(H, H.transpose(0, 2, 1), atol=1e-12 * hscale)
    v = np.random.default_rng(0).standard_normal(x.shape)
    assert np.allclose(p.hvp(x, v), np.einsum("mij,mj->mi", H, v), atol=1e-12 * hscale * 10)


@given(st.data())
def test_sampled_smoothness_constants_are_never_violated(data):
    p = data.draw(problems())
    x = data.draw(points(p, n=8, scale=3.0))
    y = data.draw(points(p, n=8, scale=3.0))
    dg = np.linalg.norm(p.grad(x) - p.grad(y), axis=1)
    dx = np.linalg.norm(x - y, axis=1)
    # 1e-9 relative slack for rounding in the gradient differences
    assert np.all(dg <= p.L * dx * (1 + 1e-9) + 1e-12)
    # the Hessian's spectral norm is bounded by L inside the region, and Hessian-Lipschitz holds
    hn = np.linalg.norm(p.hess(x), ord=2, axis=(1, 2))
    assert np.all(hn <= p.L * (1 + 1e-9))
    dH = np.linalg.norm(p.hess(x) - p.hess(y), ord=2, axis=(1, 2))
    assert np.all(dH <= p.hessian_lipschitz * dx * (1 + 1e-9) + 1e-12)


def test_smoothness_constants_are_attained_or_close():
    # the computed L is a sup, not a loose guess: it is (nearly) attained in the region
    tb = TwoBasin(2, sharp=8.0, flat=1.0, radius=2.0)
    u = np.linspace(-2, 2, 40001)
    assert np.max(np.abs(tb.d2phi(u))) == pytest.approx(tb.L, rel=1e-6)
    q = Quadratic([3.0, -5.0, 1.0])
    assert q.L == 5.0 and q.mu is None and q.f_star is None


@given(problems())
def test_known_minimisers_are_stationary_with_value_f_star(p):
    if p.minimizers is None:
        return
    g = p.grad(p.minimizers)
    assert np.allclose(g, 0.0, atol=1e-9 * (1 + p.L))
    assert np.allclose(p.f(p.minimizers), p.f_star, atol=1e-9)


def test_two_basin_has_equal_minima_with_the_requested_curvatures():
    p = TwoBasin(3, sharp=10.0, flat=0.5, transverse=2.0)
    assert np.allclose(p.f(p.minimizers), 0.0)
    H = p.hess(p.minimizers)
    assert H[0, 0, 0] == pytest.approx(10.0) and H[1, 0, 0] == pytest.approx(0.5)
    assert np.allclose(H[:, 1:, 1:], 2.0 * np.eye(2))
    assert p.basin(p.minimizers).tolist() == [TwoBasin.SHARP, TwoBasin.FLAT]
    assert p.dphi(p.barrier) == pytest.approx(0.0, abs=1e-12) and p.barrier_height > 0


def test_quadratic_spectrum_rotation_and_shift():
    p = Quadratic([4.0, 1.0, 0.25], rotate=True, shift=True, f_star=0.5, seed=3)
    assert np.allclose(np.linalg.eigvalsh(p.hessian)[::-1], [4.0, 1.0, 0.25])
    assert p.L == 4.0 and p.mu == 0.25 and p.gd_stability_limit() == 0.5
    assert np.allclose(p.f(p.minimizers), 0.5)
    explicit = Quadratic(hessian=p.hessian, shift=p.minimizer, f_star=0.5)
    x = np.random.default_rng(1).standard_normal((5, 3))
    assert np.allclose(explicit.f(x), p.f(x)) and np.allclose(explicit.grad(x), p.grad(x))


@given(quadratics())
def test_quadratic_is_exactly_quadratic(p):
    rng = np.random.default_rng(0)
    x, d = rng.standard_normal((2, 4, p.dim))
    # f(x + d) = f(x) + <grad, d> + d^T H d / 2 exactly (up to rounding)
    lhs = p.f(x + d)
    rhs = p.f(x) + np.einsum("mi,mi->m", p.grad(x), d) + 0.5 * np.einsum("mi,mi->m", d,
                                                                         p.hvp(x, d))
    assert np.allclose(lhs, rhs, atol=1e-9 * (1 + np.abs(lhs).max()))


def test_finite_sum_minibatch_oracle_exact_by_enumeration():
    p = FiniteSumQuadratic.random(6, 3, heterogeneity=1.5, seed=2)
    x = np.random.default_rng(0).standard_normal((2, 3))
    for b in (1, 2, 4):
        subsets = np.array(list(combinations(range(p.n), b)))
        grads = np.stack([p.batch_grad(x, np.broadcast_to(s, (2, b))) for s in subsets])
        # unbiased, and the without-replacement variance formula is exact
        assert np.allclose(grads.mean(axis=0), p.grad(x), atol=1e-12)
        var = np.mean(np.sum((grads - p.grad(x)) ** 2, axis=2), axis=0)
        assert np.allclose(var, p.noise_variance(x, b), rtol=1e-10)
    assert np.allclose(p.noise_variance(x, p.n), 0.0)


def test_finite_sum_sampling_is_without_replacement_and_uniform():
    streams = SeedStreams(range(4000))
    idx = streams.subsets("descent", 7, 3)
    assert idx.shape == (4000, 3)
    assert all(len(set(r)) == 3 for r in idx.tolist())
    counts = np.bincount(idx.ravel(), minlength=7) / idx.size
    # each index has probability 1/7; 12000 draws: standard error ~ 0.0032, allow 4 SE
    assert np.allclose(counts, 1 / 7, atol=4 * np.sqrt((1 / 7) * (6 / 7) / idx.size))


def test_gaussian_noise_oracle_moments_and_same_batch_reuse():
    p = Quadratic([2.0, 1.0]).with_noise(0.5)
    streams = SeedStreams(range(20000))
    x = np.ones((20000, 2))
    batch = p.sample_batch(streams, "descent", 4)
    g1 = p.batch_grad(x, batch)
    g2 = p.batch_grad(x + 1.0, batch)
    # the same batch at two points differs by exactly the exact gradient difference
    assert np.allclose(g2 - g1, p.grad(x + 1.0) - p.grad(x))
    noise = g1 - p.grad(x)
    # variance per coordinate sigma2 / b = 0.125; 4e4 samples: relative SE ~ 0.7%, allow 4 SE
    assert np.allclose(noise.var(axis=0), 0.125, rtol=0.03)
    assert np.allclose(noise.mean(axis=0), 0.0, atol=4 * np.sqrt(0.125 / 20000))
    assert p.noise_variance(x[:1], 4)[0] == pytest.approx(2 * 0.125)


def test_noise_convention_one_name_per_quantity():
    """sigma2_per_coord is the model's per-coordinate variance, sigma2_total the theorems'
    E|g_B - g|^2 at b = 1 (d times it, as the oracle's exact noise_variance says); the old
    name reads the per-coordinate value with a DeprecationWarning; a finite sum has no
    constant total and says what to use."""
    p = Quadratic([2.0, 1.0, 0.5]).with_noise(0.2)
    x = np.ones((1, 3))
    assert p.sigma2_per_coord == 0.2
    assert p.sigma2_total == pytest.approx(3 * 0.2) == pytest.approx(p.noise_variance(x, 1)[0])
    c = p.constants()
    assert c["sigma2_per_coord"] == 0.2 and c["sigma2_total"] == pytest.approx(0.6)
    assert "sigma2" not in c
    with pytest.warns(DeprecationWarning, match="sigma2_per_coord"):
        assert p.sigma2 == 0.2
    assert Quadratic([1.0]).sigma2_total == 0.0
    fs = FiniteSumQuadratic.random(6, 2, seed=0)
    with pytest.raises(ValueError, match="noise_variance"):
        _ = fs.sigma2_total
    assert fs.constants()["sigma2_total"] is None
    # a config written before the rename still rebuilds
    old = {"type": "gaussian_noise", "params": {"problem": Quadratic([1.0]).config(),
                                                "sigma2": 0.4}}
    assert problem_from_config(old).sigma2_per_coord == 0.4


def test_delta_uses_the_lower_bound():
    x0 = np.full(4, 3.0)
    clean = CauchyRegression(50, 4, outlier_fraction=0.0, seed=1)
    outliers = CauchyRegression(50, 4, outlier_fraction=0.2, seed=1)
    assert clean.delta(x0) == pytest.approx(float(clean.f(x0[None])[0]) - clean.f_star)
    assert outliers.f_star is None
    assert outliers.delta(x0) == pytest.approx(float(outliers.f(x0[None])[0]))  # f_lb = 0
    np.testing.assert_allclose(outliers.delta(np.stack([x0, 2 * x0])),
                               outliers.f(np.stack([x0, 2 * x0])))
    with pytest.raises(ValueError, match="no known lower bound"):
        Quadratic([1.0, -1.0]).delta(np.ones(2))


def test_cauchy_regression_constants():
    p = CauchyRegression(50, 4, outlier_fraction=0.0, seed=1)
    assert p.f_star == 0.0 and np.allclose(p.f(p.minimizers), 0.0)
    noisy = CauchyRegression(50, 4, outlier_fraction=0.2, seed=1)
    assert noisy.f_star is None and noisy.f_lower_bound == 0.0
    # sup |psi'''| is attained at sqrt(2) - 1: check against a fine grid
    r = np.linspace(-10, 10, 200001)
    psi3 = 4 * r * (r**2 - 3) / (1 + r**2) ** 3
    from asam_theory.problems.nonconvex import PSI3_SUP
    assert np.max(np.abs(psi3)) == pytest.approx(PSI3_SUP, rel=1e-8)


def test_matrix_factorization_minimiser():
    p = MatrixFactorization(5, 4, 2, seed=3)
    assert np.allclose(p.f(p.minimizers), 0.0, atol=1e-20)
    assert p.region.contains(p.minimizers).all()


@given(problems())
def test_config_round_trip(p):
    q = problem_from_config(p.config())
    x = np.random.default_rng(0).standard_normal((3, p.dim))
    assert type(q) is type(p)
    assert np.allclose(q.f(x), p.f(x)) and np.allclose(q.grad(x), p.grad(x))
    assert q.constants() == p.constants()
    noisy = problem_from_config(p.with_noise(0.3).config())
    assert noisy.sigma2_per_coord == 0.3 and np.allclose(noisy.grad(x), p.grad(x))


@pytest.mark.parametrize("kwargs, match", [
    ({"hessian": [[1.0, 2.0], [0.0, 1.0]]}, "symmetric"),
    ({"eigenvalues": []}, "eigenvalues"),
    ({"eigenvalues": [1.0], "shift": [1.0, 2.0]}, "shift"),
])
def test_quadratic_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Quadratic(**kwargs)


def test_bad_problem_parameters_name_the_parameter():
    with pytest.raises(ValueError, match="sharp"):
        TwoBasin(sharp=-1.0)
    with pytest.raises(ValueError, match="sigma2"):
        Quadratic([1.0]).with_noise(-0.1)
    with pytest.raises(ValueError, match="rank"):
        MatrixFactorization(3, 3, 1, rank=2)
    with pytest.raises(ValueError, match="positive semidefinite"):
        FiniteSumQuadratic(np.array([[[-1.0]]]), np.zeros((1, 1)))
    p = FiniteSumQuadratic.random(5, 2)
    with pytest.raises(ValueError, match=r"ascent_batch_size must be an integer in \[1, 5\]"):
        p.check_batch_size("ascent_batch_size", 6)
