"""``asam-theory proofs``: check the sympy proofs of T1-T4 (see :mod:`proofs`)."""

from __future__ import annotations

import argparse

NAME = "proofs"
HELP = ("check the machine-checked proofs of theorems T1-T4 (✓ checked, ≔ definitional, "
        "✗ failed, ? unchecked); exit 1 when a step failed or is unchecked")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--json``: print the JSON summary on stdout instead of the step list."""
    parser.add_argument("--json", action="store_true",
                        help="print the JSON summary on stdout instead of the step list")


def run(args: argparse.Namespace) -> int:
    """Exit status 1 when a step failed or is unchecked."""
    from asam_theory.proofs.__main__ import report

    return report(json_output=bool(args.json))
