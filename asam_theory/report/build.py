"""Write the verify report.

``DIR/verdicts.json`` — a JSON list, one object per check (schema :data:`VERDICTS_SCHEMA`);
``DIR/figures/<id>.png`` — one figure per check that has figure data;
``DIR/index.html`` — one self-contained file (figures embedded as data URIs, mathematics as
MathML converted at build time, no script, no external asset).  From the top: the verdict at
a glance (per claim its outcome and the ratio of the check that decides it as a bar coloured
by the outcome, each check's method, ratio and run time; counts of holds / fails /
inconclusive / errors), the contents (claims, then proofs), then per claim its statement, source and
checks (anchors ``#<claim>`` and ``#<claim>.<check>``; measured against bound, dicts as
key–value tables; what the ratio means; per-configuration tables collapsed with their row
count; each figure with a caption saying what to look for; a paragraph, method or caption
that already appeared is a link to it), then the machine-checked proofs (``#proofs``,
``#proof-<id>``).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import re
import sys
from pathlib import Path

from asam_theory import __version__
from asam_theory.claims.base import METHODS, RATIO_KINDS, STATUSES, Claim, Verdict
from asam_theory.report.mathml import MathConverter, md_to_html
from asam_theory.report.summary import KIND_MARK, METHOD_LABEL, counts, glance

VERDICTS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["id", "claim_id", "check", "method", "outcome", "passed", "measured",
                     "bound", "ratio"],
        "properties": {
            "id": {"type": "string", "description": "'<claim id>.<check name>'"},
            "claim_id": {"type": "string"},
            "check": {"type": "string"},
            "method": {"type": "string", "enum": list(METHODS)},
            "outcome": {"type": "string", "enum": list(STATUSES),
                        "description": "holds; fails; inconclusive (the check's precondition "
                                       "was not met, so it says nothing either way); error "
                                       "(the check raised: a broken check, neither a pass "
                                       "nor a failure; 'error' holds the traceback)"},
            "passed": {"type": "boolean", "description": "true iff outcome is 'holds'"},
            "measured": {"description": "the measured value (number, list or object)"},
            "bound": {"description": "what it is held to (number, list, object or null)"},
            "ratio": {"type": ["number", "null"],
                      "description": "measured/bound of the worst configuration; its meaning "
                                     "is ratio_kind"},
            "ratio_kind": {"type": ["string", "null"], "enum": [*RATIO_KINDS, None],
                           "description": "bound: <= 1 holds; target: holds within 1 +- "
                                          "ratio_tol; threshold: >= 1 holds; null: none"},
            "ratio_tol": {"type": ["number", "null"]},
            "ratio_note": {"type": "string", "description": "what the ratio is, in words, "
                                                            "where not plain measured/bound"},
            "summary": {"type": "string"},
            "config": {"type": "object",
                       "description": "the check's settings; a preregistered check adds "
                                      "'preregistered' (the version that decided, its "
                                      "thresholds with date, commit and basis) and "
                                      "'earlier_versions' (each earlier version's outcome on "
                                      "this run, or as recorded)"},
            "table": {"type": "array", "items": {"type": "object"}},
            "figure": {"type": ["object", "null"]},
            "error": {"type": ["string", "null"],
                      "description": "the traceback when outcome is 'error', else null"},
            "seconds": {"type": "number"},
        },
    },
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d1d1f;line-height:1.45}
p,li,figcaption,td,th,h2,h3{overflow-wrap:break-word}
h1{margin-bottom:.2em} .meta{color:#555}
.claim{border:1px solid #ddd;border-radius:8px;padding:1em 1.2em;margin:1.4em 0}
.holds{color:#0a7d32;font-weight:600} .fails{color:#c0182b;font-weight:600}
.inconclusive{color:#8a5a00;font-weight:600} .error{color:#6b2fa0;font-weight:600}
.badge{display:inline-block;padding:.1em .6em;border-radius:1em;font-size:.85em;margin-left:.5em}
.badge.holds{background:#e3f6e8} .badge.fails{background:#fde4e6}
.badge.inconclusive{background:#fff3d6} .badge.error{background:#efe3f8}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0;display:block;overflow-x:auto;
max-width:100%}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;vertical-align:top}
th{background:#f5f5f7}
table.glance td{text-align:left} td.nowrap{white-space:nowrap}
table.kv{display:table;margin:0;font-size:1em} table.kv th{text-align:left;font-weight:normal;
background:#fafafa} table.kv td,table.kv th{border-color:#eee;padding:.1em .4em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em;max-width:100%}
.mathbox{display:inline-block;max-width:100%;overflow-x:auto;overflow-y:hidden;
vertical-align:middle}
math[display=block]{display:block;max-width:100%;overflow-x:auto;overflow-y:hidden}
figure{margin:.8em 0} figcaption{font-size:.9em;color:#333;max-width:640px}
img{max-width:100%;height:auto;border:1px solid #eee}
.check{margin:1em 0 1em 1em;padding-left:1em;border-left:3px solid #eee}
.statement{background:#fafafa;padding:.4em .8em;border-radius:6px}
.proofs .unchecked,.proofs .failed{color:#c0182b}
code.tex{color:#c0182b}
nav#contents ol ol{font-size:.92em}
.bar{display:inline-block;position:relative;width:110px;height:.75em;background:#eee;
border-radius:2px;vertical-align:middle;margin-right:.4em}
.bar .fill,.bar .band{position:absolute;left:0;top:0;bottom:0;border-radius:2px}
.bar .band{background:#cfd8e3}
.bar .marker{position:absolute;top:-2px;bottom:-2px;width:6px;margin-left:-3px;
border-radius:3px}
.bar .holds{background:#3aa55d} .bar .fails{background:#d0394b}
.bar .inconclusive{background:#d9a400} .bar .error{background:#7d3cb5}
.bar .one{position:absolute;left:50%;top:-3px;bottom:-3px;border-left:1.5px solid #222}
.kind{color:#666;font-size:.8em;margin-left:.25em}
"""

