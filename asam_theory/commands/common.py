"""What the sub-commands share: the help formatter (every option shows its default), output
paths checked before any work starts, and warnings printed once in the user's terms.

Exit status 2 means a usage error; the checks here raise :class:`ValueError` naming the option,
which :func:`asam_theory.cli.main` turns into ``asam-theory COMMAND: error: …`` and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

#: the actions that take no value: their default is shown as on/off
_FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter, except that a help text already stating its default
    (``default …``) is kept as written and a flag's default reads ``off`` (``on`` for a
    ``--no-…`` flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default is argparse.SUPPRESS or \
                not action.option_strings:
            return text
        if isinstance(action, _FLAGS):
            on = isinstance(action, argparse._StoreFalseAction)
            return f"{text} (default: {'on' if on else 'off'})"
        return f"{text} (default: %(default)s)"


def _first_non_dir(path: Path) -> Path | None:
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            return p
    return None


def check_out_dir(option: str, out: str | os.PathLike) -> Path:
    """Create the output folder ``out`` (and its parents) now; ``ValueError`` naming
    ``option`` if it cannot be: a path that is a file or lies under one, or a folder that
    cannot be created or written."""
    path = Path(out)
    bad = _first_non_dir(path)
    if bad is not None:
        raise ValueError(f"{option} must be a folder that can be created, got {str(out)!r}: "
                         f"{str(bad)!r} is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{option} must be a folder that can be created, got {str(out)!r}: "
                         f"{exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{option} must be a writable folder, got {str(out)!r}")
    return path


def check_out_file(option: str, out: str | os.PathLike) -> Path:
    """Check now that the file ``out`` can be written later: not a folder, its folder
    creatable (created) and writable; ``ValueError`` naming ``option`` otherwise."""
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"{option} must be a file path, got {str(out)!r}: it is a folder")
    check_out_dir(option, path.parent if str(path.parent) else ".")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{option} must be a writable file, got {str(out)!r}")
    return path


def show_warning(command: str):
    """A :func:`warnings.showwarning` replacement: ``asam-theory COMMAND: warning: message``
    on stderr, without the file and line of the code that warned."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"asam-theory {command}: warning: {message}", file=file or sys.stderr)

    return show


def print_grouped(command: str, caught: list[warnings.WarningMessage]) -> None:
    """Print caught warnings once per category: the first message, then how many more of
    the same kind there were."""
    groups: dict[type, list[str]] = {}
    for w in caught:
        groups.setdefault(w.category, [])
        msg = str(w.message)
        if msg not in groups[w.category]:
            groups[w.category].append(msg)
    for category, msgs in groups.items():
        more = (f" (and {len(msgs) - 1} more {category.__name__}s like it)"
                if len(msgs) > 1 else "")
        print(f"asam-theory {command}: warning: {msgs[0]}{more}", file=sys.stderr)
