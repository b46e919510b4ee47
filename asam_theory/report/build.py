"""Write the verify report.

``DIR/verdicts.json`` — a JSON list, one object per check (schema :data:`VERDICTS_SCHEMA`);
``DIR/figures/<id>.png`` — one figure per check that has figure data;
``DIR/index.html`` — self-contained (figures embedded as data URIs, no external assets): for
each claim its statement, source, verdict, a table of measured against bound, and figures,
followed by the machine-checked proofs.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import re
from pathlib import Path

import markdown as _md

from asam_theory import __version__
from asam_theory.claims.base import Claim, Verdict

VERDICTS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["id", "claim_id", "check", "method", "passed", "measured", "bound",
                     "ratio"],
        "properties": {
            "id": {"type": "string", "description": "'<claim id>.<check name>'"},
            "claim_id": {"type": "string"},
            "check": {"type": "string"},
            "method": {"type": "string",
                       "enum": ["symbolic", "exact", "monte_carlo", "threaded", "numerical",
                                "pep", "real_data"]},
            "passed": {"type": "boolean"},
            "measured": {"description": "the measured value (number, list or object)"},
            "bound": {"description": "what it is held to (number, list, object or null)"},
            "ratio": {"type": ["number", "null"],
                      "description": "measured/bound of the worst configuration; <= 1 holds"},
            "summary": {"type": "string"},
            "config": {"type": "object"},
            "table": {"type": "array", "items": {"type": "object"}},
            "figure": {"type": ["object", "null"]},
            "error": {"type": ["string", "null"]},
            "seconds": {"type": "number"},
        },
    },
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{margin-bottom:.2em} .meta{color:#555}
.claim{border:1px solid #ddd;border-radius:8px;padding:1em 1.2em;margin:1.4em 0}
.pass{color:#0a7d32;font-weight:600} .fail{color:#c0182b;font-weight:600}
.badge{display:inline-block;padding:.1em .6em;border-radius:1em;font-size:.85em;margin-left:.5em}
.badge.pass{background:#e3f6e8} .badge.fail{background:#fde4e6}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right} th{background:#f5f5f7}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.check{margin:1em 0 1em 1em;padding-left:1em;border-left:3px solid #eee}
.statement{background:#fafafa;padding:.4em .8em;border-radius:6px}
.proofs .unchecked,.proofs .failed{color:#c0182b}
.math{font-family:ui-monospace,monospace;color:#333}
"""


_MATH = re.compile(r"(\$\$.+?\$\$|\$[^$\n]+?\$)", re.S)


def md_to_html(text: str) -> str:
    """Markdown to HTML with LaTeX math (``$…$``, ``$$…$$``) kept verbatim (not parsed as
    emphasis), wrapped in ``<span class="math">`` for a reader or a later MathJax pass."""
    spans: list[str] = []

    def keep(m: re.Match) -> str:
        spans.append(m.group(0))
        return f"MATHSPAN{len(spans) - 1}END"

    body = _md.markdown(_MATH.sub(keep, text), extensions=["tables"])
    return re.sub(r"MATHSPAN(\d+)END",
                  lambda m: f"<span class='math'>{html.escape(spans[int(m.group(1))])}</span>",
                  body)


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, dict)):
        s = json.dumps(v)
        return s if len(s) <= 80 else s[:77] + "…"
    return str(v)


