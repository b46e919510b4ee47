r"""The power runner: how often each check kills each mutant, and how often it fails on the
correct code.

For a mode (``quick``/``default``/``full``), ``R`` repeats and a master seed ``s``:

* every selected claim check runs ``R`` times on the correct code, with
  ``Settings(mode, executor=None, seed=s + r)``, ``r = 0..R-1``; its **false-alarm rate** is
  the fraction of repeats whose outcome is ``fails``;
* every mutant of the catalogue (:func:`asam_theory.mutants.all_mutants`) runs each of its
  ``checks`` with the same ``R`` seeds while the mutant is active; the **kill rate** of a
  (mutant, check) pair is the fraction of repeats whose outcome is ``fails``;
* a mutant's ``tests`` run once each (tests are deterministic): ``python -m pytest -q -x -p
  no:cacheprovider <test>`` from the repository root with ``ASAM_MUTANT=<id>``
  (``tests/conftest.py`` applies the mutant); the test kills it iff pytest exits with 1 (a test
  failed).  Exit codes 2–5 (interrupted, internal error, usage error, nothing collected) and a
  timeout are errors of the harness, not kills.  (A check that raises under a mutant fails,
  as in ``asam-theory verify``, and so kills it; its exception line is kept in the mutant's
  ``errors`` for review.)  Each test is also run once on the correct
  code: a test that fails there kills nothing credibly and counts as a false alarm.

A mutant's kill rate is the best rate over its checks and tests.  With ``R`` repeats a rate is
a multiple of ``1/R``: the smallest non-zero false-alarm rate is ``1/R``, so a target of 0.05
needs ``R ≥ 20`` to be met by anything but a clean record, and a kill rate of 0.95 (19 of 20)
needs ``R ≥ 20`` to differ from 1.  The targets (:func:`targets`): at ``default``/``full``
size every mutant's kill rate ≥ 0.95, at ``quick`` size every mutant killed at least once;
every check's false-alarm rate ≤ 0.05; every check kills at least one mutant (a check of a
claim that no mutant names kills none).  Every miss is listed in ``problems``.

**Isolation.**  Every job — one (mutant or correct code, check) pair with all its repeats, or
one pytest run — runs in a fresh process, so a patch cannot outlive its job, and neither can a
value computed under it and kept in a module-level cache (the PEP results in
:mod:`asam_theory.claims.pep` and the proofs' ``lru_cache`` are such caches: a worker reused
across jobs would hand a mutant the correct code's cached result, or the reverse).  The
processes are forked from a ``forkserver`` that imported the package once (importing the claims
takes seconds, a fork milliseconds); ``spawn`` where there is none.  A job that exceeds its time
limit is terminated and a job whose process dies is reported as an error; neither counts as a
kill (a pool of reused workers could do neither).  Checks whose method is in
:data:`EXCLUSIVE_METHODS` (real threads, timing against the machine's load) run alone, after
the other jobs of their phase, as ``asam-theory verify`` runs them.  ``inline=True`` runs every
job in the calling process instead (for tests and debugging: module-level caches are then
shared between jobs).

Jobs on the correct code run first; their times order the mutant jobs longest-first.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from asam_theory.validation import check_choice, check_int, check_positive

MODES = ("quick", "default", "full")
#: default repeats per mode (a rate of 0.95 needs R >= 20 to differ from 1)
DEFAULT_REPEATS = {"quick": 2, "default": 20, "full": 50}
#: kill-rate target at default and full size (quick: killed at least once)
KILL_RATE_TARGET = 0.95
#: largest false-alarm rate allowed on the correct code
FALSE_ALARM_TARGET = 0.05
#: check methods whose runs must not share the machine with other jobs
EXCLUSIVE_METHODS = ("threaded", "real_data")
#: the catalogue's provider: "module:function" returning (claims, mutants)
DEFAULT_CATALOGUE = "asam_theory.mutants.power:real_catalogue"
#: which named tests a run executes (see :func:`run_power`)
TEST_POLICIES = ("needed", "all")
#: pytest's exit code when tests ran and at least one failed
PYTEST_FAILED = 1


def real_catalogue() -> tuple[Sequence[Any], Sequence[Any]]:
    """The package's claims and mutants."""
    from asam_theory.claims import all_claims
    from asam_theory.mutants.catalog import all_mutants

    return all_claims(), all_mutants()


