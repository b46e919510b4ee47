"""T4: the gradient-norm-penalty term under staleness.

(a) Taylor with remainder: ``grad f(w + rho v) = grad f(w) + rho H(w) v + R`` with
    ``|R| <= (M_H/2) rho^2`` for a unit ``v`` and an M_H-Lipschitz Hessian
    (``R = int_0^1 (H(w + s rho v) - H(w)) rho v ds``).
(b) Fidelity: ``|rho H u_{t-tau} - rho H u_t| <= rho L |u_{t-tau} - u_t| = 2 rho L sin(theta/2)``
    (``|H| <= L``; theta the angle between the stale and the fresh direction).
(c) Direction lemma: for nonzero a, b, ``|a/|a| - b/|b|| <= 2 |a - b| / |a|`` (and the same
    with ``|b|``, hence with ``max(|a|, |b|)``); Cauchy-Schwarz is proved on the way.
(d) Drift: ``|g_t - g_{t-tau}| <= L sum_{k=t-tau}^{t-1} |w_{k+1} - w_k| <= L eta tau G`` when
    every descent direction has norm <= G; so ``|u_{t-tau} - u_t| <= 2 L eta tau G / |g_t|``,
    ``sin(theta/2) <= L eta tau G / |g_t|`` and the penalty-term loss is at most
    ``2 rho L^2 eta tau G / |g_t|``.
"""

from __future__ import annotations

import sympy as sp

from .core import (
    EqUse,
    Given,
    IntegralOf,
    NormSq,
    Pos,
    Prod,
    Proof,
    Sq,
    gram,
    normsq,
    sym,
    vec,
)
from .symbols import CONSTANTS, M_H, G, L, eta, k, rho, t, tau

s = sym("s", "s")
r_norm = sym("r", r"\|R\|", nonnegative=True)
A = sym("A", r"\|g_t\|", positive=True)
B = sym("B", r"\|g_{t-\tau}\|", positive=True)
theta = sym("theta", r"\theta")
S = sym("S", r"\sin(\theta/2)", positive=True)
Phi = sym("Phi", r"\|\rho H(u_{t-\tau}-u_t)\|", positive=True)  # = 0: claims trivial
Nuv = sym("N_uv", r"\|u_{t-\tau}-u_t\|", nonnegative=True)
Nab = sym("N_ab", r"\|g_t-g_{t-\tau}\|", positive=True)
a, bv = vec("g_t"), vec("g_{t-tau}")
N = sp.Function("N")  # N(s) = |(H(w+s rho v) - H(w)) rho v|
Dg = sp.Function("Dg")  # Dg(k) = |g_{k+1} - g_k|
Dn = sp.Function("Dn")  # Dn(k) = |d_k|, descent direction norm
gfun = sp.Function("g")

#: final expressions (checked equal to the bound functions in asam_theory.theory.bounds)
FINAL_REMAINDER = M_H * rho**2 / 2
FINAL_FIDELITY_ANGLE = 2 * rho * L * S  # with S = sin(theta/2)
FINAL_DIRECTION = 2 * L * eta * tau * G / A  # bound on |u_{t-tau} - u_t|
FINAL_SIN_HALF = L * eta * tau * G / A
FINAL_FIDELITY_DRIFT = 2 * rho * L**2 * eta * tau * G / A

STATEMENT = (
    r"$\nabla f(w+\rho u_{t-\tau})=\nabla f(w)+\rho H(w)u_{t-\tau}+R$, "
    r"$\|R\|\le\frac{M_H}{2}\rho^2$; $\|\rho H u_{t-\tau}-\rho Hu_t\|\le 2\rho L\sin(\theta/2)$; "
    r"$\|u_{t-\tau}-u_t\|\le\frac{2\|g_t-g_{t-\tau}\|}{\|g_t\|}\le\frac{2L\eta\tau G}{\|g_t\|}$, "
    r"so the penalty term loses at most $\frac{2\rho L^2\eta\tau G}{\|g_t\|}$."
)


