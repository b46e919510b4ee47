"""Sweeps as code: a list of configs → one task per config on an executor → a tidy table.

The task is a module-level function ``fn(config: dict) -> dict | list[dict]`` (picklable), so
the same sweep runs in this process, on a local process pool, or on a Dask cluster through
:class:`DaskExecutor` — any :class:`concurrent.futures.Executor`.  Each row of the table is the
config merged with what the task returned.  Tasks are deterministic functions of their config
(seeds are part of it), so where a task runs does not change its result: a task whose worker
died is simply run again.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import multiprocessing as mp
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Task = Callable[[dict], "dict | list[dict]"]


def grid(**axes: Sequence) -> list[dict]:
    """The Cartesian product of the axes as a list of configs (first axis slowest)."""
    keys = list(axes)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*axes.values())]


def _limit_blas_threads() -> None:
    # one BLAS thread per worker process: the pool itself provides the parallelism
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass


#: how often :class:`DaskExecutor` resubmits a task the cluster gave up on after losing workers
DASK_RESUBMITS = 2


def _lost_worker_errors() -> tuple[type[BaseException], ...]:
    from distributed import KilledWorker
    from distributed.comm import CommClosedError

    return (KilledWorker, CommClosedError, CancelledError)


class DaskExecutor(Executor):
    """A :class:`concurrent.futures.Executor` on a ``distributed.Client`` that survives lost
    workers.

    The scheduler already reruns the tasks of a worker that dies (up to its
    ``distributed.scheduler.allowed-failures``, then it raises ``KilledWorker``); on top of
    that, :meth:`map` resubmits a task up to ``resubmits`` times when its future fails with a
    lost-worker error (``KilledWorker``, a closed connection, a cancelled future).  An exception
    raised *by the task* is not retried: tasks are deterministic, it would only recur.
    Tasks are submitted with ``pure=False``; results come back in input order.
    """

    def __init__(self, client, resubmits: int = DASK_RESUBMITS) -> None:
        if not isinstance(resubmits, int) or resubmits < 0:
            raise ValueError(f"resubmits must be an integer in [0, inf], got {resubmits!r}")
        self.client = client
        self.resubmits = resubmits
        self._lost = _lost_worker_errors()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self.client.get_executor(pure=False).submit(fn, *args, **kwargs)

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        calls = list(zip(*iterables, strict=False))
        futures = [self.client.submit(fn, *a, pure=False) for a in calls]

        def results():
            try:
                for i, a in enumerate(calls):
                    yield self._result(fn, a, futures, i, timeout)
            finally:
                for f in futures:
                    f.cancel()

        return results()

    def _result(self, fn, args: tuple, futures: list, i: int, timeout):
        for attempt in range(self.resubmits + 1):
            try:
                return futures[i].result(timeout=timeout)
            except self._lost:
                if attempt == self.resubmits:
                    raise
                futures[i] = self.client.submit(fn, *args, pure=False)
        raise AssertionError("unreachable")  # pragma: no cover

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to release: the client belongs to :func:`make_executor`."""


@contextlib.contextmanager
def make_executor(jobs: int = 1, scheduler: str | None = None) -> Iterator[Executor | None]:
    """``None`` (run inline) for ``jobs == 1``, a local process pool for ``jobs > 1``, or a
    :class:`DaskExecutor` on the cluster whose scheduler is at ``scheduler`` (an address like
    ``tcp://host:8786``)."""
    if scheduler:
        try:
            from distributed import Client
        except ImportError as exc:
            raise ValueError("scheduler requires the 'distributed' package "
                             "(pip install 'asam-theory[cluster]')") from exc
        client = Client(scheduler)
        try:
            yield DaskExecutor(client)
        finally:
            client.close()
        return
    if jobs < 1:
        raise ValueError(f"jobs must be an integer in [1, inf], got {jobs}")
    if jobs == 1:
        yield None
        return
    pool = ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"),
                               initializer=_limit_blas_threads)
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


class RunCache:
    """What tasks returned, by task and config, so that a sweep reuses a run an earlier sweep
    (of another check) already made instead of making it again.

    Sound because tasks are deterministic functions of their config (module docstring): the
    key is the task's qualified name and the config as canonical JSON, so only an identical
    run is reused.  One cache lives as long as one ``asam-theory verify`` run
    (``Settings.runs``); a process that patches code between sweeps (a mutant) must not share
    one across the patch — the power runner gives every repeat a fresh one.  ``hits`` and
    ``misses`` count configs served from the cache and run."""

    def __init__(self) -> None:
        self._results: dict[tuple[str, str], Any] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(fn: Task, config: Mapping) -> tuple[str, str]:
        name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        return name, json.dumps(config, sort_keys=True, default=str)

    def __len__(self) -> int:
        return len(self._results)

    def get(self, key: tuple[str, str]) -> Any:
        return self._results.get(key)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._results

    def put(self, key: tuple[str, str], result: Any) -> None:
        self._results[key] = result


def run_sweep(fn: Task, configs: Sequence[Mapping], executor: Executor | None = None,
              progress: bool = False, desc: str = "sweep",
              cache: RunCache | None = None) -> list[dict]:
    """Run ``fn`` on every config; returns rows in config order (config keys + results).
    With ``cache``, a config run before (by any sweep sharing the cache, or earlier in this
    one) is not run again: its result is reused."""
    configs = [dict(c) for c in configs]
    todo = configs
    keys: list[tuple[str, str]] = []
    todo_keys: list[tuple[str, str]] = []
    if cache is not None:
        keys = [cache.key(fn, c) for c in configs]
        first = {k: i for i, k in reversed(list(enumerate(keys))) if k not in cache}
        todo_keys = sorted(first, key=first.__getitem__)
        todo = [configs[first[k]] for k in todo_keys]
        cache.hits += len(configs) - len(todo)
        cache.misses += len(todo)
    if executor is None:
        results = map(fn, todo)
    else:
        results = executor.map(fn, todo)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(todo), desc=desc, leave=False)
    if cache is not None:
        for k, res in zip(todo_keys, results, strict=True):
            cache.put(k, res)
        results = [cache.get(k) for k in keys]
    rows: list[dict] = []
    for cfg, res in zip(configs, results, strict=True):
        for r in (res if isinstance(res, list) else [res]):
            rows.append({**cfg, **r})
    return rows


def write_table(rows: list[dict], path: str | Path) -> Path:
    """Write a tidy table as CSV (``.csv``) or JSON lines (anything else)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
    else:
        with path.open("w") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
    return path


@dataclass(frozen=True)
class Sweep:
    """A named sweep: a task and its configs."""

    name: str
    fn: Task
    configs: tuple[dict, ...]

    def run(self, executor: Executor | None = None, progress: bool = False) -> list[dict]:
        return run_sweep(self.fn, self.configs, executor, progress, desc=self.name)