#: the bar's scale: ratio 0 .. BAR_CAP, the tick at ratio 1 sits in the middle
BAR_CAP = 2.0
#: per-configuration tables show at most this many rows (all rows are in verdicts.json)
TABLE_LIMIT = 60


def _fmt(v) -> str:
    """A scalar as text (lists of up to 8 items joined; longer ones shortened)."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        items = [_fmt(x) for x in v[:8]]
        return ", ".join(items) + (f", … ({len(v)} values)" if len(v) > 8 else "")
    if isinstance(v, dict):
        return json.dumps(v)
    return str(v)


def _cell(v, conv: MathConverter) -> str:
    """HTML for one value: a dict as a small key–value table (nested dicts too), anything else
    as text."""
    if isinstance(v, dict) and v:
        rows = "".join(f"<tr><th>{conv.inline(str(k))}</th><td>{_cell(x, conv)}</td></tr>"
                       for k, x in v.items())
        return f"<table class='kv'>{rows}</table>"
    return html.escape(_fmt(v))


def _table(rows: list[dict], conv: MathConverter, limit: int = TABLE_LIMIT) -> str:
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{conv.inline(str(k))}</th>" for k in keys)
    body = []
    for r in rows[:limit]:
        cells = "".join(f"<td>{_cell(r.get(k), conv)}</td>" for k in keys)
        body.append(f"<tr>{cells}</tr>")
    more = f"<p class='meta'>{len(rows) - limit} more rows in verdicts.json</p>" if \
        len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _measured_table(v: Verdict, conv: MathConverter) -> str:
    """The check's result: outcome, ratio and time; measured against bound either in the same
    row (numbers) or, when either is a dict, one row per quantity."""
    head = {"outcome": v.outcome, "ratio": v.ratio, "seconds": round(v.seconds, 2)}
    if isinstance(v.measured, dict) or isinstance(v.bound, dict):
        m = v.measured if isinstance(v.measured, dict) else {"value": v.measured}
        b = v.bound if isinstance(v.bound, dict) else {"value": v.bound}
        keys = list(dict.fromkeys([*m, *b]))
        rows = "".join(f"<tr><th>{conv.inline(str(k))}</th><td>{_cell(m.get(k), conv)}</td>"
                       f"<td>{_cell(b.get(k), conv)}</td></tr>" for k in keys)
        return (_table([head], conv) + "<table class='measured'><tr><th>quantity</th>"
                f"<th>measured</th><th>bound</th></tr>{rows}</table>")
    return _table([{"outcome": v.outcome, "measured": v.measured, "bound": v.bound,
                    **{k: x for k, x in head.items() if k != "outcome"}}], conv)


#: how each ratio kind reads, for titles and the legend
RATIO_MEANING = {"bound": "measured/bound, ≤ 1 holds", "threshold": "measured/threshold, ≥ 1 holds",
                 "target": "measured/target, holds within 1 ± tolerance", None: "ratio"}


def bar_parts(outcome: str, ratio: float | None, kind: str | None,
              tol: float | None = None, cap: float = BAR_CAP) -> dict | None:
    """What the bar of one ratio shows, as data (the unit tests check it): ``colour`` — the
    outcome, always (never decided by the number); ``fill`` — the bar's width in % of the
    scale 0..``cap`` (bound, threshold); ``marker`` — a dot's position in % (target);
    ``band`` — the target's tolerance ``(left %, width %)``; ``one`` — where ratio 1 sits.
    ``None`` without a ratio; no geometry (``fill``, ``marker`` and ``band`` ``None``) when
    the ratio's kind is not declared."""
    if ratio is None:
        return None
    if outcome not in STATUSES:
        raise ValueError(f"outcome must be one of {list(STATUSES)}, got {outcome!r}")

    def pct(x: float) -> float:
        return 100.0 * min(max(x, 0.0), cap) / cap

    parts = {"colour": outcome, "kind": kind, "fill": None, "marker": None, "band": None,
             "one": pct(1.0), "over": ratio > cap}
    if kind in ("bound", "threshold"):
        parts["fill"] = pct(ratio)
    elif kind == "target":
        parts["marker"] = pct(ratio)
        if tol:
            lo, hi = pct(1 - tol), pct(1 + tol)
            parts["band"] = (lo, hi - lo)
    return parts


