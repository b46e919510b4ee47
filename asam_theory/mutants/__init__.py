"""Deliberately wrong variants of methods, bounds, proof steps, threaded runs and timings
(:mod:`~asam_theory.mutants.base`), their catalogue (:mod:`~asam_theory.mutants.catalog`) and
the power runner that measures which checks kill them (:mod:`~asam_theory.mutants.power`)."""

from asam_theory.mutants.base import FAMILIES, Mutant
from asam_theory.mutants.catalog import all_mutants, by_id

__all__ = ["FAMILIES", "Mutant", "all_mutants", "by_id"]
