"""Flatness measures: Hutchinson's trace against the exact trace, its standard error against
the closed-form variance, m-sharpness against its closed form on quadratics, the eigenvalue
against a dense Hessian."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call, hessian

from asam_theory.experiments.flatness import (
    flatness,
    functional_loss,
    held_out_batches,
    hutchinson_trace,
    m_sharpness,
)


def _tiny_net(seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    x = torch.randn(40, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    return net, (x, y)


def _dense_hessian(net: nn.Module, batch) -> torch.Tensor:
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    def f(v: torch.Tensor) -> torch.Tensor:
        parts, k = [], 0
        for s in shapes:
            n = math.prod(s)
            parts.append(v[k:k + n].reshape(s))
            k += n
        out = functional_call(net, dict(zip(names, parts, strict=True)), (batch[0],))
        return nn.functional.cross_entropy(out, batch[1])

    return hessian(f)(flat0)


def _per_probe_sd(h: torch.Tensor) -> float:
    """Closed-form SD of one Rademacher product v'Hv: sqrt(2 (|H|_F^2 - sum H_ii^2))."""
    return math.sqrt(2 * (float((h ** 2).sum()) - float((torch.diag(h) ** 2).sum())))


def test_hutchinson_is_within_four_standard_errors_of_the_exact_trace() -> None:
    net, batch = _tiny_net()
    h = _dense_hessian(net, batch)
    loss, params = functional_loss(net)
    for seed in range(3):
        r = hutchinson_trace(lambda ps: loss(ps, batch), params, probes=400, seed=seed)
        # |z| > 4 for a mean of 400 products has probability < 1e-4 per seed
        assert abs(r["trace"] - float(torch.trace(h))) < 4 * r["se"], (r, float(torch.trace(h)))


def test_hutchinson_standard_error_scales_as_one_over_root_probes() -> None:
    net, batch = _tiny_net(1)
    h = _dense_hessian(net, batch)
    loss, params = functional_loss(net)
    sd = _per_probe_sd(h)
    for n in (400, 1600):
        r = hutchinson_trace(lambda ps, n=n: loss(ps, batch), params, probes=n, seed=5)
        # the sample SD of n products is within 15 % of the closed form (its relative error
        # is about sqrt((kurtosis - 1) / (4 n)) < 5 % here), so the SE is sd/sqrt(n) to 15 %
        assert abs(r["se"] / (sd / math.sqrt(n)) - 1) < 0.15, (n, r["se"], sd / math.sqrt(n))


def test_hutchinson_is_exact_on_a_diagonal_hessian() -> None:
    # v'Hv = sum_i H_ii for every Rademacher v when H is diagonal: zero variance, exact
    d = torch.tensor([0.5, 2.0, 3.0, 7.0], dtype=torch.float64)
    r = hutchinson_trace(lambda ps: 0.5 * (d * ps[0] ** 2).sum(),
                         (torch.ones(4, dtype=torch.float64),), probes=5, seed=0)
    assert abs(r["trace"] - float(d.sum())) < 1e-12 and r["se"] < 1e-12


@st.composite
def _quadratic_sums(draw):
    """A finite sum of n quadratics f_i(w) = 1/2 w'A_i w - c_i'w in d dimensions (A_i SPD)."""
    d = draw(st.integers(2, 6))
    n = draw(st.integers(4, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d, d))
    a = a @ a.transpose(0, 2, 1) / d + 0.1 * np.eye(d)
    c = rng.standard_normal((n, d))
    w = rng.standard_normal(d)
    rho = draw(st.floats(1e-3, 1.0))
    m = draw(st.integers(1, n))
    return torch.as_tensor(a), torch.as_tensor(c), torch.as_tensor(w), rho, m


def _quad_loss(params, batch):
    (w,), (a, c) = params, batch
    return (0.5 * torch.einsum("i,nij,j->n", w, a, w) - c @ w).mean()


@given(_quadratic_sums())
def test_m_sharpness_equals_its_closed_form_on_quadratics(case) -> None:
    a, c, w, rho, m = case
    batches = [(a[i:i + m], c[i:i + m]) for i in range(0, len(c) - m + 1, m)]
    r = m_sharpness(_quad_loss, (w,), batches, rho)
    expected, scale = [], []
    for ab, cb in batches:
        h, b = ab.mean(0), cb.mean(0)
        g = h @ w - b
        # f(w + s g) - f(w) = s |g|^2 + s^2/2 g'Hg, exact for a quadratic, with the step
        # s = rho / (|g| + 1e-12) of the SAM normalisation (rho |g| + rho^2/2 g'Hg/|g|^2)
        s = rho / (float(g.norm()) + 1e-12)
        expected.append(s * float(g @ g) + 0.5 * s**2 * float(g @ h @ g))
        scale.append(1.0 + abs(float(_quad_loss((w,), (ab, cb)))))
    # the measured rise is a difference of two float64 losses: its rounding error is a few
    # ulps of the losses themselves, so the margin is 1e-12 relative to |f(w)| + 1
    err = np.abs(np.subtract(r["per_batch"], expected))
    assert np.all(err <= 1e-12 * np.asarray(scale)), (err, scale)
    assert abs(r["m_sharpness"] - float(np.mean(expected))) <= 1e-12 * max(scale)


def test_held_out_batches_are_disjoint_and_sized() -> None:
    x = torch.arange(50.0).reshape(50, 1)
    y = torch.arange(50)
    bs = held_out_batches(x, y, 8, seed=3)
    assert len(bs) == 6 and all(len(b[1]) == 8 for b in bs)
    seen = torch.cat([b[1] for b in bs])
    assert len(set(seen.tolist())) == 48
    assert len(held_out_batches(x, y, 8, seed=3, max_batches=2)) == 2


def test_flatness_of_a_network_matches_dense_measures() -> None:
    net, batch = _tiny_net(2)
    h = _dense_hessian(net, batch)
    f = flatness(net, batch, batch, rho=0.05, ms=(8,), probes=400, seed=0)
    eigs = torch.linalg.eigvalsh(h)
    # ARPACK to tol 1e-6 relative on the top eigenvalue
    assert abs(f.lambda_max - float(eigs[-1])) < 1e-5 * max(1.0, abs(float(eigs[-1])))
    assert abs(f.trace - float(torch.trace(h))) < 4 * f.trace_se
    value, se = f.m_sharpness[8]
    assert value > 0 and se >= 0
    assert net.training  # mode restored


def test_a_training_subset_of_every_example_changes_nothing() -> None:
    """The mean loss does not depend on the order of the examples: a 'subset' holding all of
    them gives the same eigenvalue and trace (same probes) to rounding."""
    net, batch = _tiny_net(3)
    a = flatness(net, batch, batch, rho=0.05, ms=(8,), probes=20, seed=1)
    b = flatness(net, batch, batch, rho=0.05, ms=(8,), probes=20, seed=1, train_examples=40)
    assert abs(a.trace - b.trace) < 1e-10 * max(1.0, abs(a.trace))
    assert abs(a.lambda_max - b.lambda_max) < 1e-5 * max(1.0, abs(a.lambda_max))
    c = flatness(net, batch, batch, rho=0.05, ms=(8,), probes=20, seed=1, train_examples=10)
    assert c.trace != a.trace