def _bar(outcome: str, ratio: float | None, kind: str | None = "bound",
         tol: float | None = None, note: str = "") -> str:
    """A CSS bar for a ratio on [0, BAR_CAP] coloured by ``outcome`` (see :func:`bar_parts`);
    the tick marks ratio 1; after it the ratio and where it holds (≤1, ≥1, ≈1)."""
    p = bar_parts(outcome, ratio, kind, tol)
    if p is None:
        return "–"
    meaning = RATIO_MEANING.get(kind, "ratio")
    if kind == "target" and tol:
        meaning = f"measured/target, holds within 1 ± {tol:g}"
    title = html.escape(f"{meaning}; here {ratio:.6g}, {outcome}" + (f". {note}" if note else ""),
                        quote=True)
    mark = KIND_MARK.get(kind, "")
    label = (f"{ratio:.3g}" + (f"<span class='kind'>{mark}</span>" if mark else ""))
    if kind is None:
        return f"<span title='{title}'>{label}</span>"
    inner = []
    if p["band"] is not None:
        inner.append(f"<span class='band' style='left:{p['band'][0]:.1f}%;"
                     f"width:{p['band'][1]:.1f}%'></span>")
    if p["fill"] is not None:
        inner.append(f"<span class='fill {outcome}' style='width:{p['fill']:.1f}%'></span>")
    if p["marker"] is not None:
        inner.append(f"<span class='marker {outcome}' style='left:{p['marker']:.1f}%'></span>")
    inner.append("<span class='one'></span>")
    return (f"<span class='bar' data-outcome='{outcome}' title='{title}'>{''.join(inner)}"
            f"</span>{label}")


def _badge(outcome: str, text: str | None = None) -> str:
    return f"<span class='badge {outcome}'>{html.escape(text or outcome)}</span>"


def _figure(claim_checks: dict, v: Verdict, fig_dir: Path) -> Path | None:
    check = claim_checks.get(v.check)
    if v.figure is None or check is None or check.plot is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    try:
        check.plot(v, ax)
        fig.tight_layout()
        path = fig_dir / f"{v.id}.png"
        fig.savefig(path, bbox_inches="tight", pad_inches=0.08)
    finally:
        plt.close(fig)
    return path


