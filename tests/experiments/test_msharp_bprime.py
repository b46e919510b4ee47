"""The m-sharpness experiment's drivers: SAM with micro-batch b is SAM, with micro-batch m its
ascent reads the first m samples of the descent batch; the paired comparison adds up."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from asam_theory.experiments import msharp_bprime as M
from asam_theory.experiments.probe_runs import SETTINGS, Driver, build, descent_indices, load
from asam_theory.experiments.probe_runs import train as train_run

TINY = replace(SETTINGS[0], steps=6, batch_size=16)


def _weights(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_micro_batch_b_is_sam_on_the_batchnorm_cnn() -> None:
    """float64: SAM with its ascent on all b samples through AsyncSAM(tau=0) ends where the SAM
    optimizer does (rounding only: 1e-10 relative)."""
    a = train_run(TINY, Driver("sam_m16", "sam_micro", tau=0, bprime=16), 2,
                  dtype=torch.float64)["model"]
    b = train_run(TINY, Driver("sam", "sam"), 2, dtype=torch.float64)["model"]
    wa, wb = _weights(a), _weights(b)
    assert float((wa - wb).norm() / wb.norm()) < 1e-10


def test_micro_batch_m_reads_the_first_m_samples_of_the_descent_batch() -> None:
    """One step of SAM with micro-batch m, rebuilt by hand in float64."""
    setting = replace(TINY, steps=1)
    data = load(setting, 0, torch.float64)
    out = train_run(setting, Driver("sam_m4", "sam_micro", tau=0, bprime=4), 0, data=data,
                    dtype=torch.float64)["model"]
    model = build(setting, data, 0, torch.float64)
    idx = descent_indices(len(data.y_train), setting, 0)[0]
    x, y = data.x_train[idx], data.y_train[idx]
    params = list(model.parameters())
    g = torch.autograd.grad(F.cross_entropy(model(x[:4]), y[:4]), params)
    norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
    with torch.no_grad():
        for p, gi in zip(params, g, strict=True):
            p.add_(gi * setting.rho / (norm + 1e-12))
    d = torch.autograd.grad(F.cross_entropy(model(x), y), params)
    with torch.no_grad():
        for p, gi in zip(params, g, strict=True):
            p.sub_(gi * setting.rho / (norm + 1e-12))
        for p, di in zip(params, d, strict=True):  # SGD, first step: v = grad + wd w
            p.sub_(setting.lr * (di + setting.weight_decay * p))
    assert float((_weights(out) - _weights(model)).abs().max()) < 1e-12


def test_drivers_pair_sam_and_asyncsam_at_each_m() -> None:
    names = [d.name for d in M.drivers((8, 64))]
    assert names == ["sgd", "sam_m8", "sam_m64", "asyncsam_m8", "asyncsam_m64"]
    with pytest.raises(ValueError, match="m"):
        M.drivers((0,))


def test_compare_pairs_by_seed_and_reports_the_mde() -> None:
    rows = [{"driver": d, "seed": s, "test_acc": acc, "collapsed": False}
            for s in range(4) for d, acc in (("sgd", 0.80 + 0.01 * s),
                                             ("sam_m8", 0.83 + 0.01 * s),
                                             ("asyncsam_m8", 0.81 + 0.01 * s + 0.002 * (s % 2)))]
    out = M.compare(rows, (8,), 64)
    by = {(c["a"], c["b"]): c for c in out["comparisons"]}
    assert by[("sam_m8", "sgd")]["diff_pp"] == pytest.approx(3.0)
    # a constant paired difference has zero spread: interval and MDE collapse to it / zero
    assert by[("sam_m8", "sgd")]["ci_pp"] == pytest.approx([3.0, 3.0])
    assert by[("sam_m8", "sgd")]["mde_pp"] == pytest.approx(0.0, abs=1e-9)
    assert by[("asyncsam_m8", "sam_m8")]["diff_pp"] == pytest.approx(-1.9)
    assert by[("asyncsam_m8", "sam_m8")]["mde_pp"] > 0
    assert out["methods"]["sgd"]["n"] == 4
    assert "sam_m8 − sgd" in M.markdown(out)
    full = M.compare(rows + [{"driver": "sam_m64", "seed": s, "test_acc": 0.8,
                              "collapsed": False} for s in range(4)]
                     + [{"driver": "asyncsam_m64", "seed": s, "test_acc": 0.8,
                         "collapsed": False} for s in range(4)], (8, 64), 64)
    pairs = [(c["a"], c["b"]) for c in full["comparisons"]]
    assert len(pairs) == len(set(pairs))
    assert ("asyncsam_m8", "sam_m64") in pairs and ("sam_m8", "sam_m64") in pairs


def test_run_msharp_runs_every_driver_on_every_seed() -> None:
    out = M.run_msharp(replace(TINY, steps=4), seeds=(0, 1), ms=(8, 16))
    assert len(out["runs"]) == 2 * 5
    assert set(out["methods"]) == {"sgd", "sam_m8", "sam_m16", "asyncsam_m8",
                                   "asyncsam_m16"}
    assert all(np.isfinite(c["diff_pp"]) for c in out["comparisons"])
