"""``asam-theory verify``: run the claim registry and write the report.

Prints each check's outcome, then the verdict at a glance (per claim its outcome, the worst
ratio measured/bound as a text bar, each check's method and run time) and the counts of
holds / fails / inconclusive / errors.  Exit status: 0 when no check fails or errs (a check
may hold or be inconclusive: its precondition was not met), 1 when a check fails, a check
raised (an *error*: a broken check is not a pass), a proof step fails or is unchecked, or a
figure cannot be drawn; 2 on a usage error.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

NAME = "verify"
HELP = ("Run every claim's checks (proof, exact analysis, Monte Carlo, threaded runs) and "
        "write DIR/index.html, DIR/verdicts.json and DIR/figures/.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="smallest settings (seconds per claim; default: neither, the "
                        "report's settings, several minutes)")
    g.add_argument("--full", dest="mode", action="store_const", const="full",
                   help="largest settings (tens of minutes to hours; says how long before "
                        "it starts; default: neither)")
    p.set_defaults(mode="default")
    p.add_argument("--out", default="report", metavar="DIR",
                   help="output folder, created before any check runs: the report is "
                        "DIR/index.html, with DIR/verdicts.json and DIR/figures/")
    p.add_argument("--claims", nargs="+", metavar="ID", default=None,
                   help="only these claim ids (default: all)")
    p.add_argument("--jobs", type=int, default=2, metavar="N",
                   help="worker processes for sweeps (1 runs them in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run sweeps on a Dask cluster at this scheduler address (default: "
                        "none, local processes)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="master seed of every check's randomness (>= 0)")
    p.add_argument("--no-proofs", action="store_true", help="leave the proofs section out")


def run(args: argparse.Namespace) -> int:
    from asam_theory.commands.common import check_out_dir

    check_out_dir("--out", args.out)  # first: before the checks' heavy imports and any work
    from tqdm.auto import tqdm

    from asam_theory.claims import Settings, run_check, select
    from asam_theory.report import text_summary, write_report
    from asam_theory.report.summary import counts as summary_counts
    from asam_theory.report.summary import counts_text
    from asam_theory.sweeps import make_executor
    from asam_theory.validation import check_int

    check_int("--jobs", args.jobs, low=1)
    check_int("--seed", args.seed, low=0)
    claims = select(args.claims)
    t0 = time.perf_counter()
    verdicts = []
    with make_executor(args.jobs, args.scheduler) as executor:
        settings = Settings(mode=args.mode, executor=executor, seed=args.seed)
        jobs = [(c, ch) for c in claims for ch in c.checks]
        if args.mode == "full":  # say how long it will take before it starts
            from asam_theory.claims.durations import announcement

            print(announcement([f"{c.id}.{ch.name}" for c, ch in jobs]), file=sys.stderr,
                  flush=True)
        bar = tqdm(jobs, desc="verify", unit="check", file=sys.stderr)
        for claim, check in bar:
            bar.set_postfix_str(f"{claim.id}.{check.name}")
            verdicts.append(run_check(claim, check, settings))
    proofs_md = proofs_summary = None
    if not args.no_proofs:
        from asam_theory import proofs

        proofs_md = proofs.render_markdown()
        s = proofs.summary()
        proofs_summary = {k: s[k] for k in ("steps_checked", "steps_checked_total",
                                            "steps_definitional", "premises", "steps_failed",
                                            "steps_unchecked")}
        proofs_summary["proofs"] = [{"id": p["id"], "title": p["title"]} for p in s["proofs"]]
    try:
        paths = write_report(args.out, claims, verdicts, mode=args.mode,
                             command="asam-theory " + shlex.join(sys.argv[1:]),
                             proofs_markdown=proofs_md, proofs_summary=proofs_summary)
    except ValueError as exc:  # past argument validation a ValueError is a defect, not usage
        raise RuntimeError(f"writing the report failed: {exc}") from exc
    for err in paths["figure_errors"]:
        print(f"warning: figure {err}", file=sys.stderr)
    width = max(len(v.id) for v in verdicts) if verdicts else 10
    for v in verdicts:
        ratio = "" if v.ratio is None else f" ratio={v.ratio:.3g}"
        print(f"{v.outcome.upper():<12}  {v.id:<{width}}  {v.seconds:6.1f}s{ratio}  "
              f"{v.summary}")
    print(text_summary(claims, verdicts))
    counts = summary_counts([v.outcome for v in verdicts])
    failed = counts["fails"] + counts["error"]
    proofs_failed = proofs_summary is not None and (
        proofs_summary["steps_failed"] or proofs_summary["steps_unchecked"])
    print(f"{len(verdicts)} checks: {counts_text(counts)}, in "
          f"{time.perf_counter() - t0:.0f}s; "
          f"report: {paths['index']} ({paths['index'].stat().st_size / 1e3:.0f} kB, "
          f"{paths['math_converted']} formulas as MathML, "
          f"{len(paths['math_failed'])} left as TeX)")
    for v in verdicts:  # the broken checks apart: they decided nothing
        if v.outcome == "error":
            last = [ln for ln in (v.error or "").strip().splitlines() if ln.strip()]
            print(f"error: {v.id} raised: {last[-1].strip() if last else v.summary} "
                  f"(traceback in verdicts.json and the report)")
    if proofs_summary is not None:
        print(f"proofs: {proofs_summary['steps_checked']} distinct steps checked, "
              f"{proofs_summary['steps_failed']} failed, "
              f"{proofs_summary['steps_unchecked']} unchecked "
              f"({proofs_summary['steps_definitional']} definitional steps and "
              f"{proofs_summary['premises']} premises counted apart)")
    return 1 if failed or proofs_failed or paths["figure_errors"] else 0
