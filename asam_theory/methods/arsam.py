r"""ARSAM via its published predecessor vSAM: PSF reuse with adaptive sampling (Deng & Pang,
arXiv 2510.03763 (ARSAM) and arXiv 2403.08821 (vSAM); ``docs/methods.md`` §7; official vSAM
code ajiaaa/vSAM ``vsam/vsam.py``).

**What is implemented.** ARSAM's own mixing rule and schedule are **NOT FOUND** (its repository
could not be read); this rule is the vSAM rule from the authors' earlier public code, which
implements the same decomposition of SAM's gradient into the SGD gradient plus the
*projection of the second-order gradient onto the first-order one* (PSF),
:math:`\nabla f(x+\rho g/\|g\|)\approx g+\rho Hg/\|g\|`.  Nothing of ARSAM beyond that is
invented here.

* **SAM step** (sampled): :math:`g_t=\nabla f_{B_t}(x_t)`,
  :math:`\epsilon_t=\rho g_t/(\|g_t\|+\text{eps})`,
  :math:`g^{SAM}_t=\nabla f_{B_t}(x_t+\epsilon_t)`;
  store :math:`\text{PSF}=g^{SAM}_t-g_t`, reset the reuse weight :math:`w=1`, descend along
  :math:`g^{SAM}_t`.
* **Reuse step** (not sampled): :math:`g_t` only; while :math:`w>\beta^{R}` (R =
  ``reuse_steps``, 6 in the official code): :math:`w\leftarrow\beta w` and descend along
  :math:`g_t+w\,\text{PSF}`; afterwards along :math:`g_t` (SGD).
* **Warm-up**: the first ``warmup_steps`` steps are SAM steps (the official code: 3 epochs).
* **Adaptive sampling** (windows of K = ``window`` steps after the warm-up; counter
  :math:`c=1,2,\dots`): every SAM step appends :math:`\|\text{PSF}\|`, the ratio
  :math:`\|\text{PSF}\|/\|g_t\|` and the *variance statistic* (the K most recent PSF norms
  sorted, cut into ``blocks`` blocks of :math:`\lfloor K/\text{blocks}\rfloor`, the mean of the
  blocks' unbiased variances) to histories of length K (initially zeros).  When
  :math:`c\bmod K=0`: :math:`\Delta_r,\Delta_v` = the means of the relative changes of the
  ratio and variance histories, each clipped to [−1, 1];
  :math:`s\leftarrow s(1+a_1\Delta_r+a_2\Delta_v)` clipped to
  :math:`[1,\lfloor K p_{\max}\rfloor]` (:math:`s_0=1`), :math:`p=s/K` (:math:`p_0=\tfrac12`),
  and the window's SAM count :math:`n` restarts at 0 (it is 1 right after the warm-up).  The
  step is a SAM step iff :math:`(n<\lfloor s\rfloor\text{ and }u\ge1-p)` or
  :math:`K-(c\bmod K)\le\lfloor s\rfloor-n` (the quota), :math:`u` uniform from the
  ``"sampling"`` stream.

All of it is per seed.  The official code measures the PSF norms over its model's last
``last_layer`` parameter tensors; here over the whole vector (the torch optimizer keeps the
official ``last_layer``).  ``sampling_probability`` (not in the official code) replaces the
adaptive schedule by an independent draw per step, SAM iff :math:`u<p`: 1 gives SAM at every
step, 0 the reuse rule alone.

**Cost.** 1 + (fraction of SAM steps) gradients and sequential depth per step;
:meth:`ARSAM.realised_cost` reads the SAM steps each seed took.

**Theory.** T1 does not apply: a reuse step descends along :math:`g_t+w\,\text{PSF}_{t'}` with a
PSF measured at an earlier iterate, which is not a gradient at any point
:math:`x_t+\epsilon` with :math:`\|\epsilon\|\le\rho` (only with sampling probability 1, i.e.
SAM, does T1 cover it).  T3 does not apply for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asam_theory.methods.base import Cost, SamOrSgdCost, State, StepInfo, row_norms
from asam_theory.methods.rules import _Perturbed
from asam_theory.validation import check_int, check_real


def block_variance(psf_hist: np.ndarray, blocks: int) -> np.ndarray:
    """vSAM's variance statistic per row: sort, cut into blocks, mean unbiased variance."""
    K = psf_hist.shape[1]
    w = K // blocks
    s = np.sort(psf_hist, axis=1)[:, : blocks * w].reshape(psf_hist.shape[0], blocks, w)
    return s.var(axis=2, ddof=1).mean(axis=1)


def mean_relative_change(hist: np.ndarray) -> np.ndarray:
    """Mean over i of (h[i+1] - h[i]) / h[i], clipped to [-1, 1], per row."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = ((hist[:, 1:] - hist[:, :-1]) / hist[:, :-1]).mean(axis=1)
    return np.clip(r, -1.0, 1.0)


def _push(hist: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Append ``values`` to the histories of ``rows`` (dropping their oldest entry)."""
    hist = hist.copy()
    hist[rows, :-1] = hist[rows, 1:]
    hist[rows, -1] = values
    return hist


