"""Shared-memory rings and batch packing for AsyncSAM's process backend.

A *ring* holds ``n`` slots of parameter-shaped tensors in shared memory: one flat row per slot
and dtype (so a model with k parameter tensors costs one shared segment per dtype, not k), and
each parameter is an ``as_strided`` view into its slot's row with the parameter's own strides
when the parameter is dense (``channels_last`` weights keep their layout), else contiguous.
Both processes build the same views from the same :class:`Layout`.

A batch travels from the training process to the ascent process through per-slot *leaf
buffers*: the batch (a tensor, or a tuple/list/dict of them, nested) is flattened into tensor
leaves and a picklable *structure* (:func:`flatten`); each leaf is copied into a 1-D shared
buffer of its dtype, and the job message carries each leaf's shape, so the receiver rebuilds
the batch as views (:func:`unflatten`) without a copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Layout:
    """Where each parameter lives in a ring's slot: its shape, strides (``None``: contiguous),
    dtype and offset into its dtype's flat row; ``numel`` per dtype (the row lengths)."""

    shapes: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...] | None, ...]
    dtypes: tuple[torch.dtype, ...]
    offsets: tuple[int, ...]
    numel: dict[torch.dtype, int]

    @classmethod
    def of(cls, params: Sequence[torch.Tensor]) -> Layout:
        shapes, strides, dtypes, offsets = [], [], [], []
        numel: dict[torch.dtype, int] = {}
        for p in params:
            off = numel.get(p.dtype, 0)
            shapes.append(tuple(p.shape))
            keep = not p.is_contiguous() and dense_strides(p.shape, p.stride())
            strides.append(tuple(p.stride()) if keep else None)
            dtypes.append(p.dtype)
            offsets.append(off)
            numel[p.dtype] = off + p.numel()
        return cls(tuple(shapes), tuple(strides), tuple(dtypes), tuple(offsets), numel)

    def ring(self, slots: int) -> dict[torch.dtype, torch.Tensor]:
        """``slots`` zeroed rows per dtype, in shared memory."""
        return {dt: torch.zeros(slots, max(n, 1), dtype=dt).share_memory_()
                for dt, n in self.numel.items()}

    def views(self, ring: dict[torch.dtype, torch.Tensor], slot: int) -> list[torch.Tensor]:
        """The parameter-shaped views of slot ``slot`` of ``ring``."""
        out = []
        for shape, stride, dt, off in zip(self.shapes, self.strides, self.dtypes,
                                          self.offsets, strict=True):
            row = ring[dt][slot]
            if stride is None:
                n = 1
                for s in shape:
                    n *= s
                out.append(row[off:off + n].view(shape))
            else:
                out.append(torch.as_strided(row, shape, stride, row.storage_offset() + off))
        return out


def dense_strides(shape: Sequence[int], stride: Sequence[int]) -> bool:
    """Whether a tensor of ``shape`` and ``stride`` covers a block of memory exactly once (a
    permutation of a contiguous layout, such as ``channels_last``)."""
    expected = 1
    for i in sorted(range(len(shape)), key=lambda i: (stride[i], shape[i])):
        if shape[i] == 1:
            continue
        if stride[i] != expected:
            return False
        expected *= shape[i]
    return True


def contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """The strides of a contiguous tensor of ``shape``."""
    out, step = [], 1
    for s in reversed(tuple(shape)):
        out.append(step)
        step *= max(s, 1)
    return tuple(reversed(out))


# -- batches ------------------------------------------------------------------------------------
#: structure nodes: ("t", i) tensor leaf i; ("tuple"|"list", children); ("dict", ((k, child),
#: ...)); ("c", value) a non-tensor constant
Structure = tuple


def flatten(batch: Any) -> tuple[list[torch.Tensor], Structure]:
    """``(tensor leaves, structure)`` of a batch made of tensors, tuples, lists and dicts; other
    values are kept in the structure as constants (they must be picklable)."""
    leaves: list[torch.Tensor] = []

    def walk(b: Any) -> Structure:
        if isinstance(b, torch.Tensor):
            leaves.append(b)
            return ("t", len(leaves) - 1)
        if isinstance(b, tuple):
            return ("tuple", tuple(walk(x) for x in b))
        if isinstance(b, list):
            return ("list", tuple(walk(x) for x in b))
        if isinstance(b, dict):
            return ("dict", tuple((k, walk(v)) for k, v in b.items()))
        return ("c", b)

    return leaves, walk(batch)


def unflatten(structure: Structure, leaves: Sequence[torch.Tensor]) -> Any:
    """The batch of :func:`flatten` rebuilt from ``leaves``."""
    kind, body = structure
    if kind == "t":
        return leaves[body]
    if kind == "tuple":
        return tuple(unflatten(s, leaves) for s in body)
    if kind == "list":
        return [unflatten(s, leaves) for s in body]
    if kind == "dict":
        return {k: unflatten(s, leaves) for k, s in body}
    return body


def leaf_view(buffer: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The first ``prod(shape)`` elements of a 1-D leaf buffer, viewed as ``shape``."""
    n = 1
    for s in shape:
        n *= s
    return buffer[:n].view(tuple(shape))
