r"""SGD, SAM, USAM, AsyncSAM and SAMPa as update rules (see :mod:`asam_theory.methods.base`).

Notation: :math:`g=\nabla f_B(x)` a minibatch gradient, :math:`\eta` ``lr``, :math:`\rho` ``rho``,
:math:`\tau` ``tau``, ``BaseStep`` the torch.optim.SGD update of
:class:`~asam_theory.methods.base.UpdateRule`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from asam_theory.methods import _kernels
from asam_theory.methods.base import (
    DEFAULT_EPS,
    Cost,
    State,
    StepInfo,
    UpdateRule,
    _delayed_companion,
    row_norms,
)
from asam_theory.validation import check_choice, check_int, check_real


@dataclass(frozen=True)
class SGD(UpdateRule):
    r""":math:`x_{t+1}=\text{BaseStep}(x_t,\nabla f_{B_t}(x_t))`."""

    name = "sgd"

    @property
    def cost(self) -> Cost:
        return Cost(1, 1)

    def step(self, state, problem, streams):
        ws, x = state.ws, state.x
        g = problem.batch_grad(x, self.descent_batch(problem, streams), out=ws.buf("g", x))
        x_next, buf, sq = self.base_step_sq(x, g, state.buf, ws.ring("x", 2, state.t + 1, x), ws)
        info = StepInfo(problem, x, g)
        return State(x_next, state.t + 1, buf, state.extra, ws, sq), info


@dataclass(frozen=True)
class _Perturbed(UpdateRule):
    """A rule that descends from a perturbed point ``x + ε``; ``rho`` and the norm guard."""

    rho: float = 0.05
    eps: float = DEFAULT_EPS

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real("rho", self.rho, low=0.0)
        check_real("eps", self.eps, low=0.0)

    def perturbation(self, g: np.ndarray, normalize: bool, out: np.ndarray | None = None,
                     ) -> np.ndarray:
        r""":math:`\epsilon=\rho g/(\|g\|+\text{eps})` if ``normalize`` else :math:`\rho g`."""
        if normalize:
            return np.multiply(g, (self.rho / (row_norms(g) + self.eps))[:, None], out=out)
        return np.multiply(g, self.rho, out=out)

    def perturbed_point(self, x: np.ndarray, e: np.ndarray, ws) -> np.ndarray:
        r""":math:`x+\epsilon` in a reused buffer."""
        return np.add(x, e, out=ws.buf("x_pert", x))

    def perturb(self, g: np.ndarray, x: np.ndarray, normalize: bool, ws,
                out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        r"""``(c, x + ε)`` in reused buffers, :math:`\epsilon=c\,g` with ``c`` the per-row
        scale of :meth:`perturbation`: scale and perturbed point in one pass per row
        (:mod:`asam_theory.methods._kernels`); ε itself is formed by :class:`StepInfo` on
        demand (``perturbation_scale=c``), with the same numbers as :meth:`perturbation`.
        ``out``: where to write x + ε (default a buffer of its own). The SAM-type steps pass the
        slot the next iterate will be written to: x + ε is dead once the descent gradient is
        taken, and one (M, d) buffer fewer keeps a step's working set smaller."""
        c = ws.buf("e_scale", x[:, 0])
        xp = ws.buf("x_pert", x) if out is None else out
        _kernels.perturb_into(g, x, float(self.rho), float(self.eps), bool(normalize), c, xp)
        return c, xp


