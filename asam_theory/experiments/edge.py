r"""Full-batch training at the edge of stability: GD, USAM, SAM, stale USAM and stale SAM.

Cohen et al. (ICLR 2021, arXiv 2103.00065) find that full-batch GD on networks sharpens until
the top Hessian eigenvalue :math:`\lambda_{\max}` reaches :math:`2/\eta` and then hovers there.
This module trains small MLPs full-batch on real data with each method of
:mod:`asam_theory.theory.edge`, measures :math:`\lambda_{\max}` along the run
(:mod:`asam_theory.experiments.sharpness`) and records the method's own edge at the same steps.

The step (all methods; ``docs/theory.md`` §0, §2.4). With :math:`g_t=\nabla L(w_t)` the
full-batch gradient and :math:`s=\max(t-\tau,0)`:

.. math::
    \epsilon_t=\rho\,g_s\ \ (\text{unnormalised})\quad\text{or}\quad
    \epsilon_t=\rho\,\frac{g_s}{\|g_s\|+\text{eps}}\ \ (\text{normalised}),\qquad
    w_{t+1}=w_t-\eta\,\nabla L(w_t+\epsilon_t).

GD has :math:`\rho=0`; USAM / SAM are τ = 0; stale USAM / stale SAM keep the last τ + 1
gradients in a ring buffer (:class:`StaleAscent`), the first τ steps using :math:`g_0` (the
history starts as copies of :math:`w_0`). This is the numpy engine's
:class:`~asam_theory.methods.AsyncSAM` rule with the ascent on the full batch (on a full batch
``ascent_batch`` = ``"descent"``, ``"independent"`` and ``"lookahead"`` coincide): full-batch
runs test AsyncSAM's staleness only, not its own-batch ascent noise.

The edge recorded at a measured step t: :math:`2/\eta` (GD), USAM's and stale USAM's constants,
and for the normalised methods the edge at the gradient norm that the step normalises by,
:math:`\|g_s\|` (SAM: :math:`\|g_t\|`), averaged over the two steps :math:`t-1, t` (at the edge
the iterates oscillate with period about 2, so does :math:`\|g\|`; the average is the norm the
oscillation sees). The stale SAM edge is a heuristic (``docs/theory.md`` §2.4).

Losses: ``"mse"`` is :math:`\frac1{2n}\sum_i\|f(x_i)-e_{y_i}\|^2` on one-hot targets,
``"ce"`` the mean cross-entropy.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from asam_theory.data import load_dataset
from asam_theory.experiments.sharpness import top_eigenvalue
from asam_theory.theory.edge import EDGE_METHODS, edge
from asam_theory.validation import check_choice, check_int, check_nonnegative, check_positive

__all__ = [
    "EdgeConfig",
    "EdgeRun",
    "StaleAscent",
    "edge_data",
    "edge_mlp",
    "run_edge",
]

ACTIVATIONS = ("tanh", "relu")
LOSSES = ("mse", "ce")
#: the norm guard of the normalised perturbation (as the numpy rules' DEFAULT_EPS)
EPS = 1e-12


@dataclass(frozen=True)
class EdgeConfig:
    """One full-batch run. ``method`` is one of :data:`~asam_theory.theory.edge.EDGE_METHODS`;
    ``rho`` and ``tau`` are used by the methods that have them. ``n_train`` examples of the
    training split (the first ones of a permutation drawn by ``data_seed``); ``measure_every``:
    steps between two sharpness measurements. ``batch_size``: ``None`` trains full-batch (the
    claim's setting); a number trains on minibatches drawn without replacement from ``seed``,
    the ascent on the descent batch for τ = 0 (SAM, USAM) and on a batch of its own at the
    weights :math:`w_{t-\\tau}` for τ ≥ 1 (AsyncSAM's design); the sharpness is still the
    full-batch loss's."""

    method: str = "gd"
    lr: float = 0.1
    rho: float = 0.0
    tau: int = 0
    dataset: str = "digits"
    n_train: int = 500
    activation: str = "tanh"
    width: int = 32
    depth: int = 2
    loss: str = "mse"
    steps: int = 1000
    measure_every: int = 20
    seed: int = 0
    data_seed: int = 0
    lanczos_tol: float = 1e-5
    batch_size: int | None = None

    def __post_init__(self) -> None:
        check_choice("method", self.method, EDGE_METHODS)
        check_positive("lr", self.lr)
        check_nonnegative("rho", self.rho)
        check_int("tau", self.tau, low=0)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("loss", self.loss, LOSSES)
        check_int("n_train", self.n_train, low=1)
        check_int("width", self.width, low=1)
        check_int("depth", self.depth, low=1)
        check_int("steps", self.steps, low=1)
        check_int("measure_every", self.measure_every, low=1)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, low=1, high=self.n_train)
        if self.method in ("usam", "sam", "stale_usam", "stale_sam") and self.rho <= 0:
            raise ValueError(f"rho must be > 0 for method={self.method!r}, got {self.rho!r}")
        if self.method in ("gd", "usam", "sam") and self.tau != 0:
            raise ValueError(f"tau must be 0 for method={self.method!r}, got {self.tau!r}")

    @property
    def normalized(self) -> bool:
        return self.method in ("sam", "stale_sam")

    @property
    def label(self) -> str:
        """``"GD"``, ``"USAM"``, ``"SAM"``, ``"stale USAM τ=2"``, ..."""
        base = {"gd": "GD", "usam": "USAM", "sam": "SAM", "stale_usam": "stale USAM",
                "stale_sam": "stale SAM"}[self.method]
        return f"{base} τ={self.tau}" if self.method.startswith("stale") else base


@dataclass
class EdgeRun:
    """A finished run: per measured step (``measured_steps``) the sharpness and the edge;
    per step the loss and :math:`\\|g_t\\|`; ``diverged`` when the loss became non-finite."""

    config: EdgeConfig
    measured_steps: np.ndarray
    sharpness: np.ndarray
    norm: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    train_accuracy: float
    seconds: float
    matvecs: int
    diverged: bool = False
    info: dict = field(default_factory=dict)

    def edge(self) -> np.ndarray:
        """The method's edge at the measured steps, computed now by
        :func:`~asam_theory.theory.edge.edge` (for the normalised methods at :attr:`norm`, the
        norm the step divides by, averaged over the steps t - 1 and t)."""
        return np.array([edge_of(self.config, float(n)) for n in self.norm])

    def ratio(self) -> np.ndarray:
        """:math:`\\lambda_{\\max}(t)/\\text{edge}(t)` at the measured steps."""
        return self.sharpness / self.edge()

    def second_half(self) -> np.ndarray:
        """Mask of the measured steps in the run's second half."""
        return self.measured_steps >= self.config.steps // 2

    def as_dict(self) -> dict:
        return {"config": asdict(self.config), "measured_steps": self.measured_steps.tolist(),
                "sharpness": self.sharpness.tolist(), "edge": self.edge().tolist(),
                "train_accuracy": self.train_accuracy, "seconds": self.seconds,
                "matvecs": self.matvecs, "diverged": self.diverged,
                "final_loss": float(self.loss[-1])}


class StaleAscent:
    r"""The ring buffer of the last τ + 1 full-batch gradients: :meth:`push` :math:`g_t`,
    then :meth:`stale` is :math:`g_{\max(t-\tau,0)}` (the first push fills every slot, as the
    numpy rule's history of copies of :math:`x_0`)."""

    def __init__(self, tau: int) -> None:
        self.tau = check_int("tau", tau, low=0)
        self._ring: deque[torch.Tensor] = deque(maxlen=self.tau + 1)

    def push(self, g: torch.Tensor) -> None:
        if not self._ring:
            for _ in range(self.tau):
                self._ring.append(g)
        self._ring.append(g)

    def stale(self) -> torch.Tensor:
        return self._ring[0]


def perturbation(g_stale: torch.Tensor, rho: float, normalized: bool) -> torch.Tensor:
    r""":math:`\rho g` or :math:`\rho g/(\|g\|+\text{eps})` (the numpy rules' perturbation)."""
    if normalized:
        return g_stale * (rho / (float(torch.linalg.vector_norm(g_stale)) + EPS))
    return g_stale * rho


def stale_sam_step(w: torch.Tensor, grad_fn: Callable[[torch.Tensor], torch.Tensor],
                   ascent: StaleAscent, lr: float, rho: float, normalized: bool,
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""One step on a flat parameter vector: push :math:`g_t=\nabla L(w_t)`, perturb with the
    stale gradient, descend. Returns :math:`(w_{t+1}, g_t, g_s)`; ``rho = 0`` is GD (no second
    gradient)."""
    g = grad_fn(w)
    ascent.push(g)
    if rho == 0.0:
        return w - lr * g, g, g
    gs = ascent.stale()
    return w - lr * grad_fn(w + perturbation(gs, rho, normalized)), g, gs


# ------------------------------------------------------------------------------ data, model


def edge_data(dataset: str, n_train: int, data_seed: int = 0,
              dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)``: ``n_train`` standardised training examples of ``dataset`` (a permutation by
    ``data_seed``), flattened; ``y`` integer labels."""
    ds = load_dataset(dataset, seed=0)
    n_avail = ds.x_train.shape[0]
    n_train = check_int("n_train", n_train, low=1, high=n_avail)
    idx = np.random.default_rng(data_seed).permutation(n_avail)[:n_train]
    x = torch.as_tensor(ds.x_train[idx].reshape(n_train, -1), dtype=dtype)
    y = torch.as_tensor(ds.y_train[idx], dtype=torch.long)
    return x, y


def edge_mlp(in_dim: int, width: int, depth: int, classes: int, activation: str,
             seed: int, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units with ``activation``, PyTorch's default
    initialisation drawn from ``seed``."""
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[check_choice("activation", activation,
                                                          ACTIVATIONS)]
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), act()]
        d = width
    layers.append(nn.Linear(d, classes))
    model = nn.Sequential(*layers).to(dtype)
    torch.random.set_rng_state(gen_state)
    return model


def _functional(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str,
                ) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, list]:
    """``(L(w_flat), w0_flat, shapes)``: the full-batch loss as a function of a flat vector."""
    params = [p.detach().clone() for p in model.parameters()]
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    names = [n for n, _ in model.named_parameters()]
    onehot = nn.functional.one_hot(y, int(y.max()) + 1 if loss == "ce" else 10).to(x.dtype)

    def loss_of(w: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        ps = {n: t.view(s) for n, t, s in zip(names, torch.split(w, sizes), shapes, strict=True)}
        xb, yb, ob = (x, y, onehot) if idx is None else (x[idx], y[idx], onehot[idx])
        out = torch.func.functional_call(model, ps, (xb,))
        if loss == "mse":
            return 0.5 * ((out - ob) ** 2).sum(dim=1).mean()
        return nn.functional.cross_entropy(out, yb)

    return loss_of, torch.cat([p.reshape(-1) for p in params]), shapes


def edge_of(cfg: EdgeConfig, gnorm: float) -> float:
    """The edge of ``cfg``'s method at normalisation norm ``gnorm`` (used only by SAM and
    stale SAM)."""
    if cfg.normalized:
        return edge(cfg.method, cfg.lr, cfg.rho, cfg.tau, grad_norm=max(gnorm, EPS))
    return edge(cfg.method, cfg.lr, cfg.rho, cfg.tau)


def run_edge(cfg: EdgeConfig, *, data: tuple[torch.Tensor, torch.Tensor] | None = None,
             ) -> EdgeRun:
    """Train ``cfg`` full-batch in float64 and measure :math:`\\lambda_{\\max}` every
    ``measure_every`` steps in the second half, every ``2 * measure_every`` in the first (and
    at the last step). ``data``: a preloaded ``(X, y)``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny full-batch tensors: a second thread only spins
    try:
        return _run_edge(cfg, data)
    finally:
        torch.set_num_threads(threads)


def _run_edge(cfg: EdgeConfig, data: tuple[torch.Tensor, torch.Tensor] | None) -> EdgeRun:
    t0, c0 = time.perf_counter(), time.process_time()
    x, y = edge_data(cfg.dataset, cfg.n_train, cfg.data_seed) if data is None else data
    model = edge_mlp(x.shape[1], cfg.width, cfg.depth, 10, cfg.activation, cfg.seed)
    loss_of, w, _ = _functional(model, x, y, cfg.loss)

    def grad_fn(v: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        v = v.detach().requires_grad_(True)
        with torch.enable_grad():
            return torch.autograd.grad(loss_of(v, idx), v)[0]

    ascent = StaleAscent(cfg.tau)
    minibatch = _Minibatch(cfg, x.shape[0]) if cfg.batch_size is not None else None
    rho = 0.0 if cfg.method == "gd" else cfg.rho
    losses, gnorms, snorms = [], [], []
    m_steps, m_sharp, m_norm = [], [], []
    vec = None
    matvecs = 0
    diverged = False
    for t in range(cfg.steps + 1):
        every = cfg.measure_every * (1 if 2 * t >= cfg.steps else 2)
        measure = t % every == 0 or t == cfg.steps
        if measure:
            wt = w.detach().requires_grad_(True)
            sh = top_eigenvalue(lambda wt=wt: loss_of(wt), [wt], v0=vec, tol=cfg.lanczos_tol)
            vec, matvecs = sh.vector, matvecs + sh.matvecs
            m_steps.append(t)
            m_sharp.append(sh.value)
        if t == cfg.steps:
            with torch.no_grad():
                losses.append(float(loss_of(w)))
            break
        if minibatch is None:
            w_next, g, gs = stale_sam_step(w, grad_fn, ascent, cfg.lr, rho, cfg.normalized)
        else:
            w_next, g, gs = minibatch.step(w, grad_fn, rho)
        losses.append(float(loss_of(w).detach()) if measure else math.nan)
        gnorms.append(float(torch.linalg.vector_norm(g)))
        snorms.append(float(torch.linalg.vector_norm(gs)))
        if measure:
            # the normalised methods: the norm their step divides by, over the last two steps
            m_norm.append(float(np.mean(snorms[-2:])))
        if not torch.all(torch.isfinite(w_next)):
            diverged = True
            break
        w = w_next.detach()
    if len(m_norm) < len(m_sharp):
        m_norm.append(float(np.mean(snorms[-2:])) if snorms else 1.0)
    with torch.no_grad():
        ps = torch.split(w, [p.numel() for p in model.parameters()])
        for p, v in zip(model.parameters(), ps, strict=True):
            p.copy_(v.view_as(p))
        acc = float((model(x).argmax(dim=1) == y).double().mean())
    return EdgeRun(cfg, np.array(m_steps), np.array(m_sharp), np.array(m_norm),
                   np.array(losses), np.array(gnorms), acc, time.perf_counter() - t0, matvecs,
                   diverged, {"cpu_seconds": time.process_time() - c0})


class _Minibatch:
    r"""Minibatch steps: descent on :math:`B_t`; ascent at :math:`w_{t-\tau}` on :math:`B_t`
    (τ = 0) or on a batch of its own (τ ≥ 1); a ring of the last τ + 1 weights."""

    def __init__(self, cfg: EdgeConfig, n: int) -> None:
        self.cfg, self.n = cfg, n
        self.gen = torch.Generator().manual_seed(int(cfg.seed) * 7919 + 1)
        self.ring: deque[torch.Tensor] = deque(maxlen=cfg.tau + 1)

    def batch(self) -> torch.Tensor:
        return torch.randperm(self.n, generator=self.gen)[: self.cfg.batch_size]

    def step(self, w: torch.Tensor, grad_fn, rho: float):
        cfg = self.cfg
        if not self.ring:
            for _ in range(cfg.tau):
                self.ring.append(w)
        self.ring.append(w)
        idx = self.batch()
        if rho == 0.0:
            g = grad_fn(w, idx)
            return w - cfg.lr * g, g, g
        idx_a = idx if cfg.tau == 0 else self.batch()
        gs = grad_fn(self.ring[0], idx_a)
        g = grad_fn(w + perturbation(gs, rho, cfg.normalized), idx)
        return w - cfg.lr * g, g, gs


def run_many(configs: Sequence[EdgeConfig]) -> list[EdgeRun]:
    """Run several configurations, loading each data set once."""
    cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
    out = []
    for c in configs:
        key = (c.dataset, c.n_train, c.data_seed)
        if key not in cache:
            cache[key] = edge_data(*key)
        out.append(run_edge(c, data=cache[key]))
    return out
