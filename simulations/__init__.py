"""Experiment definitions: sweeps of configs run through any ``concurrent.futures.Executor``."""

from .sweep import DaskExecutor, RunCache, Sweep, grid, make_executor, run_sweep, write_table

__all__ = ["DaskExecutor", "RunCache", "Sweep", "grid", "make_executor", "run_sweep", "write_table"]