def _load_catalogue(provider: str) -> tuple[dict[str, tuple[Any, Any]], dict[str, Any]]:
    """``({check id: (claim, check)}, {mutant id: mutant})`` from a ``module:function``."""
    module, _, func = provider.partition(":")
    claims, mutants = getattr(importlib.import_module(module), func)()
    checks = {f"{c.id}.{ch.name}": (c, ch) for c in claims for ch in c.checks}
    return checks, {m.id: m for m in mutants}


def find_root() -> Path | None:
    """The repository root (the folder holding ``tests/conftest.py`` and ``pyproject.toml``
    above the package), or ``None`` for an installed package without its repository."""
    import asam_theory

    root = Path(asam_theory.__file__).resolve().parents[1]
    if (root / "tests" / "conftest.py").is_file() and (root / "pyproject.toml").is_file():
        return root
    return None


def targets(mode: str) -> dict[str, Any]:
    """The targets a power run is held to at this size (at quick size a check that never
    holds on the correct code — inconclusive in every repeat, or an empirical check whose
    answer there is *fails* — is not held to ``kills_min``: no kill can show at that size, and
    it is marked ``undecided_at_this_size``)."""
    quick = mode == "quick"
    return {"kill_rate_min": None if quick else KILL_RATE_TARGET,
            "killed_at_least_once": quick,
            "false_alarm_rate_max": FALSE_ALARM_TARGET,
            "kills_min": 1}


# --------------------------------------------------------------------------------- the jobs --

def _exception_line(text: str | None) -> str | None:
    """The line of a traceback that names the exception (its last non-empty line)."""
    if not text:
        return None
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip()[:300] if lines else None


def _run_check_job(job: dict) -> list[dict]:
    from asam_theory.claims.base import Settings, run_check

    checks, mutants = _load_catalogue(job["catalogue"])
    claim, check = checks[job["target"]]
    mutant = mutants[job["mutant"]] if job["mutant"] else None
    records: list[dict] = []
    try:
        with mutant.apply() if mutant is not None else contextlib.nullcontext():
            for seed in job["seeds"]:
                v = run_check(claim, check, Settings(mode=job["mode"], executor=None,
                                                     seed=seed))
                records.append({"seed": seed, "outcome": v.outcome, "ratio": v.ratio,
                                "seconds": round(v.seconds, 3),
                                "error": _exception_line(v.error)})
    except Exception:  # noqa: BLE001 - applying the mutant failed: an error, not a kill
        err = _exception_line(traceback.format_exc())
        records += [{"seed": s, "outcome": "error", "ratio": None, "seconds": 0.0,
                     "error": f"applying the mutant failed: {err}"}
                    for s in job["seeds"][len(records):]]
    return records


