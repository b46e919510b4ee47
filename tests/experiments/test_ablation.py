"""The ablation's variants: each is a method of the one training loop, variants that differ
change the trajectory, its decomposition adds up, and per-variant tuning rules out a
collapsing grid point.  (Equality with the plain recursion, step for step: test_training_paths.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asam_theory.experiments.ablation import (
    SAM as SAM_VARIANT,
)
from asam_theory.experiments.ablation import (
    SGD as SGD_VARIANT,
)
from asam_theory.experiments.ablation import (
    Recipe,
    Variant,
    build_model,
    decompose,
    train_variant,
    variant_method,
)

RECIPE = Recipe(model="mlp", steps=8, batch_size=16, lr=0.1, rho=0.1, label_noise=0.2)


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread, as the ablation trains (and fast on a shared machine)."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("variant,method", [
    (SGD_VARIANT, "sgd"), (SAM_VARIANT, "sam"),
    (Variant("a", tau=1, ascent="independent"), "asyncsam-det"),
    (Variant("b", tau=0, ascent="independent"), "asyncsam-det"),
    (Variant("c", tau=1, ascent="same", ascent_fraction=0.5), "asyncsam-la-det"),
    (Variant("d", tau=0, ascent="same", ascent_fraction=0.5), "asyncsam-la-det"),
    (Variant("e", tau=1, ascent="previous"), "asyncsam-prev-det"),
    (Variant("f", tau=0, ascent="previous"), "sam")])
def test_each_variant_is_a_method_of_the_loop(variant, method):
    """SGD and SAM are the real optimizers; every other variant is AsyncSAM's seed-exact
    deterministic run with its ascent batch."""
    assert variant_method(variant) == method


def test_variants_that_differ_change_the_trajectory_and_pairing_is_by_seed():
    la = Variant("la", tau=1, ascent="same")
    ind = Variant("ind", tau=1, ascent="independent")
    a = _params(train_variant(la, RECIPE, 1, dtype=torch.float64, return_model=True)["model"])
    b = _params(train_variant(ind, RECIPE, 1, dtype=torch.float64, return_model=True)["model"])
    c = _params(train_variant(la, RECIPE, 1, dtype=torch.float64, return_model=True)["model"])
    assert not torch.allclose(a, b)
    torch.testing.assert_close(a, c, atol=0, rtol=0)  # deterministic given the seed


def test_lookahead_direction_is_closer_to_sam_than_an_independent_one():
    la = Variant("la", tau=1, ascent="same")
    ind = Variant("ind", tau=0, ascent="independent")
    r = Recipe(model="mlp", steps=20, batch_size=16)
    fa = train_variant(la, r, 0, fidelity_every=2)["fidelity"]
    fi = train_variant(ind, r, 0, fidelity_every=2)["fidelity"]
    assert fa > fi and fa > 0.9


def test_decomposition_adds_up():
    rng = np.random.default_rng(0)
    acc = {k: list(0.9 + 0.01 * rng.standard_normal(6)) for k in
           ("sgd", "sam", "asyncsam", "lookahead_tau1", "independent_tau0")}
    rows = {r["comparison"]: r for r in decompose(acc)}
    gap = rows["gap SAM - AsyncSAM (tau 1, independent)"]["diff_pp"]
    parts = [rows["staleness alone (tau 1, same batch)"],
             rows["batch independence alone (tau 0)"],
             rows["interaction (gap - staleness - independence)"]]
    assert sum(p["diff_pp"] for p in parts) == pytest.approx(gap, abs=1e-9)
    assert sum(p["share_of_gap"] for p in parts) == pytest.approx(1.0, abs=1e-9)
    for r in rows.values():
        assert r["ci_low_pp"] <= r["diff_pp"] <= r["ci_high_pp"]


@pytest.mark.parametrize("kwargs,name", [
    (dict(tau=-1), "tau"), (dict(ascent="future"), "ascent"),
    (dict(ascent_fraction=0.0), "ascent_fraction"), (dict(ascent_fraction=1.5),
                                                     "ascent_fraction")])
def test_bad_variants(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Variant("bad", **kwargs)


def test_full_ablation_studies_and_rho_choice_on_validation():
    """BN-off study, rho re-chosen on the validation split: the chosen rho is the grid's best
    mean validation accuracy (as choose_rho finds it), and the rho study's runs are those
    of the chosen rho (a grid without the recipe's rho forces every re-evaluation)."""
    from asam_theory.experiments.ablation import ASYNCSAM, choose_rho, full_ablation, run_config

    recipe = Recipe(model="cnn", steps=3, batch_size=16)
    variants = [SGD_VARIANT, SAM_VARIANT, ASYNCSAM]
    res = full_ablation(variants, recipe, [0, 1], rho_grid=(0.2, 0.5), rho_seeds=(100,),
                        fidelity_every=0)
    assert set(res) == {"batchnorm", "no_batchnorm", "rho_chosen", "runs", "wall_s"}
    assert res["runs"] == 2 * 3 * 2 + 2 * 2 * 1 + 2 * 2
    assert res["batchnorm"]["recipe"]["batchnorm"] is True
    assert res["no_batchnorm"]["recipe"]["batchnorm"] is False
    # BatchNorm changes the training (else the second study would be a copy of the first)
    assert res["no_batchnorm"]["per_seed"]["sam"] != res["batchnorm"]["per_seed"]["sam"]
    rho = res["rho_chosen"]
    best, scores = choose_rho(SAM_VARIANT, recipe, (0.2, 0.5), (100,))
    assert rho["rho"]["sam"] == best
    assert rho["rho_scores"]["sam"] == {str(k): v for k, v in scores.items()}
    assert set(rho["rho"]) == {"sam", "asyncsam"}  # SGD has no rho
    assert rho["per_seed"]["sgd"] == res["batchnorm"]["per_seed"]["sgd"]
    cfg = {"variant": dict(name="asyncsam", tau=1, ascent="independent"),
           "recipe": {**res["batchnorm"]["recipe"], "rho": rho["rho"]["asyncsam"]},
           "seed": 1, "fidelity_every": 0}
    assert rho["per_seed"]["asyncsam"][1] == run_config(cfg)["test_acc"]


def test_mnist1d_recipe_uses_the_data_layer_and_its_models():
    """MNIST-1D: the data layer's validation split, the 1-D CNN with BatchNorm (or without),
    paired runs through the same emulation."""
    from asam_theory.experiments.ablation import load_data, run_ablation

    r = Recipe(model="cnn", steps=4, batch_size=16, dataset="mnist1d")
    data = load_data(r, 0)
    assert data.x_train.shape[1] == 40 and data.x_val is not None
    bn = [m for m in build_model(r, 0).modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert bn and not [m for m in build_model(Recipe(dataset="mnist1d", batchnorm=False), 0)
                       .modules() if isinstance(m, torch.nn.BatchNorm1d)]
    res = run_ablation([SGD_VARIANT, SAM_VARIANT], r, [0, 1])
    assert res["recipe"]["dataset"] == "mnist1d"
    assert all(0.0 <= a <= 1.0 for a in res["per_seed"]["sam"])
    with pytest.raises(ValueError, match="dataset"):
        Recipe(dataset="cifar")


def test_run_config_trains_the_variant_its_config_names():
    """The sweep task rebuilds each variant from its config faithfully: the look-ahead run
    applies its perturbation (its loss differs from SGD's on the same seed and batches) and
    equals the same variant trained directly."""
    from dataclasses import asdict

    from asam_theory.experiments.ablation import LOOKAHEAD, run_config

    def cfg(v):
        return {"variant": asdict(v), "recipe": asdict(RECIPE), "seed": 2}

    la, sgd = run_config(cfg(LOOKAHEAD)), run_config(cfg(SGD_VARIANT))
    assert la["final_loss"] != sgd["final_loss"]
    prev = torch.get_num_threads()
    torch.set_num_threads(1)  # as run_config trains
    try:
        direct = train_variant(LOOKAHEAD, RECIPE, 2)
    finally:
        torch.set_num_threads(prev)
    assert la["final_loss"] == pytest.approx(direct["final_loss"], rel=1e-6)


@pytest.mark.parametrize("tau", [1, 2])
def test_every_stale_ascent_goes_through_the_seam_at_the_stale_weights(monkeypatch, tau):
    """AsyncSAM's deterministic run evaluates one ascent per step through ablation._loss, at
    exactly the weights the model held τ steps earlier (w_{max(t−τ, 0)}), and every descent at
    the model's own weights."""
    from asam_theory.experiments import ablation

    seen: list[tuple[list[torch.Tensor], list[torch.Tensor] | None]] = []
    original = ablation._loss

    def watch(model, params, x, y):
        now = [p.detach().clone() for p in model.parameters()]
        seen.append((now, None if params is None else [t.detach().clone()
                                                        for t in params.values()]))
        return original(model, params, x, y)

    monkeypatch.setattr(ablation, "_loss", watch)
    v = Variant("la", tau=tau, ascent="same", ascent_fraction=0.5)
    train_variant(v, RECIPE, 0, dtype=torch.float64)
    ascents = [(now, used) for now, used in seen if used is not None]
    assert len(ascents) == RECIPE.steps
    for t, (_, used) in enumerate(ascents):
        stale = ascents[max(t - tau, 0)][0]
        assert all(torch.equal(a, b) for a, b in zip(used, stale, strict=True))
