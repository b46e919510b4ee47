"""EDGE.at_edge's decision rules on synthetic run summaries: version 2's band is symmetric on
the log scale around GD's pilot overshoot and as wide as the smallest edge gap it separates,
its ordering accepts a pair exactly when the measured ratio is within the band factor of the
predicted one, and version 1's rule is kept for the report."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asam_theory.claims import edge as C
from asam_theory.theory.edge import stale_usam_edge


def _row(method: str, family: str, tau: int, edge: float, ratio: float,
         dataset: str = "digits", reached: float | None = None) -> dict:
    return {"dataset": dataset, "activation": "tanh", "method": method, "family": family,
            "tau": tau, "edge": edge, "sharpness": edge * ratio, "ratio": ratio,
            "first_half_max": ratio if reached is None else reached, "diverged": False}


def _usam_rows(ratios: dict[int, float], edges=None) -> list[dict]:
    edges = edges or {t: stale_usam_edge(C.LR, C.RHO_U, t) for t in ratios}
    return [_row("USAM" if t == 0 else f"stale USAM τ={t}", "usam", t, edges[t], r)
            for t, r in ratios.items()]


def test_band_is_symmetric_in_log_around_the_pilot_centre():
    r = C.rule()
    lo, hi = r.absolute
    assert math.log(hi / C.CENTER) == pytest.approx(math.log(C.CENTER / lo))
    assert hi / lo == pytest.approx(C.BAND_FACTOR ** 2)
    # as wide as the smallest gap between two distinct USAM-family edges (tau 3 over tau 0)
    gap = stale_usam_edge(C.LR, C.RHO_U, 3) / stale_usam_edge(C.LR, C.RHO_U, 0)
    assert hi / lo == pytest.approx(gap, rel=2e-4)
    assert r.relative == pytest.approx((1 / C.BAND_FACTOR, C.BAND_FACTOR))


@given(st.floats(-0.3, 0.3), st.floats(-0.3, 0.3))
def test_pair_holds_exactly_within_the_band_factor(log_pred, log_off):
    pair = C.rule().pair
    assert pair(log_pred, log_pred + log_off) == (abs(log_off) <= math.log(C.BAND_FACTOR))


def test_version_1_rule_is_kept():
    r = C.rule(1)
    assert r.absolute == (0.95, 1.12) and r.reach_absolute == 0.95
    assert r.pair(0.0, math.log(1.07)) and not r.pair(0.0, math.log(1.09))  # equal: 1.08
    assert r.pair(math.log(1.46), math.log(1.46) * 0.3)  # a quarter of the gap suffices
    assert not r.pair(math.log(1.46), -0.01)


def test_runs_at_their_edges_hold_and_a_wrong_edge_fails():
    c = C.CENTER
    rows = _usam_rows({0: c, 1: c * 0.99, 2: c * 1.02, 3: c, 4: c * 1.03})
    assert C._judge(rows, [], C.rule())["holds"]
    # tau 3 judged against USAM's edge (the odd-tau3 mutant): its ratio rises by 1.2045
    wrong = {t: stale_usam_edge(C.LR, C.RHO_U, t) for t in range(5)}
    wrong[3] = wrong[0]
    rows_m = _usam_rows({0: c, 1: c * 0.99, 2: c * 1.02, 3: c * 1.2045, 4: c * 1.03}, wrong)
    judged = C._judge(rows_m, [], C.rule())
    assert not judged["holds"]
    assert any("stale USAM τ=3: ratio" in f for f in judged["failures"])
    assert any("USAM/stale USAM τ=3" in f for f in judged["failures"])


def test_edge_not_reached_or_out_of_band_fails():
    c = C.CENTER
    far = _usam_rows({0: c * C.BAND_FACTOR * 1.01})
    assert not C._judge(far, [], C.rule())["holds"]
    late = [_row("USAM", "usam", 0, 3.4, c, reached=0.8)]
    out = C._judge(late, [], C.rule())
    assert not out["holds"] and "edge not reached" in out["failures"][0]


def test_mnist1d_is_judged_relative_to_gd():
    """Every MNIST-1D run 12 % above its edge (GD's excess too) holds relative to GD; one
    whose excess over GD's exceeds the band factor fails."""
    rel = [_row("GD", "gd", 0, 4.0, 1.12, "mnist1d"),
           _row("USAM", "usam", 0, 3.4164, 1.12, "mnist1d")]
    assert C._judge([], rel, C.rule())["holds"]
    rel[1] = _row("USAM", "usam", 0, 3.4164, 1.12 * 1.1, "mnist1d")
    assert not C._judge([], rel, C.rule())["holds"]
