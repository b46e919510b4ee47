"""The preregistered thresholds (asam_theory.claims.preregistered): the table matches its
committed fingerprint, a value changed without a new version is caught, every entry names a
real commit, date, basis and reason, the checks read their values from it, and the report
shows a check's version beside its earlier ones."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asam_theory.claims import preregistered as P
from asam_theory.claims import registry

ROOT = Path(__file__).resolve().parents[1]
STORED = json.loads((ROOT / "tests" / "data" / "preregistered.json").read_text())
NUMERIC = [i for i, t in enumerate(P.THRESHOLDS) if isinstance(t.value, float)]


def test_table_matches_its_committed_fingerprint():
    assert P.fingerprint_problems(STORED) == []


def test_a_value_changed_in_place_fails_the_guard(monkeypatch):
    """EDGE's band factor edited without a new version: the guard names the entry."""
    i = next(i for i, t in enumerate(P.THRESHOLDS) if t.key == "EDGE.band_factor")
    changed = list(P.THRESHOLDS)
    changed[i] = dataclasses.replace(changed[i], value=1.12)
    monkeypatch.setattr(P, "THRESHOLDS", tuple(changed))
    problems = P.fingerprint_problems(STORED)
    assert any(p.startswith("EDGE.band_factor@v1 changed from 1.0975 to 1.12") for p in problems)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(NUMERIC), st.floats(0.5, 2.0).filter(lambda f: abs(f - 1) > 1e-9))
def test_any_numeric_value_changed_in_place_fails_the_guard(i, factor):
    t = P.THRESHOLDS[i]
    changed = list(P.THRESHOLDS)
    changed[i] = dataclasses.replace(t, value=t.value * factor if t.value else factor)
    original = P.THRESHOLDS
    try:
        P.THRESHOLDS = tuple(changed)
        assert any(p.startswith(f"{t.ref} changed") for p in P.fingerprint_problems(STORED))
    finally:
        P.THRESHOLDS = original


def test_a_new_threshold_version_needs_a_new_check_version(monkeypatch):
    """A second version of HEADLINE.margin, fingerprinted but read by no new check version:
    the checks that read version 1 are named."""
    old = P.entry("HEADLINE.margin")
    new = dataclasses.replace(old, value=0.02, version=2)
    monkeypatch.setattr(P, "THRESHOLDS", (*P.THRESHOLDS, new))
    stored = {**STORED, new.ref: 0.02}
    problems = P.fingerprint_problems(stored)
    assert any("HEADLINE.asyncsam@v2 reads HEADLINE.margin@v1" in p for p in problems)
    assert any("HEADLINE.lookahead@v2 reads HEADLINE.margin@v1" in p for p in problems)


def test_removing_an_old_version_fails_the_guard(monkeypatch):
    monkeypatch.setattr(P, "THRESHOLDS", tuple(t for t in P.THRESHOLDS
                                                if t.ref != "ABLATION.kept_share@v1"))
    problems = P.fingerprint_problems(STORED)
    assert "ABLATION.kept_share@v1 was removed: old versions stay in the table" in problems


def test_every_entry_is_well_formed():
    reg = registry()
    for t in P.THRESHOLDS:
        assert t.basis in P.BASES and t.reason.strip(), t.ref
        dt.datetime.fromisoformat(t.set_on)
        for check in t.checks:
            claim, name = check.split(".")
            assert name in {c.name for c in reg[claim].checks}, check
    for c in P.CHECK_VERSIONS:
        dt.datetime.fromisoformat(c.set_on)
        assert P.check_version(c.check, c.version) is c


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs the repository's git history")
def test_every_commit_exists_and_carries_the_recorded_date():
    """Each entry's commit is in this repository's history and its author date is the one
    recorded (a rewritten history, e.g. a squash, breaks this and says so)."""
    commits = {(t.commit, t.set_on) for t in P.THRESHOLDS}
    commits |= {(c.commit, c.set_on) for c in P.CHECK_VERSIONS}
    for commit, set_on in sorted(commits):
        res = subprocess.run(["git", "-C", str(ROOT), "show", "-s", "--format=%aI", commit],
                             capture_output=True, text=True)
        assert res.returncode == 0, f"commit {commit} is not in this repository's history"
        got = dt.datetime.fromisoformat(res.stdout.strip())
        assert got == dt.datetime.fromisoformat(set_on), (commit, res.stdout, set_on)


