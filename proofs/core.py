"""The proof language: facts, certificates, steps and the sympy checker.

A :class:`Proof` is a list of assumptions (:class:`Fact` objects, each a statement
``expr >= 0`` or ``expr == 0`` over real symbols) followed by steps.  Every step is
checked by sympy:

* :meth:`Proof.identity` -- ``lhs = rhs``: the difference (after evaluating sums and
  integrals by linearity) is simplified to zero.
* :meth:`Proof.le` -- ``lhs <= rhs``: the user supplies a *certificate*, a list of terms
  each of which is a product of items whose nonnegativity the checker confirms itself
  (:class:`Sq` a real square, :class:`NormSq` a squared norm of a vector in the Gram
  algebra, :class:`Pos` an expression sympy's assumption system proves nonnegative,
  :class:`Given` a fact established earlier, :class:`IntegralOf` the integral of a
  nonnegative fact over an ordered interval, :class:`EqUse` an equality fact times any
  coefficient).  sympy must confirm ``rhs - lhs - sum(certificate) == 0``.
* :meth:`Proof.expect` -- total expectation of an established fact: the checker
  confirms the fact is affine in the random symbols (linearity of expectation) and that
  every dropped cross term ``<m, xi>`` pairs a noise vector ``xi`` with a vector ``m`` the
  cited :class:`Independence` assumption declares measurable before ``xi`` is drawn.
* :meth:`Proof.sum_over` -- summation of a fact over an index range (monotonicity of
  finite sums); :meth:`Proof.telescope` -- ``sum_{t=lo}^{hi} (F(t+1)-F(t)) =
  F(hi+1)-F(lo)`` after sympy confirms the summand equals ``F(t+1)-F(t)``.
* :meth:`Proof.unchecked` -- a claim the checker cannot confirm, recorded with its
  reason, counted and shown as ``?``.

Vectors enter through the Gram algebra (:class:`Vec`, :func:`inner`): a vector is a
linear combination of named basis vectors with scalar coefficients, an inner product
expands bilinearly into symmetric Gram symbols ``<a,b>`` and ``|a|^2``.  So identities
such as ``|a-b|^2 = |a|^2 - 2<a,b> + |b|^2`` are computed, not asserted, and a squared norm
of any combination is a certificate of nonnegativity (positive semi-definiteness of the
inner product).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sympy as sp

# --------------------------------------------------------------------------- symbols

_LATEX: dict[sp.Symbol, str] = {}


def sym(name: str, latex: str | None = None, **assumptions: bool) -> sp.Symbol:
    """A real sympy symbol with an optional LaTeX name (registered for rendering)."""
    assumptions.setdefault("real", True)
    s = sp.Symbol(name, **assumptions)
    if latex is not None:
        _LATEX[s] = latex
    return s


def latex(expr: sp.Basic) -> str:
    """LaTeX of ``expr`` using the registered symbol names."""
    expr = sp.sympify(expr)
    names = {s: _LATEX[s] for s in expr.free_symbols if s in _LATEX}
    return sp.latex(expr, symbol_names=names)


def gram(a: str, b: str) -> sp.Symbol:
    """The Gram symbol ``<a,b>`` (symmetric; ``|a|^2`` on the diagonal)."""
    a, b = sorted((a, b))
    if a == b:
        return sym(f"|{a}|^2", rf"\|{a}\|^{{2}}")
    return sym(f"<{a},{b}>", rf"\langle {a},{b}\rangle")


def expectation_symbol(s: sp.Symbol) -> sp.Symbol:
    """The symbol standing for the total expectation ``E[s]`` of a random symbol."""
    tex = _LATEX.get(s, s.name)
    return sym(f"E[{s.name}]", rf"\mathbb{{E}}\,{tex}")


class Vec:
    """A vector as a linear combination of named basis vectors (Gram algebra)."""

    def __init__(self, terms: dict[str, sp.Expr] | None = None) -> None:
        self.terms: dict[str, sp.Expr] = {
            k: sp.sympify(v) for k, v in (terms or {}).items() if sp.sympify(v) != 0
        }

    def __add__(self, other: Vec) -> Vec:
        out = dict(self.terms)
        for k, v in other.terms.items():
            out[k] = out.get(k, 0) + v
        return Vec(out)

    def __neg__(self) -> Vec:
        return Vec({k: -v for k, v in self.terms.items()})

    def __sub__(self, other: Vec) -> Vec:
        return self + (-other)

    def __mul__(self, c: sp.Expr | float) -> Vec:
        return Vec({k: v * c for k, v in self.terms.items()})

    __rmul__ = __mul__

    def __truediv__(self, c: sp.Expr | float) -> Vec:
        return Vec({k: v / c for k, v in self.terms.items()})

    def latex(self) -> str:
        if not self.terms:
            return "0"
        parts = []
        for k, v in self.terms.items():
            parts.append(k if v == 1 else rf"\left({latex(v)}\right){k}")
        return " + ".join(parts)


def vec(name: str) -> Vec:
    """The basis vector called ``name``."""
    return Vec({name: 1})


def inner(u: Vec, v: Vec) -> sp.Expr:
    """Bilinear expansion of ``<u, v>`` into Gram symbols."""
    return sp.expand(
        sp.Add(*[cu * cv * gram(a, b) for a, cu in u.terms.items() for b, cv in v.terms.items()])
    )


def normsq(u: Vec) -> sp.Expr:
    """``|u|^2`` expanded into Gram symbols."""
    return inner(u, u)


# --------------------------------------------------------------------------- facts


@dataclass
class Fact:
    """``lhs <= rhs`` (kind ``"le"``) or ``lhs = rhs`` (kind ``"eq"``) over real symbols.

    ``origin`` says where it comes from: ``"assumption"`` or the step that derived it.
    ``ok`` is False when the deriving step failed (later steps may use it; the proof then
    fails anyway because that step is counted as failed).
    """

    name: str
    lhs: sp.Expr
    rhs: sp.Expr
    kind: str = "le"
    origin: str = "assumption"
    text: str = ""
    ok: bool = True

    @property
    def expr(self) -> sp.Expr:
        """``rhs - lhs`` (nonnegative for ``le``, zero for ``eq``)."""
        return self.rhs - self.lhs

    def latex(self) -> str:
        rel = r"\le" if self.kind == "le" else "="
        return f"{latex(self.lhs)} {rel} {latex(self.rhs)}"


@dataclass
class Independence:
    """Zero-mean noise assumption: ``E[xi | F] = 0`` for a noise vector ``xi`` and every
    vector in ``measurable`` (all F-measurable), so ``E<m, xi> = 0`` for those ``m``."""

    name: str
    noise: str
    measurable: frozenset[str]
    text: str = ""


# --------------------------------------------------------------------- certificates


class Item:
    """A certificate item: a value and a checker for its nonnegativity."""

    def value(self) -> sp.Expr:
        raise NotImplementedError

    def check(self) -> tuple[bool, str]:
        raise NotImplementedError

    def latex(self) -> str:
        raise NotImplementedError


@dataclass
class Sq(Item):
    """``expr**2`` for a real ``expr``: nonnegative when sympy confirms ``expr`` is real."""

    expr: sp.Expr

    def value(self) -> sp.Expr:
        return self.expr**2

    def check(self) -> tuple[bool, str]:
        ok = sp.sympify(self.expr).is_real is True
        return ok, "" if ok else f"cannot confirm {self.expr} is real"

    def latex(self) -> str:
        return rf"\left({latex(self.expr)}\right)^2"


@dataclass
class NormSq(Item):
    """``|v|^2`` of a Gram-algebra vector: nonnegative (inner product is PSD)."""

    v: Vec

    def value(self) -> sp.Expr:
        return normsq(self.v)

    def check(self) -> tuple[bool, str]:
        ok = all(sp.sympify(c).is_real is True for c in self.v.terms.values())
        return ok, "" if ok else "vector has a coefficient not known to be real"

    def latex(self) -> str:
        return rf"\left\|{self.v.latex()}\right\|^2"


@dataclass
class Pos(Item):
    """An expression sympy's assumption system proves nonnegative (e.g. a product of
    symbols declared positive)."""

    expr: sp.Expr

    def value(self) -> sp.Expr:
        return sp.sympify(self.expr)

    def check(self) -> tuple[bool, str]:
        ok = sp.sympify(self.expr).is_nonnegative is True
        return ok, "" if ok else f"sympy cannot confirm {self.expr} >= 0"

    def latex(self) -> str:
        return latex(sp.sympify(self.expr))


@dataclass
class Given(Item):
    """``rhs - lhs`` of an established ``le`` fact (nonnegative by that fact)."""

    fact: Fact

    def value(self) -> sp.Expr:
        return self.fact.expr

    def check(self) -> tuple[bool, str]:
        if self.fact.kind != "le":
            return False, f"fact {self.fact.name} is an equality; use EqUse"
        if not self.fact.ok:
            return False, f"fact {self.fact.name} comes from a failed step"
        return True, ""

    def latex(self) -> str:
        return rf"\underbrace{{\left({latex(self.fact.expr)}\right)}}_{{\text{{{self.fact.name}}}}}"


@dataclass
class EqUse(Item):
    """``coeff * (rhs - lhs)`` of an equality fact: identically zero, any coefficient."""

    fact: Fact
    coeff: sp.Expr = sp.Integer(1)

    def value(self) -> sp.Expr:
        return self.coeff * self.fact.expr

    def check(self) -> tuple[bool, str]:
        if self.fact.kind != "eq":
            return False, f"fact {self.fact.name} is not an equality"
        if not self.fact.ok:
            return False, f"fact {self.fact.name} comes from a failed step"
        return True, ""

    def latex(self) -> str:
        return rf"{latex(sp.sympify(self.coeff))}\cdot 0_{{\text{{{self.fact.name}}}}}"


@dataclass
class IntegralOf(Item):
    """``int_a^b (rhs - lhs) ds`` of a fact holding for every ``s`` in ``[a, b]``;
    nonnegative when sympy confirms ``b - a >= 0``."""

    fact: Fact
    var: sp.Symbol
    a: sp.Expr
    b: sp.Expr

    def value(self) -> sp.Expr:
        return sp.Integral(self.fact.expr, (self.var, self.a, self.b))

    def check(self) -> tuple[bool, str]:
        ok, why = Given(self.fact).check()
        if not ok:
            return ok, why
        ordered = sp.sympify(self.b - self.a).is_nonnegative is True
        return ordered, "" if ordered else "interval bounds not ordered"

    def latex(self) -> str:
        return (
            rf"\int_{{{latex(self.a)}}}^{{{latex(self.b)}}}"
            rf"\left({latex(self.fact.expr)}\right)d{self.var}"
        )


@dataclass
class Prod(Item):
    """A product of nonnegative items."""

    items: tuple[Item, ...]

    def __init__(self, *items: Item) -> None:
        self.items = tuple(items)

    def value(self) -> sp.Expr:
        return sp.Mul(*[i.value() for i in self.items])

    def check(self) -> tuple[bool, str]:
        for i in self.items:
            ok, why = i.check()
            if not ok:
                return False, why
        return True, ""

    def latex(self) -> str:
        return r"\,".join(i.latex() for i in self.items)


# --------------------------------------------------------------------- normalisation


def _linear_split(expr: sp.Expr, cls: type) -> sp.Expr:
    """Distribute a ``Sum``/``Integral`` over the terms of its (expanded) argument and pull
    out factors that do not depend on the bound variable; evaluate what sympy can."""

    def split(node: sp.Basic) -> sp.Expr:
        body, limits = node.function, node.limits
        var = limits[0][0]
        out = []
        for term in sp.Add.make_args(sp.expand(body)):
            const, dep = term.as_independent(var, as_Add=False)
            inner_val = cls(dep, *limits).doit()
            out.append(const * inner_val)
        return sp.Add(*out)

    return expr.replace(lambda e: isinstance(e, cls), split)


def normalise(expr: sp.Expr) -> sp.Expr:
    """Expand sums and integrals by linearity, then cancel."""
    expr = sp.sympify(expr)
    if expr.has(sp.Integral):
        expr = _linear_split(expr, sp.Integral)
    if expr.has(sp.Sum):
        expr = _linear_split(expr, sp.Sum)
    return expr


def is_zero(expr: sp.Expr) -> bool:
    """True when sympy confirms ``expr == 0`` (cancel, then simplify as a fallback)."""
    expr = normalise(expr)
    if expr == 0 or sp.expand(expr) == 0:
        return True
    expanded = sp.expand(expr, power_exp=True)
    if expanded == 0:
        return True
    if sp.cancel(sp.together(expanded)) == 0:
        return True
    return sp.simplify(expr) == 0


def substitute(expr: sp.Expr, using: Sequence[Fact]) -> sp.Expr:
    """Replace each symbol ``s`` by ``e`` for equality facts ``s = e`` (equals for equals),
    one fact after the other."""
    expr = sp.sympify(expr)
    for f in using:  # in the given order, so a definition may introduce later ones
        if f.kind != "eq" or not isinstance(f.lhs, sp.Symbol) or not f.ok:
            raise ValueError(f"fact {f.name} is not a valid definition 'symbol = expr'")
        expr = expr.xreplace({f.lhs: f.rhs})
    return expr


def _with_using(why: str, using: Sequence[Fact]) -> str:
    if not using:
        return why
    return f"{why} [using {', '.join(f.name for f in using)}]"


# --------------------------------------------------------------------------- steps


#: step kinds that only name things (a definition, not a derivation)
DEFINITIONAL_KINDS = frozenset({"relabel"})


@dataclass
class Step:
    """One checked step of a proof."""

    kind: str
    claim: str
    why: str
    status: str = "pending"  # "ok", "failed", "unchecked"
    detail: str = ""
    certificate: str = ""
    fact: Fact | None = None
    seconds: float = 0.0

    @property
    def definitional(self) -> bool:
        """A naming step (``relabel``): it renames symbols and proves nothing, so it is
        counted apart from the checked steps."""
        return self.kind in DEFINITIONAL_KINDS

    @property
    def key(self) -> tuple[str, str, str]:
        """What the step states and why: a lemma reused (the same step in several proofs,
        or twice in one) has one key and is counted once."""
        return (self.kind, self.claim, self.why)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "definitional": self.definitional,
            "claim": self.claim,
            "why": self.why,
            "status": self.status,
            "detail": self.detail,
            "certificate": self.certificate,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class Proof:
    """A proof: its assumptions and its list of (checked) steps.

    Steps are checked as they are added, in order; a step may only use facts that exist
    at that point (assumptions or earlier steps).
    """

    id: str
    title: str
    statement: str
    assumptions: list[Fact | Independence] = field(default_factory=list)
    constants: set[sp.Symbol] = field(default_factory=set)
    steps: list[Step] = field(default_factory=list)
    final: dict[str, sp.Expr] = field(default_factory=dict)

    # -- assumptions --------------------------------------------------------
    def assume_le(self, name: str, lhs: sp.Expr, rhs: sp.Expr, text: str = "") -> Fact:
        """Assumption ``lhs <= rhs``."""
        f = Fact(name, sp.sympify(lhs), sp.sympify(rhs), "le", "assumption", text)
        self.assumptions.append(f)
        return f

    def assume_eq(self, name: str, lhs: sp.Expr, rhs: sp.Expr, text: str = "") -> Fact:
        """Assumption (or definition) ``lhs = rhs``."""
        f = Fact(name, sp.sympify(lhs), sp.sympify(rhs), "eq", "assumption", text)
        self.assumptions.append(f)
        return f

    def assume_independent(
        self, name: str, noise: str, measurable: Iterable[str], text: str = ""
    ) -> Independence:
        """Zero-mean-noise assumption (see :class:`Independence`)."""
        a = Independence(name, noise, frozenset(measurable), text)
        self.assumptions.append(a)
        return a

    # -- helpers ------------------------------------------------------------
    def _add(self, step: Step, t0: float) -> Step:
        step.seconds = time.perf_counter() - t0
        if step.fact is not None:
            step.fact.ok = step.status == "ok"
        self.steps.append(step)
        return step

    def _name(self, name: str | None) -> str:
        return name or f"({len(self.steps) + 1})"

    # -- step kinds ---------------------------------------------------------
    def identity(
        self,
        lhs: sp.Expr,
        rhs: sp.Expr,
        why: str,
        name: str | None = None,
        using: Sequence[Fact] = (),
    ) -> Fact:
        """Step ``lhs = rhs`` checked by simplifying the difference to zero (after
        substituting the definitions in ``using``)."""
        t0 = time.perf_counter()
        lhs, rhs = sp.sympify(lhs), sp.sympify(rhs)
        fact = Fact(self._name(name), lhs, rhs, "eq", "step", why)
        why = _with_using(why, using)
        try:
            ok = is_zero(substitute(lhs - rhs, using))
            detail = "" if ok else "difference does not simplify to 0"
        except Exception as exc:  # sympy failure counts as a failed check
            ok, detail = False, f"sympy error: {exc}"
        step = Step("identity", fact.latex(), why, "ok" if ok else "failed", detail, fact=fact)
        self._add(step, t0)
        return fact

    def le(
        self,
        lhs: sp.Expr,
        rhs: sp.Expr,
        certificate: Sequence[Item],
        why: str,
        name: str | None = None,
        using: Sequence[Fact] = (),
    ) -> Fact:
        """Step ``lhs <= rhs`` with ``rhs - lhs == sum(certificate)`` (after substituting
        the definitions in ``using``), each certificate item checked."""
        t0 = time.perf_counter()
        lhs, rhs = sp.sympify(lhs), sp.sympify(rhs)
        fact = Fact(self._name(name), lhs, rhs, "le", "step", why)
        why = _with_using(why, using)
        problems = []
        for item in certificate:
            ok_i, why_i = item.check()
            if not ok_i:
                problems.append(why_i)
        try:
            total = sp.Add(*[i.value() for i in certificate])
            if not is_zero(substitute(rhs - lhs - total, using)):
                problems.append("rhs - lhs is not equal to the certificate")
        except Exception as exc:
            problems.append(f"sympy error: {exc}")
        cert_tex = " + ".join(i.latex() for i in certificate) or "0"
        step = Step(
            "inequality",
            fact.latex(),
            why,
            "failed" if problems else "ok",
            "; ".join(problems),
            certificate=rf"\text{{rhs}}-\text{{lhs}} = {cert_tex}",
            fact=fact,
        )
        self._add(step, t0)
        return fact

    def expect(
        self,
        fact: Fact,
        independence: Sequence[Independence],
        why: str,
        name: str | None = None,
    ) -> Fact:
        """Total expectation of ``fact``: random symbols -> their expectations, and each
        cross term ``<m, xi>`` licensed by an :class:`Independence` assumption -> 0."""
        t0 = time.perf_counter()
        problems = []
        if not fact.ok:
            problems.append(f"fact {fact.name} comes from a failed step")
        expr_l, expr_r = sp.expand(fact.lhs), sp.expand(fact.rhs)
        randoms = (expr_l.free_symbols | expr_r.free_symbols) - self.constants
        zero: dict[sp.Symbol, int] = {}
        for ind in independence:
            for m in ind.measurable:
                zero[gram(m, ind.noise)] = 0
        mapping = {}
        for s in randoms:
            mapping[s] = zero.get(s, expectation_symbol(s))
        for side in (expr_l, expr_r):
            if randoms:
                poly = sp.Poly(side, *sorted(randoms, key=str))
                if poly.total_degree() > 1:
                    problems.append("not affine in the random symbols (E is only linear)")
        # every cross term with a noise vector that is not licensed stays (as an
        # expectation symbol); nothing else is dropped, so the map is sound by construction
        new = Fact(
            self._name(name),
            expr_l.xreplace(mapping),
            expr_r.xreplace(mapping),
            fact.kind,
            "step",
            why,
        )
        cited = ", ".join(i.name for i in independence) or "none"
        step = Step(
            "expectation",
            new.latex(),
            f"{why} [E of {fact.name}; zero-mean terms by: {cited}]",
            "failed" if problems else "ok",
            "; ".join(problems),
            fact=new,
        )
        self._add(step, t0)
        return new

    def sum_over(
        self,
        fact: Fact,
        var: sp.Symbol,
        lo: sp.Expr,
        hi: sp.Expr,
        why: str,
        name: str | None = None,
    ) -> Fact:
        """Sum a fact over ``var = lo..hi`` (it holds for every ``var``; finite sums of
        inequalities are monotone)."""
        t0 = time.perf_counter()
        problems = [] if fact.ok else [f"fact {fact.name} comes from a failed step"]
        if not (var.is_integer and sp.sympify(hi - lo + 1).is_nonnegative):
            problems.append("index must be an integer symbol over a nonempty-or-empty range")
        new = Fact(
            self._name(name),
            sp.Sum(fact.lhs, (var, lo, hi)),
            sp.Sum(fact.rhs, (var, lo, hi)),
            fact.kind,
            "step",
            why,
        )
        step = Step(
            "sum", new.latex(), why, "failed" if problems else "ok", "; ".join(problems), fact=new
        )
        self._add(step, t0)
        return new

    def telescope(
        self,
        summand: sp.Expr,
        F: sp.Lambda,
        var: sp.Symbol,
        lo: sp.Expr,
        hi: sp.Expr,
        why: str = "telescoping",
        name: str | None = None,
        using: Sequence[Fact] = (),
    ) -> Fact:
        """``sum_{var=lo}^{hi} summand = F(hi+1) - F(lo)`` after sympy confirms
        ``summand == F(var+1) - F(var)``."""
        t0 = time.perf_counter()
        new = Fact(
            self._name(name),
            sp.Sum(summand, (var, lo, hi)),
            F(hi + 1) - F(lo),
            "eq",
            "step",
            why,
        )
        try:
            ok = is_zero(substitute(summand - (F(var + 1) - F(var)), using))
            detail = "" if ok else "summand is not F(t+1) - F(t)"
        except Exception as exc:
            ok, detail = False, f"sympy error: {exc}"
        status = "ok" if ok else "failed"
        step = Step("telescope", new.latex(), _with_using(why, using), status, detail, fact=new)
        self._add(step, t0)
        return new

    def relabel(
        self, fact: Fact, mapping: dict[sp.Symbol, sp.Expr], why: str, name: str | None = None
    ) -> Fact:
        """Rename random symbols of a fact that holds at every step ``t`` (e.g.
        ``E f(w_t) -> F(t)``); constants cannot be renamed."""
        t0 = time.perf_counter()
        problems = [] if fact.ok else [f"fact {fact.name} comes from a failed step"]
        bad = [k for k in mapping if not isinstance(k, sp.Symbol) or k in self.constants]
        if bad:
            problems.append(f"cannot rename constants/non-symbols {bad}")
        new = Fact(
            self._name(name),
            fact.lhs.xreplace(mapping),
            fact.rhs.xreplace(mapping),
            fact.kind,
            "step",
            why,
        )
        step = Step(
            "relabel", new.latex(), why, "failed" if problems else "ok", "; ".join(problems),
            fact=new,
        )
        self._add(step, t0)
        return new

    def unchecked(self, claim: str, reason: str) -> None:
        """Record a claim the checker cannot confirm (counted, shown as ``?``)."""
        self.steps.append(Step("unchecked", claim, reason, "unchecked", reason))

    # -- summary --------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """``checked``: distinct (by :attr:`Step.key`) derivation steps sympy confirmed;
        ``definitional``: naming steps (confirmed, but they prove nothing); ``failed``,
        ``unchecked``; ``premises``: the assumptions (hypotheses and definitions) the proof
        starts from, which are stated, not checked."""
        return {
            "checked": len({s.key for s in self.steps
                            if s.status == "ok" and not s.definitional}),
            "definitional": sum(s.status == "ok" and s.definitional for s in self.steps),
            "failed": sum(s.status == "failed" for s in self.steps),
            "unchecked": sum(s.status == "unchecked" for s in self.steps),
            "premises": len(self.assumptions),
        }

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "statement": self.statement,
            "assumptions": [
                a.latex() if isinstance(a, Fact) else f"{a.name}: {a.text}"
                for a in self.assumptions
            ],
            "counts": self.counts(),
            "steps": [s.as_dict() for s in self.steps],
            "final": {k: str(v) for k, v in self.final.items()},
        }
