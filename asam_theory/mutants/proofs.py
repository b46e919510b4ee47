r"""Proof mutants (family ``"proof"``): wrong derivations the sympy checker must reject.

Each patches the proof language (:class:`asam_theory.proofs.core.Proof`, looked up at call
time by every proof builder) so that the real proofs of T1-T4 and the sharpened forms make a
step that does not follow:

* ``proof-false-inequality`` -- the steps named ``per-step`` (T1, T1', T2, T3, T1-sharp,
  T2-sharp) and ``drift`` (T4) claim a right-hand side smaller by ``eta rho^2 > 0``: the
  certificate no longer matches, the step must be *failed*;
* ``proof-relabel-quantities`` -- the per-step naming ``E f(w_t) = F(t)``,
  ``E f(w_{t+1}) = F(t+1)``, ... is done by relabelling the fixed quantities instead of by
  the definitions (the derivation the checker once accepted: from ``y <= x - eta`` it gave
  ``F(t) <= F(t+1) - eta``); the step must be *unchecked*;
* ``proof-relabel-shifted`` -- an instance at the wrong index: T1-sharp's last-gradient
  bound instantiated at ``t := T`` instead of ``T - 1``, T2's window lemma at ``t := k + 1``
  (a valid instance of a true fact, but not the one the next step needs: that step fails);
* ``proof-dropped-domain`` -- the domain premises (``DOM``, ``K>0``, ``KAPPA>0``, ``Q>0``,
  ``NORMS``) are dropped, so positivity comes from the symbols' declarations only; the
  steps that use it must be *unchecked*;
* ``proof-dropped-forall`` -- the premises lose their "for every t / k / s": a per-step
  inequality then holds at one fixed step only, and summing it over t must be *unchecked*;
* ``proof-positivity-assumed`` -- T1-sharp's ``A > 0`` taken from the declaration of ``A``
  instead of the step that derives it from ``A >= 1/2``: the division by ``eta A T`` must
  be *unchecked*.

The checks that must kill them are the claims' proof checks (``T1.proof``, ``T2.proof``,
``T3.proof``, ``T4.proofs``, ``PEP-T1.sharp_proof``, ``PEP-T2.sharp_proof``), each of which
fails on any failed or unchecked step, and the proof tests.
"""

from __future__ import annotations

from typing import Any

from asam_theory.mutants.base import Mutant

ALL_PROOF_CHECKS = ("T1.proof", "T2.proof", "T3.proof", "PEP-T1.sharp_proof",
                    "PEP-T2.sharp_proof")
PROOF_TESTS = ("tests/test_proofs.py::test_all_proofs_checked_none_failed_or_unchecked",)


def _core() -> Any:
    from asam_theory.proofs import core

    return core


def _false_inequality() -> list:
    core = _core()
    from asam_theory.proofs.symbols import eta, rho

    orig = core.Proof.le

    def le(self, lhs, rhs, certificate, why, name=None, using=()):
        if name in ("per-step", "drift"):
            rhs = rhs - eta * rho**2
        return orig(self, lhs, rhs, certificate, why, name=name, using=using)

    return [((core.Proof, "le"), le)]


def _relabel_quantities() -> list:
    core = _core()

    def rename(self, fact, definitions, why, name=None):
        return self.relabel(fact, {d.lhs: d.rhs for d in definitions}, why, name=name)

    return [((core.Proof, "rename"), rename)]


def _relabel_shifted() -> list:
    core = _core()
    from asam_theory.proofs.symbols import T, k, t

    orig = core.Proof.relabel

    def relabel(self, fact, mapping, why, name=None):
        if mapping == {t: T - 1}:
            mapping = {t: T}
        elif mapping == {t: k}:
            mapping = {t: k + 1}
        return orig(self, fact, mapping, why, name=name)

    return [((core.Proof, "relabel"), relabel)]


def _dropped_domain() -> list:
    core = _core()

    def assume_domain(self, name, symbols, text=""):
        return core.Domain(name, tuple(symbols), text)  # not a premise, licenses nothing

    return [((core.Proof, "assume_domain"), assume_domain)]


def _dropped_forall() -> list:
    core = _core()
    orig = core.Proof._premise

    def _premise(self, name, lhs, rhs, kind, text, forall):
        return orig(self, name, lhs, rhs, kind, text, ())

    orig_ind = core.Proof.assume_independent

    def assume_independent(self, name, noise, measurable, text="", forall=()):
        return orig_ind(self, name, noise, measurable, text)

    return [((core.Proof, "_premise"), _premise),
            ((core.Proof, "assume_independent"), assume_independent)]


def _positivity_assumed() -> list:
    core = _core()

    def positive(self, s, certificate, why, name=None, using=()):
        # the declaration stands in for the derivation: nothing is checked or licensed
        return core.Fact(name or "pos", core.sp.Integer(0), s, "le", "step", why)

    return [((core.Proof, "positive"), positive)]


MUTANTS: tuple[Mutant, ...] = (
    Mutant("proof-false-inequality", "proof",
           "the per-step inequalities (and T4's drift bound) claim a right-hand side smaller "
           "by eta rho^2, which their certificates do not give",
           _false_inequality, checks=ALL_PROOF_CHECKS + ("T4.proofs",), tests=PROOF_TESTS),
    Mutant("proof-relabel-quantities", "proof",
           "the per-step quantities E f(w_t), E f(w_{t+1}), E|g|^2 are relabelled as F(t), "
           "F(t+1), G_n(t) instead of rewritten by definitions (an unsound rename)",
           _relabel_quantities, checks=ALL_PROOF_CHECKS, tests=PROOF_TESTS),
    Mutant("proof-relabel-shifted", "proof",
           "instances at the wrong index: T1-sharp's last-gradient bound at t = T instead of "
           "T - 1; the nonnegativity G_n(t) >= 0 of T2 and T2-sharp at t = k + 1",
           _relabel_shifted, checks=("T2.proof", "PEP-T1.sharp_proof", "PEP-T2.sharp_proof"),
           tests=PROOF_TESTS),
    Mutant("proof-dropped-domain", "proof",
           "the domain premises (eta, L, rho > 0, T >= 1, K > 0, kappa > 0, q > 0, the norms "
           "of T4) are dropped: positivity comes from the symbols' declarations only",
           _dropped_domain, checks=ALL_PROOF_CHECKS + ("T4.proofs",), tests=PROOF_TESTS),
    Mutant("proof-dropped-forall", "proof",
           "the premises lose 'for every t' (k, s): the per-step inequality holds at one fixed "
           "step, yet it is summed over t",
           _dropped_forall, checks=ALL_PROOF_CHECKS + ("T4.proofs",), tests=PROOF_TESTS),
    Mutant("proof-positivity-assumed", "proof",
           "T1-sharp's A > 0 is taken from the declaration of A instead of derived from "
           "A >= 1/2",
           _positivity_assumed, checks=("PEP-T1.sharp_proof",), tests=PROOF_TESTS),
)
