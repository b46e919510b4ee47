"""``asam-theory power``: can every verdict fail?

Runs every claim check on the correct code and under every mutant of the catalogue
(:mod:`asam_theory.mutants`) with R master seeds, runs the tests that mutants name, and writes
``DIR/power.json``, ``DIR/index.html`` and ``DIR/figures/power_matrix.png`` (and, as each job
finishes, its runs to ``DIR/runs.jsonl``, so a run stopped early keeps its numbers)
(:mod:`asam_theory.mutants.power` describes the measurement and its targets), and with
``--markdown FILE.md`` the same tables as a Markdown page (the committed ``docs/power.md``).
Exit status: 0 when every target is met, 1 when one is missed (the problems are printed; a
mutant whose checks only raised is not killed), 2 on a usage error (an unknown id, a bad
number, an output folder that cannot be created — all checked before any work starts).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shlex
import sys
from pathlib import Path

from asam_theory.commands.common import check_out_dir

NAME = "power"
HELP = ("Run every claim check under deliberately wrong code (mutants) and on the correct "
        "code with R master seeds; write the kill matrix to DIR/power.json and DIR/index.html.")


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    from asam_theory.mutants.power import DEFAULT_REPEATS

    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="smallest check settings (minutes in all; target: every mutant "
                        "killed at least once)")
    g.add_argument("--full", dest="mode", action="store_const", const="full",
                   help="largest check settings (hours)")
    p.set_defaults(mode="default")
    p.add_argument("--repeats", type=int, default=None, metavar="R",
                   help="master seeds per check (default: "
                        + ", ".join(f"{k} {v}" for k, v in DEFAULT_REPEATS.items())
                        + "); with R repeats the smallest non-zero rate is 1/R, so the "
                        "targets kill rate >= 0.95 and false-alarm rate <= 0.05 need R >= 20")
    p.add_argument("--out", default="power", metavar="DIR",
                   help="output folder, created before any work starts (default: power)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="first master seed; repeat r uses S + SEED_BLOCK*r, SEED_BLOCK = "
                        "100000, so that no two repeats share a seed (default: 0)")
    p.add_argument("--jobs", type=int, default=_cpus(), metavar="N",
                   help="jobs run at once, each in its own process (checks that run threads "
                        "or time against the machine's load always run alone); 0 runs every "
                        "job in this process (debugging: module caches are shared) "
                        "(default: the CPUs available, %(default)s here)")
    p.add_argument("--mutants", nargs="+", metavar="ID", default=None,
                   help="only these mutant ids (default: all)")
    p.add_argument("--claims", nargs="+", metavar="ID", default=None,
                   help="only the checks of these claim ids (default: all)")
    p.add_argument("--tests", choices=("needed", "all"), default="needed",
                   help="'needed': run a mutant's named tests only when its checks did not "
                        "kill it at the target rate (and on the correct code only the tests "
                        "then run); 'all': every named test, under its mutant and on the "
                        "correct code (default: needed)")
    p.add_argument("--markdown", default=None, metavar="FILE.md",
                   help="also write the kill matrix, the false-alarm table and the problems "
                        "as a Markdown page, with the command, date, machine and wall time "
                        "(default: none)")


def _commit() -> str | None:
    """The repository's commit when the package runs from a git checkout, else ``None``."""
    import subprocess

    from asam_theory.mutants.power import find_root

    root = find_root()
    if root is None or not (root / ".git").exists():
        return None
    try:
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def machine() -> str:
    """The machine in a line: CPU model, the CPUs this process may use, memory, OS, Python."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover - not Linux
        pass
    mem = ""
    try:
        kib = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal"))
        mem = f", {kib / 2**20:.0f} GiB"
    except (OSError, StopIteration):  # pragma: no cover - not Linux
        pass
    return (f"{model}, {_cpus()} CPUs available{mem}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def run(args: argparse.Namespace) -> int:
    from asam_theory import __version__
    from asam_theory.mutants import power
    from asam_theory.report.power import headline, write_power_markdown, write_power_report
    from asam_theory.validation import check_int

    repeats = power.DEFAULT_REPEATS[args.mode] if args.repeats is None else args.repeats
    check_int("--repeats", repeats, low=1)
    check_int("--seed", args.seed, low=0)
    check_int("--jobs", args.jobs, low=0)
    out = check_out_dir("--out", args.out)
    if args.markdown is not None and not str(args.markdown).endswith(".md"):
        raise ValueError(f"--markdown must name a .md file, got {args.markdown!r}")
    command = "asam-theory " + shlex.join(sys.argv[1:])
    started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    p = power.plan(args.mutants, args.claims)
    n_mutant_checks = sum(len(v) for v in p.mutant_checks.values())
    n_mutant_tests = sum(len(v) for v in p.mutant_tests.values())
    print(f"power: {len(p.mutants)} mutants, {len(p.checks)} checks; {p.n_jobs()} jobs, "
          f"{p.n_runs(repeats)} runs ({len(p.checks)} checks on the correct code and "
          f"{n_mutant_checks} (mutant, check) pairs, × {repeats} repeats; "
          f"up to {len(p.tests)} tests on the correct code and {n_mutant_tests} under "
          f"mutants, once each ({args.tests})) on {max(args.jobs, 1)} process(es)"
          + ("; at quick size this takes minutes" if args.mode == "quick" else
             "; at this size it can take hours"), file=sys.stderr)
    if not p.mutants:
        print("warning: the mutant catalogue is empty: nothing can be killed", file=sys.stderr)
    journal = out / "runs.jsonl"
    journal.unlink(missing_ok=True)
    payload = power.run_power(args.mode, repeats, args.seed, mutant_ids=args.mutants,
                              claim_ids=args.claims, jobs=max(args.jobs, 1),
                              inline=args.jobs == 0, tests=args.tests, journal=journal)
    payload.update(command=command, date=started, machine=machine(), version=__version__,
                   commit=_commit())
    try:
        paths = write_power_report(out, payload, command=command)
        md = None if args.markdown is None else write_power_markdown(args.markdown, payload)
    except ValueError as exc:  # past argument validation a ValueError is a defect, not usage
        raise RuntimeError(f"writing the power report failed: {exc}") from exc
    width = max((len(m["id"]) for m in payload["mutants"]), default=10)
    for m in payload["mutants"]:
        ci = m.get("kill_rate_ci")
        rate = "not run" if m["kill_rate"] is None else (
            f"{m['kill_rate']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
        n_err = sum(e["outcome"] == "error" for e in m["errors"])
        print(f"{m['id']:<{width}}  kill rate {rate:>18}  by "
              f"{', '.join(m['killed_by']) or '-'}" + (f"  ({n_err} errors)" if n_err else ""))
    for pr in payload["problems"]:
        print(f"PROBLEM {pr['kind']}: {pr['message']}")
    h = headline(payload)
    goal = h["kill_rate_target"]
    print(f"{h['killed_at_least_once']} of {h['mutants']} mutants killed at least once"
          + (f", {h['killed_at_target']} at rate >= {goal}" if goal is not None else "")
          + f"; {h['checks']} checks, {len(h['false_alarms'])} over the false-alarm target, "
          f"{len(h['checks_with_errors'])} with errors on the correct code; "
          f"{h['error_runs_under_mutants']} runs with an error under a mutant; "
          f"{h['problems']} problems; {payload['seconds']:.0f} s; report: {paths['index']}"
          + (f"; Markdown: {md}" if md is not None else ""))
    return 1 if payload["problems"] else 0
