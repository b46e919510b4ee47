r"""Penalty fidelity on real networks: how much of SAM's penalty gradient a stale or
other-batch perturbation keeps.

To first order SAM's descent gradient is the plain one plus a *penalty gradient*
(Foret et al., ICLR 2021, arXiv 2010.01412; Andriushchenko & Flammarion, ICML 2022,
arXiv 2206.06232, §3), the part that drives it to flat minima:

.. math::
    p_{\rm SAM}=\nabla f_B(w+\rho u_B)-\nabla f_B(w)\approx\rho\,\nabla^2f_B(w)\,u_B,
    \qquad u_B=\frac{\nabla f_B(w)}{\|\nabla f_B(w)\|}.

A variant descends at :math:`w+\rho u_{\rm var}` instead, so its penalty gradient on the same
batch is :math:`p_{\rm var}=\nabla f_B(w+\rho u_{\rm var})-\nabla f_B(w)`, with
:math:`u_{\rm var}` the unit direction it would use at that step: the gradient at the stale
iterate :math:`w_{t-\tau}` on its own ascent batch — the first b′ samples of :math:`B_t`
(*same*: the look-ahead variant, :class:`asam_theory.torch.lookahead.LookAhead`) or of an
independent batch :math:`A_t` (*independent*: AsyncSAM, Jo, Lim & Lee 2025,
arXiv 2503.11147).  :func:`measure` reports, for every :class:`Probe`,

* ``cos_penalty`` = :math:`\cos(p_{\rm var},p_{\rm SAM})` and ``norm_ratio`` =
  :math:`\|p_{\rm var}\|/\|p_{\rm SAM}\|` — the fidelity of the penalty;
* ``cos_direction`` = :math:`\cos(u_{\rm var},u_B)` — the direction fidelity that
  ``ABLATION.direction`` measures, for comparison.

Exactness: on a quadratic :math:`f_B(w)=\tfrac12w^\top H_Bw-b_B^\top w` both are exact
differences, :math:`p_{\rm var}-p_{\rm SAM}=\rho H_B(u_{\rm var}-u_B)` with no Taylor
remainder (``tests/experiments/test_penalty_real.py``).  A *random* unit direction is the
negative control (its cosine with :math:`p_{\rm SAM}` is near 0).

:func:`run_penalty` trains each :class:`~asam_theory.experiments.probe_runs.Driver` (SGD, SAM,
AsyncSAM, look-ahead) and, at fixed checkpoints, measures every probe on that run's own iterates
:math:`w_t, w_{t-1},\dots` and descent batch :math:`B_t`: the grid over τ ∈ {0, 1, 2, 4},
b′/b ∈ {1/8, 1/4, 1/2, 1} and same/independent batch is evaluated along each trajectory (a
method's own probe is the diagonal; the rest say how the penalty would change with τ, b′ and
independence at those weights).  BatchNorm: every pass runs in train mode (batch statistics)
under :func:`~asam_theory.torch._common.bn_frozen`, so running statistics are never touched.
The independent batches :math:`A_t` and the random directions come from their own generator
(seed + 7,919), so probing never changes a run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from asam_theory.experiments.flatness import functional_loss
from asam_theory.experiments.probe_runs import (
    DRIVERS,
    SETTINGS,
    Driver,
    Setting,
    train,
)
from asam_theory.stats import t_interval
from asam_theory.torch._common import NORM_EPS, bn_frozen
from asam_theory.validation import check_choice, check_int, check_real

__all__ = ["PROBES", "Probe", "measure", "penalty_gradient", "probe_grid", "run_penalty",
           "summarise", "unit_direction"]

Params = tuple[torch.Tensor, ...]
BatchLoss = Callable[[Params, Any], torch.Tensor]
ASCENTS = ("same", "independent", "random")
#: offset of the probe generator's seed from the run's
PROBE_SEED_OFFSET = 7_919


@dataclass(frozen=True)
class Probe:
    """One perturbation direction to compare with SAM's: staleness ``tau``, ``ascent`` batch
    (``"same"``: :math:`B_t`, ``"independent"``: :math:`A_t`, ``"random"``: a random unit
    vector) and its share ``fraction`` = b′/b (the first b′ samples)."""

    name: str
    tau: int
    ascent: str
    fraction: float = 1.0

    def __post_init__(self) -> None:
        check_int("tau", self.tau, low=0)
        check_choice("ascent", self.ascent, ASCENTS)
        check_real("fraction", self.fraction, low=0.0, high=1.0, low_open=True)


def probe_grid(taus: Sequence[int] = (0, 1, 2, 4),
               fractions: Sequence[float] = (1 / 8, 1 / 4, 1 / 2, 1.0)) -> tuple[Probe, ...]:
    """Every (same/independent, τ, b′/b) probe but SAM itself (same, τ = 0, b′ = b), and the
    random control."""
    out = [Probe(f"{a}_tau{t}_bp{round(1 / f)}", t, a, f)
           for a in ("same", "independent") for t in taus for f in fractions
           if not (a == "same" and t == 0 and f == 1.0)]
    return (*out, Probe("random", 0, "random"))


#: the default grid (31 probes and the random control)
PROBES: tuple[Probe, ...] = probe_grid()


def _grad(loss: BatchLoss, params: Params, batch: Any) -> Params:
    leaves = tuple(p.detach().clone().requires_grad_(True) for p in params)
    with torch.enable_grad():
        return tuple(g.detach() for g in torch.autograd.grad(loss(leaves, batch), leaves))


def _norm(ts: Sequence[torch.Tensor]) -> float:
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in ts))


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    return sum(float((x.double() * y.double()).sum()) for x, y in zip(a, b, strict=True))


def unit_direction(loss: BatchLoss, params: Params, batch: Any) -> Params:
    r""":math:`u=\nabla f(w)/(\|\nabla f(w)\|+10^{-12})` (the SAM normalisation of
    davda54/sam) of ``loss(·, batch)`` at ``params``."""
    g = _grad(loss, params, batch)
    scale = 1.0 / (_norm(g) + NORM_EPS)
    return tuple(gi * scale for gi in g)


def penalty_gradient(loss: BatchLoss, w: Params, u: Params, rho: float, batch: Any,
                     base: Params | None = None) -> Params:
    r""":math:`\nabla f_B(w+\rho u)-\nabla f_B(w)` (``base``: :math:`\nabla f_B(w)` if already
    computed)."""
    base = _grad(loss, w, batch) if base is None else base
    up = _grad(loss, tuple(wi + rho * ui for wi, ui in zip(w, u, strict=True)), batch)
    return tuple(a - b for a, b in zip(up, base, strict=True))


def _random_direction(like: Params, gen: torch.Generator) -> Params:
    z = tuple(torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
              for p in like)
    scale = 1.0 / _norm(z)
    return tuple(zi * scale for zi in z)


def _first(batch: Any, k: int) -> Any:
    return tuple(b[:k] for b in batch)


def variant_direction(loss: BatchLoss, history: Sequence[Params], probe: Probe, batch: Any,
                      other: Any, gen: torch.Generator) -> Params:
    """The unit direction ``probe`` takes at step t: the gradient at ``history[tau]``
    (:math:`w_{t-\\tau}`) on the first b′ samples of ``batch`` (same) or ``other``
    (independent), or a random unit vector."""
    if probe.ascent == "random":
        return _random_direction(history[0], gen)
    source = batch if probe.ascent == "same" else other
    size = len(source[1])
    k = max(1, int(round(probe.fraction * size)))
    return unit_direction(loss, history[probe.tau], _first(source, k))


def measure(loss: BatchLoss, history: Sequence[Params], batch: Any, other: Any, rho: float,
            probes: Sequence[Probe] = PROBES, gen: torch.Generator | None = None,
            vectors: bool = False) -> list[dict[str, Any]]:
    """One checkpoint: SAM's penalty gradient on ``batch`` at ``history[0]`` (:math:`w_t`)
    against each probe's (module docstring).  ``history[k]`` is :math:`w_{t-k}` (at least
    ``max(tau) + 1`` entries); ``other`` is the independent batch.  Rows ``{"probe", "tau",
    "ascent", "fraction", "cos_penalty", "norm_ratio", "cos_direction", "p_sam_norm"}``; with
    ``vectors`` also ``"p_var"``, ``"p_sam"``, ``"u_var"``, ``"u_sam"``."""
    rho = check_real("rho", rho, low=0.0, low_open=True)
    need = max((p.tau for p in probes), default=0) + 1
    if len(history) < need:
        raise ValueError(f"history must hold w_t .. w_(t-{need - 1}) ({need} iterates), "
                         f"got {len(history)}")
    gen = torch.Generator().manual_seed(0) if gen is None else gen
    w = history[0]
    base = _grad(loss, w, batch)
    u_sam = tuple(g * (1.0 / (_norm(base) + NORM_EPS)) for g in base)
    p_sam = penalty_gradient(loss, w, u_sam, rho, batch, base)
    n_sam = _norm(p_sam)
    rows = []
    for probe in probes:
        u = variant_direction(loss, history, probe, batch, other, gen)
        p = penalty_gradient(loss, w, u, rho, batch, base)
        n_var = _norm(p)
        row = {"probe": probe.name, "tau": probe.tau, "ascent": probe.ascent,
               "fraction": probe.fraction,
               "cos_penalty": _dot(p, p_sam) / (n_var * n_sam) if n_var * n_sam > 0
               else math.nan,
               "norm_ratio": n_var / n_sam if n_sam > 0 else math.nan,
               "cos_direction": _dot(u, u_sam) / max(_norm(u) * _norm(u_sam), 1e-300),
               "p_sam_norm": n_sam}
        if vectors:
            row.update(p_var=p, p_sam=p_sam, u_var=u, u_sam=u_sam)
        rows.append(row)
    return rows


def checkpoints(steps: int, count: int, first: int = 4) -> list[int]:
    """``count`` steps spread evenly over ``[max(first, steps // 20), steps − 1]`` (after the
    first few steps, so that :math:`w_{t-4}` is a real iterate)."""
    count = check_int("count", count, low=1)
    lo = min(max(first, steps // 20), steps - 1)
    return sorted({int(round(v)) for v in np.linspace(lo, steps - 1, count)})


def probe_network(model: nn.Module, history: Sequence[list[torch.Tensor]], batch: Any,
                  other: Any, rho: float, probes: Sequence[Probe], gen: torch.Generator
                  ) -> list[dict[str, Any]]:
    """:func:`measure` on a network: mean cross-entropy in train mode (batch statistics), every
    pass under :func:`bn_frozen` so the running statistics stay as they are."""
    loss, _ = functional_loss(model)
    with bn_frozen(model):
        return measure(loss, [tuple(h) for h in history], batch, other, rho, probes, gen)


def run_one(setting: Setting, driver: Driver, seed: int, *, n_checkpoints: int = 8,
            probes: Sequence[Probe] = PROBES, flat: Mapping[str, Any] | None = None,
            first_checkpoint: int = 4) -> dict[str, Any]:
    """Train ``driver`` on ``setting`` for ``seed`` and probe it at :func:`checkpoints`
    (from step ``max(first_checkpoint, steps // 20)`` on);
    ``flat`` (keywords of :func:`asam_theory.experiments.flatness.flatness`, e.g.
    ``{"probes": 100, "ms": (16, 64)}``) also measures the final weights' flatness (ρ of the
    setting, held-out = the validation split; not measured when the loss turned non-finite).
    Returns ``{"setting", "driver", "seed", "rows", "test_acc", "val_acc", "final_loss",
    "collapsed", "collapse", "collapse_kind", "flatness"}``."""
    at = set(checkpoints(setting.steps, n_checkpoints, first_checkpoint))
    gen = torch.Generator().manual_seed(int(seed) + PROBE_SEED_OFFSET)
    keep = max((p.tau for p in probes), default=0)
    rows: list[dict[str, Any]] = []
    data_holder: dict[str, Any] = {}

    def on_step(t: int, model: nn.Module, history: Sequence[list[torch.Tensor]],
                batch: Any) -> None:
        if t not in at:
            return
        data = data_holder["data"]
        idx = torch.randint(0, len(data.y_train), (setting.batch_size,), generator=gen)
        other = (data.x_train[idx], data.y_train[idx])
        for r in probe_network(model, history, batch, other, setting.rho, probes, gen):
            rows.append({"step": t, **r})

    from asam_theory.experiments.probe_runs import load

    data_holder["data"] = load(setting, seed)
    out = train(setting, driver, seed, data=data_holder["data"], on_step=on_step, keep=keep)
    result = {"setting": setting.name, "driver": driver.name, "seed": int(seed), "rows": rows,
              **{k: out[k] for k in ("test_acc", "val_acc", "final_loss", "collapsed",
                                     "collapse", "collapse_kind")},
              "flatness": None}
    if flat is not None and out["collapse_kind"] != "non-finite":
        from asam_theory.experiments.flatness import flatness

        d = out["data"]
        result["flatness"] = flatness(out["model"], (d.x_train, d.y_train),
                                      (d.x_val, d.y_val), rho=setting.rho, seed=seed,
                                      **dict(flat)).as_dict()
    return result


def _run_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`run_one` from a picklable config, with one intra-op thread (a process pool runs
    configs side by side); the caller's thread count is restored."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_one(Setting(**config["setting"]), Driver(**config["driver"]),
                       int(config["seed"]), n_checkpoints=int(config["n_checkpoints"]),
                       probes=[Probe(**p) for p in config["probes"]], flat=config["flat"],
                       first_checkpoint=int(config.get("first_checkpoint", 4)))
    finally:
        torch.set_num_threads(prev)


def run_penalty(settings: Sequence[Setting] = SETTINGS[:1],
                drivers: Sequence[Driver] = DRIVERS, seeds: Sequence[int] = (0, 1, 2), *,
                n_checkpoints: int = 8, probes: Sequence[Probe] = PROBES,
                flat: Mapping[str, Any] | None = None, steps: int | None = None,
                executor: Executor | None = None,
                progress: Callable[[str], None] | None = None,
                first_checkpoint: int = 4) -> dict[str, Any]:
    """Every (setting, driver, seed) of :func:`run_one` (``steps`` overrides the settings'),
    each with one intra-op thread, on ``executor`` (e.g. a process pool; ``None``: here, in
    order), then :func:`summarise`.  Returns ``{"runs": [...], "summary": [...],
    "probes": [...]}``."""
    from dataclasses import replace

    if steps is not None:
        check_int("steps", steps, low=8)
    configs = [{"setting": asdict(s if steps is None else replace(s, steps=steps)),
                "driver": asdict(d), "seed": int(seed), "n_checkpoints": n_checkpoints,
                "probes": [asdict(p) for p in probes],
                "flat": None if flat is None else dict(flat),
                "first_checkpoint": int(first_checkpoint)}
               for s in settings for seed in seeds for d in drivers]
    results = (map(_run_config, configs) if executor is None
               else executor.map(_run_config, configs))
    runs = []
    for r in results:
        runs.append(r)
        if progress is not None:
            progress(f"{r['setting']} {r['driver']} seed {r['seed']}: test "
                     f"{100 * r['test_acc']:.1f} %")
    return {"runs": runs, "summary": summarise(runs), "probes": [asdict(p) for p in probes]}


def summarise(runs: Sequence[Mapping[str, Any]], confidence: float = 0.95
              ) -> list[dict[str, Any]]:
    """Per (setting, driver, probe): each seed's mean over checkpoints of ``cos_penalty``,
    ``norm_ratio`` and ``cos_direction``, then their mean with a Student-t interval over seeds
    (``{metric: {"mean", "low", "high", "n"}}``), and the lowest checkpoint mean over seeds
    (``cos_penalty_min_over_training``: does the cosine stay up?)."""
    groups: dict[tuple[str, str, str], dict[int, list[Mapping[str, Any]]]] = {}
    for run in runs:
        for r in run["rows"]:
            key = (run["setting"], run["driver"], r["probe"])
            groups.setdefault(key, {}).setdefault(run["seed"], []).append(r)
    out = []
    for (setting, driver, probe), by_seed in groups.items():
        first = next(iter(by_seed.values()))[0]
        row: dict[str, Any] = {"setting": setting, "driver": driver, "probe": probe,
                               "tau": first["tau"], "ascent": first["ascent"],
                               "fraction": first["fraction"], "seeds": len(by_seed)}
        for metric in ("cos_penalty", "norm_ratio", "cos_direction"):
            per_seed = [float(np.mean([r[metric] for r in rs])) for rs in by_seed.values()]
            ci = t_interval(per_seed, confidence)
            row[metric] = {k: ci[k] for k in ("mean", "low", "high", "n")}
        steps = sorted({r["step"] for rs in by_seed.values() for r in rs})
        row["cos_penalty_by_step"] = {
            int(t): float(np.mean([r["cos_penalty"] for rs in by_seed.values() for r in rs
                                   if r["step"] == t])) for t in steps}
        row["cos_penalty_min_over_training"] = min(row["cos_penalty_by_step"].values())
        out.append(row)
    return out


def table(summary: Sequence[Mapping[str, Any]], driver: str, setting: str | None = None
          ) -> str:
    """A Markdown table of the probes along ``driver``'s trajectory: cosine and norm ratio
    with their intervals, by batch (same/independent), τ and b′/b."""
    lines = ["| batch | τ | b′/b | cos(p_var, p_SAM) [95 % CI] | ‖p_var‖/‖p_SAM‖ [95 % CI] | "
             "cos(u_var, u_B) |", "|---|---|---|---|---|---|"]
    rows = [r for r in summary if r["driver"] == driver
            and (setting is None or r["setting"] == setting)]
    rows.sort(key=lambda r: (ASCENTS.index(r["ascent"]), r["tau"], r["fraction"]))
    for r in rows:
        c, n, d = r["cos_penalty"], r["norm_ratio"], r["cos_direction"]
        lines.append(f"| {r['ascent']} | {r['tau']} | 1/{round(1 / r['fraction'])} | "
                     f"{c['mean']:.3f} [{c['low']:.3f}, {c['high']:.3f}] | "
                     f"{n['mean']:.3f} [{n['low']:.3f}, {n['high']:.3f}] | {d['mean']:.3f} |")
    return "\n".join(lines)
