"""SAMPa against the official code (LIONS-EPFL/SAMPa ``train.py``): the fixture
``tests/data/sampa_reference.npz`` holds its trajectory on a fixed float64 MLP, written by
``tools/reference_sampa.py``; and the numpy rule against the torch optimizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference_fixtures import commit_of, fixture, fixture_batches, flat, mlp_from
from torch import nn

from asam_theory.methods import SAMPa as NpSAMPa
from asam_theory.problems import FiniteSumQuadratic
from asam_theory.rng import SeedStreams
from asam_theory.torch import SAMPa


def smoothed_ce(model: nn.Module, batch, smoothing: float = 0.1) -> torch.Tensor:
    """Label-smoothed cross-entropy as KL(smoothed one-hot ‖ softmax), the official loss."""
    x, y = batch
    pred = model(x)
    target = torch.full_like(pred, smoothing / (pred.shape[1] - 1))
    target.scatter_(1, y[:, None], 1.0 - smoothing)
    return F.kl_div(F.log_softmax(pred, dim=1), target, reduction="none").sum(-1).mean()


def _run_ours(fx, **kw):
    lr, rho, og, wd, mom = fx["hyper"]
    model = mlp_from(fx)
    out = []
    with SAMPa(model.parameters(), torch.optim.SGD, model, smoothed_ce, rho=rho, lam=og,
               lr=lr, momentum=mom, weight_decay=wd, concurrent=False, **kw) as opt:
        for b in fixture_batches(fx):
            opt.step(b)
            out.append(flat(model))
    return np.array(out)


def test_sampa_matches_the_official_code():
    fx = fixture("sampa_reference.npz")
    ref = fx["trajectory"]
    assert ref.shape[0] == 20
    assert commit_of(fx) == "01093ef6eb35af2eefa62b618bfcae16fb4a73d7"
    ours = _run_ours(fx)
    # float64; the official code recovers grad f(y_t) as (agg - pert) / (og + 1e-15) and
    # undoes weight offsets by subtraction: rounding of order 1e-16 per step
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)
    # the former start (an extra gradient at step 0) is a different trajectory
    assert np.abs(_run_ours(fx, start="gradient") - ref).max() > 1e-4


def test_numpy_sampa_equals_torch_sampa():
    p = FiniteSumQuadratic.random(10, 4, seed=2)
    rule = NpSAMPa(lr=0.1, batch_size=3, rho=0.2, lam=0.3, momentum=0.9, weight_decay=1e-2)
    streams = SeedStreams([1])
    draws = []
    orig = p.sample_batch

    def sample_batch(streams, stream, batch_size):
        b = orig(streams, stream, batch_size)
        draws.append(b[0].copy())
        return b

    p.sample_batch = sample_batch  # record the draws (instance attribute)
    state = rule.init(np.ones((1, 4)), p, streams)
    xs = []
    for _ in range(15):
        state, _ = rule.step(state, p, streams)
        xs.append(state.x[0].copy())

    class Quad(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(4, dtype=torch.float64))

        def forward(self, idx):
            r = self.w[None] - torch.as_tensor(p.S)[idx]
            return 0.5 * torch.einsum("bi,bij,bj->b", r, torch.as_tensor(p.Hs)[idx], r).mean()

    m = Quad()
    out = []
    with SAMPa(m.parameters(), torch.optim.SGD, m, lambda mod, b: mod(b), rho=0.2, lam=0.3,
               lr=0.1, momentum=0.9, weight_decay=1e-2, concurrent=False) as opt:
        for idx in draws:
            opt.step(torch.as_tensor(idx))
            out.append(m.w.detach().numpy().copy())
    np.testing.assert_allclose(np.array(out), np.array(xs), rtol=0, atol=1e-12)


def test_sampa_bad_start_is_refused():
    m = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="start"):
        SAMPa(m.parameters(), torch.optim.SGD, m, smoothed_ce, start="one", lr=0.1,
              concurrent=False)


def test_defaults_agree_between_the_faces():
    """rho = 0.1 and lambda = 0.2 (the official train.py) on the numpy rule, its catalogue
    entry and the torch optimizer."""
    import inspect

    from asam_theory.methods.catalog import get_method

    sig = inspect.signature(SAMPa.__init__).parameters
    rule = NpSAMPa(lr=0.1)
    built = get_method("sampa").build(lr=0.1)
    for name, value in (("rho", 0.1), ("lam", 0.2)):
        assert sig[name].default == getattr(rule, name) == getattr(built, name) == value
