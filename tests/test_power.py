"""The power runner (asam_theory.mutants.power), its report and the ``asam-theory power``
command, on the synthetic catalogue of ``tests/power_fakes.py``; and, marked slow, the real
catalogue at quick size (every mutant killed at least once)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import power_fakes
import pytest

from asam_theory import cli, stats
from asam_theory.claims import CHECK_STATUSES
from asam_theory.mutants import power, rates
from asam_theory.report.power import (
    headline,
    kill_matrix,
    write_power_markdown,
    write_power_report,
)

PROVIDER = power_fakes.PROVIDER
MUTANT_KEYS = {"id", "family", "breaks", "claims", "kill_rate", "killed_by", "per_check"}
CHECK_KEYS = {"id", "false_alarm_rate", "kills"}
TOP_KEYS = {"mutants", "checks", "repeats", "mode", "seed", "seconds", "targets", "problems"}


def _by_id(rows: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in rows}


def _problems(payload: dict) -> set[tuple[str, str]]:
    return {(p["kind"], p["id"]) for p in payload["problems"]}


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> dict:
    """The whole fake catalogue but fake-hangs at quick size (seeds 0, 1), inline."""
    root = power_fakes.write_test_root(tmp_path_factory.mktemp("repo"))
    power_fakes._CACHE.clear()
    out = power.run_power("quick", 2, 0, inline=True, progress=False, root=root,
                          catalogue="power_fakes:catalogue_without_hang")
    power_fakes._CACHE.clear()
    return out


def test_kill_rates_and_false_alarms(quick):
    m = _by_id(quick["mutants"])
    assert m["fake-breaks"]["kill_rate"] == 1.0
    assert m["fake-breaks"]["killed_by"] == ["FAKE.guarded"]
    assert m["fake-weak"]["per_check"] == {"FAKE.guarded": 0.5}  # seed 1 kills, seed 0 not
    assert m["fake-survives"]["kill_rate"] == 0.0 and m["fake-survives"]["killed_by"] == []
    assert m["fake-test-killed"]["per_check"] == {power_fakes.TEST_FILE: 1.0}
    assert m["fake-test-killed"]["killed_by"] == [power_fakes.TEST_FILE]
    # an error of the harness is not a kill: a patch that cannot be applied, pytest exit 4
    assert m["fake-bad-patch"]["kill_rate"] == 0.0
    assert "NO_SUCH_ATTRIBUTE" in m["fake-bad-patch"]["errors"][0]["error"]
    assert m["fake-test-missing"]["kill_rate"] == 0.0
    assert "pytest exit code 4" in m["fake-test-missing"]["errors"][0]["error"]
    # a check that raises is an error, as in verify: not a kill, its exception kept
    assert m["fake-raises"]["kill_rate"] == 0.0 and m["fake-raises"]["killed_by"] == []
    assert m["fake-raises"]["per_check_detail"]["FAKE.guarded"] == {
        "rule": "fails", "kills": 0, "runs": 2, "errors": 2}
    assert {e["outcome"] for e in m["fake-raises"]["errors"]} == {"error"}
    assert "RuntimeError: raised under the mutant" in m["fake-raises"]["errors"][0]["error"]
    assert m["fake-breaks"]["claims"] == ["FAKE"] and m["fake-test-killed"]["claims"] == []
    c = _by_id(quick["checks"])
    assert c["FAKE.guarded"]["false_alarm_rate"] == 0.0
    assert c["FAKE.guarded"]["kills"] == 2  # fake-breaks and fake-weak, not fake-raises
    assert c["FAKE.flaky"]["false_alarm_rate"] == 0.5
    assert c["FAKE.flaky"]["outcomes"] == ["holds", "fails"]
    assert c[power_fakes.TEST_FILE]["false_alarm_rate"] == 0.0


def test_inline_shares_caches(quick):
    """Inline, the correct code's cached answer hides the mutant (why jobs get processes)."""
    assert _by_id(quick["mutants"])["fake-breaks-cached"]["kill_rate"] == 0.0


