r"""The power runner: how often each check kills each mutant, and how often it fails on the
correct code.

For a mode (``quick``/``default``/``full``), ``R`` repeats and a master seed ``s``:

* every selected claim check runs ``R`` times on the correct code, repeat ``r`` with
  ``Settings(mode, executor=None, seed=s + SEED_BLOCK·r, judge_time=False)``,
  ``r = 0..R-1`` (:data:`SEED_BLOCK`: the repeats' seeds are disjoint, so they are
  independent trials; ``judge_time=False``: a step-time part — HEADLINE's — is measured and
  reported but not judged, since whether it is judged at all depends on the machine's load
  during the repeat, which would make the correct code "flip" between repeats for reasons
  that are not the code's; the code's step contract is held by tests instead);
* every mutant of the catalogue (:func:`asam_theory.mutants.all_mutants`) runs each of its
  ``checks`` with the same ``R`` seeds while the mutant is active;
* a mutant's ``tests`` run once each (tests are deterministic): ``python -m pytest -q -x -p
  no:cacheprovider <test>`` from the repository root with ``ASAM_MUTANT=<id>``
  (``tests/conftest.py`` applies the mutant); the test kills it iff pytest exits with 1 (a test
  failed).  Each test is also run once on the correct code: a test that fails there kills
  nothing credibly and counts as a false alarm.

**Outcomes.**  A run's outcome is ``holds``, ``fails``, ``inconclusive`` or ``error``.  An
*error* — the check raised (``run_check`` reports it so), the mutant could not be applied,
the job timed out or its process died, pytest exited 2–5 — is never a kill and never a false
alarm: it counts in the rate's denominator (a repeat that showed nothing) and is reported
apart.  A mutant whose only "kills" are errors is not killed: it is listed under
``survives`` with its error lines under ``error``.  Errors on the correct code are problems
of the check (a broken check), not false alarms.

**Rates** (:mod:`asam_theory.mutants.rates`; every rate with its exact 95 % Clopper–Pearson
interval):

* a decided check kills a mutant in a repeat when it reports ``fails``; kill rate
  :math:`k/R`; its false-alarm rate is the share of ``fails`` on the correct code;
* an *empirical* check (``Check.empirical``: an open question whose answer on the correct code
  may be ``fails``) kills by *any* change from the correct code's usual outcome, ``fails`` →
  ``holds`` included (a mutant that makes AsyncSAM look good must show), net of the correct
  code's own changes.  With :math:`o^*` the correct code's modal outcome over its repeats
  (errors left out; ties to ``holds`` before ``inconclusive`` before ``fails``), :math:`k_c`
  the share of its repeats with another outcome (its *flip rate*: the false-alarm rate of an
  empirical check, held to the same target) and :math:`k_m` the mutant's share with an
  outcome other than :math:`o^*` (errors not counted as flips), the kill rate is Abbott's
  corrected rate

  .. math:: \kappa=\max\Big(0,\frac{k_m-k_c}{1-k_c}\Big),

  so a kill must exceed the correct code's own flip rate; the one-sided Fisher exact p-value
  of :math:`k_m>k_c` is reported with it.

A mutant's kill rate is the best rate over its checks and tests (``best_by`` names the
target; ``per_check`` and ``per_check_ci`` give every target's rate and interval beside it).
With ``R`` repeats a rate is a multiple of ``1/R``: the smallest non-zero false-alarm rate is
``1/R``, so a target of 0.05 needs ``R ≥ 20`` to be met by anything but a clean record, and a
kill rate of 0.95 (19 of 20, interval [0.75, 1.00]) needs ``R ≥ 20`` to differ from 1.  The
targets (:func:`targets`): at ``default``/``full`` size every mutant's kill rate ≥ 0.95, at
``quick`` size every mutant killed at least once; every check's false-alarm rate ≤ 0.05; every
check kills at least one mutant (a check of a claim that no mutant names kills none).  Every
miss is listed in ``problems``.

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
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from asam_theory.mutants.rates import CONFIDENCE, fails_rate, flip_kill, flip_rate, modal_outcome
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
#: repeat r runs with master seed s + SEED_BLOCK * r.  A check draws consecutive seeds from its
#: master seed — ``range(seed, seed + n)`` for the real-data runs (n = 30 paired seeds for
#: HEADLINE at full size), and the engine gives seed i of a run started at ``seed`` the
#: streams of ``seed + i`` (:mod:`asam_theory.rng`), which EXACT-MC runs with 1000, 2000 and
#: 20 000 seeds (quick, default, full).  With consecutive master seeds (s + r) neighbouring
#: repeats shared n - 1 of n seeds; blocks of SEED_BLOCK keep every repeat's seeds disjoint
#: from every other's — independent trials — for any check that draws fewer than SEED_BLOCK
#: consecutive seeds, which holds for the whole catalogue (the largest draw, EXACT-MC's
#: 20 000 at full size, leaves a factor 5; a block of 1000 would overlap EXACT-MC's repeats by
#: half already at default size)
SEED_BLOCK = 100_000


def repeat_seeds(seed: int, repeats: int) -> list[int]:
    """The master seeds of the repeats: ``seed + SEED_BLOCK * r`` for ``r < repeats``."""
    return [seed + SEED_BLOCK * r for r in range(repeats)]


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
                                                     seed=seed, judge_time=False))
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
    ``seed``, ``outcome`` (``holds``/``fails``/``inconclusive``, or ``error`` when the check
    raised or the harness failed), ``ratio``, ``seconds`` and ``error`` (the exception's
    line, or ``None``)."""
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
    a job past its ``timeout`` (seconds, or ``None``) is terminated.

    The job processes are not daemonic: a check may start processes of its own (THREADED runs
    AsyncSAM's worker in a spawned process every third run, ``WorkerOptions(backend=
    "process")``), which a daemonic process may not.  So that none outlives the runner, every
    job process still running when this function leaves (an exception, an interrupt) is
    terminated."""
    ctx = _context(jobs[0]["catalogue"]) if jobs else None
    pending = list(jobs)
    running: dict[Any, tuple[dict, Any, float]] = {}  # conn -> (job, process, start)
    try:
        _drive(ctx, pending, running, workers, done)
    finally:
        for conn, (_job, proc, _start) in running.items():
            proc.terminate()
            proc.join()
            conn.close()


def _drive(ctx: Any, pending: list[dict], running: dict[Any, tuple[dict, Any, float]],
           workers: int, done: Callable[[dict, list[dict]], None]) -> None:
    """:func:`_run_processes`' loop: start jobs from ``pending`` while fewer than ``workers``
    run, hand each finished job's records to ``done``, terminate jobs past their limit."""
    while pending or running:
        while pending and len(running) < workers:
            job = pending.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(send, job), daemon=False)
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


