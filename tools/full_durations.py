"""Print the ``FULL_SECONDS`` entries (asam_theory/claims/durations.py) for the checks of a
``verify --full`` run: ``python tools/full_durations.py DIR/verdicts.json [...]``.

Refuses a report whose ``index.html`` beside it was not made with ``--full``; with several
reports (e.g. two master seeds) prints each check's median."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def entries(paths: list[str]) -> dict[str, float]:
    times: dict[str, list[float]] = {}
    for p in paths:
        index = Path(p).with_name("index.html")
        if "mode <b>full</b>" not in index.read_text():
            raise SystemExit(f"{index}: not the report of a --full run")
        for v in json.loads(Path(p).read_text()):
            times.setdefault(v["id"], []).append(float(v["seconds"]))
    return {k: round(statistics.median(v)) for k, v in times.items()}


if __name__ == "__main__":
    for cid, s in entries(sys.argv[1:]).items():
        print(f'    "{cid}": {s:.1f},')
