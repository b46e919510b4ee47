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
  finite sums), only of a fact that holds for every index in the range;
  :meth:`Proof.telescope` -- ``sum_{t=lo}^{hi} (F(t+1)-F(t)) = F(hi+1)-F(lo)`` after sympy
  confirms the summand equals ``F(t+1)-F(t)``.
* :meth:`Proof.relabel` -- an instance ``fact[v := e]`` of a fact proved for every value of
  the index ``v`` (universal instantiation; the rule is in :class:`Proof`);
  :meth:`Proof.rename` -- rewriting by definitions that are premises (a naming step, ``≔``);
  :meth:`Proof.positive` -- ``s > 0`` derived, which licenses ``s``'s declaration.
* Declarations (``positive=True`` ...) count as facts only when a premise lists them
  (:meth:`Proof.assume_domain`) or a step derives them; otherwise the step is unchecked.
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
    #: ``"ok"``, ``"failed"`` or ``"unchecked"`` (the status of the deriving step)
    status: str = "ok"
    #: variables a premise quantifies: ``(symbol, lo, hi)``, "for every symbol in [lo, hi]"
    #: (``None`` = unbounded; the symbol's declared domain applies as well)
    forall: tuple[Bound, ...] = ()
    #: the premises (and declaration clauses) the fact rests on; a premise rests on itself
    deps: tuple = field(default=(), repr=False, compare=False)

    @property
    def expr(self) -> sp.Expr:
        """``rhs - lhs`` (nonnegative for ``le``, zero for ``eq``)."""
        return self.rhs - self.lhs

    def latex(self) -> str:
        rel = r"\le" if self.kind == "le" else "="
        return f"{_forall_latex(self.forall)}{latex(self.lhs)} {rel} {latex(self.rhs)}"


@dataclass
class Independence:
    """Zero-mean noise assumption: ``E[xi | F] = 0`` for a noise vector ``xi`` and every
    vector in ``measurable`` (all F-measurable), so ``E<m, xi> = 0`` for those ``m``.  Its
    vectors are step quantities (see :class:`Proof`); ``forall`` as for :class:`Fact`."""

    name: str
    noise: str
    measurable: frozenset[str]
    text: str = ""
    forall: tuple[Bound, ...] = ()


@dataclass
class Domain:
    """A premise that the listed symbols lie in their *declared* domains (``positive``,
    ``nonnegative``, ``integer`` ...): sympy's assumption system may use a symbol's
    declaration only when such a premise lists it (or a :meth:`Proof.positive` step derives
    it), so every declaration used as a fact is printed among the premises."""

    name: str
    symbols: tuple[sp.Symbol, ...]
    text: str = ""

    def latex(self) -> str:
        return r";\ ".join(_declaration(s) for s in self.symbols)


@dataclass(frozen=True)
class Clause:
    """One symbol's declaration, as licensed by ``source`` (a :class:`Domain` premise or a
    :meth:`Proof.positive` step): what a fact that uses the declaration rests on."""

    name: str
    symbol: sp.Symbol


Bound = tuple[sp.Symbol, "sp.Expr | None", "sp.Expr | None"]


def _bound(spec: sp.Symbol | tuple) -> Bound:
    if isinstance(spec, sp.Symbol):
        return (spec, None, None)
    s, lo, hi = spec
    return (s, None if lo is None else sp.sympify(lo), None if hi is None else sp.sympify(hi))


def _forall_latex(forall: tuple[Bound, ...]) -> str:
    if not forall:
        return ""
    parts = []
    for s, lo, hi in forall:
        if lo is None and hi is None:
            parts.append(latex(s))
            continue
        left = r"-\infty" if lo is None else latex(lo)
        right = r"\infty" if hi is None else latex(hi)
        parts.append(rf"{latex(s)}\in[{left},{right}]")
    return rf"\forall {', '.join(parts)}:\ "


#: declared properties beyond ``real`` that sympy may use, in the order they are printed
_PROPERTIES = ("integer", "positive", "nonnegative", "negative", "nonpositive", "nonzero")


def _declaration(s: sp.Symbol) -> str:
    props = [p for p in _PROPERTIES if getattr(s, f"is_{p}") is True]
    if "positive" in props and "nonnegative" in props:
        props.remove("nonnegative")
    if ("positive" in props or "negative" in props) and "nonzero" in props:
        props.remove("nonzero")
    rel = {"positive": "> 0", "nonnegative": r"\ge 0", "negative": "< 0",
           "nonpositive": r"\le 0", "nonzero": r"\ne 0"}
    name = latex(s)
    parts = [rf"{name} \in \mathbb{{Z}}"] if "integer" in props else []
    parts += [f"{name} {rel[p]}" for p in props if p != "integer"]
    return r",\ ".join(parts) or rf"{name} \in \mathbb{{R}}"


