r"""Where AsyncSAM loses SAM's gain on real data: an ablation that separates the factors.

AsyncSAM (Jo, Lim & Lee, 2025) differs from SAM (Foret et al., ICLR 2021, arXiv:2010.01412) in
two ways at once: its perturbation is computed at *stale* weights :math:`w_{t-\tau}`, and on an
*independent* batch :math:`B'_t` (of size b′) instead of the descent batch :math:`B_t`.  SAMPa
(Xie, Pethick & Cevher, NeurIPS 2024, arXiv:2410.10683) likewise takes its perturbation from the
previous batch.  This module trains every combination through the one training loop of
:func:`asam_theory.experiments.training.run_method`, stepping the real optimizers of
:mod:`asam_theory.torch`, so that a single factor changes between two variants and everything
else — the initialisation, the descent batches, the independent ascent batches — is shared by
seed (the comparisons pair up):

.. math::
    g'_t=\nabla L_{A_t}(w_{\max(t-\tau,0)}),\quad
    \epsilon_t=\rho\,g'_t/(\|g'_t\|+10^{-12}),\quad
    w_{t+1}=\text{SGD}\big(w_t,\ \nabla L_{B_t}(w_t+\epsilon_t)\big),

with the ascent batch :math:`A_t` one of

* ``"same"`` — the first b′ samples of :math:`B_t` (*look-ahead*: a data loader knows
  :math:`B_t` τ steps early, so a worker can compute this ascent while it stays hidden;
  :class:`~asam_theory.torch.lookahead.LookAhead`);
* ``"independent"`` — the first b′ samples of the t-th b-sized draw of the independent stream
  (seed + 1; AsyncSAM's design; :class:`~asam_theory.experiments.training.IndexSampler`);
* ``"previous"`` — the first b′ samples of :math:`B_{\max(t-\tau,0)}` (the descent batch of
  the stale step, SAMPa's choice for τ = 1; :class:`~asam_theory.torch.lookahead.StepBatches`).

``Variant(tau=0, ascent="same", ascent_fraction=1)`` trains :class:`~asam_theory.torch.SAM`,
``perturb=False`` the base optimizer, every other variant
``AsyncSAM(..., deterministic=True)``: the seed-exact sequential run with exactly τ
(:func:`variant_method`).  Equality of this path with the plain recursion above, step for
step in float64 on the digits CNN with BatchNorm, is a test
(``tests/experiments/test_training_paths.py``).  BatchNorm running statistics never enter
training (train-mode passes normalise with batch statistics) and are recomputed from
unperturbed passes at the final weights before evaluation
(:func:`~asam_theory.experiments.training.recalibrate_bn`),
so no variant gains from a different statistics schedule.

Data and models are those of the leaderboard: :func:`asam_theory.data.load_dataset` (a fixed
test split, a seeded validation split with clean labels, label noise on the training labels)
and :func:`asam_theory.experiments.models.make_model`, so SGD on one :class:`Recipe` gives one
number whether ``HEADLINE``, ``ABLATION`` or the leaderboard trains it.

The *penalty* each variant implements (Andriushchenko & Flammarion, ICML 2022,
arXiv:2206.06232, "m-sharpness"): to first order SAM's descent direction is
:math:`\nabla L_B+\rho\nabla\|\nabla L_B\|` — it penalises the *minibatch* gradient norm, while
an independent ascent batch gives :math:`\nabla L_B+\rho\,\nabla^2L_B\,\nabla L_{A}/\|\nabla
L_A\|`, whose expectation over :math:`A` for large b′ is the gradient of the *full* gradient
norm.  :func:`penalty_gap` measures :math:`\mathbb E_B\|\nabla L_B(w)\|` against
:math:`\|\nabla L(w)\|` at a trained model.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from asam_theory.experiments.selection import Choice, PointRuns, choose
from asam_theory.experiments.steppers import asyncsam_name
from asam_theory.experiments.training import DigitsData, run_method, tensor_data
from asam_theory.stats import paired_interval
from asam_theory.torch._common import bn_frozen
from asam_theory.validation import check_choice, check_int, check_real

if TYPE_CHECKING:
    from asam_theory.sweeps import RunCache

#: the data sets of the ablation, and MNIST-1D's example shape
DATASETS: tuple[str, ...] = ("digits", "mnist1d")
MNIST1D_SHAPE: tuple[int, ...] = (40,)
DIGITS_SHAPE: tuple[int, ...] = (8, 8)
Ascent = Literal["same", "independent", "previous"]
ASCENTS: tuple[str, ...] = ("same", "independent", "previous")


@dataclass(frozen=True)
class Variant:
    """One training recipe of the ablation.

    ``tau`` staleness of the ascent weights; ``ascent`` which batch the ascent uses (module
    docstring); ``ascent_fraction`` b′/b; ``perturb=False`` is the base optimizer (SGD).
    """

    name: str
    tau: int = 0
    ascent: Ascent = "same"
    ascent_fraction: float = 1.0
    perturb: bool = True

    def __post_init__(self) -> None:
        check_int("tau", self.tau, low=0)
        check_choice("ascent", self.ascent, ASCENTS)
        check_real("ascent_fraction", self.ascent_fraction, low=0.0, high=1.0, low_open=True)


#: the reference points and the single-factor variants
SGD = Variant("sgd", perturb=False)
SAM = Variant("sam")
ASYNCSAM = Variant("asyncsam", tau=1, ascent="independent")
#: staleness alone (the look-ahead remedy) and batch independence alone
LOOKAHEAD = Variant("lookahead_tau1", tau=1, ascent="same")
INDEPENDENT = Variant("independent_tau0", tau=0, ascent="independent")
#: the references and the two single factors of the SAM − AsyncSAM gap
CORE: tuple[Variant, ...] = (SGD, SAM, ASYNCSAM, LOOKAHEAD, INDEPENDENT)
STANDARD: tuple[Variant, ...] = (*CORE, Variant("previous_tau1", tau=1, ascent="previous"))
#: staleness alone (look-ahead, same batch) and b′ alone (AsyncSAM's independent batch)
TAU_SWEEP: tuple[Variant, ...] = tuple(Variant(f"lookahead_tau{t}", tau=t, ascent="same")
                                       for t in (2, 4))
BPRIME_SWEEP: tuple[Variant, ...] = tuple(
    Variant(f"asyncsam_bp{k}", tau=1, ascent="independent", ascent_fraction=1 / k)
    for k in (2, 4, 8))


@dataclass(frozen=True)
class Recipe:
    """Everything but the variant: data, model and the base optimizer's hyperparameters.

    ``dataset``: ``"digits"`` (scikit-learn's 8×8 digits) or ``"mnist1d"`` (MNIST-1D,
    Greydanus & Kobak, ICML 2024, arXiv:2011.14439; needs the ``data`` extra), both from
    :func:`asam_theory.data.load_dataset` (a fixed test split, a seeded validation split of
    ``validation_fraction`` with clean labels, symmetric label noise on the training labels);
    the models of :mod:`asam_theory.experiments.models`, the ``-bn`` kind when ``batchnorm``.
    ``width``: the MLP's hidden width or the CNN's first channel count (``None``:
    :attr:`model_width`'s default); ``test_size``: MNIST-1D's test sequences (``None``: the
    published 1,000; digits' test split is fixed)."""

    model: str = "cnn"
    batchnorm: bool = True
    dataset: str = "digits"
    steps: int = 600
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    rho: float = 0.05
    label_noise: float = 0.2
    validation_fraction: float = 0.2
    width: int | None = None
    test_size: int | None = None

    def __post_init__(self) -> None:
        check_choice("model", self.model, ("mlp", "cnn"))
        check_choice("dataset", self.dataset, DATASETS)
        if self.width is not None:
            check_int("width", self.width, low=1)
        if self.test_size is not None:
            check_int("test_size", self.test_size, low=10)
            if self.dataset != "mnist1d":
                raise ValueError(f"test_size applies to mnist1d only, got test_size="
                                 f"{self.test_size} with dataset {self.dataset!r}")
        check_int("steps", self.steps, low=1)
        check_int("batch_size", self.batch_size, low=1)
        check_real("lr", self.lr, low=0.0, low_open=True)
        check_real("rho", self.rho, low=0.0)
        check_real("validation_fraction", self.validation_fraction, low=0.0, high=1.0,
                   low_open=True, high_open=True)

    @property
    def model_kind(self) -> str:
        """The :data:`asam_theory.experiments.models.MODEL_KINDS` name (``cnn-bn``, ...)."""
        return self.model + ("-bn" if self.batchnorm else "")

    @property
    def model_width(self) -> int:
        """``width``, else the default: the digits CNN's 16 channels, the MLP's 128 hidden
        units, MNIST-1D's CNN's 32 channels."""
        if self.width is not None:
            return int(self.width)
        if self.model == "mlp":
            return 128
        return 16 if self.dataset == "digits" else 32

    @property
    def input_shape(self) -> tuple[int, ...]:
        return MNIST1D_SHAPE if self.dataset == "mnist1d" else DIGITS_SHAPE


def load_data(recipe: Recipe, seed: int) -> DigitsData:
    """The recipe's data set for run ``seed`` (:func:`asam_theory.data.load_dataset`; label
    noise on the training labels only; the validation split is the data layer's)."""
    from asam_theory.data import load_dataset

    return tensor_data(load_dataset(recipe.dataset, seed=seed, label_noise=recipe.label_noise,
                                    val_fraction=recipe.validation_fraction,
                                    test_size=recipe.test_size))


def build_model(recipe: Recipe, seed: int) -> nn.Module:
    """The recipe's model initialised from ``seed``: :func:`asam_theory.experiments.models.
    make_model` of :attr:`Recipe.model_kind` at :attr:`Recipe.model_width`."""
    from asam_theory.experiments.models import make_model

    return make_model(recipe.model_kind, recipe.input_shape, 10, width=recipe.model_width,
                      seed=seed)


def variant_method(variant: Variant) -> str:
    """The training loop's method for ``variant``: ``"sgd"`` without perturbation, ``"sam"``
    for τ = 0 on the descent batch at b′ = b (SAM exactly), else AsyncSAM's deterministic
    fixed-τ run with the variant's ascent batch."""
    if not variant.perturb:
        return "sgd"
    if variant.tau == 0 and variant.ascent != "independent" and variant.ascent_fraction == 1.0:
        return "sam"
    return asyncsam_name(variant.ascent, deterministic=True)


def ascent_batch_size(variant: Variant, recipe: Recipe) -> int:
    """b′ of ``variant`` on ``recipe``: round(fraction · b), at least 1."""
    return max(1, int(round(variant.ascent_fraction * recipe.batch_size)))


def _loss(model: nn.Module, params: Mapping[str, torch.Tensor] | None, x: torch.Tensor,
          y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``model`` on ``(x, y)``, at its own weights (``params=None``) or at
    ``params`` (name → tensor): the seam every loss evaluation of a variant's run goes
    through (:class:`_SeamLoss`), so that a check can watch which weights an ascent uses
    (``asam_theory.claims.stale_trace``)."""
    out = model(x) if params is None else functional_call(model, dict(params), (x,))
    return F.cross_entropy(out, y)


class _SeamLoss:
    """The training loss of :func:`train_variant`'s runs, routed through :func:`_loss`:
    descent passes (and SAM's two) on the trained model itself; AsyncSAM's ascents — which its
    direction source evaluates on a replica holding the stale weights — as the trained model
    at the replica's weights (``params``), BatchNorm frozen (the replica's statistics never
    move either).  The same operations as ``cross_entropy(m(x), y)``."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.names = [n for n, _ in model.named_parameters()]

    def __call__(self, m: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        if m is self.model:
            return _loss(self.model, None, x, y)
        with bn_frozen(self.model):
            return _loss(self.model, dict(zip(self.names, m.parameters(), strict=True)), x, y)


def train_variant(variant: Variant, recipe: Recipe, seed: int,
                  data: DigitsData | None = None, fidelity_every: int = 0,
                  dtype: torch.dtype = torch.float32, return_model: bool = False,
                  ) -> dict[str, Any]:
    """Train one (variant, seed) through the training loop and return ``{"test_acc",
    "val_acc", "final_loss", "fidelity", "test_correct", "collapsed", "losses"}``
    (``test_correct``: per test example, classified right — the test-set part of a paired
    difference's variance is computed from it; ``fidelity``: mean cosine of the perturbation
    applied to SAM's fresh direction :math:`\nabla L_{B_t}(w_t)` on the descent batch,
    measured every ``fidelity_every`` steps (the loop's alignment probe); ``None`` if 0 or
    for SGD; ``collapsed``: ``None`` or the reason the run collapsed; ``final_loss``: the last
    step's training loss), plus ``"model"`` (the trained model) when ``return_model``.

    Pairing: the model's initialisation, the descent batches and the independent ascent
    batches depend on ``seed`` only, so two variants run with one seed share them."""
    if data is None:
        data = load_data(recipe, seed)
    model = build_model(recipe, seed)
    method = variant_method(variant)
    res = run_method(method, data, model_kind=recipe.model_kind, model=model, seed=seed,
                     steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr,
                     momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                     rho=recipe.rho, tau=variant.tau,
                     ascent_batch_size=ascent_batch_size(variant, recipe)
                     if method.startswith("asyncsam") else None,
                     dtype=dtype, align_every=fidelity_every if variant.perturb else 0,
                     loss=_SeamLoss(model))
    cos = [c for _, c in res.alignment]
    out = {"test_acc": res.test_acc, "test_correct": res.test_correct,
           "val_acc": res.val_acc, "final_loss": res.losses[-1] if res.losses else math.nan,
           "fidelity": float(np.mean(cos)) if cos else None, "collapsed": res.collapsed,
           "losses": res.losses}
    if return_model:
        out["model"] = model
    return out


def choose_rho(variant: Variant, recipe: Recipe, grid: Sequence[float], seeds: Sequence[int],
               ) -> tuple[float, dict[float, float]]:
    """The ρ of ``grid`` that :func:`asam_theory.experiments.selection.choose` picks over
    ``seeds`` (a ρ with a collapsed seed ruled out, then the best mean *validation* accuracy;
    the test set is never looked at), and the mean validation accuracy per ρ."""
    points = []
    for rho in grid:
        runs = [train_variant(variant, replace(recipe, rho=float(rho)), s) for s in seeds]
        points.append(PointRuns({"rho": float(rho)}, [float(r["val_acc"]) for r in runs],
                                [r["collapsed"] for r in runs]))
    scores = {float(p.hp["rho"]): float(np.mean(p.val_acc)) for p in points}
    return float(choose(points, min_seeds=1).hp["rho"]), scores


#: the comparisons of the decomposition: (name, minuend variant, subtrahend variant)
COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("SAM gain over SGD", "sam", "sgd"),
    ("gap SAM - AsyncSAM (tau 1, independent)", "sam", "asyncsam"),
    ("staleness alone (tau 1, same batch)", "sam", "lookahead_tau1"),
    ("batch independence alone (tau 0)", "sam", "independent_tau0"),
    ("SAMPa-type: previous batch, tau 1", "sam", "previous_tau1"),
    ("look-ahead remedy over AsyncSAM", "lookahead_tau1", "asyncsam"),
)


def decompose(acc: dict[str, Sequence[float]], confidence: float = 0.95) -> list[dict]:
    """Paired differences of test accuracy (percentage points) with Student-t intervals, and
    each factor's share of the SAM − AsyncSAM gap; the interaction is what the two single
    factors leave of the gap.  ``acc`` maps variant names to per-seed accuracies (same seeds,
    same order)."""
    rows: list[dict] = []
    gap = None
    if "sam" in acc and "asyncsam" in acc:
        gap = 100 * float(np.mean(np.subtract(acc["sam"], acc["asyncsam"])))
    comps = list(COMPARISONS)
    comps += [(f"staleness tau {v[len('lookahead_tau'):]} (same batch)", "sam", v)
              for v in acc if v.startswith("lookahead_tau") and v != "lookahead_tau1"]
    comps += [(f"b' = b/{v[len('asyncsam_bp'):]} vs b' = b (AsyncSAM)", "asyncsam", v)
              for v in acc if v.startswith("asyncsam_bp")]
    for name, a, b in comps:
        if a not in acc or b not in acc:
            continue
        lo, hi = paired_interval(acc[a], acc[b], confidence=confidence)
        mean = 100 * float(np.mean(np.subtract(acc[a], acc[b])))
        share = mean / gap if gap and "gap" not in name and a == "sam" and "gain" not in name \
            else None
        rows.append({"comparison": name, "a": a, "b": b, "diff_pp": mean,
                     "ci_low_pp": 100 * lo, "ci_high_pp": 100 * hi, "share_of_gap": share,
                     "n_seeds": len(acc[a])})
    if gap is not None and {"lookahead_tau1", "independent_tau0"} <= set(acc):
        inter = np.subtract(acc["sam"], acc["asyncsam"]) - (
            np.subtract(acc["sam"], acc["lookahead_tau1"])
            + np.subtract(acc["sam"], acc["independent_tau0"]))
        lo, hi = paired_interval(inter, np.zeros_like(inter), confidence=confidence)
        rows.append({"comparison": "interaction (gap - staleness - independence)",
                     "a": "sam", "b": "asyncsam", "diff_pp": 100 * float(inter.mean()),
                     "ci_low_pp": 100 * lo, "ci_high_pp": 100 * hi,
                     "share_of_gap": 100 * float(inter.mean()) / gap if gap else None,
                     "n_seeds": len(inter)})
    return rows


@functools.lru_cache(maxsize=16)
def _cached_data(recipe: Recipe, seed: int) -> DigitsData:
    return load_data(recipe, seed)


def run_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """One training run from a picklable config ``{"variant": asdict(Variant), "recipe":
    asdict(Recipe), "seed", "fidelity_every"}`` (the task of :func:`~asam_theory.sweeps.
    run_sweep`); returns the scalar results of :func:`train_variant` (and ``test_correct``
    when the config asks for ``per_example``).  Runs with one intra-op thread (the
    deterministic runs are sequential; parallelism comes from running configs side by side),
    restoring the caller's setting."""
    variant, recipe = Variant(**config["variant"]), Recipe(**config["recipe"])
    seed = int(config["seed"])
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = train_variant(variant, recipe, seed, _cached_data(_data_key(recipe), seed),
                            int(config.get("fidelity_every", 0)))
    finally:
        torch.set_num_threads(prev)
    keys = ["test_acc", "val_acc", "final_loss", "fidelity", "collapsed"]
    if config.get("per_example"):
        keys.append("test_correct")
    return {k: out[k] for k in keys}


def _data_key(recipe: Recipe) -> Recipe:
    """What the data depend on (the cache key): data set, label noise, validation fraction."""
    return Recipe(dataset=recipe.dataset, label_noise=recipe.label_noise,
                  validation_fraction=recipe.validation_fraction, test_size=recipe.test_size)


def _config(variant: Variant, recipe: Recipe, seed: int, fidelity_every: int,
            per_example: bool = False) -> dict:
    out = {"variant": asdict(variant), "recipe": asdict(recipe), "seed": int(seed),
           "fidelity_every": int(fidelity_every)}
    if per_example:
        out["per_example"] = True
    return out


def _sweep(configs: list[dict], executor: Executor | None, progress: bool,
           desc: str, cache: RunCache | None = None) -> list[dict]:
    from asam_theory.sweeps import run_sweep

    return run_sweep(run_config, configs, executor, progress=progress, desc=desc, cache=cache)


def _collect(variants: Sequence[Variant], recipe: Recipe, seeds: Sequence[int],
             rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The result dict of :func:`run_ablation` from sweep rows (one per variant × seed)."""
    runs: dict[str, dict[int, Mapping]] = {v.name: {} for v in variants}
    for r in rows:
        runs[r["variant"]["name"]][int(r["seed"])] = r
    ordered = {k: [rs[s] for s in seeds] for k, rs in runs.items()}
    acc = {k: [float(r["test_acc"]) for r in rs] for k, rs in ordered.items()}
    collapsed = {k: [r.get("collapsed") for r in rs] for k, rs in ordered.items()}
    fid_seed = {k: [float(r["fidelity"]) for r in rs] for k, rs in ordered.items()
                if rs and rs[0]["fidelity"] is not None}
    fid = {k: float(np.mean(v)) for k, v in fid_seed.items()}
    out = {"recipe": asdict(recipe), "variants": [asdict(v) for v in variants],
           "seeds": list(seeds), "per_seed": acc, "collapsed": collapsed, "fidelity": fid,
           "fidelity_per_seed": fid_seed, "table": decompose(acc)}
    if all("test_correct" in r for rs in ordered.values() for r in rs):
        out["test_correct"] = {k: np.stack([np.asarray(r["test_correct"]) for r in rs])
                               for k, rs in ordered.items()}
    return out


def run_ablation(variants: Sequence[Variant], recipe: Recipe, seeds: Sequence[int],
                 fidelity_every: int = 0, progress: bool = False,
                 executor: Executor | None = None, per_example: bool = False,
                 recipes: Mapping[str, Recipe] | None = None,
                 cache: RunCache | None = None) -> dict[str, Any]:
    """Every variant on every seed (paired), then :func:`decompose`.  Returns ``{"recipe",
    "variants", "seeds", "per_seed": {name: [acc, ...]}, "collapsed": {name: [reason or None,
    ...]}, "fidelity": {name: mean cosine}, "fidelity_per_seed", "table": rows}`` (fidelity
    only for perturbed variants, when ``fidelity_every`` > 0), and with ``per_example``
    ``"test_correct": {name: bool array (seeds, test examples)}``.  ``recipes`` gives a
    variant (by name) its own recipe — its tuned lr and ρ — instead of ``recipe``.  Each run
    uses one intra-op thread (:func:`run_config`); ``executor`` (e.g. a process pool) runs
    them side by side, ``None`` in this process; ``cache`` reuses identical runs made
    before."""
    check_int("fidelity_every", fidelity_every, low=0)
    own = dict(recipes or {})
    configs = [_config(v, own.get(v.name, recipe), s, fidelity_every, per_example)
               for s in seeds for v in variants]
    rows = _sweep(configs, executor, progress, "ablation", cache)
    return _collect(variants, recipe, seeds, rows)


def tune_variants(grids: Mapping[str, tuple[Variant, Sequence[Mapping[str, float]]]],
                  recipe: Recipe, seeds: Sequence[int], executor: Executor | None = None,
                  progress: bool = False, cache: RunCache | None = None) -> dict[str, Choice]:
    """Each variant's hyper-parameters chosen on the validation split: ``grids`` maps a name
    to ``(variant, points)``, each point a dict of :class:`Recipe` fields (``lr``, ``rho``);
    every point runs on every selection seed of ``seeds`` (one sweep) and
    :func:`asam_theory.experiments.selection.choose` picks (a point with a collapsed seed is
    ruled out).  Returns ``{name: Choice}``; a one-point grid is chosen without running."""
    configs, keys = [], []
    for name, (variant, points) in grids.items():
        if len(points) < 2:
            continue
        for k, hp in enumerate(points):
            for s in seeds:
                configs.append(_config(variant, replace(recipe, **hp), s, 0))
                keys.append((name, k))
    rows = _sweep(configs, executor, progress, "selection", cache) if configs else []
    got: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for key, row in zip(keys, rows, strict=True):
        got.setdefault(key, []).append(row)
    out: dict[str, Choice] = {}
    for name, (_variant, points) in grids.items():
        if len(points) < 2:
            out[name] = Choice(dict(points[0]), [])
            continue
        out[name] = choose([PointRuns(dict(hp), [float(r["val_acc"]) for r in got[(name, k)]],
                                      [r["collapsed"] for r in got[(name, k)]])
                            for k, hp in enumerate(points)])
    return out


#: the ρ grid of the per-variant re-choice (the default ρ = 0.05 in the middle)
RHO_GRID: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2)
#: seeds of the ρ selection runs (disjoint from the evaluation seeds 0, 1, ...)
RHO_SEEDS: tuple[int, ...] = (100, 101, 102)


def full_ablation(variants: Sequence[Variant], recipe: Recipe, seeds: Sequence[int], *,
                  batchnorm_off: bool = True, rho_grid: Sequence[float] = RHO_GRID,
                  rho_seeds: Sequence[int] = RHO_SEEDS, fidelity_every: int = 20,
                  executor: Executor | None = None, progress: bool = False,
                  ) -> dict[str, Any]:
    """The whole ablation: three studies, each a :func:`run_ablation` result.

    * ``"batchnorm"`` — ``recipe`` (with its BatchNorm) at its ρ;
    * ``"no_batchnorm"`` — the same with ``Recipe(batchnorm=False)`` (if ``batchnorm_off``);
    * ``"rho_chosen"`` — every perturbed variant at its own ρ, the one of ``rho_grid``
      :func:`asam_theory.experiments.selection.choose` picks over ``rho_seeds`` (a ρ with a
      collapsed selection seed ruled out, then the best mean *validation* accuracy; the test
      set is never looked at), evaluated on ``seeds``; ``"rho"``, ``"rho_scores"`` and
      ``"rho_selection"`` record the choice (empty ``rho_grid``: this study is skipped).

    Phase 1 runs the first two studies and the selection runs in one sweep; phase 2 the
    evaluation runs of the variants whose chosen ρ differs from ``recipe.rho`` (the others
    reuse phase 1).  Returns ``{"batchnorm", "no_batchnorm", "rho_chosen", "runs",
    "wall_s"}``."""
    import time

    start = time.perf_counter()
    check_int("fidelity_every", fidelity_every, low=0)
    recipes = {"batchnorm": recipe}
    if batchnorm_off:
        recipes["no_batchnorm"] = replace(recipe, batchnorm=False)
    perturbed = [v for v in variants if v.perturb]
    grid = [float(r) for r in rho_grid]
    for r in grid:
        check_real("rho_grid", r, low=0.0)
    configs = [_config(v, rec, s, fidelity_every)
               for rec in recipes.values() for s in seeds for v in variants]
    n_main = len(configs)
    configs += [_config(v, replace(recipe, rho=rho), s, 0)
                for v in perturbed for rho in grid for s in rho_seeds]
    rows = _sweep(configs, executor, progress, "ablation 1/2")
    out: dict[str, Any] = {}
    for k, (name, rec) in enumerate(recipes.items()):
        block = rows[k * len(seeds) * len(variants):(k + 1) * len(seeds) * len(variants)]
        out[name] = _collect(variants, rec, seeds, block)
    runs = len(configs)
    if grid and perturbed:
        scores: dict[str, dict[float, float]] = {v.name: {} for v in perturbed}
        points: dict[str, list[PointRuns]] = {}
        for v in perturbed:
            for rho in grid:
                sel = [r for r in rows[n_main:]
                       if r["variant"]["name"] == v.name and r["recipe"]["rho"] == rho]
                scores[v.name][rho] = float(np.mean([float(r["val_acc"]) for r in sel]))
                points.setdefault(v.name, []).append(PointRuns(
                    {"rho": rho}, [float(r["val_acc"]) for r in sel],
                    [r["collapsed"] for r in sel]))
        # the selection rule of every driver: a rho with a collapsed selection seed is ruled
        # out, then the best mean validation accuracy (ties: the smaller rho)
        choices = {name: choose(pts, min_seeds=1) for name, pts in points.items()}
        chosen = {name: float(c.hp["rho"]) for name, c in choices.items()}
        again = [_config(v, replace(recipe, rho=chosen[v.name]), s, fidelity_every)
                 for s in seeds for v in perturbed if chosen[v.name] != recipe.rho]
        rows2 = _sweep(again, executor, progress, "ablation 2/2") if again else []
        runs += len(again)
        base = {(r["variant"]["name"], int(r["seed"])): r
                for r in rows[:len(seeds) * len(variants)]}
        for r in rows2:
            base[(r["variant"]["name"], int(r["seed"]))] = r
        study = _collect(variants, recipe, seeds, list(base.values()))
        study["rho"] = chosen
        study["rho_scores"] = {k: {str(r): a for r, a in v.items()} for k, v in scores.items()}
        study["rho_selection"] = {k: c.rows for k, c in choices.items()}
        study["rho_seeds"] = list(rho_seeds)
        out["rho_chosen"] = study
    out["runs"] = runs
    out["wall_s"] = time.perf_counter() - start
    return out


def penalty_gap(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                n_batches: int = 32, seed: int = 0) -> dict[str, float]:
    r"""The two penalties at the model's weights: :math:`\mathbb E_B\|\nabla L_B(w)\|` (SAM's,
    minibatch, estimated over ``n_batches`` draws of size ``batch_size``) and
    :math:`\|\nabla L(w)\|` (full batch, what an independent large ascent batch follows); and
    their ratio (≥ 1 by Jensen's inequality), and the ``n_batches`` minibatch norms drawn."""
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(seed)
    with bn_frozen(model):
        full = torch.autograd.grad(F.cross_entropy(model(x), y), params)
        full_norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in full)))
        norms = []
        for _ in range(n_batches):
            idx = torch.randint(0, len(y), (batch_size,), generator=gen)
            g = torch.autograd.grad(F.cross_entropy(model(x[idx]), y[idx]), params)
            norms.append(float(torch.sqrt(sum((gi.double() ** 2).sum() for gi in g))))
    mb = float(np.mean(norms))
    return {"minibatch_norm": mb, "full_norm": full_norm,
            "ratio": mb / full_norm if full_norm > 0 else math.inf, "minibatch_norms": norms}
