"""Write the power report of ``asam-theory power``.

``DIR/power.json`` — the payload of :func:`asam_theory.mutants.power.run_power` as is;
``DIR/figures/power_matrix.png`` — the kill matrix as a heat map;
``DIR/index.html`` — one self-contained file in the verify report's style (figure embedded as
a data URI, no script).  From the top: the targets and the problems (every target missed), the
kill matrix as a table (rows: mutants; columns: every check or test some mutant names; cell:
the fraction of repeats in which that check killed that mutant, blank where the mutant does
not name it), the heat map, the kill rates with their 95 % intervals (each mutant's best
beside every per-check rate), then the false-alarm table (each check on the correct code:
false alarms and errors apart, with intervals);
:func:`power_markdown` — the same tables as a Markdown page (``asam-theory power --markdown``;
the committed ``docs/power.md``).
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


def _ci(v: float | None, ci: list | None) -> str:
    """``0.95 [0.75, 1.00]``; ``–`` without a rate."""
    if v is None:
        return "–"
    return f"{v:.2f}" if not ci else f"{v:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def _rule(detail: dict | None) -> str:
    """How a cell's rate was counted: ``k/n fails`` (plus errors), or for an empirical check
    the flips off the usual outcome, net of the correct code's flip rate."""
    if not detail or "kills" not in detail:
        return ""
    err = f", {detail['errors']} error{'s' if detail['errors'] != 1 else ''}" \
        if detail.get("errors") else ""
    if detail["rule"] == "flip":
        return (f"{detail['kills']}/{detail['runs']} off “{detail['reference']}”, correct "
                f"code {detail['correct_flip_rate']:.2f}, Fisher p {detail['fisher_p']:.3g}"
                f"{err}")
    return f"{detail['kills']}/{detail['runs']} fail{err}"


def kill_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per mutant: ``id``, ``best`` (its kill rate with interval, as text),
    ``best_by``, and ``cells``: ``(target, rate with interval, how counted)`` for every target
    it names — the per-check rates beside the best-of."""
    rows = []
    for m in payload["mutants"]:
        cis = m.get("per_check_ci", {})
        details = m.get("per_check_detail", {})
        cells = [(t, _ci(r, cis.get(t)), _rule(details.get(t)))
                 for t, r in m["per_check"].items()]
        rows.append({"id": m["id"], "family": m["family"], "breaks": m["breaks"],
                     "best": _ci(m["kill_rate"], m.get("kill_rate_ci")),
                     "best_by": m.get("best_by"), "kill_rate": m["kill_rate"],
                     "cells": cells})
    return rows


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
                ci = m.get("per_check_ci", {}).get(c)
                span = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
                cells.append(f"<td style='background:{_colour(v)}' title='{html.escape(mid)} "
                             f"× {html.escape(c)}: {v:.2f}{span}'>{v:.2f}</td>")
        best = m["kill_rate"]
        best_cell = ("<td class='none'>not run</td>" if best is None else
                     f"<td style='background:{_colour(best)}'><b>{best:.2f}</b></td>")
        body.append(f"<tr id='mutant-{html.escape(mid)}'><td class='row' "
                    f"title='{html.escape(m['breaks'])}'><code>{html.escape(mid)}</code> "
                    f"<small>({html.escape(m['family'])})</small></td>{best_cell}"
                    f"{''.join(cells)}</tr>")
    return (f"<table class='matrix'><tr><th>mutant</th><th class='col'>best</th>{head}</tr>"
            f"{''.join(body)}</table>")


def _outcomes_text(outcomes: list[str]) -> str:
    return ", ".join(outcomes) if len(outcomes) <= 10 else \
        ", ".join(f"{o} × {outcomes.count(o)}" for o in dict.fromkeys(outcomes))


def check_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per check on the correct code, as text: ``id``, ``method``, ``rule`` (what a
    false alarm is: a *fails*, or for an empirical check an outcome other than its usual
    one), ``false_alarm`` (rate with interval), ``errors`` (``k/n``), ``kills``, ``seconds``,
    ``outcomes`` and the flags ``fa_ok``, ``errors_ok``, ``kills_ok``."""
    tg = payload["targets"]
    rows = []
    for c in payload["checks"]:
        n = len(c["outcomes"])
        n_err = c["outcomes"].count("error")
        fa = c["false_alarm_rate"]
        rows.append({
            "id": c["id"], "method": c["method"],
            "rule": f"≠ “{c['usual']}”" if c.get("empirical") else "fails",
            "false_alarm": _ci(fa, c.get("false_alarm_ci")),
            "fa_ok": None if fa is None else fa <= tg["false_alarm_rate_max"],
            "errors": f"{n_err}/{n}" if n else "–", "errors_ok": n_err == 0,
            "kills": c["kills"], "kills_ok": c["kills"] >= tg["kills_min"]
            or bool(c.get("undecided_at_this_size")),
            "seconds": "–" if c["seconds"] is None else f"{c['seconds']:.2f}",
            "outcomes": _outcomes_text(c["outcomes"])})
    return rows