def _declared(s: sp.Basic) -> bool:
    """True when the symbol's declaration says more than ``real``."""
    return isinstance(s, sp.Symbol) and any(getattr(s, f"is_{p}") is True for p in _PROPERTIES)


def strip(expr: sp.Expr, licensed: Iterable[sp.Symbol] | None) -> sp.Expr:
    """``expr`` with every symbol whose declaration is not licensed replaced by a plain real
    symbol, so sympy's assumption system can use only the licensed declarations
    (``licensed=None``: every declaration, the unchecked behaviour)."""
    expr = sp.sympify(expr)
    if licensed is None:
        return expr
    lic = set(licensed)
    return expr.xreplace({s: sp.Dummy(s.name, real=True) for s in expr.free_symbols
                          if _declared(s) and s not in lic})


def _bound_symbols(expr: sp.Basic) -> set[sp.Symbol]:
    """Symbols bound inside ``expr`` (summation and integration variables, lambda
    arguments)."""
    out: set[sp.Symbol] = set()
    for node in sp.sympify(expr).atoms(sp.Sum, sp.Integral, sp.Lambda):
        if isinstance(node, sp.Lambda):
            out |= set(node.variables)
        else:
            out |= {lim[0] for lim in node.limits}
    return out


# --------------------------------------------------------------------- certificates


class Item:
    """A certificate item: a value and a checker for its nonnegativity.

    :meth:`verify` returns ``(status, why)``: ``"ok"``; ``"failed"`` when the item is wrong;
    ``"unchecked"`` when it holds only by a symbol declaration that no premise lists and no
    step derives (``licensed`` names the symbols whose declarations may be used; ``None``:
    all of them), or when it cites a fact from an unchecked step.  :meth:`check` is the
    boolean form with every declaration allowed."""

    def value(self) -> sp.Expr:
        raise NotImplementedError

    def verify(self, licensed: Iterable[sp.Symbol] | None = None) -> tuple[str, str]:
        raise NotImplementedError

    def check(self) -> tuple[bool, str]:
        status, why = self.verify(None)
        return status == "ok", why

    def facts(self) -> list[Fact]:
        """The established facts the item cites."""
        return []

    def declared(self) -> set[sp.Symbol]:
        """Symbols whose declarations the item's check may use."""
        return set()

    def latex(self) -> str:
        raise NotImplementedError


def _fact_status(fact: Fact) -> tuple[str, str]:
    if fact.status == "failed" or (not fact.ok and fact.status == "ok"):
        return "failed", f"fact {fact.name} comes from a failed step"
    if fact.status == "unchecked":
        return "unchecked", f"fact {fact.name} comes from an unchecked step"
    return "ok", ""


def _sign_check(expr: sp.Expr, prop: str, licensed: Iterable[sp.Symbol] | None,
                what: str) -> tuple[str, str]:
    """``expr`` has property ``prop`` (``nonnegative``, ``positive``, ``integer``...) by
    sympy, using only the licensed declarations."""
    if getattr(sp.sympify(expr), f"is_{prop}") is not True:
        return "failed", f"sympy cannot confirm {what} is {prop}"
    if getattr(strip(expr, licensed), f"is_{prop}") is not True:
        used = sorted(str(s) for s in sp.sympify(expr).free_symbols
                      if _declared(s) and (licensed is None or s not in set(licensed)))
        return "unchecked", (f"{what} is {prop} only by the declarations of {used}, which no "
                             "premise lists and no step derives")
    return "ok", ""


@dataclass
class Sq(Item):
    """``expr**2`` for a real ``expr``: nonnegative when sympy confirms ``expr`` is real."""

    expr: sp.Expr

    def value(self) -> sp.Expr:
        return self.expr**2

    def verify(self, licensed=None) -> tuple[str, str]:
        ok = sp.sympify(self.expr).is_real is True
        return ("ok", "") if ok else ("failed", f"cannot confirm {self.expr} is real")

    def latex(self) -> str:
        return rf"\left({latex(self.expr)}\right)^2"


@dataclass
class NormSq(Item):
    """``|v|^2`` of a Gram-algebra vector: nonnegative (inner product is PSD)."""

    v: Vec

    def value(self) -> sp.Expr:
        return normsq(self.v)

    def verify(self, licensed=None) -> tuple[str, str]:
        ok = all(sp.sympify(c).is_real is True for c in self.v.terms.values())
        return ("ok", "") if ok else ("failed", "vector has a coefficient not known to be real")

    def latex(self) -> str:
        return rf"\left\|{self.v.latex()}\right\|^2"


