"""The optimizers' worker threads alive in this process (shared by the lifecycle and fault
tests): AsyncSAM's ascent worker and SAMPa's y-gradient worker."""

from __future__ import annotations

import threading

WORKER_NAMES = ("asam-ascent", "sampa-y-gradient")


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in WORKER_NAMES and t.is_alive()]