def _verdict_bar(v: Verdict | None) -> str:
    return "–" if v is None else _bar(v.outcome, v.ratio, v.ratio_kind, v.ratio_tol,
                                       v.ratio_note)


def _ratio_line(v: Verdict, conv: MathConverter) -> str:
    """One line saying what the check's ratio is and where it holds."""
    if v.ratio is None:
        return ""
    meaning = RATIO_MEANING.get(v.ratio_kind, "ratio")
    if v.ratio_kind == "target" and v.ratio_tol:
        meaning = f"measured/target, holds within 1 ± {v.ratio_tol:g}"
    if v.ratio_kind is None:
        meaning = "a ratio with no bound, target or threshold meaning"
    note = f" {conv.inline(v.ratio_note)}" if v.ratio_note else ""
    return (f"<p class='meta'>Ratio {_verdict_bar(v)} — {html.escape(meaning)}.{note}</p>")


def _versions_html(v: Verdict) -> str:
    """The check's preregistered version and thresholds, and its earlier versions with their
    outcome on this run (``config.earlier_versions``) or as recorded
    (:mod:`asam_theory.claims.preregistered`); empty for a check without an entry there."""
    from asam_theory.claims import preregistered

    rec = v.config.get("preregistered")
    if rec is None:
        if not preregistered.versions(v.id):
            return ""
        rec = preregistered.record(v.id)
    rows = v.config.get("earlier_versions") or preregistered.earlier(v.id)
    esc = html.escape
    values = "; ".join(f"{t['key']} = {json.dumps(t['value'])} ({t['basis']}, v{t['version']}, "
                       f"{t['set_on'][:10]}, {t['commit'][:10]})" for t in rec["thresholds"])
    body = [f"<tr><td>v{rec['version']} (current)</td><td>{esc(rec['criterion'])}</td>"
            f"<td>{_badge(v.outcome)} this run</td></tr>"]
    for r in reversed(rows):
        seen = (_badge(r["outcome"]) + " this run: " + esc(r["summary"])) if \
            r.get("on_this_run") else esc(r.get("recorded") or "not recomputed")
        body.append(f"<tr><td>v{r['version']} ({esc(r['set_on'][:10])}, "
                    f"{esc(r['commit'][:10])})</td><td>{esc(r['criterion'])}</td>"
                    f"<td>{seen}</td></tr>")
    change = f" Changed: {esc(rec['change'])}." if rec.get("change") else ""
    if rec.get("recorded"):
        change += f" Recorded: {esc(rec['recorded'])}."
    return (f"<details class='versions'><summary>Preregistered: version {rec['version']} "
            f"(set {esc(rec['set_on'][:10])}, commit {esc(rec['commit'][:10])}); "
            f"{len(rows)} earlier version(s)</summary><p class='meta'>Thresholds: "
            f"{esc(values)}.{change}</p><table><tr><th>version</th><th>criterion</th>"
            f"<th>outcome</th></tr>{''.join(body)}</table></details>")


