"""A steady C allocator for CPU training: no fresh pages faulted in on every step.

PyTorch's CPU tensors come from the C library's ``malloc`` (there is no caching allocator on the
CPU, unlike CUDA). With glibc's defaults two rules return memory to the kernel while a training
loop runs:

* a block above the *mmap threshold* gets its own ``mmap`` and is unmapped when freed — the
  threshold starts at 128 KiB and rises (up to 32 MiB) to the size of freed mapped blocks;
* when the free memory at the top of a heap exceeds the *trim threshold* (twice the mmap
  threshold), the heap is shrunk.

The next allocation of that size then takes a page fault for every 4 KiB page, and the kernel
zeroes each page. Which steps hit this depends on the whole process's allocation history, so
the time lands on whichever method happens to run when a heap is trimmed. In ``asam-theory
bench`` (MLP with H = 1024, b = 512, b′ = 192; six runs with glibc 2.36's defaults) the process
took 107–612 minor faults per SGD step, 1,770–2,970 per SAM step and 191–524 per AsyncSAM step
(``minor_faults_per_step`` in its JSON); with the steady allocator 0–34, 51–80 and 9–16.

:func:`steady_malloc` fixes both thresholds (``mallopt(M_MMAP_THRESHOLD, ...)``,
``mallopt(M_TRIM_THRESHOLD, ...)``): blocks up to ``mmap_threshold`` come from the heaps and
freed memory stays there for the next step, so after the first steps a loop of equal-sized
steps faults (almost) no pages. This is what PyTorch's CPU performance guide gets by preloading
jemalloc or TCMalloc ("reuse memory as much as possible"), done inside the process with the C
library at hand. The cost: the process keeps up
to ``trim_threshold`` bytes of freed memory instead of returning it.

The setting is process-wide and stays for the life of the process (glibc has no call that
restores its dynamic thresholds). glibc only: elsewhere (musl, macOS, Windows)
:func:`steady_malloc` changes nothing and returns ``None``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from dataclasses import dataclass

__all__ = ["AllocatorSettings", "MAX_MMAP_THRESHOLD", "allocator_report", "minor_faults",
           "steady_malloc"]

#: ``mallopt`` parameter numbers (glibc ``malloc.h``)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: the largest mmap threshold allowed here: glibc's ``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit
#: builds, where its dynamic rule stops. A thread's heap spans at most 64 MiB
#: (``HEAP_MAX_SIZE``), so larger blocks could not come from a heap shared with others anyway.
MAX_MMAP_THRESHOLD = 32 * 1024 * 1024

#: default trim threshold: freed memory up to 1 GiB per heap is kept for reuse
DEFAULT_TRIM_THRESHOLD = 1 << 30


@dataclass(frozen=True)
class AllocatorSettings:
    """What :func:`steady_malloc` set (all sizes in bytes)."""

    library: str
    version: str
    mmap_threshold: int
    trim_threshold: int

    def as_dict(self) -> dict[str, object]:
        return {"library": self.library, "version": self.version,
                "mmap_threshold": self.mmap_threshold, "trim_threshold": self.trim_threshold}


def _glibc() -> tuple[ctypes.CDLL, str] | None:
    """The running glibc and its version, or ``None`` when the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        version_fn = libc.gnu_get_libc_version
        libc.mallopt  # noqa: B018  (AttributeError where there is no mallopt)
    except (OSError, AttributeError):
        return None
    version_fn.restype = ctypes.c_char_p
    return libc, version_fn().decode()


def steady_malloc(mmap_threshold: int = MAX_MMAP_THRESHOLD,
                  trim_threshold: int = DEFAULT_TRIM_THRESHOLD) -> AllocatorSettings | None:
    """Fix glibc's mmap and trim thresholds for this process (see the module docstring).

    Args:
        mmap_threshold: blocks larger than this get their own mapping, in [4096, 32 MiB].
        trim_threshold: free memory a heap keeps before returning it, ≥ ``mmap_threshold``.

    Returns the settings applied, or ``None`` when the C library is not glibc (nothing changed).
    """
    if isinstance(mmap_threshold, bool) or not isinstance(mmap_threshold, int) or not (
            4096 <= mmap_threshold <= MAX_MMAP_THRESHOLD):
        raise ValueError(f"mmap_threshold must be an integer in [4096, {MAX_MMAP_THRESHOLD}] "
                         f"bytes, got {mmap_threshold!r}")
    if isinstance(trim_threshold, bool) or not isinstance(trim_threshold, int) or not (
            mmap_threshold <= trim_threshold < 1 << 62):
        raise ValueError(f"trim_threshold must be an integer in [mmap_threshold = "
                         f"{mmap_threshold}, 2**62) bytes, got {trim_threshold!r}")
    found = _glibc()
    if found is None:
        return None
    libc, version = found
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    # mallopt takes an int: a trim threshold beyond 2**31 - 1 is capped there (2 GiB)
    trim = min(trim_threshold, 2**31 - 1)
    for param, value, name in ((M_MMAP_THRESHOLD, mmap_threshold, "mmap_threshold"),
                               (M_TRIM_THRESHOLD, trim, "trim_threshold")):
        if libc.mallopt(param, value) != 1:
            raise RuntimeError(f"glibc {version} refused mallopt({name}={value})")
    return AllocatorSettings("glibc", version, mmap_threshold, trim)


def allocator_report(requested: bool, applied: AllocatorSettings | None) -> dict[str, object]:
    """What a run's process allocated with, for its results: ``{"steady": True, "library", ...}``
    when :func:`steady_malloc` was applied, else ``{"steady": False, "reason"}``."""
    if applied is not None:
        return {"steady": True, **applied.as_dict()}
    why = "not requested" if not requested else "the C library is not glibc: defaults kept"
    return {"steady": False, "reason": why}


def minor_faults() -> int:
    """Minor page faults of this process so far, all threads (``getrusage``; 0 where the
    platform has no ``resource`` module)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