def test_checks_read_their_thresholds_from_the_table():
    """Every current value named with its module constant is the constant's value."""
    for t in P.THRESHOLDS:
        if t.constant and t.version == P.entry(t.key).version:
            module, _, name = t.constant.rpartition(".")
            value = getattr(importlib.import_module(module), name)
            assert value == P.threshold(t.key), t.constant


def test_edge_band_factor_is_the_theory_value():
    """√(λ*_3/λ*_0) at the check's ρ/η, recorded to 4 decimals (so within 5e-5)."""
    from asam_theory.claims import edge

    assert abs(edge.band_factor_from_theory() - edge.BAND_FACTOR) < 5e-5
    assert edge.RHO_U / edge.LR == pytest.approx(0.1)


def test_record_and_earlier_versions():
    rec = P.record("ABLATION.lookahead_recovers_sam")
    assert rec["version"] == 3 and "non-inferior" in rec["criterion"]
    assert {t["key"] for t in rec["thresholds"]} == {"ABLATION.margin", "ABLATION.kept_share"}
    rows = P.earlier("ABLATION.lookahead_recovers_sam", {1: ("holds", "lower bound ok")})
    assert [r["version"] for r in rows] == [1, 2]
    assert rows[0]["on_this_run"] and rows[0]["outcome"] == "holds"
    assert not rows[1]["on_this_run"] and "inconclusive" in rows[1]["recorded"]
    assert P.reads("ABLATION.lookahead_recovers_sam", 2) == {"margin": 0.01, "kept_share": 0.5}
    assert P.reads("EDGE.at_edge", 1)["band"] == (0.95, 1.12)


@pytest.mark.parametrize("call,match", [
    (lambda: P.threshold("HEADLINE.nope"), "key must be one of"),
    (lambda: P.entry("HEADLINE.margin", 7), "version of HEADLINE.margin must be one of"),
    (lambda: P.check_version("NOPE.check"), "check must be one of"),
    (lambda: P.check_version("EDGE.at_edge", 9), "version of EDGE.at_edge must be one of"),
    (lambda: dataclasses.replace(P.THRESHOLDS[0], basis="hunch"), "basis must be one of"),
    (lambda: dataclasses.replace(P.THRESHOLDS[0], commit="abc"), "commit must be a full"),
    (lambda: dataclasses.replace(P.THRESHOLDS[0], version=0), "version must be an integer"),
    (lambda: dataclasses.replace(P.THRESHOLDS[0], checks=("EDGE.at_edge",)), "checks must"),
])
def test_bad_input_is_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_report_shows_the_version_beside_the_earlier_ones(tmp_path):
    """A verdict carrying version 3 and version 1's outcome on the same run: the HTML shows
    both, and verdicts.json keeps them in the config."""
    from asam_theory.claims.base import Verdict
    from asam_theory.report.build import write_report

    check = "ABLATION.lookahead_recovers_sam"
    config = {"preregistered": P.record(check),
              "earlier_versions": P.earlier(check, {1: ("fails", "lower bound −1.4 pp")})}
    v = Verdict("ABLATION", "lookahead_recovers_sam", "real_data", "inconclusive",
                summary="s", config=config)
    claim = registry()["ABLATION"]
    out = write_report(tmp_path, [claim], [v], mode="quick")
    page = out["index"].read_text()
    assert "Preregistered: version 3" in page and "v1 (2026-11-29" in page
    assert "lower bound −1.4 pp" in page and "v2 (2026-11-29, f8053c513e)" in page
    stored = json.loads(out["verdicts"].read_text())[0]["config"]
    assert stored["earlier_versions"][0]["outcome"] == "fails"
    # a check that does not report its version still gets the table's current one
    b = Verdict("BASELINES", "mlp", "real_data", "holds", summary="s")
    page = write_report(tmp_path / "b", [registry()["BASELINES"]], [b],
                        mode="quick")["index"].read_text()
    assert "Preregistered: version 2" in page and "64.2 %" in page
