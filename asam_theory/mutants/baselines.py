"""Mutants of the published-baseline claim (``BASELINES``): family ``real_data``.

* ``mnist1d-labels-shuffled`` — the data path the leaderboard loads through
  (``asam_theory.data.load_dataset``, looked up at call time by
  :func:`asam_theory.experiments.leaderboard.sgd_baseline` and the leaderboard's cells) hands
  out training labels permuted relative to their inputs: nothing learnable is left, the test
  accuracy falls to chance (≈ 10 %), far below both the published 68 %/94 % band and the quick
  check's 32 % floor.
* ``leaderboard-lr-100x-small`` — the leaderboard's runs reach the training loop with the
  learning rate divided by 100 (``asam_theory.experiments.leaderboard.run_method``): after
  2,000 steps the MLP and the CNN sit near 21–28 % (measured, seeds 0–1), after 500 steps the
  MLP near 21 %, below every reference the checks use.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from asam_theory.mutants.base import Mutant


def _shuffled_labels() -> list[tuple[Any, Any]]:
    import asam_theory.data as data

    original = data.load_dataset

    def load(name: str, **kw: Any) -> Any:
        ds = original(name, **kw)
        perm = np.random.default_rng(kw.get("seed", 0) + 9_973).permutation(len(ds.y_train))
        return replace(ds, y_train=ds.y_train[perm], y_train_clean=ds.y_train_clean[perm],
                       noisy=ds.noisy[perm])

    return [("asam_theory.data.load_dataset", load)]


def _lr_small() -> list[tuple[Any, Any]]:
    from asam_theory.experiments import leaderboard

    original = leaderboard.run_method

    def run(*args: Any, **kw: Any) -> Any:
        if "lr" in kw:
            kw["lr"] = kw["lr"] / 100
        return original(*args, **kw)

    return [("asam_theory.experiments.leaderboard.run_method", run)]


MUTANTS: tuple[Mutant, ...] = (
    Mutant("mnist1d-labels-shuffled", "real_data",
           "the leaderboard's data path permutes the training labels relative to their inputs",
           _shuffled_labels, checks=("BASELINES.mlp", "BASELINES.cnn")),
    Mutant("leaderboard-lr-100x-small", "real_data",
           "the leaderboard trains with the learning rate 100 times too small",
           _lr_small, checks=("BASELINES.mlp", "BASELINES.cnn")),
)
