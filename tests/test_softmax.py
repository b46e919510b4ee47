"""SoftmaxRegression: derivatives, constants, per-sample oracle, BiSAM's lower bound."""

import numpy as np
import pytest

from asam_theory.problems import SoftmaxRegression, problem_from_config
from asam_theory.rng import SeedStreams


def _fd(fun, x, h=1e-6):
    """Central differences of ``fun: (M, d) -> (M, ...)`` along every coordinate."""
    eye = np.eye(x.shape[1])
    return np.stack([(fun(x + h * eye[i]) - fun(x - h * eye[i])) / (2 * h)
                     for i in range(x.shape[1])], axis=-1)


@pytest.fixture(params=[0.0, 0.3])
def problem(request):
    return SoftmaxRegression.random(n=30, n_features=3, n_classes=4, l2=request.param, seed=1)


def test_derivatives_match_finite_differences(problem):
    x = np.random.default_rng(0).standard_normal((3, problem.dim))
    # h = 1e-6: truncation h^2 |f'''| ~ 1e-12 and rounding 1e-16 |f| / h ~ 1e-10 (|f| ~ 1)
    assert np.allclose(problem.grad(x), _fd(problem.f, x), atol=1e-8, rtol=0)
    H = problem.hess(x)
    assert np.allclose(H, _fd(problem.grad, x), atol=1e-8, rtol=0)
    assert np.allclose(H, H.transpose(0, 2, 1), atol=1e-14)
    v = np.random.default_rng(1).standard_normal(x.shape)
    assert np.allclose(problem.hvp(x, v), np.einsum("mij,mj->mi", H, v), atol=1e-12)


def test_smoothness_bound_holds_and_mu_is_exact(problem):
    rng = np.random.default_rng(2)
    x = 3.0 * rng.standard_normal((20, problem.dim))
    lam = np.linalg.eigvalsh(problem.hess(x))
    assert lam.max() <= problem.L * (1 + 1e-12)
    assert lam.min() >= problem.l2 - 1e-12
    # the flat direction 1 (x) v: the Hessian there is exactly l2
    v = np.kron(np.ones(problem.n_classes), rng.standard_normal(problem.n_features))[None]
    Hv = problem.hvp(x[:1], v)
    assert np.allclose(Hv, problem.l2 * v, atol=1e-12)
    assert problem.mu == (problem.l2 if problem.l2 > 0 else None)
    # component constants: every per-sample Hessian below L_component
    assert problem.L_component >= problem.L - 1e-12


def test_smoothness_bound_is_attained_for_two_classes():
    """K = 2 at W = 0 (π = (1/2, 1/2)) with a rank-one design: λmax(∇²f) = L exactly."""
    a = np.ones((5, 1)) * 2.0
    p = SoftmaxRegression(a, np.array([0, 1, 0, 1, 1]))
    lam = np.linalg.eigvalsh(p.hess(np.zeros((1, p.dim))))
    assert lam.max() == pytest.approx(p.L, rel=1e-14)


def test_per_sample_oracle_is_consistent(problem):
    x = np.random.default_rng(3).standard_normal((2, problem.dim))
    G = problem.all_component_grads(x)
    assert G.shape == (2, problem.n, problem.dim)
    assert np.allclose(G.mean(axis=1), problem.grad(x), atol=1e-14)
    losses = problem.per_sample_losses(x, problem.batch_indices(None, 2))
    assert np.allclose(losses.mean(axis=1), problem.f(x), atol=1e-14)
    assert np.all(losses >= 0)
    idx = SeedStreams([0, 1]).subsets("descent", problem.n, 7)
    assert np.allclose(problem.component_grads(x, idx),
                       np.take_along_axis(G, idx[:, :, None], axis=1).mean(axis=1), atol=1e-14)
    assert np.allclose(problem.per_sample_grads(x, idx),
                       np.take_along_axis(G, idx[:, :, None], axis=1), atol=1e-14)
    assert np.allclose(problem.per_sample_losses(x, idx),
                       np.take_along_axis(losses, idx, axis=1), atol=1e-14)
    # per-sample gradients match finite differences of per-sample losses
    fd = _fd(lambda z: problem.per_sample_losses(z, idx), x)
    assert np.allclose(problem.per_sample_grads(x, idx), fd, atol=1e-8)


@pytest.mark.parametrize("bound", ["log", "tanh"])
@pytest.mark.parametrize("mu", [1.0, 4.0])
def test_lower_bound_gradient_and_values(problem, bound, mu):
    x = np.random.default_rng(4).standard_normal((2, problem.dim))
    idx = SeedStreams([3, 4]).subsets("ascent", problem.n, 9)
    q = lambda z: problem.lower_bound_losses(z, idx, bound, mu, 0.5).mean(axis=1)  # noqa: E731
    assert np.allclose(problem.lower_bound_grad(x, idx, bound, mu, 0.5), _fd(q, x), atol=1e-8)
    # phi(0) = 0: at W = 0 every margin is 0 and Q_i = log(K) / mu
    z0 = np.zeros((1, problem.dim))
    assert np.allclose(problem.lower_bound_losses(z0, None, bound, mu),
                       np.log(problem.n_classes) / mu, atol=1e-14)


def test_bad_inputs_name_the_parameter():
    a = np.ones((4, 2))
    with pytest.raises(ValueError, match="n_classes"):
        SoftmaxRegression(a, np.zeros(4, dtype=int), n_classes=1)
    with pytest.raises(ValueError, match="labels"):
        SoftmaxRegression(a, np.array([0, 1, 2, 5]), n_classes=3)
    with pytest.raises(ValueError, match="l2"):
        SoftmaxRegression(a, np.array([0, 1, 0, 1]), l2=-1.0)
    p = SoftmaxRegression(a, np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="bound"):
        p.lower_bound_grad(np.zeros((1, p.dim)), None, bound="hinge")
    with pytest.raises(ValueError, match="mu"):
        p.lower_bound_grad(np.zeros((1, p.dim)), None, mu=0.0)


def test_config_round_trip():
    p = SoftmaxRegression.random(n=10, l2=0.1, seed=3)
    q = problem_from_config(p.config())
    x = np.random.default_rng(5).standard_normal((2, p.dim))
    assert np.array_equal(p.grad(x), q.grad(x)) and q.L == p.L
    r = SoftmaxRegression(p.A, p.y, p.n_classes, l2=0.1)
    s = problem_from_config(r.config())
    assert np.array_equal(s.f(x), p.f(x))
