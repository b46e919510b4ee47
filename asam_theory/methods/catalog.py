"""The methods catalogue: every method once, with its numpy rule and its torch optimizer.

Adding a method is one numpy rule (an :class:`~asam_theory.methods.UpdateRule` subclass),
one torch optimizer (in :mod:`asam_theory.torch`) and one :class:`Method` entry in
:data:`METHODS`.  ``asam-theory simulate --methods all``, :func:`rule_from_config` and the
tests that run every method (counted cost == declared, engine ≡ torch) read this list.

The torch optimizer is named by its dotted import path (``"package.module.Class"``) so that
this module, in the methods layer, never imports torch; :meth:`Method.torch_class` imports it
on demand.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from asam_theory.methods.aesam import AESAM
from asam_theory.methods.arsam import ARSAM
from asam_theory.methods.ausam import AUSAM
from asam_theory.methods.base import UpdateRule
from asam_theory.methods.bisam import BiSAM
from asam_theory.methods.ksam import KSAM
from asam_theory.methods.looksam import LookSAM
from asam_theory.methods.rules import SAM, SGD, USAM, AsyncSAM, SAMPa
from asam_theory.methods.rwp import RWP
from asam_theory.methods.ssam import SSAM


@dataclass(frozen=True)
class Method:
    """One catalogue entry.

    Attributes:
        rule: the numpy rule class; its ``name`` is the method's name.
        torch_optimizer: dotted path of the torch optimizer class (``None`` where the method
            has no torch face).
        defaults: rule keyword arguments of the method's reference setting, applied by
            :meth:`build` on top of the common ones (``lr``, ``batch_size``, ``rho``, ...).
    """

    rule: type[UpdateRule]
    torch_optimizer: str | None
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    @property
    def name(self) -> str:
        return self.rule.name

    def build(self, **params: Any) -> UpdateRule:
        """The rule with ``params`` and the entry's ``defaults`` (``params`` win), keeping
        only the keywords the rule has, so one common set (``lr``, ``batch_size``, ``rho``,
        ``tau``, ...) builds every method."""
        fields = {f.name for f in dataclasses.fields(self.rule)}
        kwargs = {**self.defaults, **params}
        return self.rule(**{k: v for k, v in kwargs.items() if k in fields})

    def torch_class(self) -> type:
        """Import and return the torch optimizer class (imports torch)."""
        if self.torch_optimizer is None:
            raise ValueError(f"method {self.name!r} has no torch optimizer")
        module, _, cls = self.torch_optimizer.rpartition(".")
        return getattr(importlib.import_module(module), cls)


#: every method, in report order
METHODS: tuple[Method, ...] = (
    Method(SGD, "torch.optim.SGD"),
    Method(SAM, "asam_theory.torch.sam.SAM"),
    Method(USAM, None),
    Method(AsyncSAM, "asam_theory.torch.asyncsam.AsyncSAM"),
    Method(SAMPa, "asam_theory.torch.sampa.SAMPa"),
    Method(LookSAM, "asam_theory.torch.looksam.LookSAM", {"k": 5, "alpha": 0.7}),
    Method(AESAM, "asam_theory.torch.aesam.AESAM"),
    Method(KSAM, "asam_theory.torch.ksam.KSAM", {"k_fraction": 0.5}),
    Method(SSAM, "asam_theory.torch.ssam.SSAM", {"sparsity": 0.5, "num_samples": 4,
                                                  "update_freq": 10}),
    Method(ARSAM, "asam_theory.torch.arsam.ARSAM"),
    Method(AUSAM, "asam_theory.torch.ausam.AUSAM"),
    Method(BiSAM, "asam_theory.torch.bisam.BiSAM"),
    Method(RWP, "asam_theory.torch.rwp.RWP"),
)

#: rule class by name
RULES: dict[str, type[UpdateRule]] = {m.name: m.rule for m in METHODS}


def method_names() -> list[str]:
    """Names of every method, in catalogue order."""
    return [m.name for m in METHODS]


def get_method(name: str) -> Method:
    """The entry called ``name`` (``ValueError`` listing the known names otherwise)."""
    for m in METHODS:
        if m.name == name:
            return m
    raise ValueError(f"method must be one of {method_names()}, got {name!r}")


def rule_from_config(config: dict) -> UpdateRule:
    """Rebuild a rule from :meth:`UpdateRule.config` output."""
    try:
        cls = RULES[config["type"]]
    except KeyError as exc:
        raise ValueError(f"unknown rule type {config.get('type')!r}; known: {sorted(RULES)}") \
            from exc
    return cls(**config["params"])
