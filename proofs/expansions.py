"""Gradient-norm-penalty expansions on generic polynomial objectives (docs/theory.md §3).

For a polynomial f with symbolic coefficients (d = 2 quartic, d = 3 cubic) and
``g = grad f(w)``, ``H = hess f(w)``, ``n = |g|`` (a positive symbol with ``n = sqrt(g.g)``):

* ``f(w + rho g/n) = f + rho n + (rho^2/2) g^T H g / n^2 + O(rho^3)``,
* ``grad f(w + rho g/n) = g + rho H g / n + O(rho^2)``,
* ``grad f(w + rho v) = g + rho H v + O(rho^2)`` for a generic (stale) direction v,
* ``grad |grad f| = H g / |g|``.

Each is checked coefficient by coefficient: ``f(w + rho u)`` is a polynomial in rho (the
expansion is exact; the ``O(rho^k)`` part is the explicit higher coefficients), its
coefficients of ``rho^0, rho^1, (rho^2)`` are extracted with ``sympy.Poly`` in generic
directions ``u`` and compared exactly after substituting ``u = g/n`` or ``u = v``.
"""

from __future__ import annotations

import itertools

import sympy as sp

from .core import Proof, sym
from .symbols import rho

STATEMENT = (
    r"$f(w+\rho g/\|g\|)=f+\rho\|g\|+\frac{\rho^2}{2}\frac{g^\top Hg}{\|g\|^2}+O(\rho^3)$, "
    r"$\nabla f(w+\rho g/\|g\|)=g+\rho Hg/\|g\|+O(\rho^2)$, "
    r"$\nabla f(w+\rho v)=g+\rho Hv+O(\rho^2)$, $\nabla\|\nabla f\|=Hg/\|g\|$ "
    r"(generic polynomials, $d=2$ quartic and $d=3$ cubic)."
)


def generic_polynomial(d: int, degree: int) -> tuple[sp.Expr, list[sp.Symbol]]:
    """A polynomial in ``d`` variables of the given degree with one symbolic coefficient per
    monomial."""
    w = list(sp.symbols(f"w1:{d + 1}", real=True))
    f = sp.Integer(0)
    for alpha in itertools.product(range(degree + 1), repeat=d):
        if sum(alpha) <= degree:
            c = sp.Symbol("c_" + "".join(map(str, alpha)), real=True)
            f += c * sp.Mul(*[wi**a for wi, a in zip(w, alpha, strict=True)])
    return f, w


def _coeffs(expr: sp.Expr, upto: int) -> list[sp.Expr]:
    poly = sp.Poly(sp.expand(expr), rho)
    return [poly.coeff_monomial(rho**j) for j in range(upto + 1)]


def _add_case(p: Proof, d: int, degree: int) -> None:
    f, w = generic_polynomial(d, degree)
    g = [sp.diff(f, wi) for wi in w]
    H = sp.Matrix(d, d, lambda i, j: sp.diff(f, w[i], w[j]))
    u = list(sp.symbols(f"u1:{d + 1}", real=True))
    v = list(sp.symbols(f"v1:{d + 1}", real=True))
    n = sym(f"n{d}", r"\|g\|", positive=True)
    gg = sum(gi**2 for gi in g)
    nd = p.assume_eq(f"N{d}", n, sp.sqrt(gg), "n = |grad f(w)|, nonzero")
    shift = {wi: wi + rho * ui for wi, ui in zip(w, u, strict=True)}
    fu = _coeffs(f.xreplace(shift), 2)
    Hg = H * sp.Matrix(g)
    tag = f"d={d}, degree {degree}"
    to_g = {ui: gi / n for ui, gi in zip(u, g, strict=True)}
    p.identity(fu[0], f, f"[{tag}] rho^0 coefficient of f(w + rho g/|g|) is f(w)")
    p.identity(fu[1].xreplace(to_g), gg / n, f"[{tag}] rho^1 coefficient is g.g/|g|")
    p.identity(gg / n, n, f"[{tag}] g.g/|g| = |g|", using=[nd])
    gHg = (sp.Matrix(g).T * Hg)[0, 0]
    p.identity(
        fu[2].xreplace(to_g), gHg / (2 * n**2), f"[{tag}] rho^2 coefficient is g'Hg/(2|g|^2)"
    )
    for i, gi in enumerate(g):
        cu = _coeffs(gi.xreplace(shift), 1)
        p.identity(cu[0], gi, f"[{tag}] rho^0 coefficient of d_{i + 1}f(w + rho u) is g_{i + 1}")
        p.identity(
            cu[1].xreplace(to_g),
            Hg[i] / n,
            f"[{tag}] rho^1 coefficient of d_{i + 1}f(w + rho g/|g|) is (Hg)_{i + 1}/|g|",
        )
        Hv = sum(H[i, j] * v[j] for j in range(d))
        p.identity(
            cu[1].xreplace(dict(zip(u, v, strict=True))),
            Hv,
            f"[{tag}] stale direction: rho^1 coefficient of d_{i + 1}f(w + rho v) is (Hv)_{i + 1}",
        )
        p.identity(
            sp.diff(sp.sqrt(gg), w[i]),
            Hg[i] / sp.sqrt(gg),
            f"[{tag}] d_{i + 1}|grad f| = (Hg)_{i + 1}/|g|",
        )


def build() -> Proof:
    """Expansion checks, d = 2 (quartic) and d = 3 (cubic)."""
    p = Proof("EXP", "Gradient-norm-penalty expansions", STATEMENT)
    _add_case(p, 2, 4)
    _add_case(p, 3, 3)
    return p
