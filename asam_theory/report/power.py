"""Write the power report of ``asam-theory power``.

``DIR/power.json`` — the payload of :func:`asam_theory.mutants.power.run_power` as is;
``DIR/figures/power_matrix.png`` — the kill matrix as a heat map;
``DIR/index.html`` — one self-contained file in the verify report's style (figure embedded as
a data URI, no script).  From the top: the targets and the problems (every target missed), the
kill matrix as a table (rows: mutants; columns: every check or test some mutant names; cell:
the fraction of repeats in which that check killed that mutant, blank where the mutant does
not name it), the heat map, then the false-alarm table (each check on the correct code).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any

from asam_theory import __version__
from asam_theory.report.build import _CSS

_POWER_CSS = """
table.matrix td{text-align:center;min-width:2.6em} table.matrix th.col{writing-mode:vertical-rl;
transform:rotate(180deg);text-align:left;white-space:nowrap;font-weight:500}
table.matrix td.none{background:#f5f5f7;color:#bbb} table.matrix td.row{text-align:left}
ul.problems li{margin:.2em 0} .ok{color:#0a7d32;font-weight:600}
"""


def kill_matrix(payload: dict[str, Any]) -> tuple[list[str], list[str], list[list[float | None]]]:
    """``(mutant ids, column ids, rates)``: the columns are every check or test named by some
    mutant, in first-named order; ``rates[i][j]`` is mutant i's kill rate by column j, or
    ``None`` where the mutant does not name that column (or it was not run)."""
    rows = [m["id"] for m in payload["mutants"]]
    cols = list(dict.fromkeys(t for m in payload["mutants"] for t in m["per_check"]))
    rates = [[m["per_check"].get(c) for c in cols] for m in payload["mutants"]]
    return rows, cols, rates


def _colour(rate: float) -> str:
    """Red (0) through amber (0.5) to green (1), light enough to read text on."""
    r, g = (253, int(228 + (243 - 228) * 2 * rate)) if rate < 0.5 else \
        (int(253 - (253 - 212) * 2 * (rate - 0.5)), 243)
    b = 214 if rate < 0.5 else int(214 + (221 - 214) * 2 * (rate - 0.5))
    return f"rgb({r},{g},{b})"


def _rate(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def matrix_figure(payload: dict[str, Any], path: Path) -> Path | None:
    """Draw the kill matrix as a heat map into ``path`` (``None`` if it is empty)."""
    rows, cols, rates = kill_matrix(payload)
    if not rows or not cols:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    data = np.array([[np.nan if v is None else v for v in r] for r in rates], dtype=float)
    labels = [c if len(c) <= 40 else c[:18] + "…" + c[-21:] for c in cols]
    longest = max(len(c) for c in labels)
    fig, ax = plt.subplots(figsize=(min(6.4 + 0.32 * len(cols), 30.0),
                                    min(1.8 + 0.3 * len(rows) + 0.075 * longest, 60.0)),
                           dpi=100)
    try:
        cmap = plt.get_cmap("RdYlGn").with_extremes(bad="#eeeeee")
        im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0.0, vmax=1.0,
                       aspect="auto", interpolation="nearest")
        ax.set_xticks(range(len(cols)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(rows)), rows, fontsize=7)
        if len(rows) * len(cols) <= 900:
            for i in range(len(rows)):
                for j in range(len(cols)):
                    if not np.isnan(data[i, j]):
                        ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center",
                                fontsize=6)
        fig.colorbar(im, ax=ax, label="kill rate", shrink=0.6)
        ax.set_title(f"kill rate of each mutant by each check it names\n"
                     f"({payload['repeats']} repeats, {payload['mode']} size; grey: not named)",
                     fontsize=9)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def _matrix_html(payload: dict[str, Any]) -> str:
    rows, cols, rates = kill_matrix(payload)
    if not rows:
        return "<p class='fails'>No mutant was run.</p>"
    by_id = {m["id"]: m for m in payload["mutants"]}
    head = "".join(f"<th class='col' title='{html.escape(c)}'>{html.escape(c)}</th>"
                   for c in cols)
    body = []
    for mid, rrow in zip(rows, rates, strict=True):
        m = by_id[mid]
        cells = []
        for c, v in zip(cols, rrow, strict=True):
            if v is None:
                cells.append("<td class='none'>·</td>")
            else:
                cells.append(f"<td style='background:{_colour(v)}' title='{html.escape(mid)} "
                             f"× {html.escape(c)}'>{v:.2f}</td>")
        best = m["kill_rate"]
        best_cell = ("<td class='none'>not run</td>" if best is None else
                     f"<td style='background:{_colour(best)}'><b>{best:.2f}</b></td>")
        body.append(f"<tr id='mutant-{html.escape(mid)}'><td class='row' "
                    f"title='{html.escape(m['breaks'])}'><code>{html.escape(mid)}</code> "
                    f"<small>({html.escape(m['family'])})</small></td>{best_cell}"
                    f"{''.join(cells)}</tr>")
    return (f"<table class='matrix'><tr><th>mutant</th><th class='col'>best</th>{head}</tr>"
            f"{''.join(body)}</table>")


def _false_alarm_html(payload: dict[str, Any]) -> str:
    fa_max = payload["targets"]["false_alarm_rate_max"]
    rows = []
    for c in payload["checks"]:
        fa = c["false_alarm_rate"]
        cls = "" if fa is None else ("holds" if fa <= fa_max else "fails")
        kills_cls = "holds" if c["kills"] >= payload["targets"]["kills_min"] else "fails"
        outcomes = ", ".join(c["outcomes"]) if len(c["outcomes"]) <= 10 else \
            ", ".join(f"{o} × {c['outcomes'].count(o)}" for o in dict.fromkeys(c["outcomes"]))
        secs = "–" if c["seconds"] is None else f"{c['seconds']:.2f}"
        rows.append(f"<tr><td class='row'><code>{html.escape(c['id'])}</code></td>"
                    f"<td>{html.escape(c['method'])}</td>"
                    f"<td class='{cls}'>{_rate(fa)}</td><td class='{kills_cls}'>{c['kills']}"
                    f"</td><td>{secs}</td>"
                    f"<td style='text-align:left'>{html.escape(outcomes)}</td></tr>")
    return ("<table class='glance'><tr><th>check</th><th>method</th><th>false-alarm rate</th>"
            "<th>mutants killed</th><th>seconds per run</th><th>outcomes on the correct code"
            f"</th></tr>{''.join(rows)}</table>")


def write_power_report(out: str | Path, payload: dict[str, Any], *,
                       command: str = "") -> dict[str, Any]:
    """Write ``power.json``, ``figures/power_matrix.png`` and ``index.html`` into ``out``;
    returns ``{"index", "json", "figure"}`` (``figure`` is ``None`` for an empty matrix)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "power.json"
    json_path.write_text(json.dumps(payload, indent=1))
    fig = matrix_figure(payload, out / "figures" / "power_matrix.png")
    tg = payload["targets"]
    n_mut = len(payload["mutants"])
    killed = sum(1 for m in payload["mutants"] if m["kill_rate"])
    if tg["killed_at_least_once"]:
        kill_target = "every mutant killed at least once (quick size)"
    else:
        kill_target = f"every mutant's kill rate ≥ {tg['kill_rate_min']} by one of its checks"
    problems = payload["problems"]
    if problems:
        items = "".join(f"<li><b>{html.escape(p['kind'])}</b> "
                        f"<code>{html.escape(p['id'])}</code>: {html.escape(p['message'])}</li>"
                        for p in problems)
        problems_html = (f"<h2 class='fails'>{len(problems)} target(s) missed</h2>"
                         f"<ul class='problems'>{items}</ul>")
    else:
        problems_html = "<h2 class='ok'>Every target met</h2>"
    repeats = payload["repeats"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>asam-theory power</title><style>{_CSS}{_POWER_CSS}</style></head><body>",
        "<h1>asam-theory — power: can every verdict fail?</h1>",
        f"<p class='meta'>asam-theory {__version__} · mode <b>{html.escape(payload['mode'])}</b>"
        f" · {repeats} repeats (master seeds {payload['seed']}…{payload['seed'] + repeats - 1})"
        f" · {_dt.datetime.now().isoformat(timespec='seconds')} · "
        f"<code>{html.escape(command)}</code> · {payload.get('seconds') or 0:.0f} s</p>",
        "<p>Each mutant is a deliberately wrong variant of the code. Every check it names ran "
        f"{repeats} times with the mutant active; a check <i>kills</i> it in a repeat when it "
        "reports <span class='fails'>fails</span>. The same checks ran "
        f"{repeats} times on the correct code: a failure there is a false alarm. Tests named "
        "by a mutant ran once with <code>ASAM_MUTANT</code> set (a test failure kills it). "
        f"With {repeats} repeats the smallest non-zero rate is 1/{repeats} = "
        f"{1 / repeats:.3g}.</p>",
        f"<p><b>Targets:</b> {html.escape(kill_target)}; every check's false-alarm rate ≤ "
        f"{tg['false_alarm_rate_max']}; every check kills at least {tg['kills_min']} mutant. "
        f"<b>Killed at least once:</b> {killed} of {n_mut} mutants.</p>",
        problems_html,
        "<h2 id='matrix'>Kill matrix</h2>",
        "<p>Rows: mutants (hover for what each breaks); <i>best</i>: its kill rate, the best "
        "over its checks and tests; other columns: each check or test some mutant names; "
        "cell: the fraction of repeats in which that check killed that mutant (· where the "
        "mutant does not name the check).</p>",
        _matrix_html(payload),
    ]
    if fig is not None:
        data = base64.b64encode(fig.read_bytes()).decode()
        parts.append("<figure id='fig-power-matrix'><img alt='kill matrix heat map' "
                     f"src='data:image/png;base64,{data}' data-file='figures/power_matrix.png'>"
                     "<figcaption>The kill matrix as a heat map: green cells are checks that "
                     "kill the mutant in every repeat, red cells checks it survives; every row "
                     "needs one green cell.</figcaption></figure>")
    parts += ["<h2 id='false-alarms'>Checks on the correct code</h2>",
              "<p>False-alarm rate: the fraction of runs on the correct code that report "
              "<i>fails</i> (tests: one run). Mutants killed: how many mutants the check "
              "killed at least once.</p>",
              _false_alarm_html(payload)]
    errored = [(m["id"], e) for m in payload["mutants"] for e in m.get("errors", [])]
    if errored:
        rows = "".join(f"<tr><td class='row'><code>{html.escape(mid)}</code></td>"
                       f"<td class='row'><code>{html.escape(str(e['target']))}</code></td>"
                       f"<td>{html.escape(str(e['seed']))}</td>"
                       f"<td>{html.escape(e['outcome'])}</td>"
                       f"<td style='text-align:left'>{html.escape(str(e['error']))}</td></tr>"
                       for mid, e in errored[:200])
        parts.append(f"<details><summary>{len(errored)} run(s) with an error under a mutant"
                     "</summary><table><tr><th>mutant</th><th>target</th><th>seed</th>"
                     f"<th>outcome</th><th>error</th></tr>{rows}</table></details>")
    parts.append("</body></html>")
    index = out / "index.html"
    index.write_text("\n".join(parts))
    return {"index": index, "json": json_path, "figure": fig}


__all__ = ["kill_matrix", "matrix_figure", "write_power_report"]
