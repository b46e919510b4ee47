r"""Mutants: deliberately wrong variants of the code, as data.

A verification suite is worth what its checks can detect.  A :class:`Mutant` is one named
*wrong* variant — a method whose perturbation is missing or sign-flipped, a bound with a term
halved, a proof step that does not follow, a threaded "AsyncSAM" that is plain SGD, a timing
that doubles AsyncSAM's work — together with the claim checks (``"CLAIM.check"``) and/or the
test files (``"tests/…py"`` or pytest node ids) that must *kill* it, i.e. report ``fails``
(checks) or exit non-zero (tests) while the mutant is active.

A mutant is active inside ``with mutant.apply():``; :meth:`Mutant.apply` enters the mutant's
patches (:func:`unittest.mock.patch` targets, attributes looked up at call time), so the
process's code is the correct code again on exit.  Patches are made in the process that runs
the check; :mod:`asam_theory.mutants.power` runs every (mutant, check, repeat) in a fresh
worker process, so no patch can leak into another run.  In a pytest run the environment
variable ``ASAM_MUTANT=<id>`` makes ``tests/conftest.py`` apply the mutant for the whole
session (how test-level mutants are killed).

This is the classic mutation-analysis set-up (DeMillo, Lipton & Sayward, *Hints on test data
selection*, IEEE Computer 1978; Jia & Harman, *An analysis and survey of the development of
mutation testing*, IEEE TSE 2011): a check that no mutant can make fail tests nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from unittest import mock

Family = Literal["method", "bound", "proof", "threaded", "timing", "real_data", "edge", "pep"]
FAMILIES: tuple[str, ...] = ("method", "bound", "proof", "threaded", "timing", "real_data",
                             "edge", "pep")

#: what a patch list holds: (target "pkg.module.attr" or (object, "attr"), replacement)
PatchSpec = tuple[Any, Any]


@dataclass(frozen=True)
class Mutant:
    """One deliberately wrong variant.

    ``id`` — unique, kebab-case (``"asyncsam-no-perturbation"``); ``family`` — one of
    :data:`FAMILIES`; ``breaks`` — one sentence saying what is wrong; ``checks`` — claim check
    ids (``"THREADED.threaded_vs_simulated"``) of which at least one must report ``fails``;
    ``tests`` — test files or node ids of which at least one must fail; ``patches`` — a
    zero-argument callable returning the ``(target, replacement)`` pairs to patch (a callable,
    so building the replacement imports nothing until the mutant is applied).
    """

    id: str
    family: str
    breaks: str
    patches: Callable[[], list[PatchSpec]]
    checks: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {list(FAMILIES)}, got {self.family!r}")
        if not self.checks and not self.tests:
            raise ValueError(f"mutant {self.id!r} names no check and no test that must kill it")
        if not self.id or self.id != self.id.strip().lower() or " " in self.id:
            raise ValueError(f"mutant id must be lower-case kebab-case, got {self.id!r}")

    @contextlib.contextmanager
    def apply(self) -> Iterator[None]:
        """Activate the mutant for the duration of the ``with`` block."""
        with contextlib.ExitStack() as stack:
            for target, replacement in self.patches():
                if isinstance(target, str):
                    stack.enter_context(mock.patch(target, replacement))
                else:
                    obj, attr = target
                    stack.enter_context(mock.patch.object(obj, attr, replacement))
            yield
