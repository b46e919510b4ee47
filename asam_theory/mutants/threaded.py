r"""Threaded mutants: the real threaded :class:`asam_theory.torch.AsyncSAM` done wrong.

Each mutant patches the torch optimizer's class (attributes looked up at call time, so every
optimizer built while the mutant is active is wrong) and, where a real bug would, *lies* about
what it did: the staleness it records is the one the correct optimizer would record, so a
check that only reads ``staleness_history`` cannot tell.

* ``threaded-plain-sgd`` — no worker, no perturbation: the closure at :math:`w_t` and the base
  step (plain SGD), recording staleness :math:`\min(t,\tau)`;
* ``threaded-sequential-sam`` — the ascent at the current weights on the descent batch (the
  closure run twice: gradient at :math:`w_t`, then at :math:`w_t+\rho u_t`), i.e. synchronous
  SAM, recording staleness :math:`\min(t,\tau)`;
* ``threaded-no-perturbation`` — the worker runs and its direction is acquired, but the
  descent is taken at :math:`w_t` (:math:`\rho u` replaced by 0);
* ``threaded-rho-10x`` — the perturbation applied is :math:`10\rho u`;
* ``threaded-staler-than-declared`` — the direction source runs at :math:`\tau+3` (and the
  staleness cap at ``max_staleness`` + 3) while the optimizer reports τ and records the
  staleness shifted back by 3;
* ``threaded-tau-zero`` — the direction source runs at τ = 0 (fresh, own batch) while the
  optimizer reports τ and records the staleness the declared τ would give.

The checks that must kill them: ``THREADED.threaded_vs_simulated`` (every threaded run is
replayed step by step by the numpy engine on the noise the threads drew; a wrong perturbation
moves the iterates by :math:`\sim\eta\rho L` per step against a margin of :math:`10^{-9}`) and
``THREADED.bounds_with_measured_staleness`` (the replay at the recorded staleness, and T1/T3
held to a setting where they are attained to ~0.93, with a tightness side).
``tests/test_mutants_threaded.py`` checks the kills at quick size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from asam_theory.mutants.base import Mutant, PatchSpec

_CHECKS = ("THREADED.threaded_vs_simulated", "THREADED.bounds_with_measured_staleness")


def _cls() -> Any:
    from asam_theory.torch.asyncsam import AsyncSAM

    return AsyncSAM


def _plain_sgd() -> list[PatchSpec]:
    import torch

    def _step(self, closure: Callable[[], Any], scaler: Any = None) -> Any:
        t = self._version
        with torch.enable_grad():
            loss = closure()
        self.base_optimizer.step()
        self._version += 1
        self.wait_history.append(0.0)
        self.staleness_history.append(min(t, self.tau))
        return loss

    return [((_cls(), "_step"), _step)]


def _sequential_sam() -> list[PatchSpec]:
    import torch

    from asam_theory.torch._common import normalized_direction

    def _step(self, closure: Callable[[], Any], scaler: Any = None) -> Any:
        t = self._version
        with torch.enable_grad():
            closure()
        g = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
             for p in self._params]
        u, _ = normalized_direction(g, [p.detach() for p in self._params], self.adaptive)
        live = [p.data for p in self._params]
        self._perturb(live, u)
        try:
            with torch.enable_grad():
                loss = closure()
        finally:
            self._unperturb(live)
        self.base_optimizer.step()
        self._version += 1
        self.wait_history.append(0.0)
        self.staleness_history.append(min(t, self.tau))
        return loss

    return [((_cls(), "_step"), _step)]


def _scaled_perturbation(factor: float) -> Callable[[], list[PatchSpec]]:
    def patches() -> list[PatchSpec]:
        cls = _cls()
        true = cls._perturb

        def _perturb(self, live, u):
            return true(self, live, [factor * d for d in u])

        return [((cls, "_perturb"), _perturb)]

    return patches


def _other_tau(actual: Callable[[int], int], cap_shift: Callable[[int], int]
               ) -> Callable[[], list[PatchSpec]]:
    """The direction source at staleness ``actual(tau)`` (cap ``max_staleness +
    cap_shift(tau)`` when one is given) while ``tau`` is reported, and the recorded staleness
    shifted back to what the declared τ would give (never below ``min(t, tau)``)."""

    def patches() -> list[PatchSpec]:
        from asam_theory.torch._directions import WorkerOptions

        cls = _cls()
        true_init, true_step = cls.__init__, cls._step

        def __init__(self, params, base_optimizer, rho=0.05, adaptive=False, *, tau=1,
                     worker=None, **kwargs):
            w = WorkerOptions() if worker is None else worker
            ms = w.max_staleness
            run_tau = actual(tau)
            w = dataclasses.replace(
                w, max_staleness=None if ms is None else max(ms + cap_shift(tau), run_tau))
            true_init(self, params, base_optimizer, rho, adaptive, tau=run_tau, worker=w,
                      **kwargs)
            self._mutant_taus = (tau, run_tau)
            self.tau = tau

        def _step(self, closure, scaler=None):
            t = self._version
            loss = true_step(self, closure, scaler)
            declared, run_tau = self._mutant_taus
            true_s = self.staleness_history[-1]
            shown = max(true_s + declared - run_tau, min(t, declared))
            self.staleness_history[-1] = min(t, shown)
            return loss

        return [((cls, "__init__"), __init__), ((cls, "_step"), _step)]

    return patches


MUTANTS: tuple[Mutant, ...] = (
    Mutant("threaded-plain-sgd", "threaded",
           "the threaded AsyncSAM is plain SGD (no worker, no perturbation) and records the "
           "staleness AsyncSAM would", _plain_sgd, checks=_CHECKS),
    Mutant("threaded-sequential-sam", "threaded",
           "the threaded AsyncSAM is synchronous SAM: the ascent at the current weights on the "
           "descent batch, recording the staleness AsyncSAM would", _sequential_sam,
           checks=_CHECKS),
    Mutant("threaded-no-perturbation", "threaded",
           "the worker's direction is acquired but the descent runs at w_t (rho u replaced by "
           "0)", _scaled_perturbation(0.0), checks=_CHECKS),
    Mutant("threaded-rho-10x", "threaded",
           "the perturbation applied is 10 rho u", _scaled_perturbation(10.0), checks=_CHECKS),
    Mutant("threaded-staler-than-declared", "threaded",
           "the direction source runs at tau + 3 while tau is reported and the recorded "
           "staleness is shifted back by 3", _other_tau(lambda t: t + 3, lambda t: 3),
           checks=_CHECKS),
    Mutant("threaded-tau-zero", "threaded",
           "the direction source runs at tau = 0 (fresh direction, own batch) while tau is "
           "reported and recorded", _other_tau(lambda t: 0, lambda t: 0), checks=_CHECKS),
)
