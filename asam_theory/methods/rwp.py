r"""RWP — Random Weight Perturbation (Li, Zhang, Huang, Yang, Suykens, Huang, "Efficient
generalization improvement guided by random weight perturbation", arXiv 2211.11489;
``docs/methods.md`` §14; official code nblt/RWP ``train_rwp_parallel.py``).

.. math::
    \epsilon_t\sim\mathcal N\big(0,\operatorname{diag}(\gamma^2\|x_{t,F(j)}\|^2)\big),\qquad
    g_t=\alpha\,\nabla f_{B'_t}(x_t+\epsilon_t)+(1-\alpha)\,\nabla f_{B_t}(x_t),\qquad
    x_{t+1}=\text{BaseStep}(x_t,g_t),

with :math:`F(j)` the *filter* of coordinate j: the official code draws, for every tensor with
more than one dimension, one standard deviation :math:`\gamma\|W_{i,:}\|` per output filter
(row) and, for one-dimensional tensors, :math:`\gamma(\|w\|+10^{-16})` for the whole tensor.
Here ``filter_size`` splits :math:`x` into consecutive filters of that many coordinates (the
row-major rows of a weight matrix, e.g. ``n_features`` for
:class:`~asam_theory.problems.SoftmaxRegression`); ``None`` treats :math:`x` as one 1-D tensor.

**Two shards.** The official code runs two data-parallel ranks on *different* batches: the odd
rank adds the noise and scales its loss by :math:`2\alpha`, the even rank scales by
:math:`2(1-\alpha)`, and DDP's gradient average gives :math:`g_t`.  Here :math:`B_t` (size b)
is the descent stream's batch and :math:`B'_t` (size b′ = ``ascent_batch_size``, default b) an
independent batch of the ascent stream.  Both gradients depend only on :math:`x_t`: cost
:math:`1+b'/b` gradients, sequential depth 1 (two devices).

**Degenerate setting.** ``gamma = 0`` gives :math:`\epsilon=0`, so with :math:`\alpha=\tfrac12`
and b′ = b the step is SGD on the :math:`2b` samples of both shards.

**Theory.** T1 does not apply: :math:`\epsilon_t` is Gaussian with
:math:`\mathbb E\|\epsilon_t\|^2=\gamma^2\|x_t\|^2` (per filter), not bounded by a radius ρ, and
the step mixes a perturbed and an unperturbed gradient.  T3 does not apply either (it is a
statement about the normalised SAM perturbation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asam_theory.methods.base import Cost, State, StepInfo, UpdateRule, row_norms
from asam_theory.validation import check_int, check_real

#: the official code's guard on the norm of a one-dimensional tensor
RWP_NORM_EPS = 1e-16


def filter_std(x: np.ndarray, gamma: float, filter_size: int | None) -> np.ndarray:
    """Per-coordinate noise standard deviation, shape of ``x`` (M, d)."""
    if filter_size is None:
        return np.broadcast_to((gamma * (row_norms(x) + RWP_NORM_EPS))[:, None], x.shape)
    M, d = x.shape
    blocks = x.reshape(M, d // filter_size, filter_size)
    std = gamma * np.sqrt(np.einsum("mkf,mkf->mk", blocks, blocks))
    return np.repeat(std, filter_size, axis=1)


@dataclass(frozen=True)
class RWP(UpdateRule):
    """Random Weight Perturbation (module docstring for the update).

    ``alpha`` ∈ [0, 1] weighs the perturbed shard, ``gamma`` ≥ 0 the relative noise scale
    (official defaults 0.5 and 0.01), ``filter_size`` the filter length (``None``: one 1-D
    tensor), ``ascent_batch_size`` b′ the perturbed shard's batch (default b).
    """

    name = "rwp"

    alpha: float = 0.5
    gamma: float = 0.01
    filter_size: int | None = None
    ascent_batch_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real("alpha", self.alpha, low=0.0, high=1.0)
        check_real("gamma", self.gamma, low=0.0)
        if self.filter_size is not None:
            check_int("filter_size", self.filter_size, low=1)
        if self.ascent_batch_size is not None:
            check_int("ascent_batch_size", self.ascent_batch_size, low=1)

    @property
    def b_prime(self) -> int:
        return self.batch_size if self.ascent_batch_size is None else self.ascent_batch_size

    @property
    def cost(self) -> Cost:
        return Cost(1 + self.b_prime / self.batch_size, 1)

    def validate(self, problem) -> None:
        super().validate(problem)
        problem.check_batch_size("ascent_batch_size", self.b_prime)
        if self.filter_size is not None and problem.dim % self.filter_size:
            raise ValueError(f"filter_size must divide the dimension {problem.dim}, "
                             f"got {self.filter_size}")

    def step(self, state, problem, streams):
        ws, x = state.ws, state.x
        batch = self.descent_batch(problem, streams)
        shard = problem.sample_batch(streams, "ascent", self.b_prime)
        z = streams.normal("weight_noise", (x.shape[1],))
        e = np.multiply(z, filter_std(x, self.gamma, self.filter_size), out=ws.buf("e", x))
        g_clean = problem.batch_grad(x, batch, out=ws.buf("g_clean", x))
        g_pert = problem.batch_grad(np.add(x, e, out=ws.buf("x_pert", x)), shard,
                                    out=ws.buf("g_pert", x))
        g = np.multiply(g_pert, self.alpha, out=ws.buf("g", x))
        g += (1 - self.alpha) * g_clean
        x_next, buf = self.base_step(x, g, state.buf, out=ws.ring("x", 2, state.t + 1, x))
        info = StepInfo(problem, x, g, e, None,
                        sam_direction=g_clean / (row_norms(g_clean) + 1e-12)[:, None])
        return State(x_next, state.t + 1, buf, state.extra, ws), info
