r"""The vectorised simulation engine: M seeds × T steps with no Python loop over seeds.

Per step the engine calls the rule once on arrays of shape ``(M, d)``; the cost is dominated
by the oracle's batched gradient evaluations (see ``benchmarks/engine_overhead.py``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from asam_theory import __version__
from asam_theory.engine.trajectory import Trajectory
from asam_theory.methods import _kernels
from asam_theory.methods.base import UpdateRule, row_norms
from asam_theory.problems.base import Problem
from asam_theory.rng import SeedStreams
from asam_theory.theory.exact import max_stable_lr
from asam_theory.validation import StabilityWarning, check_int, check_real, warn_unstable

MetricFn = Callable[[Problem, np.ndarray], np.ndarray]


class DivergenceWarning(RuntimeWarning):
    """Some seeds diverged; the trajectory reports (seed, step, value) for each."""


def _dist2(problem: Problem, x: np.ndarray) -> np.ndarray:
    if problem.minimizers is None:
        raise ValueError(f"record 'dist2' needs known minimisers; {type(problem).__name__} "
                         "has none")
    diff = x[:, None, :] - problem.minimizers[None, :, :]
    return np.min(np.einsum("mkd,mkd->mk", diff, diff), axis=1)


def _grad_norm2(problem: Problem, x: np.ndarray) -> np.ndarray:
    g = problem.grad(x)
    return np.einsum("md,md->m", g, g)


#: Metrics evaluated at the iterate x_t.
STATE_METRICS: dict[str, MetricFn] = {
    "f": lambda p, x: p.f(x),
    "grad_norm2": _grad_norm2,
    "dist2": _dist2,
}
#: Metrics of the step taken from x_t (read from the rule's StepInfo).
STEP_METRICS: dict[str, Callable] = {
    "fidelity": lambda info: info.fidelity(),
    "perturbation_norm": lambda info: info.perturbation_norm(),
    "descent_grad_norm2": lambda info: np.einsum("md,md->m", info.descent_grad,
                                                 info.descent_grad),
}
#: Special records: the iterates themselves and the running mean (1/t) Σ_{k<t} ‖∇f(x_k)‖².
SPECIAL = ("x", "mean_grad_norm2")


@functools.lru_cache(maxsize=256)
def _cached_limit(rule: UpdateRule, eig_bytes: bytes) -> float | None:
    return max_stable_lr(np.frombuffer(eig_bytes), method=rule)


def stability_limit(problem: Problem, rule: UpdateRule) -> float | None:
    """The largest stable ``lr`` of ``rule``'s linear part on ``problem`` (quadratics only)."""
    eig = problem.eigenvalues
    if eig is None:
        return None
    return _cached_limit(rule, np.ascontiguousarray(eig, dtype=np.float64).tobytes())


def _parse_record(record) -> tuple[dict[str, MetricFn], dict[str, Callable], list[str]]:
    if isinstance(record, str):
        record = (record,)
    items = record.items() if isinstance(record, Mapping) else [
        (r, None) if isinstance(r, str) else tuple(r) for r in record]
    state, step, special = {}, {}, []
    for name, fn in items:
        if fn is not None:
            state[name] = fn
        elif name in STATE_METRICS:
            state[name] = STATE_METRICS[name]
        elif name in STEP_METRICS:
            step[name] = STEP_METRICS[name]
        elif name in SPECIAL:
            special.append(name)
        else:
            known = sorted([*STATE_METRICS, *STEP_METRICS, *SPECIAL])
            raise ValueError(f"record entry {name!r} is unknown; known: {known} "
                             "(or pass (name, fn(problem, x)) for a custom metric)")
    return state, step, special


