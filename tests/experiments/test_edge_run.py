"""Sharpness by Lanczos (experiments.sharpness) and the full-batch edge runs (experiments.edge).

* the top eigenvalue against the exact Hessian of ``torch.autograd.functional.hessian`` on a tiny
  network (float64: agreement to 1e-8 relative, ARPACK's tolerance there 1e-10) and against a
  quadratic whose Hessian is known, in float32 too (1e-4: single precision HVPs);
* the torch stale step equals the numpy engine's AsyncSAM rule with the ascent on the descent
  (here: the full) batch, on a quadratic, for unnormalised and normalised perturbations and
  several τ (1e-12: the same float64 arithmetic up to summation order);
* a short run records what it promises.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asam_theory.engine import simulate
from asam_theory.experiments import edge as X
from asam_theory.experiments.sharpness import top_eigenvalue
from asam_theory.methods import AsyncSAM
from asam_theory.problems import Quadratic


def _tiny_net_loss(activation: str):
    torch.manual_seed(3)
    x = torch.randn(12, 3, dtype=torch.float64)
    y = torch.randn(12, 2, dtype=torch.float64)
    model = X.edge_mlp(3, 4, 1, 2, activation, seed=5)
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]
    names = [n for n, _ in model.named_parameters()]
    w0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(w: torch.Tensor) -> torch.Tensor:
        ps = {n: t.view(s) for n, t, s in zip(names, torch.split(w, sizes), shapes, strict=True)}
        return 0.5 * ((torch.func.functional_call(model, ps, (x,)) - y) ** 2).sum(1).mean()

    return loss, w0


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_sharpness_matches_exact_hessian_on_tiny_network(activation: str) -> None:
    loss, w0 = _tiny_net_loss(activation)
    h = torch.autograd.functional.hessian(loss, w0)
    exact = float(torch.linalg.eigvalsh(h)[-1])
    w = w0.clone().requires_grad_(True)
    got = top_eigenvalue(lambda: loss(w), [w], tol=1e-10)
    assert got.value == pytest.approx(exact, rel=1e-8)
    # the returned vector is the top eigenvector: H v = λ v
    v = torch.as_tensor(got.vector)
    assert torch.allclose(h @ v, exact * v, atol=1e-6)
    # a warm start from it converges in fewer products
    again = top_eigenvalue(lambda: loss(w), [w], v0=got.vector, tol=1e-10)
    assert again.value == pytest.approx(exact, rel=1e-8)


@pytest.mark.parametrize("dtype,rel", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_sharpness_on_quadratic(dtype: torch.dtype, rel: float) -> None:
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    lam = np.linspace(-2.0, 7.5, 30)
    hm = torch.as_tensor((q * lam) @ q.T, dtype=dtype)
    w = torch.zeros(30, dtype=dtype, requires_grad=True)
    got = top_eigenvalue(lambda: 0.5 * w @ hm @ w + w.sum(), [w], tol=1e-10)
    assert got.value == pytest.approx(7.5, rel=rel)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("tau", [0, 1, 3])
def test_torch_stale_step_equals_numpy_asyncsam(normalize: bool, tau: int) -> None:
    prob = Quadratic([3.0, 1.0, 0.4, 0.1], rotate=True, shift=True, seed=2)
    x0 = np.array([1.0, -2.0, 0.5, 3.0])
    lr, rho, steps = 0.2, 0.07, 12
    rule = AsyncSAM(lr=lr, rho=rho, tau=tau, normalize=normalize, ascent_batch="descent",
                    eps=X.EPS)
    ref = simulate(prob, rule, x0, steps=steps, record=("x",)).metrics["x"][:, 0, :]
    hm = torch.as_tensor(prob.H)
    xs = torch.as_tensor(prob.minimizer)

    def grad(w: torch.Tensor) -> torch.Tensor:
        return hm @ (w - xs)

    w = torch.as_tensor(x0)
    ascent = X.StaleAscent(tau)
    out = [w.numpy().copy()]
    for _ in range(steps):
        w, _, _ = X.stale_sam_step(w, grad, ascent, lr, rho, normalize)
        out.append(w.numpy().copy())
    np.testing.assert_allclose(np.array(out), ref, rtol=1e-12, atol=1e-12)


def test_stale_ascent_ring() -> None:
    ring = X.StaleAscent(2)
    seen = []
    for t in range(5):
        ring.push(torch.tensor(float(t)))
        seen.append(float(ring.stale()))
    assert seen == [0.0, 0.0, 0.0, 1.0, 2.0]  # g_{max(t-2, 0)}
    with pytest.raises(ValueError, match="tau"):
        X.StaleAscent(-1)


def test_short_run_records_sharpness_and_edges() -> None:
    cfg = X.EdgeConfig(method="stale_sam", lr=0.5, rho=0.01, tau=1, n_train=64, width=8,
                       steps=20, measure_every=5)
    run = X.run_edge(cfg)
    assert run.measured_steps[0] == 0 and run.measured_steps[-1] == 20
    # every 2 * measure_every in the first half, every measure_every in the second
    assert list(run.measured_steps) == [0, 10, 15, 20]
    assert run.sharpness.shape == run.norm.shape == run.edge().shape
    assert np.all(run.sharpness > 0) and not run.diverged
    # the recorded edge is the heuristic at the stale gradient's norm
    assert run.edge()[1] == pytest.approx(X.edge_of(cfg, float(run.norm[1])))
    assert run.loss.shape == (21,)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="rho"):
        X.EdgeConfig(method="usam", rho=0.0)
    with pytest.raises(ValueError, match="tau"):
        X.EdgeConfig(method="sam", rho=0.1, tau=2)
    with pytest.raises(ValueError, match="activation"):
        X.EdgeConfig(activation="gelu")


@pytest.mark.parametrize("method,rho,tau", [("usam", 0.1, 0), ("stale_sam", 0.01, 1)])
def test_minibatch_of_the_whole_set_reproduces_the_full_batch_run(method, rho, tau) -> None:
    """b = n: every batch is the whole set in another order, so the run is the full-batch one
    (up to summation order)."""
    base = X.EdgeConfig(method=method, lr=0.5, rho=rho, tau=tau, n_train=48, width=8, steps=12,
                        measure_every=4)
    data = X.edge_data("digits", 48)
    full = X.run_edge(base, data=data)
    mini = X.run_edge(X.EdgeConfig(**{**base.__dict__, "batch_size": 48}), data=data)
    np.testing.assert_allclose(mini.sharpness, full.sharpness, rtol=1e-7)
    np.testing.assert_allclose(mini.norm, full.norm, rtol=1e-9)
    with pytest.raises(ValueError, match="batch_size"):
        X.EdgeConfig(n_train=48, batch_size=49)