def test_problems_at_quick_size(quick):
    assert _problems(quick) == {
        ("survives", "fake-survives"), ("survives", "fake-bad-patch"),
        ("survives", "fake-raises"), ("error", "fake-raises"),
        ("survives", "fake-breaks-cached"), ("survives", "fake-test-missing"),
        ("error", "fake-bad-patch"), ("error", "fake-test-missing"),
        ("false_alarm", "FAKE.flaky"), ("kills_none", "FAKE.flaky"),
        ("kills_none", "FAKE.cached"), ("kills_none", "tests/test_no_such_file.py"),
        ("error", "tests/test_no_such_file.py"),
    }
    assert quick["targets"]["killed_at_least_once"] and quick["targets"]["kill_rate_min"] is None


def test_default_size_targets():
    """At default size a kill rate of 0.9 (18 of 20) misses the 0.95 target; 1.0 meets it;
    a check of a claim no mutant names kills none."""
    out = power.run_power("default", 20, 0, mutant_ids=["fake-breaks", "fake-weak"],
                          claim_ids=["FAKE"], inline=True, progress=False, catalogue=PROVIDER)
    m = _by_id(out["mutants"])
    assert m["fake-weak"]["kill_rate"] == pytest.approx(0.9)
    assert m["fake-breaks"]["kill_rate"] == 1.0
    assert _problems(out) == {("survives", "fake-weak"), ("false_alarm", "FAKE.flaky"),
                              ("kills_none", "FAKE.flaky"), ("kills_none", "FAKE.cached")}
    assert _by_id(out["checks"])["FAKE.flaky"]["false_alarm_rate"] == 0.5
    assert out["targets"]["kill_rate_min"] == power.KILL_RATE_TARGET


def test_processes_isolate_and_time_out(tmp_path):
    """In processes: the cache no longer hides the mutant, a hanging job is terminated at its
    time limit (an error, not a kill), and nothing stays patched or cached here."""
    power_fakes._CACHE.clear()
    out = power.run_power("quick", 2, 0, jobs=2, progress=False, catalogue=PROVIDER,
                          mutant_ids=["fake-breaks-cached", "fake-hangs", "fake-breaks"],
                          min_timeout=2.0, timeout_factor=1.0, root=tmp_path)
    m = _by_id(out["mutants"])
    assert m["fake-breaks-cached"]["kill_rate"] == 1.0
    assert m["fake-breaks"]["kill_rate"] == 1.0
    assert m["fake-hangs"]["kill_rate"] == 0.0
    assert "timed out" in m["fake-hangs"]["errors"][0]["error"]
    assert not power_fakes.BROKEN and not power_fakes.HANG and not power_fakes._CACHE


def test_tests_not_run_without_repository(tmp_path):
    out = power.run_power("quick", 1, 0, mutant_ids=["fake-test-killed"], inline=True,
                          progress=False, root=tmp_path, catalogue=PROVIDER)
    row = out["mutants"][0]
    assert row["kill_rate"] is None and "tests folder" in row["not_run"]
    assert _problems(out) == {("not_run", "fake-test-killed")}


def test_selection_errors():
    with pytest.raises(ValueError, match="unknown mutant"):
        power.plan(["no-such-mutant"], None, PROVIDER)
    with pytest.raises(ValueError, match="unknown claim"):
        power.plan(None, ["NO-SUCH-CLAIM"], PROVIDER)
    with pytest.raises(ValueError, match="names no check"):
        power.plan(["fake-test-killed"], ["FAKE"], PROVIDER)
    p = power.plan(["fake-breaks"], None, PROVIDER)
    assert p.checks == ("FAKE.guarded",) and p.n_runs(3) == 6 and p.n_jobs() == 2