@dataclass(frozen=True)
class ARSAM(SamOrSgdCost, _Perturbed):
    """The vSAM rule standing in for ARSAM (module docstring).  Defaults of the official
    ``train_vsam.py``: ρ 0.05, window 50 in 5 blocks, ``max_p`` 0.8, ``a1 = a2 = 0.13``,
    β 0.7, 6 reuse steps; ``warmup_steps`` ``None`` = 3 windows (the official code: 3 epochs;
    at least one window is required, so that every ratio the first window update divides by
    is a measured one, not an initial zero)."""

    name = "arsam"

    beta: float = 0.7
    reuse_steps: int = 6
    window: int = 50
    blocks: int = 5
    max_p: float = 0.8
    a1: float = 0.13
    a2: float = 0.13
    warmup_steps: int | None = None
    sampling_probability: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real("beta", self.beta, low=0.0, high=1.0, high_open=True)
        check_int("reuse_steps", self.reuse_steps, low=0)
        check_int("window", self.window, low=2)
        check_int("blocks", self.blocks, low=1)
        if self.window // self.blocks < 2:
            raise ValueError(f"window // blocks must be at least 2 (a variance needs two "
                             f"values), got window={self.window}, blocks={self.blocks}")
        check_real("max_p", self.max_p, low=0.0, high=1.0, low_open=True)
        check_real("a1", self.a1, low=0.0)
        check_real("a2", self.a2, low=0.0)
        if self.warmup_steps is not None:
            check_int("warmup_steps", self.warmup_steps, low=self.window)
        if self.sampling_probability is not None:
            check_real("sampling_probability", self.sampling_probability, low=0.0, high=1.0)

    @property
    def warmup(self) -> int:
        return 3 * self.window if self.warmup_steps is None else self.warmup_steps

    @property
    def max_sr(self) -> int:
        return int(self.window * self.max_p)

    @property
    def cost(self) -> Cost:
        """Upper bound (every step a SAM step); :meth:`realised_cost` is the run's."""
        return Cost(2, 2)

    def init(self, x0, problem, streams):
        state = super().init(x0, problem, streams)
        m, K = state.x.shape[0], self.window
        state.extra = {
            "psf": np.zeros_like(state.x), "w": np.full(m, self.beta), "counter": 1,
            "sr_now": np.zeros(m), "base_sr": np.ones(m), "prob": np.full(m, 0.5),
            "psf_hist": np.zeros((m, K)), "ratio_hist": np.zeros((m, K)),
            "var_hist": np.zeros((m, K)), "n_sam": np.zeros(m, dtype=int),
        }
        return state

    def decide(self, ex: dict, t: int, streams) -> tuple[np.ndarray, dict]:
        """Which seeds take a SAM step now; returns the updated schedule state."""
        m = ex["w"].shape[0]
        ex = dict(ex)
        if t < self.warmup:
            return np.ones(m, dtype=bool), ex
        u = streams.uniform("sampling", ())
        if self.sampling_probability is not None:
            return u < self.sampling_probability, ex
        K, c = self.window, ex["counter"]
        if c % K == 0:
            rn = mean_relative_change(ex["ratio_hist"])
            rv = mean_relative_change(ex["var_hist"])
            s = ex["base_sr"] * (1 + self.a1 * rn + self.a2 * rv)
            s = np.maximum(np.minimum(s, self.max_sr), 1.0)
            ex["base_sr"], ex["prob"], ex["sr_now"] = s, s / K, np.zeros(m)
        quota = np.floor(ex["base_sr"])
        use = ((ex["sr_now"] < quota) & (u >= 1 - ex["prob"])) | (K - c % K <= quota
                                                                   - ex["sr_now"])
        ex["counter"] = c + 1
        return use, ex

    def step(self, state, problem, streams):
        ws, x, t = state.ws, state.x, state.t
        batch = self.descent_batch(problem, streams)
        g = problem.batch_grad(x, batch, out=ws.buf("g_asc", x))
        use, ex = self.decide(state.extra, t, streams)
        d = g.copy()
        # reuse rows: w <- beta w and add w PSF while w > beta^R (the official comparison)
        reuse = ~use & (ex["w"] > self.beta ** self.reuse_steps)
        w = np.where(reuse, ex["w"] * self.beta, ex["w"])
        if reuse.any():
            d[reuse] = g[reuse] + w[reuse, None] * ex["psf"][reuse]
        e_full = None
        rows = np.flatnonzero(use)
        if rows.size:
            e = self.perturbation(g[rows], normalize=True)
            g_sam = problem.batch_grad(x[rows] + e, problem.batch_rows(batch, rows))
            psf = ex["psf"].copy()
            psf[rows] = g_sam - g[rows]
            psf_norm = row_norms(psf[rows])
            ratio = psf_norm / row_norms(g[rows])
            ex["psf"] = psf
            ex["psf_hist"] = _push(ex["psf_hist"], rows, psf_norm)
            ex["ratio_hist"] = _push(ex["ratio_hist"], rows, ratio)
            ex["var_hist"] = _push(ex["var_hist"], rows,
                                   block_variance(ex["psf_hist"][rows], self.blocks))
            d[rows] = g_sam
            w[rows] = 1.0
            e_full = np.zeros_like(x)
            e_full[rows] = e
            ex["sr_now"] = ex["sr_now"] + use
        if t < self.warmup:
            ex["sr_now"] = np.ones_like(ex["sr_now"])
        ex["w"] = w
        ex["n_sam"] = ex["n_sam"] + use
        x_next, buf = self.base_step(x, d, state.buf, out=ws.ring("x", 2, t + 1, x))
        info = StepInfo(problem, x, d, e_full, g, skipped=e_full is None,
                        sam_direction=g / (row_norms(g) + self.eps)[:, None])
        return State(x_next, t + 1, buf, ex, ws), info
