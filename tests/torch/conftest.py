"""Fixtures shared by the torch tests."""

from __future__ import annotations

import gc
import time

import pytest
from asam_threads import worker_threads


@pytest.fixture
def no_leftover_threads():
    """No worker thread before the test, and none left (within 5 s) after it."""
    assert worker_threads() == []
    yield
    gc.collect()
    deadline = time.monotonic() + 5.0
    while worker_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker_threads() == []
