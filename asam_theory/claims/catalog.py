"""The catalogue: the claim modules in report order, and look-up by id.

Each module listed in :data:`MODULES` exports its claims as a tuple ``CLAIMS``; nothing
registers itself on import.  Order: our theorems (T1–T3, then T4 and the flat-basin claim),
the exact analysis against Monte Carlo, the literature facts, the real threaded runs, the
published baselines the real-data training reproduces, the real-data ablation.  A new
claim module is added by writing it and naming it here.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from asam_theory.claims import (
    ablation,
    baselines,
    edge,
    exact_mc,
    headline,
    literature,
    peers,
    penalty,
    penalty_real,
    pep,
    theorems,
    threaded,
)
from asam_theory.claims.base import Check, Claim

#: claim modules in report order
MODULES: tuple[ModuleType, ...] = (theorems, penalty, exact_mc, literature, threaded, pep,
                                   peers, baselines, ablation, headline, edge, penalty_real)


def all_claims() -> tuple[Claim, ...]:
    """Every claim of every module in :data:`MODULES`, in report order; ``ValueError`` if
    two claims share an id."""
    claims = tuple(c for mod in MODULES for c in mod.CLAIMS)
    seen: set[str] = set()
    for c in claims:
        if c.id in seen:
            raise ValueError(f"claim id {c.id!r} is defined twice")
        seen.add(c.id)
    return claims


def registry() -> dict[str, Claim]:
    """``{id: claim}`` for every claim, in report order."""
    return {c.id: c for c in all_claims()}


def select(ids: Iterable[str] | None) -> list[Claim]:
    """The claims with these ids (all if ``None``); ``ValueError`` names unknown ids."""
    reg = registry()
    if ids is None:
        return list(reg.values())
    ids = list(ids)
    unknown = [i for i in ids if i not in reg]
    if unknown:
        raise ValueError(f"unknown claim id(s) {unknown}; known: {list(reg)}")
    return [reg[i] for i in ids]


def find_check(check_id: str) -> tuple[Claim, Check]:
    """The claim and check named ``"CLAIM.check"`` (e.g. ``"HEADLINE.asyncsam"``);
    ``ValueError`` names the known ids when there is none."""
    claim_id, _, name = str(check_id).partition(".")
    claim = registry().get(claim_id)
    check = next((c for c in claim.checks if c.name == name), None) if claim else None
    if check is None:
        known = [f"{c.id}.{ch.name}" for c in all_claims() for ch in c.checks]
        raise ValueError(f"unknown check id {check_id!r}; known: {known}")
    return claim, check
