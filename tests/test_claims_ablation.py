"""The ABLATION claim: its remedy check holds, fails or is inconclusive as the paired
accuracies say (synthetic accuracies stand in for the runs), and the quick claim runs."""

from __future__ import annotations

import numpy as np
import pytest

import asam_theory.claims.ablation as ab
from asam_theory.claims import Settings, run_check, select

QUICK = Settings(mode="quick", seed=0)


def _fake(acc: dict[str, list[float]]):
    def run(variants, recipe, seeds, **kw):
        from asam_theory.experiments.ablation import decompose

        per = {v.name: acc[v.name][: len(seeds)] for v in variants}
        return {"recipe": {}, "variants": [], "seeds": list(seeds), "per_seed": per,
                "fidelity": {}, "fidelity_per_seed": {}, "table": decompose(per)}
    return run


def _acc(sgd, sam, la, asy=0.90, ind=0.90, noise=0.002):
    rng = np.random.default_rng(1)
    e = noise * rng.standard_normal(2)
    return {"sgd": list(sgd + e), "sam": list(sam + e), "lookahead_tau1": list(la + e),
            "asyncsam": list(asy + e), "independent_tau0": list(ind + e)}


@pytest.mark.parametrize("acc,status", [
    (_acc(0.90, 0.89, 0.895), "inconclusive"),  # SAM does not beat SGD
    (_acc(0.85, 0.92, 0.92), "holds"),          # SAM helps, look-ahead keeps it
    (_acc(0.85, 0.92, 0.85), "fails"),          # SAM helps, look-ahead no better than SGD
    (_acc(0.85, 0.95, 0.875, asy=0.86), "fails"),  # beats SGD, keeps only 25 % of the gain
    (_acc(0.85, 0.95, 0.91, asy=0.86), "holds"),   # keeps 60 %, 4 pp below SAM
    (_acc(0.85, 0.92, 0.92, asy=0.92), "holds"),   # AsyncSAM itself close to SAM: still holds
])
def test_remedy_outcomes(monkeypatch, acc, status):
    monkeypatch.setattr(ab, "run_ablation", _fake(acc))
    assert ab.remedy_check(QUICK).status == status


def test_quick_claim_runs_and_reports_both_checks():
    (claim,) = select(["ABLATION"])
    vs = [run_check(claim, ch, QUICK) for ch in claim.checks]
    assert all(v.error is None for v in vs), [v.error for v in vs]
    assert vs[0].outcome == "holds", vs[0].summary  # the direction effect is large (cos ~1 vs ~0.3)
    assert vs[1].outcome in ("holds", "fails", "inconclusive") and vs[1].table


def test_full_mode_decides_on_its_powered_seeds(monkeypatch):
    """Full mode runs the core variants on FULL_REMEDY_SEEDS paired seeds from the master
    seed (synthetic accuracies) and reads its verdict on them."""
    seen = {}
    fake = _fake({k: v * ab.FULL_REMEDY_SEEDS
                  for k, v in _acc(0.85, 0.92, 0.92).items()})

    def run(variants, recipe, seeds, **kw):
        seen.update(seeds=list(seeds), variants=[v.name for v in variants], steps=recipe.steps)
        return fake(variants, recipe, seeds, **kw)

    monkeypatch.setattr(ab, "run_ablation", run)
    out = ab.remedy_check(Settings(mode="full", seed=7))
    assert seen["seeds"] == list(range(7, 7 + ab.FULL_REMEDY_SEEDS))
    assert set(seen["variants"]) >= {"sgd", "sam", "asyncsam", "lookahead_tau1"}
    assert seen["steps"] == 600 and out.config["seeds"] == seen["seeds"]
    assert out.status == "holds" and {r["study"] for r in out.table} == {"batchnorm"}


def test_lookahead_far_below_sgd_fails_whatever_sam_does(monkeypatch):
    """A remedy that loses more than the margin to SGD fails even when the precondition is not
    met (SAM no better than SGD)."""
    monkeypatch.setattr(ab, "run_ablation", _fake(_acc(0.90, 0.89, 0.85)))
    out = ab.remedy_check(QUICK)
    assert out.status == "fails", out.summary


def test_kept_share_carries_its_fieller_interval(monkeypatch):
    monkeypatch.setattr(ab, "run_ablation", _fake(_acc(0.85, 0.95, 0.91, asy=0.86)))
    out = ab.remedy_check(QUICK)
    low, high = out.config["kept_share_fieller90"]
    assert low <= out.config["kept_share"] <= high
    assert out.config["mde_pp"] >= 0


def _fake_direction(la: list[float], ind: list[float]):
    def run(variants, recipe, seeds, **kw):
        fid = {"lookahead_tau1": la, "independent_tau0": ind, "asyncsam": ind}
        return {"recipe": {}, "fidelity": {k: float(np.mean(v)) for k, v in fid.items()},
                "fidelity_per_seed": fid}
    return run


@pytest.mark.parametrize("la,ind,status", [
    ([0.99, 0.995], [0.25, 0.22], "holds"),
    ([0.25, 0.22], [0.25, 0.22], "fails"),     # look-ahead on an independent batch
    ([0.99, 0.995], [0.99, 0.995], "fails"),   # "independent" ascent on the descent batch
])
def test_direction_bounds_can_fail(monkeypatch, la, ind, status):
    monkeypatch.setattr(ab, "run_ablation", _fake_direction(la, ind))
    assert ab.direction_check(QUICK).status == status
