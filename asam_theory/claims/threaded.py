r"""The real threaded AsyncSAM against the simulation and the bounds.

``THREADED`` runs :class:`asam_theory.torch.AsyncSAM` — a worker thread computing the ascent
direction from versioned snapshots of the weights, the main thread descending — on a
quadratic with known constants and additive Gaussian gradient noise
(:func:`asam_theory.experiments.realrun.threaded_quadratic_run`), and compares

* with the numpy engine's AsyncSAM at the staleness the threads actually used (same problem,
  noise model, step size, radius, batch sizes; independent ascent batch), and
* with T1 and T3 evaluated at the measured constants; both hold for *any* staleness sequence
  (the perturbation has norm ρ whatever its age), so an ascent device slow enough to make the
  staleness vary from step to step is covered too — the check measures that staleness.
"""

from __future__ import annotations

import numpy as np

from asam_theory.claims.base import Check, Claim, Outcome, Settings, Verdict
from asam_theory.methods import AsyncSAM as SimAsyncSAM
from asam_theory.problems import Quadratic
from asam_theory.stats import Z90
from asam_theory.theory import bounds

Z95_ONE = Z90  # the one-sided 95 % quantile

PROBLEM = {"eigenvalues": [4.0, 2.0, 1.0, 0.5], "rotate": True, "shift": True, "seed": 0}
SIGMA2 = 0.05  # per-coordinate variance of one sample's gradient noise (engine convention)
#: the replay's margin: a threaded run equals its replay when every iterate agrees to this
#: relative tolerance (float64 rounding accumulates to ~1e-14 over these runs; a wrong
#: perturbation moves the iterate by ~lr rho L = 2e-2 per step)
REPLAY_TOL = 1e-9
#: the noise's equivalence margin: the recorded noise variance lies within (1 ± this) of
#: sigma2 / b at two one-sided 95 % tests (quick: >= 1440 draws, interval half-width 0.06)
NOISE_MARGIN = 0.25
#: the bounds check's problem: an isotropic quadratic (L = mu = 2), on which T1 and T3 are
#: attained up to the factor (lr L)^2 at lr close to 1/L (see _bounds_with_measured_staleness)
TIGHT_PROBLEM = {"eigenvalues": [2.0, 2.0, 2.0, 2.0], "rotate": True, "shift": True, "seed": 0}
TIGHT_SIGMA2 = 0.0025
#: the claim's tightness: T1's and T3's measured/bound ratios are at least this (one-sided
#: 95 % lower ends); the expected ratios are ~0.91-0.95 (see the check's docstring)
TIGHT = 0.8


def _problem() -> Quadratic:
    return Quadratic(**PROBLEM)


#: every PROCESS_EVERY-th run of a check uses the worker-process backend, the others the
#: worker thread: the replay holds both to the same definition
PROCESS_EVERY = 3


def run_backend(r: int) -> str:
    """The worker backend of run ``r`` of a check."""
    return "process" if r % PROCESS_EVERY == PROCESS_EVERY - 1 else "thread"


def _threaded_runs(n_runs: int, seed: int, problem: Quadratic | None = None,
                   sigma2: float = SIGMA2, **kwargs) -> list:
    from asam_theory.experiments.realrun import threaded_quadratic_run

    p = _problem() if problem is None else problem
    base = 1000 + 100_003 * int(seed)
    return [threaded_quadratic_run(p, seed=base + 2 * r, sigma2=sigma2, backend=run_backend(r),
                                   **kwargs)
            for r in range(n_runs)]


def _backends(runs: list) -> str:
    n = sum(r.config["backend"] == "process" for r in runs)
    return f"{len(runs) - n} with the worker thread, {n} with the worker process"


def _mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))


