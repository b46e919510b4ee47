"""Imported by the process backend's forkserver before it forks any worker: runs the training
script as ``__mp_main__`` there, once, as the forkserver means to.

``multiprocessing``'s forkserver is meant to import ``__main__`` when ``"__main__"`` is in its
preload list, but CPython 3.11's ``ForkServer.ensure_running`` filters the preparation data for
a ``main_path`` key that :func:`multiprocessing.spawn.get_preparation_data` never produces (it
says ``init_main_from_path``), so the server never imports it and every forked worker runs the
script's top level — and re-imports everything it imports — as a ``spawn`` child would.  The
process backend passes the path in :data:`ENV` while it starts the server
(:func:`asam_theory.torch._process.start_context`); this module, first in the preload list,
imports the script the way the forkserver would have.  A worker then finds ``__main__`` in
place and starts in milliseconds.  If the script fails to import here, nothing is lost: each
worker runs it itself, as before, and reports what fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
from multiprocessing import process, spawn

#: the environment variable holding the training script's path while the server starts
ENV = "ASAM_THEORY_FORKSERVER_MAIN"


def _import_main() -> None:
    path = os.environ.get(ENV)
    if not path or getattr(sys.modules.get("__main__"), "__file__", None) == path:
        return
    process.current_process()._inheriting = True
    try:
        with contextlib.suppress(Exception):
            spawn.import_main_path(path)
    finally:
        del process.current_process()._inheriting


_import_main()
