"""A problem wrapper that logs the batches the numpy engine draws, so a torch optimizer can replay
them (shared by the peer equivalence tests)."""

from __future__ import annotations

import numpy as np

from asam_theory.problems import ProblemWrapper


class Recorder(ProblemWrapper):
    """Logs every drawn batch by stream, so torch can replay them."""

    def __init__(self, problem):
        super().__init__(problem)
        self.draws: dict[str, list] = {}

    def sample_batch(self, streams, stream, batch_size):
        b = self.base.sample_batch(streams, stream, batch_size)
        self.draws.setdefault(stream, []).append(None if b is None else np.array(b))
        return b
