"""T1: normalised AsyncSAM on an L-smooth nonconvex objective (any staleness tau >= 0).

Update: ``w_{t+1} = w_t - eta * grad f_B(w_t + eps_t)`` with ``|eps_t| = rho`` (eps_t =
rho * u_{t-tau}); descent minibatch of size b, unbiased, ``E|grad f_B(x) - grad f(x)|^2 <=
sigma2/b`` for every x.

Two proofs:

* ``build()`` -- perturbation independent of the descent noise (tau >= 1 with any ascent
  batch, or tau >= 0 with its own ascent batch b'): ``E[grad f_B(w+eps) | w, eps] =
  grad f(w+eps)``.  Result, for ``eta <= 1/L``:
  ``(1/T) sum E|grad f(w_t)|^2 <= 2 Delta/(eta T) + L^2 rho^2 + L eta sigma2 / b``.
* ``build_same_batch()`` -- tau = 0 SAM, the perturbation computed on the descent batch
  (so it depends on the descent noise); needs every minibatch loss L-smooth.  Result, for
  ``eta <= 1/L``: ``2 Delta/(eta T) + (1 + L eta) L^2 rho^2 + 2 L eta sigma2 / b``.

The ascent batch size b' does not enter: only ``|eps_t| = rho`` is used.
"""

from __future__ import annotations

import sympy as sp

from .core import (
    EqUse,
    Fact,
    Given,
    NormSq,
    Pos,
    Prod,
    Proof,
    expectation_symbol,
    gram,
    inner,
    normsq,
    vec,
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
    rho,
    sigma2,
    t,
)

g, e, xi, zeta = vec("g"), vec("e"), vec("xi"), vec("zeta")

#: final bound of the independent-perturbation proof (checked equal to bounds.t1_bound)
FINAL_INDEPENDENT = 2 * Delta / (eta * T) + L**2 * rho**2 + L * eta * sigma2 / b
#: final bound of the same-batch (tau = 0 SAM) proof
FINAL_SAME_BATCH = 2 * Delta / (eta * T) + (1 + L * eta) * L**2 * rho**2 + 2 * L * eta * sigma2 / b


def per_step_independent(p: Proof, keep_e: bool = False) -> Fact:
    """Add the per-step steps of T1 (independent perturbation) to ``p``; return the fact
    ``E f(w_{t+1}) <= E f(w_t) - (eta/2) E|g|^2 + (eta/2) X + L eta^2 sigma2/(2b)`` with
    ``X = L^2 rho^2`` (or ``X = E|e|^2`` when ``keep_e``).  The premises hold at every step t."""
    declare(p)
    d = g + e + xi  # descent direction grad f_B(w_t + eps_t) = g + e + xi
    dl = p.assume_le(
        "DL",
        f1,
        f0 + inner(g, -eta * d) + L / 2 * normsq(-eta * d),
        "descent lemma of the L-smooth f at x = w_t, y = w_{t+1} = w_t - eta d",
        forall=(t,),
    )
    ind = p.assume_independent(
        "IND",
        "xi",
        {"g", "e"},
        "descent noise xi = grad f_B(w+eps) - grad f(w+eps) has E[xi | w_t, eps_t] = 0; "
        "g = grad f(w_t) and e = grad f(w_t+eps_t) - grad f(w_t) are functions of (w_t, eps_t) "
        "-- this is where independence of the perturbation from the descent batch is used",
        forall=(t,),
    )
    var = p.assume_le(
        "VAR", expectation_symbol(gram("xi", "xi")), sigma2 / b, "minibatch variance sigma2/b",
        forall=(t,),
    )
    ss = p.assume_le("STEP", L * eta, 1, "step-size condition eta <= 1/L")
    s1 = p.le(f1, sp.expand(dl.rhs), [Given(dl)], "descent lemma, expanded in the Gram algebra")
    s2 = p.expect(s1, [ind], "total expectation; <g,xi> and <e,xi> have mean 0")
    E = expectation_symbol
    Ege = E(gram("g", "e"))
    Eg2, Ee2 = E(gram("g", "g")), E(gram("e", "e"))
    Egpe = Eg2 + 2 * Ege + Ee2  # E|g+e|^2
    rhs3 = E(f0) - eta / 2 * Eg2 + eta / 2 * Ee2 - eta / 2 * (1 - L * eta) * Egpe
    rhs3 += L * eta**2 * sigma2 / (2 * b)
    s3 = p.le(
        E(f1),
        rhs3,
        [Given(s2), Prod(Pos(L * eta**2 / 2), Given(var))],
        "variance bound; -<g,e> = (|g|^2+|e|^2-|g+e|^2)/2",
    )
    nn = p.le(0, normsq(g + e), [NormSq(g + e)], "a squared norm is nonnegative")
    enn = p.expect(nn, [], "expectation of a nonnegative variable")
    cert = [Given(s3), Prod(Pos(eta / 2), Given(ss), Given(enn))]
    tail = Ee2
    if not keep_e:
        lip = p.assume_le(
            "LIP", gram("e", "e"), L**2 * rho**2, "L-smoothness with |eps_t| = rho: |e| <= L rho",
            forall=(t,),
        )
        elip = p.expect(lip, [], "expectation of the smoothness bound")
        cert.append(Prod(Pos(eta / 2), Given(elip)))
        tail = L**2 * rho**2
    return p.le(
        E(f1),
        E(f0) - eta / 2 * Eg2 + eta / 2 * tail + L * eta**2 * sigma2 / (2 * b),
        cert,
        "drop -(eta/2)(1-L eta)E|g+e|^2 <= 0 (step-size condition)",
        name="per-step",
    )