def _apart(g: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """``g``, copied if it shares memory with ``slot``: a problem whose gradient is a view of its
    input would otherwise see the step's descent gradient (kept in :class:`StepInfo`)
    overwritten by the base step writing the next iterate into ``slot``."""
    return g.copy() if np.may_share_memory(g, slot) else g


@dataclass(frozen=True)
class SAM(_Perturbed):
    r"""Sharpness-Aware Minimization (Foret et al. 2021), normalised, same batch:
    :math:`\epsilon_t=\rho\,g_t/(\|g_t\|+\text{eps})` with :math:`g_t=\nabla f_{B_t}(x_t)`,
    :math:`x_{t+1}=\text{BaseStep}(x_t,\nabla f_{B_t}(x_t+\epsilon_t))`.  ``eps`` = 1e-12 as in
    davda54/sam: a zero gradient gives no perturbation."""

    name = "sam"
    normalize = True

    @property
    def cost(self) -> Cost:
        return Cost(2, 2)

    def step(self, state, problem, streams):
        ws, x = state.ws, state.x
        batch = self.descent_batch(problem, streams)
        g_asc = problem.batch_grad(x, batch, out=ws.buf("g_asc", x))
        nxt = ws.ring("x", 2, state.t + 1, x)  # holds x + ε until the base step writes x_{t+1}
        c, x_pert = self.perturb(g_asc, x, self.normalize, ws, out=nxt)
        g = _apart(problem.batch_grad(x_pert, batch, out=ws.buf("g", x)), nxt)
        x_next, buf, sq = self.base_step_sq(x, g, state.buf, nxt, ws)
        info = StepInfo(problem, x, g, ascent_grad=g_asc, perturbation_scale=c)
        return State(x_next, state.t + 1, buf, state.extra, ws, sq), info


@dataclass(frozen=True)
class USAM(SAM):
    r"""Unnormalised SAM: :math:`\epsilon_t=\rho\,\nabla f_{B_t}(x_t)` (Andriushchenko &
    Flammarion 2022)."""

    name = "usam"
    normalize = False

    def companion(self, lam, lr):
        return _delayed_companion(self, lam, lr, delayed=self.rho * lam**2, tau=0)


ASCENT_BATCH = ("independent", "descent", "lookahead")


def _batch_prefix(batch, size: int, full: int):
    """The first ``size`` samples of a descent batch: a finite sum's index array ``(M, b)`` is
    cut to ``(M, size)``; any other batch (exact oracle, additive noise) only as a whole."""
    if size == full:
        return batch
    if isinstance(batch, np.ndarray) and batch.ndim == 2 and np.issubdtype(batch.dtype,
                                                                           np.integer):
        return batch[:, :size]
    raise ValueError(f"ascent_batch_size={size} < batch_size={full} with "
                     "ascent_batch='lookahead' needs a finite-sum problem (index batches)")


@dataclass(frozen=True)
class AsyncSAM(_Perturbed):
    r"""Asynchronous SAM (Jo, Lim, Lee 2025): the perturbation comes from a *stale* iterate.

    With :math:`s=\max(t-\tau,0)` (so the first τ steps use :math:`x_0`):

    .. math::
        g'_t=\nabla f_{B'}(x_s),\qquad
        \epsilon_t=\rho\,\frac{g'_t}{\|g'_t\|+\text{eps}}
        \ (\text{or }\rho\,g'_t\text{ if not normalised}),\qquad
        x_{t+1}=\text{BaseStep}\big(x_t,\nabla f_{B_t}(x_t+\epsilon_t)\big).

    ``ascent_batch`` chooses the ascent's batch :math:`B'`:

    * ``"independent"`` (default, the method's design): a fresh batch of size
      ``ascent_batch_size`` (b′, default b) from its own stream, independent of every descent
      batch;
    * ``"descent"``: the descent batch of step ``s`` (:math:`B'=B_s`), so for τ = 0 the ascent
      and the descent share the batch and the rule is exactly :class:`SAM`;
    * ``"lookahead"``: the descent batch of step ``t`` itself, :math:`B'=B_t` (or its first b′
      samples on a finite sum), evaluated at the stale :math:`x_s`.  A data loader knows its
      next batches, so a worker can compute this ascent τ steps ahead and it stays hidden:
      a *same-batch* perturbation that is only stale.  τ = 0 is exactly :class:`SAM`.

    Cost: :math:`1+b'/b` full-batch gradients per step (2 when b′ = b); sequential depth 1 for
    τ ≥ 1 (the ascent overlaps the previous descent), 2 for τ = 0.
    """

    name = "asyncsam"

    tau: int = 1
    normalize: bool = True
    ascent_batch_size: int | None = None
    ascent_batch: str = "independent"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("tau", self.tau, low=0)
        check_choice("ascent_batch", self.ascent_batch, ASCENT_BATCH)
        if self.ascent_batch_size is not None:
            check_int("ascent_batch_size", self.ascent_batch_size, low=1)
            if self.ascent_batch == "descent" and self.ascent_batch_size != self.batch_size:
                raise ValueError("ascent_batch_size must equal batch_size (or be None) when "
                                 "ascent_batch='descent'")
            if self.ascent_batch == "lookahead":
                check_int("ascent_batch_size", self.ascent_batch_size, low=1,
                          high=self.batch_size)

    @property
    def b_prime(self) -> int:
        return self.batch_size if self.ascent_batch_size is None else self.ascent_batch_size

    @property
    def cost(self) -> Cost:
        return Cost(1 + self.b_prime / self.batch_size, 1 if self.tau >= 1 else 2)

    def validate(self, problem) -> None:
        super().validate(problem)
        problem.check_batch_size("ascent_batch_size", self.b_prime)

    def init(self, x0, problem, streams):
        state = super().init(x0, problem, streams)
        state.extra = {"history": deque(maxlen=self.tau + 1),
                       "batches": deque(maxlen=self.tau + 1)}
        return state

    def step(self, state, problem, streams):
        ws, x = state.ws, state.x
        hist, batches = state.extra["history"], state.extra["batches"]
        hist.append(x)
        batch = self.descent_batch(problem, streams)
        if self.ascent_batch == "descent":
            batches.append(batch)
            ascent_batch = batches[0]
        elif self.ascent_batch == "lookahead":
            ascent_batch = _batch_prefix(batch, self.b_prime, self.batch_size)
        else:
            ascent_batch = problem.sample_batch(streams, "ascent", self.b_prime)
        g_asc = problem.batch_grad(hist[0], ascent_batch, out=ws.buf("g_asc", x))
        # the history keeps x_{t-tau..t}: a ring of tau + 2 slots never overwrites them; the
        # slot of x_{t+1} holds x + ε until the base step writes x_{t+1}
        nxt = ws.ring("x", self.tau + 2, state.t + 1, x)
        c, x_pert = self.perturb(g_asc, x, self.normalize, ws, out=nxt)
        g = _apart(problem.batch_grad(x_pert, batch, out=ws.buf("g", x)), nxt)
        x_next, buf, sq = self.base_step_sq(x, g, state.buf, nxt, ws)
        info = StepInfo(problem, x, g, ascent_grad=g_asc, perturbation_scale=c)
        return State(x_next, state.t + 1, buf, state.extra, ws, sq), info

    def companion(self, lam, lr):
        if self.normalize:
            return _delayed_companion(self, lam, lr, delayed=None, tau=0)
        return _delayed_companion(self, lam, lr, delayed=self.rho * lam**2, tau=self.tau)


SAMPA_START = ("zero", "gradient")


@dataclass(frozen=True)
class SAMPa(_Perturbed):
    r"""SAMPa-λ (Xie, Pethick, Cevher, NeurIPS 2024, arXiv 2410.10683; ``docs/methods.md`` §6):

    .. math::
        \tilde x_t=x_t+\rho\frac{\nabla f(y_t)}{\|\nabla f(y_t)\|},\quad
        y_{t+1}=x_t-\eta\nabla f(y_t),\quad
        x_{t+1}=x_t-\eta(1-\lambda)\nabla f(\tilde x_t)-\eta\lambda\nabla f(y_{t+1}).

    The two gradients of a step depend only on known points and run concurrently (cost 2,
    depth 1).  The defaults follow the official code (LIONS-EPFL/SAMPa ``train.py``):

    * batches: :math:`\nabla f(y_{t+1})` uses the step's fresh batch :math:`B_t`, and
      :math:`\nabla f(\tilde x_t)` the batch :math:`B_{t-1}` on which :math:`\nabla f(y_t)`
      was computed (same-batch perturbation); at step 0 both use :math:`B_0`;
    * ``start="zero"`` (default, as the official code): :math:`\nabla f(y_0)=0`, so step 0
      has no perturbation and :math:`y_1=x_0`: with :math:`\nabla f_{B_0}(x_0)` from both
      passes, step 0 is a plain SGD step (for any λ);
      ``start="gradient"``: :math:`y_0=x_0` with :math:`\nabla f_{B_{-1}}(y_0)` computed at
      ``init`` from the first descent draw (one gradient more, not in the per-step cost), so
      SAMPa with ρ = 0 and λ = 0 is SGD draw for draw;
    * the y-step is the step ``torch.optim.SGD`` would take with :math:`\nabla f(y_t)` *as the
      official code builds it*: :math:`y_{t+1}=x_t-\eta(\nabla f(y_t)+\lambda_{wd}x_t+\mu
      b_{t-1})` once the momentum buffer :math:`b_{t-1}` exists, and
      :math:`y_{t+1}=x_t-\eta\nabla f(y_t)` before it and whenever μ = 0 (weight decay enters
      the y-step only together with a momentum buffer).

    The descent :math:`x_{t+1}` is the base step with the mixed gradient.  Defaults
    ρ = 0.1, λ = 0.2: the official ``train.py`` (``--rho 0.1 --og 0.2``), as the torch
    optimizer :class:`asam_theory.torch.SAMPa`; λ = 0 is SAMPa-0.
    """

    name = "sampa"

    rho: float = 0.1
    lam: float = 0.2
    start: str = "zero"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real("lam", self.lam, low=0.0, high=1.0)
        check_choice("start", self.start, SAMPA_START)

    @property
    def cost(self) -> Cost:
        return Cost(2, 1)

    def init(self, x0, problem, streams):
        state = super().init(x0, problem, streams)
        if self.start == "gradient":
            batch = self.descent_batch(problem, streams)
            state.extra = {"gy": problem.batch_grad(state.x, batch), "batch": batch}
        else:
            state.extra = {"gy": np.zeros_like(state.x), "batch": None, "first": True}
        return state

    def y_point(self, x: np.ndarray, gy: np.ndarray, buf: np.ndarray | None,
                out: np.ndarray) -> np.ndarray:
        r""":math:`y_{t+1}=x_t-\eta(\nabla f(y_t)+[\lambda_{wd}x_t+\mu b_{t-1}])`, the bracket
        only when a momentum buffer exists (official ``train.py``)."""
        d = gy
        if self.momentum and buf is not None:
            d = gy + self.weight_decay * x + self.momentum * buf
        np.multiply(d, -self.lr, out=out)
        out += x
        return out

    def step(self, state, problem, streams):
        ws, x, t = state.ws, state.x, state.t
        gy, prev_batch = state.extra["gy"], state.extra["batch"]
        batch = self.descent_batch(problem, streams)
        if state.extra.get("first"):
            prev_batch = batch
        c, x_pert = self.perturb(gy, x, True, ws)
        y_next = self.y_point(x, gy, state.buf, out=ws.buf("y", x))
        g_tilde = problem.batch_grad(x_pert, prev_batch, out=ws.buf("g_tilde", x))
        # gy is read by the next step: alternate between two buffers
        gy_next = problem.batch_grad(y_next, batch, out=ws.ring("gy", 2, t + 1, x))
        g = g_tilde if self.lam == 0 else (1 - self.lam) * g_tilde + self.lam * gy_next
        x_next, buf, sq = self.base_step_sq(x, g, state.buf, ws.ring("x", 2, t + 1, x), ws)
        extra = {"gy": gy_next, "batch": batch}
        first = bool(state.extra.get("first"))
        info = StepInfo(problem, x, g, ascent_grad=gy, skipped=first,
                        perturbation_scale=None if first else c)
        return State(x_next, t + 1, buf, extra, ws, sq), info

    def companion(self, lam, lr):
        if self.momentum:
            return None  # the y-sequence with a momentum base has no simple linear model here
        lam = np.asarray(lam, dtype=np.float64)
        wd, lm = self.weight_decay, self.lam
        A = np.zeros((lam.size, 2, 2))
        # without momentum the y-step carries no weight decay (official code):
        # y' = x - lr lam y;  x' = x - lr((1-lm) lam x + lm lam y' + wd x)
        A[:, 1, 0] = 1.0
        A[:, 1, 1] = -lr * lam
        A[:, 0, 0] = 1 - lr * ((1 - lm) * lam + wd) - lr * lm * lam
        A[:, 0, 1] = lr**2 * lm * lam**2
        return A
