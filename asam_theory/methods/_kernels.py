r"""Fused elementwise kernels for the engine's hot path, with a pure-numpy fallback.

One step of a SAM-type rule on a batch ``x`` of shape ``(M, d)`` needs, besides its gradient
products, the per-row norm of the ascent gradient, the perturbation
:math:`\epsilon=c\,g` with :math:`c=\rho/(\|g\|+\text{eps})`, the perturbed point
:math:`x+\epsilon`, the base step :math:`x-\eta g` and the squared norm of the new iterate
(divergence check).  In numpy each is a separate pass over ``(M, d)`` memory (six in all).
With numba the first three run as one pass per row while the row sits in L1 cache, and the
others as single passes without temporaries.

Numbers: elementwise results are bit-identical to the numpy expressions they replace (no
fast-math, no contraction into fused multiply-adds); row sums use four interleaved partial
sums, so a norm may differ from ``np.einsum``'s in the last bit (relative 1e-16).

``BACKEND`` is ``"numba"`` when numba imports (the ``fast`` extra) and the environment
variable ``ASAM_THEORY_KERNELS`` is not ``numpy``; otherwise ``"numpy"``.  Callers look the
functions up on this module at call time, so tests can swap backends.
"""

from __future__ import annotations

import math
import os

import numpy as np


# -- numpy reference implementations -------------------------------------------------------
def _np_perturb_into(g: np.ndarray, x: np.ndarray, rho: float, eps: float, normalize: bool,
                     e: np.ndarray, xp: np.ndarray) -> None:
    if normalize:
        np.multiply(g, (rho / (np.sqrt(np.einsum("md,md->m", g, g)) + eps))[:, None], out=e)
    else:
        np.multiply(g, rho, out=e)
    np.add(x, e, out=xp)


def _np_sgd_into(x: np.ndarray, g: np.ndarray, lr: float, out: np.ndarray,
                 sq: np.ndarray) -> None:
    np.multiply(g, -lr, out=out)
    out += x
    np.einsum("md,md->m", out, out, out=sq)


def _np_row_sq(x: np.ndarray) -> np.ndarray:
    return np.einsum("md,md->m", x, x)


def _load_numba():
    if os.environ.get("ASAM_THEORY_KERNELS", "").lower() == "numpy":
        return None
    try:
        from numba import njit
    except ImportError:
        return None

    jit = njit(cache=True, nogil=True, error_model="numpy")

    @jit
    def _sq_row(a, i):
        d = a.shape[1]
        s0 = s1 = s2 = s3 = 0.0
        j = 0
        while j + 4 <= d:
            s0 += a[i, j] * a[i, j]
            s1 += a[i, j + 1] * a[i, j + 1]
            s2 += a[i, j + 2] * a[i, j + 2]
            s3 += a[i, j + 3] * a[i, j + 3]
            j += 4
        while j < d:
            s0 += a[i, j] * a[i, j]
            j += 1
        return (s0 + s1) + (s2 + s3)

    @jit
    def perturb_into(g, x, rho, eps, normalize, e, xp):
        M, d = g.shape
        for i in range(M):
            c = rho / (math.sqrt(_sq_row(g, i)) + eps) if normalize else rho
            for j in range(d):
                v = g[i, j] * c
                e[i, j] = v
                xp[i, j] = x[i, j] + v

    @jit
    def sgd_into(x, g, lr, out, sq):
        M, d = x.shape
        for i in range(M):
            for j in range(d):
                out[i, j] = x[i, j] - lr * g[i, j]
            sq[i] = _sq_row(out, i)  # the row is still in L1

    @jit
    def row_sq(x):
        out = np.empty(x.shape[0])
        for i in range(x.shape[0]):
            out[i] = _sq_row(x, i)
        return out

    return perturb_into, sgd_into, row_sq


_NUMBA = _load_numba()
BACKEND = "numba" if _NUMBA is not None else "numpy"

#: ``perturb_into(g, x, rho, eps, normalize, e, xp)``: ``e = c g`` and ``xp = x + e``
#: (``c = rho / (||g_m|| + eps)`` per row if ``normalize`` else ``rho``).
#: ``sgd_into(x, g, lr, out, sq)``: ``out = x - lr g`` (``out`` must not alias ``x`` or ``g``)
#: and ``sq`` its squared row norms.
#: ``row_sq(x)``: squared row norms, shape ``(M,)``.
if _NUMBA is not None:
    perturb_into, sgd_into, row_sq = _NUMBA
else:
    perturb_into, sgd_into, row_sq = _np_perturb_into, _np_sgd_into, _np_row_sq

NUMPY_KERNELS = {"perturb_into": _np_perturb_into, "sgd_into": _np_sgd_into,
                 "row_sq": _np_row_sq}
