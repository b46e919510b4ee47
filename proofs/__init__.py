"""Machine-checked proofs of the project's theorems T1-T4 (see :mod:`proofs.core`).

``run_all()`` builds and checks every proof; ``render_markdown()`` renders them for the
report; ``python -m proofs [--json]`` prints every step with a mark (``✓`` checked,
``✗`` failed, ``?`` unchecked) and exits non-zero on any failure.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from . import (
    expansions,
    t1_async_sam,
    t1_sharp,
    t2_sharp,
    t2_stale_usam,
    t3_pl,
    t4_penalty,
    tightness,
)
from .core import Proof, latex

#: builders of every proof, in report order
BUILDERS: dict[str, Callable[[], Proof]] = {
    "T1": t1_async_sam.build,
    "T1-same-batch": t1_async_sam.build_same_batch,
    "T1-tight": tightness.build,
    "T1-sharp": t1_sharp.build,
    "T2": t2_stale_usam.build,
    "T2-sharp": t2_sharp.build,
    "T3": t3_pl.build,
    "T4": t4_penalty.build,
    "EXP": expansions.build,
}

MARK = {"ok": "✓", "failed": "✗", "unchecked": "?"}


@lru_cache(maxsize=1)
def run_all() -> tuple[Proof, ...]:
    """Build (and thereby check) every proof; cached for the process."""
    return tuple(build() for build in BUILDERS.values())


def summary(proofs: tuple[Proof, ...] | None = None) -> dict:
    """``{"steps_checked", "steps_failed", "steps_unchecked", "proofs": [...]}``."""
    proofs = run_all() if proofs is None else proofs
    out = {"steps_checked": 0, "steps_failed": 0, "steps_unchecked": 0, "proofs": []}
    for p in proofs:
        c = p.counts()
        out["steps_checked"] += c["checked"]
        out["steps_failed"] += c["failed"]
        out["steps_unchecked"] += c["unchecked"]
        out["proofs"].append(p.as_dict())
    return out


def render_markdown(proofs: tuple[Proof, ...] | None = None) -> str:
    """Markdown with LaTeX, one section per proof: statement, assumptions, steps with
    marks and certificates; failed steps and unchecked steps are shown in red."""
    proofs = run_all() if proofs is None else proofs
    lines = ["# Machine-checked proofs", ""]
    s = summary(proofs)
    lines.append(
        f"{s['steps_checked']} steps checked, {s['steps_failed']} failed, "
        f"{s['steps_unchecked']} unchecked."
    )
    for p in proofs:
        c = p.counts()
        lines += ["", f"## {p.title}", "", p.statement, ""]
        lines.append(f"*{c['checked']} checked, {c['failed']} failed, {c['unchecked']} unchecked*")
        lines += ["", "**Assumptions**", ""]
        for a in p.assumptions:
            if hasattr(a, "lhs"):
                lines.append(f"- **{a.name}**: ${a.latex()}$ — {a.text}")
            else:
                lines.append(f"- **{a.name}**: {a.text}")
        lines += ["", "**Steps**", ""]
        for i, st in enumerate(p.steps, 1):
            mark = MARK[st.status]
            line = f"{i}. {mark} ${st.claim}$ — {st.why}"
            if st.status != "ok":
                body = f"{mark} ${st.claim}$ — {st.why}: {st.detail}"
                line = f'{i}. <span style="color:red">{body}</span>'
            lines.append(line)
            if st.certificate:
                lines.append(f"   - certificate: ${st.certificate}$")
        if p.final:
            lines += ["", "**Final expressions**", ""]
            for k, v in p.final.items():
                lines.append(f"- {k}: ${latex(v)}$")
    return "\n".join(lines) + "\n"


__all__ = ["BUILDERS", "Proof", "render_markdown", "run_all", "summary"]
