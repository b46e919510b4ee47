"""T3: normalised AsyncSAM (any tau, perturbation independent of the descent noise) under
the Polyak-Lojasiewicz inequality ``f - f* <= |grad f|^2 / (2 mu)``: linear convergence to
a neighbourhood,

``E f(w_T) - f* <= (1 - eta mu)^T Delta + (L^2 rho^2 + L eta sigma2 / b) / (2 mu)``

for ``eta <= 1/L`` and ``eta mu < 1``.  Proof: T1's per-step inequality, PL, the recursion
``D(t+1) <= q D(t) + c`` with ``q = 1 - eta mu`` multiplied by ``q^{-(t+1)}``, telescoped,
and the geometric sum ``sum_{t<T} q^{-(t+1)} = (q^{-T} - 1)/(eta mu)``.
"""

from __future__ import annotations

import sympy as sp

from .core import EqUse, Given, Pos, Prod, Proof, expectation_symbol, gram, sym
from .symbols import (
    Delta,
    L,
    T,
    b,
    declare,
    define_per_step,
    eta,
    f0,
    f1,
    f_star,
    mu,
    rho,
    sigma2,
    t,
)
from .t1_async_sam import per_step_independent

q = sym("q", "q", positive=True)
D = sp.Function("D")  # D(t) = E f(w_t) - f*

#: final bound of the proof (checked equal to bounds.t3_bound)
FINAL = (1 - eta * mu) ** T * Delta + (L**2 * rho**2 + L * eta * sigma2 / b) / (2 * mu)

STATEMENT = (
    r"PL with constant $\mu$, $L$-smooth, normalised AsyncSAM (any $\tau$, perturbation "
    r"independent of the descent batch), $\eta\le1/L$, $\eta\mu<1$: "
    r"$\mathbb E f(w_T)-f^*\le(1-\eta\mu)^T\Delta+\frac{L^2\rho^2+L\eta\sigma^2/b}{2\mu}$."
)


def build() -> Proof:
    """T3 proof."""
    p = Proof("T3", "T3: PL, linear convergence to a neighbourhood", STATEMENT)
    declare(p, (eta, L, rho, sigma2, b, T, mu), extra_constants=(q,),
            text="step size, smoothness, radius, variance, batch size and the PL constant are "
                 "positive; T >= 1 steps")
    p.assume_domain("Q>0", [q], "q = 1 - eta mu > 0: the condition eta mu < 1")
    ps = per_step_independent(p)
    E = expectation_symbol
    c = eta / 2 * L**2 * rho**2 + L * eta**2 * sigma2 / (2 * b)
    pl = p.assume_le("PL", f0 - f_star, gram("g", "g") / (2 * mu), "PL inequality at w_t",
                     forall=(t,))
    qd = p.assume_eq("Q", q, 1 - eta * mu, "q = 1 - eta mu, in (0, 1) since eta mu < 1")
    dlt = p.assume_eq("DELTA", Delta, D(0), "Delta = f(w_0) - f* = D(0)")
    epl = p.expect(pl, [], "expectation of PL")
    rec = p.le(
        E(f1) - f_star,
        q * (E(f0) - f_star) + c,
        [Given(ps), Prod(Pos(eta * mu), Given(epl))],
        "per-step inequality + PL: contraction by q = 1 - eta mu",
        using=[qd],
    )
    names = define_per_step(p, {E(f0): D(t) + f_star, E(f1): D(t + 1) + f_star},
                            "D(t) = E f(w_t) - f* (w_{t+1} follows w_t)")
    rel = p.rename(rec, names, "the recursion in D")
    w = p.le(
        q ** (-(t + 1)) * D(t + 1) - q ** (-t) * D(t),
        c * q ** (-(t + 1)),
        [Prod(Pos(q ** (-(t + 1))), Given(rel))],
        "multiply by q^{-(t+1)} > 0",
    )
    sm = p.sum_over(w, t, 0, T - 1, "sum over t = 0..T-1")
    tel = p.telescope(
        q ** (-(t + 1)) * D(t + 1) - q ** (-t) * D(t), sp.Lambda(t, q ** (-t) * D(t)), t, 0, T - 1
    )
    geo = p.telescope(
        q ** (-(t + 1)),
        sp.Lambda(t, q ** (-t) / (eta * mu)),
        t,
        0,
        T - 1,
        "geometric sum by telescoping",
        using=[qd],
    )
    s1 = p.le(
        q ** (-T) * D(T),
        D(0) + c * (q ** (-T) - 1) / (eta * mu),
        [Given(sm), EqUse(tel, -1), EqUse(geo, c)],
        "telescoped recursion",
    )
    s2 = p.le(
        D(T),
        q**T * D(0) + c * (1 - q**T) / (eta * mu),
        [Prod(Pos(q**T), Given(s1))],
        "multiply by q^T > 0",
    )
    fin = p.le(
        D(T),
        q**T * Delta + c / (eta * mu),
        [Given(s2), Pos(c * q**T / (eta * mu)), EqUse(dlt, -(q**T))],
        "drop -c q^T/(eta mu) <= 0",
        name="T3-final",
    )
    p.identity(fin.rhs, FINAL, "final bound in closed form", using=[qd])
    p.final["bound"] = FINAL
    return p
