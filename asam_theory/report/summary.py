"""The verdict at a glance: per claim its outcome, the ratio of the check that decides it, the
method and run time of each check — one computation shared by the HTML page and the CLI.

A claim *fails* when one of its checks fails; is an *error* when none fails but one raised (a
broken check decides nothing, so the claim is not shown as holding); is *inconclusive* when
none fails or raised but one is inconclusive (its precondition was not met); and *holds* when
every check holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from asam_theory.claims.base import STATUSES, Claim, Verdict

#: how a check's method is named for a reader
METHOD_LABEL = {"symbolic": "proof", "exact": "exact", "monte_carlo": "Monte Carlo",
                "threaded": "threaded", "numerical": "numerical", "pep": "PEP",
                "real_data": "real data"}


def claim_outcome(verdicts: list[Verdict]) -> str:
    """``fails`` if any check fails, else ``error`` if any raised, else ``inconclusive`` if
    any is, else ``holds`` (a claim without verdicts is ``inconclusive``: nothing was
    tested)."""
    outcomes = {v.outcome for v in verdicts}
    if "fails" in outcomes:
        return "fails"
    if "error" in outcomes:
        return "error"
    if "inconclusive" in outcomes or not verdicts:
        return "inconclusive"
    return "holds"


def margin(v: Verdict) -> float | None:
    """How far a verdict's ratio lies from the edge of what holds, on one scale for every
    ratio kind: ≤ 1 inside, > 1 outside — ``ratio`` for a bound, ``1/ratio`` for a threshold,
    ``|ratio - 1| / ratio_tol`` for a target; ``None`` without a ratio or a declared kind."""
    r = v.ratio
    if r is None or v.ratio_kind is None:
        return None
    if v.ratio_kind == "bound":
        return r
    if v.ratio_kind == "threshold":
        return 1 / r if r > 0 else float("inf")
    return abs(r - 1) / v.ratio_tol if v.ratio_tol else None


@dataclass(frozen=True)
class ClaimGlance:
    """One claim's line of the summary: ``worst`` is the check that decides the outcome (one
    with the claim's outcome, the farthest from holding by :func:`margin`), ``worst_ratio``
    its ratio."""

    claim: Claim
    outcome: str
    worst_ratio: float | None
    verdicts: tuple[Verdict, ...]
    worst: Verdict | None = None


def decisive(verdicts: list[Verdict] | tuple[Verdict, ...], outcome: str) -> Verdict | None:
    """Among the verdicts with this outcome, the one with the largest :func:`margin` (the
    first such when none has a margin); ``None`` when no verdict has this outcome."""
    same = [v for v in verdicts if v.outcome == outcome]
    if not same:
        return None
    ranked = [v for v in same if margin(v) is not None]
    return max(ranked, key=margin) if ranked else same[0]


def glance(claims: list[Claim], verdicts: list[Verdict]) -> list[ClaimGlance]:
    """Per claim (in the given order): outcome, its decisive check and that check's ratio,
    its verdicts."""
    by_claim: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_claim.setdefault(v.claim_id, []).append(v)
    out = []
    for c in claims:
        vs = by_claim.get(c.id, [])
        outcome = claim_outcome(vs)
        w = decisive(vs, outcome)
        out.append(ClaimGlance(c, outcome, None if w is None else w.ratio, tuple(vs), w))
    return out


def counts(items: list[str]) -> dict[str, int]:
    """``{"holds": n, "fails": n, "inconclusive": n, "error": n}`` over a list of
    outcomes."""
    return {s: sum(o == s for o in items) for s in STATUSES}


#: how each ratio kind is written after a ratio: where it holds
KIND_MARK = {"bound": "≤1", "target": "≈1", "threshold": "≥1", None: ""}


def text_bar(ratio: float | None, width: int = 20, cap: float = 2.0,
             kind: str | None = "bound") -> str:
    """``[#####    |    ]``: the ratio on a scale from 0 to ``cap``, ``|`` marks ratio 1; an
    arrow ``>`` past the end means the ratio exceeds ``cap``.  A bound holds left of ``|``,
    a threshold right of it, a target near it (drawn as ``o`` at the ratio instead of a
    fill); no bar without a ratio or a declared kind."""
    if ratio is None or kind is None:
        return " " * (width + 2)
    pos = int(round(min(max(ratio, 0.0), cap) / cap * width))
    one = int(round(width / cap))
    if kind == "target":
        cells = [" "] * width
        cells[one] = "|"
        cells[min(pos, width - 1)] = "o"
    else:
        cells = ["#" if i < pos else " " for i in range(width)]
        if 0 <= one < width and cells[one] == " ":
            cells[one] = "|"
    return "[" + "".join(cells) + ("]" if ratio <= cap else ">")


def text_summary(claims: list[Claim], verdicts: list[Verdict]) -> str:
    """The verdict at a glance as text lines, for the CLI."""
    rows = glance(claims, verdicts)
    width = max((len(r.claim.id) for r in rows), default=5)
    lines = ["verdict at a glance (bar: the deciding check's ratio on [0, 2], | marks 1; "
             "≤1 a bound, ≥1 a threshold, ≈1 a target):"]
    for r in rows:
        kind = None if r.worst is None else r.worst.ratio_kind
        ratio = "      –  " if r.worst_ratio is None else \
            f"{r.worst_ratio:7.3g}{KIND_MARK.get(kind, ''):>2}"
        methods = ", ".join(f"{v.check} ({METHOD_LABEL.get(v.method, v.method)}, "
                            f"{v.outcome}, {v.seconds:.1f}s)" for v in r.verdicts)
        lines.append(f"  {r.outcome.upper():<12} {r.claim.id:<{width}} {ratio} "
                     f"{text_bar(r.worst_ratio, kind=kind)}  {methods}")
    c_claims = counts([r.outcome for r in rows])
    c_checks = counts([v.outcome for v in verdicts])
    lines.append(f"claims: {counts_text(c_claims)}; checks: {counts_text(c_checks)}")
    return "\n".join(lines)


def counts_text(c: dict[str, int]) -> str:
    """``"3 hold, 1 fail, 0 inconclusive, 0 errors"`` from :func:`counts`."""
    return (f"{c['holds']} hold, {c['fails']} fail, {c['inconclusive']} inconclusive, "
            f"{c['error']} error{'' if c['error'] == 1 else 's'}")
