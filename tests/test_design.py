"""The Williams design behind the benchmarks' run orders (asam_theory.design): every row a
permutation, every position and every ordered predecessor pair equally often per cycle."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asam_theory.design import balanced_order, williams_rows


@given(st.integers(min_value=1, max_value=24))
def test_williams_rows_are_balanced(n: int) -> None:
    rows = williams_rows(n)
    reps = 1 if n % 2 == 0 else 2  # each pair / position this often per cycle
    assert len(rows) == reps * n
    assert all(sorted(row) == list(range(n)) for row in rows)
    positions = Counter((pos, x) for row in rows for pos, x in enumerate(row))
    assert set(positions.values()) == {reps}
    pairs = Counter((a, b) for row in rows for a, b in zip(row, row[1:], strict=False))
    if n > 1:
        assert len(pairs) == n * (n - 1) and set(pairs.values()) == {reps}


def test_known_square_for_four() -> None:
    assert williams_rows(4) == [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]


def test_a_rotated_order_is_not_balanced_but_this_one_is() -> None:
    names = ["sgd", "sam", "asyncsam", "control", "sgd2", "sam2"]
    preceded = Counter()
    for r in range(len(names)):
        order = balanced_order(names, r)
        preceded.update(a for a, b in zip(order, order[1:], strict=False) if b == "asyncsam")
    assert set(preceded) == set(names) - {"asyncsam"}  # a rotation would give {"sam"} only
    assert balanced_order(names, 6) == balanced_order(names, 0)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, inf\]"):
        williams_rows(0)
    with pytest.raises(ValueError, match=r"r must be an integer in \[0, inf\]"):
        balanced_order(["a"], -1)
    with pytest.raises(ValueError, match="items must hold at least one entry"):
        balanced_order([], 0)
