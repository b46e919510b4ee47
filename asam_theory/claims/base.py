r"""Claims, checks and verdicts: the registry every face of asam-theory reports through.

A :class:`Claim` is data — an id, a statement (Markdown with LaTeX), its source (paper, our
theorem, literature) and one or more :class:`Check` s, each an *independent* way to test the
statement (symbolic proof, exact analysis, Monte Carlo, a real threaded run, …).  A check
returns a :class:`Verdict`: passed or not, the measured value, the bound it is held to,
the ratio measured/bound, the config, a table of measured against bound, and figure data.
Adding a new paper's claim means writing one :class:`Claim` and calling :func:`register`.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

Mode = Literal["quick", "default", "full"]
METHODS = ("symbolic", "exact", "monte_carlo", "threaded", "numerical", "pep")


@dataclass
class Settings:
    """How hard a check works: ``quick`` (tests), ``default`` (the ≤ 5 min report) or
    ``full``; the executor runs sweeps (``None`` = in this process)."""

    mode: Mode = "default"
    executor: Executor | None = None
    seed: int = 0

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


@dataclass
class Verdict:
    """The outcome of one check.

    ``measured``/``bound``/``ratio`` summarise it (for a sweep: the configuration with the
    worst ratio); ``table`` lists measured against bound per configuration; ``figure`` is
    JSON-able data the check's ``plot`` turns into a PNG.  ``ratio`` is measured/bound where
    a bound applies (≤ 1 means the bound holds), else ``None``.
    """

    claim_id: str
    check: str
    method: str
    passed: bool
    measured: Any = None
    bound: Any = None
    ratio: float | None = None
    summary: str = ""
    config: dict = field(default_factory=dict)
    table: list[dict] = field(default_factory=list)
    figure: dict | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def id(self) -> str:
        return f"{self.claim_id}.{self.check}"

    def to_json(self) -> dict:
        d = _clean(asdict(self))
        d = {"id": self.id, **d}
        return d


@dataclass(frozen=True)
class Check:
    """One independent way to test a claim: ``run(settings) -> Verdict`` (``claim_id`` and
    ``check`` are filled in by :meth:`Claim.run`), and optionally ``plot(verdict, ax)``."""

    name: str
    method: str
    description: str
    run: Callable[[Settings], Verdict]
    plot: Callable[[Verdict, Any], None] | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    statement: str
    source: str
    checks: tuple[Check, ...]

    def run(self, settings: Settings, only: Sequence[str] | None = None) -> list[Verdict]:
        out = []
        for check in self.checks:
            if only is not None and check.name not in only:
                continue
            out.append(run_check(self, check, settings))
        return out


def run_check(claim: Claim, check: Check, settings: Settings) -> Verdict:
    """Run a check; an exception is a failed verdict carrying its traceback."""
    t0 = time.perf_counter()
    try:
        v = check.run(settings)
    except Exception:  # noqa: BLE001 - a crashing check must fail, not abort the report
        v = Verdict(claim.id, check.name, check.method, passed=False,
                    summary="the check raised an exception", error=traceback.format_exc())
    v.claim_id, v.check, v.method = claim.id, check.name, check.method
    v.seconds = time.perf_counter() - t0
    return v


_REGISTRY: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    if claim.id in _REGISTRY:
        raise ValueError(f"claim id {claim.id!r} is already registered")
    _REGISTRY[claim.id] = claim
    return claim


def registry() -> dict[str, Claim]:
    """Every registered claim, in registration order (importing the catalogue first)."""
    from asam_theory.claims import catalog  # noqa: F401 - registers the built-in claims

    return dict(_REGISTRY)


def select(ids: Iterable[str] | None) -> list[Claim]:
    """The claims with these ids (all if ``None``); ``ValueError`` names unknown ids."""
    reg = registry()
    if ids is None:
        return list(reg.values())
    ids = list(ids)
    unknown = [i for i in ids if i not in reg]
    if unknown:
        raise ValueError(f"unknown claim id(s) {unknown}; known: {list(reg)}")
    return [reg[i] for i in ids]


def worst(rows: list[dict], measured: str = "measured", bound: str = "bound") -> dict:
    """Add ``ratio`` = measured/bound to every row and return the row with the largest one."""
    for r in rows:
        b = r[bound]
        r["ratio"] = r[measured] / b if b not in (None, 0) and np.isfinite(b) else None
    ranked = [r for r in rows if r["ratio"] is not None]
    return max(ranked, key=lambda r: r["ratio"]) if ranked else rows[0]
