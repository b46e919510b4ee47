"""``python -m proofs [--json]``: check every proof, print each step with ✓/✗/?."""

from __future__ import annotations

import argparse
import json
import sys

from . import MARK, run_all, summary


def main(argv: list[str] | None = None) -> int:
    """Run the checker; exit status 1 on any failed step."""
    parser = argparse.ArgumentParser(prog="python -m proofs", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the JSON summary")
    args = parser.parse_args(argv)
    return report(json_output=args.json)


def report(json_output: bool = False) -> int:
    """Print the proofs (text or JSON) and return the exit status."""
    proofs = run_all()
    s = summary(proofs)
    if json_output:
        print(json.dumps(s, indent=1, ensure_ascii=False))
    else:
        red, end = ("\033[31m", "\033[0m") if sys.stdout.isatty() else ("", "")
        for p in proofs:
            print(f"== {p.id}: {p.title}")
            for i, st in enumerate(p.steps, 1):
                text = f"  {MARK[st.status]} {i:2d}. [{st.kind}] {st.why}"
                if st.status != "ok":
                    text = f"{red}{text} -- {st.detail}{end}"
                print(text)
        print(
            f"steps checked: {s['steps_checked']}, failed: {s['steps_failed']}, "
            f"unchecked: {s['steps_unchecked']}"
        )
    return 1 if s["steps_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
