"""The ABLATION claim: its checks hold, fail or are inconclusive as the paired measurements say
(synthetic accuracies, cosines, traces and penalties stand in for the runs), each reports its
earlier versions' outcome on the same data, and the quick claim runs."""

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


# the noise is shared by the variants of a seed, so paired differences are exact: the
# bounds sit on the mean and each case is decided
@pytest.mark.parametrize("acc,status,v2", [
    (_acc(0.90, 0.89, 0.895), "inconclusive", "inconclusive"),  # SAM does not beat SGD
    (_acc(0.85, 0.92, 0.92), "holds", "holds"),          # SAM helps, look-ahead keeps it
    (_acc(0.85, 0.92, 0.915), "holds", "holds"),         # 0.5 pp below SAM: within 1 pp
    (_acc(0.85, 0.92, 0.85), "fails", "fails"),          # look-ahead no better than SGD
    (_acc(0.85, 0.95, 0.875, asy=0.86), "fails", "fails"),  # keeps 25 %, 7.5 pp below SAM
    # keeps 60 % of the gain but 4 pp below SAM: version 2 held, version 3 fails
    (_acc(0.85, 0.95, 0.91, asy=0.86), "fails", "holds"),
    (_acc(0.85, 0.92, 0.92, asy=0.92), "holds", "holds"),   # AsyncSAM itself close to SAM
])
def test_remedy_outcomes(monkeypatch, acc, status, v2):
    monkeypatch.setattr(ab, "run_ablation", _fake(acc))
    out = ab.remedy_check(QUICK)
    assert out.status == status, out.summary
    rec, (old1, old2) = out.config["preregistered"], out.config["earlier_versions"]
    assert rec["version"] == 3 and old1["version"] == 1 and old2["version"] == 2
    assert old2["outcome"] == v2 and old1["on_this_run"] and old2["on_this_run"]


def test_remedy_is_inconclusive_when_underpowered(monkeypatch):
    """Look-ahead 0.8 pp below SAM with 2 pp seed-to-seed scatter on 2 seeds: neither side of
    the 1 pp margin is shown, and the summary gives the MDE."""
    acc = {"sgd": [0.85, 0.86], "sam": [0.92, 0.93], "lookahead_tau1": [0.92, 0.906],
           "asyncsam": [0.90, 0.90], "independent_tau0": [0.90, 0.90]}
    monkeypatch.setattr(ab, "run_ablation", _fake(acc))
    out = ab.remedy_check(QUICK)
    assert out.status == "inconclusive" and "MDE" in out.summary
    assert out.config["parts"]["non_inferiority"] == "inconclusive"


def test_quick_claim_runs_and_reports_every_check():
    (claim,) = select(["ABLATION"])
    vs = {ch.name: run_check(claim, ch, QUICK) for ch in claim.checks}
    assert all(v.error is None for v in vs.values()), [v.error for v in vs.values()]
    # the direction effect is large (cos ~1 vs ~0.3) and the trace exact (1 - cos ~ 1e-16)
    assert vs["direction"].outcome == "holds", vs["direction"].summary
    # at quick size the penalty's parts are decided (pilot seeds 501-508: look-ahead keeps
    # 81-97 % of SAM's log-reduction, AsyncSAM ends 0.03-0.08 above it in log)
    assert vs["penalty"].outcome == "holds", vs["penalty"].summary
    assert vs["lookahead_recovers_sam"].table
    for v in vs.values():
        assert v.config["preregistered"]["version"] == 3


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


def _fake_trace(match: float, separation: float):
    def trace(variant, recipe, seed, every):
        from asam_theory.claims.stale_trace import AscentTrace

        t = AscentTrace(variant.tau, every)
        t.steps, t.match, t.separation = [10, 20, 30], [match] * 3, [separation] * 3
        return t
    return trace


@pytest.mark.parametrize("la,ind,match,sep,status,v2", [
    ([0.99, 0.995], [0.25, 0.22], 0.0, 1e-2, "holds", "holds"),
    ([0.25, 0.22], [0.25, 0.22], 0.0, 1e-2, "fails", "fails"),  # look-ahead, independent batch
    ([0.99, 0.995], [0.99, 0.995], 0.0, 1e-2, "fails", "fails"),  # "independent" = descent
    # tau ignored: the look-ahead is SAM (cos 1), the used direction the fresh one
    ([1.0, 1.0], [0.25, 0.22], 1e-2, 1e-2, "fails", "holds"),
    # the weights barely moved: stale and fresh cannot be told apart
    ([0.99, 0.995], [0.25, 0.22], 0.0, 1e-6, "inconclusive", "holds"),
])
def test_direction_outcomes(monkeypatch, la, ind, match, sep, status, v2):
    monkeypatch.setattr(ab, "run_ablation", _fake_direction(la, ind))
    monkeypatch.setattr(ab, "trace_run", _fake_trace(match, sep))
    out = ab.direction_check(QUICK)
    assert out.status == status, out.summary
    assert out.config["earlier_versions"][1]["outcome"] == v2


def _fake_penalty(log_ratio: dict[str, list[float]]):
    """Penalty runs whose minibatch norm is exp(log_ratio[variant][seed]) (SGD's is 1)."""
    def run(config):
        name, seed = config["variant"]["name"], config["seed"]
        x = 0.0 if name == "sgd" else log_ratio[name][seed % len(log_ratio[name])]
        return {"minibatch": float(np.exp(x)), "full": 0.5, "test_acc": 0.9}
    return run


@pytest.mark.parametrize("sam,la,asy,status", [
    ([-0.12, -0.11, -0.13], [-0.10, -0.09, -0.11], [-0.03, -0.02, -0.04], "holds"),
    # the look-ahead keeps none of SAM's reduction (as without perturbation)
    ([-0.12, -0.11, -0.13], [0.0, 0.01, -0.01], [-0.03, -0.02, -0.04], "fails"),
    # AsyncSAM decisively below the look-ahead: the penalty does not follow the batch
    ([-0.12, -0.11, -0.13], [-0.06, -0.07, -0.065], [-0.12, -0.11, -0.12], "fails"),
    # SAM does not lower the penalty: nothing to keep, the gap itself undecided
    ([0.01, -0.01, 0.0], [0.0, 0.01, -0.01], [0.02, -0.02, 0.0], "inconclusive"),
])
def test_penalty_outcomes(monkeypatch, sam, la, asy, status):
    log_ratio = {"sam": sam, "lookahead_tau1": la, "asyncsam": asy}
    monkeypatch.setattr(ab, "penalty_run", _fake_penalty(log_ratio))
    out = ab.penalty_check(Settings(mode="default", seed=0))
    assert out.status == status, out.summary
    assert out.config["preregistered"]["version"] == 3
    assert [r["version"] for r in out.config["earlier_versions"]] == [1, 2]
    assert set(out.config["mde"]) == {"keep", "gap"}
