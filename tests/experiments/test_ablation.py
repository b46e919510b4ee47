"""The ablation's sequential emulation: its reference points are the real optimizers, its
variants change one factor, and its decomposition adds up."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

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
    split_validation,
    train_variant,
)
from asam_theory.experiments.training import load_digits_data
from asam_theory.torch import SAM

RECIPE = Recipe(model="mlp", steps=8, batch_size=16, lr=0.1, rho=0.1, label_noise=0.2)


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _reference(seed: int, sam: bool) -> torch.nn.Module:
    """The same schedule with torch's SGD or our torch SAM, float64, on the same batches."""
    data = load_digits_data(label_noise=RECIPE.label_noise, seed=seed).to("cpu", torch.float64)
    train, _ = split_validation(data, RECIPE.validation_fraction, seed)
    model = build_model(RECIPE, seed).to(torch.float64).train()
    kw = dict(lr=RECIPE.lr, momentum=RECIPE.momentum, weight_decay=RECIPE.weight_decay)
    opt = (SAM(model.parameters(), torch.optim.SGD, rho=RECIPE.rho, **kw) if sam
           else torch.optim.SGD(model.parameters(), **kw))
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(train.y_train), (RECIPE.steps, RECIPE.batch_size), generator=gen)
    for t in range(RECIPE.steps):
        xb, yb = train.x_train[idx[t]], train.y_train[idx[t]]

        def closure(xb=xb, yb=yb):
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            return loss

        opt.zero_grad()
        closure()
        if sam:
            opt.step(closure)
        else:
            opt.step()
    return model


@pytest.mark.parametrize("sam", [False, True])
def test_reference_variants_are_sgd_and_sam(sam):
    """tau = 0, same batch, b' = b is SAM; perturb=False is SGD (float64: equal to 1e-12, the
    two compute the same operations in a different order)."""
    v = SAM_VARIANT if sam else SGD_VARIANT
    ours = train_variant(v, RECIPE, 3, dtype=torch.float64, return_model=True)["model"]
    ref = _reference(3, sam)
    torch.testing.assert_close(_params(ours), _params(ref), atol=1e-12, rtol=0)


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


def test_validation_split_is_disjoint_and_seeded():
    data = load_digits_data(label_noise=0.2, seed=0)
    tr, val = split_validation(data, 0.2, 0)
    assert len(tr.y_train) + len(val.y_train) == len(data.y_train)
    assert len(val.y_train) == round(0.2 * len(data.y_train))
    tr2, _ = split_validation(data, 0.2, 0)
    assert torch.equal(tr.x_train, tr2.x_train)


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