class _ReplayOracle:
    """The quadratic's oracle with the noise a set of threaded runs drew, one row per run:
    ``sample_batch`` hands out the recorded descent (``"descent"``) or ascent (``"ascent"``)
    noise of the next step, ``batch_grad(x, xi) = H (x - x*) + xi`` — the engine's additive
    Gaussian noise model with the draws fixed, so a rule stepping on it replays the runs."""

    def __init__(self, p: Quadratic, runs: list) -> None:
        self.h = np.asarray(p.hessian, dtype=np.float64)
        self.xstar = np.asarray(p.minimizer, dtype=np.float64)
        self.dim = self.xstar.size
        self.noise = {"descent": np.stack([r.descent_noise for r in runs], axis=1),
                      "ascent": np.stack([r.ascent_noise for r in runs], axis=1)}
        self.count = {"descent": 0, "ascent": 0}

    def sample_batch(self, streams, kind: str, batch_size: int) -> np.ndarray:
        i = self.count[kind]
        self.count[kind] += 1
        return self.noise[kind][i]

    def grad(self, x: np.ndarray) -> np.ndarray:
        return (x - self.xstar) @ self.h

    def batch_grad(self, x: np.ndarray, batch: np.ndarray, out=None) -> np.ndarray:
        return np.add(self.grad(x), batch, out=out)


def _replay_engine(p: Quadratic, runs: list, lr: float, rho: float, tau: int) -> np.ndarray:
    """The numpy engine's AsyncSAM rule (``asam_theory.methods.AsyncSAM``, independent ascent
    batch) stepped on the runs' recorded noise: its iterates, shape (T+1, runs, d)."""
    oracle = _ReplayOracle(p, runs)
    rule = SimAsyncSAM(lr=lr, rho=rho, tau=tau, ascent_batch_size=1)
    x0 = np.stack([r.iterates[0] for r in runs])
    state = rule.init(x0, oracle, None)
    xs = [x0.copy()]
    for _ in range(runs[0].descent_noise.shape[0]):
        state, _info = rule.step(state, oracle, None)
        xs.append(state.x.copy())
    return np.stack(xs)


def _replay_definition(p: Quadratic, runs: list, lr: float, rho: float) -> np.ndarray:
    r"""AsyncSAM's definition at the staleness each step used, on the recorded noise:
    :math:`u_t=g'_t/(\|g'_t\|+10^{-12})`, :math:`g'_t=H(x_{v_t}-x^*)+\xi'_t` with
    :math:`v_t=t-s_t` the version the step's direction came from, and
    :math:`x_{t+1}=x_t-\eta\,(H(x_t+\rho u_t-x^*)+\xi_t)`; shape (T+1, runs, d)."""
    o = _ReplayOracle(p, runs)
    T = runs[0].descent_noise.shape[0]
    versions = np.stack([r.versions for r in runs], axis=1)  # (T, runs)
    x = np.empty((T + 1, len(runs), o.dim))
    x[0] = np.stack([r.iterates[0] for r in runs])
    cols = np.arange(len(runs))
    for t in range(T):
        g_asc = o.grad(x[versions[t], cols]) + o.noise["ascent"][t]
        u = g_asc / (np.linalg.norm(g_asc, axis=1, keepdims=True) + 1e-12)
        x[t + 1] = x[t] - lr * (o.grad(x[t] + rho * u) + o.noise["descent"][t])
    return x


def _replay_error(runs: list, replay: np.ndarray) -> float:
    """Largest relative difference between the runs' iterates and the replay's (NaN, e.g. a
    step that applied no recorded direction, counts as infinitely large)."""
    thr = np.stack([r.iterates for r in runs], axis=1)
    err = np.linalg.norm(thr - replay, axis=2) / np.maximum(1.0, np.linalg.norm(thr, axis=2))
    return float(np.inf) if not np.all(np.isfinite(err)) else float(err.max())


