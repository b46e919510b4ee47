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


class RandomDelay:
    """Sleeps, with probability ``p`` per call, for an exponential time of mean ``mean_s``
    (its own generator seeded by ``seed``, created at the first call in whichever process
    calls): an emulated device whose step time jitters."""

    def __init__(self, p: float, mean_s: float, seed: Any) -> None:
        self.p, self.mean_s, self.seed = float(p), float(mean_s), seed
        self._rng: np.random.Generator | None = None

    def __call__(self) -> None:
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        if self._rng.random() < self.p:
            time.sleep(self._rng.exponential(self.mean_s))


class QuadraticLoss:
    """f_ξ(w) = ½ (w − x*)ᵀ H (w − x*) + f* + ξᵀw of ``params = [w]`` and a noise ``ξ`` (the
    ascent and descent loss of the run; ``ξ = None``: the exact f), optionally sleeping first
    (``delay``: seconds, or a callable such as :class:`RandomDelay`: an emulated device time).
    A module-level class, so the process backend's worker can unpickle it."""

    def __init__(self, H: torch.Tensor, xstar: torch.Tensor, f_star: float = 0.0,
                 delay_s: Any = 0.0) -> None:
        self.H, self.xstar, self.f_star, self.delay_s = H, xstar, float(f_star), delay_s

    def __call__(self, params: list[torch.Tensor], xi: torch.Tensor | None) -> torch.Tensor:
        if callable(self.delay_s):
            self.delay_s()
        elif self.delay_s > 0:
            time.sleep(self.delay_s)
        w = params[0]
        r = w - self.xstar
        out = 0.5 * r @ (self.H @ r) + self.f_star
        return out if xi is None else out + xi @ w


class GaussianNoise:
    """Draws ξ ~ N(0, (σ²/b) I_d) from its own generator seeded by ``seed`` (a "batch" of size
    b); picklable (the generator is created at the first draw, in whichever process draws)."""

    def __init__(self, sigma2: float, dim: int, seed: int, default_b: int,
                 dtype: torch.dtype = torch.float64) -> None:
        self.sigma2, self.dim, self.seed = float(sigma2), int(dim), int(seed)
        self.default_b, self.dtype = int(default_b), dtype
        self._gen: torch.Generator | None = None

    def __getstate__(self) -> dict[str, Any]:
        if self._gen is not None:
            raise RuntimeError("GaussianNoise is pickled only before its first draw (its "
                               "stream would otherwise fork)")
        return dict(self.__dict__)

    def __call__(self, b: int | None = None) -> torch.Tensor:
        if self._gen is None:
            self._gen = torch.Generator().manual_seed(self.seed)
        b = self.default_b if b is None else b
        scale = (self.sigma2 / b) ** 0.5
        return scale * torch.randn(self.dim, generator=self._gen,
                                   dtype=torch.float64).to(self.dtype)


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
    backend: str = "thread",
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
    def numpy(tensor: Any) -> np.ndarray:
        if not isinstance(tensor, torch.Tensor) or tensor.numel() != d:
            return np.full(d, np.nan)
        return tensor.detach().double().cpu().numpy().reshape(d).copy()

    descent_noise = GaussianNoise(sigma2, d, seed, batch_size, dtype)
    loss = QuadraticLoss(H, Xs, f_star)
    ascent_loss = QuadraticLoss(H.to(ascent_device), Xs.to(ascent_device), f_star,
                                delay_s=ascent_delay_s)
    opt = AsyncSAM(
        [w], torch.optim.SGD, rho=rho, tau=tau, ascent_batch_size=ascent_batch_size,
        ascent_loss=ascent_loss,
        ascent_batches=GaussianNoise(sigma2, d, seed + 1, ascent_batch_size, dtype),
        worker=WorkerOptions(device=ascent_device, max_staleness=max_staleness, timeout=timeout,
                             backend=backend, keep_batches=True),
        deterministic=deterministic, lr=lr,
    )

    def exact(wt: torch.Tensor) -> tuple[float, float]:
        r = (wt.detach().double().cpu().numpy() - xstar)
        g = h @ r
        return float(g @ g), float(0.5 * r @ g)

    g2, gaps, xis, ws, applied = [], [], [], [], []
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
                    out = loss([w], xi)
                    out.backward()
                    return out

                opt.step(closure)
                applied.append(numpy(opt.last_ascent_batch))
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
    ascent = np.array(applied).reshape(staleness.size, d)
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
            "backend": "deterministic" if deterministic else backend,
            "device": device, "ascent_device": ascent_device, "dtype": str(dtype),
            "x0": x_init.tolist(),
        },
    )
