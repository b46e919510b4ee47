r"""Mutants of the edge-of-stability claim (``EDGE``): family ``edge``.

* ``edge-tau0-for-stale`` — the stale-USAM edge ignores τ and returns USAM's (τ = 0) edge, so
  stale SAM's heuristic edge does too. At ρ/η = 0.2 the τ = 1 runs sit 46 % above that edge:
  EDGE.at_edge's band and its ordering across τ must fail, and the inverse relation with
  ``max_stable_lr`` (EDGE.edges_invert_max_stable_lr) breaks for every odd τ.
* ``edge-odd-tau3-usam`` — the stale-USAM edge of every odd τ ≥ 3 is USAM's (τ = 1 keeps its
  closed form): the τ = 3 run, 20 % above USAM's edge at ρ/η = 0.1, is then judged against
  USAM's.  EDGE.at_edge must fail it by its ordering (τ = 3 against USAM, τ = 2 and τ = 4,
  predicted equal, measured about ×1.18: some 8 % beyond the ×/÷ 1.0975 allowed) and its band
  (the τ = 3 ratio about 1.23 against the upper end 1.139); EDGE.edges_invert_max_stable_lr
  must fail it at τ = 3.
* ``edge-gd-for-sam`` — SAM's edge is taken as GD's 2/η: the SAM runs (ρ = 0.01) sit at about
  0.86 of it, below EDGE.at_edge's band.
* ``edge-run-fresh-ascent`` — the full-batch runs' ring buffer hands out the newest gradient
  instead of the one τ steps old: "stale USAM" trains as USAM and settles at USAM's edge, 0.68
  of the τ = 1 edge, so EDGE.at_edge must fail (and the test that the torch step equals the
  numpy engine's AsyncSAM).

Patched where they are looked up at call time: ``theory.edge``'s module-level functions (the
dispatcher :func:`~asam_theory.theory.edge.edge` and :func:`stale_sam_edge` call them by name)
and the method of :class:`~asam_theory.experiments.edge.StaleAscent`.
"""

from __future__ import annotations

from typing import Any

from asam_theory.mutants.base import Mutant


def _tau0_for_stale() -> list[tuple[Any, Any]]:
    from asam_theory.theory import edge

    def stale_usam_edge(lr: float, rho: float, tau: int) -> float:
        return edge.usam_edge(lr, rho)

    return [("asam_theory.theory.edge.stale_usam_edge", stale_usam_edge)]


def _odd_tau3_usam() -> list[tuple[Any, Any]]:
    from asam_theory.theory import edge

    original = edge.stale_usam_edge

    def stale_usam_edge(lr: float, rho: float, tau: int) -> float:
        if tau >= 3 and tau % 2 == 1:
            return edge.usam_edge(lr, rho)
        return original(lr, rho, tau)

    return [("asam_theory.theory.edge.stale_usam_edge", stale_usam_edge)]


def _gd_for_sam() -> list[tuple[Any, Any]]:
    def sam_edge(lr: float, rho: float, grad_norm: float) -> float:
        return 2.0 / lr

    return [("asam_theory.theory.edge.sam_edge", sam_edge)]


def _fresh_ascent() -> list[tuple[Any, Any]]:
    from asam_theory.experiments.edge import StaleAscent

    def stale(self: Any) -> Any:
        return self._ring[-1]

    return [((StaleAscent, "stale"), stale)]


MUTANTS: tuple[Mutant, ...] = (
    Mutant("edge-tau0-for-stale", "edge",
           "the stale-USAM (and stale-SAM) edge is USAM's tau = 0 edge for every tau",
           _tau0_for_stale,
           checks=("EDGE.at_edge", "EDGE.edges_invert_max_stable_lr"),
           tests=("tests/test_edge_theory.py", "tests/test_mutants_edge.py")),
    Mutant("edge-odd-tau3-usam", "edge",
           "the stale-USAM edge of every odd tau >= 3 is USAM's tau = 0 edge",
           _odd_tau3_usam,
           checks=("EDGE.at_edge", "EDGE.edges_invert_max_stable_lr"),
           tests=("tests/test_mutants_edge.py",)),
    Mutant("edge-gd-for-sam", "edge",
           "SAM's gradient-norm-dependent edge is replaced by GD's 2/lr",
           _gd_for_sam,
           checks=("EDGE.at_edge",),
           tests=("tests/test_edge_theory.py", "tests/test_mutants_edge.py")),
    Mutant("edge-run-fresh-ascent", "edge",
           "the full-batch stale runs perturb with the fresh gradient (stale USAM trains as "
           "USAM)",
           _fresh_ascent,
           checks=("EDGE.at_edge",),
           tests=("tests/experiments/test_edge_run.py",)),
)