def _false_alarm_html(payload: dict[str, Any]) -> str:
    def cls(ok: bool | None) -> str:
        return "" if ok is None else ("holds" if ok else "fails")

    rows = []
    for r in check_rows(payload):
        rows.append(f"<tr><td class='row'><code>{html.escape(r['id'])}</code></td>"
                    f"<td>{html.escape(r['method'])}</td><td>{html.escape(r['rule'])}</td>"
                    f"<td class='{cls(r['fa_ok'])}'>{html.escape(r['false_alarm'])}</td>"
                    f"<td class='{'' if r['errors_ok'] else 'error'}'>{r['errors']}</td>"
                    f"<td class='{cls(r['kills_ok'])}'>{r['kills']}</td><td>{r['seconds']}</td>"
                    f"<td style='text-align:left'>{html.escape(r['outcomes'])}</td></tr>")
    return ("<table class='glance'><tr><th>check</th><th>method</th><th>false alarm</th>"
            "<th>false-alarm rate [95 % CI]</th><th>errors</th><th>mutants killed</th>"
            "<th>seconds per run</th><th>outcomes on the correct code</th></tr>"
            f"{''.join(rows)}</table>")


def _kill_rates_html(payload: dict[str, Any]) -> str:
    rows = []
    for r in kill_rows(payload):
        cells = "<br>".join(f"<code>{html.escape(t)}</code> {html.escape(v)}"
                            + (f" <small>({html.escape(how)})</small>" if how else "")
                            for t, v, how in r["cells"])
        ok = r["kill_rate"] is not None and r["kill_rate"] >= (
            payload["targets"]["kill_rate_min"] or 1.0 / payload["repeats"])
        rows.append(f"<tr><td class='row'><code>{html.escape(r['id'])}</code></td>"
                    f"<td class='{'holds' if ok else 'fails'}'>{html.escape(r['best'])}</td>"
                    f"<td style='text-align:left'>{cells}</td></tr>")
    return ("<table class='glance'><tr><th>mutant</th><th>best kill rate [95 % CI]</th>"
            f"<th>per check: kill rate [95 % CI] (how counted)</th></tr>{''.join(rows)}"
            "</table>")


