"""One training path: the loop of ``run_method`` stepping the real optimizers equals the plain
recursion of the ablation (``asam_theory.experiments.ablation``'s docstring) step for step,
and SGD on one recipe gives one number whether HEADLINE, ABLATION or the leaderboard trains
it.

The reference below is the sequential recursion written out with nothing but autograd and
``torch.optim.SGD`` (the ablation's former emulation, with the weights kept aside instead of
subtracting the perturbation again):

    g'_t = ∇L_{A_t}(w_{max(t−τ,0)}),  ε_t = ρ g'_t/(‖g'_t‖ + 1e-12),
    w_{t+1} = SGD(w_t, ∇L_{B_t}(w_t + ε_t)),

B_t the t-th b-sized draw of the generator seeded ``seed``, A_t the first b′ samples of the
t-th b-sized draw of the generator seeded ``seed + 1`` (independent) or of B_t (look-ahead).
Tolerance: float64 throughout; the two compute the same operations in a different order (the
norm of g' as a sum of squares against ``torch.linalg.vector_norm`` of the stacked norms), a
relative difference of ~1e-16 per step that 50 steps of a contracting-on-average SGD
trajectory amplify to well below the 1e-10 the test allows.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

from asam_theory.experiments.ablation import (
    SAM,
    SGD,
    Recipe,
    Variant,
    build_model,
    load_data,
    run_config,
    train_variant,
)
from asam_theory.torch._common import NORM_EPS, bn_frozen


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread, as every driver trains (and fast on a shared machine)."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


RECIPE = Recipe(model="cnn", batchnorm=True, dataset="digits", steps=50, batch_size=32,
                lr=0.05, rho=0.05, label_noise=0.2, width=4)
SEED = 5
REL = 1e-10


def _reference(variant: Variant, recipe: Recipe, seed: int):
    """(per-step training loss, final parameters) of the recursion, float64 (loss: at w for
    SGD and SAM — what their step sees first —, at w + ε for the stale variants)."""
    data = load_data(recipe, seed).to("cpu", torch.float64)
    model = build_model(recipe, seed).to(torch.float64).train()
    names = [n for n, _ in model.named_parameters()]
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay)
    n, b, T = len(data.y_train), recipe.batch_size, recipe.steps
    bp = max(1, round(variant.ascent_fraction * b))
    descent = torch.randint(0, n, (T, b), generator=torch.Generator().manual_seed(seed))
    ascent = torch.randint(0, n, (T, b), generator=torch.Generator().manual_seed(seed + 1))
    history: list[list[torch.Tensor]] = []
    losses = []
    for t in range(T):
        xb, yb = data.x_train[descent[t]], data.y_train[descent[t]]
        if not variant.perturb:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            continue
        history = (history + [[p.detach().clone() for p in params]])[-(variant.tau + 1):]
        stale = history[0]
        aidx = (descent[t] if variant.ascent == "same" else ascent[t])[:bp]
        leaves = [s.clone().requires_grad_(True) for s in stale]
        with bn_frozen(model):
            asc_loss = F.cross_entropy(functional_call(model, dict(zip(names, leaves,
                                                                       strict=True)),
                                                       (data.x_train[aidx],)),
                                       data.y_train[aidx])
            g = torch.autograd.grad(asc_loss, leaves)
        scale = recipe.rho / (torch.sqrt(sum((gi ** 2).sum() for gi in g)) + NORM_EPS)
        w = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, gi in zip(params, g, strict=True):
                p.add_(gi * scale)
        opt.zero_grad()
        with bn_frozen(model):
            loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        with torch.no_grad():
            for p, wi in zip(params, w, strict=True):
                p.copy_(wi)
        opt.step()
        losses.append(float((asc_loss if variant.tau == 0 else loss).detach()))
    return losses, torch.cat([p.detach().flatten() for p in params])


VARIANTS = [SGD, SAM, Variant("asyncsam", tau=1, ascent="independent", ascent_fraction=0.5),
            Variant("lookahead", tau=1, ascent="same", ascent_fraction=0.5)]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_the_loop_equals_the_recursion_step_for_step(variant: Variant) -> None:
    """SGD, SAM, AsyncSAM (independent, τ = 1) and look-ahead (τ = 1) on the digits CNN with
    BatchNorm: torch.optim.SGD, asam_theory.torch.SAM and AsyncSAM(deterministic=True)
    through run_method give the recursion's loss at every step and its final weights."""
    ref_losses, ref_params = _reference(variant, RECIPE, SEED)
    run = train_variant(variant, RECIPE, SEED, dtype=torch.float64, return_model=True)
    got = torch.tensor(run["losses"], dtype=torch.float64)
    want = torch.tensor(ref_losses, dtype=torch.float64)
    assert len(got) == RECIPE.steps
    torch.testing.assert_close(got, want, rtol=REL, atol=0)
    params = torch.cat([p.detach().flatten() for p in run["model"].parameters()])
    torch.testing.assert_close(params, ref_params, rtol=REL, atol=1e-14)