def simulate(problem: Problem, rule: UpdateRule, x0: np.ndarray | Sequence[float], steps: int,
             n_seeds: int = 1, seed: int = 0, *,
             record: Sequence[str] | Mapping[str, MetricFn] = ("f", "grad_norm2"),
             every: int = 1, divergence_threshold: float | None = None,
             check_stability: bool = True, progress: bool = False,
             seed_block: int | None = None) -> Trajectory:
    r"""Run ``rule`` on ``problem`` for ``n_seeds`` independent seeds and ``steps`` steps.

    Parameters
    ----------
    problem:
        The objective and its oracle (exact, :class:`~asam_theory.problems.GaussianNoise`,
        or a finite sum).
    rule:
        An :class:`~asam_theory.methods.UpdateRule`.
    x0:
        Start, shape ``(d,)`` (shared) or ``(n_seeds, d)``.
    steps, n_seeds, seed:
        Seed ``i`` uses the random streams of integer seed ``seed + i``: a run of M seeds
        equals the M single-seed runs ``simulate(..., n_seeds=1, seed=seed + i)`` (the same
        draws; values agree to rounding, since BLAS may order the sums of an ``(M, d)``
        matrix product differently for different M).
    record:
        Names among ``f``, ``grad_norm2``, ``dist2``, ``x``, ``mean_grad_norm2`` (state
        metrics, at :math:`x_t`) and ``fidelity``, ``perturbation_norm``,
        ``descent_grad_norm2`` (step metrics); or ``(name, fn(problem, x) -> (M,))`` pairs
        / a mapping for custom state metrics.
    every:
        Record at :math:`t=0,k,2k,\dots` and at ``steps``.
    divergence_threshold:
        A seed diverges when :math:`\|x_t\|` exceeds this (or is not finite); default
        :math:`10^{10}(1+\max\|x_0\|)`.  Divergence is reported per seed (step, value) and
        as a :class:`DivergenceWarning`.
    check_stability:
        Warn (:class:`~asam_theory.validation.StabilityWarning`) when ``lr`` exceeds the
        rule's known stability limit on a quadratic, stating the limit.
    seed_block:
        Seeds simulated together (``None``: :func:`block_rows`).  Seeds are independent (each
        has its own random streams and every rule and metric acts row by row), so many seeds
        run as consecutive blocks, each over all steps, whose working set stays in cache; the
        result is the same draws as one block (values agree to rounding, as for ``n_seeds``).
        Custom ``record`` functions must be row-wise too.
    """
    steps = check_int("steps", steps, low=0)
    n_seeds = check_int("n_seeds", n_seeds, low=1)
    seed = check_int("seed", seed, low=0)
    every = check_int("every", every, low=1)
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a Problem, got {type(problem).__name__}")
    if not isinstance(rule, UpdateRule):
        raise ValueError(f"rule must be an UpdateRule, got {type(rule).__name__}")
    rule.validate(problem)
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.shape == (problem.dim,):
        x_init = np.broadcast_to(x0, (n_seeds, problem.dim)).copy()
    elif x0.shape == (n_seeds, problem.dim):
        x_init = x0.copy()
    else:
        raise ValueError(f"x0 must have shape ({problem.dim},) or ({n_seeds}, {problem.dim}), "
                         f"got {x0.shape}")
    if not np.all(np.isfinite(x_init)):
        raise ValueError("x0 must be finite")
    thr = (1e10 * (1.0 + float(row_norms(x_init).max())) if divergence_threshold is None
           else check_real("divergence_threshold", divergence_threshold, low=0, low_open=True))
    if check_stability:
        limit = stability_limit(problem, rule)
        if limit is not None and rule.lr > limit:
            warn_unstable(rule.lr, limit, f"{rule.name} on this quadratic (linear part)")
    state_fns, step_fns, special = _parse_record(record)

    times = np.unique(np.r_[np.arange(0, steps + 1, every), steps])
    step_times = times[times < steps]
    K, Ks = times.size, step_times.size
    M, d = n_seeds, problem.dim
    metrics = {name: np.empty((K, M)) for name in state_fns}
    if "x" in special:
        metrics["x"] = np.empty((K, M, d))
    if "mean_grad_norm2" in special:
        metrics["mean_grad_norm2"] = np.empty((K, M))
    step_metrics = {name: np.empty((Ks, M)) for name in step_fns}
    seeds = seed + np.arange(M)
    x_final = np.empty((M, d))
    diverged_at = np.full(M, -1, dtype=np.int64)
    diverged_value = np.full(M, np.nan)

    rows = block_rows(M, d) if seed_block is None else check_int("seed_block", seed_block,
                                                                  low=1)
    blocks = [slice(a, min(a + rows, M)) for a in range(0, M, rows)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps * len(blocks), desc=f"{rule.name} x{M}", leave=False)
    for sl in blocks:
        _run_block(problem, rule, x_init[sl], seeds[sl], steps, times, step_times,
                   state_fns, step_fns, special, thr,
                   {name: arr[:, sl] for name, arr in metrics.items()},
                   {name: arr[:, sl] for name, arr in step_metrics.items()},
                   x_final[sl], diverged_at[sl], diverged_value[sl], bar)
    if bar is not None:
        bar.close()
    alive = diverged_at < 0

    config = {
        "problem": problem.config(), "constants": problem.constants(), "rule": rule.config(),
        "cost": {"grads_per_step": rule.cost.grads_per_step,
                 "sequential_depth": rule.cost.sequential_depth},
        "steps": steps, "n_seeds": n_seeds, "seed": seed, "every": every,
        "record": [*state_fns, *special, *step_fns], "x0": x0.tolist(),
        "seed_blocks": len(blocks),
        "divergence_threshold": thr, "version": __version__,
    }
    traj = Trajectory(times=times, metrics=metrics, step_times=step_times,
                      step_metrics=step_metrics, x_final=x_final, diverged_at=diverged_at,
                      diverged_value=diverged_value, seeds=seeds, config=config)
    if not alive.all():
        s, step, value = traj.divergences()[0]
        warnings.warn(f"{int((~alive).sum())} of {M} seeds diverged ({rule.name}, lr="
                      f"{rule.lr:g}); first: seed {s} at step {step} with ||x|| = {value:.3g}",
                      DivergenceWarning, stacklevel=2)
    return traj