def _noise_tost(runs: list, sigma2: float) -> dict:
    r"""Two one-sided tests that the recorded descent and ascent noise has variance
    :math:`\sigma^2/b` (b = b′ = 1) within ``NOISE_MARGIN``: the ratio
    :math:`\hat v/\sigma^2` of the mean square of the :math:`n` recorded coordinates has
    standard error :math:`\sqrt{2/n}` (chi-square), and both one-sided 95 % ends must lie in
    :math:`[1-m,1+m]`."""
    out = {}
    for kind in ("descent", "ascent"):
        z = np.concatenate([getattr(r, f"{kind}_noise").ravel() for r in runs])
        z = z[np.isfinite(z)]
        ratio = float(np.mean(z**2) / sigma2) if z.size else float("nan")
        se = float(np.sqrt(2.0 / max(z.size, 1)))
        lo, hi = ratio - Z90 * se, ratio + Z90 * se
        out[kind] = {"ratio": ratio, "se": se, "lower": lo, "upper": hi, "n": int(z.size),
                     "ok": bool(z.size > 0 and 1 - NOISE_MARGIN <= lo
                                and hi <= 1 + NOISE_MARGIN)}
    return out


def _histogram(stal: np.ndarray) -> dict[str, int]:
    vals, counts = np.unique(stal, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(vals, counts, strict=True)}


def _vs_simulation(settings: Settings) -> Outcome:
    r"""Forced staleness τ: every threaded run is replayed by the numpy engine's AsyncSAM rule
    on the noise the threads drew; the trajectories must agree to ``REPLAY_TOL`` (a direct
    bound, not a failed rejection: a run without perturbation, at another staleness, with a
    fresh or a same-batch perturbation moves its iterates by ~η ρ L = 2·10⁻² per step, seven
    orders of magnitude above the margin, so the check detects them with probability 1 in
    one run), the staleness must be exactly τ after the warm-up, and the noise must have the
    declared variance (TOST, margin ``NOISE_MARGIN``)."""
    lr, rho, tau = 0.1, 0.05, 1
    steps = settings.pick(120, 300)
    n_runs = settings.pick(3, 6, 16)
    p = _problem()
    runs = _threaded_runs(n_runs, settings.seed, steps=steps, lr=lr, rho=rho, tau=tau,
                          max_staleness=tau)
    stal = np.concatenate([r.staleness for r in runs])
    # the threads wait for the direction of version t - tau, so after the warm-up (t < tau,
    # where the ascent at w_0 is used, as in the engine) every step's staleness is tau
    expected = np.concatenate([np.minimum(np.arange(steps), tau)] * n_runs)
    staleness_ok = bool(np.array_equal(stal, expected))
    replay = _replay_engine(p, runs, lr, rho, tau)
    err = _replay_error(runs, replay)
    noise = _noise_tost(runs, SIGMA2)
    ok = staleness_ok and err <= REPLAY_TOL and all(v["ok"] for v in noise.values())
    g_thr = np.mean([r.mean_grad_norm2 for r in runs])
    g_rep = float(np.mean(np.sum(((replay[:-1] - p.minimizer) @ p.hessian) ** 2, axis=2)))
    rows = [{"quantity": "max relative iterate difference, threaded vs engine replay",
             "measured": err, "bound": REPLAY_TOL},
            *({"quantity": f"{k} noise variance / (sigma2/b), 90% interval",
               "measured": v["ratio"], "lower": v["lower"], "upper": v["upper"],
               "bound": [1 - NOISE_MARGIN, 1 + NOISE_MARGIN]} for k, v in noise.items()),
            {"quantity": "(1/T) sum ||grad f||^2 (threaded, replay)", "measured": g_thr,
             "bound": g_rep}]
    return Outcome.judged(ok, measured={"replay_error": err}, bound={"replay_error": REPLAY_TOL},
        ratio=err / REPLAY_TOL,
        summary=f"{n_runs} threaded runs ({_backends(runs)}) x {steps} steps, staleness "
                f"histogram "
                f"{_histogram(stal)} (exactly tau = {tau} after the warm-up: {staleness_ok}); "
                f"replayed by the engine's AsyncSAM on the recorded noise: largest relative "
                f"iterate difference {err:.2g} (margin {REPLAY_TOL:g}); noise variance / "
                f"declared: descent {noise['descent']['ratio']:.3f}, ascent "
                f"{noise['ascent']['ratio']:.3f} (90% intervals inside 1 ± {NOISE_MARGIN:g}: "
                f"{noise['descent']['ok'] and noise['ascent']['ok']}); (1/T) sum ||grad f||^2 "
                f"threaded {g_thr:.4g}, replay {g_rep:.4g}",
        table=rows, config={"problem": PROBLEM, "sigma2": SIGMA2, "lr": lr, "rho": rho,
                            "tau": tau, "steps": steps, "runs": n_runs,
                            "replay_tol": REPLAY_TOL, "noise_margin": NOISE_MARGIN},
        figure={"err": np.max(np.linalg.norm(
                    np.stack([r.iterates for r in runs], axis=1) - replay, axis=2),
                    axis=1).tolist(), "tol": REPLAY_TOL})


