"""Penalty fidelity: exact on quadratics, the probes use the iterates and batches they name,
probing leaves a run unchanged, and the drivers step the real optimizers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from asam_theory.experiments import penalty_real as P
from asam_theory.experiments.probe_runs import SETTINGS, Driver, train


@st.composite
def _spd_quadratic_batches(draw):
    """Per-example quadratics f_i(w) = 1/2 w'A_i w - c_i'w with random SPD A_i (eigenvalues
    drawn in [1e-2, 10] under a random rotation), a descent batch B, an independent batch A
    and a short history of iterates."""
    d = draw(st.integers(2, 6))
    n = draw(st.integers(4, 10))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    mats = []
    for _ in range(2 * n):
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        mats.append(q @ np.diag(rng.uniform(1e-2, 10.0, d)) @ q.T)
    a = torch.as_tensor(np.stack(mats))
    c = torch.as_tensor(rng.standard_normal((2 * n, d)))
    history = [(torch.as_tensor(rng.standard_normal(d)),) for _ in range(5)]
    rho = draw(st.floats(1e-3, 1.0))
    return (a[:n], c[:n]), (a[n:], c[n:]), history, rho


def _quad_loss(params, batch):
    (w,), (a, c) = params, batch
    return (0.5 * torch.einsum("i,nij,j->n", w, a, w) - c @ w).mean()


@given(_spd_quadratic_batches())
def test_penalty_difference_is_rho_h_times_direction_difference(case) -> None:
    batch, other, history, rho = case
    rows = P.measure(_quad_loss, history, batch, other, rho, P.PROBES, vectors=True)
    h = batch[0].mean(0)
    for r in rows:
        (pv,), (ps,), (uv,), (us,) = r["p_var"], r["p_sam"], r["u_var"], r["u_sam"]
        expected = rho * h @ (uv - us)
        # gradients of a quadratic are linear: p_var - p_sam = rho H_B (u_var - u_B) up to
        # rounding of O(|H| |w|) numbers in float64
        scale = 1.0 + float(h.norm()) * (1.0 + float(history[0][0].norm()))
        assert float((pv - ps - expected).abs().max()) <= 1e-12 * scale, r["probe"]
        # and each penalty on its own is rho H_B u
        assert float((ps - rho * h @ us).abs().max()) <= 1e-12 * scale


@given(_spd_quadratic_batches())
def test_probe_directions_use_the_named_iterate_and_batch(case) -> None:
    batch, other, history, rho = case
    rows = {r["probe"]: r for r in P.measure(_quad_loss, history, batch, other, rho,
                                             P.PROBES, vectors=True)}
    for probe in P.PROBES:
        if probe.ascent == "random":
            continue
        src = batch if probe.ascent == "same" else other
        k = max(1, round(probe.fraction * len(src[1])))
        a, c = src[0][:k].mean(0), src[1][:k].mean(0)
        g = a @ history[probe.tau][0] - c
        u = g / (g.norm() + 1e-12)
        assert torch.allclose(rows[probe.name]["u_var"][0], u, rtol=0, atol=1e-13), probe


def test_same_batch_fresh_full_direction_reproduces_sam_exactly() -> None:
    """A probe equal to SAM's own direction has cosine 1 and norm ratio 1 (not in the grid,
    added here), on a network."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(),
                              torch.nn.Linear(7, 3)).double()
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 3, (16,))
    loss, params = P.functional_loss(net)
    probe = P.Probe("sam_itself", 0, "same", 1.0)
    (row,) = P.measure(loss, [params] * 2, (x, y), (x, y), 0.05, (probe,))
    assert abs(row["cos_penalty"] - 1) < 1e-12 and abs(row["norm_ratio"] - 1) < 1e-12
    assert abs(row["cos_direction"] - 1) < 1e-12


