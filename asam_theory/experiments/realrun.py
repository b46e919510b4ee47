"""The real threaded AsyncSAM on a quadratic with known constants (for claims' real-run checks).

Objective (d-dimensional, H symmetric positive semi-definite):

    f(w) = ½ (w − x*)ᵀ H (w − x*) + f*,      ∇f(w) = H (w − x*),   L = λ_max(H), μ = λ_min(H).

Stochastic oracle with additive Gaussian noise of variance σ²/b: a "batch" of size b is a noise
vector ξ ~ N(0, (σ²/b) I_d), and the minibatch loss is f_ξ(w) = f(w) + ξᵀw, so autograd returns
∇f_ξ(w) = H (w − x*) + ξ. Descent batches (size b) and ascent batches (size b′) come from two
independent seeded generators. Optional sleeps emulate device compute times (a slower ascent
device produces real staleness > τ when ``max_staleness > tau``). The run itself is
:class:`~asam_theory.torch.AsyncSAM` with its worker thread (or ``deterministic=True``), SGD base.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from asam_theory.torch.asyncsam import AsyncSAM, WorkerOptions


@dataclass
class ThreadedQuadraticRun:
    """Measurements of one real run (arrays are float64 numpy)."""

    staleness: np.ndarray  # (T,) staleness used at each step
    mean_grad_norm2: float  # (1/T) Σ_{t=0}^{T-1} ‖∇f(w_t)‖²
    final_gap: float  # f(w_T) − f*
    grad_norm2: np.ndarray  # (T+1,) ‖∇f(w_t)‖², t = 0..T
    f_gap: np.ndarray  # (T+1,) f(w_t) − f*
    wait_s: np.ndarray  # (T,) main-thread wait for the worker
    wall_s: float
    #: (T, d) the descent noise ξ_t of each step, (T, d) the ascent noise of the direction the
    #: step applied (NaN where the step applied none), (T,) the version of that direction's
    #: snapshot, (T+1, d) the iterates w_0..w_T: with these a run can be replayed step by step
    descent_noise: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    ascent_noise: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    versions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    iterates: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    constants: dict[str, float] = field(default_factory=dict)  # L, mu, f_star, sigma2
    config: dict[str, Any] = field(default_factory=dict)


def _quadratic(eigenvalues: Any, seed: int, dim: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    lam = np.asarray(eigenvalues, dtype=np.float64)
    d = lam.size if dim is None else dim
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    h = (q * lam) @ q.T
    return 0.5 * (h + h.T), rng.standard_normal(d)


def threaded_quadratic_run(
    problem: Any = None,
    *,
    eigenvalues: Any = (4.0, 2.0, 1.0, 0.5),
    problem_seed: int = 0,
    x0: Any = None,
    steps: int = 200,
    lr: float = 0.1,
    rho: float = 0.05,
    tau: int = 1,
    max_staleness: int | None = None,
    sigma2: float = 0.0,
    batch_size: int = 1,
    ascent_batch_size: int = 1,
    descent_delay_s: float = 0.0,
    ascent_delay_s: float = 0.0,
    seed: int = 0,
    deterministic: bool = False,
    device: str = "cpu",
    ascent_device: str = "cpu",
    dtype: torch.dtype = torch.float64,
    timeout: float = 60.0,
) -> ThreadedQuadraticRun:
    """Run AsyncSAM (threaded unless ``deterministic``) on the quadratic; see module docstring.

    Args:
        problem: any object with ``hessian`` (d, d), ``minimizer`` (d,), ``f_star`` (e.g.
            ``asam_theory.problems.Quadratic``); otherwise built from ``eigenvalues`` rotated by
            a random orthogonal matrix (``problem_seed``) with a standard-normal minimiser, f* = 0.
        x0: start (default all ones).
        sigma2, batch_size, ascent_batch_size: noise variance σ² and the batch sizes b, b′.
        descent_delay_s, ascent_delay_s: sleeps added to each descent / ascent gradient.
        seed: seeds the descent (``seed``) and ascent (``seed + 1``) noise generators.
    """
    if problem is not None:
        h = np.asarray(problem.hessian, dtype=np.float64)
        xstar = np.asarray(problem.minimizer, dtype=np.float64).reshape(-1)
        f_star = float(problem.f_star)
    else:
        h, xstar = _quadratic(eigenvalues, problem_seed)
        f_star = 0.0
    if sigma2 < 0:
        raise ValueError(f"sigma2 must be >= 0, got {sigma2!r}")
    d = xstar.size
    eig = np.linalg.eigvalsh(h)
    dev = torch.device(device)
    H = torch.tensor(h, dtype=dtype, device=dev)
    Xs = torch.tensor(xstar, dtype=dtype, device=dev)
    x_init = np.ones(d) if x0 is None else np.asarray(x0, dtype=np.float64).reshape(d)
    w = torch.nn.Parameter(torch.tensor(x_init, dtype=dtype, device=dev))
    H_a = H.to(ascent_device)
    Xs_a = Xs.to(ascent_device)

    def noise_source(gen: torch.Generator, default_b: int) -> Any:
        def draw(b: int = default_b) -> torch.Tensor:
            scale = (sigma2 / b) ** 0.5
            return scale * torch.randn(d, generator=gen, dtype=torch.float64).to(dtype)
        return draw

    def numpy(tensor: Any) -> np.ndarray:
        if not isinstance(tensor, torch.Tensor) or tensor.numel() != d:
            return np.full(d, np.nan)
        return tensor.detach().double().cpu().numpy().reshape(d).copy()

    gen_d = torch.Generator().manual_seed(seed)
    gen_a = torch.Generator().manual_seed(seed + 1)
    descent_noise = noise_source(gen_d, batch_size)

    def loss(wt: torch.Tensor, xi: torch.Tensor, Hm: torch.Tensor, xs: torch.Tensor
             ) -> torch.Tensor:
        r = wt - xs
        return 0.5 * r @ (Hm @ r) + f_star + xi @ wt

    #: the ascent noise each snapshot's direction was computed with, keyed by the snapshot's
    #: bytes (a snapshot is an exact copy of an iterate, so steps find theirs by version)
    ascent_seen: dict[bytes, np.ndarray] = {}

    def ascent_loss(params: list[torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        if ascent_delay_s > 0:
            time.sleep(ascent_delay_s)
        ascent_seen[numpy(params[0]).tobytes()] = numpy(xi)
        return loss(params[0], xi, H_a, Xs_a)

    opt = AsyncSAM(
        [w], torch.optim.SGD, rho=rho, tau=tau, ascent_batch_size=ascent_batch_size,
        ascent_loss=ascent_loss, ascent_batches=noise_source(gen_a, ascent_batch_size),
        worker=WorkerOptions(device=ascent_device, max_staleness=max_staleness, timeout=timeout),
        deterministic=deterministic, lr=lr,
    )

    def exact(wt: torch.Tensor) -> tuple[float, float]:
        r = (wt.detach().double().cpu().numpy() - xstar)
        g = h @ r
        return float(g @ g), float(0.5 * r @ g)

    g2, gaps, xis, ws = [], [], [], []
    t0 = time.perf_counter()
    try:
        with opt:
            for _ in range(steps):
                a, b = exact(w)
                g2.append(a)
                gaps.append(b)
                ws.append(numpy(w))
                xi = descent_noise(batch_size).to(dev)
                xis.append(numpy(xi))

                def closure(xi: torch.Tensor = xi) -> torch.Tensor:
                    opt.zero_grad()
                    if descent_delay_s > 0:
                        time.sleep(descent_delay_s)
                    out = loss(w, xi, H, Xs)
                    out.backward()
                    return out

                opt.step(closure)
    finally:
        opt.close()
    wall = time.perf_counter() - t0
    a, b = exact(w)
    g2.append(a)
    gaps.append(b)
    ws.append(numpy(w))
    g2_arr, gap_arr = np.array(g2), np.array(gaps)
    iterates = np.array(ws).reshape(steps + 1, d)
    staleness = np.array(opt.staleness_history, dtype=np.int64)
    versions = np.arange(staleness.size) - staleness
    nan = np.full(d, np.nan)
    ascent = np.array([ascent_seen.get(iterates[v].tobytes(), nan) for v in versions]
                      ).reshape(staleness.size, d)
    return ThreadedQuadraticRun(
        staleness=staleness,
        mean_grad_norm2=float(g2_arr[:-1].mean()) if steps else float("nan"),
        final_gap=float(gap_arr[-1]),
        grad_norm2=g2_arr,
        f_gap=gap_arr,
        wait_s=np.array(opt.wait_history),
        wall_s=wall,
        descent_noise=np.array(xis).reshape(steps, d),
        ascent_noise=ascent,
        versions=versions,
        iterates=iterates,
        constants={"L": float(eig[-1]), "mu": float(eig[0]), "f_star": f_star,
                   "sigma2": float(sigma2), "dim": d},
        config={
            "steps": steps, "lr": lr, "rho": rho, "tau": tau,
            "max_staleness": opt.max_staleness, "sigma2": sigma2, "batch_size": batch_size,
            "ascent_batch_size": ascent_batch_size, "descent_delay_s": descent_delay_s,
            "ascent_delay_s": ascent_delay_s, "seed": seed, "deterministic": deterministic,
            "device": device, "ascent_device": ascent_device, "dtype": str(dtype),
            "x0": x_init.tolist(),
        },
    )
