r"""The opening both Young-weight proofs share (``t1_sharp.py``, ``t2_sharp.py``).

One step ``w_{t+1} = w_t - eta d`` with ``d = g + e + xi`` (``g`` the gradient at ``w_t``,
``e`` the perturbation's effect on it, ``xi`` the descent noise): the descent lemma and the
standing assumptions (:func:`assume_step`), then the expanded lemma in expectation and Young's
inequality ``-<g, e> <= (a |g|^2 + |e|^2/a)/2`` with the free weight ``a``
(:func:`expand_with_young`); and the weight's coefficients ``A``, ``B`` (:func:`coefficients`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .core import Given, NormSq, Pos, Prod, Proof, expectation_symbol, gram, inner, normsq, vec
from .symbols import L, b, eta, f0, f1, sigma2, t

#: the gradient at w_t, the perturbation's effect on it, the descent noise
g, e, xi = vec("g"), vec("e"), vec("xi")


def coefficients(a: sp.Symbol) -> tuple[sp.Expr, sp.Expr]:
    """``(A, B)`` of the Young weight ``a`` with ``c = L eta``:
    ``A = 1 - c/2 - (1 - c) a/2``, ``B = (1 - c)/(2a) + c/2`` (``a = 1``: ``A = B = 1/2``)."""
    c = L * eta
    return 1 - c / 2 - (1 - c) * a / 2, (1 - c) / (2 * a) + c / 2


@dataclass(frozen=True)
class StepAssumptions:
    """The steps :func:`assume_step` adds: descent lemma, noise independence, variance, step
    size."""

    dl: object
    ind: object
    var: object
    ss: object


def assume_step(p: Proof) -> StepAssumptions:
    """Descent lemma at ``w_t`` for ``d = g + e + xi``, E[xi | w_t, eps_t] = 0, the minibatch
    variance sigma2/b (each at every step t; ``p`` has its step index declared) and
    ``eta <= 1/L``."""
    d = g + e + xi
    dl = p.assume_le("DL", f1, f0 + inner(g, -eta * d) + L / 2 * normsq(-eta * d),
                     "descent lemma of the L-smooth f at w_t, w_{t+1} = w_t - eta d",
                     forall=(t,))
    ind = p.assume_independent(
        "IND", "xi", {"g", "e"},
        "descent noise has E[xi | w_t, eps_t] = 0; g and e are functions of (w_t, eps_t)",
        forall=(t,))
    var = p.assume_le("VAR", expectation_symbol(gram("xi", "xi")), sigma2 / b,
                      "minibatch variance sigma2/b", forall=(t,))
    ss = p.assume_le("STEP", L * eta, 1, "step-size condition eta <= 1/L")
    return StepAssumptions(dl, ind, var, ss)


def expand_with_young(p: Proof, step: StepAssumptions, a: sp.Symbol) -> tuple[object, object]:
    """The descent lemma expanded and in expectation, and Young's inequality with weight ``a``
    in expectation: returns ``(s2, ey)``."""
    s1 = p.le(f1, sp.expand(step.dl.rhs), [Given(step.dl)], "descent lemma, expanded")
    s2 = p.expect(s1, [step.ind], "total expectation; <g,xi> and <e,xi> have mean 0")
    g2, e2, ge = gram("g", "g"), gram("e", "e"), gram("e", "g")
    young = p.le(-ge, (a * g2 + e2 / a) / 2, [Prod(Pos(1 / (2 * a)), NormSq(a * g + e))],
                 "Young: -<g,e> <= (a|g|^2 + |e|^2/a)/2")
    ey = p.expect(young, [], "expectation of Young's inequality")
    return s2, ey
