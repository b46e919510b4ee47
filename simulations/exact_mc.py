r"""Sweep tasks of claim ``EXACT-MC``: the engine against :mod:`asam_theory.theory.exact`.

Every task is a module-level, picklable ``task(cfg: dict) -> dict`` (run through
:func:`simulations.run_sweep`).  The engine configurations that match the exact linear models
(``asam_theory/theory/exact.py``) are

* stale USAM, model (b) ``"descent_batch"``:
  ``AsyncSAM(lr, rho, tau, normalize=False, batch_size=b, ascent_batch="descent")`` — the ascent
  of step :math:`t` reuses the descent batch of step :math:`s=\max(t-\tau,0)`;
* stale USAM, model (c) ``"independent"``:
  ``AsyncSAM(..., ascent_batch="independent", ascent_batch_size=b')``;
* delayed SGD with :math:`\tau=0`: ``SGD(lr, batch_size=b)``.

Noise convention.  ``problem.with_noise(sigma2)`` draws :math:`\xi_B\sim\mathcal N(0,
(\sigma^2/b)I_d)` (per-coordinate variance :math:`\sigma^2/b`), and ``exact`` uses
:math:`\xi_B\sim\mathcal N(0,(\sigma^2/b)I)` with the same per-coordinate variance
(its ``sigma2_per_coord``) and ``batch_size``: the two conventions coincide, so the config's
``sigma2`` (per coordinate), ``b`` and ``b'`` are passed through unchanged.  The
keys ``exact_ascent_noise`` and ``exact_sigma2`` of a config override what the *exact* side is
told (default: the engine's own model and ``sigma2``); the tests use them to show that a wrong
model makes the comparison fail.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from asam_theory.engine import DivergenceWarning, simulate, stability_limit
from asam_theory.methods import SGD, AsyncSAM
from asam_theory.methods.base import UpdateRule
from asam_theory.problems import Quadratic
from asam_theory.theory import exact
from asam_theory.validation import StabilityWarning

__all__ = ["make_rule", "stability_task", "stationary_task", "transient_task"]


def make_rule(cfg: dict) -> UpdateRule:
    """The engine rule matching ``cfg["model"]`` in ``{"descent_batch", "independent", "sgd"}``."""
    model = cfg["model"]
    b = int(cfg.get("batch_size", 1))
    if model == "sgd":
        return SGD(lr=cfg["lr"], batch_size=b)
    if model == "descent_batch":
        return AsyncSAM(lr=cfg["lr"], rho=cfg["rho"], tau=cfg["tau"], normalize=False,
                        batch_size=b, ascent_batch="descent")
    if model == "independent":
        return AsyncSAM(lr=cfg["lr"], rho=cfg["rho"], tau=cfg["tau"], normalize=False,
                        batch_size=b, ascent_batch="independent",
                        ascent_batch_size=int(cfg["ascent_batch_size"]))
    raise ValueError(f"model must be 'descent_batch', 'independent' or 'sgd', got {model!r}")


def _exact_kwargs(cfg: dict) -> dict:
    """Keyword arguments of ``exact.transient_moments`` / ``stationary_moments`` for ``cfg``."""
    model = cfg["model"]
    b = int(cfg.get("batch_size", 1))
    sigma2 = float(cfg.get("exact_sigma2", cfg["sigma2"]))
    if model == "sgd":
        return dict(lr=cfg["lr"], rho=0.0, tau=0, sigma2_per_coord=sigma2, batch_size=b,
                    method="delayed_sgd")
    return dict(lr=cfg["lr"], rho=cfg["rho"], tau=cfg["tau"], sigma2_per_coord=sigma2,
                batch_size=b, ascent_batch_size=cfg.get("ascent_batch_size"),
                ascent_noise=cfg.get("exact_ascent_noise", model), method="stale_usam")


def _problem(cfg: dict) -> Quadratic:
    """A quadratic ``f = ½(x-x*)ᵀH(x-x*) + f*`` (rotated and shifted when asked)."""
    return Quadratic(cfg["eigenvalues"], rotate=cfg.get("rotate", True),
                     shift=cfg.get("shift", True), f_star=cfg.get("f_star", 0.0),
                     seed=cfg.get("problem_seed", 0))


def _x0(cfg: dict, p: Quadratic) -> np.ndarray:
    """``x0 = x* + e0`` with ``e0`` from ``cfg["x0_offset"]`` (a vector) or a seeded draw."""
    off = cfg.get("x0_offset")
    if off is None:
        off = np.random.default_rng(1000 + cfg.get("problem_seed", 0)).uniform(-1, 1, p.dim)
    return p.minimizer + np.asarray(off, dtype=np.float64)


def divergence(tr) -> dict:
    """The result of a run in which seeds diverged: every config of the claim lies inside
    the exact stability region, so a divergence is a finding (the engine disagrees with the
    analysis), reported as ``diverged`` (how many seeds) and ``divergences`` (the first
    three ``(seed, step, value)``), with no moments."""
    return {"diverged": int(tr.diverged.sum()), "divergences": tr.divergences()[:3]}


# --------------------------------------------------------------------------- transient


def transient_task(cfg: dict) -> dict:
    r"""Engine mean over ``n_seeds`` seeds of :math:`f(x_t)-f^*` and :math:`\|\nabla f(x_t)\|^2`
    at the times ``cfg["times"]`` against ``exact.transient_moments``.

    A run in which seeds diverge returns :func:`divergence` instead.  Returns per time: the
    Monte Carlo mean, its standard error (sample standard deviation over
    the independent seeds / :math:`\sqrt M`), the exact value and :math:`z=(\text{MC}-
    \text{exact})/\text{SE}`; plus the exact curve of :math:`\mathbb E f - f^*` for the figure.
    """
    p = _problem(cfg)
    noisy = p.with_noise(cfg["sigma2"])
    x0 = _x0(cfg, p)
    steps = int(cfg["steps"])
    tr = simulate(noisy, make_rule(cfg), x0, steps, cfg["n_seeds"], cfg["seed"],
                  record=("f", "grad_norm2"), every=1)
    if tr.diverged.any():
        return divergence(tr)
    ex = exact.transient_moments(p, x0, steps=steps, **_exact_kwargs(cfg))
    m = cfg["n_seeds"]
    out = {"t": [], "f_mc": [], "f_se": [], "f_exact": [], "f_z": [],
           "g_mc": [], "g_se": [], "g_exact": [], "g_z": []}
    for t in cfg["times"]:
        out["t"].append(int(t))
        for key, arr, ex_arr in (("f", tr.metrics["f"][t] - p.f_star, ex.excess_loss),
                                 ("g", tr.metrics["grad_norm2"][t], ex.grad_norm_sq)):
            mean = float(arr.mean())
            se = float(arr.std(ddof=1) / math.sqrt(m))
            out[f"{key}_mc"].append(mean)
            out[f"{key}_se"].append(se)
            out[f"{key}_exact"].append(float(ex_arr[t]))
            out[f"{key}_z"].append((mean - float(ex_arr[t])) / se if se > 0 else
                                   (0.0 if mean == ex_arr[t] else math.inf))
    out["curve_f_exact"] = ex.excess_loss.tolist()
    return out


# --------------------------------------------------------------------------- stationary


def stationary_task(cfg: dict) -> dict:
    r"""Long-run :math:`\mathbb E f-f^*` and :math:`\mathbb E\|\nabla f\|^2` of the engine against
    the Lyapunov solution ``exact.stationary_moments``.

    The chains start at ``x0`` and run ``burn_in + tail`` steps.  Per seed the metric is
    averaged over the tail (every step); the tail means of the ``M`` independent seeds are
    i.i.d., so their sample standard deviation / :math:`\sqrt M` is an honest standard error
    whatever the autocorrelation inside a chain.  ``burn_bias`` is the exact remaining
    transient :math:`|\mathbb E f(x_{\text{burn}})-\mathbb E_\infty f|` relative to the
    stationary value (from ``exact.transient_moments``), so a too-short burn-in shows.
    """
    p = _problem(cfg)
    noisy = p.with_noise(cfg["sigma2"])
    x0 = _x0(cfg, p)
    burn, tail = int(cfg["burn_in"]), int(cfg["tail"])
    tr = simulate(noisy, make_rule(cfg), x0, burn + tail, cfg["n_seeds"], cfg["seed"],
                  record=("f", "grad_norm2"), every=1)
    if tr.diverged.any():
        return divergence(tr)
    kw = _exact_kwargs(cfg)
    st = exact.stationary_moments(p, **kw)
    tm = exact.transient_moments(p, x0, steps=burn, **kw)
    sel = tr.times > burn
    m = cfg["n_seeds"]
    out: dict = {"spectral_radius": st.spectral_radius, "lyapunov_residual": st.residual,
                 "burn_bias": abs(tm.excess_loss[-1] - st.excess_loss) / st.excess_loss}
    for key, arr, val in (("f", tr.metrics["f"][sel] - p.f_star, st.excess_loss),
                          ("g", tr.metrics["grad_norm2"][sel], st.grad_norm_sq)):
        per_seed = arr.mean(axis=0)
        mean = float(per_seed.mean())
        se = float(per_seed.std(ddof=1) / math.sqrt(m))
        out.update({f"{key}_mc": mean, f"{key}_se": se, f"{key}_exact": val,
                    f"{key}_z": (mean - val) / se})
    return out


# --------------------------------------------------------------------------- stability


def _relative_log_rate(d2: np.ndarray, times: np.ndarray) -> float:
    """Least-squares slope of ``½ log dist2`` per step over the recorded finite values."""
    ok = np.isfinite(d2) & (d2 > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(times[ok], 0.5 * np.log(d2[ok]), 1)[0])


def stability_task(cfg: dict) -> dict:
    r"""Deterministic stale USAM (``check_stability=False``) at ``lr = scale * eta_star``.

    ``eta_star`` = ``exact.max_stable_lr`` (times ``eta_star_scale``, default 1); ``steps``
    are computed by the caller from the spectral radius :math:`r` at that ``lr``; a seed
    diverges when :math:`\|x_t\|` passes ``divergence_factor`` :math:`\cdot(1+\|x_0\|)`.
    Returns whether the engine reported a divergence, the divergence step, the first and last
    recorded :math:`\|x_t-x^*\|^2`, the late log-rate of :math:`\|x_t-x^*\|` per step against
    :math:`\log r`, and the engine's own stability limit and warning
    (``asam_theory.engine.stability_limit``; a ``StabilityWarning`` from ``simulate`` with
    ``check_stability=True``).
    """
    lam = cfg["eigenvalues"]
    p = Quadratic(lam, rotate=True, shift=True, seed=cfg.get("problem_seed", 0))
    x0 = _x0(cfg, p)
    # eta_star_scale != 1 stands for a wrong exact boundary (the tests' power check)
    eta_star = cfg.get("eta_star_scale", 1.0) * exact.max_stable_lr(lam, rho=cfg["rho"],
                                                                     tau=cfg["tau"])
    lr = cfg["scale"] * eta_star
    rule = AsyncSAM(lr=lr, rho=cfg["rho"], tau=cfg["tau"], normalize=False)
    radius = exact.spectral_radius(lam, lr, cfg["rho"], cfg["tau"])
    steps = int(cfg["steps"])
    every = max(1, steps // 400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)  # divergence is an expected outcome
        tr = simulate(p, rule, x0, steps, 1, 0, record=("dist2",), every=every,
                      check_stability=False, divergence_threshold=cfg["divergence_factor"]
                      * (1.0 + float(np.linalg.norm(x0))))
    # The engine's own warning: a zero-step run with check_stability=True.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        simulate(p, rule, x0, 0, check_stability=True)
    warned = any(issubclass(w.category, StabilityWarning) for w in caught)
    d2 = tr.metrics["dist2"][:, 0]
    late = tr.times >= tr.times[-1] // 2
    div = tr.divergences()
    if div:  # late rate: the second half of the recorded path before the divergence
        alive = np.isfinite(d2)
        t_alive = tr.times[alive]
        late = alive & (tr.times >= t_alive[-1] // 2)
    return {"eta_star": eta_star, "lr": lr, "radius": radius,
            "engine_limit": stability_limit(p, rule), "engine_warned": warned,
            "diverged": bool(tr.diverged[0]), "divergence_step": div[0][1] if div else None,
            "dist2_start": float(d2[0]), "dist2_end": float(d2[-1]),
            "log_rate": _relative_log_rate(d2[late], tr.times[late]),
            "log_radius": math.log(radius)}
