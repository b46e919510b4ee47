"""T2: stale USAM, ``eps_t = rho * g'_{t-tau}`` (unnormalised), ``g'_{t-tau} =
grad f_{B'}(w_{t-tau})`` on its own ascent batch of size b' (``w_{t-tau} := w_0`` for
``t < tau``), fresh descent batch of size b.

Result, for ``eta <= 1/L`` and ``rho < 1/L``:

``(1/T) sum_{t<T} E|grad f(w_t)|^2 <= [2 Delta (1 + tau eta L^3 rho^2)/(eta T)
  + L^2 rho^2 sigma2/b' + L eta sigma2/b] / (1 - L^2 rho^2)``.

Where staleness enters: the perturbation's size is ``rho |g'_{t-tau}|``, so smoothness gives
``|grad f(w_t+eps_t) - grad f(w_t)|^2 <= L^2 rho^2 |g'_{t-tau}|^2`` and
``E|g'_{t-tau}|^2 <= E|grad f(w_{t-tau})|^2 + sigma2/b'`` (b' enters here).  Summed over t,
the stale squared norms are the fresh ones shifted by tau, plus tau copies of
``|grad f(w_0)|^2 <= 2 L Delta`` (the first tau steps reuse w_0): staleness costs the factor
``1 + tau eta L^3 rho^2`` on the initial-gap term, not a smaller step size.  The shift is
proved with prefix sums ``C(k) = sum_{j<k} G_n(j)`` and telescoping.
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
from .t1_async_sam import per_step_independent

C = sp.Function("C")  # prefix sums of G_n
kappa = sym("kappa", r"\kappa", positive=True)
s_vec, zp, g0 = vec("s"), vec("zeta'"), vec("g_0")
f_y = sym("f(y)", r"f(w_0 - \nabla f(w_0)/L)")

#: final bound of the proof (checked equal to bounds.t2_bound)
FINAL = (
    2 * Delta * (1 + tau * eta * L**3 * rho**2) / (eta * T)
    + L**2 * rho**2 * sigma2 / b_prime
    + L * eta * sigma2 / b
) / (1 - L**2 * rho**2)

STATEMENT = (
    r"Stale USAM $\epsilon_t=\rho g'_{t-\tau}$, $f$ $L$-smooth, $\eta\le1/L$, $\rho<1/L$: "
    r"$\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le\frac{1}{1-L^2\rho^2}\Big["
    r"\frac{2\Delta(1+\tau\eta L^3\rho^2)}{\eta T}+\frac{L^2\rho^2\sigma^2}{b'}"
    r"+\frac{L\eta\sigma^2}{b}\Big]$."
)


def build() -> Proof:
    """T2 proof."""
    p = Proof("T2", "T2: stale USAM", STATEMENT)
    declare(p, (eta, L, rho, sigma2, b, b_prime, T, tau), extra_constants=(kappa,))
    p.assume_domain("KAPPA>0", [kappa], "kappa = 1 - L^2 rho^2 > 0: the condition rho < 1/L")
    E = expectation_symbol
    ps = per_step_independent(p, keep_e=True)
    lip = p.assume_le(
        "LIP'",
        gram("e", "e"),
        L**2 * rho**2 * normsq(s_vec + zp),
        "L-smoothness with eps_t = rho g', g' = s + zeta', s = grad f(w_{t-tau})",
        forall=(t,),
    )
    ind = p.assume_independent(
        "IND'", "zeta'", {"s"}, "ascent noise: E[zeta' | w_{t-tau}] = 0 (own ascent batch)",
        forall=(t,),
    )
    var = p.assume_le("VAR'", E(gram("zeta'", "zeta'")), sigma2 / b_prime, "variance sigma2/b'",
                      forall=(t,))
    kd = p.assume_eq("KAPPA", kappa, 1 - L**2 * rho**2, "kappa = 1 - L^2 rho^2 > 0 (rho < 1/L)")
    elip = p.expect(lip, [ind], "E|e|^2 <= L^2 rho^2 (E|s|^2 + E|zeta'|^2)")
    c = eta / 2 * L**2 * rho**2 * sigma2 / b_prime + L * eta**2 * sigma2 / (2 * b)
    Eg2, Es2 = E(gram("g", "g")), E(gram("s", "s"))
    step = p.le(
        E(f1),
        E(f0) - eta / 2 * Eg2 + eta / 2 * L**2 * rho**2 * Es2 + c,
        [
            Given(ps),
            Prod(Pos(eta / 2), Given(elip)),
            Prod(Pos(eta * L**2 * rho**2 / 2), Given(var)),
        ],
        "per-step inequality with the stale perturbation size",
        name="per-step",
    )
    names = define_per_step(
        p, {E(f0): F(t), E(f1): F(t + 1), Eg2: Gn(t), Es2: Gn(t - tau)},
        "F(t) = E f(w_t), G_n(k) = E|grad f(w_k)|^2 with G_n(k) = G_n(0) for k < 0 (stale "
        "iterate w_0)")
    rel = p.rename(step, names, "the per-step inequality in F and G_n")
    sm = p.sum_over(rel, t, 0, T - 1, "sum over t = 0..T-1")
    telF = p.telescope(F(t + 1) - F(t), sp.Lambda(t, F(t)), t, 0, T - 1)

    # ---- reindexing the stale norms: sum_t G_n(t - tau) <= sum_t G_n(t) + tau G_n(0)
    cdef = p.assume_eq(
        "CDEF", C(k + 1) - C(k), Gn(k), "prefix sums C(k) = sum_{j<k} G_n(j), every integer k",
        forall=(k,),
    )
    c0 = p.assume_eq("C0", C(0), 0, "empty prefix sum")
    cneg = p.assume_eq("CNEG", C(-tau), -tau * Gn(0), "G_n(k) = G_n(0) for k < 0")
    nn = p.le(0, gram("g", "g"), [NormSq(vec("g"))], "a squared norm is nonnegative")
    gnt = p.rename(p.expect(nn, [], "expectation"), [names[2]], "G_n(t) >= 0")
    gnn = p.relabel(gnt, {t: k}, "instance t = k")
    i1 = p.relabel(cdef, {k: t - tau}, "instance k = t - tau")
    e1 = p.sum_over(i1, t, 0, T - 1, "sum over t")
    e2 = p.telescope(C(t + 1 - tau) - C(t - tau), sp.Lambda(t, C(t - tau)), t, 0, T - 1)
    i3 = p.relabel(cdef, {k: t}, "instance k = t")
    e3 = p.sum_over(i3, t, 0, T - 1, "sum over t")
    e4 = p.telescope(C(t + 1) - C(t), sp.Lambda(t, C(t)), t, 0, T - 1)
    e5 = p.sum_over(cdef, k, T - tau, T - 1, "sum over the last tau steps")
    e6 = p.telescope(C(k + 1) - C(k), sp.Lambda(k, C(k)), k, T - tau, T - 1)
    win = p.sum_over(gnn, k, T - tau, T - 1, "window sum of nonnegative terms")
    X = sp.Sum(Gn(t - tau), (t, 0, T - 1))
    Y = sp.Sum(Gn(t), (t, 0, T - 1))
    shift = p.le(
        X,
        Y + tau * Gn(0),
        [
            Given(win),
            EqUse(e1, -1),
            EqUse(e2, 1),
            EqUse(e3, 1),
            EqUse(e4, -1),
            EqUse(e5, -1),
            EqUse(e6, 1),
            EqUse(c0, 1),
            EqUse(cneg, -1),
        ],
        "stale norms are the fresh ones shifted by tau, plus tau copies of G_n(0)",
        name="shift",
    )

    # ---- |grad f(w_0)|^2 <= 2 L Delta
    dl0 = p.assume_le(
        "DL0",
        f_y,
        F(0) + inner(g0, -g0 / L) + L / 2 * normsq(g0 / L),
        "descent lemma at x = w_0, y = w_0 - grad f(w_0)/L",
    )
    low0 = p.assume_le("LOW0", f_star, f_y, "f bounded below")
    g0d = p.assume_eq("G0", Gn(0), gram("g_0", "g_0"), "G_n(0) = |grad f(w_0)|^2 (deterministic)")
    dlt = p.assume_eq("DELTA", Delta, F(0) - f_star, "Delta = f(w_0) - f*")
    gb = p.le(
        Gn(0),
        2 * L * Delta,
        [Prod(Pos(2 * L), Given(dl0)), Prod(Pos(2 * L), Given(low0)), EqUse(g0d)],
        "descent lemma + lower bound",
        using=[dlt],
        name="grad0",
    )

    # ---- assembly
    low = p.assume_le("LOW", f_star, F(T), "f bounded below")
    a = p.le(
        eta / 2 * Y,
        F(0) - F(T) + eta / 2 * L**2 * rho**2 * X + T * c,
        [Given(sm), EqUse(telF, -1)],
        "telescoping",
    )
    bb = p.le(
        eta / 2 * kappa * Y,
        Delta * (1 + eta * L**3 * rho**2 * tau) + T * c,
        [
            Given(a),
            Given(low),
            Prod(Pos(eta * L**2 * rho**2 / 2), Given(shift)),
            Prod(Pos(eta * L**2 * rho**2 * tau / 2), Given(gb)),
        ],
        "reindex the stale norms; |grad f(w_0)|^2 <= 2 L Delta",
        using=[dlt, kd],
    )
    fin = p.le(
        Y / T,
        (2 * Delta * (1 + eta * L**3 * rho**2 * tau) / (eta * T) + 2 * c / eta) / kappa,
        [Prod(Pos(2 / (eta * T * kappa)), Given(bb))],
        "divide by eta T kappa / 2 > 0",
        name="T2-final",
    )
    p.identity(fin.rhs, FINAL, "final bound in closed form", using=[kd])
    p.final["bound"] = FINAL
    return p
