"""``run_sweep``'s run cache: an identical (task, config) is run once per cache and its rows
equal an uncached sweep's; a config that differs in any value, or another task, runs anew; a
verify run's checks share one cache (``Settings.runs``), a fresh ``Settings`` starts empty."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asam_theory.claims import Settings
from asam_theory.sweeps import RunCache, run_sweep

CALLS: list[dict] = []


def square(cfg: dict) -> dict:
    CALLS.append(dict(cfg))
    return {"y": cfg["x"] ** 2 + cfg.get("shift", 0)}


def pair(cfg: dict) -> list[dict]:
    CALLS.append(dict(cfg))
    return [{"y": cfg["x"]}, {"y": -cfg["x"]}]


@pytest.fixture(autouse=True)
def _clear():
    CALLS.clear()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=0, max_size=12),
       st.lists(st.integers(-5, 5), min_size=0, max_size=12))
def test_cached_rows_equal_uncached_and_each_config_runs_once(xs, ys):
    CALLS.clear()
    cache = RunCache()
    a = run_sweep(square, [{"x": x} for x in xs], cache=cache)
    b = run_sweep(square, [{"x": y} for y in ys], cache=cache)
    assert a == run_sweep(square, [{"x": x} for x in xs])
    assert b == run_sweep(square, [{"x": y} for y in ys])
    cached_calls = CALLS[:len(set(xs) | set(ys))]
    assert sorted(c["x"] for c in cached_calls) == sorted(set(xs) | set(ys))
    assert cache.misses == len(set(xs) | set(ys)) and cache.hits == len(xs) + len(ys) - \
        cache.misses and len(cache) == cache.misses


def test_another_value_or_another_task_runs_anew():
    cache = RunCache()
    run_sweep(square, [{"x": 2}], cache=cache)
    run_sweep(square, [{"x": 2, "shift": 0}], cache=cache)  # another config: its own run
    rows = run_sweep(pair, [{"x": 2}], cache=cache)  # another task: its own run
    assert rows == [{"x": 2, "y": 2}, {"x": 2, "y": -2}]
    assert [c for c in CALLS] == [{"x": 2}, {"x": 2, "shift": 0}, {"x": 2}]
    assert run_sweep(pair, [{"x": 2}], cache=cache) == rows and len(CALLS) == 3


def test_an_executor_runs_only_the_missing_configs():
    cache = RunCache()
    run_sweep(square, [{"x": 1}, {"x": 2}], cache=cache)
    with ThreadPoolExecutor(2) as ex:
        rows = run_sweep(square, [{"x": 3}, {"x": 1}, {"x": 3}], ex, cache=cache)
    assert rows == [{"x": 3, "y": 9}, {"x": 1, "y": 1}, {"x": 3, "y": 9}]
    assert [c["x"] for c in CALLS] == [1, 2, 3]


def test_settings_share_one_cache_per_run_and_a_fresh_one_starts_empty():
    s = Settings(mode="quick")
    run_sweep(square, [{"x": 4}], cache=s.runs)
    assert len(s.runs) == 1 and len(Settings(mode="quick").runs) == 0
    assert Settings(mode="quick") == Settings(mode="quick")  # the cache is not compared
