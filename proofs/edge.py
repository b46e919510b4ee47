r"""Edges of stability of GD, USAM, SAM and stale USAM (docs/theory.md §2.2, §2.4).

Stale USAM along an eigenvector of eigenvalue :math:`\lambda` is
:math:`x_{t+1}=(1-a)x_t-ka^2x_{t-\tau}` with :math:`a=\eta\lambda`, :math:`k=\rho/\eta`, and
characteristic polynomial :math:`p(z)=z^{\tau+1}-(1-a)z^\tau+ka^2`. Its roots move continuously
with :math:`a`, lie inside the unit disc for small :math:`a>0`, so stability is first lost at an
:math:`a` with a root on the unit circle. A root :math:`z` with :math:`|z|=1` satisfies
:math:`|z-(1-a)|=ka^2`. The checked steps:

* USAM's root :math:`a_0=4/(1+\sqrt{1+8k})` of :math:`a+ka^2=2`, and SAM's edge as USAM's with
  :math:`\rho\to\rho/\|g\|`;
* :math:`p(-1)=a+ka^2-2` for even τ and :math:`2-a+ka^2` for odd τ;
* on the unit circle :math:`|z-(1-a)|^2\ge(1-|1-a|)^2` (both signs of :math:`1-a`), with equality
  only at :math:`z=-1` when :math:`a>1`;
* for :math:`k\le1`: :math:`ka^2\le a` when :math:`a\le1`, and :math:`a+ka^2\le2` when
  :math:`1\le a\le a_0`, so no root reaches the circle before :math:`a_0` (every τ); even τ has
  the root :math:`-1` at :math:`a_0`; odd τ has :math:`p(-1)=2ka_0^2>0` there, so its edge is
  strictly larger;
* τ = 1: the root :math:`a_1=4/(1+\sqrt{1-8k})` of :math:`ka^2-a+2=0` (through :math:`z=-1`),
  the complex crossing :math:`a_c=1/\sqrt k` (:math:`|z|^2=ka^2=1`), and
  :math:`a_c\ge a_1\iff k\le1/9`.
"""

from __future__ import annotations

import sympy as sp

from .core import Given, Pos, Prod, Proof, sym
from .symbols import eta, rho

a = sym("a", "a", positive=True)
kk = sym("kappa", r"k", positive=True)
gn = sym("gnorm", r"\|g\|", positive=True)
m = sym("m", "m", integer=True, nonnegative=True)
C = sym("C", r"\mathrm{Re}\,z")
S2 = sym("S2", r"(\mathrm{Im}\,z)^2", nonnegative=True)
u = sym("u", "u", nonnegative=True)  # u = 1 - a >= 0
v = sym("v", "v", positive=True)  # v = a - 1 > 0
q = sym("q", "q", positive=True)  # q = 1 - r, r = sqrt(1 - 8k) on the tau = 1 branch
w2 = sym("w", "w", positive=True)  # w = 2 - q = 1 + r
a0s = sym("a0", "a_0", positive=True)

#: USAM's dimensionless edge a_0(k) and the tau = 1 roots
A0 = 4 / (1 + sp.sqrt(1 + 8 * kk))
A1 = 4 / (1 + sp.sqrt(1 - 8 * kk))
AC = 1 / sp.sqrt(kk)

STATEMENT = (
    r"With $a=\eta\lambda$, $k=\rho/\eta$: GD's edge is $2/\eta$; USAM's "
    r"$\lambda^*_0=a_0/\eta$, $a_0=\frac{\sqrt{1+8k}-1}{2k}$; SAM's is USAM's with "
    r"$\rho\to\rho/\|\nabla f\|$. Stale USAM ($p(z)=z^{\tau+1}-(1-a)z^\tau+ka^2$), $k\le1$: "
    r"$\lambda^*_\tau\ge\lambda^*_0$ for every $\tau$, with equality for even $\tau$ and strict "
    r"inequality for odd $\tau$; $a^*_1=\frac{1-\sqrt{1-8k}}{2k}$ for $k\le\frac19$, "
    r"$a^*_1=1/\sqrt k$ for $k>\frac19$."
)


