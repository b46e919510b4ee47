r"""Fused elementwise kernels for the engine's hot path, with a pure-numpy fallback.

One step of a SAM-type rule on a batch ``x`` of shape ``(M, d)`` needs, besides its gradient
products, the per-row norm of the ascent gradient, the perturbed point :math:`x+c\,g` with
:math:`c=\rho/(\|g\|+\text{eps})`, the base step :math:`x-\eta g` and the squared norm of the
new iterate (divergence check).  In numpy each is a separate pass over ``(M, d)`` memory (six
in all, with the perturbation :math:`\epsilon=c\,g` written out).  With numba the scale and
the perturbed point are one pass per row while the row sits in L1 cache, the base step and
its norms another; ε itself is only formed when a caller asks for it.

Numbers: elementwise results are bit-identical to the numpy expressions they replace (no
fast-math, no contraction into fused multiply-adds); row sums use four interleaved partial
sums, so a norm may differ from ``np.einsum``'s in the last bit (relative 1e-16).

``BACKEND`` is ``"numba"`` when numba is installed (the ``fast`` extra) and the environment
variable ``ASAM_THEORY_KERNELS`` is not ``numpy``; otherwise ``"numpy"``.  Numba is imported on
the first call with at least ``MIN_NUMBA_SIZE`` elements (small problems never pay its start-up);
the kernels themselves are in :mod:`asam_theory.methods._kernels_numba`.  Callers look the
functions up on this module at call time, so tests can swap in the numpy ones.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np


# -- numpy reference implementations -------------------------------------------------------
def _np_perturb_into(g: np.ndarray, x: np.ndarray, rho: float, eps: float, normalize: bool,
                     c: np.ndarray, xp: np.ndarray) -> None:
    if normalize:
        np.divide(rho, np.sqrt(np.einsum("md,md->m", g, g)) + eps, out=c)
    else:
        c.fill(rho)
    np.multiply(g, c[:, None], out=xp)
    xp += x


def _np_sgd_into(x: np.ndarray, g: np.ndarray, lr: float, out: np.ndarray,
                 sq: np.ndarray) -> None:
    np.multiply(g, -lr, out=out)
    out += x
    np.einsum("md,md->m", out, out, out=sq)


def _np_row_sq(x: np.ndarray) -> np.ndarray:
    return np.einsum("md,md->m", x, x)


def _numba_wanted() -> bool:
    if os.environ.get("ASAM_THEORY_KERNELS", "").lower() == "numpy":
        return False
    return importlib.util.find_spec("numba") is not None


BACKEND = "numba" if _numba_wanted() else "numpy"

#: arrays with fewer elements use the numpy kernels: numba's one-off import and start-up
#: (about a second per process) only pays off on large batches
MIN_NUMBA_SIZE = 1 << 15

_nb = None


def _numba():
    """The numba kernels module, imported on first use (``None`` on the numpy backend)."""
    global _nb
    if _nb is None and BACKEND == "numba":
        from asam_theory.methods import _kernels_numba

        _nb = _kernels_numba
    return _nb


def perturb_into(g: np.ndarray, x: np.ndarray, rho: float, eps: float, normalize: bool,
                 c: np.ndarray, xp: np.ndarray) -> None:
    """The per-row scale ``c = rho / (||g_m|| + eps)`` if ``normalize`` else ``rho`` (shape
    ``(M,)``) and the perturbed point ``xp = x + c g``; the perturbation ``ε = c g`` itself is
    not written (:class:`~asam_theory.methods.base.StepInfo` forms it on demand, with the same
    numbers)."""
    if g.size >= MIN_NUMBA_SIZE and (nb := _numba()) is not None:
        nb.perturb_into(g, x, rho, eps, normalize, c, xp)
    else:
        _np_perturb_into(g, x, rho, eps, normalize, c, xp)


def sgd_into(x: np.ndarray, g: np.ndarray, lr: float, out: np.ndarray, sq: np.ndarray) -> None:
    """``out = x - lr g`` (``out`` must not alias ``x`` or ``g``) and ``sq`` its squared row
    norms."""
    if x.size >= MIN_NUMBA_SIZE and (nb := _numba()) is not None:
        nb.sgd_into(x, g, lr, out, sq)
    else:
        _np_sgd_into(x, g, lr, out, sq)


def row_sq(x: np.ndarray) -> np.ndarray:
    """Squared row norms, shape ``(M,)``."""
    if x.size >= MIN_NUMBA_SIZE and (nb := _numba()) is not None:
        return nb.row_sq(x)
    return _np_row_sq(x)


NUMPY_KERNELS = {"perturb_into": _np_perturb_into, "sgd_into": _np_sgd_into,
                 "row_sq": _np_row_sq}
