"""``asam-theory bench``: AsyncSAM / SAM / SGD step-time ratios, measured interleaved.

The logic and protocol live in :mod:`asam_theory.experiments.bench` (wide-MLP workload, b′ from
``tune_ascent_batch``, rounds with rotating order, medians over rounds). ``--json`` prints the
measurements on stdout (``--json-out FILE`` also writes them to FILE) as one JSON object with
at least ``asyncsam_over_sgd``, ``sam_over_sgd``,
``device``, ``equal_resources`` (SGD and SAM on all ``2 * threads`` cores against AsyncSAM's
``threads + threads``, also at the equal-resources rule's b′ = b/8:
``asyncsam_rule_over_sgd``; ``null`` with CUDA descent or ``--no-equal-resources``) and
``bprime_sweep`` (AsyncSAM/SGD at each ``--sweep-bprime`` value, timed in the same rounds),
``lookahead_over_sgd`` (the threaded look-ahead AsyncSAM, timed in the same rounds; its
interval in ``ratio_ci95``, details in ``lookahead``; absent with ``--no-lookahead``),
``ratio_ci95`` (distribution-free 95 % intervals of the median ratios over rounds),
``allocator`` (the C allocator settings the run had; ``--default-allocator`` keeps glibc's
defaults), ``minor_faults_per_step`` and
``load_warning`` (``null``, or why the machine was too busy for a valid comparison — also
printed to stderr; criteria in :func:`asam_theory.experiments.bench.load_check`).
"""

from __future__ import annotations

import argparse
import json
import sys

