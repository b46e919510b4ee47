"""The claim catalogue's lookups: ``select`` by claim id and ``find_check`` by check id."""

from __future__ import annotations

import pytest

from asam_theory.claims import all_claims, find_check, select


def test_every_check_is_found_by_its_id() -> None:
    for claim in all_claims():
        for check in claim.checks:
            found_claim, found = find_check(f"{claim.id}.{check.name}")
            assert found_claim is claim and found is check


@pytest.mark.parametrize("bad", ["HEADLINE", "HEADLINE.nosuch", "NOSUCH.asyncsam", "", "."])
def test_unknown_check_ids_name_the_known_ones(bad: str) -> None:
    with pytest.raises(ValueError, match=r"unknown check id .*known: \['T1\.proof'"):
        find_check(bad)


def test_select_names_unknown_claims() -> None:
    assert [c.id for c in select(["HEADLINE", "T1"])] == ["HEADLINE", "T1"]
    with pytest.raises(ValueError, match="unknown claim id"):
        select(["NOSUCH"])
