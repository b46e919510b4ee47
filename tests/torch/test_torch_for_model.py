"""AsyncSAM.for_model and ``opt.step(x, y)``: the short form of the threaded optimizer.

The reference is a hand-written float64 loop of the update the short form promises
(``StepBatches``): u_v = ∇L_{B_v[:b′]}(w_v)/(‖·‖ + 1e-12) on the batch of step v, step t
descends at w_t + ρ u_{max(t−τ, 0)} on B_t.  The threaded run with ``max_staleness = τ`` must
take exactly that version, so it must match the reference too (only the summation order of
the replica's and the main thread's passes may differ: tolerance 1e-12 in float64).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from asam_theory.torch import SAM, AsyncSAM, LookAhead, SAMPa, WorkerOptions

D_IN, CLASSES, B = 6, 3, 8


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D_IN, 5), nn.Tanh(), nn.Linear(5, CLASSES)).double()


def make_batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(B, D_IN, generator=g, dtype=torch.float64),
             torch.randint(0, CLASSES, (B,), generator=g)) for _ in range(n)]


def reference(model: nn.Module, batches, lr: float, rho: float, tau: int,
              bprime: int | None = None, lookahead: bool = False,
              deterministic: bool = False) -> list[torch.Tensor]:
    """Plain SGD on ∇L_{B_t}(w_t + ρ u), u from the snapshot the short form promises.

    Look-ahead: the snapshot w_v goes with B_{v+τ}; the steps t < τ, which all use w_0, share
    B_τ in the threaded mode (one ascent per snapshot) and use their own B_t in the
    deterministic mode (one ascent per step), as documented in :mod:`asam_theory.torch.asyncsam`.
    """
    model = copy.deepcopy(model)
    params = list(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    snapshots: list[list[torch.Tensor]] = []
    out = []
    for t, (x, y) in enumerate(batches):
        snapshots.append([p.detach().clone() for p in params])
        v = max(t - tau, 0)
        la_index = t if deterministic else v + tau
        xa, ya = batches[la_index] if lookahead else batches[v]
        if bprime is not None:
            xa, ya = xa[:bprime], ya[:bprime]
        ref = copy.deepcopy(model)
        with torch.no_grad():
            for q, w in zip(ref.parameters(), snapshots[v], strict=True):
                q.copy_(w)
        g = torch.autograd.grad(loss_fn(ref(xa), ya), list(ref.parameters()))
        norm = torch.sqrt(sum((gi**2).sum() for gi in g))
        w_t = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, gi in zip(params, g, strict=True):
                p.add_(gi / (norm + 1e-12), alpha=rho)
        grads = torch.autograd.grad(loss_fn(model(x), y), params)
        with torch.no_grad():
            for p, w, gi in zip(params, w_t, grads, strict=True):
                p.copy_(w - lr * gi)
        out.append(torch.cat([p.detach().flatten() for p in params]))
    return out


def run_short_form(model: nn.Module, batches, deterministic: bool, lookahead: bool = False,
                   **kw) -> tuple[list[torch.Tensor], AsyncSAM]:
    model = copy.deepcopy(model)
    tau = kw.get("tau", 1)
    la = LookAhead(iter(batches), tau=tau) if lookahead else None
    out = []
    with AsyncSAM.for_model(model, nn.CrossEntropyLoss(), torch.optim.SGD,
                            deterministic=deterministic, ascent_batches=la,
                            worker=WorkerOptions(max_staleness=tau), **kw) as opt:
        for t in range(len(batches)):
            x, y = next(la) if la is not None else batches[t]
            loss = opt.step(x, y)
            assert loss.dim() == 0 and not loss.requires_grad
            out.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    return out, opt


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize(("tau", "bprime", "lookahead"),
                         [(0, None, False), (1, None, False), (2, 3, False), (1, None, True)])
def test_short_form_is_the_promised_update(deterministic, tau, bprime, lookahead):
    model, batches = make_model(), make_batches(7)
    got, opt = run_short_form(model, batches, deterministic, lookahead, lr=0.3, rho=0.2,
                              tau=tau, ascent_batch_size=bprime)
    want = reference(model, batches, lr=0.3, rho=0.2, tau=tau, bprime=bprime,
                     lookahead=lookahead, deterministic=deterministic)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)
    assert opt.staleness_history == [min(t, tau) for t in range(len(batches))]


def test_step_batches_are_not_the_descent_batch_for_tau_one():
    """Guard on the reference: evaluating the snapshot on B_t+1 instead of B_t (a wrong
    pairing) moves the trajectory by far more than the tolerance."""
    model, batches = make_model(), make_batches(5)
    a = reference(model, batches, lr=0.3, rho=0.2, tau=1)
    b = reference(model, batches, lr=0.3, rho=0.2, tau=1, lookahead=True)
    assert (a[-1] - b[-1]).abs().max() > 1e-6


def test_step_inputs_targets_keywords_and_float32():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with AsyncSAM.for_model(model, nn.functional.cross_entropy, lr=0.5, rho=0.05) as opt:
        first = opt.step(inputs=x, targets=y)
        for _ in range(30):
            last = opt.step(x, y)
    assert first.dtype == torch.float32 and last < first


def test_resume_with_step_batches_matches_uninterrupted():
    model, batches = make_model(), make_batches(8)
    want, _ = run_short_form(model, batches, deterministic=False, lr=0.3, rho=0.2, tau=2)
    m = copy.deepcopy(model)
    kw = dict(lr=0.3, rho=0.2, tau=2, worker=WorkerOptions(max_staleness=2))
    with AsyncSAM.for_model(m, nn.CrossEntropyLoss(), **kw) as opt:
        for x, y in batches[:4]:
            opt.step(x, y)
        state = opt.state_dict()
    with AsyncSAM.for_model(m, nn.CrossEntropyLoss(), **kw) as opt2:
        opt2.load_state_dict(state)
        for x, y in batches[4:]:
            opt2.step(x, y)
    got = torch.cat([p.detach().flatten() for p in m.parameters()])
    torch.testing.assert_close(got, want[-1], rtol=0, atol=1e-12)


# ------------------------------------------------------------------------- the errors


def test_davda54_pattern_says_what_is_missing_and_the_fix():
    model = make_model()
    with pytest.raises(TypeError, match=r"missing its ascent loss") as exc:
        AsyncSAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1)
    assert "AsyncSAM.for_model(model, loss_fn, torch.optim.SGD, rho=0.05, lr=0.1)" in str(
        exc.value)
    assert "opt.step(x, y)" in str(exc.value)


def test_step_without_batch_or_closure_and_batch_without_loss_fn():
    model = make_model()
    with AsyncSAM(model.parameters(), torch.optim.SGD, ascent_loss=lambda m, b: m(b[0]).sum(),
                  model=model, lr=0.1) as opt:
        with pytest.raises(ValueError, match="needs the batch or a closure"):
            opt.step()
        x, y = make_batches(1)[0]
        with pytest.raises(ValueError, match=r"AsyncSAM\.for_model\(model, loss_fn"):
            opt.step(x, y)
    with AsyncSAM.for_model(model, nn.CrossEntropyLoss(), lr=0.1) as opt:
        with pytest.raises(ValueError, match="both inputs and targets"):
            opt.step(x)


def test_optimizer_instance_is_taken_as_class_and_settings():
    model = make_model()
    inst = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.5, weight_decay=1e-3)
    with AsyncSAM.for_model(model, nn.CrossEntropyLoss(), inst, rho=0.1, momentum=0.7) as opt:
        base = opt.base_optimizer
        assert type(base) is torch.optim.SGD and base is not inst
        g = base.param_groups[0]
        assert (g["lr"], g["momentum"], g["weight_decay"]) == (0.3, 0.7, 1e-3)
    sam = SAM(model.parameters(), torch.optim.AdamW(model.parameters(), lr=0.01), rho=0.1)
    assert type(sam.base_optimizer) is torch.optim.AdamW and sam.param_groups[0]["lr"] == 0.01
    sampa = SAMPa(model.parameters(), torch.optim.SGD(model.parameters(), lr=0.2), model,
                  lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]), concurrent=False)
    assert sampa.base_optimizer.param_groups[0]["lr"] == 0.2


def test_optimizer_instance_with_state_or_groups_is_explained():
    model = make_model()
    used = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = make_batches(1)[0]
    nn.CrossEntropyLoss()(model(x), y).backward()
    used.step()
    with pytest.raises(ValueError, match=r"already stepped.*torch\.optim\.SGD"):
        AsyncSAM.for_model(model, nn.CrossEntropyLoss(), used)
    first, second = list(model.children())[0], list(model.children())[2]
    grouped = torch.optim.SGD([{"params": first.parameters(), "lr": 0.5},
                               {"params": second.parameters()}], lr=0.1)
    with pytest.raises(ValueError, match=r"per-group settings \['lr'\]"):
        AsyncSAM.for_model(model, nn.CrossEntropyLoss(), grouped)
    with pytest.raises(ValueError, match="base_optimizer must be a torch.optim.Optimizer class"):
        AsyncSAM.for_model(model, nn.CrossEntropyLoss(), "sgd")
