"""Input validation for every layer of asam-theory, with one argument order: ``(name, value, …)``.

Every error is a :class:`ValueError` that names the parameter, states the allowed range and
shows what was given, e.g. ``rho must lie in [0, inf), got -0.1``.  The problems, rules,
engine, theory, torch optimizers and the CLI all validate through these functions, so a
message reads the same wherever the bad value entered.  An unstable step size is not an
error but a :class:`StabilityWarning` that states the limit (:func:`warn_unstable`).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable

import numpy as np


class StabilityWarning(UserWarning):
    """The step size is beyond a known stability limit of the problem/rule pair."""


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    lb = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hb = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
    return f"{lb}, {hb}"


def check_real(name: str, value, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """Return ``float(value)`` after checking it is a finite real number in the stated range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    lo_ok = low is None or (value > low if low_open else value >= low)
    hi_ok = high is None or (value < high if high_open else value <= high)
    if not (lo_ok and hi_ok):
        raise ValueError(f"{name} must lie in {_interval(low, high, low_open, high_open)}, "
                         f"got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    """A finite real number in ``(0, inf)``."""
    return check_real(name, value, low=0.0, low_open=True)


def check_nonnegative(name: str, value) -> float:
    """A finite real number in ``[0, inf)``."""
    return check_real(name, value, low=0.0)


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``int(value)`` after checking it is an integer in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        lb = "-inf" if low is None else str(low)
        hb = "inf" if high is None else str(high)
        raise ValueError(f"{name} must be an integer in [{lb}, {hb}], got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lb = "-inf" if low is None else str(low)
        hb = "inf" if high is None else str(high)
        raise ValueError(f"{name} must be an integer in [{lb}, {hb}], got {value!r}")
    return value


def check_choice(name: str, value, choices: Iterable):
    """Return ``value`` after checking it is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        try:
            shown = sorted(choices)
        except TypeError:
            shown = choices
        raise ValueError(f"{name} must be one of {shown}, got {value!r}")
    return value


def check_symmetric(name: str, matrix, rtol: float = 1e-10) -> np.ndarray:
    """Check a non-empty square symmetric finite matrix; returns its exact symmetrisation
    (float64)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} must have finite entries")
    scale = max(float(np.abs(matrix).max()), 1.0)
    asym = float(np.abs(matrix - matrix.T).max())
    if asym > rtol * scale:
        raise ValueError(
            f"{name} must be symmetric (max |H - H^T| = {asym:.3g} exceeds {rtol:g} x scale)"
        )
    return 0.5 * (matrix + matrix.T)


def warn_unstable(lr: float, limit: float, what: str, stacklevel: int = 3) -> None:
    """Warn (:class:`StabilityWarning`) that ``lr`` exceeds the stability ``limit`` of
    ``what``; the message states the limit."""
    warnings.warn(
        f"lr={lr:g} exceeds the stability limit {limit:.6g} of {what}; "
        "expect divergence (the engine reports it per seed)",
        StabilityWarning,
        stacklevel=stacklevel,
    )


__all__ = ["StabilityWarning", "check_choice", "check_int", "check_nonnegative",
           "check_positive", "check_real", "check_symmetric", "warn_unstable"]
