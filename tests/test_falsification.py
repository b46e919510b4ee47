"""Every inequality the proofs use, tested numerically on random instances (hypothesis).

Default: a quick subset (``max_examples`` = 150 per inequality); ``ASAM_FULL=1``: 2 500 per
inequality, 10 inequalities, so >= 2.5e4 instances.  Instances are drawn from a
hypothesis-chosen seed, and the numpy work inside is vectorised.  Tolerance: every
comparison allows ``1e-9 * (1 + |bound|)`` for float rounding of O(10)-term sums of O(1)
numbers (double precision error ~1e-15 per operation); a genuine violation of any of these
inequalities would be O(1) relative on some drawn instance.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from asam_theory.theory import bounds as B

N = 2500 if os.environ.get("ASAM_FULL") == "1" else 150
CFG = settings(max_examples=N, deadline=None, derandomize=True, database=None)
seeds = st.integers(0, 2**32 - 1)


def tol(x: float) -> float:
    return 1e-9 * (1 + abs(x))


def _vecs(rng, n=2):
    d = int(rng.integers(1, 8))
    scale = 10.0 ** rng.uniform(-3, 3)
    return [rng.standard_normal(d) * scale * rng.uniform(0, 1) for _ in range(n)]


@CFG
@given(seeds)
def test_young_and_cauchy_schwarz(seed):
    rng = np.random.default_rng(seed)
    a, b = _vecs(rng)
    c = 10.0 ** rng.uniform(-3, 3)
    lhs = 2 * a @ b
    rhs = c * a @ a + b @ b / c  # Young with parameter c
    assert lhs <= rhs + tol(rhs)
    assert abs(a @ b) <= np.linalg.norm(a) * np.linalg.norm(b) + tol(a @ a + b @ b)


@CFG
@given(seeds)
def test_direction_lemma(seed):
    rng = np.random.default_rng(seed)
    a, b = _vecs(rng)
    if rng.uniform() < 0.3:  # nearby vectors: the regime of small staleness
        b = a + 1e-3 * rng.standard_normal(a.size) * np.linalg.norm(a)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return
    lhs = np.linalg.norm(a / na - b / nb)
    rhs = 2 * np.linalg.norm(a - b) / max(na, nb)
    assert lhs <= rhs + tol(rhs)
    # the squared form proved in T4, with |a| in the denominator
    assert lhs**2 <= 4 * np.linalg.norm(a - b) ** 2 / na**2 + tol(lhs)


def _smooth_problem(rng):
    """f(x) = x'Ax/2 + sum c_i sin(x_i): gradient L-Lipschitz with L = |A| + max|c|,
    Hessian M_H-Lipschitz with M_H = max|c|."""
    d = int(rng.integers(1, 6))
    M = rng.standard_normal((d, d))
    A = (M + M.T) / 2
    c = rng.uniform(-2, 2, d)
    L = np.linalg.norm(A, 2) + np.abs(c).max()
    f = lambda x: 0.5 * x @ A @ x + np.sum(c * np.sin(x))  # noqa: E731
    grad = lambda x: A @ x + c * np.cos(x)  # noqa: E731
    hess = lambda x: A - np.diag(c * np.sin(x))  # noqa: E731
    return d, f, grad, hess, L, np.abs(c).max()


@CFG
@given(seeds)
def test_descent_lemma_and_gradient_lipschitz(seed):
    rng = np.random.default_rng(seed)
    d, f, grad, _, L, _ = _smooth_problem(rng)
    x, y = rng.standard_normal(d) * 3, rng.standard_normal(d) * 3
    rhs = f(x) + grad(x) @ (y - x) + L / 2 * (y - x) @ (y - x)
    assert f(y) <= rhs + tol(rhs)
    assert np.linalg.norm(grad(y) - grad(x)) <= L * np.linalg.norm(y - x) + tol(L)


@CFG
@given(seeds)
def test_taylor_remainder_bound(seed):
    rng = np.random.default_rng(seed)
    d, _, grad, hess, _, MH = _smooth_problem(rng)
    w = rng.standard_normal(d) * 3
    v = rng.standard_normal(d)
    v /= np.linalg.norm(v)
    rho = 10.0 ** rng.uniform(-3, 0.5)
    R = grad(w + rho * v) - grad(w) - rho * hess(w) @ v
    bound = B.penalty_remainder_bound(MH, rho)
    assert np.linalg.norm(R) <= bound + tol(bound)


@CFG
@given(seeds)
def test_fidelity_half_angle(seed):
    rng = np.random.default_rng(seed)
    d, _, _, hess, L, _ = _smooth_problem(rng)
    H = hess(rng.standard_normal(d))
    u, v = rng.standard_normal(d), rng.standard_normal(d)
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    rho = rng.uniform(0, 1)
    theta = np.arccos(np.clip(u @ v, -1, 1))
    lhs = np.linalg.norm(rho * H @ u - rho * H @ v)
    bound = B.stale_fidelity_bound(L, rho, theta)
    assert lhs <= bound + 1e-7 * (1 + bound)  # arccos near +-1 loses ~sqrt(eps) ~ 1e-8


def _quadratic(rng):
    d = int(rng.integers(1, 5))
    lam = np.sort(rng.uniform(0.05, 5, d))[::-1]
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    H = Q @ np.diag(lam) @ Q.T
    return d, H, lam


def _run_async_sam(H, x0, lr, rho, tau, T, normalised=True):
    """Deterministic AsyncSAM on f = x'Hx/2: eps_t from the gradient at w_{t-tau}."""
    xs, gns, dirs = [x0.copy()], [], []
    x = x0.copy()
    for t in range(T):
        g_st = H @ xs[max(t - tau, 0)]
        n = np.linalg.norm(g_st)
        if normalised:
            eps = rho * g_st / n if n > 0 else np.zeros_like(x)
        else:
            eps = rho * g_st
        gns.append(np.linalg.norm(H @ x) ** 2)
        dvec = H @ (x + eps)
        dirs.append(np.linalg.norm(dvec))
        x = x - lr * dvec
        xs.append(x.copy())
    return np.array(xs), np.array(gns), np.array(dirs)


