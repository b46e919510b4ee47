r"""Per-seed random streams, drawn in blocks so that nothing loops over seeds per step.

Seed ``i`` of a run started with ``seed=s`` owns the generators
``default_rng(SeedSequence([s + i, k]))`` for stream ``k`` (``descent``, ``ascent``, ...).
Consequences the tests rely on:

* a run of ``M`` seeds draws exactly what ``M`` single-seed runs with seeds
  ``s, s+1, …, s+M-1`` draw;
* the ρ = 0 reductions are exact: the descent batches of SAM-type rules come from the same
  stream as SGD's, the ascent batches from a stream of their own;
* the block size is invisible: ``Generator.standard_normal`` and ``Generator.random``
  return the same sequence whether drawn in one call or in consecutive blocks.

Draws are prefetched ``block`` steps at a time, one generator call per seed and block, and
stacked to shape ``(M, ...)`` per step; the per-step cost is a slice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STREAMS: dict[str, int] = {"descent": 0, "ascent": 1, "ascent_y": 2, "init": 3,
                           # efficient-SAM peers: masks (SSAM), sample selection tables
                           # (AUSAM, ARSAM), random weight perturbations (RWP)
                           "mask": 4, "sampling": 5, "weight_noise": 6}

#: Upper bound on the floats held in one prefetch buffer (keeps memory ~ 64 MB).
_BUFFER_FLOATS = 8_000_000


class _Buffer:
    __slots__ = ("data", "pos")

    def __init__(self) -> None:
        self.data: np.ndarray | None = None
        self.pos = 0


class SeedStreams:
    """Independent random streams for each seed of a vectorised run.

    Parameters
    ----------
    seeds:
        The integer seed of each simulated trajectory (length ``M``).
    block:
        Maximum number of steps prefetched per refill; lowered automatically so a buffer
        holds at most ~8·10⁶ floats.
    """

    def __init__(self, seeds: Sequence[int], block: int = 128) -> None:
        self.seeds = [int(s) for s in seeds]
        if not self.seeds:
            raise ValueError("seeds must contain at least one seed (n_seeds >= 1)")
        self.block = int(block)
        self._gens: dict[str, list[np.random.Generator]] = {}
        self._bufs: dict[tuple, _Buffer] = {}

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    def generators(self, stream: str) -> list[np.random.Generator]:
        gens = self._gens.get(stream)
        if gens is None:
            key = STREAMS[stream]
            gens = [np.random.default_rng(np.random.SeedSequence([s, key])) for s in self.seeds]
            self._gens[stream] = gens
        return gens

    def _block_len(self, per_seed: int) -> int:
        return max(1, min(self.block, _BUFFER_FLOATS // max(1, per_seed * self.n_seeds)))

    def _next(self, kind: str, stream: str, shape: tuple[int, ...]) -> np.ndarray:
        key = (kind, stream, shape)
        buf = self._bufs.get(key)
        if buf is None:
            buf = self._bufs[key] = _Buffer()
        if buf.data is None or buf.pos >= buf.data.shape[0]:
            k = self._block_len(int(np.prod(shape, dtype=np.int64)))
            draw = (lambda g: g.standard_normal((k, *shape))) if kind == "normal" else (
                lambda g: g.random((k, *shape)))
            # (M, k, *shape) -> (k, M, *shape): one contiguous (M, ...) slab per step
            buf.data = np.ascontiguousarray(
                np.stack([draw(g) for g in self.generators(stream)], axis=1))
            buf.pos = 0
        out = buf.data[buf.pos]
        buf.pos += 1
        return out

    def normal(self, stream: str, shape: tuple[int, ...]) -> np.ndarray:
        """Standard normal draws of shape ``(M, *shape)`` for the next step of ``stream``."""
        return self._next("normal", stream, tuple(shape))

    def uniform(self, stream: str, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform [0, 1) draws of shape ``(M, *shape)`` for the next step of ``stream``."""
        return self._next("uniform", stream, tuple(shape))

    def subsets(self, stream: str, n: int, size: int) -> np.ndarray:
        """Indices of a uniformly random ``size``-subset of ``range(n)`` per seed, ``(M, size)``.

        Without replacement: the ``size`` smallest of ``n`` i.i.d. uniform keys.
        """
        keys = self.uniform(stream, (n,))
        if size == n:
            return np.argsort(keys, axis=1)
        return np.argpartition(keys, size - 1, axis=1)[:, :size]