@dataclass
class Pos(Item):
    """An expression sympy's assumption system proves nonnegative (e.g. a product of
    symbols declared positive) -- from licensed declarations only (see :class:`Domain`)."""

    expr: sp.Expr

    def value(self) -> sp.Expr:
        return sp.sympify(self.expr)

    def verify(self, licensed=None) -> tuple[str, str]:
        return _sign_check(self.expr, "nonnegative", licensed, str(self.expr))

    def declared(self) -> set[sp.Symbol]:
        return {s for s in sp.sympify(self.expr).free_symbols if _declared(s)}

    def latex(self) -> str:
        return latex(sp.sympify(self.expr))


@dataclass
class Given(Item):
    """``rhs - lhs`` of an established ``le`` fact (nonnegative by that fact)."""

    fact: Fact

    def value(self) -> sp.Expr:
        return self.fact.expr

    def verify(self, licensed=None) -> tuple[str, str]:
        if self.fact.kind != "le":
            return "failed", f"fact {self.fact.name} is an equality; use EqUse"
        return _fact_status(self.fact)

    def facts(self) -> list[Fact]:
        return [self.fact]

    def latex(self) -> str:
        return rf"\underbrace{{\left({latex(self.fact.expr)}\right)}}_{{\text{{{self.fact.name}}}}}"


@dataclass
class EqUse(Item):
    """``coeff * (rhs - lhs)`` of an equality fact: identically zero, any coefficient."""

    fact: Fact
    coeff: sp.Expr = sp.Integer(1)

    def value(self) -> sp.Expr:
        return self.coeff * self.fact.expr

    def verify(self, licensed=None) -> tuple[str, str]:
        if self.fact.kind != "eq":
            return "failed", f"fact {self.fact.name} is not an equality"
        return _fact_status(self.fact)

    def facts(self) -> list[Fact]:
        return [self.fact]

    def latex(self) -> str:
        return rf"{latex(sp.sympify(self.coeff))}\cdot 0_{{\text{{{self.fact.name}}}}}"


@dataclass
class IntegralOf(Item):
    """``int_a^b (rhs - lhs) ds`` of a fact holding for every ``s`` in ``[a, b]``;
    nonnegative when sympy confirms ``b - a >= 0``.  That the fact holds for every ``s`` in
    ``[a, b]`` (``s`` universally quantified, over a range containing ``[a, b]``) is checked
    by the proof (:meth:`Proof.le`), which knows the fact's premises."""

    fact: Fact
    var: sp.Symbol
    a: sp.Expr
    b: sp.Expr

    def value(self) -> sp.Expr:
        return sp.Integral(self.fact.expr, (self.var, self.a, self.b))

    def verify(self, licensed=None) -> tuple[str, str]:
        status, why = Given(self.fact).verify(licensed)
        if status != "ok":
            return status, why
        return _sign_check(sp.sympify(self.b - self.a), "nonnegative", licensed,
                           "the interval length b - a")

    def facts(self) -> list[Fact]:
        return [self.fact]

    def declared(self) -> set[sp.Symbol]:
        return {s for s in sp.sympify(self.b - self.a).free_symbols if _declared(s)}

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

    def verify(self, licensed=None) -> tuple[str, str]:
        worst = ("ok", "")
        for i in self.items:
            status, why = i.verify(licensed)
            if status == "failed":
                return status, why
            if status == "unchecked":
                worst = (status, why)
        return worst

    def facts(self) -> list[Fact]:
        return [f for i in self.items for f in i.facts()]

    def declared(self) -> set[sp.Symbol]:
        return set().union(*[i.declared() for i in self.items])

    def latex(self) -> str:
        return r"\,".join(i.latex() for i in self.items)


def _leaves(items: Iterable[Item]) -> list[Item]:
    out: list[Item] = []
    for i in items:
        out.extend(_leaves(i.items) if isinstance(i, Prod) else [i])
    return out


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


#: step kinds that only name things (rewriting by definitions listed among the premises)
DEFINITIONAL_KINDS = frozenset({"rename"})


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
        """A naming step (``rename``: quantities rewritten by definitions that are
        premises): it proves nothing beyond its definitions, so it is counted apart from
        the checked steps."""
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