def test_sgd_gives_one_number_on_every_path() -> None:
    """SGD on one recipe: HEADLINE's and ABLATION's path (run_config → train_variant) and the
    leaderboard's (run_task) train the same model on the same data and batches: the same test
    accuracy, bit for bit."""
    from asam_theory.experiments.leaderboard import (
        LeaderboardConfig,
        LeaderboardMethod,
        RunTask,
        run_task,
    )

    recipe = replace(RECIPE, steps=30, width=None, lr=0.1)
    cfg = {"variant": {"name": "sgd", "perturb": False}, "recipe": recipe.__dict__, "seed": 3}
    ablation = run_config(cfg)
    # the sweep the claims call (run_ablation → run_config) gives the same
    from asam_theory.experiments.ablation import run_ablation

    assert run_ablation([SGD], recipe, [3])["per_seed"]["sgd"] == [ablation["test_acc"]]
    lb = LeaderboardConfig(datasets=("digits",), models=(recipe.model_kind,),
                           label_noise=recipe.label_noise, batch_size=recipe.batch_size,
                           width={recipe.model_kind: recipe.model_width},
                           steps={"digits": recipe.steps})
    sgd = LeaderboardMethod("sgd", "SGD", ({"lr": recipe.lr},))
    board = run_task(RunTask(sgd, {"lr": recipe.lr}, "digits", recipe.model_kind, 3, lb,
                             recipe.steps))
    assert ablation["test_acc"] == board.test_acc
    assert ablation["val_acc"] == board.val_acc
    assert ablation["final_loss"] == board.losses[-1]


def test_worker_options_reach_the_threaded_optimizer() -> None:
    """``worker`` is handed to AsyncSAM's WorkerOptions (an invalid field is refused there)."""
    from asam_theory.experiments.training import run_method

    data = load_data(RECIPE, 0)
    with pytest.raises(ValueError, match="timeout"):
        run_method("asyncsam", data, model=build_model(RECIPE, 0), steps=2, batch_size=16,
                   ascent_batch_size=8, worker={"timeout": -1.0})


def test_headline_times_with_the_one_worker_setting(monkeypatch) -> None:
    """HEADLINE's timing hands TIMING_WORKER to every timed run (one line switches the
    backend)."""
    import types

    import asam_theory.claims.headline as hl
    import asam_theory.experiments.training as tr
    from asam_theory.claims import Settings

    seen = []

    def fake(method, data, **kw):
        seen.append(kw.get("worker"))
        return types.SimpleNamespace(time_per_step_s=1e-3)

    monkeypatch.setattr(tr, "run_method", fake)
    monkeypatch.setattr(hl, "TIMING_WORKER", {"timeout": 33.0})
    t = hl._timing(Settings(mode="quick"), replace(RECIPE, steps=2), "asyncsam")
    asyncs = [w for w in seen if w is not None]
    assert asyncs and all(w["timeout"] == 33.0 for w in asyncs)
    # the pilot timed both backends; equal times go to the thread, which then times the part
    assert {w["backend"] for w in asyncs} == {"thread", "process"}
    assert t["backend"] == "thread" and t["backend_choice"]["step_s"] == {
        "thread": 1e-3, "process": 1e-3}
    seen.clear()
    monkeypatch.setattr(hl, "TIMING_WORKER", {"backend": "process"})  # a named backend: no pilot
    t = hl._timing(Settings(mode="quick"), replace(RECIPE, steps=2), "asyncsam")
    assert t["backend"] == "process" and t["backend_choice"] is None
    assert {w["backend"] for w in seen if w is not None} == {"process"}


@pytest.mark.parametrize("method", ["asyncsam", "asyncsam-la"])
def test_the_process_backend_trains_and_counts_as_the_thread_backend(method: str) -> None:
    """Through the one loop, AsyncSAM's worker process (its loss pickled, its gradients counted
    where it runs and reported by the optimizer) gives the thread backend's run: same losses,
    same accuracy, same gradient evaluations and examples (max_staleness = τ, float32)."""
    from asam_theory.experiments.training import run_method

    data = load_data(RECIPE, 0)
    runs = {b: run_method(method, data, model=build_model(RECIPE, 0), seed=0, steps=12,
                          batch_size=16, ascent_batch_size=8,
                          worker={"backend": b, "max_staleness": 1})
            for b in ("thread", "process")}
    thread, process = runs["thread"], runs["process"]
    assert process.losses == thread.losses and process.test_acc == thread.test_acc
    # 12 descents; the ascents of versions 0..10 that steps 0..11 use (step 0 and 1 share
    # version 0), and version 11's if the worker finished it before the optimizer closed
    for run in (thread, process):
        ascents = run.grad_evals - 12
        assert ascents in (11, 12), run.grad_evals
        assert run.grad_examples == 12 * 16 + ascents * 8
