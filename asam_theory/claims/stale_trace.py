r"""The reference stale recursion: which weights a stale ascent of the ablation really uses.

The ablation's emulation (:func:`asam_theory.experiments.ablation.train_variant`) computes a
stale variant's ascent direction as :math:`g'_t=\nabla L_{A_t}(w_{\max(t-\tau,0)})` from a
history of its own weights.  A run that ignores τ (the newest weights instead of the stale
ones) still trains and still aligns with SAM's fresh direction, so alignment alone cannot show
the staleness.  :class:`AscentTrace` watches one training run from outside and keeps its *own*
history of the weights :math:`w_t` the run holds at each ascent evaluation.  At sampled steps
:math:`t\ge\tau` it computes, on the ascent batch :math:`A_t` the run used,

.. math::
    g_{\text{used}}=\nabla L_{A_t}(\text{weights the run evaluated}),\quad
    g_{\text{stale}}=\nabla L_{A_t}(w_{t-\tau}),\quad g_{\text{fresh}}=\nabla L_{A_t}(w_t),

and records :math:`1-\cos(g_{\text{used}},g_{\text{stale}})` (0 for a correct run, up to
rounding) and :math:`1-\cos(g_{\text{stale}},g_{\text{fresh}})` (how far apart stale and fresh
are on this trajectory: what a τ-ignoring run would miss the first by).

The seam: the emulation evaluates every ascent through the module function
``asam_theory.experiments.ablation._loss(model, params, x, y)`` with ``params`` the weights of
the ascent (descents and the fidelity measure pass ``params=None``).  :func:`trace_run` wraps
that function for one run of :func:`~asam_theory.experiments.ablation.run_config`, in this
process, and checks that it saw exactly one ascent evaluation per step — a loop that no longer
goes through the seam makes the check raise instead of passing unseen.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from unittest import mock

import torch

from asam_theory.validation import check_int


def _cos_gap(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """1 − cos(a, b) of two flattened gradients, in float64."""
    dot = sum(float((x.double() * y.double()).sum()) for x, y in zip(a, b, strict=True))
    na = sum(float((x.double() ** 2).sum()) for x in a) ** 0.5
    nb = sum(float((y.double() ** 2).sum()) for y in b) ** 0.5
    return 1.0 - dot / max(na * nb, 1e-300)


@dataclass
class AscentTrace:
    """Watches the ascent evaluations of one run of a variant with staleness ``tau``; samples
    every ``every``-th step from ``tau`` on.  ``match[i]`` is 1 − cos(g_used, g_stale) and
    ``separation[i]`` 1 − cos(g_stale, g_fresh) at step ``steps[i]``; ``calls`` counts the
    ascent evaluations seen."""

    tau: int
    every: int
    steps: list[int] = field(default_factory=list)
    match: list[float] = field(default_factory=list)
    separation: list[float] = field(default_factory=list)
    calls: int = 0

    def __post_init__(self) -> None:
        check_int("tau", self.tau, low=1)
        check_int("every", self.every, low=1)
        self._history: deque[dict[str, torch.Tensor]] = deque(maxlen=self.tau + 1)

    def wrap(self, loss: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        """``loss`` with every ascent evaluation (``params`` given) observed first."""

        def traced(model, params, x, y):
            if params is not None:
                self._observe(loss, model, params, x, y)
            return loss(model, params, x, y)

        return traced

    def _observe(self, loss, model, params, x, y) -> None:
        names = list(params)
        current = dict(model.named_parameters())
        self._history.append({n: current[n].detach().clone() for n in names})
        t, self.calls = self.calls, self.calls + 1
        if t < self.tau or t % self.every:
            return

        def grad(weights: dict[str, torch.Tensor]) -> list[torch.Tensor]:
            leaves = {n: w.detach().clone().requires_grad_(True) for n, w in weights.items()}
            with torch.enable_grad():
                return list(torch.autograd.grad(loss(model, leaves, x, y),
                                                list(leaves.values())))

        used = grad({n: params[n] for n in names})
        stale = grad(self._history[0])
        fresh = grad(self._history[-1])
        self.steps.append(t)
        self.match.append(_cos_gap(used, stale))
        self.separation.append(_cos_gap(stale, fresh))


def trace_run(variant, recipe, seed: int, every: int) -> AscentTrace:
    """Train ``variant`` (τ ≥ 1) on ``recipe`` and ``seed`` once through
    :func:`~asam_theory.experiments.ablation.run_config`, in this process, with its ascent
    evaluations traced (module docstring).  ``ValueError`` if the run made other than one
    ascent evaluation per step."""
    from asam_theory.experiments import ablation

    trace = AscentTrace(variant.tau, every)
    config: dict[str, Any] = {"variant": asdict(variant), "recipe": asdict(recipe),
                              "seed": int(seed), "fidelity_every": 0}
    with mock.patch.object(ablation, "_loss", trace.wrap(ablation._loss)):
        ablation.run_config(config)
    if trace.calls != recipe.steps:
        raise ValueError(f"the traced run of {variant.name!r} made {trace.calls} ascent "
                         f"evaluations in {recipe.steps} steps (one per step expected): the "
                         f"emulation no longer evaluates its ascent through ablation._loss")
    return trace
