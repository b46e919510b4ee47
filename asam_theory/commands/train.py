"""``asam-theory train``: SGD vs SAM vs AsyncSAM vs SAMPa on scikit-learn digits.

For each model (MLP, small CNN) and method, trains ``--seeds`` runs and reports the test accuracy
mean with a Student-t confidence interval, the wall time per step, AsyncSAM's measured staleness
histogram and its penalty fidelity (cosine of the stale to the fresh ascent direction on the same
ascent batch, every ``--fidelity-every`` steps). Writes ``results.json`` and figures
(``accuracy.png``, ``staleness.png`` with the staleness histogram and fidelity, and
``time_per_step.png``) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from asam_theory.stats import t_interval

NAME = "train"
HELP = "train SGD/SAM/AsyncSAM/SAMPa on digits (with label noise) over seeds; JSON + figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="train-out", help="output directory")
    parser.add_argument("--quick", action="store_true", help="small setting (well under 2 min)")
    parser.add_argument("--seeds", type=int, default=None, help="runs per method (default 5)")
    parser.add_argument("--steps", type=int, default=None, help="steps per run")
    parser.add_argument("--methods", default="sgd,sam,asyncsam,sampa")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ascent-batch-size", type=int, default=None, help="b′ (default b)")
    parser.add_argument("--label-noise", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--rho", type=float, default=0.05)
    parser.add_argument("--tau", type=int, default=1)
    parser.add_argument("--max-staleness", type=int, default=None)
    parser.add_argument("--lam", type=float, default=0.2, help="SAMPa λ")
    parser.add_argument("--fidelity-every", type=int, default=10)
    parser.add_argument("--device", default=None, help="descent device (default cuda if any)")
    parser.add_argument("--ascent-device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per role")
    parser.add_argument("--confidence", type=float, default=0.95)


def _figures(out: Path, summary: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    models = list(summary)
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.5), squeeze=False)
    for ax, mk in zip(axes[0], models, strict=True):
        methods = list(summary[mk])
        means = [summary[mk][m]["test_acc"]["mean"] for m in methods]
        errs = [summary[mk][m]["test_acc"]["half_width"] for m in methods]
        ax.bar(methods, means, yerr=errs, capsize=4, color="tab:blue", alpha=0.8)
        lo = min(m - e for m, e in zip(means, errs, strict=True))
        ax.set_ylim(max(0.0, lo - 0.05), min(1.0, max(means) + 0.03))
        ax.set_title(f"{mk}: test accuracy (mean, t-CI)")
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=100)
    plt.close(fig)
    files.append("accuracy.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for mk in models:
        a = summary[mk].get("asyncsam")
        if a is None:
            continue
        hist = {int(k): v for k, v in a["staleness_histogram"].items()}
        ks = sorted(hist)
        axes[0].bar([k + (0.2 if mk == "cnn" else -0.2) for k in ks], [hist[k] for k in ks],
                    width=0.4, label=mk)
        fid = a["fidelity_values"]
        if fid:
            axes[1].hist(fid, bins=20, alpha=0.6, label=mk)
    all_k = sorted({int(k) for mk in models if "asyncsam" in summary[mk]
                    for k in summary[mk]["asyncsam"]["staleness_histogram"]})
    axes[0].set_xticks(all_k)
    axes[0].set_title("AsyncSAM measured staleness (steps used, all seeds)")
    axes[0].set_xlabel("staleness (steps)")
    axes[1].set_title("penalty fidelity cos(stale, fresh)")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "staleness.png", dpi=100)
    plt.close(fig)
    files.append("staleness.png")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for mk in models:
        for m, s in summary[mk].items():
            ax.bar(f"{mk}\n{m}", s["time_per_step_ms"]["mean"], color="tab:orange")
    ax.set_ylabel("ms / step")
    ax.set_title("wall time per step")
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "time_per_step.png", dpi=100)
    plt.close(fig)
    files.append("time_per_step.png")
    return files


def run(args: argparse.Namespace) -> int:
    import torch

    from asam_theory.torch.training import METHODS, MODELS, load_digits_data, run_method

    seeds = args.seeds if args.seeds is not None else 5
    steps = args.steps if args.steps is not None else (120 if args.quick else 600)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"--methods: {m!r} is not one of {METHODS}")
    for m in models:
        if m not in MODELS:
            raise ValueError(f"--models: {m!r} is not one of {MODELS}")
    if seeds < 1 or steps < 1:
        raise ValueError("--seeds and --steps must be >= 1")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t_start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    summary: dict[str, dict[str, Any]] = {}
    for mk in models:
        summary[mk] = {}
        for method in methods:
            results = []
            for seed in range(seeds):
                data = load_digits_data(label_noise=args.label_noise, seed=seed)
                r = run_method(
                    method, data, model_kind=mk, seed=seed, steps=steps,
                    batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                    weight_decay=args.weight_decay, rho=args.rho, tau=args.tau,
                    max_staleness=args.max_staleness, ascent_batch_size=args.ascent_batch_size,
                    lam=args.lam, device=device, ascent_device=args.ascent_device,
                    fidelity_every=args.fidelity_every,
                )
                results.append(r)
                runs.append({
                    "model": mk, "method": method, "seed": seed, "test_acc": r.test_acc,
                    "train_acc_clean": r.train_acc_clean, "final_train_loss": r.final_train_loss,
                    "time_per_step_s": r.time_per_step_s,
                    "staleness_histogram": dict(Counter(r.staleness)),
                    "fidelity": r.fidelity,
                })
            hist: Counter[int] = Counter()
            fid: list[float] = []
            for r in results:
                hist.update(r.staleness)
                fid.extend(c for _, c in r.fidelity if c == c)
            entry: dict[str, Any] = {
                "test_acc": t_interval([r.test_acc for r in results], args.confidence),
                "train_acc_clean": t_interval([r.train_acc_clean for r in results],
                                              args.confidence),
                "time_per_step_ms": t_interval([1e3 * r.time_per_step_s for r in results],
                                               args.confidence),
            }
            if method.startswith("asyncsam"):
                entry["staleness_histogram"] = {str(k): hist[k] for k in sorted(hist)}
                entry["fidelity_values"] = fid
                entry["fidelity"] = (
                    {"mean": sum(fid) / len(fid), "min": min(fid), "n": len(fid)} if fid else None
                )
                entry["ascent_batch_size"] = results[0].ascent_batch_size
            summary[mk][method] = entry
            acc = entry["test_acc"]
            print(f"{mk:4s} {method:12s} test acc {acc['mean']:.4f} ± {acc['half_width']:.4f}"
                  f"  {entry['time_per_step_ms']['mean']:.2f} ms/step"
                  + (f"  staleness {entry['staleness_histogram']}"
                     f"  fidelity {entry['fidelity']['mean']:.3f}"
                     if method.startswith("asyncsam") and entry["fidelity"] else ""),
                  flush=True)
    config = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    config.update(seeds=seeds, steps=steps, device=device, methods=methods, models=models)
    files = _figures(out, summary)
    payload = {
        "config": config,
        "summary": summary,
        "runs": runs,
        "wall_s": time.perf_counter() - t_start,
        "figures": files,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2))
    print(f"wrote {out / 'results.json'} and {', '.join(files)} "
          f"({payload['wall_s']:.1f} s)")
    return 0