def build() -> Proof:
    """The edge identities and inequalities (module docstring)."""
    p = Proof("EDGE", "Edges of stability of GD, USAM, SAM and stale USAM", STATEMENT)
    p.constants |= {eta, rho, kk, gn, a0s}
    p.assume_domain("DOM", (kk, a, a0s, u, v, q, w2),
                    "k = rho/eta > 0, a > 0, a_0 > 0; the case variables u = 1 - a >= 0, "
                    "v = a - 1 > 0; q = 1 - r > 0 and w = 1 + r > 0 (r = sqrt(1 - 8k))")

    # --- GD, USAM, SAM
    p.identity(1 - eta * (2 / eta), -1, "GD: the factor 1 - eta lambda is -1 at lambda = 2/eta")
    p.identity(A0 + kk * A0**2, 2, "USAM: a_0 = 4/(1+sqrt(1+8k)) solves a + k a^2 = 2")
    p.identity(A0, (sp.sqrt(1 + 8 * kk) - 1) / (2 * kk), "a_0 = (sqrt(1+8k) - 1)/(2k)")
    lam_sam = gn / (2 * rho) * (sp.sqrt(1 + 8 * rho / (eta * gn)) - 1)
    p.identity(eta * lam_sam * (1 + rho * lam_sam / gn), 2,
               "SAM: lambda = |g|/(2 rho) (sqrt(1 + 8 rho/(eta |g|)) - 1) solves "
               "eta lambda (1 + rho lambda/|g|) = 2 (USAM with rho -> rho/|g|)")

    # --- p(-1) by the parity of tau
    def p_at(z, tau):
        return z ** (tau + 1) - (1 - a) * z**tau + kk * a**2

    p.identity(p_at(-1, 2 * m), a + kk * a**2 - 2, "even tau = 2m: p(-1) = a + k a^2 - 2")
    p.identity(p_at(-1, 2 * m + 1), 2 - a + kk * a**2, "odd tau = 2m+1: p(-1) = 2 - a + k a^2")

    # --- distance from 1 - a to the unit circle
    circle = p.assume_eq("CIRCLE", S2, 1 - C**2, "z = C + iS on the unit circle: S^2 = 1 - C^2")
    c_hi = p.assume_le("C_HI", C, 1, "Re z <= 1 on the unit circle")
    c_lo = p.assume_le("C_LO", -1, C, "Re z >= -1 on the unit circle")
    p.le((1 - u) ** 2, (C - u) ** 2 + S2,
         [Prod(Pos(2 * u), Given(c_hi))],
         "a <= 1 (1 - a = u >= 0): |z - (1-a)|^2 >= (1 - |1-a|)^2 = a^2",
         using=[circle])
    p.le((1 - v) ** 2, (C + v) ** 2 + S2,
         [Prod(Pos(2 * v), Given(c_lo))],
         "a > 1 (1 - a = -v < 0): |z - (1-a)|^2 >= (1 - |1-a|)^2 = (2-a)^2",
         using=[circle])
    p.identity((C + v) ** 2 + S2 - (1 - v) ** 2, 2 * v * (1 + C),
               "a > 1: |z-(1-a)|^2 - (2-a)^2 = 2(a-1)(1 + Re z), zero only at z = -1",
               using=[circle])

    # --- k <= 1: no root on the circle before a_0
    k_le = p.assume_le("K_LE_1", kk, 1, "rho <= eta")
    a_le = p.assume_le("A_LE_1", a, 1, "case a <= 1")
    p.le(kk * a**2, a, [Prod(Pos(a), Given(k_le)), Prod(Pos(a * kk), Given(a_le))],
         "a <= 1, k <= 1: k a^2 <= a = 1 - |1-a| (equality only at a = k = 1)")
    a0d = p.assume_eq("A0", a0s, A0, "a_0, USAM's dimensionless edge")
    a_below = p.assume_le("A_BELOW", a, a0s, "case a <= a_0")
    p.identity(2 - a - kk * a**2, (a0s - a) * (1 + kk * (a0s + a)) + (2 - a0s - kk * a0s**2),
               "2 - a - k a^2 = (a_0 - a)(1 + k(a_0 + a)) + (2 - a_0 - k a_0^2)")
    p.le(a + kk * a**2, 2, [Prod(Given(a_below), Pos(1 + kk * (a0s + a)))],
         "1 <= a <= a_0: k a^2 <= 2 - a = 1 - |1-a| (equality only at a = a_0)", using=[a0d])
    p.identity(p_at(-1, 2 * m + 1).subs(a, a0s), 2 * kk * a0s**2,
               "odd tau at a = a_0: p(-1) = 2 k a_0^2 > 0, so -1 is not a root and the "
               "edge of odd tau lies strictly above a_0", using=[a0d])

    # --- tau = 1
    p.identity(kk * A1**2 - A1 + 2, 0, "tau = 1: a_1 = 4/(1+sqrt(1-8k)) solves k a^2 - a + 2 = 0")
    p.identity(A1, (1 - sp.sqrt(1 - 8 * kk)) / (2 * kk), "a_1 = (1 - sqrt(1-8k))/(2k)")
    p.identity(kk * AC**2, 1, "tau = 1: the product of the roots k a^2 is 1 at a_c = 1/sqrt(k)")
    # compare on the branch r = sqrt(1 - 8k) = 1 - q, k = (1 - r^2)/8
    r = 1 - q
    k_of_r = (1 - r**2) / 8
    q_le = p.assume_le("Q_LE", q, sp.Rational(2, 3), "r = sqrt(1-8k) >= 1/3, i.e. k <= 1/9")
    wd = p.assume_eq("W", w2, 2 - q, "w = 1 + r = 2 - q")
    p.le((4 / (1 + r)) ** 2, 1 / k_of_r, [Prod(Pos(24 / (q * w2**2)), Given(q_le))],
         "k <= 1/9: a_1^2 <= a_c^2 = 1/k, so the root -1 comes first", using=[wd])
    p.identity((4 / (1 + r)) ** 2 - 1 / k_of_r, 8 * (1 - 3 * r) / ((1 - r) * (1 + r) ** 2),
               "a_1^2 - a_c^2 = 8(1 - 3r)/((1-r)(1+r)^2): the sign changes at r = 1/3, k = 1/9")
    p.final.update(usam=A0, tau1_minus_one=A1, tau1_complex=AC)
    return p
