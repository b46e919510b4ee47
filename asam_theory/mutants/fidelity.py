r"""Mutants of the penalty-fidelity and flatness measurements
(:mod:`asam_theory.experiments.penalty_real`, :mod:`asam_theory.experiments.flatness`):
family ``real_data``.

* ``penalty-random-direction`` — every variant's perturbation direction is a random unit
  vector instead of the gradient at its stale iterate on its batch: the probes' directions on
  a quadratic are no longer the normalised gradients they name (the identity
  :math:`p_{\rm var}-p_{\rm SAM}=\rho H_B(u_{\rm var}-u_B)` holds for any direction, so it
  cannot see this), and on a network the penalty cosine with SAM falls to the random control's
  :math:`\approx 1/\sqrt d`.
* ``penalty-at-w`` — the penalty gradient's first term is evaluated at :math:`w` instead of
  :math:`w+\rho u`: every penalty is the zero vector, so the quadratic identity
  :math:`p_{\rm SAM}=\rho H_Bu_B` fails and every cosine is undefined.
* ``hutchinson-unit-probes`` — the Hessian-trace estimator with the wrong scale: its Rademacher
  probes are normalised to unit length (as a Lanczos start vector would be), so it estimates
  :math:`\operatorname{tr}H/n` instead of :math:`\operatorname{tr}H`; the exact-trace and
  diagonal-Hessian tests and the standard-error test must fail.

All three are killed by the tests they name and by the checks of PENALTY-REAL
(:mod:`asam_theory.claims.penalty_real`) they name: the two penalty mutants make
``lookahead_penalty`` fail (the look-ahead's cosine falls to the random floor; SAM's penalty
gradient is zero at every checkpoint) and take ``asyncsam_penalty``'s positive control away
(its verdict turns *inconclusive*: an empirical check kills by changing its outcome);
``hutchinson-unit-probes`` makes every trace fall below its run's Lanczos top eigenvalue, so
``flatness_order`` and ``gain_shares`` fail on the trace's consistency.
"""

from __future__ import annotations

from typing import Any

from asam_theory.mutants.base import Mutant


def _random_direction() -> list[tuple[Any, Any]]:
    import torch

    from asam_theory.experiments import penalty_real

    def variant_direction(loss: Any, history: Any, probe: Any, batch: Any, other: Any,
                          gen: torch.Generator) -> Any:
        return penalty_real._random_direction(history[0], gen)

    return [("asam_theory.experiments.penalty_real.variant_direction", variant_direction)]


def _penalty_at_w() -> list[tuple[Any, Any]]:
    from asam_theory.experiments import penalty_real

    def penalty_gradient(loss: Any, w: Any, u: Any, rho: float, batch: Any,
                         base: Any = None) -> Any:
        base = penalty_real._grad(loss, w, batch) if base is None else base
        here = penalty_real._grad(loss, w, batch)
        return tuple(a - b for a, b in zip(here, base, strict=True))

    return [("asam_theory.experiments.penalty_real.penalty_gradient", penalty_gradient)]


def _unit_probes() -> list[tuple[Any, Any]]:
    import torch

    from asam_theory.experiments import flatness

    original = flatness._rademacher

    def rademacher(count: int, n: int, generator: torch.Generator,
                   dtype: torch.dtype) -> torch.Tensor:
        v = original(count, n, generator, dtype)
        return v / v.norm(dim=1, keepdim=True)

    return [("asam_theory.experiments.flatness._rademacher", rademacher)]


_PENALTY_CHECKS = ("PENALTY-REAL.lookahead_penalty", "PENALTY-REAL.asyncsam_penalty")
_PENALTY_TESTS = ("tests/experiments/test_penalty_real.py::"
                  "test_penalty_difference_is_rho_h_times_direction_difference",)

MUTANTS: tuple[Mutant, ...] = (
    Mutant("penalty-random-direction", "real_data",
           "every variant's perturbation is a random unit direction instead of its stale "
           "gradient on its own batch", _random_direction, checks=_PENALTY_CHECKS,
           tests=("tests/experiments/test_penalty_real.py::"
                  "test_probe_directions_use_the_named_iterate_and_batch",)),
    Mutant("penalty-at-w", "real_data",
           "the penalty gradient is measured at w instead of w + rho u (always zero)",
           _penalty_at_w, checks=_PENALTY_CHECKS, tests=_PENALTY_TESTS),
    Mutant("hutchinson-unit-probes", "real_data",
           "the Hessian-trace estimator has the wrong scale: unit-length probes estimate "
           "tr(H)/n", _unit_probes,
           checks=("PENALTY-REAL.flatness_order", "PENALTY-REAL.gain_shares"),
           tests=("tests/experiments/test_flatness.py::"
                  "test_hutchinson_is_within_four_standard_errors_of_the_exact_trace",
                  "tests/experiments/test_flatness.py::"
                  "test_hutchinson_is_exact_on_a_diagonal_hessian")),
)