def _remainder(p: Proof) -> None:
    phi = sp.Function("phi")
    p.identity(
        sp.Integral(sp.Derivative(phi(s), s), (s, 0, 1)),
        phi(1) - phi(0),
        "fundamental theorem of calculus for phi(s) = d_i f(w + s rho v)",
    )
    y1, y2, w1, w2, v1, v2 = sp.symbols("y1 y2 w1 w2 v1 v2", real=True)
    path = (w1 + s * rho * v1, w2 + s * rho * v2)
    for i in (1, 2):
        # F_i = d_i f (a generic function of two variables); H_ij = d_j F_i
        Fi = sp.Function(f"F{i}")
        lhs = sp.diff(Fi(*path), s)
        rhs = sum(
            sp.Subs(sp.Derivative(Fi(y1, y2), yj), (y1, y2), path) * rho * vj
            for yj, vj in ((y1, v1), (y2, v2))
        )
        why = f"chain rule (d = 2): d/ds d_{i} f(w + s rho v) = (H(w + s rho v) rho v)_{i}"
        p.identity(lhs, rhs, why)
    hl = p.assume_le(
        "HLIP",
        N(s),
        M_H * s * rho * rho,
        "|H(w + s rho v) - H(w)| <= M_H s rho for s in [0,1], and |rho v| = rho",
        forall=((s, 0, 1),),
    )
    ni = p.assume_le(
        "NI",
        r_norm,
        sp.Integral(N(s), (s, 0, 1)),
        "|R| = |int_0^1 (H(w+s rho v) - H(w)) rho v ds| <= int_0^1 N(s) ds (norm of an integral)",
    )
    p.le(
        r_norm,
        M_H * rho**2 / 2,
        [Given(ni), IntegralOf(hl, s, 0, 1)],
        "integrate the Hessian-Lipschitz bound over [0,1]",
        name="remainder",
    )


