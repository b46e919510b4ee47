"""Write the leaderboard report: ``results.json``, ``figures/*.png`` and a self-contained
``index.html`` (figures embedded as data URIs), with the verify report's styling and table
helpers (:mod:`asam_theory.report.build`).

Figures: test accuracy against training seconds (one file per data set), against counted
gradient evaluations, the efficiency frontier (accuracy gain over SGD against time per step
relative to SGD, one point per method with 95 % intervals on both axes), AsyncSAM's crossover
(time per step relative to SGD against the MLP width) and AsyncSAM's measured staleness and
penalty fidelity.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from pathlib import Path
from typing import Any

from asam_theory import __version__
from asam_theory.report.build import _CSS, _table
from asam_theory.report.mathml import MathConverter, md_to_html

#: keys every object of ``results`` carries (``staleness_histogram`` and ``fidelity`` too for
#: AsyncSAM)
RESULT_KEYS = ("method", "dataset", "model", "test_acc_mean", "test_acc_ci", "test_acc_per_seed",
               "collapsed_per_seed", "n_collapsed", "test_acc_mean_not_collapsed",
               "time_per_step_ms", "time_per_step_iqr", "grad_evals_per_step", "hyperparameters")

_COLORS = {"sgd": "tab:gray", "sam": "tab:blue", "asyncsam": "tab:red", "sampa": "tab:green"}


def _color(name: str, i: int) -> str:
    import matplotlib.pyplot as plt

    return _COLORS.get(name) or plt.rcParams["axes.prop_cycle"].by_key()["color"][i % 10]


def _cells(results: list[dict]) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for r in results:
        key = (r["dataset"], r["model"])
        if key not in seen:
            seen.append(key)
    return seen


def _grid_axes(n: int, width: float = 4.2, height: float = 3.2):
    import matplotlib.pyplot as plt

    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _plot_curves(ax, results: list[dict], dataset: str, model: str, x_key: str,
                 xlabel: str) -> None:
    """Test accuracy along each method's learning curve of one (data set, model) cell, against
    the curve's ``x_key`` (wall-clock seconds or counted gradient evaluations)."""
    for i, r in enumerate(x for x in results if (x["dataset"], x["model"]) == (dataset, model)):
        c = r.get("curve") or []
        ax.plot([p[x_key] for p in c], [p["test_acc"] for p in c], "o-", ms=3,
                color=_color(r["method"], i), label=r.get("label", r["method"]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{dataset} / {model}")
    ax.legend(fontsize=7)


def make_figures(payload: dict[str, Any], fig_dir: Path) -> list[str]:
    """Draw every figure into ``fig_dir``; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir.mkdir(parents=True, exist_ok=True)
    results = payload["results"]
    cells = _cells(results)
    files: list[str] = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(fig_dir / name, dpi=90)
        plt.close(fig)
        files.append(name)

    datasets = list(dict.fromkeys(d for d, _ in cells))
    for d in datasets:
        dc = [c for c in cells if c[0] == d]
        fig, axes = _grid_axes(len(dc))
        for ax, (_, model) in zip(axes, dc, strict=True):
            _plot_curves(ax, results, d, model, "train_s",
                         "training wall-clock (s, mean over seeds)")
        save(fig, f"accuracy_vs_time_{d}.png")

    fig, axes = _grid_axes(len(cells))
    for ax, (d, model) in zip(axes, cells, strict=True):
        _plot_curves(ax, results, d, model, "grad_evals", "gradient evaluations (counted)")
    save(fig, "accuracy_vs_grad_evals.png")

    fig, axes = _grid_axes(len(cells))
    for ax, (d, model) in zip(axes, cells, strict=True):
        for i, r in enumerate(x for x in results if (x["dataset"], x["model"]) == (d, model)):
            if r["method"] == "sgd" or r.get("acc_gain_over_sgd") is None:
                continue
            x, y = r["time_ratio_to_sgd"], 100 * r["acc_gain_over_sgd"]
            xlo, xhi = r["time_ratio_to_sgd_ci"]
            ylo, yhi = (100 * v for v in r["acc_gain_over_sgd_ci"])
            col = _color(r["method"], i)
            ax.errorbar([x], [y], xerr=[[max(x - xlo, 0)], [max(xhi - x, 0)]],
                        yerr=[[y - ylo], [yhi - y]], fmt="o", color=col, capsize=3,
                        label=f"{r.get('label', r['method'])} (idle 2nd core)")
            xe = r.get("time_ratio_to_sgd_equal_resources")
            if xe is not None:
                ax.plot([xe], [y], "o", mfc="none", color=col)
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(1, color="k", lw=0.8, ls=":")
        ax.set_xlabel("time per step / SGD's")
        ax.set_ylabel("test accuracy gain over SGD (pp)")
        ax.set_title(f"{d} / {model}  (hollow: equal resources)", fontsize=9)
        ax.legend(fontsize=6)
    save(fig, "frontier.png")

    cross = payload.get("crossover")
    if cross and cross.get("rows"):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        rows = cross["rows"]
        for name, style in (("asyncsam", "o-"), ("sam", "s--")):
            ys = [r.get(f"{name}_ratio_to_sgd") for r in rows]
            if any(y is not None for y in ys):
                ax.plot([r["width"] for r in rows], ys, style, color=_COLORS[name],
                        label=name)
                for r in rows:
                    iqr = r.get(f"{name}_ratio_to_sgd_iqr")
                    if iqr:
                        ax.plot([r["width"]] * 2, iqr, color=_COLORS[name], lw=3, alpha=0.4)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhline(cross.get("threshold", 1.1), color="k", lw=0.8, ls=":",
                   label=f"{cross.get('threshold', 1.1):.2f} × SGD")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(f"MLP width ({cross['dataset']})")
        ax.set_ylabel("time per step / SGD's")
        ax.set_title("AsyncSAM crossover (idle second core)")
        ax.legend(fontsize=7)
        save(fig, "crossover.png")

    asy = [r for r in results if r.get("staleness_histogram")]
    if asy:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        width = 0.8 / len(asy)
        for i, r in enumerate(asy):
            h = {int(k): v for k, v in r["staleness_histogram"].items()}
            axes[0].bar([k + i * width for k in h], list(h.values()), width=width,
                        label=f"{r['dataset']}/{r['model']}")
            if r.get("fidelity"):
                axes[1].bar([i], [r["fidelity"]["mean"]], color="tab:red", alpha=0.7)
                axes[1].plot([i], [r["fidelity"]["min"]], "kv")
        axes[0].set_xlabel("staleness used (steps)")
        axes[0].set_ylabel("steps, all seeds")
        axes[0].set_title("AsyncSAM measured staleness")
        axes[0].legend(fontsize=7)
        axes[1].set_xticks(range(len(asy)), [f"{r['dataset']}/{r['model']}" for r in asy],
                           fontsize=7)
        axes[1].set_ylabel("cos(stale, fresh) mean (▼ min)")
        axes[1].set_title("AsyncSAM penalty fidelity")
        save(fig, "staleness.png")
    return files


def _pm(ci: list[float], mean: float) -> str:
    return f"{mean:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]"


def _collapsed(r: dict, tag: str = "") -> str:
    """``k/n`` seeds collapsed (``–`` when none did)."""
    per = r.get(f"collapsed_per_seed{tag}") or []
    k = sum(c is not None for c in per)
    return f"{k}/{len(per)}" if k else "–"


def collapse_notes(r: dict) -> list[str]:
    """One line per collapsed run of a result (tuned b′ and the extra b′ runs): the seed and
    why."""
    out = []
    for tag, what in (("", ""), ("_half_batch", " at b′ = b/2"),
                      ("_equal_resources", " at the equal-resources b′")):
        per = r.get(f"collapsed_per_seed{tag}") or []
        for seed, why in enumerate(per):
            if why is not None:
                out.append(f"{r.get('label', r['method'])}{what}, seed {seed}: {why}")
    if r.get("selection_all_collapsed"):
        out.append(f"{r.get('label', r['method'])}: every grid point collapsed on some "
                   "selection seed; the point with the fewest collapses was taken")
    return out


def leaderboard_rows(results: list[dict]) -> list[dict]:
    """One row per result for the report's table (accuracy with its 95 % interval, the seeds
    that collapsed, ms/step in both settings, ratio to SGD, counted gradient evaluations, the
    chosen hyper-parameters)."""
    rows = []
    for r in results:
        hp = r["hyperparameters"]
        rows.append({
            "dataset": r["dataset"], "model": r["model"], "method": r.get("label", r["method"]),
            "test acc [95% CI]": _pm(r["test_acc_ci"], r["test_acc_mean"]),
            "collapsed seeds": _collapsed(r),
            "gain over SGD (pp)": None if r.get("acc_gain_over_sgd") is None
            else round(100 * r["acc_gain_over_sgd"], 2),
            "ms/step idle 2nd core": round(r["time_per_step_ms"], 3),
            "× SGD": None if r.get("time_ratio_to_sgd") is None
            else round(r["time_ratio_to_sgd"], 3),
            "ms/step equal resources": None if r.get("time_per_step_ms_equal_resources") is None
            else round(r["time_per_step_ms_equal_resources"], 3),
            "× SGD (equal)": None if r.get("time_ratio_to_sgd_equal_resources") is None
            else round(r["time_ratio_to_sgd_equal_resources"], 3),
            "grad evals/step": round(r["grad_evals_per_step"], 3),
            "lr": hp.get("lr"), "rho": hp.get("rho"),
        })
    return rows


def write_leaderboard(out: str | Path, payload: dict[str, Any], *, command: str = "",
                      mode: str = "default") -> dict[str, Any]:
    """Draw the figures, then write ``results.json`` (``payload`` plus its ``figures`` list)
    and ``index.html`` into ``out``; returns ``{"index", "results", "figures"}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    files = make_figures(payload, fig_dir)
    payload = dict(payload, figures=[f"figures/{f}" for f in files])
    res_path = out / "results.json"
    res_path.write_text(json.dumps(payload, indent=1, default=float))
    cfg = payload.get("config", {})
    env = payload.get("environment", {})
    conv = MathConverter()
    methods = cfg.get("methods", [])
    grid_md = "\n".join(
        f"* **{m['label']}**: grid {', '.join(json.dumps(g) for g in m['grid'])}"
        + (f"; fixed {json.dumps(m['fixed'])}" if m.get("fixed") else "") for m in methods)
    intro = f"""
Every method × data set × model, trained on **{cfg.get('seeds')} seeds** with symmetric label
noise p = {cfg.get('label_noise')} on the training labels (validation and test labels clean),
batch size {cfg.get('batch_size')}, SGD with momentum {cfg.get('momentum')} and weight decay
{cfg.get('weight_decay')} as every method's base optimizer, steps per data set
{json.dumps(cfg.get('steps'))}.

**Hyper-parameters were chosen on the validation split** (carved from train, never the test
split), best mean validation accuracy over {cfg.get('selection_seeds')} selection seed(s) that
are not evaluation seeds; a point where any selection seed collapsed is ruled out:

{grid_md}

**Timing**: methods interleaved in rotating order, {cfg.get('timing_rounds')} rounds of
{cfg.get('timing_steps')} timed steps after {cfg.get('timing_warmup')} warm-up steps; medians
and quartiles over rounds. *Idle second core*: one intra-op thread per role (AsyncSAM's ascent
and SAMPa's second gradient on the otherwise idle core — the AsyncSAM paper's setting);
*equal resources*: SGD and SAM given both cores (two intra-op threads). Gradient evaluations are
counted (every loss evaluation followed by a backward pass, on either core). Timings depend on
the machine's load: 1-minute load average {env.get('loadavg_1min')} on {env.get('cpu_count')}
CPUs.
"""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>asam-theory leaderboard"
        f"</title><style>{_CSS}</style></head><body>",
        "<h1>asam-theory — real-data leaderboard</h1>",
        f"<p class='meta'>asam-theory {__version__} · torch {html.escape(str(env.get('torch')))}"
        f" · mode <b>{html.escape(mode)}</b> · "
        f"{_dt.datetime.now().isoformat(timespec='seconds')} · "
        f"<code>{html.escape(command)}</code> · {payload.get('wall_s', 0):.0f} s</p>",
        md_to_html(intro, conv),
        "<h2>Leaderboard</h2>",
        _table(leaderboard_rows(payload["results"]), conv, limit=10_000),
    ]
    notes = [n for r in payload["results"] for n in collapse_notes(r)]
    if notes:
        parts.append("<h3>Collapsed runs</h3><p>A collapsed run (non-finite loss, or a loss "
                     "stuck at ln C with chance accuracy) is counted in the mean above and "
                     "flagged; each one:</p><ul>"
                     + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    sel = payload.get("selection") or []
    if sel:
        rows = [{k: v for k, v in r.items() if k != "val_acc_per_seed"} for r in sel]
        parts.append(f"<details><summary>validation grid ({len(rows)} points)</summary>"
                     f"{_table(rows, conv, limit=10_000)}</details>")
    cross = payload.get("crossover")
    if cross:
        cw = cross.get("crossover_width")
        parts.append("<h2>AsyncSAM crossover</h2>")
        parts.append(md_to_html(
            f"Time per step relative to SGD against the MLP width on {cross['dataset']} (idle "
            f"second core, interleaved). Smallest width with AsyncSAM ≤ "
            f"{cross.get('threshold', 1.1):.2f} × SGD: **{cw if cw is not None else 'none'}**."
            " On a small model the thread hand-off costs more than the ascent it hides.", conv))
        parts.append(_table([{k: v for k, v in r.items() if not k.endswith("_iqr")}
                             for r in cross["rows"]], conv, limit=10_000))
    parts.append("<h2>Figures</h2>")
    for f in files:
        data = base64.b64encode((fig_dir / f).read_bytes()).decode()
        parts.append(f"<h3>{html.escape(f)}</h3><img alt='{html.escape(f)}' "
                     f"src='data:image/png;base64,{data}' data-file='figures/{html.escape(f)}'>")
    parts.append("</body></html>")
    index = out / "index.html"
    index.write_text("\n".join(parts))
    return {"index": index, "results": res_path, "figures": [fig_dir / f for f in files]}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _pct_ci(mean: float | None, ci: list[float] | None, signed: bool = False) -> str:
    if mean is None or ci is None:
        return "–"
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"{f.format(100 * mean)} [{f.format(100 * ci[0])}, {f.format(100 * ci[1])}]"


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def leaderboard_markdown(payload: dict[str, Any], figures: list[str], *, command: str,
                         mode: str = "default") -> str:
    """The leaderboard as a Markdown page (for a repository's ``docs/``): the protocol, one
    table per data set × model (accuracy in % with its 95 % t-interval over evaluation seeds,
    the paired gain over SGD, time per step and its ratio to SGD in both timing settings,
    gradient evaluations per step, the chosen lr and ρ), AsyncSAM's equal-resources b′ rows,
    the crossover table, the figures (``figures``: paths relative to the page) and where it
    ran: command, date, machine, load and wall time."""
    cfg = payload.get("config", {})
    env = payload.get("environment", {})
    load = env.get("loadavg_1min") or {}
    wall = payload.get("wall_s", 0.0)
    n_methods = len(cfg.get("methods", []))
    lines = [
        "# Real-data leaderboard",
        "",
        f"{n_methods} method{'' if n_methods == 1 else 's'} "
        f"({', '.join(m['label'] for m in cfg.get('methods', []))}) on "
        f"{', '.join(cfg.get('datasets', []))} × {', '.join(cfg.get('models', []))}, "
        f"**{cfg.get('seeds')} evaluation seeds** per method.",
        "",
        "| | |",
        "|---|---|",
        f"| command | `{command}` |",
        f"| mode | {mode} |",
        f"| finished | {env.get('finished', '–')} |",
        f"| wall time | {wall / 60:.1f} min ({wall:.0f} s) |",
        f"| machine | {env.get('cpu_count')} CPUs ({env.get('cpu_model') or 'unknown model'}), "
        f"{env.get('platform', '–')}, Python {env.get('python', '–')}, "
        f"torch {env.get('torch', '–')}; training runs in "
        f"{env.get('training_processes', 1)} process(es), tuning and timing alone |",
        f"| 1-minute load | {_num(load.get('before'))} before, {_num(load.get('after'))} after |",
        f"| package | asam-theory {__version__} |",
        "",
        "## Protocol",
        "",
        f"- Symmetric label noise p = {cfg.get('label_noise')} on the training labels; "
        "validation and test labels are clean.",
        f"- Batch size {cfg.get('batch_size')}; every method's base optimizer is SGD with "
        f"momentum {cfg.get('momentum')} and weight decay {cfg.get('weight_decay')}; steps per "
        f"data set {json.dumps(cfg.get('steps'))}.",
        f"- Learning rate and ρ chosen on the validation split (carved from train) over "
        f"{cfg.get('selection_seeds')} selection seed(s) that are not evaluation seeds; a "
        "grid point where any selection seed collapsed is ruled out; the test split is looked "
        "at only for the evaluation runs.",
        "- Collapsed runs (a non-finite loss, or a training loss stuck at ln C with chance "
        "accuracy: `asam_theory.experiments.collapse`) are counted in the mean and flagged "
        "per seed (column *collapsed*, listed with their reasons below each table); *acc "
        "w/o collapsed* is the mean over the other seeds.",
        "- Accuracy: mean over evaluation seeds with its 95 % t-interval; the gain over SGD is "
        "paired by seed (same data split, same initial weights); MDE is the smallest gain "
        "these seeds detect (one-sided 5 % t test, power 80 %, at the pairs' SD).",
        f"- Models: {', '.join(cfg.get('models', []))}; widths "
        f"{json.dumps(cfg.get('width') or {})} (others at their defaults).",
        f"- Timing: methods interleaved in rotating order, {cfg.get('timing_rounds')} rounds "
        f"of {cfg.get('timing_steps')} steps after {cfg.get('timing_warmup')} warm-up steps, "
        "medians. *Idle 2nd core*: one intra-op thread per role (AsyncSAM's ascent and SAMPa's "
        "second gradient on the otherwise idle core: the AsyncSAM paper's setting). *Equal*: "
        "SGD and SAM get both cores (two intra-op threads), AsyncSAM splits them 1 + 1 at the "
        "equal-resources b′ = max(1, b/8).",
        "",
        "## Results",
        "",
    ]
    results = payload.get("results", [])
    for d, model in _cells(results):
        rows = [r for r in results if r["dataset"] == d and r["model"] == model]
        lines += [f"### {d} / {model}", "",
                  "| method | test acc % [95 % CI] | collapsed | acc w/o collapsed, % "
                  "| gain over SGD, pp [95 % CI] | MDE, pp | "
                  "ms/step (idle 2nd core) | × SGD | × SGD (equal) | grads/step | lr | ρ |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: -r["test_acc_mean"]):
            hp = r["hyperparameters"]
            gain = ("(reference)" if r["method"] == "sgd" else
                    _pct_ci(r.get("acc_gain_over_sgd"), r.get("acc_gain_over_sgd_ci"), True))
            lines.append(
                f"| {r.get('label', r['method'])} "
                f"| {_pct_ci(r['test_acc_mean'], r['test_acc_ci'])} "
                f"| {_collapsed(r)} | {_pct(r.get('test_acc_mean_not_collapsed'))} "
                f"| {gain} | {_pct(r.get('acc_gain_over_sgd_mde'))} "
                f"| {_num(r['time_per_step_ms'])} | {_num(r.get('time_ratio_to_sgd'), 3)} "
                f"| {_num(r.get('time_ratio_to_sgd_equal_resources'), 3)} "
                f"| {_num(r['grad_evals_per_step'])} | {hp.get('lr', '–')} "
                f"| {hp.get('rho', '–')} |")
        for tag, what in (("half_batch", "b′ = b/2"), ("equal_resources",
                                                        "the equal-resources b′")):
            extra = [r for r in rows if r.get(f"test_acc_mean_{tag}") is not None]
            if not extra:
                continue
            lines += ["", f"At {what} (accuracy against the tuned b′, paired):",
                      "", "| method | b′ tuned | b′ here | test acc % [95 % CI] | collapsed | "
                      "here − tuned, pp [95 % CI] |", "|---|---|---|---|---|---|"]
            for r in extra:
                acc = _pct_ci(r[f"test_acc_mean_{tag}"], r[f"test_acc_ci_{tag}"])
                diff = _pct_ci(r.get(f"acc_{tag}_minus_tuned"),
                               r.get(f"acc_{tag}_minus_tuned_ci"), True)
                lines.append(
                    f"| {r.get('label', r['method'])} | {r.get('ascent_batch_size', '–')} "
                    f"| {r.get(f'ascent_batch_size_{tag}', '–')} | {acc} "
                    f"| {_collapsed(r, '_' + tag)} | {diff} |")
        notes = [n for r in rows for n in collapse_notes(r)]
        if notes:
            lines += ["", "Collapsed runs:", ""] + [f"- {n}" for n in notes]
        lines.append("")
    cross = payload.get("crossover")
    if cross and cross.get("rows"):
        keys = [k for k in cross["rows"][0] if not k.endswith("_iqr")]
        lines += ["## AsyncSAM crossover against model width", "",
                  f"Time per step relative to SGD against the MLP width on {cross['dataset']} "
                  f"(idle second core, interleaved). Smallest width with AsyncSAM ≤ "
                  f"{cross.get('threshold', 1.1):.2f} × SGD: "
                  f"**{cross.get('crossover_width') or 'none'}**.", "",
                  "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for row in cross["rows"]:
            lines.append("| " + " | ".join(
                _num(row[k], 3) if isinstance(row[k], float) else str(row[k])
                for k in keys) + " |")
        lines.append("")
    if figures:
        lines += ["## Figures", ""]
        for f in figures:
            lines += [f"![{Path(f).stem}]({f})", ""]
    return "\n".join(lines)


def write_leaderboard_markdown(path: str | Path, payload: dict[str, Any],
                               figure_dir: str | Path, *, command: str,
                               mode: str = "default") -> Path:
    """Write :func:`leaderboard_markdown` to ``path`` and copy the PNGs of ``figure_dir`` into
    the folder ``path`` without its suffix (``docs/results.md`` → ``docs/results/``), which
    the page links to; returns ``path``."""
    import shutil

    path = Path(path)
    if path.suffix != ".md":
        raise ValueError(f"path must name a .md file, got {str(path)!r}")
    assets = path.with_suffix("")
    assets.mkdir(parents=True, exist_ok=True)
    files = []
    for png in sorted(Path(figure_dir).glob("*.png")):
        shutil.copyfile(png, assets / png.name)
        files.append(f"{assets.name}/{png.name}")
    path.write_text(leaderboard_markdown(payload, files, command=command, mode=mode) + "\n")
    return path
