r"""Fused affine products for the engine's hot path.

:math:`xH-\mathbf 1b^\top` for a batch ``x`` of shape ``(M, d)`` and symmetric ``H`` in one BLAS
call: ``dgemm`` computes :math:`\alpha AB+\beta C` in place of ``C``; a C-ordered ``(M, d)``
array is the Fortran-ordered transpose, so :math:`(xH-b)^\top=H x^\top+(-b\mathbf 1^\top)`
needs no copy of ``x``.  This saves the separate broadcast subtraction (a quarter of a
matrix product at ``d = 100``) and, with ``out``, the allocation of the result.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import dgemm


class AffineGrad:
    """``x @ H - b`` for symmetric ``H``, fused when ``x`` is a C-contiguous float64 batch."""

    def __init__(self, H: np.ndarray, b: np.ndarray) -> None:
        self.H = np.asfortranarray(H)  # symmetric: H^T = H, any order is H itself
        self.b = b
        self._neg_b = np.ascontiguousarray(-np.asarray(b, dtype=np.float64))

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if not (x.ndim == 2 and x.dtype == np.float64 and x.flags.c_contiguous):
            g = np.matmul(x, self.H)
            g -= self.b
            return g
        if out is None or out.shape != x.shape or not out.flags.c_contiguous or out is x:
            out = np.empty_like(x)
        out[...] = self._neg_b  # row broadcast: reads d numbers, not M d
        res = dgemm(1.0, self.H, x.T, beta=1.0, c=out.T, overwrite_c=1)
        if not np.shares_memory(res, out):  # BLAS declined to work in place
            np.copyto(out, res.T)
        return out
