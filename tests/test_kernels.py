"""Fused hot-path kernels (``asam_theory.methods._kernels``) against their numpy reference.

Elementwise results must agree bit for bit (no fast-math, no fused multiply-adds); row norms
are sums in a different order, so they agree to a few ulps (relative 1e-15 allows ~4.5 ulps
at d = 37, where a sum of positive terms in any order is within d ulps of exact only in the
worst case — the observed error is ≤ 2 ulps).
"""

from __future__ import annotations

import numpy as np
import pytest

from asam_theory.engine import simulate
from asam_theory.methods import SAM, SGD, AsyncSAM, SAMPa, _kernels
from asam_theory.problems import Quadratic

pytest.importorskip("numba")
from asam_theory.methods import _kernels_numba as nb  # noqa: E402

REF = _kernels.NUMPY_KERNELS


def _arrays(M=23, d=37, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((M, d)), rng.standard_normal((M, d)) * 10.0 ** rng.integers(
        -8, 8, size=(M, 1))


def test_backend_is_numba_when_installed():
    assert _kernels.BACKEND == "numba"
    x, g = _arrays(M=_kernels.MIN_NUMBA_SIZE // 8, d=8)  # large enough for the numba path
    c1, c2 = np.empty(x.shape[0]), np.empty(x.shape[0])
    xp1, xp2 = np.empty_like(x), np.empty_like(x)
    _kernels.perturb_into(g, x, 0.05, 1e-12, True, c1, xp1)
    assert _kernels._numba() is nb
    nb.perturb_into(g, x, 0.05, 1e-12, True, c2, xp2)
    np.testing.assert_array_equal(xp1, xp2)


@pytest.mark.parametrize("normalize", [True, False])
def test_perturb_matches_numpy(normalize):
    x, g = _arrays()
    g[3] = 0.0  # a zero gradient gives no perturbation, not 0/0
    c1, c2 = np.empty(x.shape[0]), np.empty(x.shape[0])
    xp1, xp2 = np.empty_like(x), np.empty_like(x)
    nb.perturb_into(g, x, 0.05, 1e-12, normalize, c1, xp1)
    REF["perturb_into"](g, x, 0.05, 1e-12, normalize, c2, xp2)
    np.testing.assert_allclose(c1, c2, rtol=1e-15, atol=0)
    np.testing.assert_allclose(xp1, xp2, rtol=1e-15, atol=1e-300)
    e1 = g * c1[:, None]  # the perturbation StepInfo forms from the scale
    assert np.all(e1[3] == 0) and np.array_equal(xp1[3], x[3])
    np.testing.assert_array_equal(xp1, x + e1)  # x + ε exactly as numpy adds them
    if normalize:
        n = np.linalg.norm(g, axis=1)
        np.testing.assert_allclose(np.linalg.norm(e1, axis=1), 0.05 * n / (n + 1e-12),
                                   rtol=1e-14)
    else:
        assert np.all(c1 == 0.05)


def test_step_info_forms_the_perturbation_from_the_scale():
    p = Quadratic.from_spectrum("condition_number", 5, kappa=3.0, rotate=True, seed=0)
    rule = SAM(lr=0.1, rho=0.2)
    state = rule.init(np.ones((3, 5)), p, None)
    _, info = rule.step(state, p, None)
    np.testing.assert_array_equal(info.perturbation,
                                  rule.perturbation(info.ascent_grad, normalize=True))
    assert info.perturbation is info.perturbation  # formed once


def test_sgd_step_bitwise_and_norms():
    x, g = _arrays(seed=1)
    out1, out2 = np.empty_like(x), np.empty_like(x)
    sq1, sq2 = np.empty(x.shape[0]), np.empty(x.shape[0])
    nb.sgd_into(x, g, 0.3, out1, sq1)
    REF["sgd_into"](x, g, 0.3, out2, sq2)
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_allclose(sq1, sq2, rtol=1e-15)
    np.testing.assert_allclose(nb.row_sq(x), REF["row_sq"](x), rtol=1e-15)


def test_overflow_reads_as_divergence_not_error():
    x = np.full((2, 5), 1e200)
    g = np.zeros_like(x)
    out, sq = np.empty_like(x), np.empty(2)
    nb.sgd_into(x, g, 0.1, out, sq)
    assert np.all(np.isinf(sq))


@pytest.mark.parametrize("rule", [SGD(lr=0.3), SAM(lr=0.3, rho=0.1),
                                  AsyncSAM(lr=0.3, rho=0.1, tau=2),
                                  AsyncSAM(lr=0.3, rho=0.1, tau=1, normalize=False),
                                  SAMPa(lr=0.3, rho=0.1, lam=0.5),
                                  SAM(lr=0.3, rho=0.1, momentum=0.9)])
def test_engine_same_numbers_with_either_backend(rule, monkeypatch):
    p = Quadratic.from_spectrum("condition_number", 9, L=1.0, kappa=20.0, rotate=True,
                                shift=True, seed=2).with_noise(0.1)
    monkeypatch.setattr(_kernels, "MIN_NUMBA_SIZE", 0)  # numba even for these small arrays
    fused = simulate(p, rule, np.ones(9), 60, 7, seed=3, record=("f", "x"))
    for name, fn in REF.items():
        monkeypatch.setattr(_kernels, name, fn)
    ref = simulate(p, rule, np.ones(9), 60, 7, seed=3, record=("f", "x"))
    # only the norm of the ascent gradient is summed in another order (a few ulps); 60
    # contracting steps keep that at the rounding level
    np.testing.assert_allclose(fused.metrics["x"], ref.metrics["x"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fused.metrics["f"], ref.metrics["f"], rtol=1e-12)