def _run_test_job(job: dict) -> list[dict]:
    root = Path(job["root"])
    env = {k: v for k, v in os.environ.items() if k != "ASAM_MUTANT"}
    if job["mutant"]:
        env["ASAM_MUTANT"] = job["mutant"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", job["target"]]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                              timeout=job["test_timeout"], check=False)
    except subprocess.TimeoutExpired:
        return [{"seed": None, "outcome": "error", "ratio": None,
                 "seconds": round(time.perf_counter() - t0, 3),
                 "error": f"pytest timed out after {job['test_timeout']} s"}]
    seconds = round(time.perf_counter() - t0, 3)
    if proc.returncode == 0:
        outcome, error = "holds", None
    elif proc.returncode == PYTEST_FAILED:
        outcome, error = "fails", None
    else:
        tail = [ln for ln in (proc.stdout + proc.stderr).strip().splitlines() if ln.strip()]
        outcome = "error"
        error = f"pytest exit code {proc.returncode}: {tail[-1][:300] if tail else ''}"
    return [{"seed": None, "outcome": outcome, "ratio": None, "seconds": seconds,
             "error": error}]


def run_job(job: dict) -> list[dict]:
    """Run one job (all its repeats) in this process; one small JSON-able record per run:
    ``seed``, ``outcome`` (``holds``/``fails``/``inconclusive``, or ``error`` when the harness
    failed), ``ratio``, ``seconds`` and ``error`` (the exception's line, or ``None``)."""
    return _run_test_job(job) if job["kind"] == "test" else _run_check_job(job)


def _child(conn, job: dict) -> None:  # pragma: no cover - runs in a spawned process
    try:
        conn.send(run_job(job))
    except BaseException:  # noqa: BLE001 - report anything, the parent decides
        conn.send([{"seed": s, "outcome": "error", "ratio": None, "seconds": 0.0,
                    "error": _exception_line(traceback.format_exc())}
                   for s in job["seeds"]])
    finally:
        conn.close()


def _error_records(job: dict, message: str) -> list[dict]:
    return [{"seed": s, "outcome": "error", "ratio": None, "seconds": 0.0, "error": message}
            for s in job["seeds"]]


def _context(catalogue: str):
    """A fork server that has imported the package (and the catalogue's module) once: each
    job's process is forked from it, so it starts in milliseconds with nothing computed yet
    (no cache filled, no patch made, no thread started); ``spawn`` where there is no fork
    server (then every job imports the package itself)."""
    if "forkserver" not in mp.get_all_start_methods():  # pragma: no cover - Windows
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["asam_theory.mutants.power", "asam_theory.claims",
                                "asam_theory.mutants.catalog", catalogue.partition(":")[0]])
    return ctx


def _run_processes(jobs: list[dict], workers: int,
                   done: Callable[[dict, list[dict]], None]) -> None:
    """Run ``jobs`` in order, each in its own spawned process, at most ``workers`` at once;
    a job past its ``timeout`` (seconds, or ``None``) is terminated."""
    ctx = _context(jobs[0]["catalogue"]) if jobs else None
    pending = list(jobs)
    running: dict[Any, tuple[dict, Any, float]] = {}  # conn -> (job, process, start)
    while pending or running:
        while pending and len(running) < workers:
            job = pending.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(send, job), daemon=True)
            proc.start()
            send.close()
            running[recv] = (job, proc, time.monotonic())
        limits = [start + job["timeout"] - time.monotonic()
                  for job, _, start in running.values() if job["timeout"] is not None]
        ready = wait(list(running), timeout=max(0.0, min(limits)) if limits else None)
        for conn in ready:
            job, proc, _ = running.pop(conn)
            try:
                records = conn.recv()
            except EOFError:  # the process died without an answer
                proc.join()
                records = _error_records(job, f"the job's process died (exit code "
                                              f"{proc.exitcode})")
            conn.close()
            proc.join()
            done(job, records)
        now = time.monotonic()
        for conn, (job, proc, start) in list(running.items()):
            if job["timeout"] is not None and now - start > job["timeout"]:
                proc.terminate()
                proc.join()
                conn.close()
                del running[conn]
                done(job, _error_records(job, f"timed out after {job['timeout']:.0f} s"))


def _execute(jobs: list[dict], workers: int, inline: bool,
             done: Callable[[dict, list[dict]], None]) -> None:
    if inline:
        for job in jobs:
            done(job, run_job(job))
        return
    _run_processes([j for j in jobs if not j["exclusive"]], workers, done)
    _run_processes([j for j in jobs if j["exclusive"]], 1, done)


# ------------------------------------------------------------------------------- the runner --

