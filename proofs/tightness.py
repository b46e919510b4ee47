"""Tightness of T1's additive term: normalised SAM on ``f = (lambda/2) x^2`` (the top
eigendirection of a quadratic) has the 2-cycle ``x <-> -x`` with
``|x| = eta rho lambda / (2 - eta lambda)`` (docs/theory.md §2.1); on it
``|grad f| = eta rho lambda^2 / (2 - eta lambda)``, and at ``eta = 1/L`` with
``lambda = L``: ``|grad f|^2 = L^2 rho^2`` -- exactly the deterministic floor of T1.
"""

from __future__ import annotations

from .core import Proof, sym
from .symbols import CONSTANTS, L, eta, rho

lam = sym("lambda", r"\lambda_1", positive=True)
y = sym("y", "y^{*}", positive=True)

#: closed forms on the cycle (checked against bounds.sam_two_cycle)
AMPLITUDE = eta * rho * lam / (2 - eta * lam)
GRAD_NORM = lam * AMPLITUDE
LOSS = lam * AMPLITUDE**2 / 2

STATEMENT = (
    r"Normalised SAM on $f=\frac{\lambda_1}{2}x^2$, $0<\eta\lambda_1<2$: the 2-cycle "
    r"$x\leftrightarrow -x$ has $|x|=\frac{\eta\rho\lambda_1}{2-\eta\lambda_1}$; at "
    r"$\eta=1/L$, $\lambda_1=L$: $\|\nabla f\|^2=L^2\rho^2$ (T1's floor is attained)."
)


def build() -> Proof:
    """The 2-cycle identities."""
    p = Proof("T1-tight", "T1 tightness: the SAM 2-cycle", STATEMENT)
    p.constants |= CONSTANTS | {lam, y}
    yd = p.assume_eq("Y", y, AMPLITUDE, "candidate amplitude, eta lambda < 2")
    # x > 0: grad = lambda x, direction sign(x) = +1, update x - eta lambda (x + rho)
    p.identity(y - eta * lam * (y + rho), -y, "from x = y*: one SAM step lands on -y*", using=[yd])
    p.identity(-y - eta * lam * (-y - rho), y, "from x = -y*: back to y*", using=[yd])
    p.identity(lam * y, GRAD_NORM, "|grad f| on the cycle", using=[yd])
    p.identity(lam * y**2 / 2, LOSS, "f on the cycle", using=[yd])
    ed = p.assume_eq("ETA", eta, 1 / L, "eta = 1/L")
    ld = p.assume_eq("LAM", lam, L, "lambda_1 = L")
    p.identity((lam * y) ** 2, L**2 * rho**2, "floor attained", using=[yd, ed, ld])
    p.final.update(amplitude=AMPLITUDE, grad_norm=GRAD_NORM, loss=LOSS)
    return p
