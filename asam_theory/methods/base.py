r"""Update rules: small objects with explicit state, vectorised over seeds.

Protocol (``docs/architecture.md``): ``state = rule.init(x0, problem, streams)``, then
``state, info = rule.step(state, problem, streams)``.  ``problem`` is the oracle
(:class:`~asam_theory.problems.Problem`), ``streams`` the per-seed random streams
(:class:`~asam_theory.rng.SeedStreams`).  Descent batches come from the ``"descent"`` stream,
ascent batches from ``"ascent"``: a SAM-type rule with ρ = 0 therefore reproduces SGD draw for
draw.

Every rule applies its *descent direction* through the same base step, the update of
``torch.optim.SGD`` (momentum μ, dampening δ, weight decay λ_wd, Nesterov):

.. math::
    d_t=g_t+\lambda_{wd}x_t,\quad b_{t}=\mu b_{t-1}+(1-\delta)d_t\ (b_0=d_0),\quad
    x_{t+1}=x_t-\eta\,(d_t+\mu b_t \text{ if Nesterov else } b_t),

(weight decay acts on the descent only, never on the ascent direction, as in davda54/sam).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from asam_theory.methods import _kernels
from asam_theory.validation import check_int, check_real

#: Guard in the normalised perturbation ε = ρ g / (‖g‖ + eps): davda54/sam's 1e-12.  A zero
#: ascent gradient gives ε = 0 (no perturbation) instead of 0/0.
DEFAULT_EPS = 1e-12


@dataclass(frozen=True)
class Cost:
    r"""Declared cost of one step, averaged over steps where a rule alternates (LookSAM every
    k, a Fisher mask every ``update_freq`` steps).

    All three are in **full-batch equivalents** of the rule's own descent batch ``b``: one
    gradient of the mean loss over ``b`` samples (one forward + backward over ``b`` samples,
    what SGD spends per step) is 1.

    * ``grads_per_step`` – per-sample gradient evaluations per step divided by ``b`` (SAM 2,
      K-SAM :math:`2k/b`, AsyncSAM :math:`1+b'/b`);
    * ``sequential_depth`` – gradient evaluations that must run one after another (what
      cannot overlap on two devices), same unit; forward-only passes are not included here
      (they are listed in ``forwards_per_step`` and also sit on the critical path);
    * ``forwards_per_step`` – forward-only (loss, no backward) per-sample evaluations per step
      divided by ``b`` (K-SAM's top-k selection pass: 1).

    :class:`~asam_theory.problems.CountingOracle` counts the first and the last in the
    engine; the tests assert counted == declared for every rule in
    :data:`asam_theory.methods.catalog.METHODS`.
    """

    grads_per_step: float
    sequential_depth: float
    forwards_per_step: float = 0.0


class Workspace:
    """Reusable ``(M, d)`` buffers so a step allocates nothing in the hot path.

    ``buf(name, like)`` is one persistent buffer; ``ring(name, k, i, like)`` slot ``i mod k``
    of a ring of ``k`` buffers (for arrays that must survive several steps, such as the
    iterates a stale rule still needs).
    """

    __slots__ = ("_bufs",)

    def __init__(self) -> None:
        self._bufs: dict = {}

    def buf(self, name: str, like: np.ndarray) -> np.ndarray:
        b = self._bufs.get(name)
        if b is None or b.shape != like.shape:
            b = self._bufs[name] = np.empty_like(like, order="C")
        return b

    def ring(self, name: str, k: int, i: int, like: np.ndarray) -> np.ndarray:
        return self.buf(f"{name}[{i % k}]", like)


@dataclass
class State:
    """Explicit state of a rule.  ``x`` (M, d) and step counter ``t`` always; ``buf`` the
    momentum buffer; ``extra`` holds rule-specific parts (histories, auxiliary sequences);
    ``ws`` the rule's reusable buffers.

    Steps write into reused buffers: the arrays of a state (and of a step's
    :class:`StepInfo`) stay valid until the rule has taken ``tau + 2`` more steps (two for
    rules without staleness) — copy what you keep longer, as the engine does when recording.
    """

    x: np.ndarray
    t: int = 0
    buf: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    ws: Workspace = field(default_factory=Workspace)
    #: squared row norms of ``x`` when the step computed them in passing (the engine's
    #: divergence check uses them instead of another pass over ``x``); ``None`` otherwise.
    #: A reused buffer: valid until the rule's next step
    x_sq: np.ndarray | None = None


class StepInfo:
    """What a step used, so penalty fidelity can be measured without re-deriving it.

    Attributes: ``x`` the iterate the step started from, ``descent_grad`` the gradient fed
    to the base step, ``perturbation`` the ε actually applied (``None`` for SGD and on the
    steps where a perturbing rule applies none: LookSAM's reuse steps, AE-SAM's SGD steps,
    SAMPa's first step), ``ascent_grad`` the raw ascent gradient ε was built from (or the
    gradient the step's decision was taken on).  ``skipped`` marks a step of a perturbing
    rule that applied no perturbation: its :meth:`fidelity` is NaN and its
    :meth:`perturbation_norm` 0, where SGD's fidelity is an error.

    :meth:`fresh_direction` is the unit exact gradient at ``x`` — the direction a noise-free
    synchronous SAM would use now — computed on demand; ``sam_direction`` (optional) is the
    unit *minibatch* SAM ascent direction at ``x`` where the rule computed one anyway (for
    the fidelity of rules that transform or reuse it).
    """

    __slots__ = ("x", "descent_grad", "_perturbation", "_scale", "ascent_grad", "skipped",
                 "sam_direction", "_problem", "_fresh")

    def __init__(self, problem, x, descent_grad, perturbation=None, ascent_grad=None,
                 skipped: bool = False, sam_direction=None, perturbation_scale=None) -> None:
        self._problem = problem
        self.x = x
        self.descent_grad = descent_grad
        self._perturbation = perturbation
        self._scale = perturbation_scale
        self.ascent_grad = ascent_grad
        self.skipped = bool(skipped)
        self.sam_direction = sam_direction
        self._fresh = None

    @property
    def perturbation(self) -> np.ndarray | None:
        r"""ε; given directly, or as ``perturbation_scale`` ``c`` (shape ``(M,)``) with
        :math:`\epsilon=c\,g'` formed here from ``ascent_grad`` on first use."""
        if self._perturbation is None and self._scale is not None:
            self._perturbation = self.ascent_grad * self._scale[:, None]
        return self._perturbation

    @perturbation.setter
    def perturbation(self, value: np.ndarray | None) -> None:
        self._perturbation, self._scale = value, None

    def fresh_direction(self) -> np.ndarray:
        if self._fresh is None:
            self._fresh = unit_rows(self._problem.grad(self.x))
        return self._fresh

    def fidelity(self) -> np.ndarray:
        r"""Cosine between the perturbation used and the fresh direction, per seed
        (:math:`\cos\angle(\epsilon_t,\nabla f(x_t))`; 1 for SAM with exact gradients); NaN
        on a skipped step."""
        if self.perturbation is None:
            if self.skipped:
                return np.full(self.x.shape[0], np.nan)
            raise ValueError("fidelity needs a perturbation; this rule uses none (SGD)")
        g = self._problem.grad(self.x)
        e = self.perturbation
        den = row_norms(e) * row_norms(g)
        # exact cosine (no norm guard); 0 where either vector vanishes (no direction to compare)
        return np.divide(np.einsum("md,md->m", e, g), den, out=np.zeros_like(den),
                         where=den > 0)

    def perturbation_norm(self) -> np.ndarray:
        """‖ε‖ per seed (0 on a skipped step; an error for SGD)."""
        if self.perturbation is None:
            if self.skipped:
                return np.zeros(self.x.shape[0])
            raise ValueError("perturbation_norm needs a perturbation; this rule uses none")
        return row_norms(self.perturbation)


def row_norms(a: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("md,md->m", a, a))


def unit_rows(a: np.ndarray, eps: float = DEFAULT_EPS) -> np.ndarray:
    return a / (row_norms(a) + eps)[:, None]


@dataclass(frozen=True)
class UpdateRule:
    """Common hyperparameters: ``lr`` (η), ``batch_size`` (b), base-step options."""

    name: ClassVar[str] = ""
    #: the rule reads sample indices or per-sample quantities, so it runs only on a
    #: :class:`~asam_theory.problems.FiniteSum` (K-SAM's top-k, a Fisher mask, ...)
    needs_finite_sum: ClassVar[bool] = False

    lr: float
    batch_size: int = 1
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        check_real("lr", self.lr, low=0.0, low_open=True)
        check_int("batch_size", self.batch_size, low=1)
        check_real("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        check_real("dampening", self.dampening, low=0.0, high=1.0)
        check_real("weight_decay", self.weight_decay, low=0.0)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0")

    # -- protocol ---------------------------------------------------------------------------
    @property
    def cost(self) -> Cost:
        raise NotImplementedError

    def realised_cost(self, state: State) -> Cost:
        """The declared cost per step of the run that ended in ``state``: :attr:`cost` for
        every rule whose cost does not depend on the data; rules that decide per step and
        per seed whether to pay (AE-SAM) declare it from the decisions they recorded."""
        return self.cost

    def validate(self, problem) -> None:
        """Check batch sizes against the oracle (``ValueError`` naming the parameter)."""
        problem.check_batch_size("batch_size", self.batch_size)

    def init(self, x0: np.ndarray, problem, streams) -> State:
        return State(x=np.array(x0, dtype=np.float64, copy=True))

    def step(self, state: State, problem, streams) -> tuple[State, StepInfo]:
        raise NotImplementedError

    # -- shared pieces ----------------------------------------------------------------------
    def descent_batch(self, problem, streams):
        return problem.sample_batch(streams, "descent", self.batch_size)

    def base_step(self, x: np.ndarray, g: np.ndarray, buf: np.ndarray | None,
                  out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """torch.optim.SGD's update with gradient ``g``; returns ``(x_next, buf)``.

        ``x_next`` is written to ``out`` when given (it must not alias ``x`` or ``g``)."""
        return self._base_step(x, g, buf, out, None)

    def base_step_sq(self, x: np.ndarray, g: np.ndarray, buf: np.ndarray | None,
                     out: np.ndarray, ws: Workspace,
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """:meth:`base_step` into ``out`` that also returns the squared row norms of
        ``x_next`` (one fused pass without momentum or weight decay)."""
        sq = ws.buf("x_sq", x[:, 0])
        x_next, buf = self._base_step(x, g, buf, out, sq)
        return x_next, buf, sq

    def _base_step(self, x, g, buf, out, sq):
        if not (self.weight_decay or self.momentum) and out is not None \
                and out.shape == x.shape == g.shape and x.ndim == 2:
            # x - lr g in one pass (and its squared row norms while the row is in cache)
            _kernels.sgd_into(x, g, float(self.lr), out,
                              sq if sq is not None else np.empty(x.shape[0]))
            return out, buf
        d = g + self.weight_decay * x if self.weight_decay else g
        if self.momentum:
            buf = d.copy() if buf is None else self.momentum * buf + (1 - self.dampening) * d
            d = d + self.momentum * buf if self.nesterov else buf
        x_next = np.multiply(d, -self.lr, out=out)  # x - lr d in two passes
        x_next += x
        if sq is not None:
            np.einsum("md,md->m", x_next, x_next, out=sq)
        return x_next, buf

    def config(self) -> dict:
        return {"type": self.name, "params": dataclasses.asdict(self)}

    def replace(self, **changes) -> UpdateRule:
        return dataclasses.replace(self, **changes)

    # -- linearisation (for stability limits on quadratics) ---------------------------------
    def companion(self, lam: np.ndarray, lr: float) -> np.ndarray | None:
        r"""Per-eigenvalue matrices (k, n, n) of the rule's *linear part* on
        :math:`f=\tfrac\lambda2x^2`, or ``None`` if the rule has no linear model.

        Normalised perturbations have norm ρ whatever the state: they are a bounded forcing
        and do not enter the linear part, so the stability limit of normalised rules is that
        of their base step.  Unnormalised (USAM-type) perturbations are linear and do enter.
        """
        return _delayed_companion(self, lam, lr, delayed=None, tau=0)


def _delayed_companion(rule: UpdateRule, lam: np.ndarray, lr: float, delayed: np.ndarray | None,
                       tau: int) -> np.ndarray:
    r"""Companion matrices of :math:`d_t=(\lambda+\lambda_{wd})x_t+c\,x_{t-\tau}` through the base
    step.  State :math:`z_t=(x_t,\dots,x_{t-\tau},b_{t-1})`; ``delayed`` is :math:`c` per
    eigenvalue (``None`` for 0)."""
    lam = np.asarray(lam, dtype=np.float64)
    k = lam.size
    n = tau + 2
    A = np.zeros((k, n, n))
    D = np.zeros((k, n))  # d_t as a row over the state
    D[:, 0] = lam + rule.weight_decay
    if delayed is not None:
        D[:, tau] += delayed
    mu, damp = rule.momentum, rule.dampening
    if mu:
        Bn = (1 - damp) * D
        Bn[:, n - 1] += mu
        step = D + mu * Bn if rule.nesterov else Bn
        A[:, n - 1] = Bn
    else:
        step = D
        A[:, n - 1, n - 1] = 0.0
    A[:, 0] = -lr * step
    A[:, 0, 0] += 1.0
    for i in range(1, tau + 1):
        A[:, i, i - 1] = 1.0
    return A


class SamOrSgdCost:
    """Mixin for rules that take a SAM step on some steps and an SGD step on the others and
    count the SAM steps per seed in ``state.extra["n_sam"]`` (AE-SAM, ARSAM): the realised
    cost is :math:`1+p` gradients and sequential depth per step, :math:`p` the mean fraction
    of SAM steps so far (the declared :attr:`cost` before the first step)."""

    def realised_cost(self, state: State) -> Cost:
        if state.t == 0:
            return self.cost
        p = float(np.mean(state.extra["n_sam"])) / state.t
        return Cost(1 + p, 1 + p)