def build() -> Proof:
    """T4 proof."""
    p = Proof("T4", "T4: gradient-norm penalty under staleness", STATEMENT)
    p.constants |= CONSTANTS
    p.index(t, step=True)
    p.index(k)
    p.index(s)
    p.assume_domain("DOM", (eta, L, rho, tau, G, M_H),
                    "step size, smoothness, radius, gradient bound and Hessian-Lipschitz "
                    "constant positive; staleness tau >= 0 an integer")
    p.assume_domain("NORMS", (A, B, Nab, Nuv, Phi, S, r_norm),
                    "norms: |g_t|, |g_{t-tau}|, |g_t - g_{t-tau}| > 0 (the directions are "
                    "defined and distinct), sin(theta/2) > 0 for theta in (0, pi], "
                    "|u_{t-tau} - u_t|, |rho H(u_{t-tau} - u_t)|, |R| >= 0")
    _remainder(p)

    # (c) Cauchy-Schwarz and the direction lemma, a = g_t (fresh), b = g_{t-tau} (stale)
    na = p.assume_eq("NA", gram("g_t", "g_t"), A**2, "A = |g_t| > 0")
    nb = p.assume_eq("NB", gram("g_{t-tau}", "g_{t-tau}"), B**2, "B = |g_{t-tau}| > 0")
    pab = gram("g_t", "g_{t-tau}")
    u = a / A - bv / B
    cs = "Cauchy-Schwarz"
    csp = p.le(pab, A * B, [Prod(Pos(A * B / 2), NormSq(u))], cs, using=[na, nb])
    csm = p.le(-pab, A * B, [Prod(Pos(A * B / 2), NormSq(a / A + bv / B))], cs, using=[na, nb])
    dir_a = p.le(
        normsq(u),
        4 * normsq(a - bv) / A**2,
        [
            Prod(Pos(2 / (A**3 * B)), Sq(A - B), Given(csm)),
            Prod(Pos((2 * B**2 + 4 * A * B) / (A**3 * B)), Given(csp)),
        ],
        "direction lemma (squared), certificate linear in <a,b> between the CS bounds",
        using=[na, nb],
    )
    p.le(
        normsq(u),
        4 * normsq(a - bv) / B**2,
        [
            Prod(Pos(2 / (B**3 * A)), Sq(A - B), Given(csm)),
            Prod(Pos((2 * A**2 + 4 * A * B) / (B**3 * A)), Given(csp)),
        ],
        "direction lemma with the stale norm (symmetric)",
        using=[na, nb],
    )
    nuv = p.assume_eq("NUV", Nuv, sp.sqrt(normsq(u)), "norm of u_t - u_{t-tau}")
    nab = p.assume_eq("NAB", Nab, sp.sqrt(normsq(a - bv)), "norm of g_t - g_{t-tau} (> 0)")
    dir_lin = p.le(
        Nuv,
        2 * Nab / A,
        [Prod(Given(dir_a), Pos(1 / (Nuv + 2 * Nab / A)))],
        "square root: y - x = (y^2 - x^2)/(x + y)",
        using=[nuv, nab],
        name="direction",
    )

    # (b) fidelity of the penalty term
    ang = p.assume_eq("ANG", pab, A * B * sp.cos(theta), "theta = angle(g_t, g_{t-tau})")
    sd = p.assume_eq("SIN", S, sp.sin(theta / 2), "S = sin(theta/2) > 0, theta in (0, pi]")
    half = p.identity(
        normsq(u), 4 * sp.sin(theta / 2) ** 2, "|u - v|^2 = 2 - 2 cos(theta)", using=[na, nb, ang]
    )
    opn = p.assume_le(
        "OPN", gram("Hd", "Hd"), L**2 * normsq(u), "|H x| <= L |x| for x = u_{t-tau} - u_t"
    )
    phd = p.assume_eq("PHI", Phi, sp.sqrt(rho**2 * gram("Hd", "Hd")), "Phi = |rho H x|")
    fsq = p.le(
        Phi**2,
        4 * rho**2 * L**2 * S**2,
        [Prod(Pos(rho**2), Given(opn)), EqUse(half, rho**2 * L**2)],
        "operator norm and the half-angle identity",
        using=[phd, sd],
    )
    p.le(
        Phi,
        2 * rho * L * S,
        [Prod(Given(fsq), Pos(1 / (Phi + 2 * rho * L * S)))],
        "square root",
        name="fidelity-angle",
    )
    fid_u = p.le(
        Phi**2,
        rho**2 * L**2 * Nuv**2,
        [Prod(Pos(rho**2), Given(opn))],
        "operator norm",
        using=[phd, nuv],
    )
    fid_lin = p.le(
        Phi,
        rho * L * Nuv,
        [Prod(Given(fid_u), Pos(1 / (Phi + rho * L * Nuv)))],
        "square root",
        using=[],
    )
    n2 = p.identity(
        Nuv**2, 4 * S**2, "|u - v| = 2 sin(theta/2)", using=[nuv, na, nb, ang, sd]
    )

    # (d) drift of the gradient over tau steps
    p.telescope(gfun(k + 1) - gfun(k), sp.Lambda(k, gfun(k)), k, t - tau, t - 1,
                "g_t - g_{t-tau} = sum_k (g_{k+1} - g_k), per coordinate")
    smk = p.assume_le("SMK", Dg(k), L * eta * Dn(k), "L-smooth: |g_{k+1}-g_k| <= L|w_{k+1}-w_k|",
                      forall=(k,))
    bnd = p.assume_le("BND", Dn(k), G, "descent directions bounded by G", forall=(k,))
    tri = p.assume_le(
        "TRI", Nab, sp.Sum(Dg(k), (k, t - tau, t - 1)), "triangle inequality on the telescoped sum"
    )
    per = p.le(Dg(k), L * eta * G, [Given(smk), Prod(Pos(L * eta), Given(bnd))], "per step")
    sm = p.sum_over(per, k, t - tau, t - 1, "sum over the tau steps")
    drift = p.le(Nab, L * eta * tau * G, [Given(tri), Given(sm)], "drift bound", name="drift")
    angle = p.le(
        Nuv,
        FINAL_DIRECTION,
        [Given(dir_lin), Prod(Pos(2 / A), Given(drift))],
        "direction lemma + drift",
        name="angle",
    )
    two_s = p.le(
        2 * S, Nuv, [EqUse(n2, -1 / (Nuv + 2 * S))], "from |u-v|^2 = 4 sin^2(theta/2), both >= 0"
    )
    p.le(
        S,
        FINAL_SIN_HALF,
        [Prod(Pos(sp.Rational(1, 2)), Given(two_s)), Prod(Pos(sp.Rational(1, 2)), Given(angle))],
        "sin(theta/2) bound",
        name="sin-half",
    )
    p.le(
        Phi,
        FINAL_FIDELITY_DRIFT,
        [Given(fid_lin), Prod(Pos(rho * L), Given(angle))],
        "penalty-term loss under staleness",
        name="fidelity-drift",
    )
    p.final.update(
        remainder=FINAL_REMAINDER,
        fidelity_angle=FINAL_FIDELITY_ANGLE,
        direction=FINAL_DIRECTION,
        sin_half=FINAL_SIN_HALF,
        fidelity_drift=FINAL_FIDELITY_DRIFT,
    )
    return p