@dataclass(frozen=True)
class Plan:
    """What a power run will do: the checks run on the correct code, the tests run on it,
    each mutant's check and test targets, and targets named but unknown."""

    checks: tuple[str, ...]
    tests: tuple[str, ...]
    mutants: tuple[Any, ...]
    mutant_checks: dict[str, tuple[str, ...]]
    mutant_tests: dict[str, tuple[str, ...]]
    unknown: dict[str, tuple[str, ...]]

    def n_runs(self, repeats: int) -> int:
        """Runs in all: check runs times ``repeats`` plus one per test run."""
        n_check_jobs = len(self.checks) + sum(len(v) for v in self.mutant_checks.values())
        n_test_jobs = len(self.tests) + sum(len(v) for v in self.mutant_tests.values())
        return n_check_jobs * repeats + n_test_jobs

    def n_jobs(self) -> int:
        return (len(self.checks) + len(self.tests)
                + sum(len(v) for v in self.mutant_checks.values())
                + sum(len(v) for v in self.mutant_tests.values()))


def plan(mutant_ids: Sequence[str] | None = None, claim_ids: Sequence[str] | None = None,
         catalogue: str | None = None) -> Plan:
    """Resolve the selections.  No selection: every check of every claim, every mutant with
    all its checks and tests.  ``claim_ids``: the checks of those claims; each mutant keeps
    the checks it names among them (its tests are left out) and a mutant with none is left
    out.  ``mutant_ids``: those mutants; the correct code runs the checks they name (all checks
    of ``claim_ids`` when both are given).  ``ValueError`` for an unknown id, or a selected
    mutant with nothing to run.  ``catalogue``: a ``module:function`` returning ``(claims,
    mutants)`` (default :data:`DEFAULT_CATALOGUE`)."""
    checks, mutants = _load_catalogue(catalogue or DEFAULT_CATALOGUE)
    if claim_ids is not None:
        claim_ids = list(claim_ids)
        known = {c.id for c, _ in checks.values()}
        unknown = [c for c in claim_ids if c not in known]
        if unknown:
            raise ValueError(f"--claims: unknown claim id(s) {unknown}; known: {sorted(known)}")
        universe = [k for k, (c, _) in checks.items() if c.id in claim_ids]
    else:
        universe = list(checks)
    if mutant_ids is not None:
        unknown = [m for m in mutant_ids if m not in mutants]
        if unknown:
            raise ValueError(f"--mutants: unknown mutant id(s) {unknown}; "
                             f"known: {sorted(mutants)}")
        chosen = [mutants[m] for m in dict.fromkeys(mutant_ids)]
    else:
        chosen = list(mutants.values())
    in_universe = set(universe)
    m_checks: dict[str, tuple[str, ...]] = {}
    m_tests: dict[str, tuple[str, ...]] = {}
    missing: dict[str, tuple[str, ...]] = {}
    kept = []
    for m in chosen:
        bad = tuple(c for c in m.checks if c not in checks)
        if bad:
            missing[m.id] = bad
        mc = tuple(c for c in m.checks if c in in_universe)
        mt = tuple(m.tests) if claim_ids is None else ()
        if not mc and not mt:
            if mutant_ids is not None:
                raise ValueError(f"mutant {m.id!r} names no check among the selected claims "
                                 f"{claim_ids} and its tests are left out with --claims")
            continue
        kept.append(m)
        m_checks[m.id], m_tests[m.id] = mc, mt
    if claim_ids is None and mutant_ids is not None:
        named = {c for v in m_checks.values() for c in v}
        universe = [k for k in universe if k in named]
    tests = tuple(dict.fromkeys(t for v in m_tests.values() for t in v))
    return Plan(tuple(universe), tests, tuple(kept), m_checks, m_tests, missing)


def _order(jobs: list[dict], cost: dict[str, float]) -> list[dict]:
    """Longest first by estimated cost; unknown cost (tests) first of all."""
    return sorted(jobs, key=lambda j: -cost.get(j["target"], float("inf")))


