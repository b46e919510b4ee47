"""Update rules vectorised over seeds, and the methods catalogue
(:mod:`asam_theory.methods.catalog`: every method with its numpy rule and torch optimizer)."""

from asam_theory.methods.aesam import AESAM
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
from asam_theory.methods.ksam import KSAM
from asam_theory.methods.looksam import LookSAM
from asam_theory.methods.rules import SAM, SGD, USAM, AsyncSAM, SAMPa
from asam_theory.methods.rwp import RWP
from asam_theory.methods.ssam import SSAM

__all__ = [
    "AESAM", "KSAM", "SSAM", "LookSAM", "ARSAM", "AUSAM", "BiSAM", "RWP",
    "DEFAULT_EPS", "METHODS", "RULES", "SAM", "SGD", "USAM", "AsyncSAM", "Cost", "Method",
    "SAMPa", "State", "StepInfo", "UpdateRule", "get_method", "method_names",
    "rule_from_config",
]
