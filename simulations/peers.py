r"""Sweeps of the efficient-SAM peers: T1 where it applies, and the fidelity/cost frontier.

* :func:`t1_task` runs one catalogued method on one family of ``theorems.make_problem`` (or
  softmax regression) and measures :math:`\frac1T\sum_{t<T}\|\nabla f(x_t)\|^2` with the
  constants T1 needs (the machinery of :mod:`.theorems`: :class:`.theorems.Tracked` records
  the largest one-sample noise variance met and whether every point stayed in the region);
  :func:`t1_row` holds it to ``bounds.t1_bound`` in the form the method's docstring states.
  Two settings: ``"transient"`` (the families' own starts, minibatch noise: the
  :math:`2\Delta/(\eta T)` term dominates the bound) and ``"near_stationary"``
  (:data:`STATIONARY_FAMILIES`, exact gradients, a start :math:`x^\star+\rho\,\xi/\sqrt d`
  drawn per seed, so :math:`\Delta\approx\tfrac12L\rho^2` and T1's perturbation term
  :math:`L^2\rho^2` is the bound; a perturbation k times the radius drives SAM's 2-cycle of
  amplitude :math:`\eta k\rho\lambda/(2-\eta\lambda)` on a curvature
  :math:`\lambda\approx L`, i.e. :math:`\|\nabla f\|^2\approx(k\eta L/(2-\eta L))^2L^2
  \rho^2`, beyond the bound for k = 5 at :math:`\eta=0.8/L`).
* :func:`frontier_task` runs every catalogued method through a
  :class:`~asam_theory.problems.CountingOracle` and reports its counted cost per step (and the
  declared one), and the fidelity :math:`\cos\angle(\epsilon_t,\nabla f(x_t))` of the
  perturbation it actually applied to SAM's fresh direction (steps or seeds that apply none are
  left out and counted in ``perturbed_fraction``).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize

from asam_theory.engine import simulate
from asam_theory.methods import get_method
from asam_theory.problems import CauchyRegression, CountingOracle, FiniteSum, SoftmaxRegression
from asam_theory.rng import SeedStreams

from . import theorems as sims

#: methods T1 covers and in which form (the docstrings of the rules say why): "same_batch"
#: (the perturbation is built on the descent batch: T1's same-batch constants, every
#: minibatch loss L-smooth) or "independent".  Not covered: USAM (T2), LookSAM k > 1 (reuse
#: steps), K-SAM and AUSAM (biased batches), ARSAM (PSF reuse), RWP (unbounded Gaussian
#: noise), SAMPa λ > 0 (mixes an unperturbed gradient).
T1_FORMS: dict[str, str] = {"sam": "same_batch", "asyncsam": "independent",
                            "aesam": "same_batch", "ssam": "same_batch",
                            "bisam": "same_batch"}
#: per-method settings for problems of a few dozen samples and a few hundred steps
OVERRIDES: dict[str, dict] = {
    "arsam": {"window": 10, "blocks": 2, "warmup_steps": 20},
    "ausam": {"trans_epochs": 5},
    "ksam": {"k": 4},
    "looksam": {"k": 5, "alpha": 0.7},
}
T1_FAMILIES = ("quadratic", "finite_sum_quadratic", "cauchy_regression", "softmax")
#: the near-stationary setting's families: a stationary point whose curvature along the
#: perturbation is close to L (so a k-times perturbation shows), and a certified lower bound
#: close to f there (so Δ is small).  The outlier Cauchy regression (f* unknown, f ≥ 0 only)
#: and the separable softmax regression (its infimum lies at infinity, where the curvature
#: vanishes) cannot meet either; their clean / overlapping, ridge-regularised forms do.
STATIONARY_FAMILIES = ("quadratic", "finite_sum_quadratic", "cauchy_clean", "softmax_overlap")
#: the settings of :func:`t1_task`
T1_SETTINGS = ("transient", "near_stationary")


def make_problem(family: str):
    """``theorems.make_problem`` plus ``"softmax"`` (60 samples, 4 features + intercept, 3
    classes, d = 15, start 0), ``"softmax_overlap"`` (2 classes with identical means, so the
    probabilities stay near 1/2 where Böhning's curvature bound L is attained, ridge 0.01; d =
    10, start 0) and ``"cauchy_clean"`` (Cauchy regression without outliers: f* = 0 at
    x_true, Hessian 2 A^T A/n = L there)."""
    if family == "softmax":
        p = SoftmaxRegression.random(n=60, n_features=4, n_classes=3, seed=0)
        return p, np.zeros(p.dim)
    if family == "softmax_overlap":
        p = SoftmaxRegression.random(n=60, n_features=4, n_classes=2, separation=0.0,
                                     l2=0.01, seed=0)
        return p, np.zeros(p.dim)
    if family == "cauchy_clean":
        p = CauchyRegression(64, 5, outlier_fraction=0.0, seed=0)
        return p, np.zeros(p.dim)
    return sims.make_problem(family)


def stationary_point(problem, x0: np.ndarray) -> np.ndarray:
    """A stationary point: the known minimiser where there is one, else L-BFGS from ``x0``
    on the exact f and gradient (gradient tolerance 1e-12)."""
    if getattr(problem, "minimizer", None) is not None:
        return np.asarray(problem.minimizer, dtype=np.float64)
    if getattr(problem, "minimizers", None) is not None:
        return np.asarray(problem.minimizers[0], dtype=np.float64)
    res = scipy.optimize.minimize(
        lambda x: float(problem.f(x[None, :])[0]), np.asarray(x0, dtype=np.float64),
        jac=lambda x: problem.grad(x[None, :])[0], method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})
    return res.x


def lower_bound(problem, x_hat: np.ndarray) -> float:
    r"""A certified lower bound on f: ``f_star`` where known; for a μ-strongly convex problem
    (μ > 0) :math:`f(\hat x)-\|\nabla f(\hat x)\|^2/(2\mu)\le f^\star` (the
    Polyak-Łojasiewicz inequality that strong convexity implies), whichever is larger with
    ``f_lower_bound``."""
    if problem.f_star is not None:
        return float(problem.f_star)
    lb = float(problem.f_lower_bound)
    if problem.mu:
        g = problem.grad(x_hat[None, :])[0]
        lb = max(lb, float(problem.f(x_hat[None, :])[0]) - float(g @ g) / (2 * problem.mu))
    return lb


def build(name: str, problem, *, lr: float, rho: float, batch_size: int, **extra):
    kw = dict(OVERRIDES.get(name, {}))
    if name == "rwp" and isinstance(problem, SoftmaxRegression):
        kw["filter_size"] = problem.n_features
    kw.update(extra)
    return get_method(name).build(lr=lr, rho=rho, batch_size=batch_size, tau=1, **kw)


def applicable(name: str, problem) -> bool:
    rule = get_method(name).rule
    if rule.needs_finite_sum and not isinstance(problem, FiniteSum):
        return False
    return getattr(rule, "supports", lambda p: True)(problem)


def t1_task(cfg: dict) -> dict:
    r"""``cfg``: ``method``, ``family``, ``lr_frac`` (η = lr_frac / L), ``rho_frac``
    (ρ = rho_frac / L), ``sigma2`` (Gaussian noise of the quadratic), ``b``, ``steps``,
    ``n_seeds``, ``seed``; optional ``setting`` (:data:`T1_SETTINGS`, default
    ``"transient"``).  ``"near_stationary"`` ignores ``sigma2`` and ``b``: exact gradients
    (noise 0; finite sums b = n, the full batch, whose loss is f, so L is f's), each seed
    starts at :math:`x^\star+\rho\,\xi_i/\sqrt d` with :math:`\xi_i\sim\mathcal N(0,I)`
    drawn from ``seed``, and Δ is the largest :math:`f(x_{0,i})` less :func:`lower_bound`.
    Returns the row :func:`.theorems.evaluate_row` judges."""
    setting = cfg.get("setting", "transient")
    if setting not in T1_SETTINGS:
        raise ValueError(f"setting must be one of {list(T1_SETTINGS)}, got {setting!r}")
    base, x0 = make_problem(cfg["family"])
    finite = isinstance(base, FiniteSum)
    stationary = setting == "near_stationary"
    b = (base.n if finite else 1) if stationary else int(cfg["b"])
    sigma2 = 0.0 if stationary else float(cfg.get("sigma2") or 0.0)
    noisy = base if finite else base.with_noise(sigma2)
    prob = sims.Tracked(noisy)
    form = T1_FORMS[cfg["method"]]
    row = {"theorem": "T1", "tau": 0 if form == "same_batch" else 1,
           "ascent": "descent" if form == "same_batch" else "independent",
           "b": b, "bp": b, "setting": setting}
    L = base.L if stationary else sims.smoothness(row, base)
    lr, rho = cfg["lr_frac"] / L, cfg["rho_frac"] / L
    n_seeds, steps = int(cfg["n_seeds"]), int(cfg["steps"])
    if stationary:
        xs = stationary_point(base, x0)
        xi = np.random.default_rng([int(cfg["seed"]), 0x7E1]).standard_normal((n_seeds, base.dim))
        x0 = xs + rho * xi / math.sqrt(base.dim)
        delta = float(base.f(x0).max()) - lower_bound(base, xs)
    else:
        delta = float(base.f(x0[None, :])[0]) - base.f_lower_bound
    rule = build(cfg["method"], base, lr=lr, rho=rho, batch_size=b)
    tr = simulate(prob, rule, x0, steps, n_seeds, int(cfg["seed"]),
                  record=("mean_grad_norm2",), every=max(1, steps // 10),
                  check_stability=False)
    ok = ~tr.diverged
    keep = tr.times >= 1
    v = tr.metrics["mean_grad_norm2"][keep][:, ok]
    m = v.shape[1]
    mean = v.mean(axis=1) if m else np.full(keep.sum(), np.nan)
    se = v.std(axis=1, ddof=1) / math.sqrt(m) if m > 1 else np.zeros(keep.sum())
    sigma2_total = prob.max_noise_variance if finite else base.dim * sigma2
    return {**row, "L": L, "mu": base.mu, "delta": delta,
            "sigma2_total": sigma2_total, "lr": lr, "rho": rho,
            "n_diverged": int(tr.diverged.sum()),
            "in_region": bool(prob.outside is None or not prob.outside.any()),
            "times": tr.times[keep].tolist(), "mean": mean.tolist(), "se": se.tolist()}


def t1_configs(steps: int, n_seeds: int, seed: int = 0) -> list[dict]:
    """Every method of :data:`T1_FORMS` on every family it runs on, in both settings:
    ``"transient"`` on :data:`T1_FAMILIES` (η = 0.5/L, ρ = 0.2/L, σ² = 0.01, b = 4) and
    ``"near_stationary"`` on :data:`STATIONARY_FAMILIES` (η = 0.8/L, ρ = 0.05/L: small
    enough that five and twenty radii stay where the curvature is near L)."""
    out = []
    for setting, fams, lr_frac, rho_frac in (("transient", T1_FAMILIES, 0.5, 0.2),
                                             ("near_stationary", STATIONARY_FAMILIES, 0.8,
                                              0.05)):
        for fam in fams:
            p, _ = make_problem(fam)
            for name in T1_FORMS:
                if applicable(name, p):
                    out.append({"method": name, "family": fam, "setting": setting,
                                "lr_frac": lr_frac, "rho_frac": rho_frac, "sigma2": 0.01,
                                "b": 4, "steps": steps, "n_seeds": n_seeds, "seed": seed})
    return out


def frontier_task(cfg: dict) -> dict:
    """``cfg``: ``method``, ``family``, ``lr_frac``, ``rho`` (absolute), ``b``, ``steps``,
    ``n_seeds``, ``seed``.  Counted and declared cost per step, fidelity to SAM's fresh
    direction over the perturbations applied."""
    base, x0 = make_problem(cfg["family"])
    oracle = CountingOracle(base)
    rule = build(cfg["method"], base, lr=cfg["lr_frac"] / base.L, rho=float(cfg["rho"]),
                 batch_size=int(cfg["b"]))
    m, steps = int(cfg["n_seeds"]), int(cfg["steps"])
    streams = SeedStreams([int(cfg["seed"]) + i for i in range(m)])
    rule.validate(oracle)
    state = rule.init(np.tile(x0, (m, 1)), oracle, streams)
    fids, applied = [], 0
    for _ in range(steps):
        state, info = rule.step(state, oracle, streams)
        if info.perturbation is None:
            continue
        if info.skipped:  # pragma: no cover - a skipped step carries no perturbation
            continue
        g = base.grad(info.x)
        e = info.perturbation
        ne, ng = np.linalg.norm(e, axis=1), np.linalg.norm(g, axis=1)
        rows = (ne > 0) & (ng > 0)
        applied += int(rows.sum())
        fids.append(np.einsum("md,md->m", e[rows], g[rows]) / (ne[rows] * ng[rows]))
    counted = oracle.cost(rule.batch_size, steps, m)
    declared = rule.realised_cost(state)
    f = np.concatenate(fids) if fids else np.array([])
    return {"grads_counted": counted.grads_per_step, "forwards_counted":
            counted.forwards_per_step, "grads_declared": float(declared.grads_per_step),
            "forwards_declared": float(declared.forwards_per_step),
            "depth": float(declared.sequential_depth),
            "fidelity": float(f.mean()) if f.size else None,
            "fidelity_se": float(f.std(ddof=1) / math.sqrt(f.size)) if f.size > 1 else None,
            "perturbed_fraction": applied / (steps * m)}


def frontier_configs(methods: list[str], steps: int, n_seeds: int, seed: int = 0,
                     family: str = "softmax") -> list[dict]:
    p, _ = make_problem(family)
    return [{"method": n, "family": family, "lr_frac": 0.5, "rho": 0.05, "b": 8,
             "steps": steps, "n_seeds": n_seeds, "seed": seed}
            for n in methods if applicable(n, p)]
