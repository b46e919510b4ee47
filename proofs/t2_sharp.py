r"""T2-sharp: T2 (stale USAM, ``proofs/t2_stale_usam.py``) with the term
``-eta (1 - L eta) <g, e>`` bounded by Young's inequality with a free weight ``a`` instead
of dropped, which keeps part of the descent T2 throws away when ``eta < 1/L`` (where
performance estimation shows T2 loose, ``asam_theory.claims.pep``).

With ``c = L eta``, ``A = 1 - c/2 - (1 - c) a/2``, ``B = (1 - c)/(2a) + c/2`` and
``K = A - B L^2 rho^2 > 0``, for every ``a`` in ``(0, 1]``:

``(1/T) sum_{t<T} E|grad f(w_t)|^2 <= [Delta (1 + 2 tau eta B L^3 rho^2)/(eta T)
  + B L^2 rho^2 sigma2/b' + L eta sigma2/(2b)] / K``.

``a = 1`` (``A = B = 1/2``, ``K = (1 - L^2 rho^2)/2``) is T2 itself.
"""

from __future__ import annotations

import sympy as sp

from .core import (
    EqUse,
    Given,
    NormSq,
    Pos,
    Prod,
    Proof,
    expectation_symbol,
    gram,
    inner,
    normsq,
    sym,
    vec,
)
from .symbols import (
    Delta,
    F,
    Gn,
    L,
    T,
    b,
    b_prime,
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
    tau,
)
from .young import assume_step, coefficients, expand_with_young, g

a = sym("a2", "a", positive=True)
K_SYM = sym("K_sharp", "K", positive=True)
C = sp.Function("C")
s_vec, zp, g0 = vec("s"), vec("zeta'"), vec("g_0")
f_y = sym("f(y)", r"f(w_0 - \nabla f(w_0)/L)")

A_COEF, B_COEF = coefficients(a)
K_COEF = A_COEF - B_COEF * L**2 * rho**2
#: final bound (checked equal to bounds.t2_sharp_bound at a fixed weight)
FINAL = (Delta * (1 + 2 * tau * eta * B_COEF * L**3 * rho**2) / (eta * T)
         + B_COEF * L**2 * rho**2 * sigma2 / b_prime + L * eta * sigma2 / (2 * b)) / K_COEF

STATEMENT = (
    r"Stale USAM $\epsilon_t=\rho g'_{t-\tau}$, $f$ $L$-smooth, $\eta\le1/L$, any "
    r"$a\in(0,1]$ with $K=A-BL^2\rho^2>0$ ($c=L\eta$, $A=1-\frac c2-\frac{(1-c)a}2$, "
    r"$B=\frac{1-c}{2a}+\frac c2$): $\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le"
    r"\frac1K\Big[\frac{\Delta(1+2\tau\eta BL^3\rho^2)}{\eta T}+\frac{BL^2\rho^2\sigma^2}{b'}"
    r"+\frac{L\eta\sigma^2}{2b}\Big]$ ($a=1$: T2)."
)


