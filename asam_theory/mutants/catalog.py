"""The mutant catalogue: the family modules in order, and look-up by id.

Each module listed in :data:`MODULES` exports its mutants as a tuple ``MUTANTS``; nothing
registers itself on import.  A new mutant is added by writing it in its family's module (a new
family module is named here).
"""

from __future__ import annotations

from types import ModuleType

from asam_theory.mutants import baselines as baseline_mutants
from asam_theory.mutants import basin as basin_mutants
from asam_theory.mutants import bounds as bound_mutants
from asam_theory.mutants import edge as edge_mutants
from asam_theory.mutants import fidelity as fidelity_mutants
from asam_theory.mutants import literature as literature_mutants
from asam_theory.mutants import methods, perturbation
from asam_theory.mutants import peers as peer_mutants
from asam_theory.mutants import pep as pep_mutants
from asam_theory.mutants import proofs as proof_mutants
from asam_theory.mutants import realdata as realdata_mutants
from asam_theory.mutants import threaded as threaded_mutants
from asam_theory.mutants.base import Mutant

#: family modules in report order
MODULES: tuple[ModuleType, ...] = (methods, proof_mutants, perturbation, threaded_mutants,
                                   realdata_mutants, bound_mutants, pep_mutants,
                                   literature_mutants, peer_mutants, baseline_mutants,
                                   basin_mutants, edge_mutants, fidelity_mutants)


def all_mutants() -> tuple[Mutant, ...]:
    """Every mutant of every module in :data:`MODULES`; ``ValueError`` if two share an id."""
    mutants = tuple(m for mod in MODULES for m in mod.MUTANTS)
    seen: set[str] = set()
    for m in mutants:
        if m.id in seen:
            raise ValueError(f"mutant id {m.id!r} is defined twice")
        seen.add(m.id)
    return mutants


def by_id(mutant_id: str) -> Mutant:
    """The mutant with this id; ``ValueError`` names the known ids."""
    for m in all_mutants():
        if m.id == mutant_id:
            return m
    raise ValueError(f"unknown mutant id {mutant_id!r}; known: {[m.id for m in all_mutants()]}")