def test_json_schema_and_html(quick, tmp_path):
    paths = write_power_report(tmp_path / "out", quick, command="asam-theory power --quick")
    data = json.loads(paths["json"].read_text())
    assert TOP_KEYS <= set(data) and data["repeats"] == 2 and data["mode"] == "quick"
    for row in data["mutants"]:
        assert MUTANT_KEYS <= set(row)
        rates = [r for r in row["per_check"].values() if r is not None]
        assert row["kill_rate"] == (max(rates) if rates else None)
        assert set(row["killed_by"]) == {k for k, r in row["per_check"].items() if r}
    for row in data["checks"]:
        assert CHECK_KEYS <= set(row)
    rows, cols, rates = kill_matrix(data)
    assert rows == [m["id"] for m in data["mutants"]]
    assert set(cols) == {"FAKE.guarded", "FAKE.cached", power_fakes.TEST_FILE,
                         "tests/test_no_such_file.py"}
    assert rates[rows.index("fake-breaks")][cols.index("FAKE.cached")] is None
    page = paths["index"].read_text()
    assert (tmp_path / "out" / "figures" / "power_matrix.png").stat().st_size > 1000
    assert "data:image/png;base64," in page and "<table class='matrix'>" in page
    assert "id='mutant-fake-survives'" in page and "FAKE.flaky" in page
    assert page.index("target(s) missed") < page.index("id='matrix'")
    # the per-check rates with intervals beside the best-of, errors apart
    assert page.index("id='matrix'") < page.index("id='kill-rates'") < \
        page.index("id='false-alarms'")
    assert "0.50 [0.01, 0.99]" in page  # fake-weak: 1 of 2, Clopper-Pearson
    assert "0/2 fail, 2 errors" in page  # fake-raises: its runs raised
    assert "false-alarm rate [95 % CI]" in page


def test_markdown_page(quick, tmp_path):
    payload = {**quick, "command": "asam-theory power --quick", "date": "2026-12-08T10:00",
               "machine": "a test machine", "seconds": 5400.0, "commit": "abc123"}
    path = write_power_markdown(tmp_path / "power.md", payload)
    md = path.read_text()
    assert md.startswith("# Power: can every verdict fail?")
    assert "    asam-theory power --quick" in md and "a test machine" in md
    assert "wall time 1.50 h (5400 s)" in md and "2026-12-08T10:00" in md
    assert "commit `abc123`" in md
    h = headline(quick)
    # quick size: the target is "at least once" (fake-breaks, fake-weak, fake-test-killed)
    assert h["killed_at_target"] == h["killed_at_least_once"] == 3
    assert f"killed at least once: **{h['killed_at_target']}**" in md
    assert "| `fake-weak` | 0.50 [0.01, 0.99] | `FAKE.guarded` |" in md
    assert "`FAKE.guarded` 0.00 [0.00, 0.84] (0/2 fail, 2 errors)" in md  # fake-raises
    assert "| `FAKE.flaky` | exact | fails | 0.50 [0.01, 0.99] | 0/2 | 0 |" in md
    assert "* **survives** `fake-raises`" in md and "* **error** `fake-raises`" in md
    for line in md.splitlines():
        if line.startswith("| `"):
            assert line.count(" | ") in (3, 6), line  # cells never split by a stray pipe
    with pytest.raises(ValueError, match="md"):
        write_power_markdown(tmp_path / "power.txt", payload)


@pytest.fixture
def fake_cli(monkeypatch):
    monkeypatch.setattr(power, "DEFAULT_CATALOGUE", PROVIDER)


def test_cli_exit_codes(fake_cli, tmp_path, capsys):
    assert cli.main(["power", "--quick", "--jobs", "0", "--mutants", "fake-breaks",
                     "--out", str(tmp_path / "ok"), "--markdown",
                     str(tmp_path / "docs" / "power.md")]) == 0
    data = json.loads((tmp_path / "ok" / "power.json").read_text())
    assert data["problems"] == [] and data["command"].startswith("asam-theory ")
    assert data["machine"] and data["date"]
    assert data["commit"] is None or len(data["commit"]) == 40  # a git checkout: its commit
    assert (tmp_path / "ok" / "index.html").is_file()
    md = (tmp_path / "docs" / "power.md").read_text()
    assert "| `fake-breaks` | 1.00 [0.16, 1.00] | `FAKE.guarded` |" in md
    assert cli.main(["power", "--quick", "--markdown", str(tmp_path / "p.txt"),
                     "--out", str(tmp_path / "z")]) == 2
    assert cli.main(["power", "--quick", "--jobs", "0", "--mutants", "fake-survives",
                     "--out", str(tmp_path / "bad")]) == 1
    assert "PROBLEM survives" in capsys.readouterr().out
    assert cli.main(["power", "--quick", "--mutants", "no-such-mutant",
                     "--out", str(tmp_path / "x")]) == 2
    assert cli.main(["power", "--repeats", "0", "--out", str(tmp_path / "y")]) == 2


