"""Command-line entry point ``asam-theory``.

Every module in :mod:`asam_theory.commands` that defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int`` becomes a sub-command, so a new
command is added by dropping one module there.  Exit status: 0 success, 1 a check
failed, 2 usage error (bad arguments or a ``ValueError`` from input validation).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from asam_theory import __version__, commands


def _command_modules() -> list:
    mods = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        if all(hasattr(mod, a) for a in ("NAME", "HELP", "add_arguments", "run")):
            mods.append(mod)
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asam-theory",
        description="Verify the claims of asynchronous Sharpness-Aware Minimization.",
    )
    parser.add_argument("--version", action="version", version=f"asam-theory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args))
    except ValueError as exc:  # input validation errors are usage errors
        print(f"asam-theory {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
