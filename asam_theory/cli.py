"""Command-line entry point ``asam-theory``.

Each sub-command is one module of :mod:`asam_theory.commands` defining ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; :data:`COMMANDS` lists them in the order
``--help`` shows them, every option with its default.  Exit status: 0 success, 1 a check
failed, 2 usage error (bad arguments or a ``ValueError`` from input validation, raised before
any work starts).  Warnings are printed once each, as ``asam-theory COMMAND: warning: …``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

from asam_theory import __version__
from asam_theory.commands import ablation, bench, power, proofs, simulate, train, verify
from asam_theory.commands.common import HelpFormatter, show_warning

#: the sub-commands, in the order ``--help`` lists them
COMMANDS: tuple[ModuleType, ...] = (verify, simulate, train, bench, proofs, ablation, power)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asam-theory",
        description="Verify the claims of asynchronous Sharpness-Aware Minimization.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"asam-theory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMANDS:
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP,
                           formatter_class=HelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    with warnings.catch_warnings():
        # warnings in the user's terms: no file path or source line, each message once
        warnings.simplefilter("default")
        warnings.showwarning = show_warning(args.command)
        try:
            return int(args._run(args))
        except ValueError as exc:  # input validation errors are usage errors
            print(f"asam-theory {args.command}: error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
