r"""SSAM — Sparse SAM with a Fisher mask, SSAM-F (Mi, Shen, Ren, Zhou, Sun, Ji, Tao, "Make
Sharpness-Aware Minimization Stronger: A Sparsified Perturbation Approach", NeurIPS 2022,
arXiv 2210.05177; official code Mi-Peng/Sparse-Sharpness-Aware-Minimization;
``docs/methods.md`` §13).

SAM whose perturbation is restricted to a binary mask :math:`m` that keeps the
:math:`\lfloor d(1-s)\rfloor` coordinates of largest empirical Fisher information, :math:`s`
the sparsity; the norm is that of the full (unmasked) gradient, as in the official code:

.. math::
    g=\nabla f_{B_t}(x_t),\qquad \epsilon_t=\rho\frac{g}{\|g\|+\text{eps}}\odot m,\qquad
    x_{t+1}=\text{BaseStep}\big(x_t,\nabla f_{B_t}(x_t+\epsilon_t)\big),

.. math::
    F_j=\sum_{i\in S}\big(\partial_j f_i(x)\big)^2,\qquad
    m=\mathbb 1\big[j\in\operatorname{top-}\lfloor d(1-s)\rfloor F\big],

over ``num_samples`` single samples :math:`S` drawn without replacement from the finite sum
(stream ``"mask"``), recomputed every ``update_freq`` steps:

* ``mask_start="first_step"`` (default): the mask is computed at :math:`x_t` at the start of
  steps :math:`t=0,F,2F,\dots`, so every step uses a mask;
* ``mask_start="after_first_step"`` (the official code, where the mask starts at zero and is
  recomputed after the first batch of every ``update_freq``-th epoch): step 0 has a zero mask
  (no perturbation) and the mask is computed at :math:`x_{t+1}` after steps
  :math:`t=0,F,2F,\dots`.

**SSAM-D** (``mask="dynamic"``, the official ``SSAMD``): the mask starts random (the top
:math:`d-\lceil ds\rceil` of uniform scores from stream ``"mask"``) and every
``update_freq`` steps — after the perturbation of the step is built, before its descent
gradient, as the official code — drops and regrows coordinates: with the death rate
:math:`r_t=r\,(1+\cos(\pi t/T))/2` (``drop_rate`` r, ``total_steps`` T) and
:math:`\ell=d-ds` live coordinates, it keeps the :math:`\lfloor\ell(1-r_t)\rfloor` live ones
of largest drop score and grows the :math:`\lfloor\min(\ell r_t,ds)\rfloor` dead ones of
largest growth score; scores (``drop_strategy``, ``growth_strategy``) are ``"weight"``
:math:`|x_t+\epsilon_t|` (the perturbed weights, as there), ``"gradient"`` :math:`|g|` or
``"random"`` (uniform, stream ``"mask"``), each plus 1e-7.  It needs no extra gradient (cost 2).

Ties in the Fisher values are broken towards the lower coordinate.  Sparsity 0 keeps every
coordinate — SAM — and then no Fisher values are computed.

Cost: 2 gradients per step plus ``num_samples`` per-sample gradients every ``update_freq``
steps: :math:`2+\text{num\_samples}/(b\cdot\text{update\_freq})` per step (2 for s = 0);
sequential depth the same.

Theory: :math:`\|\epsilon_t\|\le\rho` (a masked vector is no longer than the vector), the
descent gradient is an unbiased minibatch gradient at a point within ρ of :math:`x_t`, so T1
applies, and T3 on PL objectives (its hypotheses are T1's plus the PL inequality); that the
mask is stale does not matter: a mask only shortens the perturbation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from asam_theory.methods.base import Cost, State, StepInfo, row_norms
from asam_theory.methods.rules import _Perturbed
from asam_theory.validation import check_choice, check_int, check_real

MASKS = ("fisher", "dynamic")
SCORES = ("weight", "gradient", "random")
MASK_START = ("first_step", "after_first_step")


def keep_count(dim: int, sparsity: float) -> int:
    r""":math:`\lfloor d(1-s)\rfloor` coordinates kept (the official ``int(len * (1 - s))``)."""
    return int(dim * (1 - sparsity))


def top_mask(scores: np.ndarray, keep: int) -> np.ndarray:
    """0/1 mask ``(M, d)`` keeping the ``keep`` largest scores per row (ties: lower index)."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :keep]
    mask = np.zeros_like(scores)
    np.put_along_axis(mask, order, 1.0, axis=1)
    return mask