@pytest.mark.parametrize("under_file", [False, True])
def test_cli_bad_out_fails_before_work(fake_cli, monkeypatch, tmp_path, capsys, under_file):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before --out was checked")

    monkeypatch.setattr(power, "run_power", no_work)
    monkeypatch.setattr(power, "plan", no_work)
    f = tmp_path / "a_file"
    f.write_text("")
    out = f / "sub" if under_file else f
    assert cli.main(["power", "--quick", "--out", str(out)]) == 2
    assert "--out" in capsys.readouterr().err


@pytest.mark.slow
def test_real_catalogue_quick(tmp_path):
    """The CI gate: ``asam-theory power --quick`` over the real catalogue exits 0 and every
    mutant was killed at least once."""
    from asam_theory.mutants import all_mutants

    assert all_mutants(), "the mutant catalogue is empty"
    proc = subprocess.run([sys.executable, "-m", "asam_theory", "power", "--quick", "--out",
                           str(tmp_path)], capture_output=True, text=True, check=False)
    data = json.loads((Path(tmp_path) / "power.json").read_text())
    survivors = [m["id"] for m in data["mutants"] if not m["kill_rate"]]
    assert survivors == [], survivors
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {m["id"] for m in data["mutants"]} == {m.id for m in all_mutants()}


def test_tests_run_only_when_the_checks_do_not_kill(tmp_path):
    """tests="needed": a mutant its check kills has its tests skipped (and no test runs on the
    correct code); tests="all" runs them, under the mutant and on the correct code."""
    root = power_fakes.write_test_root(tmp_path)
    cat = "power_fakes:catalogue_tests_policy"
    needed = power.run_power("quick", 1, 0, inline=True, progress=False, root=root,
                             catalogue=cat)
    m = _by_id(needed["mutants"])["fake-breaks-tested"]
    assert m["kill_rate"] == 1.0 and m["per_check"] == {"FAKE.guarded": 1.0}
    assert m["tests_skipped"] == [power_fakes.TEST_FILE]
    assert power_fakes.TEST_FILE not in _by_id(needed["checks"])
    everything = power.run_power("quick", 1, 0, inline=True, progress=False, root=root,
                                 catalogue=cat, tests="all")
    m = _by_id(everything["mutants"])["fake-breaks-tested"]
    assert m["tests_skipped"] == [] and power_fakes.TEST_FILE in m["per_check"]
    assert _by_id(everything["checks"])[power_fakes.TEST_FILE]["false_alarm_rate"] == 0.0
    with pytest.raises(ValueError, match="tests"):
        power.run_power("quick", 1, 0, inline=True, catalogue=cat, tests="some")


def test_empirical_check_reports_its_flip_rate_and_a_same_outcome_is_no_kill():
    """A finding on the correct code ("fails" in every repeat) is its usual outcome: its
    false-alarm counterpart is the flip rate off it (0 here), and a mutant that leaves it
    failing is not killed."""
    out = power.run_power("quick", 2, 0, inline=True, progress=False,
                          catalogue="power_fakes:catalogue_with_finding")
    c = _by_id(out["checks"])["FINDING.promise"]
    assert c["empirical"] is True and c["usual"] == "fails"
    assert c["false_alarm_rate"] == 0.0 and c["agreement"] == 1.0
    assert c["outcomes"] == ["fails", "fails"]
    m = _by_id(out["mutants"])["fake-on-finding"]
    assert m["per_check"] == {"FINDING.promise": 0.0} and m["kill_rate"] == 0.0
    detail = m["per_check_detail"]["FINDING.promise"]
    assert detail["rule"] == "flip" and detail["reference"] == "fails"
    kinds = _problems(out)
    assert ("false_alarm", "FINDING.promise") not in kinds
    assert ("survives", "fake-on-finding") in kinds


def test_a_mutant_that_turns_a_finding_into_a_pass_is_killed():
    """fails -> holds is a change from the usual outcome: a mutant that makes the promise
    look kept is a kill (invisible when only "fails" counted)."""
    out = power.run_power("quick", 2, 0, inline=True, progress=False,
                          catalogue="power_fakes:catalogue_finding_flipped")
    m = _by_id(out["mutants"])
    assert m["fake-makes-it-hold"]["kill_rate"] == 1.0
    assert m["fake-makes-it-hold"]["killed_by"] == ["FINDING.promise"]
    assert m["fake-on-finding"]["kill_rate"] == 0.0


