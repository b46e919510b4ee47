"""Update rules vectorised over seeds, and the methods catalogue
(:mod:`asam_theory.methods.catalog`: every method with its numpy rule and torch optimizer)."""

from asam_theory.methods.arsam import ARSAM
from asam_theory.methods.ausam import AUSAM
from asam_theory.methods.base import (
    DEFAULT_EPS,
    Cost,
    State,
    StepInfo,
    UpdateRule,
)
from asam_theory.methods.bisam import BiSAM
from asam_theory.methods.catalog import (
    METHODS,
    RULES,
    Method,
    get_method,
    method_names,
    rule_from_config,
)
from asam_theory.methods.rules import SAM, SGD, USAM, AsyncSAM, SAMPa
from asam_theory.methods.rwp import RWP

__all__ = [
    "ARSAM", "AUSAM", "BiSAM", "DEFAULT_EPS", "METHODS", "RWP", "RULES", "SAM", "SGD", "USAM",
    "AsyncSAM", "Cost", "Method",
    "SAMPa", "State", "StepInfo", "UpdateRule", "get_method", "method_names",
    "rule_from_config",
]
