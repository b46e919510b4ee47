"""The steady allocator: argument checks, and no fresh pages in a loop of equal-sized steps.

The setting is process-wide and cannot be undone, so the effect is measured in a child process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from asam_theory.experiments.allocator import MAX_MMAP_THRESHOLD, _glibc, steady_malloc

glibc_only = pytest.mark.skipif(_glibc() is None, reason="the C library is not glibc")


@pytest.mark.parametrize("kw, name", [
    ({"mmap_threshold": 100}, "mmap_threshold"),
    ({"mmap_threshold": MAX_MMAP_THRESHOLD + 1}, "mmap_threshold"),
    ({"mmap_threshold": True}, "mmap_threshold"),
    ({"mmap_threshold": 1 << 20, "trim_threshold": 1 << 19}, "trim_threshold"),
    ({"trim_threshold": 2.5e9}, "trim_threshold"),
])
def test_bad_thresholds_name_the_parameter(kw, name) -> None:
    with pytest.raises(ValueError, match=name):
        steady_malloc(**kw)


# A step that allocates and frees 6 MiB on the main thread (4 MiB + 2 MiB tensors, filled so
# that every page is touched). glibc's default thresholds move with the process's history (in
# a fresh interpreter this loop faults 77 pages per step, after importing the package none), so
# the child fixes them both ways: ``steady`` (the defaults of steady_malloc) must reuse the
# memory, ``mapped`` (thresholds of 64 KiB: every block gets its own mapping) must fault all of
# it in every step — which shows the settings are what decides.
_CHILD = textwrap.dedent("""
    import json, resource, sys, torch
    from asam_theory.experiments.allocator import steady_malloc
    kw = {} if sys.argv[1] == "steady" else {"mmap_threshold": 1 << 16, "trim_threshold": 1 << 16}
    settings = steady_malloc(**kw)

    def step():
        a = torch.ones(1 << 20)
        b = torch.ones(1 << 19)
        del a, b

    for _ in range(3):
        step()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 20
    print(json.dumps({"faults": faults, "settings": settings.as_dict()}))
""")


def _child(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_steady_malloc_keeps_pages_between_steps() -> None:
    steady = _child("steady")
    assert steady["settings"] == {"library": "glibc", "version": steady["settings"]["version"],
                                  "mmap_threshold": MAX_MMAP_THRESHOLD,
                                  "trim_threshold": 1 << 30}
    # 6 MiB faulted in again would be 1,536 faults per step; a steady heap needs none (the
    # bound leaves room for the odd page of Python's own memory)
    assert steady["faults"] <= 4, steady
    mapped = _child("mapped")
    assert mapped["settings"]["mmap_threshold"] == 1 << 16
    assert mapped["faults"] >= 1400, mapped  # own mappings: all 1,536 pages, every step