def test_empirical_kills_are_net_of_the_correct_codes_own_flips():
    """The correct code fails on repeat 0 of 4 (k_c = 1/4, usual "holds"): a mutant failing
    on every repeat (k_m = 1) has kappa = (1 - 1/4)/(1 - 1/4) = 1, one failing on the even
    repeats (k_m = 1/2) kappa = (1/2 - 1/4)/(3/4) = 1/3, one that changes nothing kappa = 0,
    and one that raises (errors, no flips) kappa = 0."""
    from scipy.stats import fisher_exact

    out = power.run_power("default", 4, 0, inline=True, progress=False,
                          catalogue="power_fakes:catalogue_flips")
    c = _by_id(out["checks"])["FLIPPY.promise"]
    assert c["usual"] == "holds" and c["false_alarm_rate"] == 0.25 and c["false_alarms"] == 1
    assert c["outcomes"] == ["fails", "holds", "holds", "holds"]
    m = _by_id(out["mutants"])
    assert m["fake-flip-all"]["kill_rate"] == pytest.approx(1.0)
    assert m["fake-flip-half"]["kill_rate"] == pytest.approx(1 / 3)
    assert m["fake-flip-none"]["kill_rate"] == 0.0
    assert m["fake-flip-raises"]["kill_rate"] == 0.0
    assert m["fake-flip-raises"]["per_check_detail"]["FLIPPY.promise"]["errors"] == 4
    d = m["fake-flip-half"]["per_check_detail"]["FLIPPY.promise"]
    assert (d["kills"], d["runs"], d["correct_flip_rate"]) == (2, 4, 0.25)
    assert d["fisher_p"] == pytest.approx(
        fisher_exact([[2, 2], [1, 3]], alternative="greater")[1])
    # the interval is the mutant's Clopper-Pearson interval through the same correction
    lo, hi = stats.clopper_pearson(2, 4)
    assert m["fake-flip-half"]["per_check_ci"]["FLIPPY.promise"] == pytest.approx(
        [max(0.0, (lo - 0.25) / 0.75), (hi - 0.25) / 0.75])
    kinds = _problems(out)
    assert ("false_alarm", "FLIPPY.promise") in kinds  # 1/4 > 0.05
    assert {("survives", i) for i in ("fake-flip-half", "fake-flip-none",
                                      "fake-flip-raises")} <= kinds
    assert ("survives", "fake-flip-all") not in kinds


def test_flip_rule_by_hand():
    recs = [{"outcome": o} for o in ("holds", "fails", "inconclusive", "error")]
    assert rates.modal_outcome(recs) == "holds"  # a three-way tie goes to holds
    assert rates.modal_outcome([{"outcome": "error"}]) is None
    assert rates.modal_outcome([{"outcome": "fails"}, {"outcome": "inconclusive"}]) \
        == "inconclusive"
    f = rates.flip_rate(recs, "holds")
    assert (f.k, f.n, f.errors) == (2, 4, 1)  # fails and inconclusive flip, the error not
    assert rates.abbott(0.5, 0.25) == pytest.approx(1 / 3)
    assert rates.abbott(0.1, 0.25) == 0.0
    assert set(rates.TIE_ORDER) == set(CHECK_STATUSES)


def test_a_check_undecided_at_quick_size_is_held_to_its_kills_at_default_only():
    cat = "power_fakes:catalogue_with_undecided"
    quick = power.run_power("quick", 1, 0, inline=True, progress=False, catalogue=cat)
    assert _by_id(quick["checks"])["SMALL.undecided"]["undecided_at_this_size"] is True
    assert ("kills_none", "SMALL.undecided") not in _problems(quick)
    default = power.run_power("default", 1, 0, inline=True, progress=False, catalogue=cat)
    assert ("kills_none", "SMALL.undecided") in _problems(default)


def test_an_empirical_check_that_fails_in_half_the_repeats_still_counts_kills():
    """A split (one fail in two) makes "holds" the usual outcome (ties never go to "fails"):
    the correct code's flip rate is 1/2, and a mutant failing in both repeats is a kill of
    corrected rate (1 - 1/2)/(1 - 1/2) = 1."""
    out = power.run_power("quick", 2, 0, inline=True, progress=False,
                          catalogue="power_fakes:catalogue_with_split")
    c = _by_id(out["checks"])["SPLIT.promise"]
    assert c["outcomes"] == ["holds", "fails"] and c["agreement"] == 0.5
    assert c["usual"] == "holds"
    m = _by_id(out["mutants"])["fake-on-split"]
    assert m["kill_rate"] == 1.0 and m["killed_by"] == ["SPLIT.promise"]


