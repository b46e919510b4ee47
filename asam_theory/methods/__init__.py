"""Update rules vectorised over seeds: SGD, SAM, USAM, AsyncSAM, SAMPa."""

from asam_theory.methods.base import (
    DEFAULT_EPS,
    Cost,
    State,
    StepInfo,
    UpdateRule,
)
from asam_theory.methods.rules import RULES, SAM, SGD, USAM, AsyncSAM, SAMPa, rule_from_config

__all__ = [
    "DEFAULT_EPS", "RULES", "SAM", "SGD", "USAM", "AsyncSAM", "Cost", "SAMPa", "State",
    "StepInfo", "UpdateRule", "rule_from_config",
]
