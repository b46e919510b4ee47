r"""Perturbation mutants: the numpy rules' perturbation done wrong.

The SAM-type rules of :mod:`asam_theory.methods.rules` build the point of the descent gradient
in :meth:`~asam_theory.methods.rules._Perturbed.perturb` (the fused kernel
:func:`asam_theory.methods._kernels.perturb_into` writes :math:`x+c\,g` and the scale
:math:`c`); AsyncSAM picks the stale iterate and the ascent batch in
:meth:`~asam_theory.methods.rules.AsyncSAM.step`.  The mutants patch these class attributes,
which the engine looks up at every step.  The *applied* point is wrong while the scale ``c``
reported to :class:`~asam_theory.methods.base.StepInfo` stays the correct one — the bug sits
between what a rule says it does and what it does, where only a measurement of the applied
perturbation (the point where the descent gradient was taken minus the iterate) can see it:

* ``perturbation-missing`` (:math:`x`), ``-sign-flipped`` (:math:`x-c\,g`), ``-5x-radius``,
  ``-20x-radius`` (:math:`x+5c\,g`, :math:`x+20c\,g`), ``-normalised-wrongly``
  (:math:`\rho g/\|g\|^2` where :math:`\rho g/\|g\|` is due; unnormalised rules unchanged) —
  every perturbing rule (SAM, USAM, AsyncSAM, SAMPa);
* ``asyncsam-fresh-not-stale`` (the ascent at :math:`x_t`), ``asyncsam-staler-than-declared``
  (at :math:`x_{t-\tau-3}`), ``asyncsam-batch-swapped`` (an independent ascent batch where the
  descent batch of step :math:`t-\tau` is declared, and that descent batch where an
  independent one is declared) — AsyncSAM's step.

Which checks kill which mutant at which size is measured by ``asam-theory power`` and by
``tests/test_mutants_perturbation.py``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from asam_theory.mutants.base import Mutant, PatchSpec


def _applied(kind: str) -> Callable[[], list[PatchSpec]]:
    """Patch ``_Perturbed.perturb``: the correct scale ``c`` is returned, the point written is
    ``x + k c g`` (``kind`` = a factor k as text) or, for ``"normalised-wrongly"``,
    ``x + rho g/||g||^2`` when the rule normalises."""

    def patches() -> list[PatchSpec]:
        from asam_theory.methods.rules import _Perturbed

        true = _Perturbed.perturb

        def perturb(self, g, x, normalize, ws, out=None):
            c, xp = true(self, g, x, normalize, ws, out)
            if kind == "normalised-wrongly":
                if normalize:
                    sq = np.einsum("md,md->m", g, g)
                    scale = np.divide(self.rho, sq, out=np.zeros_like(sq), where=sq > 0)
                    np.multiply(g, scale[:, None], out=xp)
                    xp += x
            else:
                np.multiply(g, float(kind) * c[:, None], out=xp)
                xp += x
            return c, xp

        return [((_Perturbed, "perturb"), perturb)]

    return patches


def _asyncsam_step(lag: Callable[[int], int], swap_batch: bool) -> Callable[[], list[PatchSpec]]:
    r"""Patch ``AsyncSAM.step`` by the correct step with the ascent at
    :math:`x_{\max(t-\text{lag}(\tau),0)}` and, if ``swap_batch``, the ascent batch swapped
    (``"independent"`` ↔ ``"descent"``; ``"lookahead"`` becomes independent)."""

    def patches() -> list[PatchSpec]:
        from asam_theory.methods.base import State, StepInfo
        from asam_theory.methods.rules import AsyncSAM, _apart, _batch_prefix

        def step(self, state, problem, streams):
            ws, x, ex = state.ws, state.x, state.extra
            k = lag(self.tau)
            if ex.get("mutant_lag") != k:
                ex["mutant_lag"] = k
                ex["mutant_hist"] = deque(maxlen=k + 1)
                ex["mutant_batches"] = deque(maxlen=k + 1)
            hist, batches = ex["mutant_hist"], ex["mutant_batches"]
            hist.append(x.copy())
            batch = self.descent_batch(problem, streams)
            mode = self.ascent_batch
            if swap_batch:
                mode = "independent" if mode != "independent" else "descent"
            batches.append(batch)
            if mode == "descent":
                ascent_batch = batches[0]
            elif mode == "lookahead":
                ascent_batch = _batch_prefix(batch, self.b_prime, self.batch_size)
            else:
                ascent_batch = problem.sample_batch(streams, "ascent", self.b_prime)
            g_asc = problem.batch_grad(hist[0], ascent_batch, out=ws.buf("g_asc", x))
            nxt = ws.ring("mutant_x", 2, state.t + 1, x)
            c, x_pert = self.perturb(g_asc, x, self.normalize, ws, out=nxt)
            g = _apart(problem.batch_grad(x_pert, batch, out=ws.buf("g", x)), nxt)
            x_next, buf, sq = self.base_step_sq(x, g, state.buf, nxt, ws)
            info = StepInfo(problem, x, g, ascent_grad=g_asc, perturbation_scale=c)
            return State(x_next, state.t + 1, buf, state.extra, ws, sq), info

        return [((AsyncSAM, "step"), step)]

    return patches


#: the checks that measure the applied perturbation of AsyncSAM (normalised and unnormalised)
_ASYNC = ("EXACT-MC.transient", "EXACT-MC.stationary", "THREADED.threaded_vs_simulated",
          "T4.stale_fidelity")

MUTANTS: tuple[Mutant, ...] = (
    Mutant("perturbation-missing", "method",
           "the descent gradient is taken at x (no perturbation) while eps = c g is reported",
           _applied("0"), checks=(*_ASYNC, "FLAT-BASIN.flat_fraction")),
    Mutant("perturbation-sign-flipped", "method",
           "the descent gradient is taken at x - eps (a descent, not an ascent, step)",
           _applied("-1"), checks=_ASYNC),
    Mutant("perturbation-5x-radius", "method",
           "the perturbation applied has norm 5 rho", _applied("5"),
           checks=(*_ASYNC, "T1.deterministic_floor_with_staleness", "PEERS.t1")),
    Mutant("perturbation-20x-radius", "method",
           "the perturbation applied has norm 20 rho", _applied("20"),
           checks=(*_ASYNC, "T1.deterministic_floor_with_staleness", "PEERS.t1",
                   "T1.bound_holds", "T2.bound_holds", "T3.bound_holds")),
    Mutant("perturbation-normalised-wrongly", "method",
           "the normalised perturbation is rho g/||g||^2 instead of rho g/||g||",
           _applied("normalised-wrongly"),
           checks=("THREADED.threaded_vs_simulated", "T4.stale_fidelity",
                   "T1.deterministic_floor_with_staleness", "PEERS.t1")),
    Mutant("asyncsam-fresh-not-stale", "method",
           "AsyncSAM's ascent is taken at x_t (fresh) instead of x_{t-tau}",
           _asyncsam_step(lambda tau: 0, False), checks=_ASYNC),
    Mutant("asyncsam-staler-than-declared", "method",
           "AsyncSAM's ascent is taken at x_{t-tau-3} instead of x_{t-tau}",
           _asyncsam_step(lambda tau: tau + 3, False), checks=_ASYNC),
    Mutant("asyncsam-batch-swapped", "method",
           "AsyncSAM's ascent batch is independent where the descent batch of step t - tau is "
           "declared, and that descent batch where an independent one is declared",
           _asyncsam_step(lambda tau: tau, True),
           checks=("EXACT-MC.transient", "EXACT-MC.stationary",
                   "THREADED.threaded_vs_simulated")),
)
