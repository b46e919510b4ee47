"""PyTorch optimizers for (asynchronous) Sharpness-Aware Minimization and their baselines.

* :class:`AsyncSAM` — AsyncSAM (arXiv 2503.11147): ascent at stale weights in a worker thread on
  its own device and batch; ``deterministic=True`` for the sequential fixed-τ emulation;
  worker knobs in :class:`WorkerOptions`; ``AsyncSAM.tuned(...)`` picks b′ by measurement.
* :class:`SAM` — SAM/ASAM with the davda54/sam API.
* :class:`SAMPa` — SAMPa (Xie et al., NeurIPS 2024) with its two gradients computed concurrently.
* :func:`tune_ascent_batch` — system-aware b′.
* :func:`bn_frozen` — BatchNorm bypass for perturbed passes.
* :func:`run_method` (alias ``train_loop``) — one training loop for sgd/sam/asyncsam/sampa.
* :func:`threaded_quadratic_run` — the real threaded AsyncSAM on a quadratic with known constants.
* :func:`run_bench` — interleaved step-time benchmark.
* :mod:`asam_theory.torch.models` — MLP and small 1-D/2-D CNNs (optional BatchNorm) for the real
  data; :mod:`asam_theory.torch.leaderboard` — the real-data leaderboard protocol
  (``run_leaderboard``, ``LeaderboardConfig``, ``LeaderboardMethod``).
"""

from asam_theory.torch._common import bn_frozen
from asam_theory.torch._worker import AscentWorkerError
from asam_theory.torch.asyncsam import AsyncSAM, WorkerOptions
from asam_theory.torch.bench import run_bench
from asam_theory.torch.realrun import ThreadedQuadraticRun, threaded_quadratic_run
from asam_theory.torch.sam import SAM
from asam_theory.torch.sampa import SAMPa
from asam_theory.torch.training import RunResult, recalibrate_bn, run_method, train_loop
from asam_theory.torch.tuning import AscentBatchTuning, tune_ascent_batch

__all__ = [
    "AscentBatchTuning",
    "AscentWorkerError",
    "AsyncSAM",
    "RunResult",
    "SAM",
    "SAMPa",
    "ThreadedQuadraticRun",
    "bn_frozen",
    "recalibrate_bn",
    "run_bench",
    "run_method",
    "threaded_quadratic_run",
    "train_loop",
    "WorkerOptions",
    "tune_ascent_batch",
]
