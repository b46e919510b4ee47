r"""Peer-perturbation mutants: the efficient-SAM peers' perturbation made too wide.

AE-SAM, SSAM, BiSAM (and K-SAM, LookSAM, ARSAM, AUSAM) build their perturbation with
:meth:`~asam_theory.methods.rules._Perturbed.perturbation`,
:math:`\epsilon=\rho g/(\|g\|+\text{eps})`, not with the fused
:meth:`~asam_theory.methods.rules._Perturbed.perturb` that SAM and AsyncSAM call and that the
``perturbation-*`` mutants of :mod:`asam_theory.mutants.perturbation` patch; those mutants
leave the peers' code untouched.  These patch ``perturbation`` to return :math:`k\epsilon`
(norm :math:`k\rho`), which breaks T1's hypothesis :math:`\|\epsilon\|\le\rho`:

* ``peer-perturbation-5x-radius`` (k = 5), ``peer-perturbation-20x-radius`` (k = 20).

``PEERS.t1``'s near-stationary setting (``asam_theory.sweeps.peers``) kills them: started
within ρ of a stationary point with curvature near L, the k-times-wide perturbation drives a
2-cycle whose squared gradient norm is about :math:`(k\eta L/(2-\eta L))^2L^2\rho^2`, above T1's
:math:`L^2\rho^2` (same-batch form :math:`(1+L\eta)L^2\rho^2`) for k = 5 at :math:`\eta=0.8/L`.
Kills are measured by ``tests/test_mutants_peers.py`` and ``asam-theory power``.
"""

from __future__ import annotations

from collections.abc import Callable

from asam_theory.mutants.base import Mutant, PatchSpec


def _scaled(k: float) -> Callable[[], list[PatchSpec]]:
    """Patch ``_Perturbed.perturbation`` to return ``k`` times the correct perturbation."""

    def patches() -> list[PatchSpec]:
        from asam_theory.methods.rules import _Perturbed

        true = _Perturbed.perturbation

        def perturbation(self, g, normalize, out=None):
            e = true(self, g, normalize, out)
            e *= k
            return e

        return [((_Perturbed, "perturbation"), perturbation)]

    return patches


MUTANTS: tuple[Mutant, ...] = (
    Mutant("peer-perturbation-5x-radius", "method",
           "the peers' perturbation (AE-SAM, SSAM, BiSAM, ...) has norm 5 rho", _scaled(5.0),
           checks=("PEERS.t1",)),
    Mutant("peer-perturbation-20x-radius", "method",
           "the peers' perturbation (AE-SAM, SSAM, BiSAM, ...) has norm 20 rho",
           _scaled(20.0), checks=("PEERS.t1",)),
)
