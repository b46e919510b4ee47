r"""AUSAM — asymptotic unbiased sample sampling (Deng, Pang, Zhang, AAAI 2025, arXiv 2406.08001;
``docs/methods.md`` §8; official code ajiaaa/AUSAM ``AUSAM/sam/ausam.py``, ``AUSAM/train.py``).

Each step runs SAM on a subset :math:`S_t\subset B_t` of :math:`k=\lfloor\alpha|B_t|\rfloor`
samples (at least one) chosen by a per-sample *sampling table* over the whole training set:

.. math::
    \epsilon_t=\rho\frac{\nabla f_{S_t}(x_t)}{\|\nabla f_{S_t}(x_t)\|+\text{eps}},\qquad
    x_{t+1}=\text{BaseStep}\big(x_t,\nabla f_{S_t}(x_t+\epsilon_t)\big),

and afterwards every :math:`i\in S_t` records its *difference of loss under perturbation*
:math:`\text{DLP}_i=|f_i(x_t+\epsilon_t)-f_i(x_t)|` (the proxy of its gradient norm) in the
table ``(sum, count, mean)`` (initially all ones).  As in the official code:

* the batches are **epochs** over the training set, as the official ``DataLoader(shuffle=True)``:
  every epoch draws a fresh permutation of the :math:`n` samples (stream ``"descent"``) and cuts
  it into batches of ``b`` consecutive samples, the last one holding the :math:`n-b\lfloor
  (n-1)/b\rfloor` left over (no ``drop_last``), so an epoch of the default
  ``epoch_length`` :math:`\lceil n/b\rceil` sees every sample exactly once; a shorter
  ``epoch_length`` ends the pass early (its epoch sees ``epoch_length * b`` samples);
* during the first epoch :math:`S_t=B_t` and the table entry is *set* (``sum = mean = DLP``,
  count stays 1), so after a full first epoch every sample has been measured; afterwards it
  accumulates (``sum += DLP``, ``count += 1``, ``mean = sum / count``);
* from the second epoch on, :math:`S_t` is drawn without replacement with probabilities
  proportional to the batch's table means min-max scaled into :math:`[f_{\min},f'_{\max}]`,
  where :math:`f'_{\max}=f_{\max}-\frac{\max(T_r-e,0)}{T_r}(f_{\max}-f_{\min})+10^{-9}` ramps
  over the first :math:`T_r` = ``trans_epochs`` epochs (e the epoch).  Where every mean of the
  batch is equal the scaling is 0/0 in the official code (an error); here the probabilities
  are uniform there.

Weighted sampling without replacement is drawn with exponential keys (Efraimidis & Spirakis,
"Weighted random sampling with a reservoir", IPL 2006): the k smallest
:math:`-\log(1-u_i)/p_i`, :math:`u_i` uniform from the ``"sampling"`` stream — the law of
``torch.multinomial(p, k, replacement=False)`` (successive draws proportional to ``p`` among
the samples not yet drawn).  The step's batch indices are kept in ``state.extra["batch"]``,
the selected positions in ``state.extra["selected"]`` and the probabilities in
``state.extra["probs"]``.

**Cost.** Two gradients over the :math:`k` selected samples: :math:`2k/b` gradients per step
after the first epoch (2 during it), and the same sequential depth (K-SAM's convention: both
passes run on the subset only).  The losses for the DLP are read off the two gradient passes
(:meth:`~asam_theory.problems.FiniteSum.batch_grad_and_losses`), so no forward-only pass is
declared — as the torch optimizer counts them.  :meth:`AUSAM.realised_cost` is the mean over
the steps actually run (epoch 0 and a partial last batch included).

**Degenerate setting.** :math:`\alpha=1` selects every sample of the batch: SAM.

**Theory.** :math:`\|\epsilon_t\|\le\rho`, but the descent gradient is the mean over a subset
chosen by a loss-dependent table without importance weights, so
:math:`\mathbb E[\nabla f_{S_t}(x+\epsilon)]\ne\nabla f(x+\epsilon)`: the batches are *biased*
("asymptotically unbiased" only in the paper's sense of a table that flattens over time), and
neither T1 (which needs an unbiased descent gradient given ε) nor T3 applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asam_theory.methods.base import Cost, State, StepInfo
from asam_theory.methods.rules import _Perturbed
from asam_theory.validation import check_int, check_real

#: the official code's offset added to the ramped upper scale
FMAX_OFFSET = 1e-9


def scaled_probabilities(means: np.ndarray, fmin: float, fmax_t: float) -> np.ndarray:
    """Rows of ``means`` (M, b) min-max scaled into [fmin, fmax_t] and normalised; uniform
    where a row is constant."""
    lo = means.min(axis=1, keepdims=True)
    hi = means.max(axis=1, keepdims=True)
    span = hi - lo
    flat = span == 0
    scaled = np.divide(means - lo, span, out=np.zeros_like(means), where=~flat)
    scaled = scaled * (fmax_t - fmin) + fmin
    scaled = np.where(flat, 1.0, scaled)
    return scaled / scaled.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class AUSAM(_Perturbed):
    """AUSAM (module docstring).  ``alpha`` ∈ (0, 1] the subset fraction, 0 < ``fmin`` ≤
    ``fmax`` the probability scale (``fmin = fmax``: uniform up to the 1e-9 offset),
    ``trans_epochs`` ≥ 1 the ramp, ``epoch_length`` the steps per epoch (``None``:
    :math:`\\lceil n/b\\rceil`, one pass over the data).  Official defaults: α 0.5, ρ 0.1,
    fmin 0.1, fmax 0.5, 30 ramp epochs."""

    name = "ausam"
    needs_finite_sum = True

    alpha: float = 0.5
    fmin: float = 0.1
    fmax: float = 0.5
    trans_epochs: int = 30
    epoch_length: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real("alpha", self.alpha, low=0.0, high=1.0, low_open=True)
        check_real("fmin", self.fmin, low=0.0, low_open=True)
        check_real("fmax", self.fmax, low=self.fmin)
        check_int("trans_epochs", self.trans_epochs, low=1)
        if self.epoch_length is not None:
            check_int("epoch_length", self.epoch_length, low=1)

    def subset_size_of(self, size: int) -> int:
        """k = ⌊α · size⌋ for a batch of ``size`` samples, as the official
        ``int(alpha * len(batch))``, but at least 1 (the official code would select no sample
        when α · size < 1)."""
        return max(int(self.alpha * size), 1)

    @property
    def subset_size(self) -> int:
        """k of a full batch of ``batch_size`` samples."""
        return self.subset_size_of(self.batch_size)

    @property
    def cost(self) -> Cost:
        """The cost of a full batch after the first epoch (the first epoch costs as SAM)."""
        f = 2 * self.subset_size / self.batch_size
        return Cost(f, f)

    def realised_cost(self, state: State) -> Cost:
        if state.t == 0:
            return self.cost
        f = state.extra["grad_samples"] / (self.batch_size * state.t)
        return Cost(f, f)

    def fmax_at(self, epoch: int) -> float:
        """The ramped upper scale :math:`f'_{\\max}` of ``epoch``."""
        r = max(self.trans_epochs - epoch, 0)
        return self.fmax - (r / self.trans_epochs) * (self.fmax - self.fmin) + FMAX_OFFSET

    def steps_per_epoch(self, n: int) -> int:
        """``epoch_length``, or :math:`\\lceil n/b\\rceil` (every sample once) if ``None``."""
        return self.epoch_length or -(-n // self.batch_size)

    def validate(self, problem) -> None:
        super().validate(problem)
        if not hasattr(problem, "n"):
            raise ValueError("AUSAM needs a finite-sum problem (its sampling table is per "
                             "sample)")
        full = -(-problem.n // self.batch_size)
        if self.epoch_length is not None:
            check_int("epoch_length", self.epoch_length, low=1, high=full)

    def init(self, x0, problem, streams):
        state = super().init(x0, problem, streams)
        m = state.x.shape[0]
        state.extra = {"table": np.ones((m, problem.n, 3)),
                       "epoch_length": self.steps_per_epoch(problem.n), "order": None,
                       "batch": None, "selected": None, "probs": None, "grad_samples": 0}
        return state

    def epoch_batch(self, state: State, problem, streams) -> tuple[np.ndarray, np.ndarray]:
        """The step's batch ``(M, size)``: the next ``b`` samples of the epoch's permutation
        (a fresh one, stream ``"descent"``, at the start of every epoch); also the order."""
        j = state.t % state.extra["epoch_length"]
        order = state.extra["order"]
        if j == 0:
            order = streams.subsets("descent", problem.n, problem.n)
        return order[:, j * self.batch_size:(j + 1) * self.batch_size], order

    def select(self, means: np.ndarray, epoch: int, streams) -> tuple[np.ndarray, np.ndarray]:
        """Positions ``(M, k)`` in the batch, and the probabilities ``(M, size)``."""
        p = scaled_probabilities(means, self.fmin, self.fmax_at(epoch))
        u = streams.uniform("sampling", (means.shape[1],))
        keys = -np.log1p(-u) / p
        k = self.subset_size_of(means.shape[1])
        sel = np.argsort(keys, axis=1, kind="stable")[:, :k]
        return sel, p

    def step(self, state, problem, streams):
        ws, x, t = state.ws, state.x, state.t
        table = state.extra["table"]
        epoch = t // state.extra["epoch_length"]
        M = x.shape[0]
        idx, order = self.epoch_batch(state, problem, streams)
        rows = np.arange(M)[:, None]
        if epoch == 0:
            sel, probs = np.broadcast_to(np.arange(idx.shape[1]), idx.shape), None
        else:
            sel, probs = self.select(table[rows, idx, 2], epoch, streams)
        sub = np.take_along_axis(idx, sel, axis=1)
        g_sub, loss_bef = problem.batch_grad_and_losses(x, sub, out=ws.buf("g_asc", x))
        e = self.perturbation(g_sub, normalize=True, out=ws.buf("e", x))
        x_pert = self.perturbed_point(x, e, ws)
        g, loss_aft = problem.batch_grad_and_losses(x_pert, sub, out=ws.buf("g", x))
        dlp = np.abs(loss_aft - loss_bef)
        table = table.copy()
        if epoch == 0:
            table[rows, sub, 0] = dlp
            table[rows, sub, 2] = dlp
        else:
            table[rows, sub, 0] += dlp
            table[rows, sub, 1] += 1
            table[rows, sub, 2] = table[rows, sub, 0] / table[rows, sub, 1]
        x_next, buf = self.base_step(x, g, state.buf, out=ws.ring("x", 2, t + 1, x))
        extra = {"table": table, "epoch_length": state.extra["epoch_length"], "order": order,
                 "batch": idx, "selected": np.array(sel), "probs": probs,
                 "grad_samples": state.extra["grad_samples"] + 2 * sub.shape[1]}
        info = StepInfo(problem, x, g, e, g_sub)
        return State(x_next, t + 1, buf, extra, ws), info
