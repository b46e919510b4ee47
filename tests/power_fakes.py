"""A tiny synthetic catalogue for the power runner's tests (``power_fakes:catalogue``).

The checks read the *repeat* ``r = seed // SEED_BLOCK`` of their master seed (the power
runner's repeat r runs with seed ``s + SEED_BLOCK·r``).  Claim ``FAKE`` has three checks:
``guarded`` fails when the module attribute ``BROKEN`` is set, fails on repeats not divisible
by 10 when ``WEAK`` is set (a kill rate of 0.9 over 20 repeats, 1/2 over 2), sleeps for a
minute when ``HANG`` is set and raises when ``RAISE`` is set (an error, not a kill);
``cached`` keeps its first answer in a module-level cache (so in one process the correct
code's answer would hide the mutant's); ``flaky`` fails on odd repeats (a false-alarm rate of
1/2 over 2 repeats) and no mutant names it.  Mutants: ``fake-breaks`` (``guarded`` kills it),
``fake-breaks-cached`` (``cached`` kills it in a fresh process), ``fake-weak``,
``fake-hangs``, ``fake-raises``, ``fake-survives`` (sets an attribute nothing reads),
``fake-bad-patch`` (patches an attribute that does not exist: an error, not a kill),
``fake-test-killed`` (names :data:`TEST_FILE`, written by :func:`write_test_root`, which fails
when ``ASAM_MUTANT`` names it) and ``fake-test-missing`` (names a test file that does not
exist: pytest's usage error, not a kill).  Further catalogues: an empirical check with a
finding (``fails`` on the correct code), one that fails on half the repeats, one whose
correct code flips on a quarter of them (the flip rule of
:mod:`asam_theory.mutants.rates`), a check that raises on the correct code, and a check that
records the seeds it draws.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from asam_theory.claims.base import Check, Claim, Outcome, Settings
from asam_theory.mutants.base import Mutant
from asam_theory.mutants.power import SEED_BLOCK

BROKEN = False
WEAK = False
HANG = False
RAISE = False
UNUSED = False
GOOD = False
FLIP_ALL = False
FLIP_HALF = False
#: the seeds the ``SEEDED.draws`` check drew, one list per run (inline runs only)
DRAWN: list[list[int]] = []
#: how many consecutive seeds ``SEEDED.draws`` draws from its master seed
N_DRAW = 999
_CACHE: dict[str, bool] = {}
TEST_FILE = "tests/test_fake_target.py"
PROVIDER = "power_fakes:catalogue"


def _me():
    return sys.modules[__name__]


def _repeat(settings: Settings) -> int:
    """The power runner's repeat index of this master seed."""
    return settings.seed // SEED_BLOCK


def _guarded(settings: Settings) -> Outcome:
    me = _me()
    if me.HANG:
        time.sleep(60)
    if me.RAISE:
        raise RuntimeError("raised under the mutant")
    weak = me.WEAK and _repeat(settings) % 10 != 0
    return Outcome.judged(not (me.BROKEN or weak), "BROKEN is not set", ratio=0.5)


def _cached(settings: Settings) -> Outcome:
    return Outcome.judged(_CACHE.setdefault("ok", not _me().BROKEN), "first answer kept")


def _flaky(settings: Settings) -> Outcome:
    return Outcome.judged(_repeat(settings) % 2 == 0, "even repeat")


def _finding(settings: Settings) -> Outcome:
    """An open question whose answer on the correct code is "fails" (``holds`` when
    ``GOOD`` is set: a mutant that makes the promise look kept)."""
    return Outcome.judged(_me().GOOD, "the promise does not hold")


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
    """An open question whose answer on the correct code splits: fails on odd repeats."""
    return Outcome.judged(_repeat(settings) % 2 == 0 and not _me().BROKEN,
                          "even repeats hold")