class _Seen:
    """Paragraphs already shown: the first time a text appears it is shown in full, later
    times as a link to where it was (so no paragraph repeats on the page)."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[str, str]] = {}

    def show(self, text: str, anchor: str, label: str, full: str, later: str) -> str:
        """``full`` the first time ``text`` is seen (``anchor``/``label`` name where), later
        ``later`` (already HTML) with ``{link}`` replaced by a link to the first place."""
        key = " ".join(text.split())
        if key not in self.first:
            self.first[key] = (anchor, label)
            return full
        a, lab = self.first[key]
        link = f"<a href='#{html.escape(a)}'>{html.escape(lab)}</a>"
        return f"<p class='meta'>{later.format(link=link)}</p>"


def _counts_html(c: dict[str, int]) -> str:
    """The counts of :func:`~asam_theory.report.summary.counts`, each in its outcome's
    colour."""
    return (f"<span class='holds'>{c['holds']} hold</span>, "
            f"<span class='fails'>{c['fails']} fail</span>, "
            f"<span class='inconclusive'>{c['inconclusive']} inconclusive</span>, "
            f"<span class='error'>{c['error']} error{'' if c['error'] == 1 else 's'}</span>")


def _glance_html(claims: list[Claim], verdicts: list[Verdict]) -> str:
    rows = glance(claims, verdicts)
    c_claims = counts([r.outcome for r in rows])
    c_checks = counts([v.outcome for v in verdicts])
    parts = ["<section id='glance'><h2>Verdict at a glance</h2>",
             f"<p><b>Claims:</b> {_counts_html(c_claims)} of {len(rows)}. <b>Checks:</b> "
             f"{_counts_html(c_checks)} of {len(verdicts)}.</p>",
             "<p class='meta'>Bars: a check's ratio on a scale from 0 to "
             f"{BAR_CAP:g}, the tick marks 1; each check declares what its ratio means: "
             "<b>≤1</b> measured/bound, the bound holds left of the tick; <b>≥1</b> "
             "measured/threshold, it holds right of the tick; <b>≈1</b> measured/target, a dot "
             "that holds inside the shaded tolerance. The colour is the outcome: green holds, "
             "red fails, amber inconclusive (the check's precondition was not met, so it says "
             "nothing either way), purple error (the check raised: it is broken and decided "
             "nothing; its traceback is under it). A claim's bar is that of the check that "
             "decides its outcome.</p>",
             "<table class='glance'><tr><th>claim</th><th>outcome</th><th>deciding ratio</th>"
             "<th>check</th><th>method</th><th>check outcome</th><th>ratio</th>"
             "<th>time</th></tr>"]
    for r in rows:
        vs = r.verdicts or (None,)
        cid = html.escape(r.claim.id)
        for k, v in enumerate(vs):
            cells = []
            if k == 0:
                n = len(vs)
                cells.append(f"<td rowspan='{n}'><a href='#{cid}'>{cid}</a></td>"
                             f"<td rowspan='{n}'>{_badge(r.outcome)}</td>"
                             f"<td rowspan='{n}' class='nowrap'>{_verdict_bar(r.worst)}</td>")
            if v is None:
                cells.append("<td colspan='5'>no checks run</td>")
            else:
                vid = html.escape(v.id)
                cells.append(f"<td><a href='#{vid}'>{html.escape(v.check)}</a></td>"
                             f"<td>{html.escape(METHOD_LABEL.get(v.method, v.method))}</td>"
                             f"<td>{_badge(v.outcome)}</td>"
                             f"<td class='nowrap'>{_verdict_bar(v)}</td>"
                             f"<td>{v.seconds:.1f} s</td>")
            parts.append(f"<tr>{''.join(cells)}</tr>")
    parts.append("</table></section>")
    return "".join(parts)


def _contents_html(claims: list[Claim], verdicts: list[Verdict],
                   proofs: list[tuple[str, str]] | None, conv: MathConverter) -> str:
    by_claim: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_claim.setdefault(v.claim_id, []).append(v)
    items = []
    for c in claims:
        cid = html.escape(c.id)
        sub = "".join(f"<li><a href='#{html.escape(v.id)}'>{html.escape(v.check)}</a></li>"
                      for v in by_claim.get(c.id, []))
        items.append(f"<li><a href='#{cid}'>{cid}</a> — {conv.inline(c.title)}"
                     f"{f'<ol>{sub}</ol>' if sub else ''}</li>")
    parts = ["<nav id='contents'><h2>Contents</h2><ol>",
             "<li><a href='#glance'>Verdict at a glance</a></li>",
             f"<li>Claims<ol>{''.join(items)}</ol></li>"]
    if proofs is not None:
        sub = "".join(f"<li><a href='#proof-{html.escape(pid)}'>{conv.inline(title)}</a></li>"
                      for pid, title in proofs)
        parts.append(f"<li><a href='#proofs'>Machine-checked proofs</a>"
                     f"{f'<ol>{sub}</ol>' if sub else ''}</li>")
    parts.append("</ol></nav>")
    return "".join(parts)


def _proofs_html(markdown_text: str, proofs: list[tuple[str, str]] | None,
                 conv: MathConverter) -> tuple[str, list[tuple[str, str]]]:
    """The proofs' Markdown as HTML, its leading ``# …`` title dropped (the section has one)
    and every ``##`` proof heading turned into an ``<h3 id='proof-<id>'>``; returns the HTML
    and the ``(id, title)`` pairs of the anchors made (ids from ``proofs`` when it lists one
    per heading in order, else ``1, 2, …``)."""
    body = conv.markdown(re.sub(r"\A\s*# [^\n]*\n", "", markdown_text))
    heads = re.findall(r"<h2>(.*?)</h2>", body, re.S)
    ids = [pid for pid, _ in proofs] if proofs and len(proofs) == len(heads) else \
        [str(k + 1) for k in range(len(heads))]
    anchors: list[tuple[str, str]] = []
    it = iter(ids)

    def repl(m: re.Match) -> str:
        pid = next(it)
        anchors.append((pid, html.unescape(re.sub(r"<[^>]+>", "", m.group(1)))))
        return f"<h3 id='proof-{html.escape(pid)}'>{m.group(1)}</h3>"

    return re.sub(r"<h2>(.*?)</h2>", repl, body, flags=re.S), anchors


def write_report(out: str | Path, claims: list[Claim], verdicts: list[Verdict], *,
                 mode: str, command: str = "", proofs_markdown: str | None = None,
                 proofs_summary: dict | None = None, log=None) -> dict:
    """Write ``verdicts.json``, ``figures/*.png`` and ``index.html`` into ``out``.

    Returns ``{"index", "verdicts", "figures", "figure_errors", "math_converted",
    "math_failed"}``.  A plot that raises is shown as an error in the HTML and listed in
    ``figure_errors``, never aborting the report; a formula that does not convert to MathML
    is shown as its TeX source in ``<code>``, listed in ``math_failed`` and written to
    ``log`` (default stderr).  ``proofs_summary`` may carry ``steps_checked``,
    ``steps_failed``, ``steps_unchecked`` and ``proofs`` (a list of ``{"id", "title"}``).
    """
    log = sys.stderr if log is None else log
    out = Path(out)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    verdicts_path = out / "verdicts.json"
    verdicts_path.write_text(json.dumps([v.to_json() for v in verdicts], indent=1))
    conv = MathConverter()

    by_claim: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_claim.setdefault(v.claim_id, []).append(v)
    outcome_of = {r.claim.id: r.outcome for r in glance(claims, verdicts)}
    figures: list[Path] = []
    figure_errors: list[str] = []

    proofs_body = proof_anchors = None
    if proofs_markdown is not None:
        listed = None
        if proofs_summary is not None and "proofs" in proofs_summary:
            listed = [(str(p["id"]), str(p["title"])) for p in proofs_summary["proofs"]]
        proofs_body, proof_anchors = _proofs_html(proofs_markdown, listed, conv)

    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             "<title>asam-theory verify</title>"
             f"<style>{_CSS}</style></head><body>",
             "<h1>asam-theory — verification report</h1>",
             f"<p class='meta'>asam-theory {__version__} · mode <b>{html.escape(mode)}</b> · "
             f"{_dt.datetime.now().isoformat(timespec='seconds')} · "
             f"<code>{html.escape(command)}</code></p>",
             _glance_html(claims, verdicts),
             _contents_html(claims, verdicts, proof_anchors, conv)]
    seen = _Seen()
    for c in claims:
        vs = by_claim.get(c.id, [])
        outcome = outcome_of[c.id]
        checks = {ch.name: ch for ch in c.checks}
        cid = html.escape(c.id)
        parts.append(f"<section class='claim' id='{cid}' data-claim-id='{cid}'>"
                     f"<h2>{cid}: {conv.inline(c.title)}{_badge(outcome)}</h2>")
        paras = [x for x in re.split(r"\n\s*\n", c.statement) if x.strip()]
        shown = []
        for k, para in enumerate(paras):
            pid = f"{c.id}-p{k + 1}"
            words = " ".join(re.sub(r"\$[^$]*\$", "…", para).split()[:4])
            shown.append(seen.show(para, pid, c.id, f"<div id='{html.escape(pid)}'>"
                                   f"{conv.markdown(para)}</div>",
                                   f"{html.escape(words)} … — stated under {{link}}."))
        parts.append(f"<div class='statement'>{''.join(shown)}</div>")
        parts.append(f"<p class='meta'>Source: {conv.inline(c.source)}</p>")
        for v in vs:
            ch = checks.get(v.check)
            vid = html.escape(v.id)
            parts.append(f"<div class='check' id='{vid}' data-verdict-id='{vid}' "
                         f"data-outcome='{v.outcome}'>"
                         f"<h3>{html.escape(v.check)} <small>"
                         f"({html.escape(METHOD_LABEL.get(v.method, v.method))})</small>"
                         f"{_badge(v.outcome)}</h3>")
            if ch is not None:
                parts.append(seen.show(ch.description, v.id, v.id,
                                       f"<p>{conv.inline(ch.description)}</p>",
                                       "Method: the same as {link}."))
            parts.append(f"<p>{conv.inline(v.summary)}</p>")
            parts.append(_measured_table(v, conv))
            parts.append(_ratio_line(v, conv))
            parts.append(_versions_html(v))
            if v.table:
                shown = min(len(v.table), TABLE_LIMIT)
                parts.append("<details><summary>measured against bound, per configuration"
                             f" ({len(v.table)} rows"
                             f"{'' if shown == len(v.table) else f', {shown} shown'})"
                             f"</summary>{_table(v.table, conv)}</details>")
            try:
                path = _figure(checks, v, fig_dir)
            except Exception as exc:  # noqa: BLE001 - a broken plot must not lose the report
                path = None
                figure_errors.append(f"{v.id}: {type(exc).__name__}: {exc}")
                parts.append(f"<p class='fails'>figure could not be drawn: "
                             f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</p>")
            if path is not None:
                figures.append(path)
                data = base64.b64encode(path.read_bytes()).decode()
                caption = (ch.caption if ch is not None and ch.caption else
                           (ch.description if ch is not None else v.id))
                cap_html = seen.show(caption, f"fig-{v.id}", f"{v.id}'s figure",
                                     conv.inline(caption),
                                     "Read this figure like {link}: its caption says what to "
                                     "look for and which way is good.")
                parts.append(f"<figure id='fig-{vid}'><img alt='figure of {vid}' "
                             f"src='data:image/png;base64,{data}' "
                             f"data-file='figures/{html.escape(path.name)}'>"
                             f"<figcaption>{cap_html}</figcaption></figure>")
            if v.error:
                parts.append(f"<pre class='error'>{html.escape(v.error)}</pre>")
            parts.append("</div>")
        parts.append("</section>")
    if proofs_body is not None:
        counts_html = ""
        # the proofs' Markdown may open with the same counts: say them once
        if proofs_summary is not None and "steps_checked" in proofs_summary and \
                "steps checked" not in proofs_markdown.split("\n## ", 1)[0]:
            extra = ""
            if "steps_definitional" in proofs_summary:
                extra = (f"; apart from them {proofs_summary['steps_definitional']} "
                         f"definitional steps and {proofs_summary['premises']} premises")
            counts_html = (f"<p>{proofs_summary['steps_checked']} distinct steps checked, "
                           f"{proofs_summary['steps_failed']} failed, "
                           f"{proofs_summary['steps_unchecked']} unchecked{extra}.</p>")
        parts.append(f"<section class='proofs' id='proofs'><h2>Machine-checked proofs</h2>"
                     f"{counts_html}{proofs_body}</section>")
    parts.append("</body></html>")
    index = out / "index.html"
    index.write_text("\n".join(parts))
    for src, why in conv.failed:
        print(f"warning: formula not converted to MathML, shown as TeX: {src} ({why})",
              file=log)
    return {"index": index, "verdicts": verdicts_path, "figures": figures,
            "figure_errors": figure_errors, "math_converted": conv.converted,
            "math_failed": list(conv.failed)}


__all__ = ["VERDICTS_SCHEMA", "md_to_html", "write_report"]