NAME = "bench"
HELP = "step-time ratios AsyncSAM/SGD and SAM/SGD (interleaved rounds, medians)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON on stdout instead of text")
    parser.add_argument("--json-out", default=None, metavar="FILE",
                        help="also write the JSON result to FILE (checked before any timing; "
                             "default: none)")
    parser.add_argument("--hidden", type=int, default=None,
                        help="MLP width H (default: the workload's, sized for the device)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="descent batch b (default: the workload's)")
    parser.add_argument("--ascent-batch-size", default="auto",
                        help="ascent batch b', an integer, or 'auto' (tuned from timings)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds, medians are over rounds (default: 15; 7 "
                             "with --crossover)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per method per round (default: 6; 30 with --crossover)")
    parser.add_argument("--warmup", type=int, default=4, help="untimed steps per method first")
    parser.add_argument("--device", default=None,
                        help="descent device (default: cuda if available, else cpu)")
    parser.add_argument("--ascent-device", default="cpu", help="ascent worker's device")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per role")
    parser.add_argument("--tau", type=int, default=1, help="AsyncSAM staleness tau >= 0")
    parser.add_argument("--max-staleness", type=int, default=None,
                        help="the descent waits beyond this staleness (default: none, "
                             "never waits)")
    parser.add_argument("--margin", type=float, default=0.5,
                        help="tuner: largest ascent/descent time ratio, in (0, 1]")
    parser.add_argument("--no-contention", dest="contention", action="store_false",
                        help="tuner: time the roles alone only, not also together")
    parser.add_argument("--sweep-bprime", default="",
                        help="comma-separated b′ values also timed as AsyncSAM in the same "
                             "rounds, e.g. 64,128,256,384 (default: none)")
    parser.add_argument("--default-allocator", dest="steady_allocator", action="store_false",
                        help="keep the C allocator's default thresholds (by default they are "
                             "fixed so that no step faults in fresh pages)")
    parser.add_argument("--no-equal-resources", dest="equal_resources", action="store_false",
                        help="skip the SGD/SAM timings on 2 x threads cores")
    parser.add_argument("--no-lookahead", dest="lookahead", action="store_false",
                        help="skip the look-ahead AsyncSAM (worker reads the descent batch "
                             "tau steps ahead)")
    parser.add_argument("--backends", default="thread,process",
                        help="AsyncSAM worker backends timed side by side, comma-separated; "
                             "the faster is reported as AsyncSAM")
    parser.add_argument("--crossover", action="store_true",
                        help="instead: the crossover table (MNIST-1D MLP, b = 64, per width "
                             "and backend: AsyncSAM, SAM, look-ahead and the floor over SGD; "
                             "7 rounds of 30 steps unless --rounds/--steps are given)")
    parser.add_argument("--widths", default="64,256,1024,2048",
                        help="comma-separated MLP widths of --crossover")


def run(args: argparse.Namespace) -> int:
    from asam_theory.commands.common import check_out_file
    from asam_theory.experiments.bench import run_bench
    from asam_theory.validation import check_int, check_real

    if args.rounds is None:
        args.rounds = 7 if args.crossover else 15
    if args.steps is None:
        args.steps = 30 if args.crossover else 6
    for name, value, low in (("--rounds", args.rounds, 1), ("--steps", args.steps, 1),
                             ("--warmup", args.warmup, 0), ("--threads", args.threads, 1),
                             ("--tau", args.tau, 0)):
        check_int(name, value, low=low)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("thread", "process"):
            raise ValueError(f"--backends entries must be 'thread' or 'process', got {b!r}")
    if not backends:
        raise ValueError("--backends must name at least one backend (thread, process)")
    for name, value in (("--hidden", args.hidden), ("--batch-size", args.batch_size),
                        ("--max-staleness", args.max_staleness)):
        if value is not None:
            check_int(name, value, low=0 if name == "--max-staleness" else 1)
    check_real("--margin", args.margin, low=0.0, high=1.0, low_open=True)
    if args.json_out:
        check_out_file("--json-out", args.json_out)
    bprime: int | str = args.ascent_batch_size
    if bprime != "auto":
        try:
            bprime = int(bprime)
        except ValueError as exc:
            raise ValueError(f"--ascent-batch-size must be an integer or 'auto', got {bprime!r}"
                             ) from exc
    try:
        sweep = [int(b) for b in args.sweep_bprime.split(",") if b.strip()]
    except ValueError as exc:
        raise ValueError("--sweep-bprime must be comma-separated integers >= 1, got "
                         f"{args.sweep_bprime!r}") from exc
    if args.crossover:
        return _crossover(args, bprime, backends)
    if "thread" not in backends:
        raise ValueError("--backends must include 'thread' for the bench (its look-ahead, "
                         "sweep and equal-resources blocks use it); --crossover takes either")
    res = run_bench(
        hidden=args.hidden, batch_size=args.batch_size, rounds=args.rounds, steps=args.steps,
        warmup=args.warmup, device=args.device, ascent_device=args.ascent_device,
        threads=args.threads, tau=args.tau, max_staleness=args.max_staleness,
        ascent_batch_size=bprime, margin=args.margin, contention=args.contention,
        equal_resources=args.equal_resources, bprime_sweep=sweep,
        steady_allocator=args.steady_allocator, lookahead=args.lookahead, backends=backends,
    )
    if res["load_warning"]:
        print(f"warning: {res['load_warning']}", file=sys.stderr)
    text = json.dumps(res, indent=2)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            fh.write(text)
    if args.json:
        print(text)
    else:
        ms = res["step_ms_median"]
        print(f"device {res['device']} (ascent on {res['ascent_device']}), H={res['hidden']}, "
              f"b={res['batch_size']}, b'={res['ascent_batch_size']}")
        print(f"step ms (median): sgd {ms['sgd']:.2f}  sam {ms['sam']:.2f}  "
              f"asyncsam {ms['asyncsam']:.2f}")
        ci = res["ratio_ci95"]
        print(f"AsyncSAM/SGD {res['asyncsam_over_sgd']:.3f} [{ci['asyncsam_over_sgd']['low']:.3f}"
              f", {ci['asyncsam_over_sgd']['high']:.3f}] ({res['backend']} backend, the faster)"
              f"   SAM/SGD {res['sam_over_sgd']:.3f}"
              f"   staleness {res['staleness_histogram']}   ([..]: the median's 95 % interval)")
        for b, row in res["backends"].items():
            print(f"  {b} backend: AsyncSAM/SGD {row['asyncsam_over_sgd']:.3f} "
                  f"[{row['ci95']['low']:.3f}, {row['ci95']['high']:.3f}]   staleness "
                  f"{row['staleness_histogram']}")
        if "lookahead_over_sgd" in res:
            la = ci["lookahead_over_sgd"]
            print(f"look-ahead AsyncSAM/SGD {res['lookahead_over_sgd']:.3f} [{la['low']:.3f}, "
                  f"{la['high']:.3f}]   staleness {res['lookahead']['staleness_histogram']}")
        print(f"control (a second SGD)/SGD {res['control']['sgd_control_over_sgd']:.3f}: how "
              "far a median strays by chance in this run")
        for bp, row in res["bprime_sweep"].items():
            print(f"  b'={bp}: AsyncSAM/SGD {row['asyncsam_over_sgd']:.3f}   staleness "
                  f"{row['staleness_histogram']}")
        al, mf = res["allocator"], res["minor_faults_per_step"]
        print(("steady allocator" if al["steady"] else f"default allocator ({al['reason']})")
              + "; minor page faults per step: "
              + "  ".join(f"{n} {mf[n]:.1f}" for n in ("sgd", "sam", "asyncsam")))
        eq = res["equal_resources"]
        if eq is not None:
            print(f"equal resources (SGD, SAM on {eq['threads']['sgd']} threads, AsyncSAM "
                  f"{eq['threads']['asyncsam']}): AsyncSAM/SGD {eq['asyncsam_over_sgd']:.3f}   "
                  f"SAM/SGD {eq['sam_over_sgd']:.3f}"
                  + (f"   look-ahead/SGD {eq['lookahead_over_sgd']:.3f}"
                     if "lookahead_over_sgd" in eq else ""))
            print(f"  AsyncSAM at the equal-resources rule's b'={eq['ascent_batch_size_rule']} "
                  f"(b/8): AsyncSAM/SGD {eq['asyncsam_rule_over_sgd']:.3f} "
                  f"[{eq['asyncsam_rule_ci95']['low']:.3f}, "
                  f"{eq['asyncsam_rule_ci95']['high']:.3f}] (target <= {eq['target']}; "
                  f"floor of any split: SGD one core / SGD all cores "
                  f"{eq['split_floor_over_sgd']:.3f})")
    return 0


def _crossover(args: argparse.Namespace, bprime: int | str, backends: list[str]) -> int:
    """``bench --crossover``: the table of :mod:`asam_theory.experiments.crossover`."""
    from asam_theory.experiments.crossover import run_crossover

    try:
        widths = [int(w) for w in args.widths.split(",") if w.strip()]
    except ValueError as exc:
        raise ValueError(f"--widths must be comma-separated integers >= 1, got "
                         f"{args.widths!r}") from exc
    batch = 64 if args.batch_size is None else args.batch_size
    res = run_crossover(widths, batch_size=batch, rounds=args.rounds, steps=args.steps,
                        warmup=args.warmup, backends=backends, tau=args.tau,
                        ascent_batch_size=bprime, margin=args.margin,
                        progress=None if args.json else
                        (lambda s: print(f"crossover: {s}", file=sys.stderr)))
    text = json.dumps(res, indent=2)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            fh.write(text)
    if args.json:
        print(text)
        return 0
    floor = {f["width"]: f for f in res["floor"]}
    print("width  params   backend  b'   AsyncSAM/SGD [95 %]       SAM/SGD  look-ahead  floor")
    for row in res["crossover"]:
        ci, fl = row["asyncsam_ci95"], floor[row["width"]]
        print(f"{row['width']:>5}  {row['params']:>8}  {row['backend']:>7}  "
              f"{row['ascent_batch_size']:>3}  {row['asyncsam_over_sgd']:.3f} "
              f"[{ci['low']:.3f}, {ci['high']:.3f}]   {row['sam_over_sgd']:.3f}    "
              f"{row['lookahead_over_sgd']:.3f}      {fl['floor_over_sgd']:.3f}")
    print("faster backend per width: " + ", ".join(f"{c['width']}: {c['backend']}"
                                                   for c in res["chosen"]))
    print(f"load average before {res['load']['loadavg_before']:.2f}, after "
          f"{res['load']['loadavg_after']:.2f} ({res['load']['cpu_count']} cores); "
          f"{res['load']['wall_s']:.0f} s")
    return 0