def run_power(mode: str = "default", repeats: int | None = None, seed: int = 0, *,
              mutant_ids: Sequence[str] | None = None, claim_ids: Sequence[str] | None = None,
              jobs: int = 1, inline: bool = False, progress: bool = True,
              root: str | Path | None = None, catalogue: str | None = None,
              test_timeout: float = 1800.0, timeout_factor: float = 10.0,
              min_timeout: float = 300.0, tests: str = "needed") -> dict[str, Any]:
    """Run the power measurement and return the ``power.json`` payload (module docstring).

    ``jobs`` worker processes (each job in a fresh spawned process; ``inline=True`` runs
    them in this process); ``root`` the repository root the tests run from (default
    :func:`find_root`; without it the tests are reported as not run); ``catalogue`` a
    ``module:function`` returning ``(claims, mutants)`` (default :data:`DEFAULT_CATALOGUE`);
    a mutant job is terminated after
    ``max(min_timeout, timeout_factor ×`` the correct code's time for the same check``)``
    seconds and a pytest run after ``test_timeout`` seconds.

    ``tests="needed"`` (the default) runs a mutant's tests only when its checks did not kill
    it at the target rate (:func:`targets`) — the tests are there for the mutants the claims
    cannot see — and runs on the correct code only the tests that are then needed;
    ``tests="all"`` runs every named test under its mutant and on the correct code.
    """
    check_choice("mode", mode, MODES)
    repeats = DEFAULT_REPEATS[mode] if repeats is None else repeats
    check_int("repeats", repeats, low=1)
    check_int("seed", seed, low=0)
    check_int("jobs", jobs, low=1)
    check_positive("test_timeout", test_timeout)
    check_choice("tests", tests, TEST_POLICIES)
    catalogue = catalogue or DEFAULT_CATALOGUE
    t0 = time.perf_counter()
    p = plan(mutant_ids, claim_ids, catalogue)
    checks_by_id, _ = _load_catalogue(catalogue)
    root_path = Path(root) if root is not None else find_root()
    tests_dir_ok = root_path is not None and (root_path / "tests").is_dir()
    seeds = [seed + r for r in range(repeats)]
    base = {"mode": mode, "seeds": seeds, "catalogue": catalogue,
            "root": str(root_path) if root_path else None, "test_timeout": test_timeout}

    def check_job(mutant: str | None, target: str, timeout: float | None) -> dict:
        return {**base, "kind": "check", "mutant": mutant, "target": target, "timeout": timeout,
                "exclusive": checks_by_id[target][1].method in EXCLUSIVE_METHODS}

    def test_job(mutant: str | None, target: str) -> dict:
        return {**base, "kind": "test", "mutant": mutant, "target": target, "seeds": [None],
                "timeout": test_timeout + 60.0, "exclusive": False}

    results: dict[tuple[str | None, str], list[dict]] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=p.n_runs(repeats), desc="power", unit="run", file=sys.stderr)

    def done(job: dict, records: list[dict]) -> None:
        results[(job["mutant"], job["target"])] = records
        if bar is not None:
            bar.update(len(records))
            bar.set_postfix_str(f"{job['mutant'] or 'correct'}: {job['target']}"[:60])

    not_run_reason = None
    if p.tests and not tests_dir_ok:
        not_run_reason = ("the repository's tests folder was not found (an installed package "
                          "without its repository)")
    correct = [check_job(None, c, None) for c in p.checks]
    correct.sort(key=lambda j: (not j["exclusive"], j["target"]))
    skipped: dict[str, list[str]] = {}
    try:
        _execute(correct, jobs, inline, done)
        cost = {c: sum(r["seconds"] for r in results[(None, c)]) for c in p.checks}
        mutant_jobs = []
        for m in p.mutants:
            for c in p.mutant_checks[m.id]:
                timeout = max(min_timeout, timeout_factor * cost.get(c, min_timeout))
                mutant_jobs.append(check_job(m.id, c, timeout))
        _execute(_order(mutant_jobs, cost), jobs, inline, done)
        test_jobs: list[dict] = []
        if not_run_reason is None:
            goal = targets(mode)["kill_rate_min"]
            for m in p.mutants:
                # an empirical check's kill may prove uninformative (see summarise)
                rates = [_rate(results.get((m.id, c), [])) or 0.0 for c in p.mutant_checks[m.id]
                         if not getattr(checks_by_id[c][1], "empirical", False)]
                if tests == "needed" and rates and max(rates) >= (goal or 1.0 / repeats):
                    skipped[m.id] = list(p.mutant_tests[m.id])
                    continue
                test_jobs += [test_job(m.id, t) for t in p.mutant_tests[m.id]]
            needed = dict.fromkeys(j["target"] for j in test_jobs)
            test_jobs = [test_job(None, t) for t in needed] + test_jobs
        _execute(test_jobs, jobs, inline, done)
    finally:
        if bar is not None:
            bar.close()
    payload = summarise(p, results, mode=mode, repeats=repeats, seed=seed,
                        not_run_reason=not_run_reason, checks_by_id=checks_by_id,
                        skipped_tests=skipped)
    payload["tests_policy"] = tests
    payload["seconds"] = round(time.perf_counter() - t0, 1)
    return payload


