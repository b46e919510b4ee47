"""``python -m asam_theory.proofs [--json]``: check every proof, print each step with
✓ (checked), ≔ (definitional), ✗ (failed) or ? (unchecked); exit status 1 when any step failed
or is unchecked."""

from __future__ import annotations

import argparse
import json
import sys

from . import mark, ok, run_all, summary


def main(argv: list[str] | None = None) -> int:
    """Run the checker; exit status 1 on any failed or unchecked step."""
    parser = argparse.ArgumentParser(prog="python -m asam_theory.proofs", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the JSON summary")
    args = parser.parse_args(argv)
    return report(json_output=args.json)


def report(json_output: bool = False) -> int:
    """Print the proofs (text or JSON) and return the exit status: 0 when every step is
    checked (or definitional), 1 when any step failed or is unchecked."""
    proofs = run_all()
    s = summary(proofs)
    if json_output:
        print(json.dumps(s, indent=1, ensure_ascii=False))
    else:
        red, end = ("\033[31m", "\033[0m") if sys.stdout.isatty() else ("", "")
        for p in proofs:
            print(f"== {p.id}: {p.title}")
            for i, st in enumerate(p.steps, 1):
                text = f"  {mark(st)} {i:2d}. [{st.kind}] {st.why}"
                if st.status != "ok":
                    text = f"{red}{text} -- {st.detail}{end}"
                print(text)
        print(
            f"distinct steps checked: {s['steps_checked']} ({s['steps_checked_total']} with "
            f"reused lemmas counted each time), failed: {s['steps_failed']}, unchecked: "
            f"{s['steps_unchecked']}; definitional steps: {s['steps_definitional']}, "
            f"premises: {s['premises']}"
        )
    return 0 if ok(s) else 1


if __name__ == "__main__":
    sys.exit(main())
