"""Shared symbols of the proofs (vocabulary of ``docs/architecture.md``)."""

from __future__ import annotations

import sympy as sp

from .core import sym

eta = sym("eta", r"\eta", positive=True)
L = sym("L", "L", positive=True)
rho = sym("rho", r"\rho", positive=True)
sigma2 = sym("sigma2", r"\sigma^{2}", positive=True)
b = sym("b", "b", positive=True)
b_prime = sym("b_prime", "b'", positive=True)
mu = sym("mu", r"\mu", positive=True)
tau = sym("tau", r"\tau", integer=True, nonnegative=True)
T = sym("T", "T", integer=True, positive=True)
t = sym("t", "t", integer=True)
k = sym("k", "k", integer=True)
Delta = sym("Delta", r"\Delta", real=True)
f_star = sym("f_star", "f^{*}", real=True)
M_H = sym("M_H", "M_H", positive=True)
G = sym("G", "G", positive=True)

# random scalars of one step: f(w_t), f(w_{t+1})
f0 = sym("f(w_t)", r"f(w_t)")
f1 = sym("f(w_t+1)", r"f(w_{t+1})")

# per-step expectations as functions of the step index
F = sp.Function("F")  # F(t) = E f(w_t)
Gn = sp.Function("G_n")  # G_n(t) = E |grad f(w_t)|^2
CONSTANTS = {eta, L, rho, sigma2, b, b_prime, mu, tau, T, Delta, f_star, M_H, G}

#: the theorem's parameters whose declarations (positive, integer, ...) the proofs use
DOMAIN_TEXT = ("step size, smoothness, radius, variance and batch sizes are positive; "
               "T >= 1 steps; staleness tau >= 0 an integer")


def declare(p, domain: tuple = (eta, L, rho, sigma2, b, T), text: str = DOMAIN_TEXT,
            extra_constants: tuple = ()) -> None:
    """The standard set-up of a proof ``p`` (a :class:`proofs.core.Proof`): the constants,
    the step index ``t`` (the per-step quantities ``f(w_t)``, ``|g|^2`` ... are values at
    step ``t``), the index ``k``, and the premise ``DOM`` listing the declarations of
    ``domain`` that the proof uses."""
    p.constants |= CONSTANTS | set(extra_constants)
    if p.step_index is None:
        p.index(t, step=True)
        p.index(k)
        p.assume_domain("DOM", domain, text)


def define_per_step(p, names: dict, text: str) -> list:
    """Definitions ``E q = Q(t)`` (each a premise holding for every step ``t``) naming the
    per-step expectations by functions of the step index; returns the premises, for
    :meth:`proofs.core.Proof.rename`."""
    out = []
    for lhs, rhs in names.items():
        named = sorted(rhs.atoms(sp.core.function.AppliedUndef), key=str) or [lhs]
        out.append(p.assume_eq(f"def {named[0]}", lhs, rhs, text, forall=(t,)))
    return out