#: an empirical check that fails on half the seeds, and a mutant that makes it always fail
SPLIT = Claim("SPLIT", "a split question", "the promise", "tests/power_fakes.py",
              (Check("promise", "real_data", "fails on odd repeats", _half_finding,
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


#: a mutant that makes the finding's promise hold (fails -> holds: it must show as a kill)
MAKES_IT_HOLD = Mutant("fake-makes-it-hold", "real_data", "sets GOOD", _set("GOOD"),
                       checks=("FINDING.promise",))


def catalogue_finding_flipped():
    return (FINDING,), (ON_FINDING, MAKES_IT_HOLD)


def _flips(settings: Settings) -> Outcome:
    """An empirical check that fails on every 4th repeat of the correct code (flip rate 1/4
    over 4 repeats, usual outcome "holds"); on every repeat under ``FLIP_ALL``, on even repeats
    under ``FLIP_HALF``; raises under ``RAISE``."""
    me, r = _me(), _repeat(settings)
    if me.RAISE:
        raise RuntimeError("raised under the mutant")
    fails = r % 4 == 0 or me.FLIP_ALL or (me.FLIP_HALF and r % 2 == 0)
    return Outcome.judged(not fails, "holds except on every 4th repeat")


FLIPPY = Claim("FLIPPY", "a noisy open question", "the promise", "tests/power_fakes.py",
               (Check("promise", "real_data", "fails on every 4th repeat", _flips,
                      empirical=True),))
FLIP_MUTANTS = (
    Mutant("fake-flip-all", "real_data", "sets FLIP_ALL", _set("FLIP_ALL"),
           checks=("FLIPPY.promise",)),
    Mutant("fake-flip-half", "real_data", "sets FLIP_HALF", _set("FLIP_HALF"),
           checks=("FLIPPY.promise",)),
    Mutant("fake-flip-none", "real_data", "sets UNUSED", _set("UNUSED"),
           checks=("FLIPPY.promise",)),
    Mutant("fake-flip-raises", "real_data", "sets RAISE", _set("RAISE"),
           checks=("FLIPPY.promise",)),
)


def catalogue_flips():
    return (FLIPPY,), FLIP_MUTANTS


def _always_raises(settings: Settings) -> Outcome:
    raise ValueError("this check is broken on the correct code")


#: a check that raises on the correct code, and a mutant that names it
BROKEN_CHECK = Claim("BROKEN", "a broken check", "anything", "tests/power_fakes.py",
                     (Check("crash", "exact", "always raises", _always_raises),))
ON_BROKEN = Mutant("fake-on-broken", "method", "sets BROKEN", _set("BROKEN"),
                   checks=("BROKEN.crash",))


def catalogue_broken_check():
    return (BROKEN_CHECK,), (ON_BROKEN,)


def _draws(settings: Settings) -> Outcome:
    """Draws ``range(seed, seed + N_DRAW)``, as the real-data checks draw their seeds, and
    records them in :data:`DRAWN`."""
    _me().DRAWN.append(list(range(settings.seed, settings.seed + N_DRAW)))
    return Outcome.judged(not _me().BROKEN, "records its seeds")


SEEDED = Claim("SEEDED", "a check with many seeds", "anything", "tests/power_fakes.py",
               (Check("draws", "monte_carlo", "draws N_DRAW consecutive seeds", _draws),))


def catalogue_seeded():
    return (SEEDED,), (Mutant("fake-seeded", "method", "sets BROKEN", _set("BROKEN"),
                              checks=("SEEDED.draws",)),)


def _child_exit_code(settings: Settings) -> Outcome:
    """Starts a process of its own (``spawn``), as THREADED does for AsyncSAM's worker-process
    backend, and holds when it exits cleanly (fails when ``BROKEN`` is set)."""
    import multiprocessing as mp

    proc = mp.get_context("spawn").Process(target=time.sleep, args=(0.0,))
    proc.start()
    proc.join(30)
    return Outcome.judged(proc.exitcode == 0 and not _me().BROKEN,
                          f"the check's own process exited with {proc.exitcode}")


SPAWNS = Claim("SPAWNS", "a check that starts a process", "its process exits cleanly",
               "tests/power_fakes.py",
               (Check("child", "exact", "starts a spawned process", _child_exit_code),))


def catalogue_spawns():
    return (SPAWNS,), (Mutant("fake-spawns", "method", "sets BROKEN", _set("BROKEN"),
                              checks=("SPAWNS.child",)),)


def _load_dependent(settings: Settings) -> Outcome:
    """A step-time part whose verdict follows the load: ``fails`` on an "idle" repeat (odd
    repeats) when time is judged, ``inconclusive`` otherwise — as HEADLINE's time part."""
    if settings.judge_time and _repeat(settings) % 2 == 1:
        return Outcome.judged(False, "idle machine: the time ratio is judged and too large")
    return Outcome.inconclusive("time not judged (busy machine or a power run)")


TIMED = Claim("TIMED", "a check with a step-time part", "its time ratio is small",
              "tests/power_fakes.py",
              (Check("time", "real_data", "judged on idle repeats only", _load_dependent,
                     empirical=True),))


def catalogue_timed():
    return (TIMED,), (Mutant("fake-timed", "method", "sets BROKEN", _set("BROKEN"),
                             checks=("TIMED.time",)),)