def test_repeats_use_disjoint_seed_blocks():
    """Repeat r runs at master seed s + SEED_BLOCK r: a check drawing range(seed, seed + n),
    n < SEED_BLOCK, draws disjoint seeds in every repeat (consecutive master seeds shared
    n - 1 of n)."""
    assert power.SEED_BLOCK >= 20_000  # EXACT-MC's largest draw, at full size
    assert power.repeat_seeds(7, 3) == [7, 7 + power.SEED_BLOCK, 7 + 2 * power.SEED_BLOCK]
    power_fakes.DRAWN.clear()
    out = power.run_power("quick", 3, 5, inline=True, progress=False,
                          catalogue="power_fakes:catalogue_seeded")
    assert out["seeds"] == power.repeat_seeds(5, 3) and out["seed_block"] == power.SEED_BLOCK
    drawn = list(power_fakes.DRAWN)
    power_fakes.DRAWN.clear()
    assert len(drawn) == 6  # 3 repeats on the correct code, 3 under the mutant
    correct = drawn[:3]
    assert all(len(d) == power_fakes.N_DRAW for d in correct)
    for i in range(3):
        for j in range(i + 1, 3):
            assert not set(correct[i]) & set(correct[j]), (i, j)
    assert drawn[3:] == correct  # the mutant runs the same seeds, repeat for repeat


def test_rates_carry_clopper_pearson_intervals(quick):
    m = _by_id(quick["mutants"])
    weak = m["fake-weak"]
    assert weak["per_check_ci"]["FAKE.guarded"] == pytest.approx(list(stats.clopper_pearson(1, 2)))
    assert weak["kill_rate_ci"] == weak["per_check_ci"]["FAKE.guarded"]
    assert weak["best_by"] == "FAKE.guarded"
    c = _by_id(quick["checks"])["FAKE.flaky"]
    assert c["false_alarm_ci"] == pytest.approx(list(stats.clopper_pearson(1, 2)))
    assert quick["confidence"] == 0.95


def test_errors_on_the_correct_code_are_a_broken_check_not_false_alarms():
    out = power.run_power("quick", 2, 0, inline=True, progress=False,
                          catalogue="power_fakes:catalogue_broken_check")
    c = _by_id(out["checks"])["BROKEN.crash"]
    assert c["false_alarm_rate"] == 0.0 and c["error_rate"] == 1.0
    assert "ValueError: this check is broken on the correct code" in c["errors"][0]
    probs = {(p["kind"], p["id"]): p["message"] for p in out["problems"]}
    assert ("false_alarm", "BROKEN.crash") not in probs
    assert "a broken check" in probs[("error", "BROKEN.crash")]
    assert "this check is broken" in probs[("error", "BROKEN.crash")]
    # the mutant's runs raise too: errors, not kills
    assert _by_id(out["mutants"])["fake-on-broken"]["kill_rate"] == 0.0
    assert ("survives", "fake-on-broken") in probs
    assert "this check is broken" in probs[("error", "fake-on-broken")]


def test_a_check_may_start_processes_of_its_own(tmp_path):
    """The job processes may have children (THREADED runs AsyncSAM's worker in a spawned
    process every third run): a check that starts one is judged, not an error, on the correct
    code and under its mutant."""
    out = power.run_power("quick", 1, 0, jobs=1, progress=False,
                          catalogue="power_fakes:catalogue_spawns", root=tmp_path)
    c = _by_id(out["checks"])["SPAWNS.child"]
    assert c["error_rate"] == 0.0 and c["false_alarm_rate"] == 0.0, c
    assert _by_id(out["mutants"])["fake-spawns"]["kill_rate"] == 1.0


def test_power_runs_do_not_judge_time(tmp_path):
    """Power runs a check with ``Settings.judge_time=False``: a time part that would fail on
    every idle repeat (and stay undecided on a busy one) is the same in every repeat, so the
    correct code does not flip with the machine's load."""
    out = power.run_power("quick", 4, 0, inline=True, progress=False,
                          catalogue="power_fakes:catalogue_timed", root=tmp_path)
    c = _by_id(out["checks"])["TIMED.time"]
    assert c["usual"] == "inconclusive" and c["false_alarm_rate"] == 0.0, c
    assert not [p for p in out["problems"] if p["kind"] == "false_alarm"]