# ------------------------------------------------------------------------------ the summary --

def _rate(records: list[dict]) -> float | None:
    """Fraction of runs that report ``fails`` (``None`` without runs)."""
    return sum(r["outcome"] == "fails" for r in records) / len(records) if records else None


def summarise(p: Plan, results: dict[tuple[str | None, str], list[dict]], *, mode: str,
              repeats: int, seed: int, not_run_reason: str | None,
              checks_by_id: dict[str, tuple[Any, Any]],
              skipped_tests: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The ``power.json`` payload from the runs' records (``seconds`` is added by the
    caller); ``problems`` lists every target missed.

    An *empirical* check (``Check.empirical``: an open question whose correct answer may be
    ``fails``) has no false-alarm rate: its row gives ``agreement``, the share of the correct
    runs with its most common outcome, and a mutant's ``fails`` counts as a kill only where
    that most common outcome is not ``fails`` (else the cell is ``None``: uninformative).
    ``skipped_tests`` names, per mutant, the tests not run because its checks killed it."""
    tg = targets(mode)
    skipped_tests = skipped_tests or {}

    def empirical(target: str) -> bool:
        return target in checks_by_id and bool(getattr(checks_by_id[target][1], "empirical",
                                                       False))

    def usual(target: str) -> str | None:
        """``"fails"`` when the correct code fails in most repeats (a tie is not most: the
        mutant's failures then still say something), else its most common other outcome."""
        outs = [r["outcome"] for r in results.get((None, target), [])]
        if not outs:
            return None
        if 2 * outs.count("fails") > len(outs):
            return "fails"
        rest = [o for o in outs if o != "fails"]
        return max(sorted(set(rest)), key=rest.count)
    problems: list[dict] = []

    def problem(kind: str, id_: str, message: str) -> None:
        problems.append({"kind": kind, "id": id_, "message": message})

    mutant_rows = []
    for m in p.mutants:
        per_check: dict[str, float | None] = {}
        errors: list[dict] = []
        seconds = 0.0
        for target in p.mutant_checks[m.id] + p.mutant_tests[m.id]:
            recs = results.get((m.id, target))
            if recs is None and target in skipped_tests.get(m.id, ()):
                continue
            uninformative = empirical(target) and usual(target) == "fails"
            per_check[target] = _rate(recs) if recs and not uninformative else None
            seconds += sum(r["seconds"] for r in recs or [])
            errors += [{"target": target, "seed": r["seed"], "outcome": r["outcome"],
                        "error": r["error"]} for r in recs or [] if r["error"]]
        rates = [r for r in per_check.values() if r is not None]
        kill_rate = max(rates) if rates else None
        claims = sorted({checks_by_id[c][0].id for c in m.checks if c in checks_by_id})
        row = {"id": m.id, "family": m.family, "breaks": m.breaks, "claims": claims,
               "kill_rate": kill_rate,
               "killed_by": [t for t, r in per_check.items() if r],
               "per_check": per_check, "checks": list(m.checks), "tests": list(m.tests),
               "tests_skipped": skipped_tests.get(m.id, []),
               "errors": errors, "seconds": round(seconds, 2)}
        harness = [e for e in errors if e["outcome"] == "error"]
        if harness:
            problem("error", m.id, f"mutant {m.id}: {len(harness)} run(s) could not be "
                    f"judged (not counted as kills): {harness[0]['error']}")
        if m.id in p.unknown:
            problem("unknown_check", m.id, f"mutant {m.id} names unknown check(s) "
                    f"{list(p.unknown[m.id])}")
        uninformative = [t for t, r in per_check.items() if r is None
                         and results.get((m.id, t))]
        if kill_rate is None and uninformative:
            row["uninformative"] = uninformative
            problem("uninformative", m.id, f"mutant {m.id} is named only by empirical checks "
                    f"that fail on the correct code too ({', '.join(uninformative)}): their "
                    "failures under it show nothing")
        elif kill_rate is None:
            why = not_run_reason if not_run_reason and p.mutant_tests[m.id] else "nothing ran"
            row["not_run"] = why
            problem("not_run", m.id, f"mutant {m.id} was not measured: {why}")
        elif tg["killed_at_least_once"] and kill_rate == 0:
            problem("survives", m.id, f"mutant {m.id} was never killed ({m.breaks})")
        elif tg["kill_rate_min"] is not None and kill_rate < tg["kill_rate_min"]:
            problem("survives", m.id, f"mutant {m.id}: best kill rate {kill_rate:.2f} < "
                    f"{tg['kill_rate_min']} ({m.breaks})")
        mutant_rows.append(row)

    check_rows = []
    run_tests = tuple(t for t in p.tests if (None, t) in results)
    for target in p.checks + run_tests:
        recs = results.get((None, target), [])
        outcomes = [r["outcome"] for r in recs]
        fa = None if empirical(target) else _rate(recs)
        kills = sum(1 for row in mutant_rows if row["per_check"].get(target))
        method = checks_by_id[target][1].method if target in checks_by_id else "test"
        check_rows.append({"id": target, "false_alarm_rate": fa, "kills": kills,
                           "method": method, "outcomes": outcomes,
                           "seconds": round(sum(r["seconds"] for r in recs) / len(recs), 3)
                           if recs else None,
                           "errors": [r["error"] for r in recs if r["error"]]})
        if empirical(target):
            check_rows[-1]["empirical"] = True
            check_rows[-1]["agreement"] = (outcomes.count(usual(target)) / len(outcomes)
                                           if outcomes else None)
        if fa is not None and fa > tg["false_alarm_rate_max"]:
            problem("false_alarm", target, f"check {target} fails on the correct code in "
                    f"{outcomes.count('fails')} of {len(outcomes)} runs (rate {fa:.2f} > "
                    f"{tg['false_alarm_rate_max']})")
        if "error" in outcomes:
            problem("error", target, f"check {target} could not run on the correct code: "
                    f"{next(r['error'] for r in recs if r['outcome'] == 'error')}")
        # never "holds" on the correct code: undecided at this size, or an empirical check
        # whose answer here is "fails" (a finding) — either way no kill can show
        undecided = bool(outcomes) and "holds" not in outcomes and (
            set(outcomes) == {"inconclusive"} or empirical(target))
        if not recs and not_run_reason:
            check_rows[-1]["not_run"] = not_run_reason
        elif mode == "quick" and undecided and kills < tg["kills_min"]:
            # too small to reach a verdict at this size even on the correct code (an
            # underpowered real-data check): its kills are held to the default size
            check_rows[-1]["undecided_at_this_size"] = True
        elif kills < tg["kills_min"]:
            named = any(target in p.mutant_checks[m.id] + p.mutant_tests[m.id]
                        for m in p.mutants)
            problem("kills_none", target, f"check {target} kills no mutant"
                    + ("" if named else " (no selected mutant names it)"))
    return {"mutants": mutant_rows, "checks": check_rows, "repeats": repeats, "mode": mode,
            "seed": seed, "seconds": None, "targets": tg, "problems": problems}
