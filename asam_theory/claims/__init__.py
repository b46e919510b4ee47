"""The registry of claims (see :mod:`asam_theory.claims.base`)."""

from asam_theory.claims.base import (
    Check,
    Claim,
    Settings,
    Verdict,
    register,
    registry,
    run_check,
    select,
    worst,
)

__all__ = ["Check", "Claim", "Settings", "Verdict", "register", "registry", "run_check",
           "select", "worst"]
