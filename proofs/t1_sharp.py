r"""T1-sharp: T1 sharpened where performance estimation shows it loose.

Same setting as T1 (``proofs/t1_async_sam.py``: any perturbation with ``|eps_t| <= rho``
independent of the descent noise, f L-smooth, ``f >= f*``, ``eta <= 1/L``).  Two changes to
T1's proof:

* the last step is not paid for with the descent lemma: ``|grad f(w_{T-1})|^2 <=
  2 L (f(w_{T-1}) - f*)`` (descent lemma at ``w - grad f(w)/L`` and ``f >= f*``), so only
  T - 1 steps pay the perturbation -- the factor ``1 - 1/T``;
* the term ``-eta (1 - L eta) <g, e>`` is not dropped but bounded by Young's inequality
  with a free weight ``a`` in ``(0, 1]``, which keeps part of the ``-(eta/2)(1 - L eta)``
  descent that T1 throws away when ``eta < 1/L``.

Result, with ``c = L eta``, ``A = 1 - c/2 - (1 - c) a / 2``, ``B = (1 - c)/(2a) + c/2``:

``(1/T) sum_{t<T} E|grad f(w_t)|^2 <= [Delta/(eta T) + (1 - 1/T)(B L^2 rho^2
  + L eta sigma2/(2 b))] / A``.

``a = 1`` gives ``A = B = 1/2``: ``2 Delta/(eta T) + (1 - 1/T)(L^2 rho^2 + L eta sigma2/b)``,
T1 less ``(L^2 rho^2 + L eta sigma2/b)/T``.  At ``eta = 1/L`` (``A = B = 1/2`` for every a)
the deterministic bound ``2 Delta/(eta T) + (1 - 1/T) L^2 rho^2`` equals the PEP worst case
and is attained by ``f = (L/2) x^2`` (``asam_theory.theory.bounds.t1_sharp_witness``).
"""

from __future__ import annotations

import sympy as sp

from .core import (
    EqUse,
    Given,
    Pos,
    Prod,
    Proof,
    Sq,
    expectation_symbol,
    gram,
    inner,
    normsq,
    sym,
)
from .symbols import (
    Delta,
    F,
    Gn,
    L,
    T,
    b,
    declare,
    define_per_step,
    eta,
    f0,
    f1,
    f_star,
    k,
    rho,
    sigma2,
    t,
)
from .young import assume_step, coefficients, expand_with_young, g

a = sym("a", "a", positive=True)
A_SYM = sym("A_sharp", "A", positive=True)
C = sp.Function("C")  # prefix sums of G_n
f_y = sym("f(y_t)", r"f(w_t - \nabla f(w_t)/L)")

A_COEF, B_COEF = coefficients(a)
#: final bound (checked equal to bounds.t1_sharp_bound at a fixed weight)
FINAL = (Delta / (eta * T) + (1 - 1 / T) * (B_COEF * L**2 * rho**2 + L * eta * sigma2 / (2 * b))
         ) / A_COEF

STATEMENT = (
    r"Any perturbation $\|\epsilon_t\|\le\rho$ independent of the descent batch, $f$ "
    r"$L$-smooth, $f\ge f^*$, $\eta\le1/L$, any $a\in(0,1]$, $c=L\eta$, "
    r"$A=1-\frac c2-\frac{(1-c)a}{2}$, $B=\frac{1-c}{2a}+\frac c2$: "
    r"$\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le\frac1A\Big[\frac{\Delta}{\eta T}"
    r"+\big(1-\frac1T\big)\big(BL^2\rho^2+\frac{L\eta\sigma^2}{2b}\big)\Big]$ "
    r"($a=1$: T1 less $(L^2\rho^2+L\eta\sigma^2/b)/T$)."
)


