"""A tiny synthetic catalogue for the power runner's tests (``power_fakes:catalogue``).

Claim ``FAKE`` has three checks: ``guarded`` fails when the module attribute ``BROKEN`` is
set, fails on seeds not divisible by 10 when ``WEAK`` is set (a kill rate of 0.9 over seeds
0..19, 1/2 over seeds 0, 1), sleeps for a minute when ``HANG`` is set and raises when
``RAISE`` is set; ``cached`` keeps its first answer in a module-level cache (so in one process
the correct code's answer would hide the mutant's); ``flaky`` fails on odd master seeds (a
false-alarm rate of 1/2 over seeds 0, 1) and no mutant names it.  Mutants: ``fake-breaks``
(``guarded`` kills it), ``fake-breaks-cached`` (``cached`` kills it in a fresh process),
``fake-weak``, ``fake-hangs``, ``fake-raises``, ``fake-survives`` (sets an attribute nothing
reads), ``fake-bad-patch`` (patches an attribute that does not exist: an error, not a kill),
``fake-test-killed`` (names :data:`TEST_FILE`, written by :func:`write_test_root`, which fails
when ``ASAM_MUTANT`` names it) and ``fake-test-missing`` (names a test file that does not
exist: pytest's usage error, not a kill).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from asam_theory.claims.base import Check, Claim, Outcome, Settings
from asam_theory.mutants.base import Mutant

BROKEN = False
WEAK = False
HANG = False
RAISE = False
UNUSED = False
_CACHE: dict[str, bool] = {}
TEST_FILE = "tests/test_fake_target.py"
PROVIDER = "power_fakes:catalogue"


def _me():
    return sys.modules[__name__]


def _guarded(settings: Settings) -> Outcome:
    me = _me()
    if me.HANG:
        time.sleep(60)
    if me.RAISE:
        raise RuntimeError("raised under the mutant")
    weak = me.WEAK and settings.seed % 10 != 0
    return Outcome.judged(not (me.BROKEN or weak), "BROKEN is not set", ratio=0.5)


def _cached(settings: Settings) -> Outcome:
    return Outcome.judged(_CACHE.setdefault("ok", not _me().BROKEN), "first answer kept")


def _flaky(settings: Settings) -> Outcome:
    return Outcome.judged(settings.seed % 2 == 0, "even seed")


def _finding(settings: Settings) -> Outcome:
    """An open question whose answer on the correct code is "fails"."""
    return Outcome.judged(False, "the promise does not hold")


CLAIM = Claim("FAKE", "a fake claim", "guarded holds", "tests/power_fakes.py",
              (Check("guarded", "exact", "holds unless BROKEN", _guarded),
               Check("cached", "exact", "its first answer, kept", _cached),
               Check("flaky", "exact", "fails on odd seeds", _flaky)))
#: an empirical claim whose correct answer is "fails" (catalogue_with_finding)
FINDING = Claim("FINDING", "an open question", "the promise", "tests/power_fakes.py",
                (Check("promise", "real_data", "fails on the correct code", _finding,
                       empirical=True),))


def _set(attr: str):
    return lambda: [((_me(), attr), True)]


MUTANTS = (
    Mutant("fake-breaks", "method", "sets BROKEN", _set("BROKEN"), checks=("FAKE.guarded",)),
    Mutant("fake-breaks-cached", "method", "sets BROKEN", _set("BROKEN"),
           checks=("FAKE.cached",)),
    Mutant("fake-weak", "method", "sets WEAK", _set("WEAK"), checks=("FAKE.guarded",)),
    Mutant("fake-hangs", "method", "sets HANG", _set("HANG"), checks=("FAKE.guarded",)),
    Mutant("fake-raises", "method", "sets RAISE", _set("RAISE"), checks=("FAKE.guarded",)),
    Mutant("fake-survives", "method", "sets an attribute nothing reads", _set("UNUSED"),
           checks=("FAKE.guarded",)),
    Mutant("fake-bad-patch", "method", "patches an attribute that does not exist",
           lambda: [("power_fakes.NO_SUCH_ATTRIBUTE", 1)], checks=("FAKE.guarded",)),
    Mutant("fake-test-killed", "method", "fails its test", _set("UNUSED"), tests=(TEST_FILE,)),
    Mutant("fake-test-missing", "method", "names a missing test", _set("UNUSED"),
           tests=("tests/test_no_such_file.py",)),
)


def catalogue():
    return (CLAIM,), MUTANTS


#: a mutant killed by its check that also names a test (the test runs only with tests="all")
CHECKED_AND_TESTED = Mutant("fake-breaks-tested", "method", "sets BROKEN", _set("BROKEN"),
                            checks=("FAKE.guarded",), tests=(TEST_FILE,))
#: a mutant whose only "kill" is by the empirical check that fails on the correct code too
ON_FINDING = Mutant("fake-on-finding", "real_data", "sets UNUSED", _set("UNUSED"),
                    checks=("FINDING.promise",))


def catalogue_tests_policy():
    return (CLAIM,), (MUTANTS[0], CHECKED_AND_TESTED)


def _undecided(settings: Settings) -> Outcome:
    return Outcome.inconclusive("too small to decide")


#: a check that never decides on the correct code, and no mutant that it kills
UNDECIDED = Claim("SMALL", "an underpowered check", "a promise", "tests/power_fakes.py",
                  (Check("undecided", "real_data", "always inconclusive", _undecided),))


def catalogue_with_undecided():
    return (CLAIM, UNDECIDED), (MUTANTS[0],)


def _half_finding(settings: Settings) -> Outcome:
    """An open question whose answer on the correct code splits: fails on odd seeds."""
    return Outcome.judged(settings.seed % 2 == 0 and not _me().BROKEN, "even seeds hold")


#: an empirical check that fails on half the seeds, and a mutant that makes it always fail
SPLIT = Claim("SPLIT", "a split question", "the promise", "tests/power_fakes.py",
              (Check("promise", "real_data", "fails on odd seeds", _half_finding,
                     empirical=True),))
ON_SPLIT = Mutant("fake-on-split", "real_data", "sets BROKEN", _set("BROKEN"),
                  checks=("SPLIT.promise",))


def catalogue_with_split():
    return (SPLIT,), (ON_SPLIT,)


def catalogue_with_finding():
    return (CLAIM, FINDING), (MUTANTS[0], ON_FINDING)


def catalogue_without_hang():
    return (CLAIM,), tuple(m for m in MUTANTS if m.id != "fake-hangs")


def write_test_root(root: Path) -> Path:
    """A repository-like folder whose ``tests/test_fake_target.py`` fails exactly when
    ``ASAM_MUTANT=fake-test-killed``."""
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / TEST_FILE).write_text(
        "import os\n\n\ndef test_target():\n"
        "    assert os.environ.get('ASAM_MUTANT') != 'fake-test-killed'\n")
    return root
