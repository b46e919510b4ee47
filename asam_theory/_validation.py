"""Input validation shared by the package: every error names the parameter and its allowed range."""

from __future__ import annotations

import numbers
import warnings

import numpy as np


class StabilityWarning(UserWarning):
    """The step size is beyond a known stability limit of the problem/rule pair."""


def check_real(name: str, value, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """Return ``float(value)`` after checking it is a finite real number in the stated range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    lo_ok = low is None or (value > low if low_open else value >= low)
    hi_ok = high is None or (value < high if high_open else value <= high)
    if not (lo_ok and hi_ok):
        lb = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hb = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        raise ValueError(f"{name} must lie in {lb}, {hb}, got {value!r}")
    return value


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``int(value)`` after checking it is an integer in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lb = "-inf" if low is None else str(low)
        hb = "inf" if high is None else str(high)
        raise ValueError(f"{name} must be an integer in [{lb}, {hb}], got {value!r}")
    return value


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_symmetric(name: str, matrix: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """Check a square symmetric matrix; returns its exact symmetrisation (as float64)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} must have finite entries")
    scale = max(float(np.abs(matrix).max()), 1.0)
    asym = float(np.abs(matrix - matrix.T).max())
    if asym > rtol * scale:
        raise ValueError(
            f"{name} must be symmetric (max |H - H^T| = {asym:.3g} exceeds {rtol:g} x scale)"
        )
    return 0.5 * (matrix + matrix.T)


def warn_unstable(lr: float, limit: float, what: str) -> None:
    warnings.warn(
        f"lr={lr:g} exceeds the stability limit {limit:.6g} of {what}; "
        "expect divergence (the engine reports it per seed)",
        StabilityWarning,
        stacklevel=3,
    )