def test_power_quick_treats_a_crash_as_an_error_not_a_kill(fake_cli, tmp_path, capsys):
    """``asam-theory power --quick`` with a mutant whose check raises: exit 1, the mutant
    survives, the exception line printed with it."""
    assert cli.main(["power", "--quick", "--jobs", "0", "--mutants", "fake-raises",
                     "--out", str(tmp_path / "r")]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM survives: mutant fake-raises was never killed (its errors are not kills)" \
        in out
    assert "PROBLEM error: mutant fake-raises: 2 run(s) raised" in out
    assert "RuntimeError: raised under the mutant" in out
    data = json.loads((tmp_path / "r" / "power.json").read_text())
    row = data["mutants"][0]
    assert row["kill_rate"] == 0.0 and row["killed_by"] == []


def test_a_journal_keeps_each_finished_job(tmp_path):
    """Every finished job's records are appended as they come, so a run stopped early can be
    summarised from what it finished; a line cut off mid-write is skipped."""
    journal = tmp_path / "runs.jsonl"
    out = power.run_power("quick", 2, 0, mutant_ids=["fake-breaks", "fake-weak"],
                          claim_ids=["FAKE"], inline=True, progress=False, catalogue=PROVIDER,
                          journal=journal)
    with journal.open("a") as f:
        f.write('{"mutant": "cut off')
    results = power.read_journal(journal)
    assert set(results) == {(None, "FAKE.guarded"), (None, "FAKE.cached"),
                            (None, "FAKE.flaky"), ("fake-breaks", "FAKE.guarded"),
                            ("fake-weak", "FAKE.guarded")}
    p = power.plan(["fake-breaks", "fake-weak"], ["FAKE"], PROVIDER)
    checks, _ = power._load_catalogue(PROVIDER)
    again = power.summarise(p, results, mode="quick", repeats=2, seed=0, not_run_reason=None,
                            checks_by_id=checks)
    assert again["mutants"] == out["mutants"] and again["problems"] == out["problems"]


def test_a_stopped_run_resumes_from_its_journal(tmp_path, monkeypatch):
    """``resume``: the jobs a journal recorded are kept and not run again, the others run, and
    the result equals an uninterrupted run's; a journal of other seeds or another plan is
    refused."""
    whole = power.run_power("quick", 2, 0, mutant_ids=["fake-breaks", "fake-weak"],
                            claim_ids=["FAKE"], inline=True, progress=False,
                            catalogue=PROVIDER)
    journal = tmp_path / "runs.jsonl"
    power.run_power("quick", 2, 0, mutant_ids=["fake-breaks"], claim_ids=["FAKE"], inline=True,
                    progress=False, catalogue=PROVIDER, journal=journal)
    done = power.read_journal(journal)
    ran: list[tuple] = []
    real = power.run_job

    def counting(job):
        ran.append((job["mutant"], job["target"]))
        return real(job)

    monkeypatch.setattr(power, "run_job", counting)
    again = power.run_power("quick", 2, 0, mutant_ids=["fake-breaks", "fake-weak"],
                            claim_ids=["FAKE"], inline=True, progress=False,
                            catalogue=PROVIDER, journal=journal, resume=done)
    assert ran == [("fake-weak", "FAKE.guarded")]
    assert again["mutants"] == whole["mutants"] and again["problems"] == whole["problems"]
    assert set(power.read_journal(journal)) == set(done) | {("fake-weak", "FAKE.guarded")}
    with pytest.raises(ValueError, match="resume with the stopped run's --repeats and --seed"):
        power.run_power("quick", 3, 0, mutant_ids=["fake-breaks"], claim_ids=["FAKE"],
                        inline=True, progress=False, catalogue=PROVIDER, resume=done)
    with pytest.raises(ValueError, match="not in this run's plan"):
        power.run_power("quick", 2, 0, mutant_ids=["fake-weak"], claim_ids=["FAKE"],
                        inline=True, progress=False, catalogue=PROVIDER, resume=done)
