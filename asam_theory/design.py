r"""Run orders for interleaved timing: a crossover design balanced for carry-over.

Every benchmark here times several methods in rounds, each method's block of steps right after
another's. A block can leave state behind that the next block pays for or profits from: the
caches and the memory bandwidth it used, an OpenMP thread of a two-thread block still
spinning, a worker thread that has just finished. Rotating one fixed order from round to round
(``names[r:] + names[:r]``) spreads slow drifts over all methods, but keeps every method's
predecessor the same in every round: what the predecessor leaves behind becomes part of that
method's time, and only of that method's.

A **Williams design** (E. J. Williams, "Experimental designs balanced for the estimation of
residual effects of treatments", *Australian Journal of Scientific Research* A 2(3), 1949,
pp. 149–168) removes this: over one cycle of rows every method is preceded by every other
method equally often, and sits at every position equally often. For n methods the first row
is :math:`0, 1, n-1, 2, n-2, 3, \dots`; row i adds i to each entry (mod n). For even n these n
rows are balanced; for odd n the n rows of the mirrored first row follow (2n rows in all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from asam_theory.validation import check_int

T = TypeVar("T")


def williams_rows(n: int) -> list[list[int]]:
    """The rows of a Williams design for ``n`` treatments (``n`` rows for even n, ``2n`` for
    odd n); each row is a permutation of ``range(n)``."""
    n = check_int("n", n, low=1)
    first = [0]
    lo, hi = 1, n - 1
    while len(first) < n:
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    rows = [[(x + i) % n for x in first] for i in range(n)]
    if n % 2:
        rows += [row[::-1] for row in rows]
    return rows


def balanced_order(items: Sequence[T], r: int) -> list[T]:
    """The order of round ``r`` (0-based): row ``r mod len(rows)`` of the Williams design over
    ``items``. Over every full cycle of rows each item follows each other item equally often."""
    r = check_int("r", r, low=0)
    if not items:
        raise ValueError("items must hold at least one entry")
    rows = williams_rows(len(items))
    return [items[i] for i in rows[r % len(rows)]]


__all__ = ["balanced_order", "williams_rows"]