def telescope_average(p: Proof, per_step: Fact, c: sp.Expr) -> Fact:
    """From ``E f(w_{t+1}) <= E f(w_t) - (eta/2) E|g_t|^2 + c`` (every t) derive
    ``(1/T) sum_{t<T} E|g_t|^2 <= 2 Delta/(eta T) + 2c/eta``."""
    E = expectation_symbol
    names = define_per_step(p, {E(f0): F(t), E(f1): F(t + 1), E(gram("g", "g")): Gn(t)},
                            "F(t) = E f(w_t), G_n(t) = E|grad f(w_t)|^2 (w_{t+1} follows w_t)")
    rel = p.rename(per_step, names, "the per-step inequality in F and G_n")
    low = p.assume_le("LOW", f_star, F(T), "f bounded below by f*")
    dlt = p.assume_eq("DELTA", Delta, F(0) - f_star, "Delta = f(w_0) - f*")
    sm = p.sum_over(rel, t, 0, T - 1, "sum over t = 0..T-1")
    tel = p.telescope(F(t + 1) - F(t), sp.Lambda(t, F(t)), t, 0, T - 1)
    ssum = sp.Sum(Gn(t), (t, 0, T - 1))
    s8 = p.le(eta / 2 * ssum, F(0) - F(T) + T * c, [Given(sm), EqUse(tel, -1)], "telescoping")
    return p.le(
        ssum / T,
        2 * Delta / (eta * T) + 2 * c / eta,
        [
            Prod(Pos(2 / (eta * T)), Given(s8)),
            Prod(Pos(2 / (eta * T)), Given(low)),
            EqUse(dlt, -2 / (eta * T)),
        ],
        "divide by eta T / 2; F(T) >= f*",
        name="T1-final",
    )


STATEMENT_INDEPENDENT = (
    r"Normalised AsyncSAM, any $\tau\ge0$, perturbation independent of the descent batch, "
    r"$f$ $L$-smooth, $f\ge f^*$, $\eta\le 1/L$: "
    r"$\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le \frac{2\Delta}{\eta T}+L^2\rho^2"
    r"+\frac{L\eta\sigma^2}{b}$."
)
STATEMENT_SAME_BATCH = (
    r"SAM ($\tau=0$, perturbation from the descent batch), every minibatch loss $L$-smooth, "
    r"$\eta\le1/L$: $\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2\le\frac{2\Delta}{\eta T}"
    r"+(1+L\eta)L^2\rho^2+\frac{2L\eta\sigma^2}{b}$."
)


