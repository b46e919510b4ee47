"""Experiment drivers built on the optimizers of :mod:`asam_theory.torch` (one layer below).

* :func:`run_method` (alias ``train_loop``) — one training loop for every method and every
  real-data claim (:mod:`~asam_theory.experiments.training`); the methods are entries of
  :mod:`~asam_theory.experiments.steppers` (one adapter per step form), every run is
  diagnosed by :mod:`~asam_theory.experiments.collapse` and hyper-parameters are chosen by
  :mod:`~asam_theory.experiments.selection`;
* :mod:`~asam_theory.experiments.models` — MLP and small 1-D/2-D CNNs (optional BatchNorm) for
  the real data;
* :mod:`~asam_theory.experiments.leaderboard` — the real-data leaderboard protocol
  (``run_leaderboard``, ``LeaderboardConfig``, ``LeaderboardMethod``);
* :mod:`~asam_theory.experiments.ablation` — the paired ablation of AsyncSAM's two departures
  from SAM (staleness, independent ascent batch), trained through the same loop;
* :func:`run_bench` — the interleaved step-time benchmark, pooled over runs by
  :mod:`~asam_theory.experiments.bench_pool`;
* :func:`steady_malloc` — fix glibc's allocator thresholds so that CPU training steps stop
  faulting in fresh pages (:mod:`~asam_theory.experiments.allocator`);
* :func:`threaded_quadratic_run` — the real threaded AsyncSAM on a quadratic with known
  constants (:mod:`~asam_theory.experiments.realrun`).

The system-aware b′ tuner stays in :mod:`asam_theory.torch.tuning`: ``AsyncSAM.tuned`` is part
of the optimizer's interface and the tuner needs nothing but the ascent worker.
"""

from asam_theory.experiments.allocator import steady_malloc
from asam_theory.experiments.bench import run_bench
from asam_theory.experiments.realrun import ThreadedQuadraticRun, threaded_quadratic_run
from asam_theory.experiments.training import RunResult, recalibrate_bn, run_method, train_loop

__all__ = ["RunResult", "ThreadedQuadraticRun", "recalibrate_bn", "run_bench", "run_method",
           "steady_malloc", "threaded_quadratic_run", "train_loop"]
