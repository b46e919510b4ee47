r"""Monte Carlo sweeps for our convergence theorems T1-T3 (:mod:`asam_theory.theory.bounds`).

One sweep task, :func:`bound_task`, runs AsyncSAM (normalised for T1/T3, unnormalised =
stale USAM for T2) on one problem family for one configuration and *measures*; a second,
pure function, :func:`evaluate_row`, holds the measurement to the theorem's bound.  Keeping
the two apart lets the tests evaluate the same measured rows against a deliberately too
small bound (``bound_scale < 1``) and see the check fail.

Measured quantities (per seed, then mean and standard error over the ``n_seeds`` seeds):

* T1, T2: :math:`\frac1t\sum_{k<t}\|\nabla f(w_k)\|^2` (the engine's ``mean_grad_norm2``)
  at every recorded time ``t`` (the theorems hold for every horizon T, so each recorded
  t is a test of the bound with T = t);
* T3: :math:`f(w_t)-f^*` at every recorded t.

Constants entering the bounds:

* ``L``: the problem's smoothness constant; for τ = 0 SAM on the descent batch on a finite
  sum (T1's same-batch case needs *every minibatch loss* L-smooth) the component constant
  ``L_component`` (≥ L), and the step is then a fraction of ``1/L_component``;
* :math:`\Delta=f(w_0)-f_{\rm lb}` with ``f_lower_bound`` (T1, T2; a valid lower bound
  only loosens the bound), :math:`f(w_0)-f^*` (T3);
* :math:`\sigma^2` — the bounds' *total* variance of one sample's gradient noise,
  :math:`\mathbb E\|\nabla f_1(x)-\nabla f(x)\|^2\le\sigma^2`.  Gaussian noise
  (``problem.with_noise(s2)``, per-coordinate variance ``s2``): :math:`\sigma^2=d\,s2`.
  Finite sums: the variance depends on x, so :math:`\sigma^2` is the maximum of the exact
  ``noise_variance(x, 1)`` over **every point at which a stochastic gradient was
  evaluated** (the iterates :math:`w_{t-\tau}` of the ascent and the perturbed points
  :math:`w_t+\epsilon_t` of the descent, all seeds) — the proofs' variance assumption is
  used exactly at those points.  Sampling is without replacement, whose variance
  :math:`\frac{n-b}{n-1}\frac{S(x)}{b}\le\frac{S(x)}{b}`, so :math:`\sigma^2/b` bounds it.

Scope: TwoBasin and MatrixFactorization have ``L`` only on a ball (``region``).  The proofs
use smoothness between :math:`w_t`, :math:`w_t+\epsilon_t` and :math:`w_{t+1}`; the ball is
convex, so it suffices that every point at which f's gradient was evaluated (iterates,
stale iterates, perturbed points, all seeds) lies in it.  A run where one did not is
"out_of_scope": the bound does not apply and it counts neither as a pass nor a failure.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from asam_theory.engine import simulate
from asam_theory.methods import AsyncSAM
from asam_theory.problems import (
    CauchyRegression,
    FiniteSum,
    FiniteSumQuadratic,
    MatrixFactorization,
    Problem,
    ProblemWrapper,
    Quadratic,
    TwoBasin,
)
from asam_theory.theory import bounds

FAMILIES = ("quadratic", "finite_sum_quadratic", "two_basin", "cauchy_regression",
            "matrix_factorization")
FINITE_SUMS = ("finite_sum_quadratic", "cauchy_regression")
#: families with mu > 0 (T3 needs the PL inequality, which mu-strong convexity gives)
PL_FAMILIES = ("quadratic", "finite_sum_quadratic")
TAUS = (0, 1, 2, 4, 8)
#: violation: the measured mean exceeds the bound by more than Z_VIOLATION standard errors
Z_VIOLATION = 3.0
#: relative slack for floating-point rounding when the SE is 0 (deterministic runs): the
#: engine's sums of T squared norms and the bound agree to ~1e-13 relative
ROUNDING = 1e-9

# --------------------------------------------------------------------------- problems


def make_problem(family: str) -> tuple[Problem, np.ndarray]:
    """The fixed instance of ``family`` and its start ``x0`` (deterministic).

    * quadratic: spectrum (4, 2, 1, 0.5, 0.25), rotated; L = 4, mu = 0.25;
    * finite_sum_quadratic: n = 32 heterogeneous components in d = 5, L ≈ 1.37, mu ≈ 1.05,
      L_component = 2;
    * two_basin: d = 2, sharp 8 / flat 1, region ‖x‖ ≤ 1.5 (L ≈ 56.2 there);
    * cauchy_regression: n = 64, d = 5, 10 % outliers (L ≈ 0.585, global);
    * matrix_factorization: 4×3 rank 2 (d = 14), region ‖x‖ ≤ 6.48 (L ≈ 67.4 there).
    """
    rng = np.random.default_rng(7)
    if family == "quadratic":
        p = Quadratic([4.0, 2.0, 1.0, 0.5, 0.25], rotate=True, seed=1)
        return p, p.minimizer + rng.standard_normal(p.dim)
    if family == "finite_sum_quadratic":
        p = FiniteSumQuadratic.random(32, 5, L=2.0, kappa=10.0, heterogeneity=1.0, seed=2)
        return p, p.minimizer + rng.standard_normal(p.dim)
    if family == "two_basin":
        # start on the flat side of the barrier, well inside the ball of radius 1.5
        return TwoBasin(2, radius=1.5), np.array([0.3, 0.8])
    if family == "cauchy_regression":
        return CauchyRegression(64, 5, seed=0), rng.standard_normal(5)
    if family == "isotropic_quadratic":
        # f = |x|^2/2 in d = 16 (L = mu = 1): the noise and perturbation terms of the
        # bounds are attained or nearly so here (see ``dominant_design``); Delta = 1/2
        p = Quadratic([1.0] * 16)
        return p, np.full(p.dim, 0.25)
    if family == "matrix_factorization":
        p = MatrixFactorization(4, 3, 2, seed=0)
        # norm ≈ 2.6, inside the ball of radius 6.48, away from the saddle at 0
        return p, 0.5 * np.random.default_rng(3).standard_normal(p.dim)
    raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def one_sample_variance(problem: FiniteSum, x: np.ndarray) -> np.ndarray:
    r"""Exact :math:`S(x)=\frac1n\sum_i\|\nabla f_i(x)-\nabla f(x)\|^2
    =\frac1n\sum_i\|\nabla f_i(x)\|^2-\|\nabla f(x)\|^2` per row, which equals
    ``problem.noise_variance(x, 1)``; closed forms for the two finite sums of the sweep
    (a third of the cost of the generic path, which forms every component's gradient):

    * :class:`FiniteSumQuadratic`, :math:`\nabla f_i=H_ix-h_i`, :math:`h_i=H_is_i`:
      :math:`\frac1n\sum_i\|\nabla f_i\|^2=x^\top\overline{H^2}x-2x^\top\overline{Hh}
      +\overline{\|h\|^2}`;
    * :class:`CauchyRegression`, :math:`\nabla f_i=\psi'(r_i)a_i`:
      :math:`\frac1n\sum_i\psi'(r_i)^2\|a_i\|^2`.
    """
    x = np.asarray(x, dtype=np.float64)
    if type(problem) is FiniteSumQuadratic:
        c = _fsq_moments(problem)
        second = np.einsum("mi,mi->m", x @ c[0], x) - 2 * x @ c[1] + c[2]
    elif type(problem) is CauchyRegression:
        r = x @ problem.A.T - problem.y
        w = (2 * r / (1 + r**2)) ** 2
        second = w @ np.einsum("nd,nd->n", problem.A, problem.A) / problem.n
    else:
        return problem.noise_variance(x, 1)
    g = problem.grad(x)
    return np.maximum(second - np.einsum("md,md->m", g, g), 0.0)


def _fsq_moments(p: FiniteSumQuadratic) -> tuple[np.ndarray, np.ndarray, float]:
    cached = getattr(p, "_sweep_moments", None)
    if cached is None:
        H2 = np.einsum("nij,njk->ik", p.Hs, p.Hs) / p.n
        Hh = np.einsum("nij,nj->i", p.Hs, p.HS) / p.n
        hh = float(np.mean(np.einsum("ni,ni->n", p.HS, p.HS)))
        cached = (H2, Hh, hh)
        p._sweep_moments = cached
    return cached


class Tracked(ProblemWrapper):
    r"""A problem that records, for every point ``x`` at which a gradient is evaluated
    (``grad`` and ``batch_grad``), whether it lies in the problem's ``region`` (per seed)
    and, for a finite sum, the largest exact one-sample noise variance
    ``noise_variance(x, 1)`` (over all seeds).  Everything else is delegated unchanged, so
    the dynamics are the wrapped problem's draw for draw."""

    kind = "tracked"

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem)
        self._finite_sum = isinstance(problem, FiniteSum)
        self.max_noise_variance = 0.0
        self.outside: np.ndarray | None = None
        self.n_points = 0

    def _track(self, x: np.ndarray, stochastic: bool) -> None:
        x = np.asarray(x)
        if self.outside is None:
            self.outside = np.zeros(x.shape[0], dtype=bool)
        self.n_points += 1
        if self.region is not None:
            self.outside |= ~self.region.contains(x)
        if self._finite_sum and stochastic:
            v = one_sample_variance(self.base, x)
            v = v[np.isfinite(v)]
            if v.size:
                self.max_noise_variance = max(self.max_noise_variance, float(v.max()))

    def grad(self, x):
        self._track(x, stochastic=False)
        return self.base.grad(x)

    def batch_grad(self, x, batch, out=None):
        # a finite sum's batch None is the full batch: the exact gradient, no noise
        self._track(x, stochastic=batch is not None)
        return self.base.batch_grad(x, batch, out)


