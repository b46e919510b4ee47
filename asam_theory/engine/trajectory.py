"""The result of a simulation: recorded arrays plus the full config that produced them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Trajectory:
    """Recorded metrics of ``M`` seeds.

    ``metrics[name]`` has shape ``(K, M)`` (``(K, M, d)`` for ``"x"``), recorded at
    ``times`` (state metrics, evaluated at :math:`x_t`).  ``step_metrics[name]`` are
    properties of the step taken *from* :math:`x_t` (e.g. ``"fidelity"``), recorded at
    ``step_times``.  ``diverged_at[m]`` is the first step after which seed ``m``'s iterate
    was non-finite or beyond the threshold (−1 if never), ``diverged_value[m]`` the norm
    :math:`\\|x\\|` seen then; recorded values of a diverged seed after that step are NaN and
    :meth:`summary` excludes the seed.
    """

    times: np.ndarray
    metrics: dict[str, np.ndarray]
    step_times: np.ndarray
    step_metrics: dict[str, np.ndarray]
    x_final: np.ndarray
    diverged_at: np.ndarray
    diverged_value: np.ndarray
    seeds: np.ndarray
    config: dict = field(default_factory=dict)

    @property
    def n_seeds(self) -> int:
        return int(self.seeds.size)

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_at >= 0

    def divergences(self) -> list[tuple[int, int, float]]:
        """``(seed, step, value)`` for each diverged seed."""
        return [(int(self.seeds[m]), int(self.diverged_at[m]), float(self.diverged_value[m]))
                for m in np.flatnonzero(self.diverged)]

    def final(self, name: str) -> np.ndarray:
        """Last recorded value of a scalar metric for the seeds that did not diverge."""
        return self.metrics[name][-1][~self.diverged]

    def summary(self) -> dict:
        """Means and standard errors over the non-diverged seeds of every scalar metric at the
        last record, the number of diverged seeds and the first divergence (step, value).
        Never contains NaN: a metric with no surviving seed is reported as ``None``."""
        ok = ~self.diverged
        n_ok = int(ok.sum())
        out: dict = {"n_seeds": self.n_seeds, "n_diverged": int((~ok).sum()),
                     "steps": int(self.times[-1])}
        if (~ok).any():
            first = int(np.argmin(np.where(ok, np.iinfo(np.int64).max, self.diverged_at)))
            out["first_divergence"] = {"seed": int(self.seeds[first]),
                                       "step": int(self.diverged_at[first]),
                                       "value": float(self.diverged_value[first])}
        for name, arr in {**self.metrics, **self.step_metrics}.items():
            if arr.ndim != 2:
                continue
            vals = arr[-1][ok]
            if n_ok == 0:
                out[name] = None
                continue
            out[name] = float(vals.mean())
            out[f"{name}_sem"] = float(vals.std(ddof=1) / np.sqrt(n_ok)) if n_ok > 1 else 0.0
        return out

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write a compressed ``.npz`` holding every array and the config as JSON."""
        path = Path(path)
        arrays = {f"metric__{k}": v for k, v in self.metrics.items()}
        arrays.update({f"step_metric__{k}": v for k, v in self.step_metrics.items()})
        np.savez_compressed(
            path, times=self.times, step_times=self.step_times, x_final=self.x_final,
            diverged_at=self.diverged_at, diverged_value=self.diverged_value, seeds=self.seeds,
            config=np.array(json.dumps(self.config)), **arrays)
        return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")

    @classmethod
    def load(cls, path: str | Path) -> Trajectory:
        with np.load(path, allow_pickle=False) as z:
            metrics = {k[len("metric__"):]: z[k] for k in z.files if k.startswith("metric__")}
            steps = {k[len("step_metric__"):]: z[k] for k in z.files
                     if k.startswith("step_metric__")}
            return cls(times=z["times"], metrics=metrics, step_times=z["step_times"],
                       step_metrics=steps, x_final=z["x_final"], diverged_at=z["diverged_at"],
                       diverged_value=z["diverged_value"], seeds=z["seeds"],
                       config=json.loads(str(z["config"])))
