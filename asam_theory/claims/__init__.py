"""Claims, their checks and verdicts (:mod:`~asam_theory.claims.base`) and the catalogue of
built-in claims (:mod:`~asam_theory.claims.catalog`)."""

from asam_theory.claims.base import (
    CHECK_STATUSES,
    STATUSES,
    Check,
    Claim,
    Outcome,
    Settings,
    Verdict,
    run_check,
    worst,
)
from asam_theory.claims.catalog import all_claims, find_check, registry, select

__all__ = ["CHECK_STATUSES", "STATUSES", "Check", "Claim", "Outcome", "Settings", "Verdict",
           "all_claims", "find_check", "registry", "run_check", "select", "worst"]
