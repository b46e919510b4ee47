r"""Mutants of the real-data claims (``HEADLINE``, ``ABLATION``): families ``timing`` and
``real_data``.

* ``asyncsam-double-work`` (timing) — every threaded AsyncSAM step computes its descent
  gradient twice (the first result is discarded by the closure's own ``zero_grad``), so the
  trained weights are unchanged and only the time per step doubles: HEADLINE's time part,
  timed on the same model with an idle second core, must fail (ratio ≈ 2 against 1.10).
* ``lookahead-reads-independent-batch`` — the look-ahead ascent (τ ≥ 1, "same" batch) reads an
  independent batch instead: the alignment to SAM's fresh direction drops from ≈ 1 to the
  independent batch's ≈ 0.3, so ABLATION.direction's staleness bound must fail.
* ``independent-reads-descent-batch`` — the "independent" ascent reads the descent batch: its
  loss of alignment vanishes, so ABLATION.direction's independence bound must fail.
* ``lookahead-without-perturbation`` — the look-ahead variant trains as plain SGD: it keeps
  none of SAM's gain, so ABLATION.lookahead_recovers_sam must fail (where SAM beats SGD) and
  none of SAM's penalty reduction, so ABLATION.penalty must fail.
* ``lookahead-radius-100x`` — the look-ahead variant trains with 100 ρ (ρ read as a
  percentage: 0.05 taken as 5; at 20 ρ, on the standardised digits of the one training path,
  the look-ahead lost only 6 pp, undecidable at two seeds): its accuracy falls far below SGD's,
  so ABLATION.lookahead_recovers_sam must fail whatever SAM does (its "look-ahead below SGD by
  more than the margin" side) — the check's one side that needs no precondition, hence a kill
  even where SAM's gain is too small to decide;
* ``stale-ignores-tau`` — the stale ascent is taken at the newest weights the sequential
  direction source holds (``stale = history[-1]``): every "stale" ascent is at :math:`w_t`,
  so the look-ahead trains as SAM and AsyncSAM as the independent-batch τ = 0 variant.  Their
  alignment to SAM's fresh direction only improves, so ABLATION.direction's cosine bounds pass
  it; its reference stale recursion must fail it (the direction used is ∇L_A(w_t), not
  ∇L_A(w_{t−1}): 1 − cos ≈ 1e-2 against the 1e-6 tolerance).
* ``lookahead-ascent-descends`` — the look-ahead variant perturbs downhill,
  :math:`\epsilon=-\rho\,g'/\|g'\|` (a sign slip in the stale path's radius): its ascent
  direction and hence every cosine are unchanged, so ABLATION.direction cannot see it; the
  look-ahead then seeks sharper regions and ends with a minibatch gradient-norm penalty above
  SGD's, so ABLATION.penalty must fail (the look-ahead keeps none of SAM's reduction).

The emulation's variants are patched where they are rebuilt from a run's config
(``asam_theory.experiments.ablation.Variant``, looked up by ``run_config`` at call time), so
the constants the claims import keep their names and only the training changes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from asam_theory.mutants.base import Mutant


def _double_work() -> list[tuple[Any, Any]]:
    import torch

    from asam_theory.torch.asyncsam import AsyncSAM

    original = AsyncSAM.step

    def step(self: Any, closure: Any = None) -> Any:
        if closure is not None:
            with torch.enable_grad():
                closure()  # extra descent gradient, zeroed again by the real closure
        return original(self, closure)

    return [((AsyncSAM, "step"), step)]


def _variant_patch(change) -> list[tuple[Any, Any]]:
    from asam_theory.experiments import ablation

    cls = ablation.Variant

    def make(*args: Any, **kwargs: Any) -> Any:
        return change(cls(*args, **kwargs))

    return [("asam_theory.experiments.ablation.Variant", make)]


def _la_independent(v: Any) -> Any:
    return replace(v, ascent="independent") if v.ascent == "same" and v.tau >= 1 else v


def _independent_same(v: Any) -> Any:
    return replace(v, ascent="same") if v.ascent == "independent" else v


def _la_no_perturbation(v: Any) -> Any:
    return replace(v, perturb=False) if v.ascent == "same" and v.tau >= 1 else v


def _radius_factor(factor: float, stale_only: bool) -> list[tuple[Any, Any]]:
    """The look-ahead variant (``stale_only``: every stale variant, AsyncSAM's too) trains
    with ``factor`` times the recipe's radius (a units slip in the stale path alone): patched
    in ``train_variant``, which ``run_config`` calls."""
    from asam_theory.experiments import ablation

    original = ablation.train_variant

    def train(variant: Any, recipe: Any, *args: Any, **kw: Any) -> Any:
        if variant.perturb and variant.tau >= 1 and (stale_only or variant.ascent == "same"):
            recipe = replace(recipe, rho=factor * recipe.rho)
        return original(variant, recipe, *args, **kw)

    return [("asam_theory.experiments.ablation.train_variant", train)]


def _stale_ignores_tau() -> list[tuple[Any, Any]]:
    """The sequential direction source (``AsyncSAM(deterministic=True)``, through which every
    stale variant of the ablation trains) evaluates its ascent at the newest iterate it holds
    instead of w_{t−τ}; the batch, the recorded version and everything else are unchanged."""
    from asam_theory.torch._directions import SequentialDirections

    original = SequentialDirections.acquire

    def acquire(self: Any, step: int) -> Any:
        hist = self._history
        s = max(step - self._tau, 0)
        kept = hist.get(s)
        hist[s] = hist[max(hist)]  # stale = history[-1]
        try:
            return original(self, step)
        finally:
            hist[s] = kept

    return [((SequentialDirections, "acquire"), acquire)]


def _lookahead_descends() -> list[tuple[Any, Any]]:
    """The look-ahead variant's perturbation is applied with the opposite sign,
    :math:`w_t-\\rho u` (a sign slip in the stale path's radius, past the constructor's check
    of ρ ≥ 0): patched in :meth:`AsyncSAM._perturb` for an optimizer whose ascent batches come
    from a :class:`~asam_theory.torch.lookahead.LookAhead` (the look-ahead variant only)."""
    from asam_theory.torch.asyncsam import AsyncSAM

    original = AsyncSAM._perturb

    def perturb(self: Any, live: Any, u: Any) -> None:
        if self.lookahead is not None:
            u = [-d for d in u]
        return original(self, live, u)

    return [((AsyncSAM, "_perturb"), perturb)]


MUTANTS: tuple[Mutant, ...] = (
    Mutant("asyncsam-double-work", "timing",
           "every threaded AsyncSAM step computes its descent gradient twice (same weights, "
           "twice the work)", _double_work,
           # HEADLINE's time part would see it on an idle machine, but power runs do not judge
           # time (Settings.judge_time); the step's contract (one descent pass per step) is
           # checked whatever the load
           tests=("tests/torch/test_torch_asyncsam.py::test_one_descent_pass_per_step",)),
    Mutant("lookahead-reads-independent-batch", "real_data",
           "the look-ahead ascent reads an independent batch instead of the descent batch",
           lambda: _variant_patch(_la_independent), checks=("ABLATION.direction",)),
    Mutant("independent-reads-descent-batch", "real_data",
           "the independent ascent reads the descent batch",
           lambda: _variant_patch(_independent_same), checks=("ABLATION.direction",)),
    Mutant("lookahead-without-perturbation", "real_data",
           "the look-ahead variant trains without any perturbation (plain SGD)",
           lambda: _variant_patch(_la_no_perturbation),
           checks=("ABLATION.lookahead_recovers_sam", "ABLATION.penalty"),
           tests=("tests/experiments/test_ablation.py::"
                  "test_run_config_trains_the_variant_its_config_names",)),
    Mutant("lookahead-radius-100x", "real_data",
           "the look-ahead variant trains with 100 times the radius (rho read as a percentage)",
           lambda: _radius_factor(100.0, False), checks=("ABLATION.lookahead_recovers_sam",)),
    Mutant("stale-radius-20x", "real_data",
           "every stale variant (AsyncSAM, look-ahead) trains with 20 times the radius",
           lambda: _radius_factor(20.0, True), checks=("HEADLINE.asyncsam", "HEADLINE.lookahead",
                                              "ABLATION.lookahead_recovers_sam")),
    Mutant("stale-ignores-tau", "real_data",
           "the sequential stale ascent uses the newest weights (stale = history[-1]): tau is "
           "ignored", _stale_ignores_tau, checks=("ABLATION.direction",)),
    Mutant("lookahead-ascent-descends", "real_data",
           "the look-ahead variant perturbs downhill (epsilon = -rho g'/||g'||)",
           _lookahead_descends, checks=("ABLATION.penalty",)),
)
