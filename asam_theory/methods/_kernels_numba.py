r"""The numba versions of :mod:`asam_theory.methods._kernels` (imported on first use there).

Module-level functions so that numba's on-disk cache (``__pycache__``, or the user cache
directory where that is read-only) spares later processes the compilation.  No fast-math:
elementwise results equal numpy's bit for bit; row sums use four interleaved partial sums.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def _jit(fn):
    try:
        return njit(cache=True, nogil=True, error_model="numpy")(fn)
    except RuntimeError:  # no writable cache location: compile per process instead
        return njit(cache=False, nogil=True, error_model="numpy")(fn)


@_jit
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

@_jit
def perturb_into(g, x, rho, eps, normalize, c, xp):
    M, d = g.shape
    for i in range(M):
        ci = rho / (math.sqrt(_sq_row(g, i)) + eps) if normalize else rho
        c[i] = ci
        for j in range(d):
            xp[i, j] = x[i, j] + g[i, j] * ci

@_jit
def sgd_into(x, g, lr, out, sq):
    M, d = x.shape
    for i in range(M):
        for j in range(d):
            out[i, j] = x[i, j] - lr * g[i, j]
        sq[i] = _sq_row(out, i)  # the row is still in L1

@_jit
def row_sq(x):
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = _sq_row(x, i)
    return out
