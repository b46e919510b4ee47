r"""Bound mutants: each additive term (or factor) of a theorem's bound halved on its own.

A check that holds a measurement to a bound tests a term of that bound only if some
configuration makes the term matter: halve the term, and a run that sits between the halved
and the true bound must appear.  Each mutant below replaces one bound function of
:mod:`asam_theory.theory.bounds` (patched at the module attribute, which every check looks up
at call time: ``bounds.t1_bound(...)`` in :mod:`asam_theory.claims.theorems`,
:mod:`asam_theory.claims.pep`, :mod:`simulations.theorems`, :mod:`simulations.penalty`) by
the same formula with one term multiplied by 0.5:

* T1 (:func:`~asam_theory.theory.bounds.t1_bound`) — :math:`\frac{2\Delta}{\eta T}`,
  :math:`L^2\rho^2` (same batch: :math:`(1+L\eta)L^2\rho^2`), :math:`\frac{L\eta\sigma^2}{b}`
  (same batch: twice that);
* T1-sharp — :math:`\frac{\Delta}{\eta T}`, the :math:`L^2\rho^2` term, the
  :math:`\frac{L\eta\sigma^2}{2b}` term (the weight re-minimised);
* T2 and T2-sharp — the initial-gap term, the staleness term
  :math:`\tau\eta L^3\rho^2` of the gap factor, the ascent-noise term
  :math:`\frac{L^2\rho^2\sigma^2}{b'}`, the descent-noise term, and the
  :math:`L^2\rho^2` of the denominator :math:`1-L^2\rho^2` (T2-sharp: :math:`BL^2\rho^2` in
  :math:`K`);
* T3 — :math:`(1-\eta\mu)^T\Delta`, :math:`\frac{L^2\rho^2}{2\mu}`,
  :math:`\frac{L\eta\sigma^2}{2\mu b}`;
* T4 — the remainder :math:`\frac{M_H}2\rho^2`, the fidelity bound
  :math:`2\rho L\sin(\theta/2)`, the drift argument :math:`2L\eta\tau G/\|g_t\|` and the cap 2
  of the direction bound, the factor :math:`\rho L` of the drift bound, the angle bound.

Where a term is halved by scaling one argument (Δ enters T1 and T3 only through the gap term,
σ² only through the noise term, ρ² only through the ρ term) the mutant calls the true
function with that argument scaled, so validation and the weight minimisation stay those of
the theorem; the other mutants rewrite the formula with the factor in place.

Two "doubled" mutants (the whole bound times 2) belong to the *tightness* sides of the PEP
checks: a bound looser than the exact worst case by a factor 2 must fail them.

Which checks kill which mutant, at which size, is measured by ``asam-theory power`` and by
``tests/test_mutants_bounds.py``.  The symbolic checks (``T1.proof``, ``PEP-T1.sharp_proof``,
...) compare the bound function with its proof's final expression and kill every mutant of
this family; they are named only where no measurement can (so the table shows which terms
the measurements exercise).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from asam_theory.mutants.base import Mutant, PatchSpec

_B = "asam_theory.theory.bounds"


def _orig(name: str) -> Callable:
    """The true function (read when the mutant is applied, before the patch)."""
    from asam_theory.theory import bounds

    return getattr(bounds, name)


# ------------------------------------------------------------------ argument-scaled terms


def _scaled_args(name: str, **scale: float) -> Callable[[], list[PatchSpec]]:
    r"""Patch ``bounds.<name>`` by the true function with keyword arguments scaled: ``delta``
    by 0.5 halves the initial-gap term, ``sigma2_total`` by 0.5 the noise term, ``rho`` by
    :math:`1/\sqrt2` the :math:`\rho^2` term (T1, T1-sharp, T3, whose other terms do not
    contain these)."""
    import inspect

    def patches() -> list[PatchSpec]:
        true = _orig(name)
        sig = inspect.signature(true)

        def mutant(*args, **kwargs):
            ba = sig.bind(*args, **kwargs)
            ba.apply_defaults()
            for k, s in scale.items():
                ba.arguments[k] = ba.arguments[k] * s
            return true(*ba.args, **ba.kwargs)

        return [(f"{_B}.{name}", mutant)]

    return patches


_HALF_RHO2 = 1 / math.sqrt(2)  # rho -> rho / sqrt(2): rho^2 -> rho^2 / 2


def _doubled(name: str) -> Callable[[], list[PatchSpec]]:
    def patches() -> list[PatchSpec]:
        true = _orig(name)
        return [(f"{_B}.{name}", lambda *a, **k: 2.0 * true(*a, **k))]

    return patches


# ------------------------------------------------------------------------------ T2 formulas


def _t2(gap: float = 1.0, stale: float = 1.0, ascent: float = 1.0, descent: float = 1.0,
        kappa: float = 1.0) -> Callable[[], list[PatchSpec]]:
    """T2 with its terms scaled: ``[gap 2Δ/(ηT) + stale 2Δτη L³ρ²/(ηT) + ascent L²ρ²σ²/b' +
    descent Lησ²/b] / (1 − kappa L²ρ²)``."""

    def patches() -> list[PatchSpec]:
        true = _orig("t2_bound")

        def t2_bound(delta, L, rho, lr, tau, steps, sigma2_total=0.0, batch_size=1.0,
                     ascent_batch_size=1.0):
            true(delta, L, rho, lr, tau, steps, sigma2_total, batch_size, ascent_batch_size)
            r2 = L**2 * rho**2
            num = (gap * 2 * delta / (lr * steps)
                   + stale * 2 * delta * tau * lr * L * r2 / (lr * steps)
                   + ascent * r2 * sigma2_total / ascent_batch_size
                   + descent * L * lr * sigma2_total / batch_size)
            return num / (1 - kappa * r2)

        return [(f"{_B}.t2_bound", t2_bound)]

    return patches


def _t2_sharp(gap: float = 1.0, stale: float = 1.0, ascent: float = 1.0,
              descent: float = 1.0, kappa: float = 1.0) -> Callable[[], list[PatchSpec]]:
    """T2-sharp with its terms scaled (the same structure as
    :func:`asam_theory.theory.bounds.t2_sharp_bound`, min over the weight and with T2)."""

    def patches() -> list[PatchSpec]:
        true = _orig("t2_sharp_bound")

        def t2_sharp_bound(delta, L, rho, lr, tau, steps, sigma2_total=0.0, batch_size=1.0,
                           ascent_batch_size=1.0, weight=None):
            true(delta, L, rho, lr, tau, steps, sigma2_total, batch_size, ascent_batch_size,
                 weight)  # validation, and ValueError where the theorem raises
            c, r2 = min(L * lr, 1.0), L**2 * rho**2

            def value(a: float) -> float:
                A = 1 - c / 2 - (1 - c) * a / 2
                B = (1 - c) / (2 * a) + c / 2
                K = A - kappa * B * r2
                if K <= 0:
                    return math.inf
                num = (gap * delta / (lr * steps)
                       + stale * delta * 2 * tau * lr * B * L * r2 / (lr * steps)
                       + ascent * B * r2 * sigma2_total / ascent_batch_size
                       + descent * L * lr * sigma2_total / (2 * batch_size))
                return num / K

            if weight is not None:
                return value(weight)
            if c >= 1.0:
                return value(1.0)
            from scipy.optimize import minimize_scalar

            lo, hi = 0.0, max(math.sqrt(r2), 1e-300)
            for _ in range(200):  # K(a) = 0 below L rho, as in the theorem's function
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if not math.isfinite(value(mid)) else (lo, mid)
            res = minimize_scalar(value, bounds=(hi, 1.0), method="bounded",
                                  options={"xatol": 1e-10})
            return min(float(res.fun), value(1.0))  # a = 1 is T2 with the same terms

        return [(f"{_B}.t2_sharp_bound", t2_sharp_bound)]

    return patches


# ------------------------------------------------------------------------------ T4 formulas


def _t4_half(name: str) -> Callable[[], list[PatchSpec]]:
    def patches() -> list[PatchSpec]:
        true = _orig(name)
        return [(f"{_B}.{name}", lambda *a, **k: 0.5 * true(*a, **k))]

    return patches


def _direction(drift: float = 1.0, cap: float = 1.0) -> Callable[[], list[PatchSpec]]:
    """``stale_direction_bound`` = min(cap 2, drift 2Lητ G/||g_t||); ``stale_angle_bound``
    and ``stale_fidelity_drift_bound`` call it through the module, so they change too."""

    def patches() -> list[PatchSpec]:
        true = _orig("stale_direction_bound")

        def stale_direction_bound(L, lr, tau, G, grad_norm):
            true(L, lr, tau, G, grad_norm)
            return min(cap * 2.0, drift * 2 * L * lr * tau * G / grad_norm)

        return [(f"{_B}.stale_direction_bound", stale_direction_bound)]

    return patches


# ------------------------------------------------------------------------------ catalogue

_T1 = ("T1.bound_holds", "T1.dominant_terms", "T1.deterministic_floor_with_staleness",
       "PEP-T1.bound_holds")
_T1S = ("PEP-T1.sharpened", "T1.dominant_terms")
_T2 = ("T2.bound_holds", "T2.dominant_terms", "PEP-T2.bound_holds",
       "PEP-T2.tight_at_unit_step")
_T2S = ("PEP-T2.sharpened", "T2.dominant_terms")
_T3 = ("T3.bound_holds", "T3.dominant_terms", "PEP-T3.bound_holds", "PEP-T3.pl_relaxation")
_T4F = ("T4.stale_fidelity",)


def _m(id_: str, breaks: str, patches, checks: tuple[str, ...]) -> Mutant:
    return Mutant(id=id_, family="bound", breaks=breaks, patches=patches, checks=checks)


MUTANTS: tuple[Mutant, ...] = (
    # T1
    _m("t1-gap-half", "T1's initial-gap term 2 Delta/(eta T) halved",
       _scaled_args("t1_bound", delta=0.5), _T1),
    _m("t1-rho-half", "T1's perturbation term L^2 rho^2 ((1 + L eta) L^2 rho^2 same batch) "
       "halved", _scaled_args("t1_bound", rho=_HALF_RHO2), _T1),
    _m("t1-noise-half", "T1's noise term L eta sigma^2/b (2 L eta sigma^2/b same batch) halved",
       _scaled_args("t1_bound", sigma2_total=0.5), _T1),
    # T1-sharp
    _m("t1-sharp-gap-half", "T1-sharp's initial-gap term Delta/(eta T) halved",
       _scaled_args("t1_sharp_bound", delta=0.5), _T1S),
    _m("t1-sharp-rho-half", "T1-sharp's perturbation term B L^2 rho^2 halved",
       _scaled_args("t1_sharp_bound", rho=_HALF_RHO2), _T1S),
    _m("t1-sharp-noise-half", "T1-sharp's noise term L eta sigma^2/(2b) halved",
       _scaled_args("t1_sharp_bound", sigma2_total=0.5), _T1S),
    # T2
    _m("t2-gap-half", "T2's initial-gap term 2 Delta/(eta T) halved (staleness part kept)",
       _t2(gap=0.5), _T2),
    _m("t2-stale-half", "T2's staleness term 2 Delta tau eta L^3 rho^2/(eta T) halved",
       _t2(stale=0.5), _T2),
    _m("t2-ascent-noise-half", "T2's ascent-noise term L^2 rho^2 sigma^2/b' halved",
       _t2(ascent=0.5), _T2),
    _m("t2-descent-noise-half", "T2's descent-noise term L eta sigma^2/b halved",
       _t2(descent=0.5), _T2),
    _m("t2-kappa-half", "the L^2 rho^2 of T2's denominator 1 - L^2 rho^2 halved",
       _t2(kappa=0.5), _T2),
    # T2-sharp
    _m("t2-sharp-gap-half", "T2-sharp's initial-gap term Delta/(eta T) halved",
       _t2_sharp(gap=0.5), _T2S),
    _m("t2-sharp-stale-half", "T2-sharp's staleness term 2 Delta tau eta B L^3 rho^2/(eta T) "
       "halved", _t2_sharp(stale=0.5), _T2S),
    _m("t2-sharp-ascent-noise-half", "T2-sharp's ascent-noise term B L^2 rho^2 sigma^2/b' "
       "halved", _t2_sharp(ascent=0.5), _T2S),
    _m("t2-sharp-descent-noise-half", "T2-sharp's descent-noise term L eta sigma^2/(2b) halved",
       _t2_sharp(descent=0.5), _T2S),
    _m("t2-sharp-kappa-half", "the B L^2 rho^2 of T2-sharp's K = A - B L^2 rho^2 halved",
       _t2_sharp(kappa=0.5), _T2S),
    # T3
    _m("t3-gap-half", "T3's contraction term (1 - eta mu)^T Delta halved",
       _scaled_args("t3_bound", delta=0.5), _T3),
    _m("t3-rho-half", "T3's perturbation term L^2 rho^2/(2 mu) halved",
       _scaled_args("t3_bound", rho=_HALF_RHO2), _T3),
    _m("t3-noise-half", "T3's noise term L eta sigma^2/(2 mu b) halved",
       _scaled_args("t3_bound", sigma2_total=0.5), _T3),
    # T4
    _m("t4-remainder-half", "T4(a)'s remainder bound (M_H/2) rho^2 halved",
       _t4_half("penalty_remainder_bound"), ("T4.remainder",)),
    _m("t4-fidelity-half", "T4(b)'s penalty-term bound 2 rho L sin(theta/2) halved",
       _t4_half("stale_fidelity_bound"), _T4F),
    _m("t4-direction-drift-half", "T4(c)'s drift term 2 L eta tau G/||g_t|| halved",
       _direction(drift=0.5), _T4F),
    _m("t4-direction-cap-half", "T4(c)'s cap 2 on ||u_{t-tau} - u_t|| halved",
       _direction(cap=0.5), _T4F),
    _m("t4-drift-factor-half", "T4's factor rho L of the penalty-loss bound halved",
       _t4_half("stale_fidelity_drift_bound"), _T4F),
    _m("t4-angle-half", "T4(d)'s angle bound halved", _t4_half("stale_angle_bound"), _T4F),
    # looser bounds: the tightness sides
    _m("t3-doubled", "T3's bound doubled (a looser theorem)", _doubled("t3_bound"),
       ("PEP-T3.tightness",)),
    _m("t2-doubled", "T2's bound doubled (a looser theorem)", _doubled("t2_bound"),
       ("PEP-T2.tight_at_unit_step",)),
    _m("t1-sharp-doubled", "T1-sharp's bound doubled (a looser theorem)",
       _doubled("t1_sharp_bound"), ("PEP-T1.sharpened",)),
)
