"""Machine-checked proofs of the project's theorems T1-T4 (see :mod:`proofs.core`).

``run_all()`` builds and checks every proof; ``render_markdown()`` renders them for the
report; ``python -m asam_theory.proofs [--json]`` (or ``asam-theory proofs``) prints every
step with a mark (``✓`` checked, ``≔`` definitional, ``✗`` failed, ``?`` unchecked) and exits
non-zero when a step failed or is unchecked.

Accounting (:func:`summary`): a lemma reused — the same step, by kind, statement and
justification, in several proofs — is counted once (``steps_checked``; ``steps_checked_total``
counts every use); naming steps (``steps_definitional``) and the premises the proofs start
from (``premises``, stated not checked) are listed apart from the checked steps.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from . import (
    edge,
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
    "EDGE": edge.build,
}

MARK = {"ok": "✓", "failed": "✗", "unchecked": "?"}
#: the mark of a confirmed naming step (it proves nothing)
DEFINITION_MARK = "≔"


def mark(step) -> str:
    """``✓``/``✗``/``?`` by status; ``≔`` for a confirmed definitional step."""
    return DEFINITION_MARK if step.status == "ok" and step.definitional else MARK[step.status]


@lru_cache(maxsize=1)
def run_all() -> tuple[Proof, ...]:
    """Build (and thereby check) every proof; cached for the process."""
    return tuple(build() for build in BUILDERS.values())


def summary(proofs: tuple[Proof, ...] | None = None) -> dict:
    """Counts over all proofs and each proof's dict:

    * ``steps_checked`` — distinct derivation steps sympy confirmed (a reused lemma once);
    * ``steps_checked_total`` — the same with every reuse counted;
    * ``steps_definitional`` — confirmed naming steps (distinct), apart from the checked ones;
    * ``premises`` — distinct assumptions (name, statement) the proofs start from;
    * ``steps_failed``, ``steps_unchecked`` — every occurrence;
    * ``proofs`` — :meth:`Proof.as_dict` of each proof.
    """
    proofs = run_all() if proofs is None else proofs
    checked, definitional, premises = set(), set(), set()
    total = failed = unchecked = 0
    for p in proofs:
        for st in p.steps:
            if st.status == "ok" and st.definitional:
                definitional.add(st.key)
            elif st.status == "ok":
                checked.add(st.key)
                total += 1
            failed += st.status == "failed"
            unchecked += st.status == "unchecked"
        for a in p.assumptions:
            premises.add((a.name, a.latex() if hasattr(a, "lhs") or hasattr(a, "symbols")
                          else a.text))
    return {"steps_checked": len(checked), "steps_checked_total": total,
            "steps_definitional": len(definitional), "premises": len(premises),
            "steps_failed": failed, "steps_unchecked": unchecked,
            "proofs": [p.as_dict() for p in proofs]}


def ok(s: dict) -> bool:
    """True iff no step failed and none is unchecked (and something was checked)."""
    return s["steps_failed"] == 0 and s["steps_unchecked"] == 0 and s["steps_checked"] > 0


def render_markdown(proofs: tuple[Proof, ...] | None = None) -> str:
    """Markdown with LaTeX, one section per proof: statement, assumptions, steps with
    marks and certificates; failed steps and unchecked steps are shown in red."""
    proofs = run_all() if proofs is None else proofs
    lines = ["# Machine-checked proofs", ""]
    s = summary(proofs)
    lines.append(
        f"{s['steps_checked']} distinct steps checked ({s['steps_checked_total']} with reused "
        f"lemmas counted each time), {s['steps_failed']} failed, {s['steps_unchecked']} "
        f"unchecked; apart from them {s['steps_definitional']} definitional steps (≔, naming) "
        f"and {s['premises']} premises (stated, not checked)."
    )
    for p in proofs:
        c = p.counts()
        lines += ["", f"## {p.title}", "", p.statement, ""]
        lines.append(f"*{c['checked']} checked, {c['failed']} failed, {c['unchecked']} "
                     f"unchecked; {c['definitional']} definitional, {c['premises']} premises*")
        lines += ["", "**Premises** (stated, not checked)", ""]
        for a in p.assumptions:
            if hasattr(a, "lhs") or hasattr(a, "symbols"):  # a fact, or declared domains
                tail = f" — {a.text}" if a.text else ""
                lines.append(f"- **{a.name}**: ${a.latex()}${tail}")
            else:
                lines.append(f"- **{a.name}**: {a.text}")
        lines += ["", "**Steps**", ""]
        for i, st in enumerate(p.steps, 1):
            m = mark(st)
            line = f"{i}. {m} ${st.claim}$ — {st.why}"
            if st.definitional and st.status == "ok":
                line += " *(definition)*"
            if st.status != "ok":
                body = f"{m} ${st.claim}$ — {st.why}: {st.detail}"
                line = f'{i}. <span style="color:red">{body}</span>'
            lines.append(line)
            if st.certificate:
                lines.append(f"   - certificate: ${st.certificate}$")
        if p.final:
            lines += ["", "**Final expressions**", ""]
            for k, v in p.final.items():
                lines.append(f"- {k}: ${latex(v)}$")
    return "\n".join(lines) + "\n"


__all__ = ["BUILDERS", "DEFINITION_MARK", "MARK", "Proof", "mark", "ok", "render_markdown",
           "run_all", "summary"]
