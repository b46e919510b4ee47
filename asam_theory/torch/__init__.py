"""PyTorch optimizers for (asynchronous) Sharpness-Aware Minimization and their baselines.

* :class:`AsyncSAM` — AsyncSAM (arXiv 2503.11147): ascent at stale weights in a worker thread on
  its own device and batch; ``deterministic=True`` for the sequential fixed-τ emulation.
* :class:`SAM` — SAM/ASAM with the davda54/sam API.
* :class:`SAMPa` — SAMPa (Xie et al., NeurIPS 2024) with its two gradients computed concurrently.
* :func:`tune_ascent_batch` — system-aware b′.
* :func:`bn_frozen` — BatchNorm bypass for perturbed passes.
"""

from asam_theory.torch._common import bn_frozen
from asam_theory.torch._worker import AscentWorkerError
from asam_theory.torch.asyncsam import AsyncSAM
from asam_theory.torch.sam import SAM
from asam_theory.torch.sampa import SAMPa
from asam_theory.torch.tuning import AscentBatchTuning, tune_ascent_batch

__all__ = [
    "AscentBatchTuning",
    "AscentWorkerError",
    "AsyncSAM",
    "SAM",
    "SAMPa",
    "bn_frozen",
    "tune_ascent_batch",
]
