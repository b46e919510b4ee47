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