def build() -> Proof:
    """The T1-sharp proof."""
    p = Proof("T1-sharp", "T1-sharp: the last step and the Young weight", STATEMENT)
    declare(p, (eta, L, rho, sigma2, b, T, a), extra_constants=(a, A_SYM),
            text="step size, smoothness, radius, variance, batch size and the Young weight a "
                 "are positive; T >= 1 steps")
    E = expectation_symbol
    step = assume_step(p)
    var, ss = step.var, step.ss
    aw = p.assume_le("A1", a, 1, "Young weight a in (0, 1]")
    lip = p.assume_le("LIP", gram("e", "e"), L**2 * rho**2,
                      "L-smoothness with |eps_t| <= rho: |e| <= L rho", forall=(t,))
    s2, ey = expand_with_young(p, step, a)
    g2 = gram("g", "g")
    elip = p.expect(lip, [], "expectation of the smoothness bound")
    Eg2 = E(g2)
    C1 = eta * B_COEF * L**2 * rho**2 + L * eta**2 * sigma2 / (2 * b)
    ps = p.le(
        E(f1),
        E(f0) - eta * A_COEF * Eg2 + C1,
        [Given(s2), Prod(Pos(eta), Given(ss), Given(ey)),
         Prod(Pos(eta / (2 * a)), Given(ss), Given(elip)),
         Prod(Pos(L * eta**2 / 2), Given(elip)), Prod(Pos(L * eta**2 / 2), Given(var))],
        "keep -eta(1 - L eta/2)|g|^2; Young on -eta(1 - L eta)<g,e> (weight eta(1 - L eta) "
        ">= 0); |e|^2 <= L^2 rho^2 with weight eta B >= 0; variance",
        name="per-step",
    )
    names = define_per_step(p, {E(f0): F(t), E(f1): F(t + 1), Eg2: Gn(t)},
                            "F(t) = E f(w_t), G_n(t) = E|grad f(w_t)|^2 (w_{t+1} follows w_t)")
    rel = p.rename(ps, names, "the per-step inequality in F and G_n")
    sm = p.sum_over(rel, t, 0, T - 2, "sum over the first T - 1 steps t = 0..T-2")
    tel = p.telescope(F(t + 1) - F(t), sp.Lambda(t, F(t)), t, 0, T - 2)
    first = p.le(
        eta * A_COEF * sp.Sum(Gn(t), (t, 0, T - 2)),
        F(0) - F(T - 1) + (T - 1) * C1,
        [Given(sm), EqUse(tel, -1)],
        "telescoping over the first T - 1 steps",
    )

    # ---- the last gradient: |g|^2 <= 2 L (f(w) - f*) at every w = w_t, then at t = T - 1
    dl_last = p.assume_le("DL-last", f_y, f0 + inner(g, -g / L) + L / 2 * normsq(g / L),
                          "descent lemma at w = w_t and y = w - grad f(w)/L", forall=(t,))
    low_y = p.assume_le("LOW-y", f_star, f_y, "f bounded below by f*", forall=(t,))
    pl_last = p.le(g2, 2 * L * (f0 - f_star),
                   [Prod(Pos(2 * L), Given(dl_last)), Prod(Pos(2 * L), Given(low_y))],
                   "|grad f(w)|^2 <= 2 L (f(w) - f*)")
    epl = p.expect(pl_last, [], "expectation")
    glast = p.rename(epl, [names[2], names[0]], "G_n(t) <= 2 L (F(t) - f*), every t")
    last = p.relabel(glast, {t: T - 1}, "at t = T - 1")
    low = p.assume_le("LOW", f_star, F(T - 1), "f bounded below by f*")
    wt = p.le(2 * L * eta * A_COEF, 1,
              [Sq(1 - L * eta), Prod(Pos(L * eta * a), Given(ss))],
              "2 L eta A <= 1: 1 - 2 L eta A = (1 - L eta)^2 + L eta (1 - L eta) a")
    last_w = p.le(
        eta * A_COEF * Gn(T - 1),
        F(T - 1) - f_star,
        [Prod(Pos(eta / 2), Given(last)), Prod(Pos(eta / 2), Given(ss), Given(aw), Given(last)),
         Prod(Given(wt), Given(low))],
        "eta A = eta/2 + eta(1 - L eta)(1 - a)/2 >= 0 and 2 L eta A <= 1",
    )

    # ---- sum_{t<T} G_n = sum_{t<T-1} G_n + G_n(T-1), by prefix sums
    cdef = p.assume_eq("CDEF", C(k + 1) - C(k), Gn(k),
                       "prefix sums C(k) = sum_{j<k} G_n(j), every integer k", forall=(k,))
    i1 = p.relabel(cdef, {k: t}, "instance k = t")
    full = p.sum_over(i1, t, 0, T - 1, "sum over t = 0..T-1")
    tfull = p.telescope(C(t + 1) - C(t), sp.Lambda(t, C(t)), t, 0, T - 1)
    part = p.sum_over(i1, t, 0, T - 2, "sum over t = 0..T-2")
    tpart = p.telescope(C(t + 1) - C(t), sp.Lambda(t, C(t)), t, 0, T - 2)
    lastc = p.relabel(cdef, {k: T - 1}, "instance k = T - 1")
    dlt = p.assume_eq("DELTA", Delta, F(0) - f_star, "Delta = f(w_0) - f*")
    Y = sp.Sum(Gn(t), (t, 0, T - 1))
    etaA = eta * A_COEF
    tot = p.le(
        etaA * Y,
        Delta + (T - 1) * C1,
        [Given(first), Given(last_w), EqUse(dlt, -1),
         EqUse(full, -etaA), EqUse(part, etaA), EqUse(tfull, etaA), EqUse(tpart, -etaA),
         EqUse(lastc, etaA)],
        "first T - 1 steps + the weighted last gradient; sum_{t<T} = sum_{t<T-1} + G_n(T-1)",
    )
    ahalf = p.le(sp.Rational(1, 2), A_COEF, [Prod(Pos(sp.Rational(1, 2)), Given(ss), Given(aw))],
                 "A - 1/2 = (1 - L eta)(1 - a)/2 >= 0")
    adef = p.assume_eq("ADEF", A_SYM, A_COEF, "name A = 1 - L eta/2 - (1 - L eta) a/2")
    p.positive(A_SYM, [Given(ahalf)], "A = (A - 1/2) + 1/2 >= 1/2 > 0", using=[adef],
               name="A-pos")
    fin = p.le(
        Y / T,
        (Delta + (T - 1) * C1) / (eta * A_SYM * T),
        [Prod(Pos(1 / (eta * A_SYM * T)), Given(tot))],
        "divide by eta A T > 0",
        name="T1-sharp-final",
        using=[adef],
    )
    p.identity(fin.rhs, FINAL, "final bound in closed form", using=[adef])
    p.final["bound"] = FINAL
    return p
