r"""Mutants of the literature facts, the exact stability analysis and the declared costs.

Each is a plausible slip in a formula or a declaration that one of the checks of
``LIT-SAM-2CYCLE``, ``LIT-USAM-EOS``, ``LIT-RHO2-FLOOR``, ``EXACT-MC.stability_boundary`` or
``PEERS.frontier`` is there to catch:

* ``sam-two-cycle-sign-slip`` — the closed-form 2-cycle amplitude of normalised SAM written
  :math:`\eta\rho\lambda_1/(2+\eta\lambda_1)` instead of :math:`\eta\rho\lambda_1/(2-\eta\lambda_1)`
  (Bartlett, Long & Bousquet, JMLR 2023; ``docs/theory.md`` §2.1) — the engine's cycle no longer
  matches it;
* ``sam-radius-rho-squared`` — a units slip in the perturbing rules: the radius applied is
  :math:`\rho^2` (the scale :math:`c` times :math:`\rho`), so the cycle's amplitude, T1's attained
  floor :math:`L^2\rho^2` and the :math:`O(\rho^2)` stationary excess (slope 4 instead of 2)
  all move;
* ``usam-limit-ignores-rho`` — the stability limit of USAM (τ = 0) taken as GD's
  :math:`2/\lambda_{\max}`, dropping the factor :math:`1+\rho\lambda` of
  :math:`\eta\lambda(1+\rho\lambda)<2` (Agarwala & Dauphin, ICML 2023);
* ``stale-limit-from-tau0`` — the stability limit of stale USAM at τ > 0 taken as the τ = 0 one
  (the exact analysis of ``docs/theory.md`` §6 shows staleness moves it);
* ``sam-cost-understated`` — SAM declares one gradient per step (it takes two, one after the
  other), so the frontier's counted-equals-declared cost breaks.

The patched names are looked up at call time: ``bounds.sam_two_cycle`` and
``exact.max_stable_lr`` through their modules, the rules' ``perturb`` and ``cost`` as class
attributes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from asam_theory.mutants.base import Mutant, PatchSpec


def _two_cycle_sign_slip() -> list[PatchSpec]:
    from asam_theory.theory import bounds

    true = bounds.sam_two_cycle

    def sam_two_cycle(eigenvalues, lr, rho):
        out = dict(true(eigenvalues, lr, rho))
        lam1 = float(np.max(eigenvalues))
        amp = lr * rho * lam1 / (2 + lr * lam1)
        out.update(amplitude=amp, grad_norm_sq=(lam1 * amp) ** 2, loss=0.5 * lam1 * amp**2)
        return out

    return [("asam_theory.theory.bounds.sam_two_cycle", sam_two_cycle)]


def _radius_rho_squared() -> list[PatchSpec]:
    from asam_theory.methods.rules import _Perturbed

    true = _Perturbed.perturb

    def perturb(self, g, x, normalize, ws, out=None):
        c, xp = true(self, g, x, normalize, ws, out)
        np.multiply(g, (self.rho * c)[:, None], out=xp)
        xp += x
        return c * self.rho, xp

    return [((_Perturbed, "perturb"), perturb)]


def _limit(wrong: Callable[..., float | None]) -> Callable[[], list[PatchSpec]]:
    """Patch ``exact.max_stable_lr`` by ``wrong(true, eigenvalues, rho, tau, method, **kw)``."""

    def patches() -> list[PatchSpec]:
        from asam_theory.theory import exact

        true = exact.max_stable_lr

        def max_stable_lr(problem_or_eigenvalues, rho=0.0, tau=0, method="stale_usam", **kw):
            return wrong(true, problem_or_eigenvalues, rho, tau, method, **kw)

        return [("asam_theory.theory.exact.max_stable_lr", max_stable_lr)]

    return patches


def _ignores_rho(true, eigs, rho, tau, method, **kw):
    if tau == 0 and method == "stale_usam":
        return true(eigs, 0.0, 0, method, **kw)
    return true(eigs, rho, tau, method, **kw)


def _from_tau0(true, eigs, rho, tau, method, **kw):
    return true(eigs, rho, 0, method, **kw)


def _sam_cost_understated() -> list[PatchSpec]:
    from asam_theory.methods.base import Cost
    from asam_theory.methods.rules import SAM

    return [((SAM, "cost"), property(lambda self: Cost(1, 1)))]


MUTANTS: tuple[Mutant, ...] = (
    Mutant("sam-two-cycle-sign-slip", "bound",
           "the closed-form 2-cycle amplitude of SAM has 2 + eta lambda_1 in its denominator "
           "instead of 2 - eta lambda_1", _two_cycle_sign_slip,
           checks=("LIT-SAM-2CYCLE.engine_vs_closed_form",)),
    Mutant("sam-radius-rho-squared", "method",
           "the perturbing rules apply a perturbation of norm rho^2 instead of rho",
           _radius_rho_squared,
           checks=("LIT-SAM-2CYCLE.engine_vs_closed_form", "LIT-SAM-2CYCLE.t1_floor_attained",
                   "LIT-RHO2-FLOOR.floor_scaling")),
    Mutant("usam-limit-ignores-rho", "bound",
           "USAM's stability limit is taken as GD's 2/lambda_max (the factor 1 + rho lambda "
           "dropped)", _limit(_ignores_rho),
           checks=("LIT-USAM-EOS.threshold", "EXACT-MC.stability_boundary")),
    Mutant("stale-limit-from-tau0", "bound",
           "the stability limit of stale USAM at tau > 0 is taken as the tau = 0 one",
           _limit(_from_tau0), checks=("EXACT-MC.stability_boundary",)),
    Mutant("sam-cost-understated", "method",
           "SAM declares one gradient per step and a sequential depth of 1 (it takes two, one "
           "after the other)", _sam_cost_understated, checks=("PEERS.frontier",)),
)
