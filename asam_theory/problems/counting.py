r"""Counted cost: an oracle wrapper that counts what a rule evaluates through it.

:class:`CountingOracle` forwards everything to the wrapped problem and counts the per-sample
evaluations made through the *stochastic oracle*, summed over the rows of ``x`` (one row = one
simulated seed; a rule that evaluates only some seeds, as AE-SAM on its SGD steps, passes only
those rows and pays only for them):

* gradient evaluations: ``batch_grad`` (``rows × b`` for a batch of ``b`` samples),
  ``batch_grad_and_losses`` (the losses come with the gradient pass) and ``per_sample_grads``;
* forward-only evaluations: ``per_sample_losses`` and ``batch_loss``.

Calls to the exact derivatives ``f``/``grad``/``hess``/``hvp`` are diagnostics (the fidelity
of :class:`~asam_theory.methods.StepInfo`, the engine's recorded metrics), not something a
rule pays for; they are counted apart in ``exact_calls`` so a test can assert that a rule's
``step`` makes none.

The batch size of a draw is read from the batch itself where it carries it (index arrays
``(M, b)`` of finite sums); otherwise (``None`` for an exact oracle or a full finite-sum
batch, a noise realisation for :class:`~asam_theory.problems.GaussianNoise`)
:meth:`CountingOracle.sample_batch` tags the draw with the size it was asked for, and the
counting methods untag it before forwarding.  The counting oracle must therefore be the
*outermost* wrapper: the object the rule is given.

:meth:`CountingOracle.cost` turns the counts into the units of
:class:`~asam_theory.methods.Cost` (full-batch equivalents per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asam_theory.problems.base import FiniteSum, ProblemWrapper
from asam_theory.validation import check_int


class TaggedBatch:
    """A drawn batch that does not carry its size (``None``, a noise array) with that size."""

    __slots__ = ("batch", "size")

    def __init__(self, batch, size: int) -> None:
        self.batch = batch
        self.size = int(size)


def _untag(batch):
    return batch.batch if isinstance(batch, TaggedBatch) else batch


@dataclass(frozen=True)
class CountedCost:
    """Counts turned into full-batch equivalents per step (see
    :class:`~asam_theory.methods.Cost`)."""

    grads_per_step: float
    forwards_per_step: float


class CountingOracle(ProblemWrapper):
    """Counts per-sample gradient and forward evaluations made through the oracle.

    Attributes (summed over rows, i.e. seeds): ``grad_samples``, ``forward_samples``;
    ``exact_calls`` counts calls of the exact ``f``/``grad``/``hess``/``hvp``.
    """

    kind = "counting"

    def __init__(self, problem) -> None:
        if isinstance(problem, CountingOracle):
            raise ValueError("problem is already a CountingOracle")
        super().__init__(problem)
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        self.grad_samples = 0
        self.forward_samples = 0
        self.exact_calls = 0

    # -- helpers ----------------------------------------------------------------------------
    def _size(self, batch) -> int:
        if isinstance(batch, TaggedBatch):
            return batch.size
        if isinstance(batch, np.ndarray) and batch.ndim == 2 and batch.dtype.kind in "iu":
            return batch.shape[1]
        if batch is None and isinstance(self.base, FiniteSum):
            return self.base.n
        raise ValueError("batch was not drawn through this CountingOracle (it must be the "
                         "outermost wrapper); got an untagged "
                         f"{type(batch).__name__}")

    @staticmethod
    def _rows_of(x) -> int:
        return int(np.shape(x)[0])

    # -- counted oracle ---------------------------------------------------------------------
    def sample_batch(self, streams, stream, batch_size):
        batch = self.base.sample_batch(streams, stream, batch_size)
        if isinstance(batch, np.ndarray) and batch.ndim == 2 and batch.dtype.kind in "iu":
            return batch
        return TaggedBatch(batch, batch_size)

    def batch_grad(self, x, batch, out=None):
        self.grad_samples += self._rows_of(x) * self._size(batch)
        return self.base.batch_grad(x, _untag(batch), out)

    def per_sample_grads(self, x, idx):
        self.grad_samples += self._rows_of(x) * np.shape(idx)[1]
        return self.base.per_sample_grads(x, idx)

    def batch_grad_and_losses(self, x, idx, out=None):
        """A gradient over ``idx`` whose pass also yields the losses: counted as gradients
        only (no forward-only evaluation)."""
        self.grad_samples += self._rows_of(x) * np.shape(idx)[1]
        return self.base.batch_grad_and_losses(x, idx, out)

    def per_sample_losses(self, x, idx):
        self.forward_samples += self._rows_of(x) * np.shape(idx)[1]
        return self.base.per_sample_losses(x, idx)

    def batch_loss(self, x, batch):
        self.forward_samples += self._rows_of(x) * self._size(batch)
        return self.base.batch_loss(x, _untag(batch))

    def lower_bound_grad(self, x, batch, *args, **kwargs):
        """BiSAM's ascent gradient (:meth:`SoftmaxRegression.lower_bound_grad`), counted as a
        gradient over the batch."""
        self.grad_samples += self._rows_of(x) * self._size(batch)
        return self.base.lower_bound_grad(x, _untag(batch), *args, **kwargs)

    def batch_indices(self, batch, n_rows):
        return self.base.batch_indices(_untag(batch), n_rows)

    def batch_rows(self, batch, rows):
        if isinstance(batch, TaggedBatch):
            return TaggedBatch(self.base.batch_rows(batch.batch, rows), batch.size)
        return self.base.batch_rows(batch, rows)

    # -- exact derivatives (diagnostics) ----------------------------------------------------
    def f(self, x):
        self.exact_calls += 1
        return self.base.f(x)

    def grad(self, x):
        self.exact_calls += 1
        return self.base.grad(x)

    def hess(self, x):
        self.exact_calls += 1
        return self.base.hess(x)

    def hvp(self, x, v):
        self.exact_calls += 1
        return self.base.hvp(x, v)

    # -- report -----------------------------------------------------------------------------
    def cost(self, batch_size: int, steps: int, n_seeds: int) -> CountedCost:
        """Counts per seed and step in full-batch equivalents of ``batch_size`` samples."""
        b = check_int("batch_size", batch_size, low=1)
        t = check_int("steps", steps, low=1)
        m = check_int("n_seeds", n_seeds, low=1)
        return CountedCost(self.grad_samples / (b * t * m), self.forward_samples / (b * t * m))
