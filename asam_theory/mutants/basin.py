r"""FLAT-BASIN mutant: AsyncSAM made into SAM.

``FLAT-BASIN.flat_fraction`` asserts two sides: inside its regime AsyncSAM ends in the flat
basin as often as SAM and more often than SGD, and at ρ = 0.1
(``asam_theory.claims.penalty.PREDICTED_LOSS``) significantly *less* often than SAM.  A
"AsyncSAM" that is SAM — its ascent at :math:`x_t` on the descent batch, i.e. the correct
:meth:`~asam_theory.methods.rules.AsyncSAM.step` with lag 0 and the batch swapped
(:func:`asam_theory.mutants.perturbation._asyncsam_step`) — cannot show the predicted loss, so
the outside side kills it; ``perturbation-missing`` (AsyncSAM and SAM become SGD) is killed by
the inside side.  Kills: ``tests/test_mutants_basin.py`` and ``asam-theory power``.
"""

from __future__ import annotations

from asam_theory.mutants.base import Mutant
from asam_theory.mutants.perturbation import _asyncsam_step

MUTANTS: tuple[Mutant, ...] = (
    Mutant("asyncsam-is-sam", "method",
           "AsyncSAM's ascent is SAM's: fresh (at x_t) and on the descent batch",
           _asyncsam_step(lambda tau: 0, True), checks=("FLAT-BASIN.flat_fraction",)),
)