# --------------------------------------------------------------------------- task


def _same_batch(cfg: dict) -> bool:
    return cfg["tau"] == 0 and cfg["ascent"] == "descent"


def smoothness(cfg: dict, problem: Problem) -> float:
    """The L the bound uses: ``L_component`` for T1's same-batch case on a finite sum (every
    minibatch loss must be L-smooth), else the problem's ``L``."""
    if cfg["theorem"] == "T1" and _same_batch(cfg) and isinstance(problem, FiniteSum):
        return max(problem.L, problem.L_component)
    return problem.L


def bound_task(cfg: dict) -> dict:
    r"""Run one configuration and measure (no bound is applied here; see :func:`evaluate_row`).

    ``cfg``: ``theorem`` (T1 | T2 | T3), ``family``, ``tau``, ``ascent`` ("independent" |
    "descent"), ``lr_frac`` (η = lr_frac / L), ``rho_frac`` (ρ = rho_frac / L), ``sigma2``
    (per-coordinate Gaussian variance; ``None`` for finite sums, whose noise is intrinsic),
    ``b``, ``bp`` (b′), ``steps``, ``n_seeds``, ``seed``; optional ``n_records`` (default
    20 recorded horizons) and ``x0`` (default: :func:`make_problem`'s start).

    Returns the constants (L, mu, Δ, total σ², η, ρ), the recorded times and the seed mean and
    standard error of the measured quantity at each, ``n_diverged`` and ``in_region``.
    """
    theorem, family = cfg["theorem"], cfg["family"]
    base, x0 = make_problem(family)
    if cfg.get("x0") is not None:  # an explicit start (the tests use one to leave the region)
        x0 = np.asarray(cfg["x0"], dtype=np.float64)
    finite = isinstance(base, FiniteSum)
    s2 = cfg.get("sigma2")
    if finite:
        if s2 not in (None, 0, 0.0):
            raise ValueError("sigma2 must be None for a finite sum (its noise is intrinsic)")
        noisy: Problem = base
    else:
        noisy = base.with_noise(float(s2 or 0.0))
    prob = Tracked(noisy)
    L = smoothness(cfg, base)
    lr = cfg["lr_frac"] / L
    rho = cfg["rho_frac"] / L
    b, bp = int(cfg["b"]), int(cfg["bp"])
    # an exact oracle gives identical seeds: one seed is the whole distribution
    exact_oracle = (not finite and not s2) or (finite and b >= base.n and
                                               (cfg["ascent"] == "descent" or bp >= base.n))
    n_seeds = 1 if exact_oracle else int(cfg["n_seeds"])
    rule = AsyncSAM(lr=lr, rho=rho, tau=int(cfg["tau"]), normalize=not theorem.startswith("T2"),
                    batch_size=b,
                    ascent_batch_size=None if cfg["ascent"] == "descent" else bp,
                    ascent_batch=cfg["ascent"])
    steps = int(cfg["steps"])
    every = max(1, steps // int(cfg.get("n_records", 20)))
    name = "f" if theorem == "T3" else "mean_grad_norm2"
    tr = simulate(prob, rule, x0, steps, n_seeds, int(cfg["seed"]), record=(name,),
                  every=every, check_stability=False)
    f_ref = base.f_star if theorem == "T3" else base.f_lower_bound
    f0 = float(base.f(x0[None, :])[0])
    vals = tr.metrics[name]
    if theorem == "T3":
        vals = vals - f_ref
    ok = ~tr.diverged
    keep = tr.times >= 1
    v = vals[keep][:, ok]
    m = v.shape[1]
    mean = v.mean(axis=1) if m else np.full(keep.sum(), np.nan)
    se = v.std(axis=1, ddof=1) / math.sqrt(m) if m > 1 else np.zeros(keep.sum())
    if finite:
        sigma2_total = prob.max_noise_variance
    else:
        sigma2_total = base.dim * float(s2 or 0.0)
    return {
        "L": L, "mu": base.mu, "delta": f0 - f_ref, "sigma2_total": sigma2_total,
        "lr": lr, "rho": rho, "n_seeds_run": n_seeds, "n_diverged": int(tr.diverged.sum()),
        "in_region": bool(prob.outside is None or not prob.outside.any()),
        "has_region": base.region is not None,
        "times": tr.times[keep].tolist(), "mean": mean.tolist(), "se": se.tolist(),
    }


# --------------------------------------------------------------------------- evaluation


def theorem_bound(row: dict, t: int) -> float:
    """The theorem's bound for the row's constants at horizon ``t``."""
    th = row["theorem"]
    if th == "T1":
        return bounds.t1_bound(row["delta"], row["L"], row["rho"], row["lr"], t,
                               row["sigma2_total"], row["b"], row["bp"],
                               same_batch=_same_batch(row))
    if th == "T2":
        # the ascent on the descent batch of step t - tau (tau >= 1): b' := b (bounds.t2_bound)
        bp = row["b"] if row["ascent"] == "descent" else row["bp"]
        return bounds.t2_bound(row["delta"], row["L"], row["rho"], row["lr"], row["tau"], t,
                               row["sigma2_total"], row["b"], bp)
    if th == "T3":
        return bounds.t3_bound(row["delta"], row["L"], row["mu"], row["rho"], row["lr"], t,
                               row["sigma2_total"], row["b"])
    if th == "T1-sharp":  # independent perturbation only (the theorem's hypothesis)
        return bounds.t1_sharp_bound(row["delta"], row["L"], row["rho"], row["lr"], t,
                                     row["sigma2_total"], row["b"])
    if th == "T2-sharp":
        bp = row["b"] if row["ascent"] == "descent" else row["bp"]
        return bounds.t2_sharp_bound(row["delta"], row["L"], row["rho"], row["lr"],
                                     row["tau"], t, row["sigma2_total"], row["b"], bp)
    raise ValueError(f"theorem must be T1, T2, T3, T1-sharp or T2-sharp, got {th!r}")


def evaluate_row(row: dict, bound_scale: float = 1.0) -> dict:
    r"""Hold a measured row to its bound (times ``bound_scale``; 1 = the theorem) at every
    recorded time; return a compact row (the per-time series removed) with the worst time's
    ``measured``, ``se``, ``bound``, ``ratio`` = measured/bound, ``z`` = (measured −
    bound)/SE and ``status``:

    * ``"diverged"`` — a seed diverged (the config fails);
    * ``"out_of_scope"`` — a gradient was evaluated outside ``region`` (L does not hold);
    * ``"violation"`` — at some recorded time the mean exceeds the bound by more than
      ``Z_VIOLATION`` standard errors (plus ``ROUNDING`` relative, for SE = 0);
    * ``"pass"``.
    """
    out = {k: v for k, v in row.items() if k not in ("times", "mean", "se")}
    times, mean, se = row["times"], np.asarray(row["mean"], float), np.asarray(row["se"], float)
    bnd = np.array([bound_scale * theorem_bound(row, int(t)) for t in times])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = mean / bnd
    excess = mean - bnd - Z_VIOLATION * se - ROUNDING * np.abs(bnd)
    i = int(np.nanargmax(ratio)) if np.isfinite(ratio).any() else len(times) - 1
    out.update(worst_t=int(times[i]), measured=float(mean[i]), se=float(se[i]),
               bound=float(bnd[i]), ratio=float(ratio[i]),
               z=float((mean[i] - bnd[i]) / se[i]) if se[i] > 0 else None,
               final_ratio=float(ratio[-1]))
    if row["n_diverged"] > 0 or not np.all(np.isfinite(mean)):
        status = "diverged"
    elif not row["in_region"]:
        status = "out_of_scope"
    elif np.any(excess > 0):
        status = "violation"
    else:
        status = "pass"
    out["status"] = status
    return out


# --------------------------------------------------------------------------- designs

#: the axes of the sweep per theorem (full mode = their product); rho = rho_frac / L
AXES: dict[str, dict[str, tuple]] = {
    "T1": {"lr_frac": (0.1, 0.5, 1.0), "rho_frac": (0.0, 0.1, 0.5, 1.0),
           "sigma2": (0.0, 0.01, 0.1), "b": (1, 4), "bp": (1, 8)},
    # T2 needs rho < 1/L: rho_frac < 1
    "T2": {"lr_frac": (0.1, 0.5, 1.0), "rho_frac": (0.0, 0.3, 0.6, 0.9),
           "sigma2": (0.0, 0.01, 0.1), "b": (1, 4), "bp": (1, 8)},
    "T3": {"lr_frac": (0.1, 0.5, 1.0), "rho_frac": (0.0, 0.1, 0.5, 1.0),
           "sigma2": (0.0, 0.01, 0.1), "b": (1, 4), "bp": (1, 8)},
}
#: finite sums: the noise is the sampling (sigma2 axis unused), batch sizes 1, 4, 16 of n
FINITE_B = (1, 4, 16)


def axes_for(theorem: str, family: str) -> dict[str, tuple]:
    """:data:`AXES` of ``theorem`` adapted to ``family`` (finite sums: ``sigma2 = None``,
    ``b`` in :data:`FINITE_B`)."""
    ax = dict(AXES[theorem])
    if family in FINITE_SUMS:
        ax.update(sigma2=(None,), b=FINITE_B)
    return ax


def _ascents(theorem: str, tau: int) -> tuple[str, ...]:
    """Ascent-batch modes a theorem covers at this tau.  T1 at tau = 0: "independent" (own
    batch, independent constants) and "descent" (= SAM, same-batch constants).  For
    tau >= 1 the descent batch of step t - tau is independent of step t's, so both modes
    use the independent constants.  T2/T3 are proved only for a perturbation independent
    of the descent noise, so at tau = 0 only "independent"."""
    if tau == 0 and theorem != "T1":
        return ("independent",)
    return ("independent", "descent")


def design(theorem: str, mode: str, steps: int, n_seeds: int, seed: int = 0) -> list[dict]:
    """The configs of a theorem's sweep (families: :data:`FAMILIES`, :data:`PL_FAMILIES`
    for T3; taus :data:`TAUS`).

    * ``full``: every family × tau × ascent mode × the product of :func:`axes_for`;
    * ``default``: every family × tau × ascent mode with two points of that product (one
      for the stale descent-batch ascent, tau >= 1), chosen by rotating each axis with its
      own offset (depending on family, tau and mode indices), so that every value of every
      axis occurs many times;
    * ``quick``: one point per family with the taus spread over the families so that every
      family and every tau occurs, plus T1's tau = 0 same-batch (SAM) case.

    With ascent "descent" b' is b (the ascent reuses a descent batch).
    """
    if mode not in ("quick", "default", "full"):
        raise ValueError(f"mode must be quick, default or full, got {mode!r}")
    fams = PL_FAMILIES if theorem == "T3" else FAMILIES
    out: list[dict] = []

    def add(family: str, tau: int, ascent: str, combo: dict) -> None:
        c = dict(combo)
        if ascent == "descent":
            c["bp"] = c["b"]
        out.append({"theorem": theorem, "family": family, "tau": tau, "ascent": ascent, **c,
                    "steps": steps, "n_seeds": n_seeds})

    for fi, fam in enumerate(fams):
        ax = axes_for(theorem, fam)
        names = list(ax)
        if mode == "full":
            for tau in TAUS:
                for asc in _ascents(theorem, tau):
                    for vals in itertools.product(*ax.values()):
                        add(fam, tau, asc, dict(zip(names, vals, strict=True)))
        elif mode == "default":
            for ti, tau in enumerate(TAUS):
                for ai, asc in enumerate(_ascents(theorem, tau)):
                    # two points for the method's own design ("independent") and for SAM
                    # (tau = 0 on the descent batch), one for the stale descent-batch ascent
                    k = 1 if asc == "descent" and tau > 0 else 2
                    for j in range(k):
                        add(fam, tau, asc, {
                            n: ax[n][(j * (ni + 1) + fi + ti * (ni + 2) + ai) % len(ax[n])]
                            for ni, n in enumerate(names)})
        else:
            mid = {n: v[min(1, len(v) - 1)] for n, v in ax.items()}
            for tau in TAUS[fi::len(fams)]:
                add(fam, tau, "independent", {**mid, "lr_frac": ax["lr_frac"][-1 - fi % 2]})
    if mode == "quick" and theorem == "T1":
        mid = {n: v[1] for n, v in AXES["T1"].items()}
        add("quadratic", 0, "descent", mid)
    out = _dedupe(out)
    for i, c in enumerate(out):
        c["seed"] = seed + 1000 * i
    return out


#: configurations of ``dominant_design``: (theorem, tau, lr_frac, rho_frac, sigma2 per
#: coordinate, b, b') on the isotropic quadratic, each making one term of the bound dominate
DOMINANT: dict[str, tuple[tuple, ...]] = {
    # T1 / T1-sharp: noise only (T1-sharp attained in expectation), and noise with rho
    "T1": (("noise", 1, 1.0, 0.0, 0.25, 1, 1), ("noise+rho", 4, 1.0, 0.5, 0.0625, 4, 4)),
    # T2 / T2-sharp: ascent noise (b' = 1, rho = 0.9/L) and descent noise (b = 1, b' = 16)
    "T2": (("ascent noise", 2, 1.0, 0.9, 0.25, 4, 1), ("descent noise", 0, 1.0, 0.5, 0.25, 1,
                                                         16)),
    # T3: noise (rho = 0) and perturbation (sigma2 = 0) at lr = 0.95/L, mu = L
    "T3": (("noise", 1, 0.95, 0.0, 0.25, 1, 1), ("rho", 0, 0.95, 0.5, 0.0, 1, 1)),
}


def dominant_design(theorem: str, steps: int, n_seeds: int, seed: int = 0) -> list[dict]:
    r"""Configurations on ``isotropic_quadratic`` (:math:`f=\tfrac12\|x\|^2`, d = 16,
    L = μ = 1) where a term of the theorem's bound *dominates and is (nearly) attained*, so
    that halving it is seen (:data:`DOMINANT`).  Exact expectations there, with
    :math:`c=\eta L`, perturbation :math:`\epsilon_t` independent of the descent noise
    :math:`\xi_t` (variance :math:`\sigma^2/b`):

    * normalised AsyncSAM at c = 1: :math:`w_{t+1}=-\epsilon_t-\xi_t/L`, so
      :math:`\mathbb E\|\nabla f(w_{t+1})\|^2=L^2\rho^2+\sigma^2/b` for every τ and
      :math:`\frac1T\sum_{t<T}\mathbb E\|\nabla f(w_t)\|^2=\frac{2L\Delta}T
      +(1-\frac1T)(L^2\rho^2+\frac{\sigma^2}b)` — T1-sharp at c = 1 exactly, T1 less
      :math:`(L^2\rho^2+\sigma^2/b)/T`;
    * stale USAM at c = 1: :math:`G_{t+1}=rG_{t-\tau}+r\sigma^2/b'+\sigma^2/b`,
      :math:`r=L^2\rho^2`, whose limit :math:`(r\sigma^2/b'+\sigma^2/b)/(1-r)` is T2's
      noise part exactly (T2-sharp = T2 at c = 1);
    * normalised AsyncSAM under T3 at c < 1, μ = L: with ρ = 0,
      :math:`\mathbb Ef(w_\infty)-f^*=\frac{\eta\sigma^2}{2b(2-c)}` against the bound's
      :math:`\frac{\eta\sigma^2}{2b}` (ratio 1/(2 − c) = 0.95 at c = 0.95); with σ² = 0, τ
      = 0 the 2-cycle :math:`\pm c\rho/(2-c)` gives :math:`f=\frac L2\frac{c^2\rho^2}
      {(2-c)^2}`, 0.82 of the bound's :math:`L^2\rho^2/(2\mu)` at c = 0.95.

    Four recorded horizons per run (the Bonferroni false-alarm rate of an attained bound at 3
    SE is at most 4 x 0.00135)."""
    if theorem not in DOMINANT:
        raise ValueError(f"theorem must be one of {list(DOMINANT)}, got {theorem!r}")
    out = []
    for i, (name, tau, lr_frac, rho_frac, s2, b, bp) in enumerate(DOMINANT[theorem]):
        out.append({"theorem": theorem, "family": "isotropic_quadratic", "term": name,
                    "tau": tau, "ascent": "independent", "lr_frac": lr_frac,
                    "rho_frac": rho_frac, "sigma2": s2, "b": b, "bp": bp, "steps": steps,
                    "n_seeds": n_seeds, "n_records": 4, "seed": seed + 1000 * i})
    return out


def _dedupe(cfgs: list[dict]) -> list[dict]:
    seen, out = set(), []
    for c in cfgs:
        key = tuple(c.items())
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


# --------------------------------------------------------------------------- exact (T1 floor)


def deterministic_floor_task(cfg: dict) -> dict:
    r"""Deterministic normalised AsyncSAM with staleness ``tau`` at η = 1/L on
    :math:`f=\tfrac12x^\top Hx` (rotated): the time average
    :math:`\frac1T\sum_{t<T}\|\nabla f(w_t)\|^2` against T1's bound
    :math:`2\Delta/(\eta T)+L^2\rho^2`, and the tail average (second half) against the floor
    :math:`L^2\rho^2`.

    At η = 1/L the top eigen-component after a step is :math:`-\rho\,u_1` whatever τ is
    (:math:`x_1-\frac1L L(x_1+\rho u_1)`), so once the stale direction aligns with
    :math:`\pm v_1` the gradient norm is exactly :math:`L\rho`: the floor is attained with
    staleness too."""
    lam = np.asarray(cfg["eigenvalues"], dtype=float)
    p = Quadratic(lam, rotate=True, seed=cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    x0 = p.eigenvectors @ rng.uniform(0.2, 1.0, lam.size)
    L, rho, T = p.L, cfg["rho"], int(cfg["steps"])
    tr = simulate(p, AsyncSAM(lr=1.0 / L, rho=rho, tau=int(cfg["tau"])), x0, T,
                  record=("grad_norm2", "mean_grad_norm2"), every=1, check_stability=False)
    g = tr.metrics["grad_norm2"][:T, 0]
    delta = float(p.f(x0[None, :])[0]) - p.f_star
    bound = bounds.t1_bound(delta, L, rho, 1.0 / L, T)
    measured = float(tr.metrics["mean_grad_norm2"][-1, 0])
    floor = L**2 * rho**2
    return {"L": L, "delta": delta, "measured": measured, "bound": bound,
            "floor": floor, "tail_mean": float(g[T // 2:].mean()),
            "tail_ratio": float(g[T // 2:].mean() / floor),
            "diverged": bool(tr.diverged[0])}