def read_journal(path: str | Path) -> dict[tuple[str | None, str], list[dict]]:
    """The ``(mutant or None, target) -> records`` of the jobs a journal recorded (a run's
    ``journal``; a last line cut off by a stopped run is skipped)."""
    out: dict[tuple[str | None, str], list[dict]] = {}
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        out[(row["mutant"], row["target"])] = row["records"]
    return out


def _order(jobs: list[dict], cost: dict[str, float]) -> list[dict]:
    """Longest first by estimated cost; unknown cost (tests) first of all."""
    return sorted(jobs, key=lambda j: -cost.get(j["target"], float("inf")))


def run_power(mode: str = "default", repeats: int | None = None, seed: int = 0, *,
              mutant_ids: Sequence[str] | None = None, claim_ids: Sequence[str] | None = None,
              jobs: int = 1, inline: bool = False, progress: bool = True,
              root: str | Path | None = None, catalogue: str | None = None,
              test_timeout: float = 1800.0, timeout_factor: float = 10.0,
              min_timeout: float = 300.0, tests: str = "needed",
              journal: str | Path | None = None,
              resume: Mapping[tuple[str | None, str], list[dict]] | None = None,
              ) -> dict[str, Any]:
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

    ``journal``: a JSON-lines file that gets one line per finished job (``mutant``, ``target``,
    ``records``) as it finishes, so that a long run stopped early still has its numbers
    (:func:`read_journal`, then :func:`summarise`).  ``resume``: the jobs of a stopped run of
    the same plan, seeds and catalogue (:func:`read_journal` of its journal): their records
    are taken as they are and the jobs are not run again; a record set whose seeds are not
    this run's is refused (a ``ValueError`` naming the job).
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
    seeds = repeat_seeds(seed, repeats)
    base = {"mode": mode, "seeds": seeds, "catalogue": catalogue,
            "root": str(root_path) if root_path else None, "test_timeout": test_timeout}

    def check_job(mutant: str | None, target: str, timeout: float | None) -> dict:
        return {**base, "kind": "check", "mutant": mutant, "target": target, "timeout": timeout,
                "exclusive": checks_by_id[target][1].method in EXCLUSIVE_METHODS}

    def test_job(mutant: str | None, target: str) -> dict:
        return {**base, "kind": "test", "mutant": mutant, "target": target, "seeds": [None],
                "timeout": test_timeout + 60.0, "exclusive": False}

    results: dict[tuple[str | None, str], list[dict]] = {}
    planned = ({(None, c) for c in (*p.checks, *p.tests)}
               | {(m, c) for m, cs in p.mutant_checks.items() for c in cs}
               | {(m, t) for m, ts in p.mutant_tests.items() for t in ts})
    for key, records in (resume or {}).items():
        if key not in planned:
            raise ValueError(f"resume: the recorded job {key} is not in this run's plan: "
                             "resume with the stopped run's --claims, --mutants and catalogue")
        want = [None] if key[1] in p.tests else seeds
        got = [r.get("seed") for r in records]
        if got != list(want):
            raise ValueError(f"resume: the recorded job {key} ran seeds {got}, this run's are "
                             f"{list(want)}: resume with the stopped run's --repeats and --seed")
        results[key] = records
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=p.n_runs(repeats), desc="power", unit="run", file=sys.stderr,
                   initial=sum(len(r) for r in results.values()))

    journal_file = None
    if journal is not None:
        Path(journal).parent.mkdir(parents=True, exist_ok=True)
        journal_file = Path(journal).open("a")

    def done(job: dict, records: list[dict]) -> None:
        results[(job["mutant"], job["target"])] = records
        if journal_file is not None:
            journal_file.write(json.dumps({"mutant": job["mutant"], "target": job["target"],
                                           "records": records}) + "\n")
            journal_file.flush()
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
    def todo(batch: list[dict]) -> list[dict]:
        return [j for j in batch if (j["mutant"], j["target"]) not in results]

    try:
        _execute(todo(correct), jobs, inline, done)
        cost = {c: sum(r["seconds"] for r in results[(None, c)]) for c in p.checks}
        mutant_jobs = []
        for m in p.mutants:
            for c in p.mutant_checks[m.id]:
                timeout = max(min_timeout, timeout_factor * cost.get(c, min_timeout))
                mutant_jobs.append(check_job(m.id, c, timeout))
        _execute(todo(_order(mutant_jobs, cost)), jobs, inline, done)
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
        _execute(todo(test_jobs), jobs, inline, done)
    finally:
        if bar is not None:
            bar.close()
        if journal_file is not None:
            journal_file.close()
    payload = summarise(p, results, mode=mode, repeats=repeats, seed=seed,
                        not_run_reason=not_run_reason, checks_by_id=checks_by_id,
                        skipped_tests=skipped)
    payload["tests_policy"] = tests
    payload["seconds"] = round(time.perf_counter() - t0, 1)
    return payload