def _table(rows: list[dict], limit: int = 60) -> str:
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = []
    for r in rows[:limit]:
        cells = "".join(f"<td>{html.escape(_fmt(r.get(k)))}</td>" for k in keys)
        body.append(f"<tr>{cells}</tr>")
    more = f"<p class='meta'>{len(rows) - limit} more rows in verdicts.json</p>" if \
        len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


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
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def write_report(out: str | Path, claims: list[Claim], verdicts: list[Verdict], *,
                 mode: str, command: str = "", proofs_markdown: str | None = None,
                 proofs_summary: dict | None = None) -> dict:
    """Write ``verdicts.json``, ``figures/*.png`` and ``index.html`` into ``out``; returns
    ``{"index", "verdicts", "figures", "figure_errors"}``; a plot that raises is shown as an
    error in the HTML and listed in ``figure_errors``, never aborting the report."""
    out = Path(out)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    verdicts_path = out / "verdicts.json"
    verdicts_path.write_text(json.dumps([v.to_json() for v in verdicts], indent=1))

    by_claim: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_claim.setdefault(v.claim_id, []).append(v)
    n_pass = sum(all(v.passed for v in by_claim.get(c.id, [])) for c in claims)
    figures: list[Path] = []
    figure_errors: list[str] = []
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>asam-theory verify"
             f"</title><style>{_CSS}</style></head><body>",
             "<h1>asam-theory — verification report</h1>",
             f"<p class='meta'>asam-theory {__version__} · mode <b>{html.escape(mode)}</b> · "
             f"{_dt.datetime.now().isoformat(timespec='seconds')} · "
             f"<code>{html.escape(command)}</code></p>",
             f"<p><b>{n_pass} of {len(claims)} claims hold</b> "
             f"({sum(v.passed for v in verdicts)} of {len(verdicts)} checks passed).</p>",
             "<ul>"]
    for c in claims:
        ok = all(v.passed for v in by_claim.get(c.id, []))
        parts.append(f"<li><a href='#{html.escape(c.id)}'>{html.escape(c.id)}</a> — "
                     f"{html.escape(c.title)} <span class='{'pass' if ok else 'fail'}'>"
                     f"{'holds' if ok else 'FAILS'}</span></li>")
    parts.append("</ul>")
    for c in claims:
        vs = by_claim.get(c.id, [])
        ok = all(v.passed for v in vs)
        checks = {ch.name: ch for ch in c.checks}
        parts.append(f"<section class='claim' id='{html.escape(c.id)}' data-claim-id="
                     f"'{html.escape(c.id)}'><h2>{html.escape(c.id)}: {html.escape(c.title)}"
                     f"<span class='badge {'pass' if ok else 'fail'}'>"
                     f"{'holds' if ok else 'fails'}</span></h2>")
        parts.append(f"<div class='statement'>{md_to_html(c.statement)}</div>")
        parts.append(f"<p class='meta'>Source: {html.escape(c.source)}</p>")
        for v in vs:
            ch = checks.get(v.check)
            parts.append(f"<div class='check' data-verdict-id='{html.escape(v.id)}'>"
                         f"<h3>{html.escape(v.check)} <small>({html.escape(v.method)})</small>"
                         f"<span class='badge {'pass' if v.passed else 'fail'}'>"
                         f"{'passed' if v.passed else 'failed'}</span></h3>")
            if ch is not None:
                parts.append(f"<p>{html.escape(ch.description)}</p>")
            parts.append(f"<p>{html.escape(v.summary)}</p>")
            parts.append(_table([{"measured": v.measured, "bound": v.bound, "ratio": v.ratio,
                                  "seconds": round(v.seconds, 2)}]))
            if v.table:
                parts.append("<details><summary>measured against bound, per configuration"
                             f" ({len(v.table)} rows)</summary>{_table(v.table)}</details>")
            try:
                path = _figure(checks, v, fig_dir)
            except Exception as exc:  # noqa: BLE001 - a broken plot must not lose the report
                path = None
                figure_errors.append(f"{v.id}: {type(exc).__name__}: {exc}")
                parts.append(f"<p class='fail'>figure could not be drawn: "
                             f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</p>")
            if path is not None:
                figures.append(path)
                data = base64.b64encode(path.read_bytes()).decode()
                parts.append(f"<img alt='{html.escape(v.id)}' src='data:image/png;base64,"
                             f"{data}' data-file='figures/{html.escape(path.name)}'>")
            if v.error:
                parts.append(f"<pre class='fail'>{html.escape(v.error)}</pre>")
            parts.append("</div>")
        parts.append("</section>")
    if proofs_markdown is not None:
        counts = ""
        if proofs_summary is not None:
            counts = (f"<p>{proofs_summary['steps_checked']} steps checked, "
                      f"{proofs_summary['steps_failed']} failed, "
                      f"{proofs_summary['steps_unchecked']} unchecked.</p>")
        parts.append(f"<section class='proofs' id='proofs'><h2>Machine-checked proofs</h2>"
                     f"{counts}{md_to_html(proofs_markdown)}"
                     f"</section>")
    parts.append("</body></html>")
    index = out / "index.html"
    index.write_text("\n".join(parts))
    return {"index": index, "verdicts": verdicts_path, "figures": figures,
            "figure_errors": figure_errors}