def test_random_control_is_nearly_orthogonal_on_a_network() -> None:
    """The random unit direction's penalty is almost orthogonal to SAM's in high dimension:
    |cos| is about 1/sqrt(d) for the ~1,000-parameter net (4 SDs: 0.13)."""
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(20, 40), torch.nn.Tanh(),
                              torch.nn.Linear(40, 5)).double()
    x, y = torch.randn(64, 20, dtype=torch.float64), torch.randint(0, 5, (64,))
    loss, params = P.functional_loss(net)
    gen = torch.Generator().manual_seed(0)
    cos = [P.measure(loss, [params] * 5, (x, y), (x, y), 0.05,
                     (P.PROBES[-1],), gen)[0]["cos_penalty"] for _ in range(5)]
    assert np.mean(np.abs(cos)) < 4 / math.sqrt(sum(p.numel() for p in params))


def test_measure_refuses_a_short_history() -> None:
    with pytest.raises(ValueError, match="history"):
        P.measure(_quad_loss, [(torch.zeros(2, dtype=torch.float64),)], None, None, 0.1)


def test_checkpoints_are_spread_after_the_start() -> None:
    assert P.checkpoints(600, 8)[0] == 30 and P.checkpoints(600, 8)[-1] == 599
    assert len(P.checkpoints(600, 8)) == 8
    assert P.checkpoints(20, 3) == [4, 12, 19]


SMALL = replace(SETTINGS[0], steps=12, batch_size=16)


def test_probing_does_not_change_the_run() -> None:
    """A run with probes ends at the same weights, BatchNorm statistics and accuracy as one
    without (the probes use their own generator and leave BatchNorm's statistics alone)."""
    driver = Driver("asyncsam", "asyncsam", tau=2, bprime=8)
    plain = train(SMALL, driver, 3)
    probed = P.run_one(SMALL, driver, 3, n_checkpoints=3, probes=P.PROBES[::7])
    again = train(SMALL, driver, 3)
    assert probed["test_acc"] == plain["test_acc"] == again["test_acc"]
    for a, b in zip(plain["model"].state_dict().values(), again["model"].state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    assert len(probed["rows"]) == 3 * len(P.PROBES[::7])


def test_run_penalty_summarises_every_driver_and_probe() -> None:
    probes = (P.Probe("same_tau1_bp1", 1, "same"), P.Probe("independent_tau1_bp2", 1,
                                                            "independent", 0.5),
              P.PROBES[-1])
    drivers = (Driver("sam", "sam"), Driver("lookahead", "lookahead", tau=1))
    out = P.run_penalty((SMALL,), drivers, seeds=(0, 1), n_checkpoints=2, probes=probes)
    assert len(out["runs"]) == 4 and len(out["summary"]) == 2 * 3
    for row in out["summary"]:
        assert row["seeds"] == 2
        assert -1 <= row["cos_penalty"]["mean"] <= 1
        assert row["cos_penalty"]["low"] <= row["cos_penalty"]["mean"] <= \
            row["cos_penalty"]["high"]
        assert row["norm_ratio"]["mean"] > 0
    text = P.table(out["summary"], "sam")
    assert text.count("\n") == 2 + 3 - 1 and "random" in text


def test_run_penalty_on_an_executor_gives_the_same_runs() -> None:
    """The configs a pool runs rebuild the same setting, driver and probes (picklable round
    trip): the rows match the in-process ones exactly."""
    from concurrent.futures import ThreadPoolExecutor

    probes = (P.Probe("independent_tau2_bp4", 2, "independent", 0.25), P.PROBES[-1])
    drivers = (Driver("asyncsam", "asyncsam", tau=1, bprime=8),)
    here = P.run_penalty((SMALL,), drivers, seeds=(4,), n_checkpoints=2, probes=probes)
    with ThreadPoolExecutor(1) as pool:
        there = P.run_penalty((SMALL,), drivers, seeds=(4,), n_checkpoints=2, probes=probes,
                              executor=pool)
    assert here["runs"][0]["rows"] == there["runs"][0]["rows"]
    assert here["runs"][0]["test_acc"] == there["runs"][0]["test_acc"]
