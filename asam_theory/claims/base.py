r"""Claims, checks, outcomes and verdicts: the vocabulary every face of asam-theory reports in.

A :class:`Claim` is data — an id, a statement (Markdown with LaTeX), its source (paper, our
theorem, literature) and one or more :class:`Check` s, each an *independent* way to test the
statement (symbolic proof, exact analysis, Monte Carlo, a real threaded run, PEP, real data).
A check returns an :class:`Outcome`: whether the statement *holds*, *fails*, or is
*inconclusive* (its precondition was not met), the measured value, the bound it is held to, the
ratio measured/bound, the config, a table of measured against bound, and figure data.
:func:`run_check` times the check and wraps its outcome into a :class:`Verdict` that names the
claim and the check; a check that raises gets the fourth status, *error* (a broken check, not
a finding about the statement: reported apart, never counted as *fails* or *holds*).
Adding a new paper's claim means writing one :class:`Claim` in a claim module's ``CLAIMS``
tuple (:mod:`asam_theory.claims.catalog` lists the modules).
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from asam_theory.sweeps import RunCache

Mode = Literal["quick", "default", "full"]
METHODS = ("symbolic", "exact", "monte_carlo", "threaded", "numerical", "pep", "real_data")
CheckStatus = Literal["holds", "fails", "inconclusive"]
#: what a check may return in its :class:`Outcome`
CHECK_STATUSES: tuple[CheckStatus, ...] = ("holds", "fails", "inconclusive")
Status = Literal["holds", "fails", "inconclusive", "error"]
#: a :class:`Verdict`'s outcome: a check's status, or ``error`` when the check raised (set by
#: :func:`run_check` only)
STATUSES: tuple[Status, ...] = (*CHECK_STATUSES, "error")
RatioKind = Literal["bound", "target", "threshold"]
#: what a check's ratio means: ``bound`` — measured/bound, ≤ 1 holds; ``target`` —
#: measured/target, holds within ``1 ± ratio_tol``; ``threshold`` — measured/threshold, ≥ 1
#: holds.  A check whose ratio has none of these meanings declares ``ratio_kind=None``.
RATIO_KINDS: tuple[RatioKind, ...] = ("bound", "target", "threshold")


@dataclass
class Settings:
    """How hard a check works: ``quick`` (tests), ``default`` (the ≤ 5 min report) or
    ``full``; the executor runs sweeps (``None`` = in this process).  ``judge_time=False``
    (the power runner's setting) has a step-time part measured and reported but not judged:
    on a shared machine its verdict follows the machine's load (judged only when the second
    core is idle), which would count as the correct code's own flips, not as the code's.
    ``runs`` keeps the training runs of this run's sweeps by config, so that checks
    comparing against the same baseline (HEADLINE's two variants against one SGD and SAM)
    share it instead of training it twice (:class:`asam_theory.sweeps.RunCache`)."""

    mode: Mode = "default"
    executor: Executor | None = None
    seed: int = 0
    judge_time: bool = True
    runs: RunCache = field(default_factory=RunCache, repr=False, compare=False)

    def pick(self, quick, default, full=None):
        """The value for this mode (``full`` defaults to ``default``)."""
        return {"quick": quick, "default": default,
                "full": default if full is None else full}[self.mode]


def _clean(value: Any) -> Any:
    """JSON-able copy: numpy scalars/arrays to Python, non-finite floats to ``None``."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


@dataclass(frozen=True)
class Outcome:
    """What a check found: ``status`` is ``"holds"``, ``"fails"`` or ``"inconclusive"`` (the
    check's precondition was not met, so it says nothing either way); ``"error"`` is not a
    check's to return — :func:`run_check` gives it to a check that raised.

    ``measured``/``bound``/``ratio`` summarise it (for a sweep: the configuration with the
    worst ratio); ``table`` lists measured against bound per configuration; ``figure`` is
    JSON-able data the check's ``plot`` turns into a PNG.  ``ratio`` is measured/bound (or
    None); what it means — a bound, a target or a threshold — the :class:`Check` declares
    (``ratio_kind``).
    """

    status: CheckStatus
    summary: str = ""
    measured: Any = None
    bound: Any = None
    ratio: float | None = None
    config: dict = field(default_factory=dict)
    table: list[dict] = field(default_factory=list)
    figure: dict | None = None

    def __post_init__(self) -> None:
        if self.status not in CHECK_STATUSES:
            raise ValueError(f"status must be one of {list(CHECK_STATUSES)}, got "
                             f"{self.status!r}" + (" (a check that cannot run raises; "
                                                   "run_check reports it as an error)"
                                                   if self.status == "error" else ""))

    @classmethod
    def judged(cls, holds: bool, summary: str = "", **fields: Any) -> Outcome:
        """``holds`` if the condition is true, else ``fails``."""
        return cls("holds" if holds else "fails", summary, **fields)

    @classmethod
    def inconclusive(cls, summary: str, **fields: Any) -> Outcome:
        """The check's precondition was not met; ``summary`` says which."""
        return cls("inconclusive", summary, **fields)

    @property
    def passed(self) -> bool:
        """True iff the statement holds."""
        return self.status == "holds"


@dataclass(frozen=True)
class Verdict:
    """One check's outcome as reported: the claim and check it belongs to, the method, the
    :class:`Outcome`'s fields, the traceback if the check raised (then its outcome is
    ``error``: neither a pass nor a failure of the statement) and the run time in seconds,
    and what its ratio means (``ratio_kind``, ``ratio_tol``, ``ratio_note``: copied from the
    :class:`Check`).  ``passed`` is kept for readers of
    ``verdicts.json``: true iff the outcome ``holds``."""

    claim_id: str
    check: str
    method: str
    outcome: Status
    measured: Any = None
    bound: Any = None
    ratio: float | None = None
    summary: str = ""
    config: dict = field(default_factory=dict)
    table: list[dict] = field(default_factory=list)
    figure: dict | None = None
    error: str | None = None
    seconds: float = 0.0
    ratio_kind: RatioKind | None = "bound"
    ratio_tol: float | None = None
    ratio_note: str = ""

    @property
    def id(self) -> str:
        return f"{self.claim_id}.{self.check}"

    @property
    def passed(self) -> bool:
        return self.outcome == "holds"

    def to_json(self) -> dict:
        d = _clean(asdict(self))
        return {"id": self.id, **d, "passed": self.passed}


@dataclass(frozen=True)
class Check:
    """One independent way to test a claim: ``run(settings) -> Outcome``, and optionally
    ``plot(verdict, ax)`` drawing its figure with ``caption`` under it in the report: what
    to look for in the figure and which way is good (a check with a plot should have one).

    The check declares what the ratio of its outcomes means (the report draws it so, and
    colours it by the outcome, never by the number): ``ratio_kind`` one of
    :data:`RATIO_KINDS` — ``"bound"`` (measured/bound, ≤ 1 holds; the default),
    ``"target"`` (measured/target, holds within ``1 ± ratio_tol``, which it then must give),
    ``"threshold"`` (measured/threshold, ≥ 1 holds) — or ``None`` (the ratio has none of these
    meanings); ``ratio_note`` says in a sentence what the ratio is when it is not plain
    measured/bound (e.g. a statistical slack that lets a ratio a little above 1 hold).

    ``empirical`` marks a check of an open empirical question — a paper's promise on real
    data, whose answer may be "fails" on correct code (then that is the finding).  Its
    failures on the correct code are not false alarms: ``asam-theory power`` counts as a kill
    *any* change from the correct code's usual (modal) outcome — ``fails`` → ``holds``
    included — net of how often the correct code itself changes
    (:mod:`asam_theory.mutants.rates`)."""

    name: str
    method: str
    description: str
    run: Callable[[Settings], Outcome]
    plot: Callable[[Verdict, Any], None] | None = None
    caption: str = ""
    ratio_kind: RatioKind | None = "bound"
    ratio_tol: float | None = None
    ratio_note: str = ""
    empirical: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.ratio_kind is not None and self.ratio_kind not in RATIO_KINDS:
            raise ValueError(f"ratio_kind must be one of {list(RATIO_KINDS)} or None, got "
                             f"{self.ratio_kind!r}")
        if self.ratio_kind == "target" and not (
                isinstance(self.ratio_tol, (int, float)) and 0 < self.ratio_tol < 1):
            raise ValueError("ratio_tol must be a number in (0, 1) for ratio_kind 'target', "
                             f"got {self.ratio_tol!r}")


@dataclass(frozen=True)
class Claim:
    """A statement with its source and the independent checks that test it."""

    id: str
    title: str
    statement: str
    source: str
    checks: tuple[Check, ...]

    def run(self, settings: Settings, only: Sequence[str] | None = None) -> list[Verdict]:
        """Run the checks (those named in ``only``, if given) in order."""
        return [run_check(self, check, settings) for check in self.checks
                if only is None or check.name in only]


def run_check(claim: Claim, check: Check, settings: Settings) -> Verdict:
    """Run a check and build its :class:`Verdict`.  An exception inside the check (or a
    return value that is not an :class:`Outcome`) makes the outcome ``error`` — the check is
    broken, which says nothing about the statement — and the verdict carries the traceback;
    the report continues with the next check."""
    t0 = time.perf_counter()
    error = None
    status: Status
    try:
        out = check.run(settings)
        if not isinstance(out, Outcome):
            raise TypeError(f"check {claim.id}.{check.name} returned {type(out).__name__}, "
                            "not an Outcome")
        status = out.status
    except Exception as exc:  # noqa: BLE001 - a crashing check is an error, not a verdict
        error = traceback.format_exc()
        out = Outcome("inconclusive", f"the check raised {type(exc).__name__}: {exc}"[:500])
        status = "error"
    return Verdict(claim.id, check.name, check.method, status, measured=out.measured,
                   bound=out.bound, ratio=out.ratio, summary=out.summary, config=out.config,
                   table=out.table, figure=out.figure, error=error,
                   seconds=time.perf_counter() - t0, ratio_kind=check.ratio_kind,
                   ratio_tol=check.ratio_tol, ratio_note=check.ratio_note)


def worst(rows: list[dict], measured: str = "measured", bound: str = "bound") -> dict:
    """Add ``ratio`` = measured/bound to every row and return the row with the largest one."""
    for r in rows:
        b = r[bound]
        r["ratio"] = r[measured] / b if b not in (None, 0) and np.isfinite(b) else None
    ranked = [r for r in rows if r["ratio"] is not None]
    return max(ranked, key=lambda r: r["ratio"]) if ranked else rows[0]
