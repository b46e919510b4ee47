r"""Sweep tasks for the gradient-norm-penalty claims (``asam_theory.claims.penalty``).

* :func:`remainder_task` — T4(a): the Taylor remainder
  :math:`R(\rho)=\nabla f(w+\rho u)-\nabla f(w)-\rho H(w)u` at random points of a problem's
  region and random unit directions, against :math:`\frac{M_H}{2}\rho^2`, with the log–log
  slope of :math:`\|R\|` in :math:`\rho`.
* :func:`fidelity_task` — T4(b–d): AsyncSAM runs with per-step penalty fidelity, the
  penalty-term loss :math:`\|\rho H(x_t)(u_{t-\tau}-u_t)\|` and the angle between the stale and
  the fresh direction, against ``stale_fidelity_bound`` and ``stale_angle_bound``.
* :func:`basin_task` — FLAT-BASIN: where SGD / SAM / AsyncSAM end on the two-basin landscape.

Every task is a module-level function ``task(cfg: dict) -> dict`` (picklable), deterministic
given ``cfg["seed"]``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from asam_theory.engine import DivergenceWarning, simulate
from asam_theory.methods import SAM, SGD, AsyncSAM
from asam_theory.methods.base import row_norms, unit_rows
from asam_theory.problems import CauchyRegression, MatrixFactorization, Quadratic, TwoBasin
from asam_theory.problems.base import Problem
from asam_theory.rng import SeedStreams
from asam_theory.theory import bounds

# ------------------------------------------------------------------------------ problems


def make_problem(name: str) -> Problem:
    """The fixed problem instances of the penalty checks (exact oracles).

    * ``quadratic``: rotated spectrum (4, 2, 1, 0.5, 0.25), L = 4, M_H = 0;
    * ``two_basin``: :class:`TwoBasin` in d = 3 (sharp 8, flat 1) with constants on the ball
      ``||x|| <= 2`` (L = 180.4, M_H = 174.9 there);
    * ``cauchy``: :class:`CauchyRegression` n = 32, d = 5 with 10 % outliers (global L, M_H);
    * ``matfac``: :class:`MatrixFactorization` 4 x 3, r = 2 (constants on its ball).
    """
    if name == "quadratic":
        return Quadratic([4.0, 2.0, 1.0, 0.5, 0.25], rotate=True, seed=3)
    if name == "two_basin":
        return TwoBasin(3, sharp=8.0, flat=1.0, radius=2.0)
    if name == "cauchy":
        return CauchyRegression(n=32, dim=5, seed=1)
    if name == "matfac":
        return MatrixFactorization(4, 3, 2, seed=2)
    raise ValueError(f"unknown problem {name!r}; known: quadratic, two_basin, cauchy, matfac")


def _sample_points(problem: Problem, n: int, margin: float, rng: np.random.Generator,
                   ) -> tuple[np.ndarray, float]:
    """``n`` points uniform in the problem's region shrunk by ``margin`` (so that
    :math:`w+\\rho u` stays inside for :math:`\\rho\\le` margin); a problem with a global
    constant (``region is None``) is sampled in the ball of radius 3 around its minimiser
    (or the origin).  Returns the points and the sampling radius."""
    d = problem.dim
    if problem.region is not None:
        center, radius = problem.region.center, problem.region.radius - margin
    else:
        center = problem.minimizers[0] if problem.minimizers is not None else np.zeros(d)
        if hasattr(problem, "x_true"):
            center = problem.x_true
        radius = 3.0
    z = rng.standard_normal((n, d))
    r = radius * rng.random(n) ** (1.0 / d)
    return center + unit_rows(z) * r[:, None], radius


# ------------------------------------------------------------------------------ T4(a)


def remainder_task(cfg: dict) -> dict:
    r"""Taylor remainder of the gradient along unit directions (T4(a)).

    For ``n_points`` points w uniform in the region (shrunk by :math:`\rho_{\max}`) and a unit
    direction u of kind ``direction``:

    * ``random``: uniform on the sphere;
    * ``fresh``: :math:`u=\nabla f(w)/\|\nabla f(w)\|` (SAM's direction);
    * ``stale``: :math:`u=\nabla f(w')/\|\nabla f(w')\|` at a point
      :math:`w'=w+\delta`, :math:`\|\delta\|=` ``stale_shift`` (AsyncSAM's direction, a stale
      iterate's gradient),

    computes :math:`\|R(\rho)\|` for every ρ of ``rhos`` and the bound
    :math:`\frac{M_H}{2}\rho^2` (``bounds.penalty_remainder_bound``).  Per point: the worst
    ratio over ρ, the least-squares log–log slope of :math:`\|R\|` in ρ over the lowest
    decade of ``rhos`` (:math:`[\rho_{\min}, 10\rho_{\min}]`), and the
    second-order coefficient :math:`c_2=\|R(\rho_{\min})\|/\rho_{\min}^2` (the slope is only
    meaningful where :math:`c_2` is not degenerate).
    """
    p = make_problem(cfg["problem"])
    rhos = np.asarray(cfg["rhos"], dtype=np.float64)
    rng = np.random.default_rng(cfg["seed"])
    n = cfg["n_points"]
    w, radius = _sample_points(p, n, margin=float(rhos.max()) + cfg.get("stale_shift", 0.0),
                               rng=rng)
    kind = cfg["direction"]
    if kind == "random":
        u = unit_rows(rng.standard_normal(w.shape), eps=0.0)
    elif kind == "fresh":
        u = unit_rows(p.grad(w), eps=0.0)
    elif kind == "stale":
        delta = unit_rows(rng.standard_normal(w.shape), eps=0.0) * cfg["stale_shift"]
        u = unit_rows(p.grad(w + delta), eps=0.0)
    else:
        raise ValueError(f"unknown direction kind {kind!r}")
    g0 = p.grad(w)
    hu = p.hvp(w, u)
    M_H = float(p.hessian_lipschitz)
    R = np.empty((rhos.size, n))
    for k, rho in enumerate(rhos):
        R[k] = row_norms(p.grad(w + rho * u) - g0 - rho * hu)
    # ``bound_scale`` (default 1) only exists to show that the check can fail
    bound = cfg.get("bound_scale", 1.0) * np.array(
        [bounds.penalty_remainder_bound(M_H, r) for r in rhos])
    # rounding of the difference of two gradients: a few ulps of ||grad|| (+ rho ||Hu||);
    # a measured ||R|| below this floor carries no information about the bound
    floor = 64 * np.finfo(np.float64).eps * (row_norms(g0) + rhos.max() * row_norms(hu))
    ratio = R / bound[:, None]
    # the slope over the lowest decade of radii: there the next term (c3 rho^3) bends the
    # log-log line ten times less than over the whole range, so the slope reads the order of
    # the expansion and not the size of its third-order coefficient
    low = rhos <= 10 * rhos.min() * (1 + 1e-9)
    lr_, lR = np.log(rhos[low]), np.log(np.maximum(R[low], 1e-300))
    slope = np.polyfit(lr_, lR, 1)[0]  # one slope per point (columns)
    c2 = R[0] / rhos[0] ** 2
    return {
        "M_H": M_H, "radius": radius, "n": n,
        "violations": int(np.sum(R > bound[:, None] + floor[None, :])),
        "worst_ratio": float(ratio.max()),
        "c2": c2.tolist(), "slope": slope.tolist(),
        "median_R": np.median(R, axis=1).tolist(), "bound_curve": bound.tolist(),
        "R_curves": R[:, : min(n, 5)].T.tolist(),
    }


# ------------------------------------------------------------------------------ T4(b-d)


def _starts(p: Problem, n_seeds: int, seed: int) -> np.ndarray:
    """Random starts: inside the region (radius 0.9 of it, away from its edge) or, for a
    global constant, at distance up to 2 from the minimiser."""
    rng = np.random.default_rng([seed, 7])
    if isinstance(p, TwoBasin):
        x = rng.uniform(-1.4, 1.4, (n_seeds, p.dim)) * np.r_[1.0, np.full(p.dim - 1, 0.5)]
        return x
    center = p.x_true if hasattr(p, "x_true") else (
        p.minimizers[0] if p.minimizers is not None else np.zeros(p.dim))
    z = unit_rows(rng.standard_normal((n_seeds, p.dim)), eps=0.0)
    return center + z * 2.0 * rng.random(n_seeds)[:, None] ** (1 / p.dim)


def _vectorised_agreement(rng: np.random.Generator, args: np.ndarray, values: np.ndarray,
                          fn, k: int = 64) -> float:
    """Largest relative difference between a vectorised bound ``values`` (shape (T, M)) and
    the theorem's scalar function ``fn`` on ``k`` random entries (``args`` (..., T, M))."""
    T, M = values.shape
    err = 0.0
    for t, m in zip(rng.integers(0, T, k), rng.integers(0, M, k), strict=True):
        v = values[t, m]
        if not (np.isfinite(v) and np.all(np.isfinite(args[..., t, m]))):
            continue
        ref = fn(args[..., t, m])
        err = max(err, abs(ref - v) / max(abs(ref), 1e-300))
    return err


class _PointRecorder:
    r"""The oracle with every point its gradients were taken at recorded (``points``, in call
    order; cleared by the caller per step): a SAM-type step's last call is its descent
    gradient, at :math:`x_t+\epsilon_t`, and AsyncSAM's first its ascent, at the stale
    iterate — so the perturbation and the staleness a step *applied* are measured, not read
    from what the rule reports."""

    def __init__(self, problem: Problem) -> None:
        self._p = problem
        self.points: list[np.ndarray] = []

    def __getattr__(self, name: str):
        return getattr(self._p, name)

    def batch_grad(self, x, batch, out=None):
        self.points.append(np.array(x, copy=True))
        return self._p.batch_grad(x, batch, out=out)


def fidelity_task(cfg: dict) -> dict:
    r"""AsyncSAM (normalised) with per-step penalty fidelity and the T4 bounds.

    Runs :class:`AsyncSAM` (``tau``, ``lr`` = ``lr_L``/L, ``rho``) through its own
    ``init``/``step`` protocol on ``n_seeds`` random starts for ``steps`` steps, with the exact
    oracle (``noise`` = ``"exact"``) or a noisy one (``"noisy"``: additive Gaussian noise of
    variance ``sigma2`` for the quadratic and the two-basin problem, minibatches of ``batch``
    components for the Cauchy regression).  Per step t and seed, with
    :math:`g_t=\nabla f(x_t)` (exact), :math:`u_t=g_t/\|g_t\|` and
    :math:`u_{t-\tau}=g'_t/\|g'_t\|` the direction the step actually used:

    * fidelity :math:`\cos\angle(\epsilon_t,g_t)` (``StepInfo.fidelity``, the engine's
      ``"fidelity"`` record);
    * angle :math:`\theta_t=2\arcsin(\|u_{t-\tau}-u_t\|/2)` (accurate also near 0);
    * penalty-term loss :math:`\ell_t=\|\rho H(x_t)(u_{t-\tau}-u_t)\|` (by ``hvp``);
    * ``stale_fidelity_bound(L, rho, theta_t)`` (it takes the measured angle, so it only
      tests :math:`\|H\|\le L`) and, exact oracle only,
      ``stale_angle_bound(L, lr, tau, G, ||g_t||)`` with G the largest descent-gradient norm
      of the seed's run (T4(d) needs a bound on every descent direction of the window; the
      run's maximum is one);
    * exact oracle only, the *a-priori* penalty-loss bound, computed from τ, η, L and gradient
      norms alone, not from the measured directions:
      ``stale_fidelity_drift_bound(L, rho, lr, tau, G_t, ||g_t||)``
      :math:`=\rho L\min\big(2,2L\eta\tau G_t/\|g_t\|\big)` with
      :math:`G_t=\max_{s\le r<t}\|d_r\|` the largest descent direction of the window
      :math:`[s,t)`, :math:`s=\max(t-\tau,0)` (the drift lemma
      :math:`\|x_t-x_s\|\le\eta\sum_{s\le r<t}\|d_r\|\le\eta\tau G_t` needs no more).  It is
      *non-trivial* where it is below its cap :math:`2\rho L`; ``loss_nontrivial`` is that
      fraction of the τ > 0 steps, ``loss_nontrivial_by_seed`` their number per seed (start)
      and ``loss_worst_ratio_nontrivial`` the worst loss/bound there, and
      ``loss_violations_nontrivial`` the violations among them.  ``declared_tau`` (default
      ``tau``) is the staleness the bound is computed with: a run staler than declared must
      violate it.

    Steps with :math:`\|g_t\|\le10^{-10}` (direction undefined) are skipped and counted.
    A seed whose iterate or gradient norm stops being finite has diverged: its steps from
    then on are left out, and ``diverged_seeds`` and ``first_divergence`` (seed, step and
    the iterate's norm there) report it.
    The constants L hold on the problem's region; the task reports whether every iterate and
    every perturbed point stayed inside it.
    """
    base = make_problem(cfg["problem"])
    L = float(base.L)
    lr, rho, tau = cfg["lr_L"] / L, cfg["rho"], cfg["tau"]
    noisy = cfg["noise"] == "noisy"
    batch_size = 1
    if isinstance(base, CauchyRegression):
        batch_size = cfg["batch"] if noisy else base.n  # the full batch is the exact oracle
        p = base
    else:
        p = base.with_noise(cfg["sigma2"]) if noisy else base
    rule = AsyncSAM(lr=lr, rho=rho, tau=tau, batch_size=batch_size)
    p = _PointRecorder(p)
    M, T = cfg["n_seeds"], cfg["steps"]
    scale = cfg.get("bound_scale", 1.0)  # 1; smaller only to show that the check can fail
    x0 = _starts(base, M, cfg["seed"])
    streams = SeedStreams((cfg["seed"] * 100_003 + np.arange(M)).tolist())
    state = rule.init(x0, p, streams)
    fid = np.empty((T, M))
    theta = np.empty((T, M))
    loss = np.empty((T, M))
    gnorm = np.empty((T, M))
    dnorm = np.empty((T, M))
    inside = True
    dtau = int(cfg.get("declared_tau", tau))
    xnorm = np.empty((T, M))
    iterates: list[np.ndarray] = []
    norm_viol = stale_viol = 0
    # a run that diverges (a mutant's, never the correct code's at these steps) overflows:
    # its non-finite steps are reported below (seed, step, value), not warned about
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t in range(T):
            p.points.clear()
            iterates.append(state.x.copy())
            state, info = rule.step(state, p, streams)
            # the perturbation *applied*: the point of the descent gradient (the step's last
            # oracle call) minus the iterate; the ascent point is the step's first call
            x_asc, x_desc = p.points[0], p.points[-1]
            eps_applied = x_desc - info.x
            g = base.grad(info.x)
            gn = row_norms(g)
            u_t = unit_rows(g, eps=0.0)
            u_s = unit_rows(eps_applied, eps=0.0)  # its direction (the norm is checked below)
            xnorm[t] = row_norms(info.x)
            diff = u_s - u_t
            dn = row_norms(diff)
            en = row_norms(eps_applied)
            # the normalised perturbation's norm, rho ||g'|| / (||g'|| + eps) (g' the ascent
            # gradient), to 1e-9 relative
            an = row_norms(info.ascent_grad)
            norm_viol += int(np.sum(np.abs(en - rho * an / (an + rule.eps)) > 1e-9 * rho))
            x_s = iterates[max(t - dtau, 0)]
            stale_viol += int(np.sum(row_norms(x_asc - x_s) > 1e-12 * (1 + row_norms(x_s))))
            ng_en = gn * en
            fid[t] = np.divide(np.einsum("md,md->m", eps_applied, g), ng_en,
                               out=np.zeros_like(ng_en), where=ng_en > 0)
            theta[t] = 2 * np.arcsin(np.minimum(1.0, dn / 2))
            loss[t] = rho * row_norms(base.hvp(info.x, diff))
            gnorm[t] = gn
            dnorm[t] = row_norms(info.descent_grad)
            if base.region is not None:
                inside &= bool(np.all(base.region.contains(info.x))
                               and np.all(base.region.contains(x_desc)))
    # divergence: a seed's steps from its first non-finite iterate or gradient norm on are
    # left out of every measurement, and the seeds, with the first such step and value, are
    # reported (a zero perturbation's undefined direction, NaN in the loss, is not one: the
    # norm check counts it)
    bad = ~(np.isfinite(xnorm) & np.isfinite(gnorm) & np.isfinite(dnorm))
    alive = ~np.logical_or.accumulate(bad, axis=0)
    valid = alive & (gnorm > 1e-10)
    diverged = {}
    if bad.any():
        t_bad, m_bad = np.argwhere(bad)[0]
        diverged = {"seed": int(m_bad), "step": int(t_bad),
                    "value": float(xnorm[t_bad, m_bad]) if np.isfinite(xnorm[t_bad, m_bad])
                    else str(xnorm[t_bad, m_bad])}
    # rounding: the applied perturbation is a difference of two points of norm ~||x||, so
    # its direction carries an error of a few ulps of ||x|| / rho, and the loss rho ||H du||
    # one of a few ulps of L ||x||
    tol = 1e-15 + 16 * np.finfo(np.float64).eps * L * (1 + xnorm)
    # T4(b): 2 rho L sin(theta/2), the vectorised form of bounds.stale_fidelity_bound
    fbound = scale * 2 * rho * L * np.sin(theta / 2)
    rng_check = np.random.default_rng([cfg["seed"], 5])
    check = _vectorised_agreement(rng_check, theta, fbound / scale,
                                  lambda th: bounds.stale_fidelity_bound(L, rho, th))
    out: dict = {"L": L, "lr": lr, "inside_region": inside,
                 "skipped_steps": int(np.sum(alive & ~valid)), "norm_violations": norm_viol,
                 "staleness_violations": stale_viol,
                 "diverged_seeds": int(np.sum(~alive[-1])), "first_divergence": diverged}
    # penalty-term loss against 2 rho L sin(theta/2); rounding tolerance: hvp and the norm
    # carry ~1e-15 relative error, so a violation is loss > bound (1 + 1e-12) + 1e-15
    lv = loss[valid]
    bv = fbound[valid]
    out["fid_violations"] = int(np.sum(lv > bv * (1 + 1e-12) + tol[valid]))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(bv > 0, lv / bv, 0.0)
    out["fid_worst_ratio"] = float(r.max()) if r.size else 0.0
    if not noisy:
        # per seed: the largest descent-gradient norm of its run (before any divergence)
        G = np.where(alive, dnorm, 0.0).max(axis=0)
        gsafe = np.where(valid, gnorm, 1.0)
        # T4(c,d) vectorised: ||u_{t-tau} - u_t|| <= min(2, 2 L lr tau G/||g_t||),
        # theta <= 2 arcsin(min(1, that/2)), loss <= rho L min(2, ...)
        direction = np.minimum(2.0, 2 * L * lr * tau * G[None, :] / gsafe)
        abound = scale * np.where(valid, 2 * np.arcsin(np.minimum(1.0, direction / 2)), np.nan)
        drift = scale * np.where(valid, rho * L * direction, np.nan)
        Gs = np.broadcast_to(G[None, :], gnorm.shape)
        check = max(check, _vectorised_agreement(
            rng_check, np.stack([Gs, gsafe]), abound / scale,
            lambda a: bounds.stale_angle_bound(L, lr, tau, a[0], a[1])))
        check = max(check, _vectorised_agreement(
            rng_check, np.stack([Gs, gsafe]), drift / scale,
            lambda a: bounds.stale_fidelity_drift_bound(L, rho, lr, tau, a[0], a[1])))
        # rounding: theta of two equal directions is ~1e-16, not 0 (tau = 0: bound 0)
        av, thv = abound[valid], theta[valid]
        out["angle_violations"] = int(np.sum(thv > av + 1e-12))
        with np.errstate(divide="ignore", invalid="ignore"):
            ar = np.where(av > 0, thv / av, np.where(thv > 1e-12, np.inf, 0.0))
        out["angle_worst_ratio"] = float(ar.max()) if ar.size else 0.0
        nontriv = av < math.pi - 1e-12
        out["angle_nontrivial"] = float(np.mean(nontriv)) if nontriv.size else 0.0
        # the worst ratio where the bound says something (< pi): theta <= pi always
        out["angle_worst_ratio_nontrivial"] = float(ar[nontriv].max()) if nontriv.any() \
            else None
        # the drift form: loss <= rho L min(2, 2 L lr tau G/||g_t||)
        out["drift_violations"] = int(np.sum(loss[valid] > drift[valid] * (1 + 1e-12)
                                             + tol[valid]))
        # the a-priori bound with the window's G_t = max_{s <= r < t} ||d_r||, s = max(t-tau, 0)
        g_win = np.zeros_like(dnorm)
        for t in range(1, T):
            g_win[t] = dnorm[max(t - dtau, 0):t].max(axis=0) if dtau > 0 else 0.0
        dir_w = np.minimum(2.0, 2 * L * lr * dtau * g_win / gsafe)
        pbound = scale * np.where(valid, rho * L * dir_w, np.nan)
        check = max(check, _vectorised_agreement(
            rng_check, np.stack([g_win, gsafe]), pbound / scale,
            lambda a: bounds.stale_fidelity_drift_bound(L, rho, lr, dtau, a[0], a[1])))
        over = valid & (loss > np.where(valid, pbound, 0.0) * (1 + 1e-12) + tol)
        out["loss_violations"] = int(np.sum(over))
        # step 0 uses the fresh direction (s = t = 0): no staleness to bound, left out
        stale = valid.copy()
        stale[0] = False
        nontriv_w = stale & (dir_w < 2.0 * (1 - 1e-12))
        out["loss_violations_nontrivial"] = int(np.sum(over & nontriv_w))
        out["loss_steps"] = int(np.sum(stale))
        out["loss_nontrivial_steps"] = int(np.sum(nontriv_w))
        out["loss_nontrivial"] = float(np.mean(nontriv_w[stale])) if stale.any() else 0.0
        # per seed (start): its non-trivial steps; the verdict counts the independent starts
        out["loss_nontrivial_by_seed"] = [int(k) for k in nontriv_w.sum(axis=0)]
        with np.errstate(divide="ignore", invalid="ignore"):
            pr = np.where(pbound > 0, loss / pbound, np.where(loss > 1e-15, np.inf, 0.0))
        out["loss_worst_ratio"] = float(pr[valid].max()) if valid.any() else 0.0
        out["loss_worst_ratio_nontrivial"] = (float(pr[nontriv_w].max()) if nontriv_w.any()
                                              else None)
    # the vectorised bounds equal the theorem's functions (checked on sampled entries)
    out["vectorised_rel_error"] = check
    burn = cfg["burn_in"]

    def seed_means(values: np.ndarray, part: slice) -> np.ndarray:
        """Per seed, the mean over its valid steps in ``part`` (NaN for a seed with none,
        e.g. one that diverged before it)."""
        ok = valid[part]
        n = ok.sum(axis=0)
        total = np.where(ok, values[part], 0.0).sum(axis=0)
        return np.divide(total, n, out=np.full(n.shape, np.nan), where=n > 0)

    for key, part in (("fidelity", slice(burn, None)), ("fidelity_early", slice(0, burn))):
        v = seed_means(fid, part)
        v = v[np.isfinite(v)]
        out[key] = float(v.mean()) if v.size else None
        out[key + "_se"] = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
    late = valid[burn:]
    out["mean_loss"] = float(loss[burn:][late].mean()) if late.any() else None
    return out


# ------------------------------------------------------------------------------ FLAT-BASIN


def basin_starts(p: TwoBasin, n_seeds: int, seed: int, halfwidth: float) -> np.ndarray:
    r"""Starts spread across both basins: :math:`x_1\sim U(u_b-h,u_b+h)` around the barrier
    :math:`u_b`, transverse coordinates :math:`\mathcal N(0,0.5^2)`."""
    rng = np.random.default_rng([seed, 11])
    x = np.empty((n_seeds, p.dim))
    x[:, 0] = rng.uniform(p.barrier - halfwidth, p.barrier + halfwidth, n_seeds)
    x[:, 1:] = 0.5 * rng.standard_normal((n_seeds, p.dim - 1))
    return x


def basin_task(cfg: dict) -> dict:
    r"""Where a method ends on :class:`TwoBasin` (sharp 8 at :math:`x_1=-1`, flat 1 at +1).

    ``method`` ∈ ``sgd``, ``sam``, ``asyncsam`` (with ``tau``); same ``lr``, ``rho``,
    ``sigma2`` (additive Gaussian gradient noise, b = 1), starts (:func:`basin_starts`) and
    seeds for every method, so the descent noise is the same draw for draw.  Per seed the
    outcome of the last iterate: ``flat`` (``basin == FLAT``), ``sharp``, ``diverged`` (counted
    as *not* flat), and ``at_barrier`` — :math:`\varphi(x_1)>\tfrac12\varphi(u_b)`, i.e. far from
    both minima (normalised SAM can hover at the barrier's local maximum, where its ascent
    step points across the maximum and the descent step comes back).
    Returns the per-seed flat indicator (for paired comparisons) and the counts.
    """
    p0 = TwoBasin(cfg.get("dim", 2), sharp=cfg.get("sharp", 8.0), flat=cfg.get("flat", 1.0))
    p = p0.with_noise(cfg["sigma2"]) if cfg["sigma2"] > 0 else p0
    lr, rho = cfg["lr"], cfg["rho"]
    method = cfg["method"]
    if method == "sgd":
        rule = SGD(lr=lr)
    elif method == "sam":
        rule = SAM(lr=lr, rho=rho)
    elif method == "asyncsam":
        rule = AsyncSAM(lr=lr, rho=rho, tau=cfg["tau"])
    else:
        raise ValueError(f"unknown method {method!r}")
    M = cfg["n_seeds"]
    x0 = basin_starts(p0, M, cfg["seed"], cfg.get("halfwidth", 0.8))
    with warnings.catch_warnings():  # a diverged seed is an outcome here, counted below
        warnings.simplefilter("ignore", DivergenceWarning)
        tr = simulate(p, rule, x0, cfg["steps"], M, cfg["seed"], record=("f",),
                      every=cfg["steps"], divergence_threshold=1e6)
    xf = tr.x_final
    alive = ~tr.diverged
    flat = np.zeros(M, dtype=np.int64)
    flat[alive] = p0.basin(xf[alive]) == TwoBasin.FLAT
    at_barrier = np.zeros(M, dtype=bool)
    at_barrier[alive] = p0.phi(xf[alive, 0]) > 0.5 * p0.barrier_height
    return {"flat_ind": flat.tolist(), "n": M, "n_flat": int(flat.sum()),
            "n_diverged": int((~alive).sum()), "n_at_barrier": int(at_barrier.sum()),
            "start_flat": int(np.sum(p0.basin(x0) == TwoBasin.FLAT)),
            "cycle_amplitude_sharp": lr * rho * p0.sharp / (2 - lr * p0.sharp)
            if lr * p0.sharp < 2 else float("inf"),
            "barrier": p0.barrier}


# ------------------------------------------------------------------------------ proofs


def proof_task(cfg: dict) -> dict:
    """Build (and thereby check with sympy) one proof of :data:`proofs.BUILDERS`; its
    step counts."""
    from asam_theory import proofs

    p = proofs.BUILDERS[cfg["proof"]]()
    c = p.counts()
    bad = [s.claim for s in p.steps if s.status != "ok"]
    return {"title": p.title, "checked": c["checked"], "failed": c["failed"],
            "unchecked": c["unchecked"], "not_ok": bad[:5]}
