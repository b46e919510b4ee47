r"""The look-ahead ascent batch: AsyncSAM's stale ascent on the batch its descent will use.

AsyncSAM (Jo, Lim & Lee, 2025, arXiv:2503.11147) computes its perturbation at stale weights
:math:`w_{t-\tau}` on an *independent* batch; the ablation of
:mod:`asam_theory.experiments.ablation`
shows that the independent batch, not the staleness, is what turns the perturbation away from
SAM's direction :math:`\nabla L_{B_t}(w_t)` (Foret et al., ICLR 2021, arXiv:2010.01412; the
m-sharpness of Andriushchenko & Flammarion, ICML 2022, arXiv:2206.06232).  A data loader knows
its next batches in advance, so the ascent worker can be handed :math:`B_{t+\tau}` when step
:math:`t` starts: the direction it computes at :math:`w_t` is the one step :math:`t+\tau`
uses, on (the first b′ samples of) the very batch that step descends on,

.. math::
    u_{t} = \frac{\nabla L_{B_t[:b']}(w_{t-\tau})}{\|\nabla L_{B_t[:b']}(w_{t-\tau})\|
            + 10^{-12}},\qquad
    w_{t+1}=\mathrm{BaseOpt}\big(w_t,\ \nabla L_{B_t}(w_t+\rho\,u_t)\big),

a same-batch perturbation whose ascent still overlaps the descent.  With τ = 0 it is SAM.

:class:`LookAhead` wraps the descent-batch iterable.  The training loop takes its descent
batches from it (``next(la)``); the optimizer asks it for ascent batches by step index.  It
reads the underlying iterable ahead, keeps the batches that can still be asked for, and
refuses any request beyond the horizon: while step ``t`` is running (``t + 1`` descent batches
handed out), the latest batch an ascent may receive is :math:`B_{t+\tau}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from asam_theory.validation import check_int

__all__ = ["LookAhead", "StepBatches", "first_samples"]


def first_samples(batch: Any, k: int | None) -> Any:
    """The first ``k`` samples of ``batch`` (a tensor, or a tuple/list/dict of tensors sliced
    along dimension 0); ``k=None`` returns the batch itself."""
    if k is None:
        return batch
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0 or batch.shape[0] < k:
            raise ValueError(f"ascent_batch_size must be <= the descent batch's size "
                             f"{batch.shape[0] if batch.dim() else 0}, got {k}")
        return batch[:k]
    if isinstance(batch, (tuple, list)):
        return type(batch)(first_samples(b, k) for b in batch)
    if isinstance(batch, dict):
        return {key: first_samples(v, k) for key, v in batch.items()}
    raise ValueError("ascent_batch_size with a look-ahead needs batches made of tensors "
                     f"(tensor, tuple, list or dict), got {type(batch).__name__}")


class LookAhead:
    """Descent batches for the training loop, and their look-ahead copies for the ascent.

    Args:
        batches: the descent batches, an iterator (consumed once) or a re-iterable such as a
            ``torch.utils.data.DataLoader`` (cycled epoch after epoch, so the batches of the
            next epoch are known at the end of the current one).
        tau: the staleness τ of the optimizer it feeds (``AsyncSAM(tau=...)`` must match).
        start: global index of the first batch (the optimizer's version when a run resumes).

    Use::

        la = LookAhead(loader, tau=1)
        opt = AsyncSAM(params, SGD, tau=1, ascent_batches=la, ...)
        for _ in range(steps):
            x, y = next(la)            # B_t
            opt.step(closure)          # worker is handed B_{t+tau} (first b' samples)

    Attributes:
        handed_out: number of descent batches handed out so far (``start`` + count).
        requests: ``(index, step)`` of every ascent request served, ``step`` being the running
            step (``handed_out - 1``) at the time.
    """

    def __init__(self, batches: Iterable[Any], tau: int, start: int = 0) -> None:
        self.tau = check_int("tau", tau, low=0)
        self.start = check_int("start", start, low=0)
        if hasattr(batches, "__next__"):
            self._source: Iterator[Any] = batches  # type: ignore[assignment]
        elif hasattr(batches, "__iter__"):
            self._source = self._cycle(batches)
        else:
            raise ValueError("batches must be an iterator or an iterable of batches, got "
                             f"{type(batches).__name__}")
        self._buffer: dict[int, Any] = {}
        self._read = start  # index of the next batch to read from the source
        self._exhausted = False
        self.handed_out = start
        self.requests: list[tuple[int, int]] = []

    @staticmethod
    def _cycle(iterable: Iterable[Any]) -> Iterator[Any]:
        while True:
            empty = True
            for b in iterable:
                empty = False
                yield b
            if empty:
                raise ValueError("batches is an empty iterable")

    def _fill(self, index: int) -> bool:
        """Read the source up to ``index``; False if it ends before."""
        while self._read <= index and not self._exhausted:
            try:
                self._buffer[self._read] = next(self._source)
            except StopIteration:
                self._exhausted = True
                break
            self._read += 1
        return index in self._buffer

    def _drop_old(self) -> None:
        # the running step's batch stays (a tau = 0 ascent asks for it)
        for i in [i for i in self._buffer if i < self.handed_out - 1]:
            del self._buffer[i]

    # -- the training loop's side --------------------------------------------------------------
    def __iter__(self) -> LookAhead:
        return self

    def __next__(self) -> Any:
        """The next descent batch B_t."""
        t = self.handed_out
        if not self._fill(t):
            raise StopIteration
        self.handed_out += 1
        self._drop_old()
        return self._buffer[t]

    # -- the optimizer's side ------------------------------------------------------------------
    @property
    def lead(self) -> int:
        """How far ahead of its snapshot an ascent's batch lies: the snapshot w_v is evaluated
        on B_{v+τ}."""
        return self.tau

    @property
    def horizon(self) -> int:
        """Latest index an ascent may receive now: the running step + τ."""
        return self.handed_out - 1 + self.tau

    def available(self, index: int) -> bool:
        """Whether batch ``index`` exists (False once a finite source has ended before it)."""
        return self._fill(index)

    def ascent_batch(self, index: int, batch_size: int | None = None) -> Any:
        """The first ``batch_size`` samples of B_index (all of it for ``None``).

        ``RuntimeError`` if ``index`` is beyond :attr:`horizon` (the loop has not taken its
        descent batch yet, or the request is later than τ ahead) or was already discarded;
        ``LookupError`` if the source ended before it."""
        if index > self.horizon:
            raise RuntimeError(
                f"look-ahead: the ascent asked for batch {index} while step "
                f"{self.handed_out - 1} runs; at most step + tau = {self.horizon} is allowed "
                "(take each descent batch from the LookAhead with next() before opt.step)")
        if index < self.handed_out - 1 or (index < self._read and index not in self._buffer):
            raise RuntimeError(f"look-ahead: batch {index} is no longer buffered (the "
                               f"running step is {self.handed_out - 1})")
        if not self._fill(index):
            raise LookupError(f"look-ahead: the batches ended before batch {index}")
        self.requests.append((index, self.handed_out - 1))
        return first_samples(self._buffer[index], batch_size)


class StepBatches:
    r"""Ascent batches taken from the steps themselves: the snapshot w_t is evaluated on (the
    first b′ samples of) B_t, the batch step t descends on.

    This is the ascent batch of :meth:`AsyncSAM.for_model <asam_theory.torch.AsyncSAM.for_model>`
    when no other source is given: ``opt.step(x, y)`` hands its batch to the optimizer, the
    worker computes u_t = ∇L_{B_t[:b′]}(w_t)/‖·‖ while step t descends, and step t + τ uses it,

    .. math::
        w_{t+1} = \mathrm{BaseOpt}\big(w_t,\ \nabla L_{B_t}(w_t+\rho\,u_{t-\tau})\big),
        \qquad u_v = \frac{\nabla L_{B_v[:b']}(w_v)}{\|\nabla L_{B_v[:b']}(w_v)\|+10^{-12}},

    (steps t < τ use u_0).  For τ ≥ 1 the perturbation of step t comes from the earlier batch
    B_{t−τ}, independent of B_t when batches are drawn independently — the independent ascent
    batch of AsyncSAM (Jo, Lim & Lee, 2025, arXiv:2503.11147) without a second data stream.
    :class:`LookAhead` gives the same-batch variant.  The optimizer fills it (:meth:`put`) from
    the main thread only; it keeps the last ``keep`` batches.
    """

    lead = 0

    def __init__(self, keep: int = 1) -> None:
        self.keep = check_int("keep", keep, low=1)
        self._buffer: dict[int, Any] = {}

    def put(self, index: int, batch: Any) -> None:
        """Record B_index (the batch of step ``index``); batches older than ``keep`` go."""
        self._buffer[index] = batch
        for i in [i for i in self._buffer if i <= index - self.keep]:
            del self._buffer[i]

    def available(self, index: int) -> bool:
        """Whether B_index is held."""
        return index in self._buffer

    def ascent_batch(self, index: int, batch_size: int | None = None) -> Any:
        """The first ``batch_size`` samples of B_index (all of it for ``None``)."""
        if index not in self._buffer:
            raise RuntimeError(
                f"AsyncSAM: the ascent needs the batch of step {index}, which was not passed to "
                f"step (held: {sorted(self._buffer)}); call opt.step(x, y) with every batch")
        return first_samples(self._buffer[index], batch_size)

    def state_dict(self) -> dict[int, Any]:
        """The held batches (a resumed optimizer evaluates pending snapshots on them)."""
        return dict(self._buffer)

    def load_state_dict(self, state: dict[int, Any]) -> None:
        self._buffer = {int(i): b for i, b in state.items()}