def _md(text: Any) -> str:
    """A Markdown table cell: pipes escaped, no line breaks."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def headline(payload: dict[str, Any]) -> dict[str, Any]:
    """The numbers a reader looks for first: mutants in all, killed at the target rate (the
    target at this size: 0.95, or at least once at quick size), killed at least once, the
    survivors; checks in all, those over the false-alarm target, those with errors on the
    correct code; runs with an error under a mutant; the problems."""
    tg = payload["targets"]
    goal = tg["kill_rate_min"]
    muts = payload["mutants"]
    rated = [m for m in muts if m["kill_rate"] is not None]
    at_target = [m["id"] for m in rated if m["kill_rate"] >= (goal or 1.0 / payload["repeats"])]
    checks = payload["checks"]
    return {
        "mutants": len(muts), "kill_rate_target": goal,
        "killed_at_target": len(at_target),
        "killed_at_least_once": sum(1 for m in rated if m["kill_rate"] > 0),
        "below_target": [m["id"] for m in rated if m["id"] not in at_target],
        "not_measured": [m["id"] for m in muts if m["kill_rate"] is None],
        "checks": len(checks),
        "false_alarms": [c["id"] for c in checks if c["false_alarm_rate"] is not None
                         and c["false_alarm_rate"] > tg["false_alarm_rate_max"]],
        "checks_with_errors": [c["id"] for c in checks if "error" in c["outcomes"]],
        "error_runs_under_mutants": sum(1 for m in muts for e in m.get("errors", [])
                                        if e["outcome"] == "error"),
        "problems": len(payload["problems"]),
    }


def power_markdown(payload: dict[str, Any]) -> str:
    """The power run as a Markdown page: how it was run (``payload["command"]``, ``date``,
    ``machine``, ``seconds`` and, where known, ``commit``), the headline numbers, the kill
    matrix with 95 % intervals (each mutant's best beside every per-check rate), the checks on
    the correct code (false alarms and errors apart) and the problems."""
    tg = payload["targets"]
    h = headline(payload)
    secs = payload.get("seconds") or 0.0
    goal = tg["kill_rate_min"]
    goal_text = (f"kill rate ≥ {goal}" if goal is not None else "killed at least once")
    lines = [
        "# Power: can every verdict fail?",
        "",
        "Generated by `asam_theory.report.power.power_markdown` from the `power.json` of",
        "",
        f"    {payload.get('command') or 'asam-theory power'}",
        "",
        f"* date: {payload.get('date') or '–'}; wall time {secs / 3600:.2f} h "
        f"({secs:.0f} s); asam-theory {payload.get('version') or __version__}"
        + (f", commit `{payload['commit']}`" if payload.get("commit") else ""),
        f"* machine: {payload.get('machine') or '–'}",
        f"* size `{payload['mode']}`, R = {payload['repeats']} repeats, master seeds "
        f"{_seeds_text(payload)}; every interval an exact (Clopper–Pearson) "
        f"{100 * payload.get('confidence', 0.95):.0f} % interval",
        "",
        "A mutant is a deliberately wrong variant of the code "
        "(`asam_theory/mutants/`); every check it names ran R times with it active. A "
        "decided check kills it in a repeat when it reports *fails*; an empirical check "
        "(`Check.empirical`) when its outcome differs from the correct code's usual one, "
        "counted net of the correct code's own changes: κ = max(0, (k_m − k_c)/(1 − k_c)). "
        "A check that raises, a job that times out or dies, is an *error*: never a kill, "
        "never a false alarm (`asam_theory/mutants/power.py`, `asam_theory/mutants/rates.py`). "
        "A step-time part (HEADLINE's) is measured but not judged in a power run "
        "(`Settings.judge_time`): whether it is judged follows the machine's load, not the "
        "code.",
        "",
        "## Headline",
        "",
        f"* mutants: {h['mutants']}; {goal_text}: **{h['killed_at_target']}**"
        + (f"; killed at least once: {h['killed_at_least_once']}" if goal is not None else "")
        + (f"; below the target: {', '.join(f'`{i}`' for i in h['below_target'])}"
           if h["below_target"] else "")
        + (f"; not measured: {', '.join(f'`{i}`' for i in h['not_measured'])}"
           if h["not_measured"] else ""),
        f"* checks: {h['checks']}; false-alarm rate above {tg['false_alarm_rate_max']}: "
        f"**{len(h['false_alarms'])}**"
        + (f" ({', '.join(f'`{i}`' for i in h['false_alarms'])})" if h["false_alarms"] else "")
        + f"; with errors on the correct code: **{len(h['checks_with_errors'])}**"
        + (f" ({', '.join(f'`{i}`' for i in h['checks_with_errors'])})"
           if h["checks_with_errors"] else ""),
        f"* runs with an error under a mutant (not kills): **{h['error_runs_under_mutants']}**",
        f"* targets missed (problems): **{h['problems']}**",
        "",
        "## Kill matrix",
        "",
        "Per mutant its best kill rate and the check that reached it, beside the rate of "
        "every check it names (how it was counted in brackets: kills/runs; for an empirical "
        "check the flips off the usual outcome, the correct code's own flip rate and the "
        "one-sided Fisher p-value).",
        "",
        "| mutant | best [95 % CI] | by | per check: kill rate [95 % CI] (how counted) |",
        "|---|---|---|---|",
    ]
    for r in kill_rows(payload):
        cells = "<br>".join(f"`{t}` {v}" + (f" ({how})" if how else "")
                            for t, v, how in r["cells"])
        lines.append(f"| `{_md(r['id'])}` | {_md(r['best'])} | "
                     f"{'`' + _md(r['best_by']) + '`' if r['best_by'] else '–'} | "
                     f"{_md(cells)} |")
    lines += ["", "## Checks on the correct code", "",
              "False alarm: a *fails* (an empirical check: an outcome other than its usual "
              "one); errors: runs that raised or could not run (a broken check, not a false "
              f"alarm). Target: false-alarm rate ≤ {tg['false_alarm_rate_max']} and at least "
              f"{tg['kills_min']} mutant killed.", "",
              "| check | method | false alarm | rate [95 % CI] | errors | mutants killed | "
              "s/run |", "|---|---|---|---|---|---|---|"]
    for c in check_rows(payload):
        lines.append(f"| `{_md(c['id'])}` | {_md(c['method'])} | {_md(c['rule'])} | "
                     f"{_md(c['false_alarm'])} | {c['errors']} | {c['kills']} | "
                     f"{c['seconds']} |")
    lines += ["", "## Problems", ""]
    if payload["problems"]:
        lines += [f"* **{_md(p['kind'])}** `{_md(p['id'])}`: {_md(p['message'])}"
                  for p in payload["problems"]]
    else:
        lines.append("Every target met.")
    return "\n".join(lines) + "\n"


def write_power_markdown(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write :func:`power_markdown` to ``path`` (a ``.md`` file; its folder is created)."""
    path = Path(path)
    if path.suffix != ".md":
        raise ValueError(f"path must name a .md file, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(power_markdown(payload))
    return path


def _seeds_text(payload: dict[str, Any]) -> str:
    seeds = payload.get("seeds") or [payload["seed"] + r for r in range(payload["repeats"])]
    block = payload.get("seed_block")
    if len(seeds) == 1:
        return str(seeds[0])
    step = f"+{block}·r" if block else "+r"
    return f"{seeds[0]}{step}: {seeds[0]}, {seeds[1]}, …, {seeds[-1]}"


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
        f" · {repeats} repeats (master seeds {_seeds_text(payload)})"
        f" · {_dt.datetime.now().isoformat(timespec='seconds')} · "
        f"<code>{html.escape(command)}</code> · {payload.get('seconds') or 0:.0f} s</p>",
        "<p>Each mutant is a deliberately wrong variant of the code. Every check it names ran "
        f"{repeats} times with the mutant active; a check <i>kills</i> it in a repeat when it "
        "reports <span class='fails'>fails</span> (an empirical check: when its outcome "
        "differs from the correct code's usual one); a check that raises is an "
        "<span class='error'>error</span>, never a kill. The same checks ran "
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
    parts += ["<h2 id='kill-rates'>Kill rates with intervals</h2>",
              "<p>Each mutant's best kill rate beside the rate of every check it names, each "
              "with its exact 95 % (Clopper–Pearson) interval; for an empirical check the "
              "rate counts the repeats whose outcome differs from the correct code's usual "
              "one, net of the correct code's own changes (Abbott's correction: "
              "(k<sub>m</sub> − k<sub>c</sub>)/(1 − k<sub>c</sub>)). Errors (a check that "
              "raised, a job that timed out) are never kills.</p>",
              _kill_rates_html(payload),
              "<h2 id='false-alarms'>Checks on the correct code</h2>",
              "<p>False-alarm rate: the fraction of runs on the correct code that report "
              "<i>fails</i> (tests: one run) — for an empirical check, that end with another "
              "outcome than its usual one — with its 95 % interval. Errors: runs in which "
              "the check raised or could not run (a broken check, not a false alarm). "
              "Mutants killed: how many mutants the check killed at least once.</p>",
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


__all__ = ["check_rows", "headline", "kill_matrix", "kill_rows", "matrix_figure",
           "power_markdown", "write_power_markdown", "write_power_report"]
