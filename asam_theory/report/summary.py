"""The verdict at a glance: per claim its outcome, its checks' worst ratio measured/bound, the
method and run time of each check — one computation shared by the HTML page and the CLI.

A claim *fails* when one of its checks fails, is *inconclusive* when none fails but one is
inconclusive (its precondition was not met), and *holds* when every check holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from asam_theory.claims.base import STATUSES, Claim, Verdict

#: how a check's method is named for a reader
METHOD_LABEL = {"symbolic": "proof", "exact": "exact", "monte_carlo": "Monte Carlo",
                "threaded": "threaded", "numerical": "numerical", "pep": "PEP",
                "real_data": "real data"}


def claim_outcome(verdicts: list[Verdict]) -> str:
    """``fails`` if any check fails, else ``inconclusive`` if any is, else ``holds``
    (a claim without verdicts is ``inconclusive``: nothing was tested)."""
    outcomes = {v.outcome for v in verdicts}
    if "fails" in outcomes:
        return "fails"
    if "inconclusive" in outcomes or not verdicts:
        return "inconclusive"
    return "holds"


@dataclass(frozen=True)
class ClaimGlance:
    """One claim's line of the summary."""

    claim: Claim
    outcome: str
    worst_ratio: float | None
    verdicts: tuple[Verdict, ...]


def glance(claims: list[Claim], verdicts: list[Verdict]) -> list[ClaimGlance]:
    """Per claim (in the given order): outcome, worst ratio over its checks, its verdicts."""
    by_claim: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_claim.setdefault(v.claim_id, []).append(v)
    out = []
    for c in claims:
        vs = by_claim.get(c.id, [])
        ratios = [v.ratio for v in vs if v.ratio is not None]
        out.append(ClaimGlance(c, claim_outcome(vs), max(ratios) if ratios else None, tuple(vs)))
    return out


def counts(items: list[str]) -> dict[str, int]:
    """``{"holds": n, "fails": n, "inconclusive": n}`` over a list of outcomes."""
    return {s: sum(o == s for o in items) for s in STATUSES}


def text_bar(ratio: float | None, width: int = 20, cap: float = 2.0) -> str:
    """``[#####    |    ]``: the ratio on a scale from 0 to ``cap``, ``|`` marks ratio 1
    (left of it the bound holds); an arrow ``>`` past the end means the ratio exceeds ``cap``."""
    if ratio is None:
        return " " * (width + 2)
    filled = int(round(min(max(ratio, 0.0), cap) / cap * width))
    one = int(round(width / cap))
    cells = ["#" if i < filled else " " for i in range(width)]
    if 0 <= one < width and cells[one] == " ":
        cells[one] = "|"
    return "[" + "".join(cells) + ("]" if ratio <= cap else ">")


def text_summary(claims: list[Claim], verdicts: list[Verdict]) -> str:
    """The verdict at a glance as text lines, for the CLI."""
    rows = glance(claims, verdicts)
    width = max((len(r.claim.id) for r in rows), default=5)
    lines = ["verdict at a glance (bar: worst ratio measured/bound on [0, 2], | marks 1):"]
    for r in rows:
        ratio = "      –" if r.worst_ratio is None else f"{r.worst_ratio:7.3g}"
        methods = ", ".join(f"{v.check} ({METHOD_LABEL.get(v.method, v.method)}, "
                            f"{v.outcome}, {v.seconds:.1f}s)" for v in r.verdicts)
        lines.append(f"  {r.outcome.upper():<12} {r.claim.id:<{width}} {ratio} "
                     f"{text_bar(r.worst_ratio)}  {methods}")
    c_claims = counts([r.outcome for r in rows])
    c_checks = counts([v.outcome for v in verdicts])
    lines.append(f"claims: {c_claims['holds']} hold, {c_claims['fails']} fail, "
                 f"{c_claims['inconclusive']} inconclusive; checks: {c_checks['holds']} hold, "
                 f"{c_checks['fails']} fail, {c_checks['inconclusive']} inconclusive")
    return "\n".join(lines)