def build() -> Proof:
    """T1, perturbation independent of the descent noise."""
    p = Proof("T1", "T1: normalised AsyncSAM, independent perturbation", STATEMENT_INDEPENDENT)
    ps = per_step_independent(p)
    c = eta / 2 * L**2 * rho**2 + L * eta**2 * sigma2 / (2 * b)
    fin = telescope_average(p, ps, c)
    p.identity(fin.rhs, FINAL_INDEPENDENT, "final bound in closed form")
    p.final["bound"] = FINAL_INDEPENDENT
    return p


def build_same_batch() -> Proof:
    """T1', tau = 0 SAM with the perturbation drawn from the descent batch."""
    title = "T1': SAM, perturbation from the descent batch"
    p = Proof("T1-same-batch", title, STATEMENT_SAME_BATCH)
    declare(p)
    E = expectation_symbol
    # d = grad f_B(w + eps) = g + zeta + e with zeta = grad f_B(w) - grad f(w) (mean 0
    # given w_t) and e = grad f_B(w + eps) - grad f_B(w), |e| <= L rho (f_B L-smooth).
    d = g + zeta + e
    dl = p.assume_le(
        "DL", f1, f0 + inner(g, -eta * d) + L / 2 * normsq(-eta * d), "descent lemma at w_t",
        forall=(t,),
    )
    ind = p.assume_independent(
        "IND",
        "zeta",
        {"g"},
        "zeta = grad f_B(w_t) - grad f(w_t) has E[zeta | w_t] = 0; only g is known "
        "before the batch: e depends on the batch through eps, so <e,zeta> is NOT dropped",
        forall=(t,),
    )
    var = p.assume_le("VAR", E(gram("zeta", "zeta")), sigma2 / b, "variance sigma2/b",
                      forall=(t,))
    lip = p.assume_le("LIP", gram("e", "e"), L**2 * rho**2, "each f_B L-smooth, |eps| = rho",
                      forall=(t,))
    ss = p.assume_le("STEP", L * eta, 1, "step-size condition eta <= 1/L")
    s1 = p.le(f1, sp.expand(dl.rhs), [Given(dl)], "descent lemma, expanded")
    y1 = p.le(
        2 * gram("e", "zeta"),
        gram("zeta", "zeta") + gram("e", "e"),
        [NormSq(zeta - e)],
        "Young: 2<zeta,e> <= |zeta|^2 + |e|^2",
    )
    y2 = p.le(
        -gram("e", "g"),
        (gram("g", "g") + gram("e", "e")) / 2,
        [Prod(Pos(sp.Rational(1, 2)), NormSq(g + e))],
        "Young: -<g,e> <= (|g|^2 + |e|^2)/2",
    )
    g2, e2, z2, gz = gram("g", "g"), gram("e", "e"), gram("zeta", "zeta"), gram("g", "zeta")
    rhs4 = f0 - eta / 2 * g2 + eta / 2 * (1 + L * eta) * e2 + L * eta**2 * z2
    rhs4 += (L * eta**2 - eta) * gz
    s4 = p.le(
        f1,
        rhs4,
        [Given(s1), Prod(Pos(L * eta**2 / 2), Given(y1)), Prod(Pos(eta), Given(ss), Given(y2))],
        "both Young inequalities (the second weighted by eta(1 - L eta) >= 0)",
    )
    s5 = p.expect(s4, [ind], "total expectation; only <g,zeta> has mean 0")
    elip = p.expect(lip, [], "expectation of the smoothness bound")
    c = eta / 2 * (1 + L * eta) * L**2 * rho**2 + L * eta**2 * sigma2 / b
    ps = p.le(
        E(f1),
        E(f0) - eta / 2 * E(g2) + c,
        [
            Given(s5),
            Prod(Pos(eta / 2 * (1 + L * eta)), Given(elip)),
            Prod(Pos(L * eta**2), Given(var)),
        ],
        "smoothness and variance bounds",
        name="per-step",
    )
    fin = telescope_average(p, ps, c)
    p.identity(fin.rhs, FINAL_SAME_BATCH, "final bound in closed form")
    p.final["bound"] = FINAL_SAME_BATCH
    return p