def _merge(*groups: Iterable) -> tuple:
    """Union of dependency tuples, by identity, in first-seen order."""
    out, seen = [], set()
    for g in groups:
        for d in g:
            key = id(d) if not isinstance(d, Clause) else ("clause", d.name, d.symbol)
            if key not in seen:
                seen.add(key)
                out.append(d)
    return tuple(out)


class _Problems:
    """Problems of one step, by severity: a *failed* step is wrong; an *unchecked* one is
    not confirmed (it rests on something the checker may not use)."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.unchecked: list[str] = []

    def add(self, status: str, why: str) -> None:
        if status == "failed":
            self.failed.append(why)
        elif status == "unchecked":
            self.unchecked.append(why)

    def fact(self, fact: Fact) -> None:
        self.add(*_fact_status(fact))

    @property
    def status(self) -> str:
        return "failed" if self.failed else "unchecked" if self.unchecked else "ok"

    @property
    def detail(self) -> str:
        return "; ".join(dict.fromkeys(self.failed + self.unchecked))


@dataclass
class Proof:
    r"""A proof: its premises and its list of (checked) steps.

    Steps are checked as they are added, in order; a step may only use facts that exist
    at that point (premises or earlier steps).  Every fact records the premises it rests
    on (``Fact.deps``).

    **Symbols.** ``constants`` are the theorem's fixed parameters (not random, the same at
    every step); ``indices`` are *variables* (:meth:`index`): a statement in them may hold
    for every value; every other symbol is a *step quantity* (``f(w_t)``, ``|g|^2``,
    ``E f(w_t)`` ...): a value at the current step, i.e. an implicit function of the step
    index (``step_index``; of every index if none is declared).

    **Universal statements and instances** (:meth:`relabel`, :meth:`sum_over`,
    :class:`IntegralOf`).  A fact holds *for every value* of a variable ``v`` only if the
    derivation used nothing particular about ``v`` (the eigenvariable condition of
    universal generalisation, e.g. Troelstra & Schwichtenberg, *Basic Proof Theory*, 2nd ed.,
    CUP 2000, §1.3): ``v`` is a declared index, and every premise the fact rests on either
    quantifies ``v`` itself (``forall=(v, ...)``, possibly over a range ``[lo, hi]``) or
    does not mention it, where a premise mentions ``v`` when ``v`` is free in it or -- for
    the step index -- when it contains a step quantity (which depends on ``v``
    implicitly).  When ``v`` is the step index the fact itself must contain no step
    quantity, else substituting ``v`` would change ``t`` but leave ``f(w_t)`` as it was.
    Only then is ``fact[v := e]`` an instance (universal instantiation), and only for an
    ``e`` in ``v``'s declared domain (``integer``, ``positive``, ...) and quantified range,
    which sympy must show from licensed declarations.  So a renaming such as
    ``y <= x - eta`` to ``F(t) <= F(t+1) - eta`` or ``0 <= -eta`` is not an instance (``x``
    and ``y`` are fixed quantities of the premise) and is reported unchecked; naming
    quantities is done by definitions that are premises (:meth:`rename`).

    **Declarations as facts.**  sympy's assumption system (``Pos``, interval lengths, index
    ranges) may use a symbol's declaration (``positive=True``...) only when a premise lists
    it (:meth:`assume_domain`), when it is an index (a variable ranges over its declared
    domain), or when a :meth:`positive` step derives it; otherwise the step is unchecked.
    """

    id: str
    title: str
    statement: str
    assumptions: list[Fact | Independence | Domain] = field(default_factory=list)
    constants: set[sp.Symbol] = field(default_factory=set)
    steps: list[Step] = field(default_factory=list)
    final: dict[str, sp.Expr] = field(default_factory=dict)
    indices: set[sp.Symbol] = field(default_factory=set)
    step_index: sp.Symbol | None = None
    #: symbol -> what its licensed declaration rests on (a Domain clause, a derivation)
    licensed: dict[sp.Symbol, tuple] = field(default_factory=dict)

    # -- premises -----------------------------------------------------------
    def assume_le(self, name: str, lhs: sp.Expr, rhs: sp.Expr, text: str = "",
                  forall: Iterable = ()) -> Fact:
        """Premise ``lhs <= rhs`` (``forall``: the variables it holds for every value of,
        each a symbol or ``(symbol, lo, hi)``)."""
        return self._premise(name, lhs, rhs, "le", text, forall)

    def assume_eq(self, name: str, lhs: sp.Expr, rhs: sp.Expr, text: str = "",
                  forall: Iterable = ()) -> Fact:
        """Premise (or definition) ``lhs = rhs`` (``forall`` as in :meth:`assume_le`)."""
        return self._premise(name, lhs, rhs, "eq", text, forall)

    def _premise(self, name, lhs, rhs, kind, text, forall) -> Fact:
        bounds = tuple(_bound(b) for b in forall)
        for s, _, _ in bounds:
            if s not in self.indices:
                raise ValueError(f"forall: {s} is not an index of proof {self.id}; "
                                 f"declare it with Proof.index (indices: {self.indices})")
        f = Fact(name, sp.sympify(lhs), sp.sympify(rhs), kind, "assumption", text,
                 forall=bounds)
        f.deps = (f,)
        self.assumptions.append(f)
        return f

    def assume_independent(
        self, name: str, noise: str, measurable: Iterable[str], text: str = "",
        forall: Iterable = (),
    ) -> Independence:
        """Zero-mean-noise premise (see :class:`Independence`)."""
        a = Independence(name, noise, frozenset(measurable), text,
                         tuple(_bound(b) for b in forall))
        self.assumptions.append(a)
        return a

    def assume_domain(self, name: str, symbols: Iterable[sp.Symbol], text: str = "") -> Domain:
        """Premise: the listed symbols lie in their declared domains (e.g. ``eta > 0``,
        ``T`` a positive integer); licenses sympy to use those declarations."""
        syms = tuple(symbols)
        for s in syms:
            if not _declared(s):
                raise ValueError(f"symbols: {s} has no declaration beyond real; got {syms}")
            if s in self.indices:
                raise ValueError(f"symbols: {s} is an index (its declaration is its range)")
        d = Domain(name, syms, text)
        for s in syms:
            self.licensed[s] = (Clause(name, s),)
        self.assumptions.append(d)
        return d

    def index(self, *symbols: sp.Symbol, step: bool = False) -> None:
        """Declare variables (a statement may hold for every value of them, over their
        declared domain, which is therefore licensed); ``step=True``: the step index on
        which the step quantities depend."""
        for s in symbols:
            if not isinstance(s, sp.Symbol) or s in self.constants:
                raise ValueError(f"symbols: an index must be a non-constant symbol, got {s}")
            self.indices.add(s)
            self.licensed[s] = ()
        if step:
            if len(symbols) != 1:
                raise ValueError(f"symbols: one step index, got {symbols}")
            self.step_index = symbols[0]

    # -- the quantifier bookkeeping ----------------------------------------
    def _is_quantity(self, s: sp.Basic) -> bool:
        return (isinstance(s, sp.Symbol) and not isinstance(s, sp.Dummy)
                and s not in self.constants and s not in self.indices)

    def _tied(self) -> set[sp.Symbol]:
        """Indices on which step quantities depend."""
        return {self.step_index} if self.step_index is not None else set(self.indices)

    def _mentions(self, dep) -> set[sp.Symbol]:
        """Symbols a premise (or declaration clause) mentions free."""
        bound = {b[0] for b in getattr(dep, "forall", ())}
        if isinstance(dep, Clause):
            syms: set = {dep.symbol}
            quantity = self._is_quantity(dep.symbol)
        elif isinstance(dep, Independence):
            syms, quantity = set(), True
        else:
            syms = dep.lhs.free_symbols | dep.rhs.free_symbols
            quantity = any(self._is_quantity(s) for s in syms)
        if quantity:
            syms = syms | self._tied()
        return syms - bound

    def _generalise(self, fact: Fact, var: sp.Basic) -> tuple[list[str], list[tuple]]:
        """Why ``fact`` is *not* shown to hold for every value of ``var`` (empty: it is),
        and the ranges ``(lo, hi)`` its premises quantify ``var`` over."""
        if not isinstance(var, sp.Symbol) or var not in self.indices:
            return [f"{var} is not a declared index, so no statement is proved for every "
                    f"value of it (a fixed quantity cannot be renamed)"], []
        problems, ranges = [], []
        for dep in fact.deps:
            if var in self._mentions(dep):
                problems.append(f"{var} is fixed by premise {dep.name} (it occurs there "
                                f"without 'for every {var}')")
            ranges += [(lo, hi) for s, lo, hi in getattr(dep, "forall", ()) if s == var]
        if var in self._tied():
            qs = sorted(str(s) for s in fact.lhs.free_symbols | fact.rhs.free_symbols
                        if self._is_quantity(s))
            if qs:
                problems.append(f"the fact contains step quantities {qs}, which depend on "
                                f"{var} implicitly")
        return problems, ranges

    def _within(self, var: sp.Symbol, e: sp.Expr, ranges: list[tuple], pr: _Problems,
                props: Iterable[str] = _PROPERTIES) -> None:
        """``e`` lies in ``var``'s declared domain (the properties ``props`` of it) and in
        every quantified range."""
        lic = self.licensed
        for prop in props:
            if getattr(var, f"is_{prop}") is True:
                pr.add(*_sign_check(e, prop, lic, f"{e} (for {var}, declared {prop})"))
        for lo, hi in ranges:
            if lo is not None:
                pr.add(*_sign_check(e - lo, "nonnegative", lic, f"{e} - {lo} (range of {var})"))
            if hi is not None:
                pr.add(*_sign_check(hi - e, "nonnegative", lic, f"{hi} - {e} (range of {var})"))

    def _licence_deps(self, symbols: Iterable[sp.Symbol]) -> tuple:
        return _merge(*[self.licensed[s] for s in symbols if s in self.licensed])

    def _zero(self, expr: sp.Expr, pr: _Problems, what: str) -> None:
        """``expr == 0`` by sympy, using licensed declarations only."""
        if not is_zero(expr):
            pr.add("failed", f"{what} does not simplify to 0")
        elif strip(expr, self.licensed) != expr and not is_zero(strip(expr, self.licensed)):
            pr.add("unchecked", f"{what} is 0 only by unlisted symbol declarations")

    def _items(self, certificate: Sequence[Item], pr: _Problems) -> tuple:
        """Check the certificate items; their dependencies."""
        deps: list = []
        for item in certificate:
            pr.add(*item.verify(self.licensed))
        for leaf in _leaves(certificate):
            for f in leaf.facts():
                deps.append(f.deps)
            deps.append(self._licence_deps(leaf.declared()))
            if isinstance(leaf, IntegralOf):
                why, ranges = self._generalise(leaf.fact, leaf.var)
                for w in why:
                    pr.add("unchecked", f"integral over {leaf.var}: {w}")
                if leaf.var in _bound_symbols(leaf.fact.lhs) | _bound_symbols(leaf.fact.rhs):
                    pr.add("failed", f"{leaf.var} is bound inside fact {leaf.fact.name}")
                for lo, hi in ranges:
                    if lo is not None:
                        pr.add(*_sign_check(leaf.a - lo, "nonnegative", self.licensed,
                                            f"{leaf.a} - {lo} (range of {leaf.var})"))
                    if hi is not None:
                        pr.add(*_sign_check(hi - leaf.b, "nonnegative", self.licensed,
                                            f"{hi} - {leaf.b} (range of {leaf.var})"))
        return _merge(*deps)

    def _range(self, var: sp.Symbol, lo: sp.Expr, hi: sp.Expr, pr: _Problems) -> None:
        """``var = lo..hi`` is an integer range (possibly empty, never reversed: sympy's
        Karr convention would turn a reversed sum into minus a sum) and ``var`` is not free
        in its bounds."""
        if not (isinstance(var, sp.Symbol) and var.is_integer):
            pr.add("failed", f"summation index {var} must be a symbol declared integer")
        if var in sp.sympify(lo).free_symbols | sp.sympify(hi).free_symbols:
            pr.add("failed", f"summation index {var} occurs free in the range {lo}..{hi}")
        lic = self.licensed
        pr.add(*_sign_check(sp.sympify(lo), "integer", lic, f"lower end {lo}"))
        pr.add(*_sign_check(sp.sympify(hi - lo), "integer", lic, f"length - 1 = {hi - lo}"))
        pr.add(*_sign_check(sp.sympify(hi - lo + 1), "nonnegative", lic,
                            f"number of terms {hi - lo + 1}"))

    # -- helpers ------------------------------------------------------------
    def _add(self, step: Step, t0: float) -> Step:
        step.seconds = time.perf_counter() - t0
        if step.fact is not None:
            step.fact.ok = step.status == "ok"
            step.fact.status = step.status
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
        fact.deps = _merge(*[f.deps for f in using])
        why = _with_using(why, using)
        pr = _Problems()
        for f in using:
            pr.fact(f)
        try:
            self._zero(substitute(lhs - rhs, using), pr, "the difference")
        except Exception as exc:  # sympy failure counts as a failed check
            pr.add("failed", f"sympy error: {exc}")
        step = Step("identity", fact.latex(), why, pr.status, pr.detail, fact=fact)
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
        pr = _Problems()
        for f in using:
            pr.fact(f)
        fact.deps = _merge(self._items(certificate, pr), *[f.deps for f in using])
        try:
            total = sp.Add(*[i.value() for i in certificate])
            self._zero(substitute(rhs - lhs - total, using), pr,
                       "rhs - lhs minus the certificate")
        except Exception as exc:
            pr.add("failed", f"sympy error: {exc}")
        cert_tex = " + ".join(i.latex() for i in certificate) or "0"
        step = Step(
            "inequality",
            fact.latex(),
            why,
            pr.status,
            pr.detail,
            certificate=rf"\text{{rhs}}-\text{{lhs}} = {cert_tex}",
            fact=fact,
        )
        self._add(step, t0)
        return fact

    def positive(
        self,
        s: sp.Symbol,
        certificate: Sequence[Item],
        why: str,
        name: str | None = None,
        using: Sequence[Fact] = (),
    ) -> Fact:
        """Step ``s > 0``, licensing ``s``'s declaration (``positive``/``nonnegative``):
        ``s - sum(certificate)`` (after the definitions in ``using``) simplifies to an
        expression sympy proves positive from licensed declarations, and each item is
        nonnegative.  Returns the fact ``0 <= s``."""
        t0 = time.perf_counter()
        fact = Fact(self._name(name), sp.Integer(0), s, "le", "step", why)
        pr = _Problems()
        for f in using:
            pr.fact(f)
        if not isinstance(s, sp.Symbol) or s.is_integer or not s.is_nonnegative:
            pr.add("failed", f"{s} must be a symbol declared positive or nonnegative "
                             "(not integer)")
        fact.deps = _merge(self._items(certificate, pr), *[f.deps for f in using])
        try:
            total = sp.Add(*[i.value() for i in certificate])
            rem = sp.simplify(normalise(substitute(s - total, using)))
            pr.add(*_sign_check(rem, "positive", self.licensed, f"{s} - certificate = {rem}"))
        except Exception as exc:
            pr.add("failed", f"sympy error: {exc}")
        step = Step("positivity", rf"0 < {latex(s)}", _with_using(why, using), pr.status,
                    pr.detail, fact=fact)
        self._add(step, t0)
        if step.status == "ok":
            self.licensed[s] = fact.deps
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
        pr = _Problems()
        pr.fact(fact)
        expr_l, expr_r = sp.expand(fact.lhs), sp.expand(fact.rhs)
        randoms = (expr_l.free_symbols | expr_r.free_symbols) - self.constants - self.indices
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
                    pr.add("failed", "not affine in the random symbols (E is only linear)")
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
        new.deps = _merge(fact.deps, independence)
        cited = ", ".join(i.name for i in independence) or "none"
        step = Step(
            "expectation",
            new.latex(),
            f"{why} [E of {fact.name}; zero-mean terms by: {cited}]",
            pr.status,
            pr.detail,
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
        """Sum a fact over ``var = lo..hi`` (finite sums of inequalities are monotone).

        Checked: the fact holds for *every* ``var`` (``var`` is a universally quantified
        index of it, see :class:`Proof`: unchecked otherwise), the range is an integer
        range that is not reversed, lies in ``var``'s declared domain and in every range
        its premises quantify ``var`` over, and ``var`` occurs neither in the bounds nor
        bound inside the fact (failed otherwise)."""
        t0 = time.perf_counter()
        lo, hi = sp.sympify(lo), sp.sympify(hi)
        pr = _Problems()
        pr.fact(fact)
        self._range(var, lo, hi, pr)
        if var in _bound_symbols(fact.lhs) | _bound_symbols(fact.rhs):
            pr.add("failed", f"{var} is already bound inside fact {fact.name}")
        problems, ranges = self._generalise(fact, var)
        for w in problems:
            pr.add("unchecked", f"the summand fact need not hold for every {var}: {w}")
        if isinstance(var, sp.Symbol):
            self._within(var, lo, ranges, pr, ("integer", "positive", "nonnegative"))
            self._within(var, hi, [(None, h) for _, h in ranges],
                         pr, ("integer", "negative", "nonpositive"))
        new = Fact(
            self._name(name),
            sp.Sum(fact.lhs, (var, lo, hi)),
            sp.Sum(fact.rhs, (var, lo, hi)),
            fact.kind,
            "step",
            why,
        )
        new.deps = _merge(fact.deps, self._licence_deps(lo.free_symbols | hi.free_symbols))
        step = Step("sum", new.latex(), why, pr.status, pr.detail, fact=new)
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
        ``summand == F(var+1) - F(var)``, over an integer range that is not reversed, with
        ``var`` not free in its bounds."""
        t0 = time.perf_counter()
        lo, hi = sp.sympify(lo), sp.sympify(hi)
        new = Fact(
            self._name(name),
            sp.Sum(summand, (var, lo, hi)),
            F(hi + 1) - F(lo),
            "eq",
            "step",
            why,
        )
        new.deps = _merge(*[f.deps for f in using],
                          self._licence_deps(lo.free_symbols | hi.free_symbols))
        pr = _Problems()
        for f in using:
            pr.fact(f)
        self._range(var, lo, hi, pr)
        try:
            self._zero(substitute(summand - (F(var + 1) - F(var)), using), pr,
                       "summand - (F(t+1) - F(t))")
        except Exception as exc:
            pr.add("failed", f"sympy error: {exc}")
        step = Step("telescope", new.latex(), _with_using(why, using), pr.status, pr.detail,
                    fact=new)
        self._add(step, t0)
        return new

    def relabel(
        self, fact: Fact, mapping: dict[sp.Symbol, sp.Expr], why: str, name: str | None = None
    ) -> Fact:
        """Universal instantiation: ``fact`` with each index ``v`` replaced by ``e``
        (simultaneously), accepted only when ``fact`` holds for every value of ``v`` and
        ``e`` lies in ``v``'s domain (the rule and its reason: :class:`Proof`); otherwise
        the step is *unchecked*.  A bound variable of the fact is never substituted and
        never captured."""
        t0 = time.perf_counter()
        pr = _Problems()
        pr.fact(fact)
        bound = _bound_symbols(fact.lhs) | _bound_symbols(fact.rhs)
        for v, e in mapping.items():
            e = sp.sympify(e)
            if isinstance(v, sp.Symbol) and v in self.constants:
                pr.add("unchecked", f"{v} is a constant of the theorem, not a variable")
                continue
            problems, ranges = self._generalise(fact, v)
            for w in problems:
                pr.add("unchecked", f"not an instance: {w}")
            if problems:
                continue
            if v in bound or e.free_symbols & bound:
                pr.add("failed", f"{v} := {e} would substitute or capture a bound variable")
            self._within(v, e, ranges, pr)
        mapping = {k: sp.sympify(v) for k, v in mapping.items()}
        new = Fact(
            self._name(name),
            fact.lhs.xreplace(mapping),
            fact.rhs.xreplace(mapping),
            fact.kind,
            "step",
            why,
        )
        new.deps = _merge(fact.deps, self._licence_deps(
            set().union(*[sp.sympify(e).free_symbols for e in mapping.values()])))
        step = Step("instance", new.latex(), why, pr.status, pr.detail, fact=new)
        self._add(step, t0)
        return new

    def rename(
        self, fact: Fact, definitions: Sequence[Fact], why: str, name: str | None = None
    ) -> Fact:
        """Rewrite ``fact`` by definitions ``s = e`` (equalities with a symbol on the left,
        each a premise or a step), replacing ``s`` by ``e`` on both sides, one definition
        after the other: equals for equals.  A naming step (definitional, ``≔``): it
        proves nothing beyond the definitions, which are printed among the premises."""
        t0 = time.perf_counter()
        pr = _Problems()
        pr.fact(fact)
        for d in definitions:
            pr.fact(d)
        try:
            lhs, rhs = substitute(fact.lhs, definitions), substitute(fact.rhs, definitions)
        except ValueError as exc:
            pr.add("failed", str(exc))
            lhs, rhs = fact.lhs, fact.rhs
        new = Fact(self._name(name), lhs, rhs, fact.kind, "step", why)
        new.deps = _merge(fact.deps, *[d.deps for d in definitions])
        why = f"{why} [by {', '.join(d.name for d in definitions)}]"
        step = Step("rename", new.latex(), why, pr.status, pr.detail, fact=new)
        self._add(step, t0)
        return new

    def unchecked(self, claim: str, reason: str) -> None:
        """Record a claim the checker cannot confirm (counted, shown as ``?``)."""
        self.steps.append(Step("unchecked", claim, reason, "unchecked", reason))

    # -- summary --------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """``checked``: distinct (by :attr:`Step.key`) derivation steps sympy confirmed;
        ``definitional``: naming steps (confirmed, but they prove nothing); ``failed``,
        ``unchecked``; ``premises``: the assumptions (hypotheses, definitions and domain
        declarations) the proof starts from, which are stated, not checked."""
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
                a.latex() if isinstance(a, Fact) else
                f"{a.name}: {a.latex()} -- {a.text}" if isinstance(a, Domain) else
                f"{a.name}: {a.text}"
                for a in self.assumptions
            ],
            "counts": self.counts(),
            "steps": [s.as_dict() for s in self.steps],
            "final": {k: str(v) for k, v in self.final.items()},
        }