@dataclass(frozen=True)
class SSAM(_Perturbed):
    """SSAM-F with ``sparsity`` ∈ [0, 1), ``num_samples`` ≥ 1 Fisher samples and
    ``update_freq`` ≥ 1 steps between mask updates (official defaults: s = 0.5,
    num_samples = 16 on CIFAR)."""

    name = "ssam"
    needs_finite_sum: ClassVar[bool] = True

    sparsity: float = 0.5
    num_samples: int = 16
    update_freq: int = 10
    mask: str = "fisher"
    mask_start: str = "first_step"
    drop_rate: float = 0.5
    drop_strategy: str = "gradient"
    growth_strategy: str = "random"
    total_steps: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real("sparsity", self.sparsity, low=0.0, high=1.0, high_open=True)
        check_int("num_samples", self.num_samples, low=1)
        check_int("update_freq", self.update_freq, low=1)
        check_choice("mask", self.mask, MASKS)
        check_choice("mask_start", self.mask_start, MASK_START)
        check_real("drop_rate", self.drop_rate, low=0.0, high=1.0)
        check_choice("drop_strategy", self.drop_strategy, SCORES)
        check_choice("growth_strategy", self.growth_strategy, SCORES)
        check_int("total_steps", self.total_steps, low=1)

    @property
    def cost(self) -> Cost:
        if self.sparsity == 0 or self.mask == "dynamic":
            return Cost(2, 2)
        extra = self.num_samples / (self.batch_size * self.update_freq)
        return Cost(2 + extra, 2 + extra)

    def validate(self, problem) -> None:
        super().validate(problem)
        if self.mask == "fisher" and not hasattr(problem, "n"):
            raise ValueError("SSAM's Fisher mask needs a finite-sum problem (per-sample "
                             "gradients)")
        if self.sparsity > 0 and self.mask == "fisher":
            problem.check_batch_size("num_samples", self.num_samples)

    def fisher_mask(self, x: np.ndarray, problem, streams) -> np.ndarray:
        """The Fisher mask at ``x`` from ``num_samples`` fresh single samples."""
        idx = problem.sample_batch(streams, "mask", self.num_samples)
        idx = problem.batch_indices(idx, x.shape[0])
        fisher = np.sum(problem.per_sample_grads(x, idx) ** 2, axis=1)
        return top_mask(fisher, keep_count(x.shape[1], self.sparsity))

    def death_rate(self, t: int) -> float:
        r""":math:`r\,(1+\cos(\pi t/T))/2`."""
        return self.drop_rate * (1 + np.cos(np.pi * t / self.total_steps)) / 2

    def _score(self, kind: str, w: np.ndarray, g: np.ndarray, streams) -> np.ndarray:
        if kind == "weight":
            return np.abs(w)
        if kind == "gradient":
            return np.abs(g)
        return streams.uniform("mask", (w.shape[1],))

    def dynamic_mask(self, mask: np.ndarray, w: np.ndarray, g: np.ndarray, t: int,
                     streams) -> np.ndarray:
        """SSAM-D's drop-and-grow update of ``mask`` at perturbed weights ``w``, gradient
        ``g``."""
        d = w.shape[1]
        live = d - d * self.sparsity
        rate = self.death_rate(t)
        death = (self._score(self.drop_strategy, w, g, streams) + 1e-7) * mask
        growth = (self._score(self.growth_strategy, w, g, streams) + 1e-7) * (1 - mask)
        n_grow = int(min(live * rate, d * self.sparsity))
        return top_mask(death, int(live * (1 - rate))) + top_mask(growth, n_grow)

    def init(self, x0, problem, streams):
        state = super().init(x0, problem, streams)
        if self.sparsity == 0:
            mask = np.ones_like(state.x)
        elif self.mask == "dynamic":
            d = state.x.shape[1]
            mask = top_mask(streams.uniform("mask", (d,)), d - int(np.ceil(d * self.sparsity)))
        elif self.mask_start == "first_step":
            mask = None  # computed at the start of step 0
        else:
            mask = np.zeros_like(state.x)
        state.extra = {"mask": mask}
        return state

    def step(self, state, problem, streams):
        ws, x, t = state.ws, state.x, state.t
        mask = state.extra["mask"]
        refresh = self.sparsity > 0 and t % self.update_freq == 0
        dynamic = self.mask == "dynamic"
        if refresh and not dynamic and self.mask_start == "first_step":
            mask = self.fisher_mask(x, problem, streams)
        batch = self.descent_batch(problem, streams)
        g = problem.batch_grad(x, batch, out=ws.buf("g_asc", x))
        e = self.perturbation(g, normalize=True, out=ws.buf("e", x))
        e *= mask
        xp = self.perturbed_point(x, e, ws)
        if refresh and dynamic:
            mask = self.dynamic_mask(mask, xp, g, t, streams)
        g_s = problem.batch_grad(xp, batch, out=ws.buf("g", x))
        x_next, buf = self.base_step(x, g_s, state.buf, out=ws.ring("x", 2, t + 1, x))
        if refresh and not dynamic and self.mask_start == "after_first_step":
            mask = self.fisher_mask(x_next, problem, streams)
        info = StepInfo(problem, x, g_s, e, g,
                        sam_direction=g / (row_norms(g) + self.eps)[:, None])
        return State(x_next, t + 1, buf, {"mask": mask}, ws), info