@CFG
@given(seeds)
def test_t1_deterministic_bound_against_simulation(seed):
    rng = np.random.default_rng(seed)
    d, H, lam = _quadratic(rng)
    L = lam[0]
    lr = rng.uniform(0.05, 1) / L
    rho, tau, T = rng.uniform(0, 1), int(rng.integers(0, 5)), int(rng.integers(1, 60))
    x0 = rng.standard_normal(d) * 2
    _, gns, _ = _run_async_sam(H, x0, lr, rho, tau, T)
    delta = 0.5 * x0 @ H @ x0
    bound = B.t1_bound(delta, L, rho, lr, T)
    assert gns.mean() <= bound + tol(bound)


@CFG
@given(seeds)
def test_t2_deterministic_bound_against_simulation(seed):
    rng = np.random.default_rng(seed)
    d, H, lam = _quadratic(rng)
    L = lam[0]
    lr = rng.uniform(0.05, 1) / L
    rho, tau, T = rng.uniform(0, 0.95) / L, int(rng.integers(0, 6)), int(rng.integers(1, 60))
    x0 = rng.standard_normal(d) * 2
    _, gns, _ = _run_async_sam(H, x0, lr, rho, tau, T, normalised=False)
    delta = 0.5 * x0 @ H @ x0
    bound = B.t2_bound(delta, L, rho, lr, tau, T)
    assert gns.mean() <= bound + tol(bound)


@CFG
@given(seeds)
def test_t3_deterministic_bound_against_simulation(seed):
    rng = np.random.default_rng(seed)
    d, H, lam = _quadratic(rng)
    L, mu = lam[0], lam[-1]  # a PD quadratic is mu-PL with mu = lambda_min
    lr = rng.uniform(0.05, 1) / L
    if lr * mu >= 1:
        lr = 0.99 / mu
    rho, tau, T = rng.uniform(0, 1), int(rng.integers(0, 5)), int(rng.integers(0, 80))
    x0 = rng.standard_normal(d) * 2
    xs, _, _ = _run_async_sam(H, x0, lr, rho, tau, T)
    fT = 0.5 * xs[-1] @ H @ xs[-1]
    bound = B.t3_bound(0.5 * x0 @ H @ x0, L, mu, rho, lr, T)
    assert fT <= bound + tol(bound)


@CFG
@given(seeds)
def test_stale_direction_and_drift(seed):
    rng = np.random.default_rng(seed)
    d, H, lam = _quadratic(rng)
    L = lam[0]
    lr = rng.uniform(0.01, 1) / L
    rho, tau, T = rng.uniform(0, 0.5), int(rng.integers(1, 5)), int(rng.integers(6, 40))
    xs, _, dirs = _run_async_sam(H, rng.standard_normal(d) * 2, lr, rho, tau, T)
    for t in range(tau, T):
        g_t, g_s = H @ xs[t], H @ xs[t - tau]
        G = dirs[t - tau : t].max()  # bound on the descent directions in the window
        drift = np.linalg.norm(g_t - g_s)
        assert drift <= L * lr * tau * G + tol(L * lr * tau * G)
        nt, ns = np.linalg.norm(g_t), np.linalg.norm(g_s)
        if nt == 0 or ns == 0:
            continue
        du = np.linalg.norm(g_s / ns - g_t / nt)
        bound = B.stale_direction_bound(L, lr, tau, G, nt)
        assert du <= bound + tol(bound)
        theta = np.arccos(np.clip((g_s / ns) @ (g_t / nt), -1, 1))
        assert theta <= B.stale_angle_bound(L, lr, tau, G, nt) + 1e-7  # arccos rounding


@CFG
@given(seeds)
def test_t1_stochastic_per_step_in_expectation(seed):
    """T1's per-step inequality in expectation, exactly over a finite noise distribution:
    xi takes values +-z_j with equal probability (mean 0), independent of eps."""
    rng = np.random.default_rng(seed)
    d, f, grad, _, L, _ = _smooth_problem(rng)
    w = rng.standard_normal(d)
    eps = rng.standard_normal(d)
    rho = rng.uniform(0, 1)
    eps *= rho / np.linalg.norm(eps)
    lr = rng.uniform(0.01, 1) / L
    Z = rng.standard_normal((3, d)) * rng.uniform(0, 2)
    noise = np.concatenate([Z, -Z])
    sigma2 = np.mean(np.sum(noise**2, axis=1))  # variance with b = 1
    ef1 = np.mean([f(w - lr * (grad(w + eps) + z)) for z in noise])
    g2 = grad(w) @ grad(w)
    rhs = f(w) - lr / 2 * g2 + lr / 2 * L**2 * rho**2 + L * lr**2 * sigma2 / 2
    assert ef1 <= rhs + tol(rhs)