#: bytes of one ``(rows, d)`` float64 array of a seed block: a step touches about five such
#: arrays (iterates, gradients, perturbed point), so blocks of this size keep a step's working
#: set near a core's L2 cache instead of streaming it from L3
BLOCK_BYTES = 1 << 19
#: fewest seeds per block (smaller blocks pay more per-step Python and BLAS call overhead)
MIN_BLOCK_ROWS = 256


def block_rows(n_seeds: int, dim: int) -> int:
    """Seeds per block: ``max(MIN_BLOCK_ROWS, BLOCK_BYTES // (8 dim))``, spread evenly over
    ``ceil(n_seeds / that)`` blocks (1000 seeds at d = 100: two blocks of 500)."""
    cap = max(MIN_BLOCK_ROWS, BLOCK_BYTES // (8 * max(dim, 1)))
    n_blocks = -(-n_seeds // cap)
    return -(-n_seeds // n_blocks)


def _run_block(problem, rule, x_init, seeds, steps, times, step_times, state_fns, step_fns,
               special, thr, metrics, step_metrics, x_final, diverged_at, diverged_value,
               bar) -> None:
    """Simulate the seeds of one block, writing into views of the full result arrays."""
    K, Ks = times.size, step_times.size
    M = x_init.shape[0]
    track_mean = "mean_grad_norm2" in special
    gsum = np.zeros(M) if track_mean else None
    streams = SeedStreams(seeds.tolist())
    state = rule.init(x_init.copy(), problem, streams)
    alive = np.ones(M, dtype=bool)

    def write(k: int, t: int, x: np.ndarray) -> None:
        for name, fn in state_fns.items():
            metrics[name][k] = np.where(alive, fn(problem, x), np.nan)
        if "x" in special:
            metrics["x"][k] = np.where(alive[:, None], x, np.nan)
        if track_mean:
            metrics["mean_grad_norm2"][k] = np.where(alive, gsum / max(t, 1), np.nan) if t else \
                np.where(alive, _grad_norm2(problem, x), np.nan)

    k, ks = 0, 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        write(k, 0, state.x)
        k += 1
        for t in range(steps):
            if track_mean:
                gsum += _grad_norm2(problem, state.x)
            state, info = rule.step(state, problem, streams)
            if ks < Ks and step_times[ks] == t:
                for name, fn in step_fns.items():
                    step_metrics[name][ks] = np.where(alive, fn(info), np.nan)
                ks += 1
            x = state.x
            sq = state.x_sq if state.x_sq is not None else _kernels.row_sq(x)
            bad = alive & ~(sq <= thr * thr)
            if bad.any():
                diverged_at[bad] = t + 1
                diverged_value[bad] = np.sqrt(sq[bad])
                alive &= ~bad
                if not alive.any():  # nothing left to simulate: the rest records as NaN
                    for arr in (*metrics.values(), *step_metrics.values()):
                        arr[k if arr.shape[0] == K else ks:] = np.nan
                    k, ks = K, Ks
                    if bar is not None:
                        bar.update(steps - t - 1)
                    break
            if k < K and times[k] == t + 1:
                write(k, t + 1, x)
                k += 1
            if bar is not None:
                bar.update(1)
    x_final[...] = np.where(alive[:, None], state.x, np.nan)


__all__ = ["DivergenceWarning", "STATE_METRICS", "STEP_METRICS", "StabilityWarning", "simulate",
           "stability_limit"]
