"""Experiment definitions: sweeps of configs run through any ``concurrent.futures.Executor``."""

from .sweep import Sweep, grid, make_executor, run_sweep, write_table

__all__ = ["Sweep", "grid", "make_executor", "run_sweep", "write_table"]