# ------------------------------------------------------------------------------ the summary --

def _rate(records: list[dict]) -> float | None:
    """Fraction of runs that report ``fails`` (``None`` without runs)."""
    r = fails_rate(records)
    return None if r is None else r.rate


def _error_lines(records: list[dict], limit: int = 3) -> list[str]:
    """The distinct error lines of the runs, at most ``limit``."""
    return list(dict.fromkeys(r["error"] for r in records
                              if r["outcome"] == "error" and r["error"]))[:limit]


def summarise(p: Plan, results: dict[tuple[str | None, str], list[dict]], *, mode: str,
              repeats: int, seed: int, not_run_reason: str | None,
              checks_by_id: dict[str, tuple[Any, Any]],
              skipped_tests: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The ``power.json`` payload from the runs' records (``seconds`` is added by the
    caller); ``problems`` lists every target missed.

    Per mutant: ``per_check`` (target → kill rate, or ``None`` where nothing could be
    measured), ``per_check_ci`` (target → its 95 % interval), ``per_check_detail`` (kills,
    runs, errors, the rule — ``fails`` or, for an empirical check, ``flip`` with its
    reference outcome, the correct code's flip rate and the Fisher p-value), ``kill_rate``
    (the best over its targets), ``kill_rate_ci`` and ``best_by`` (that target), ``errors``
    (every run with an error line).  Per check on the correct code: ``false_alarm_rate``
    (``fails``; for an empirical check the flip rate off its ``usual`` outcome) with
    ``false_alarm_ci``, ``error_rate``, ``kills``.  The counting rules are in
    :mod:`asam_theory.mutants.rates`.  ``skipped_tests`` names, per mutant, the tests not run
    because its checks killed it."""
    tg = targets(mode)
    skipped_tests = skipped_tests or {}

    def empirical(target: str) -> bool:
        return target in checks_by_id and bool(getattr(checks_by_id[target][1], "empirical",
                                                       False))

    problems: list[dict] = []

    def problem(kind: str, id_: str, message: str) -> None:
        problems.append({"kind": kind, "id": id_, "message": message})

    def kill(target: str, recs: list[dict]) -> tuple[float | None, list | None, dict]:
        """(rate, interval, detail) of one (mutant, target) pair."""
        if empirical(target):
            fk = flip_kill(recs, results.get((None, target), []))
            if fk is None:
                return None, None, {"rule": "flip", "runs": len(recs),
                                    "errors": sum(r["outcome"] == "error" for r in recs)}
            return fk.rate, [fk.low, fk.high], {"rule": "flip", "kills": fk.mutant.k,
                                                "runs": fk.mutant.n,
                                                "errors": fk.mutant.errors,
                                                "reference": fk.reference,
                                                "correct_flip_rate": fk.correct.rate,
                                                "fisher_p": fk.fisher_p}
        r = fails_rate(recs)
        assert r is not None
        return r.rate, [r.low, r.high], {"rule": "fails", "kills": r.k, "runs": r.n,
                                         "errors": r.errors}

    mutant_rows = []
    for m in p.mutants:
        per_check: dict[str, float | None] = {}
        per_ci: dict[str, list | None] = {}
        detail: dict[str, dict] = {}
        errors: list[dict] = []
        seconds = 0.0
        for target in p.mutant_checks[m.id] + p.mutant_tests[m.id]:
            recs = results.get((m.id, target))
            if recs is None and target in skipped_tests.get(m.id, ()):
                continue
            if recs:
                per_check[target], per_ci[target], detail[target] = kill(target, recs)
            else:
                per_check[target], per_ci[target] = None, None
            seconds += sum(r["seconds"] for r in recs or [])
            errors += [{"target": target, "seed": r["seed"], "outcome": r["outcome"],
                        "error": r["error"]} for r in recs or [] if r["error"]]
        rated = {t: r for t, r in per_check.items() if r is not None}
        best_by = max(rated, key=lambda t: (rated[t], per_ci[t][1])) if rated else None
        kill_rate = rated[best_by] if best_by is not None else None
        claims = sorted({checks_by_id[c][0].id for c in m.checks if c in checks_by_id})
        row = {"id": m.id, "family": m.family, "breaks": m.breaks, "claims": claims,
               "kill_rate": kill_rate,
               "kill_rate_ci": per_ci[best_by] if best_by is not None else None,
               "best_by": best_by,
               "killed_by": [t for t, r in per_check.items() if r],
               "per_check": per_check, "per_check_ci": per_ci, "per_check_detail": detail,
               "checks": list(m.checks), "tests": list(m.tests),
               "tests_skipped": skipped_tests.get(m.id, []),
               "errors": errors, "seconds": round(seconds, 2)}
        failed_runs = [e for e in errors if e["outcome"] == "error"]
        if failed_runs:
            lines = list(dict.fromkeys(e["error"] for e in failed_runs))
            problem("error", m.id, f"mutant {m.id}: {len(failed_runs)} run(s) raised or "
                    f"could not be judged (errors, not kills): " + " | ".join(lines[:3])
                    + (f" (and {len(lines) - 3} more)" if len(lines) > 3 else ""))
        if m.id in p.unknown:
            problem("unknown_check", m.id, f"mutant {m.id} names unknown check(s) "
                    f"{list(p.unknown[m.id])}")
        only_errors = " (its errors are not kills)" if failed_runs else ""
        if kill_rate is None:
            why = not_run_reason if not_run_reason and p.mutant_tests[m.id] else "nothing ran"
            if any(results.get((m.id, t)) for t in per_check):
                why = "every correct-code run of its checks was an error: no reference"
            row["not_run"] = why
            problem("not_run", m.id, f"mutant {m.id} was not measured: {why}")
        elif tg["killed_at_least_once"] and kill_rate == 0:
            problem("survives", m.id, f"mutant {m.id} was never killed{only_errors} "
                    f"({m.breaks})")
        elif tg["kill_rate_min"] is not None and kill_rate < tg["kill_rate_min"]:
            problem("survives", m.id, f"mutant {m.id}: best kill rate {kill_rate:.2f} < "
                    f"{tg['kill_rate_min']}{only_errors} ({m.breaks})")
        mutant_rows.append(row)

    check_rows = []
    run_tests = tuple(t for t in p.tests if (None, t) in results)
    for target in p.checks + run_tests:
        recs = results.get((None, target), [])
        outcomes = [r["outcome"] for r in recs]
        usual = modal_outcome(recs) if empirical(target) else None
        fa = (flip_rate(recs, usual) if usual is not None else None) if empirical(target) \
            else fails_rate(recs)
        n_err = outcomes.count("error")
        kills = sum(1 for row in mutant_rows if row["per_check"].get(target))
        method = checks_by_id[target][1].method if target in checks_by_id else "test"
        row = {"id": target, "false_alarm_rate": None if fa is None else fa.rate,
               "false_alarm_ci": None if fa is None else [fa.low, fa.high],
               "false_alarms": None if fa is None else fa.k,
               "error_rate": n_err / len(recs) if recs else None,
               "kills": kills, "method": method, "outcomes": outcomes,
               "seconds": round(sum(r["seconds"] for r in recs) / len(recs), 3)
               if recs else None,
               "errors": [r["error"] for r in recs if r["error"]]}
        if empirical(target):
            row["empirical"] = True
            row["usual"] = usual
            row["agreement"] = None if fa is None else 1.0 - fa.rate
        check_rows.append(row)
        if fa is not None and fa.rate > tg["false_alarm_rate_max"]:
            what = (f"its outcome differs from the usual {usual!r}" if empirical(target)
                    else "it fails")
            problem("false_alarm", target, f"check {target}: on the correct code {what} in "
                    f"{fa.k} of {fa.n} runs (rate {fa.rate:.2f} [{fa.low:.2f}, {fa.high:.2f}]"
                    f" > {tg['false_alarm_rate_max']})")
        if n_err:
            problem("error", target, f"check {target} raised or could not run on the correct "
                    f"code in {n_err} of {len(recs)} runs (a broken check, not a false "
                    f"alarm): " + " | ".join(_error_lines(recs)))
        # never "holds" on the correct code: undecided at this size, or an empirical check
        # whose answer here is "fails" (a finding) — either way no kill may show at quick size
        undecided = bool(outcomes) and "holds" not in outcomes and (
            set(outcomes) == {"inconclusive"} or empirical(target))
        if not recs and not_run_reason:
            row["not_run"] = not_run_reason
        elif mode == "quick" and undecided and kills < tg["kills_min"]:
            # too small to reach a verdict at this size even on the correct code (an
            # underpowered real-data check): its kills are held to the default size
            row["undecided_at_this_size"] = True
        elif kills < tg["kills_min"]:
            named = any(target in p.mutant_checks[m.id] + p.mutant_tests[m.id]
                        for m in p.mutants)
            problem("kills_none", target, f"check {target} kills no mutant"
                    + ("" if named else " (no selected mutant names it)"))
    return {"mutants": mutant_rows, "checks": check_rows, "repeats": repeats, "mode": mode,
            "seed": seed, "seeds": repeat_seeds(seed, repeats), "seed_block": SEED_BLOCK,
            "confidence": CONFIDENCE, "seconds": None, "targets": tg, "problems": problems}