def build() -> Proof:
    """The T2-sharp proof."""
    p = Proof("T2-sharp", "T2-sharp: stale USAM with the Young weight", STATEMENT)
    declare(p, (eta, L, rho, sigma2, b, b_prime, T, tau, a), extra_constants=(a, K_SYM),
            text="step size, smoothness, radius, variance, batch sizes and the Young weight a "
                 "are positive; T >= 1 steps; staleness tau >= 0 an integer")
    E = expectation_symbol
    step = assume_step(p)
    var, ss = step.var, step.ss
    s2, ey = expand_with_young(p, step, a)
    g2, e2 = gram("g", "g"), gram("e", "e")
    Eg2, Ee2, Es2 = E(g2), E(e2), E(gram("s", "s"))
    ps = p.le(
        E(f1),
        E(f0) - eta * A_COEF * Eg2 + eta * B_COEF * Ee2 + L * eta**2 * sigma2 / (2 * b),
        [Given(s2), Prod(Pos(eta), Given(ss), Given(ey)), Prod(Pos(L * eta**2 / 2), Given(var))],
        "Young on -eta(1 - L eta)<g,e> (weight eta(1 - L eta) >= 0); variance",
    )
    lip = p.assume_le("LIP'", e2, L**2 * rho**2 * normsq(s_vec + zp),
                      "L-smoothness with eps_t = rho g', g' = s + zeta', s = grad f(w_{t-tau})",
                      forall=(t,))
    ind2 = p.assume_independent(
        "IND'", "zeta'", {"s"}, "ascent noise: E[zeta' | w_{t-tau}] = 0 (own ascent batch)",
        forall=(t,))
    var2 = p.assume_le("VAR'", E(gram("zeta'", "zeta'")), sigma2 / b_prime,
                       "variance sigma2/b'", forall=(t,))
    elip = p.expect(lip, [ind2], "E|e|^2 <= L^2 rho^2 (E|s|^2 + E|zeta'|^2)")
    BL = B_COEF * L**2 * rho**2
    c = eta * BL * sigma2 / b_prime + L * eta**2 * sigma2 / (2 * b)
    step = p.le(
        E(f1),
        E(f0) - eta * A_COEF * Eg2 + eta * BL * Es2 + c,
        [Given(ps),
         Prod(Pos(eta / (2 * a)), Given(ss), Given(elip)),
         Prod(Pos(L * eta**2 / 2), Given(elip)),
         Prod(Pos(eta * L**2 * rho**2 / (2 * a)), Given(ss), Given(var2)),
         Prod(Pos(L**3 * rho**2 * eta**2 / 2), Given(var2))],
        "stale perturbation size, weight eta B = eta(1 - L eta)/(2a) + L eta^2/2 >= 0",
        name="per-step",
    )
    names = define_per_step(
        p, {E(f0): F(t), E(f1): F(t + 1), Eg2: Gn(t), Es2: Gn(t - tau)},
        "F(t) = E f(w_t), G_n(k) = E|grad f(w_k)|^2 with G_n(k) = G_n(0) for k < 0 (stale "
        "iterate w_0)")
    rel = p.rename(step, names, "the per-step inequality in F and G_n")
    sm = p.sum_over(rel, t, 0, T - 1, "sum over t = 0..T-1")
    telF = p.telescope(F(t + 1) - F(t), sp.Lambda(t, F(t)), t, 0, T - 1)

    # ---- reindexing the stale norms (as in T2): sum_t G_n(t - tau) <= sum_t G_n(t) + tau G_n(0)
    cdef = p.assume_eq("CDEF", C(k + 1) - C(k), Gn(k),
                       "prefix sums C(k) = sum_{j<k} G_n(j), every integer k", forall=(k,))
    c0 = p.assume_eq("C0", C(0), 0, "empty prefix sum")
    cneg = p.assume_eq("CNEG", C(-tau), -tau * Gn(0), "G_n(k) = G_n(0) for k < 0")
    nn = p.le(0, g2, [NormSq(g)], "a squared norm is nonnegative")
    gnt = p.rename(p.expect(nn, [], "expectation"), [names[2]], "G_n(t) >= 0")
    gnn = p.relabel(gnt, {t: k}, "instance t = k")
    i1 = p.relabel(cdef, {k: t - tau}, "instance k = t - tau")
    e1 = p.sum_over(i1, t, 0, T - 1, "sum over t")
    e2s = p.telescope(C(t + 1 - tau) - C(t - tau), sp.Lambda(t, C(t - tau)), t, 0, T - 1)
    i3 = p.relabel(cdef, {k: t}, "instance k = t")
    e3 = p.sum_over(i3, t, 0, T - 1, "sum over t")
    e4 = p.telescope(C(t + 1) - C(t), sp.Lambda(t, C(t)), t, 0, T - 1)
    e5 = p.sum_over(cdef, k, T - tau, T - 1, "sum over the last tau steps")
    e6 = p.telescope(C(k + 1) - C(k), sp.Lambda(k, C(k)), k, T - tau, T - 1)
    win = p.sum_over(gnn, k, T - tau, T - 1, "window sum of nonnegative terms")
    X = sp.Sum(Gn(t - tau), (t, 0, T - 1))
    Y = sp.Sum(Gn(t), (t, 0, T - 1))
    shift = p.le(
        X, Y + tau * Gn(0),
        [Given(win), EqUse(e1, -1), EqUse(e2s, 1), EqUse(e3, 1), EqUse(e4, -1),
         EqUse(e5, -1), EqUse(e6, 1), EqUse(c0, 1), EqUse(cneg, -1)],
        "stale norms are the fresh ones shifted by tau, plus tau copies of G_n(0)",
        name="shift",
    )

    # ---- |grad f(w_0)|^2 <= 2 L Delta
    dl0 = p.assume_le("DL0", f_y, F(0) + inner(g0, -g0 / L) + L / 2 * normsq(g0 / L),
                      "descent lemma at x = w_0, y = w_0 - grad f(w_0)/L")
    low0 = p.assume_le("LOW0", f_star, f_y, "f bounded below")
    g0d = p.assume_eq("G0", Gn(0), gram("g_0", "g_0"),
                      "G_n(0) = |grad f(w_0)|^2 (deterministic)")
    dlt = p.assume_eq("DELTA", Delta, F(0) - f_star, "Delta = f(w_0) - f*")
    gb = p.le(Gn(0), 2 * L * Delta,
              [Prod(Pos(2 * L), Given(dl0)), Prod(Pos(2 * L), Given(low0)), EqUse(g0d)],
              "descent lemma + lower bound", using=[dlt], name="grad0")

    # ---- assembly
    low = p.assume_le("LOW", f_star, F(T), "f bounded below")
    s_a = p.le(eta * A_COEF * Y, F(0) - F(T) + eta * BL * X + T * c,
               [Given(sm), EqUse(telF, -1)], "telescoping")
    kd = p.assume_eq("KDEF", K_SYM, K_COEF, "name K = A - B L^2 rho^2")
    p.assume_domain("K>0", [K_SYM], "the theorem's condition K = A - B L^2 rho^2 > 0 "
                                    "(a = 1: rho < 1/L)")
    w1 = eta * L**2 * rho**2 / (2 * a)  # eta B L^2 rho^2 = w1 (1 - L eta) + w2
    w2 = L**3 * rho**2 * eta**2 / 2
    bb = p.le(
        eta * K_SYM * Y,
        Delta * (1 + 2 * tau * eta * BL * L) + T * c,
        [Given(s_a), Given(low),
         Prod(Pos(w1), Given(ss), Given(shift)), Prod(Pos(w2), Given(shift)),
         Prod(Pos(w1 * tau), Given(ss), Given(gb)),
         Prod(Pos(w2 * tau), Given(gb))],
        "reindex the stale norms; |grad f(w_0)|^2 <= 2 L Delta",
        using=[dlt, kd],
    )
    fin = p.le(
        Y / T,
        (Delta * (1 + 2 * tau * eta * BL * L) + T * c) / (eta * K_SYM * T),
        [Prod(Pos(1 / (eta * K_SYM * T)), Given(bb))],
        "divide by eta K T > 0",
        name="T2-sharp-final",
    )
    p.identity(fin.rhs, FINAL, "final bound in closed form", using=[kd])
    p.final["bound"] = FINAL
    return p
