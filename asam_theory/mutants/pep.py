r"""PEP mutants: errors in the performance-estimation encoding of the perturbation.

Every SAM-family formulation of :mod:`asam_theory.theory.pep` takes its descent gradient at
``_ascent_point(w, eps)`` = :math:`w+\epsilon` (adversarial ball / sphere, the aligned
relaxation of normalised AsyncSAM, USAM's :math:`\rho g_{t-\tau}`, SAMPa).  These mutants
replace that one line:

* radius doubled / halved: :math:`w\pm2\epsilon`, :math:`w+\epsilon/2`;
* sign flipped: :math:`w-\epsilon` (for the adversarial ball this is the same class, an
  equivalent mutant there; for USAM and the aligned relaxation it is a different method).

Before ``pep_validation`` compared the formulations at ρ > 0, only ρ = 0 (where every
perturbation vanishes) was validated; the checks named here compare the PEP values with
closed forms that depend on the perturbation: the quadratic-class worst case of USAM and
stale USAM (``PEP-T1.pep_validation``), T1-sharp's attained value at η = 1/L
(``PEP-T1.sharpened``), USAM's 1-D witness at η = 1/L (``PEP-T2.tight_at_unit_step``) and
T3's witness chain (``PEP-T3.tightness``).
"""

from __future__ import annotations

from asam_theory.mutants.base import Mutant, PatchSpec

_TARGET = "asam_theory.theory.pep._ascent_point"
_CHECKS = ("PEP-T1.pep_validation", "PEP-T1.sharpened", "PEP-T2.tight_at_unit_step",
           "PEP-T3.tightness")


def _point(scale: float):
    def patches() -> list[PatchSpec]:
        return [(_TARGET, lambda w, eps: w + scale * eps)]

    return patches


MUTANTS: tuple[Mutant, ...] = (
    Mutant("pep-perturbation-sign-flipped", "pep",
           "the PEP formulations take the descent gradient at w - eps instead of w + eps",
           _point(-1.0), checks=_CHECKS),
    Mutant("pep-radius-doubled", "pep",
           "the PEP formulations take the descent gradient at w + 2 eps (radius 2 rho)",
           _point(2.0), checks=_CHECKS),
    Mutant("pep-radius-halved", "pep",
           "the PEP formulations take the descent gradient at w + eps/2 (radius rho/2)",
           _point(0.5), checks=_CHECKS),
)
