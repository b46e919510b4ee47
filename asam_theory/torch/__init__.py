"""PyTorch optimizers for (asynchronous) Sharpness-Aware Minimization and their baselines.

* :class:`AsyncSAM` — AsyncSAM (arXiv 2503.11147): ascent at stale weights in a worker thread on
  its own device and batch; ``deterministic=True`` for the sequential fixed-τ emulation;
  worker knobs in :class:`WorkerOptions`; ``AsyncSAM.tuned(...)`` picks b′ by measurement.
* :class:`SAM` — SAM/ASAM with the davda54/sam API.
* :class:`SAMPa` — SAMPa (Xie et al., NeurIPS 2024) with its two gradients computed concurrently.
* :class:`LookSAM`, :class:`AESAM`, :class:`KSAM`, :class:`SSAM` — efficient-SAM peers
  (same names as the numpy rules in :mod:`asam_theory.methods`).
* :class:`LookAhead` — look-ahead ascent batches: the worker gets B_{t+τ} when step t starts.
* :class:`StepBatches` — the short form's ascent batches (:meth:`AsyncSAM.for_model`): the
  snapshot w_t is evaluated on the batch passed to ``step`` at step t.
* :func:`tune_ascent_batch` — system-aware b′.
* :func:`bn_frozen` — BatchNorm bypass for perturbed passes.
* :class:`SAMFamily` — shared base of the SAM-family optimizers and the per-sample loss
  interface (:mod:`asam_theory.torch.sam_base`).
* :class:`ARSAM`, :class:`AUSAM`, :class:`BiSAM`, :class:`RWP` — efficient-SAM peers
  (``docs/methods.md`` §7, §8, §14b, §14).
* :func:`recalibrate_bn` — BatchNorm statistics recomputed at the final weights.
* :func:`ascent_pass`, :func:`accumulate` — the training stack (:mod:`asam_theory.torch.stack`:
  DDP's per-replica ascent, gradient accumulation; mixed precision and ``max_grad_norm``
  clipping are options of the optimizers' steps).

The experiment drivers built on these optimizers (training loop, models, leaderboard,
ablation, bench, threaded quadratic runs) live one layer up, in
:mod:`asam_theory.experiments`.
"""

from asam_theory.torch._common import bn_frozen
from asam_theory.torch._worker import AscentWorkerError
from asam_theory.torch.aesam import AESAM
from asam_theory.torch.arsam import ARSAM
from asam_theory.torch.asyncsam import AsyncSAM, WorkerOptions
from asam_theory.torch.ausam import AUSAM
from asam_theory.torch.bisam import BiSAM
from asam_theory.torch.bn import recalibrate_bn
from asam_theory.torch.ksam import KSAM
from asam_theory.torch.lookahead import LookAhead, StepBatches
from asam_theory.torch.looksam import LookSAM
from asam_theory.torch.rwp import RWP
from asam_theory.torch.sam import SAM
from asam_theory.torch.sam_base import SAMFamily, select_samples
from asam_theory.torch.sampa import SAMPa
from asam_theory.torch.ssam import SSAM
from asam_theory.torch.stack import accumulate, ascent_pass
from asam_theory.torch.tuning import AscentBatchTuning, tune_ascent_batch

__all__ = [
    "AESAM",
    "KSAM",
    "LookSAM",
    "SSAM",
    "ARSAM",
    "AUSAM",
    "BiSAM",
    "RWP",
    "AscentBatchTuning",
    "AscentWorkerError",
    "AsyncSAM",
    "LookAhead",
    "SAM",
    "SAMFamily",
    "SAMPa",
    "StepBatches",
    "bn_frozen",
    "select_samples",
    "WorkerOptions",
    "accumulate",
    "ascent_pass",
    "recalibrate_bn",
    "tune_ascent_batch",
]
