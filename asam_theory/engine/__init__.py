"""The simulation engine: :func:`simulate` and :class:`Trajectory`."""

from asam_theory.engine.simulate import (
    STATE_METRICS,
    STEP_METRICS,
    DivergenceWarning,
    simulate,
    stability_limit,
)
from asam_theory.engine.trajectory import Trajectory

__all__ = ["DivergenceWarning", "STATE_METRICS", "STEP_METRICS", "Trajectory", "simulate",
           "stability_limit"]