def _plot_vs_simulation(v: Verdict, ax) -> None:
    err = np.asarray([np.nan if e is None else e for e in v.figure["err"]], dtype=float)
    ax.semilogy(np.arange(err.size), np.maximum(err, 1e-18), "-", label="threaded vs replay")
    ax.axhline(v.figure["tol"], color="k", ls="--", label="margin")
    ax.set_xlabel("step t")
    ax.set_ylabel(r"$\max_{\rm runs}\|w_t^{\rm threaded}-w_t^{\rm engine}\|$")
    ax.legend()


def bounds_statistics(p: Quadratic, runs: list, steps: int, lr: float, rho: float) -> dict:
    r"""T1 and T3 against their bounds over ``runs`` on ``p`` (b = 1, noise
    :data:`TIGHT_SIGMA2` per coordinate): ``g``/``g_se`` the mean over runs of the mean squared
    gradient norm and its standard error, ``t1`` T1's bound; ``f``/``f_se`` the mean gap over
    the second half of the run and ``t3`` T3's bound averaged over the same steps; ``lower``
    the one-sided 95 % lower ends of measured/bound (the tightness side of
    :func:`_bounds_with_measured_staleness`)."""
    L, mu = float(p.L), float(p.mu)
    delta = float(p.f(np.ones((1, p.dim)))[0] - p.f_star)
    sigma2_total = p.dim * TIGHT_SIGMA2  # the bounds' sigma2 is E||g_B - g||^2 for b = 1
    t1 = bounds.t1_bound(delta, L, rho, lr, steps, sigma2_total, 1, 1, same_batch=False)
    g, g_se = _mean_se([r.mean_grad_norm2 for r in runs])
    # T3 holds at every horizon t, so its mean over the second half of the run bounds the
    # mean gap there (one value per run, far less noisy than the last gap alone)
    tail = np.arange(steps // 2, steps + 1)
    t3 = float(np.mean([bounds.t3_bound(delta, L, mu, rho, lr, int(t), sigma2_total, 1)
                        for t in tail]))
    f, f_se = _mean_se([r.f_gap[tail].mean() for r in runs])
    return {"g": g, "g_se": g_se, "t1": t1, "f": f, "f_se": f_se, "t3": t3,
            "lower": {"T1": (g - Z95_ONE * g_se) / t1, "T3": (f - Z95_ONE * f_se) / t3}}


def _bounds_with_measured_staleness(settings: Settings) -> Outcome:
    r"""Slow ascent device (the staleness varies between τ and 4), on the isotropic quadratic
    :math:`f=\frac L2\|w-w^*\|^2` (μ = L) with :math:`\eta=0.95/L`: there
    :math:`w_{t+1}-w^*=(1-\eta L)(w_t-w^*)-\eta L\rho u_t-\eta\xi_t` with
    :math:`\|u_t\|=1` whatever the staleness, so after a few steps
    :math:`\mathbb E\|\nabla f\|^2\approx(\eta L)^2(L^2\rho^2+\sigma^2)/(1-(1-\eta L)^2)`
    (cross terms aside): about 0.91 of T1's floor :math:`L^2\rho^2+L\eta\sigma^2` and of
    :math:`2\mu` times T3's (σ² the total noise variance, b = 1).  T3 holds at every
    horizon, so its mean over the second half of the run is held to the mean gap there.
    Pass: every run replays AsyncSAM's definition at its measured staleness
    (``REPLAY_TOL``), the staleness stays ≤ 4, T1 and T3 hold (mean ≤ bound + 3 SE) and both
    are tight: the one-sided 95 % lower end of measured/bound is at least ``TIGHT`` — so a
    missing perturbation (ratio ≈ 0.2) or a radius 10 % too small or 10 % too large (ratio
    ≈ 0.78, ≈ 1.1) fails; measured ratios ≈ 0.93–0.95, lower ends ≥ 0.9."""
    # quick at 150 steps (was 80): the pilot tools/pilot_threaded_tightness.py (seeds
    # 900,000,000 onwards, none a verdict's) found no false fail of the tightness side in 80
    # repeats at either size on a quiet machine, but a 1 % quantile of the lower end of 0.834
    # at 80 steps against 0.867 at 150 (0.863 with two busy cores, 40 repeats); a CI run under
    # load once drew 0.771 at 80 steps.  150 steps average 76 tail steps instead of 41 (the
    # per-run spread of the tail mean × 0.73) for about 0.3 s more
    steps = 150
    n_runs = settings.pick(4, 8, 20)
    p = Quadratic(**TIGHT_PROBLEM)
    L = float(p.L)
    lr, rho, tau = 0.95 / L, 0.1, 1
    # a slow ascent device: each ascent takes about three descents, so the staleness the
    # threads use varies between tau and max_staleness
    runs = _threaded_runs(n_runs, settings.seed, problem=p, sigma2=TIGHT_SIGMA2, steps=steps,
                          lr=lr, rho=rho, tau=tau, max_staleness=4, descent_delay_s=0.001,
                          ascent_delay_s=0.003)
    stal = np.concatenate([r.staleness for r in runs])
    err = _replay_error(runs, _replay_definition(p, runs, lr, rho))
    st = bounds_statistics(p, runs, steps, lr, rho)
    g, g_se, f, f_se, t1, t3, lower = (st[k] for k in ("g", "g_se", "f", "f_se", "t1", "t3",
                                                       "lower"))
    holds = g - 3 * g_se <= t1 and f - 3 * f_se <= t3
    tight = min(lower.values()) >= TIGHT
    ok = holds and tight and err <= REPLAY_TOL and int(stal.max()) <= 4
    rows = [{"theorem": "T1", "measured": g, "measured_se": g_se, "bound": t1, "ratio": g / t1,
             "ratio_lower_one_sided95": lower["T1"]},
            {"theorem": "T3", "measured": f, "measured_se": f_se, "bound": t3, "ratio": f / t3,
             "ratio_lower_one_sided95": lower["T3"]},
            {"theorem": "replay at the measured staleness (max relative difference)",
             "measured": err, "measured_se": None, "bound": REPLAY_TOL, "ratio": None}]
    worst_ratio = max(g / t1, f / t3)
    return Outcome.judged(bool(ok), measured={"T1": g, "T3": f}, bound={"T1": t1, "T3": t3},
        ratio=worst_ratio,
        summary=f"slow ascent device, {n_runs} runs ({_backends(runs)}) x {steps} steps: "
                f"measured staleness "
                f"histogram {_histogram(stal)} (max_staleness 4 respected: "
                f"{int(stal.max()) <= 4}); replay at the measured staleness: largest "
                f"relative difference {err:.2g} (margin {REPLAY_TOL:g}); T1 {g:.4g} ± "
                f"{g_se:.2g} <= {t1:.4g} (ratio {g / t1:.3f}), T3 {f:.4g} ± {f_se:.2g} <= "
                f"{t3:.4g} (ratio {f / t3:.3f}); tight: one-sided 95% lower ends of the ratios "
                f"{lower['T1']:.3f}, {lower['T3']:.3f} >= {TIGHT:g}: {tight}",
        table=rows, config={"problem": TIGHT_PROBLEM, "sigma2": TIGHT_SIGMA2, "lr": lr,
                            "rho": rho, "tau": tau, "max_staleness": 4, "steps": steps,
                            "runs": n_runs, "descent_delay_s": 0.001, "ascent_delay_s": 0.003,
                            "tight": TIGHT, "replay_tol": REPLAY_TOL},
        figure={"staleness": _histogram(stal)})


def _plot_staleness(v: Verdict, ax) -> None:
    h = v.figure["staleness"]
    ax.bar([int(k) for k in h], list(h.values()))
    ax.set_xlabel("staleness used (steps)")
    ax.set_ylabel("steps")
    ax.set_title("threaded AsyncSAM with a slow ascent device")


THREADED = Claim(
    id="THREADED",
    title="The real threaded AsyncSAM matches its simulation and stays within T1/T3",
    statement=(r"AsyncSAM run for real — the ascent direction computed in a worker (a thread "
               r"of the training process or a process of its own, every third run) from "
               r"versioned weight snapshots, the descent in the main thread — on "
               r"$f=\tfrac12(x-x^*)^\top H(x-x^*)$ with additive gradient noise "
               r"$\mathcal N(0,\sigma^2/b\,I)$ has the same $\frac1T\sum_t\mathbb E\|\nabla f\|^2$ "
               r"and $\mathbb E f(w_T)-f^*$ as the simulated AsyncSAM at the staleness the "
               r"threads used — shown step by step: the numpy engine's AsyncSAM replays every "
               r"threaded run on the noise the threads drew to a relative $10^{-9}$ — and with "
               r"a slow ascent device (varying staleness) it stays within T1 and T3 evaluated "
               r"at the measured constants, which on an isotropic quadratic at "
               r"$\eta=0.95/L$ it attains to at least " + f"{TIGHT:g}" + r" of the bound. "
               r"The two checks treat "
               r"the staleness differently: *threaded_vs_simulated* **forces** it — the "
               r"main thread waits for the direction of version $t-\tau$ "
               r"(`max_staleness` $=\tau$), so every step after the warm-up uses exactly "
               r"$\tau$, and the check verifies that it did; *bounds_with_measured_staleness* "
               r"**measures** it — the descent takes the newest available direction no "
               r"fresher than $t-\tau$ and waits only when it would be staler than 4 "
               r"(`max_staleness` = 4), so the staleness is whatever the slow ascent device "
               r"produces, recorded per step and reported as a histogram."),
    source="our implementation (asam_theory.torch.AsyncSAM); theorems T1, T3",
    checks=(
        Check("threaded_vs_simulated", "threaded",
              r"Staleness forced by waiting: threaded runs with max_staleness $=\tau$ (the "
              r"main thread waits for the direction of version $t-\tau$; every step's "
              r"staleness is checked to be $\tau$ after the warm-up), each replayed by the "
              r"engine's AsyncSAM on its recorded noise (iterates equal to $10^{-9}$ relative) "
              r"and the noise's variance within $1\pm0.25$ of the declared (TOST).",
              _vs_simulation, _plot_vs_simulation,
              caption="Largest distance over the runs between the threaded run's iterate and "
                      "the engine's replay of it on the same noise, per step (log scale, "
                      "weight units); dashed: the margin. Good: the curve stays at rounding "
                      "level (~1e-16), far below the margin; a wrong perturbation or "
                      "staleness jumps to ~1e-2 at the first step it touches."),
        Check("bounds_with_measured_staleness", "threaded",
              "Staleness measured, not forced: threaded runs with a slow ascent device "
              r"(the descent takes the newest direction no fresher than $t-\tau$ and waits only "
              "beyond staleness 4); the staleness each step used is "
              "recorded (histogram), each run replayed at that staleness, and T1 and T3 are "
              "checked at the measured constants where they are attained (isotropic "
              r"quadratic, $\eta=0.95/L$): within the bound and at least "
              f"{TIGHT:g} of it (one-sided 95 %).",
              _bounds_with_measured_staleness, _plot_staleness,
              caption="Histogram of the staleness (in steps) the threaded AsyncSAM actually "
                      "used with a slow ascent device, counted over all steps of all runs. "
                      "What to look for: the mass spreads between $\\tau$ and the cap 4 "
                      "(staleness is measured, not forced) and nothing lies above 4; the "
                      "T1/T3 comparison at this staleness is in the table."),
    ),
)

#: the claims of this module, in report order
CLAIMS: tuple[Claim, ...] = (THREADED,)
