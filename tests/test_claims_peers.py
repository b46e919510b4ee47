"""The PEERS claim: T1 for the covered peers, counted == declared cost, the frontier."""

from __future__ import annotations

import copy

from asam_theory.claims.base import Settings
from asam_theory.claims.catalog import registry
from asam_theory.claims.peers import PEERS, frontier_verdict, t1_verdict
from asam_theory.sweeps import peers as psims


def test_peers_claim_is_registered_and_holds_quick():
    assert registry()["PEERS"] is PEERS
    for v in PEERS.run(Settings(mode="quick")):
        assert v.passed, (v.check, v.summary, v.error)
    frontier = PEERS.run(Settings(mode="quick"), only=["frontier"])[0]
    rows = {(r["setting"], r["method"]): r for r in frontier.table}
    # with the full batch SAM's perturbation is its fresh direction; RWP's is random
    assert rows["full_batch", "sam"]["fidelity"] > 1 - 1e-9
    assert abs(rows["full_batch", "rwp"]["fidelity"]) < 0.2
    assert rows["minibatch", "arsam"]["perturbed_fraction"] < 1


def test_verdicts_fail_on_a_violation_and_on_a_cost_mismatch():
    cfg = psims.t1_configs(40, 4)[0]
    row = {**cfg, **psims.t1_task(cfg)}
    assert t1_verdict([copy.deepcopy(row)]).passed
    bad = copy.deepcopy(row)
    bad["mean"] = [10 * m + 1e3 for m in bad["mean"]]
    assert not t1_verdict([row, bad]).passed
    f = psims.frontier_task({**psims.frontier_configs(["ausam"], 10, 2)[0]})
    r = {**f, "setting": "minibatch", "method": "ausam"}
    assert frontier_verdict([dict(r)]).passed
    assert not frontier_verdict([{**r, "grads_counted": r["grads_counted"] + 0.5}]).passed
