r"""AsyncSAM's ascent in a spawned process (``WorkerOptions(backend="process")``).

The thread backend (:class:`~asam_theory.torch._directions.ThreadedDirections`) shares one
interpreter with the training loop, so on a small model — where both roles spend most of a step
in Python-level dispatch — the two threads queue up behind each other on the GIL (measured in
``docs/performance.md``).  This backend runs the same worker logic in its own interpreter:

* **Worker.** A process started by :func:`start_context` — forked from a ``forkserver`` that
  imported torch and this module once, where the platform has one (Linux, macOS): about 0.1 s a
  worker instead of about 2 s for a fresh ``spawn`` interpreter, and its exit skips the
  interpreter's teardown; ``spawn`` elsewhere — receives, pickled *by value*,
  the ascent loss, the model (its private replica) and, for an independent ascent stream, the
  batch source; it sets its own intra-op threads (``WorkerOptions.num_threads``) and computes
  directions with :class:`~asam_theory.torch._worker.AscentComputer`, choosing what to compute
  by the rule both backends share (:func:`~asam_theory.torch._worker.choose_pending`).
* **Weights.** On the CPU the parameters' storage is moved to shared memory once
  (``share_memory_()``, in place: the model, the optimizer and any view see the same tensors).
  Publishing version t is then a message; the worker copies w_t into a snapshot slot itself
  when it starts the job (a *deferred* snapshot), and :meth:`ProcessDirections.seal` — called
  before the base optimizer changes the weights — takes the copy on the main thread only if
  the worker has not started it.  A per-slot lock shared by both processes orders the two.
  From a CUDA device the main thread copies w_t into the slot (pinned when the driver allows it)
  and an inter-process CUDA event tells the worker when the copy has landed.
* **Rings.** Weight snapshots and directions live in two shared-memory rings of
  ``max_staleness + 2`` slots (:mod:`~asam_theory.torch._shared`).  Each slot has a version and
  an owner: the training process hands a snapshot slot to the worker with the job and gets it
  back with the result; the worker writes a direction only into a slot the training process has
  released, and the training process releases a direction only once a fresher one has been
  chosen — a direction in use is never overwritten.  Why ``max_staleness + 2`` is enough:
  a step t may take a version in ``[t − m, t − τ]`` (m = ``max_staleness``), so at most
  ``m + 1`` completed directions (versions ≥ the last chosen one, all ≤ t) are held, plus the
  one being written; and every version the worker still holds a snapshot for is newer than its
  last result d while the training loop cannot run ahead of d + m, so at most m snapshots are
  out plus the one being published.
* **Batches.** Step batches (:class:`~asam_theory.torch.lookahead.StepBatches`, the short form's
  default) and look-ahead batches are copied into per-slot shared buffers and the job message
  carries their shapes; an independent ascent stream is drawn inside the worker from its pickled
  copy, one batch per computed job as in the thread backend (the training process's copy of the
  source is then not advanced).
* **Messages** travel over a pipe (a job, a release, a result or a dropped job are a few bytes);
  a message also wakes the other side, and the end of the pipe tells each side the other died.
* **Autocast.** The caller's autocast at each step (:class:`~asam_theory.torch.stack.
  AutocastState`) travels in a small message sent only when it changes; the worker stamps each
  job it receives with the state in effect and runs that job's ascent under it (on the ascent
  device's type), so the ascent of w_t runs under the autocast of step t, as with the thread
  backend.

Faults: an exception in the worker arrives as :class:`~asam_theory.torch._worker.
AscentWorkerError` with the worker's traceback; a worker that dies (killed, out of memory) gives
a ``RuntimeError`` naming its exit code at the next call, never a hang; a worker that does not
deliver within ``WorkerOptions.timeout`` gives a ``TimeoutError`` saying what it was doing.
``close()``, a ``with`` block, ``KeyboardInterrupt`` in ``step`` and garbage collection of the
optimizer stop the process (joined, terminated if it does not stop within the join timeout);
the worker ignores SIGINT (the training process decides when it ends) and exits when the
training process's end of the pipe closes.  Objects that cannot be pickled for the worker
(a lambda as the loss, a local class as the model, an unpicklable batch source) are refused
with a ``ValueError`` naming them before the process starts.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import select
import signal
import struct
import sys
import time
import traceback
from array import array
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from typing import Any

import torch
import torch.multiprocessing as tmp
from torch import nn

from asam_theory.torch._common import move_batch
from asam_theory.torch._shared import Layout, flatten, leaf_view, unflatten
from asam_theory.torch._worker import (
    AscentComputer,
    AscentWorkerError,
    BatchSource,
    Result,
    choose_pending,
    freshest,
    param_positions,
    window,
)
from asam_theory.torch.stack import NO_AUTOCAST, AutocastState, weights_changed

#: what the forkserver imports once, so that a worker forked from it starts warm
PRELOAD = "asam_theory.torch._process"


def spec_modules(spec: ProcessSpec) -> list[str]:
    """The modules that define the worker's loss, model (every submodule's class) and batch
    source: what unpickling the spec in the worker imports."""
    objs: list[Any] = [spec.ascent_loss, spec.source]
    if spec.model is not None:
        objs += list(spec.model.modules())
    names: list[str] = []
    for o in objs:
        # a function's own module; an instance's class's (its __module__ is the class's)
        for m in (getattr(o, "__module__", None), type(o).__module__):
            if isinstance(m, str) and m not in ("builtins", "__main__") and m not in names:
                names.append(m)
    return [m for m in names if m in sys.modules]


def start_context(modules: list[str] = ()) -> Any:
    """The multiprocessing context the worker starts from: ``forkserver`` where the platform
    has it, else ``spawn`` (never ``fork``: the training process may run threads, CUDA or
    OpenMP, which a forked copy would inherit broken).

    The forkserver is the one of this process (shared with any other user of ``forkserver``),
    started here if it is not running.  Its preload list keeps what is there (``__main__`` by
    default) and adds :mod:`~asam_theory.torch._forkserver_main` (which imports the training
    script as ``__mp_main__`` in the server, as the forkserver means to but CPython 3.11 does
    not), :data:`PRELOAD` and ``modules`` (those of the first optimizer's loss and model,
    :func:`spec_modules`, already imported here), so that a worker forked from it has the
    script, torch and these modules in place.  A worker imports what the server has not
    (later optimizers' other modules, or everything when someone else started the server)
    itself on start, as a ``spawn`` worker does."""
    from multiprocessing import forkserver, spawn

    # a script without an ``if __name__ == "__main__":`` guard, being imported by a worker or
    # the forkserver, must not start another one: multiprocessing's own error, at once
    spawn._check_not_importing_main()
    if "forkserver" not in mp.get_all_start_methods():
        return tmp.get_context("spawn")
    ctx = tmp.get_context("forkserver")

    from asam_theory.torch import _forkserver_main

    server = forkserver._forkserver
    if getattr(server, "_forkserver_pid", None) is None:
        mods = list(getattr(server, "_preload_modules", ["__main__"]))
        ctx.set_forkserver_preload(list(dict.fromkeys(
            [*mods, _forkserver_main.__name__, PRELOAD, *modules])))
        main_path = spawn.get_preparation_data("asam-ascent").get("init_main_from_path")
        old = os.environ.get(_forkserver_main.ENV)
        try:  # the server reads the script's path from its environment as it starts
            if main_path:
                os.environ[_forkserver_main.ENV] = main_path
            forkserver.ensure_running()
        finally:
            if old is None:
                os.environ.pop(_forkserver_main.ENV, None)
            else:
                os.environ[_forkserver_main.ENV] = old
    return ctx


# snapshot slot states (shared array, guarded by the slot's lock)
PUBLISHED, COPIED, DROPPED = 0, 1, 2
# control words (shared int64 array): the next step the training loop asks for, the pipeline's
# origin, and what the worker is doing (phase code, version)
NEXT, ORIGIN, PHASE, PHASE_VERSION = 0, 1, 2, 3
PHASES = {
    0: "starting",
    1: "idle",
    2: "copying the weights of version {v} (deferred snapshot)",
    3: "waiting for the snapshot copy of version {v} (CUDA event)",
    4: "drawing an ascent batch for version {v} (in ascent_batches)",
    5: "moving the ascent batch of version {v} to the ascent device",
    6: "computing the ascent direction of version {v} (in ascent_loss: forward, backward, "
       "normalisation)",
    7: "writing the direction of version {v}",
    8: "dead",
}
# batch modes of a job
LEAVES, DRAW, NONE = 0, -1, -2
#: how often a waiting side checks that the other one is alive (seconds)
POLL_S = 0.2


@dataclass
class ProcessSpec:
    """What the worker process needs, pickled by value: the loss, the model (``None``: the loss
    takes the list of weight tensors) and which of its parameters are optimised, the ascent
    stream when it is drawn in the worker, and the worker's settings."""

    ascent_loss: Any
    model: nn.Module | None
    positions: list[int] | None
    source: Any
    batch_size: int | None
    adaptive: bool
    device: str
    num_threads: int
    tau: int
    max_staleness: int
    keep_batch: bool


def check_picklable(name: str, obj: Any) -> None:
    """``ValueError`` naming ``name`` if ``obj`` cannot be pickled for the worker process."""
    try:
        pickle.dumps(obj)
    except Exception as exc:  # noqa: BLE001 - any pickling failure is the user's object's
        raise ValueError(
            f"{name} cannot be sent to the ascent worker process (WorkerOptions("
            f"backend='process') pickles it): {type(exc).__name__}: {exc}. Define it at module "
            "level (not a lambda, a local function or a class defined inside a function), "
            "guard the script with `if __name__ == '__main__':`, or use backend='thread'."
        ) from exc


def _exit_text(code: int | None) -> str:
    if code is None:
        return "its pipe closed while it still runs"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (f"exit code {code} (killed by {name}"
                + (": out of memory, or kill -9" if name == "SIGKILL" else "") + ")")
    return f"exit code {code}"


def _pack(tag: bytes, *ints: int) -> bytes:
    return tag + array("q", ints).tobytes()


def _unpack(msg: bytes) -> list[int]:
    return array("q", msg[1:]).tolist()


class Channel:
    """Length-prefixed messages over one end of the pipe, without
    ``multiprocessing.Connection``'s per-call overhead (a few microseconds a call, several calls
    a step): sending is one ``os.write`` of the framed messages (one system call for a step's
    release and job), receiving a poll on a poller made once and one ``os.read`` into a buffer
    that yields the complete messages. ``EOFError`` when the other end has closed."""

    HEADER = struct.Struct("!I")

    def __init__(self, conn: Any) -> None:
        self.conn = conn  # owns the descriptor: kept alive, closed by :meth:`close`
        self.fd = conn.fileno()
        self.buf = bytearray()
        if hasattr(select, "poll"):
            self._poller = select.poll()
            self._poller.register(self.fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        else:  # pragma: no cover - platforms without poll(2)
            self._poller = None

    def send(self, *msgs: bytes) -> None:
        data = memoryview(b"".join(self.HEADER.pack(len(m)) + m for m in msgs))
        while data:
            data = data[os.write(self.fd, data):]

    def _readable(self, timeout: float) -> bool:
        if self._poller is not None:
            return bool(self._poller.poll(0 if timeout <= 0 else max(1, int(timeout * 1e3))))
        return bool(select.select([self.fd], [], [], max(timeout, 0.0))[0])  # pragma: no cover

    def receive(self, timeout: float = 0.0) -> list[bytes]:
        """The complete messages that arrived, waiting up to ``timeout`` seconds when none
        is buffered yet."""
        if not self._complete() and self._readable(timeout):
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError("the other process closed the pipe")
            self.buf += chunk
        out = []
        while self._complete():
            n = self.HEADER.unpack_from(self.buf)[0]
            out.append(bytes(self.buf[4:4 + n]))
            del self.buf[:4 + n]
        return out

    def _complete(self) -> bool:
        return len(self.buf) >= 4 and len(self.buf) >= 4 + self.HEADER.unpack_from(self.buf)[0]

    def close(self) -> None:
        self.conn.close()


class ProcessDirections:
    """The process backend: the training process's side (the interface of
    :class:`~asam_theory.torch._directions.DirectionSource`; see the module docstring)."""

    def __init__(
        self,
        *,
        ascent_loss: Any,
        model: nn.Module | None,
        params: list[torch.Tensor],
        adaptive: bool,
        ascent_batches: Any,
        batch_size: int | None,
        tau: int,
        max_staleness: int,
        descent_device: torch.device,
        device: torch.device,
        num_threads: int,
        timeout: float,
        keep_batch: bool,
        lookahead: Any = None,
        start_timeout: float | None = None,
    ) -> None:
        self._closed = True  # until the process runs
        self._params = params
        self._tau, self._ms = tau, max_staleness
        self._lookahead = lookahead
        self._batch_size = batch_size
        self._timeout = timeout
        self._keep_batch = keep_batch
        self._descent_device = descent_device
        self._device = device
        self._cpu = descent_device.type == "cpu"
        positions = None if model is None else param_positions(model, params)
        source = None
        if lookahead is None:
            source = ascent_batches
            BatchSource(source)  # the same validation as the thread backend
        check_picklable("ascent_loss", ascent_loss)
        if model is not None:
            check_picklable("model", model)
        if source is not None:
            check_picklable("ascent_batches", source)
        spec = ProcessSpec(ascent_loss, model, positions, source, batch_size, adaptive,
                           str(device), num_threads, tau, max_staleness, keep_batch)
        spec_bytes = pickle.dumps(spec)

        self.slots = max_staleness + 2
        layout = Layout.of(params)
        self._snaps, self._dirs = layout.ring(self.slots), layout.ring(self.slots)
        self._sviews = [layout.views(self._snaps, k) for k in range(self.slots)]
        self._dviews = [layout.views(self._dirs, k) for k in range(self.slots)]
        live = None
        if self._cpu:
            for p in params:
                p.share_memory_()  # in place: the same tensors, their storage now shared
            live = [p.detach() for p in params]
            self._ptrs = [p.data_ptr() for p in params]
        #: detached views of the (shared) parameter storage, which publish checks is still
        #: the parameters': the main thread's snapshot copy reads them without a per-step
        #: detach per parameter
        self._live = live
        self._state_t = torch.zeros(self.slots, dtype=torch.int64).share_memory_()
        self._ctrl_t = torch.zeros(4, dtype=torch.int64).share_memory_()
        self._state, self._ctrl = self._state_t.numpy(), self._ctrl_t.numpy()
        ctx = start_context(spec_modules(spec))
        self._locks = [ctx.Lock() for _ in range(self.slots)]
        self._events: list[Any] | None = None
        self._h2d: dict[int, Any] = {}
        handles = None
        if descent_device.type == "cuda":
            self._pin(layout)
            self._events = [torch.cuda.Event(interprocess=True) for _ in range(self.slots)]
            for e in self._events:
                e.record(torch.cuda.current_stream(descent_device))
            handles = [e.ipc_handle() for e in self._events]
        shared = {"live": live, "snaps": self._snaps, "dirs": self._dirs, "layout": layout,
                  "state": self._state_t, "ctrl": self._ctrl_t, "locks": self._locks,
                  "events": handles, "event_device": None if handles is None
                  else descent_device.index or 0}

        self._gen = 0
        self._origin = 0
        self._free_snaps = list(range(self.slots - 1, -1, -1))
        self._free_dirs_known = self.slots  # for state checks only
        self._slot_of: dict[int, int] = {}
        self._done: dict[int, int] = {}
        self._compute_s: dict[int, float] = {}
        self._kept: dict[int, Any] = {}
        self._leaf_bufs: list[list[torch.Tensor]] = [[] for _ in range(self.slots)]
        self._leaf_meta: list[list[tuple[torch.dtype, int]]] = [[] for _ in range(self.slots)]
        self._structure: Any = None
        #: the autocast the worker holds (the last one sent), and from which version on each
        #: state was in effect (for :meth:`state_dict`; one entry per change)
        self._amp_sent = AutocastState()
        self._amp_changes: list[tuple[int, AutocastState]] = [(0, self._amp_sent)]
        self._error: dict[str, Any] | None = None
        self._dead: str | None = None
        self.main_copies = 0
        #: directions the worker computed (results received), and the examples they saw
        self.computed = 0
        self.computed_examples = 0

        conn, child_conn = ctx.Pipe(duplex=True)
        self._chan = Channel(conn)
        #: direction slots released since the last message, sent with the next job (or before
        #: any wait): one write per step
        self._release: list[int] = []
        self._proc = ctx.Process(target=_child_main, args=(child_conn, spec_bytes, shared),
                                 name="asam-ascent", daemon=True)
        self._proc.start()
        child_conn.close()
        self._closed = False
        self.pid = self._proc.pid
        self._wait_ready(start_timeout if start_timeout is not None else max(timeout, 60.0))

    # -- setup --------------------------------------------------------------------------------
    def _pin(self, layout: Layout) -> None:
        """Page-lock the rings so copies from and to the device run asynchronously (best
        effort: without it the copies are synchronous, still correct)."""
        cudart = torch.cuda.cudart()
        for ring in (self._snaps, self._dirs):
            for t in ring.values():
                with contextlib.suppress(Exception):
                    cudart.cudaHostRegister(t.data_ptr(), t.numel() * t.element_size(), 0)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise TimeoutError(f"AsyncSAM: the ascent worker process did not start within "
                                   f"{timeout:g}s")
            try:
                msgs = self._chan.receive(min(remaining, POLL_S))
            except (EOFError, OSError):
                self._died(starting=True)
            for msg in msgs:
                if msg[:1] == b"R":
                    return
                self._handle(msg)
                self._raise_if_failed()
            if not msgs and self._proc.exitcode is not None:
                self._died(starting=True)

    # -- faults -------------------------------------------------------------------------------
    def _died(self, starting: bool = False) -> None:
        """Record that the worker process is gone and raise (its error first, if it sent one);
        ``starting``: it died before it was ready."""
        with contextlib.suppress(Exception):
            for msg in self._chan.receive(0.5):
                self._handle(msg)
        self._proc.join(timeout=5.0)
        if self._dead is None:
            self._dead = (f"AsyncSAM: the ascent worker process (pid {self.pid}) died with "
                          f"{_exit_text(self._proc.exitcode)}")
            if starting:
                self._dead += (" while starting, before it could load the loss and model (its "
                               "traceback is on stderr; a script that builds the optimizer at "
                               "its top level, outside an 'if __name__ == \"__main__\":' "
                               "block, ends so)")
        self._raise_if_failed()
        raise RuntimeError(self._dead + "; create a new optimizer (and look for its cause: "
                           "memory, a signal, a crash in native code)")

    def _raise_if_failed(self) -> None:
        err = self._error
        if err is None:
            return
        cause = None
        if err.get("exception") is not None:
            with contextlib.suppress(Exception):
                cause = pickle.loads(err["exception"])
        text = (f"AsyncSAM ascent worker raised {err['type']}: {err['message']}\n"
                f"--- worker traceback (process {self.pid}) ---\n{err['traceback']}")
        if isinstance(cause, BaseException):
            raise AscentWorkerError(text) from cause
        raise AscentWorkerError(text)

    def _check_alive(self) -> None:
        if self._error is not None:
            self._raise_if_failed()
        if self._dead is not None or self._proc.exitcode is not None:
            self._died()

    # -- messages -----------------------------------------------------------------------------
    def _send(self, msg: bytes) -> None:
        """Send ``msg``, after the releases not yet sent (one write)."""
        msgs = (_pack(b"R", *self._release), msg) if self._release else (msg,)
        self._release = []
        try:
            self._chan.send(*msgs)
        except (BrokenPipeError, EOFError, OSError):
            self._died()

    def _flush(self) -> None:
        """Send the pending releases now (before waiting on the worker, which may need one)."""
        if self._release:
            rel, self._release = self._release, []
            try:
                self._chan.send(_pack(b"R", *rel))
            except (BrokenPipeError, EOFError, OSError):
                self._died()

    def _handle(self, msg: bytes) -> None:
        tag = msg[:1]
        if tag == b"D":
            version, dslot, slot, gen, ns, examples = _unpack(msg)
            if gen == self._gen:
                self.computed += 1
                self.computed_examples += examples
                self._done[version] = dslot
                self._compute_s[version] = ns * 1e-9
                self._free_snap(version, slot)
        elif tag == b"X":
            version, slot, gen = _unpack(msg)
            if gen == self._gen:
                self._free_snap(version, slot)
        elif tag == b"K":
            version, batch = ForkingPickler.loads(msg[1:])
            self._kept[version] = batch
        elif tag == b"E":
            self._error = pickle.loads(msg[1:])
        elif tag in (b"p", b"R"):
            self._ack = tag
        else:  # pragma: no cover - a protocol error
            raise RuntimeError(f"AsyncSAM: unknown message {tag!r} from the worker process")

    def _free_snap(self, version: int, slot: int) -> None:
        if self._slot_of.get(version) == slot:
            del self._slot_of[version]
        self._free_snaps.append(slot)

    def _drain(self) -> None:
        try:
            for msg in self._chan.receive(0.0):
                self._handle(msg)
        except (EOFError, OSError):
            self._died()
        if self._error is not None:
            self._raise_if_failed()

    # -- the interface --------------------------------------------------------------------------
    def submit(self, version: int, params: list[torch.Tensor],
               amp: AutocastState = NO_AUTOCAST) -> None:
        """Publish the weights as ``version`` (a job message; on the CPU the worker copies them
        itself, see :meth:`seal`), its ascent to run under ``amp`` (sent when it changed)."""
        self._check_open()
        if amp != self._amp_sent:
            self._send_amp(version, amp)
        la = self._lookahead
        batch = None
        if la is not None:
            if not la.available(version + la.lead):
                return  # the batches have ended: no step will use this version
            batch = la.ascent_batch(version + la.lead, self._batch_size)
        if self._cpu:
            for p, ptr in zip(params, self._ptrs, strict=True):
                if p.data_ptr() != ptr:
                    raise RuntimeError(
                        "AsyncSAM (backend='process'): a parameter's storage was replaced "
                        "after the optimizer was built (e.g. model.to(...) or "
                        "load_state_dict(assign=True)); the worker process reads the old one. "
                        "Build the optimizer after moving the model.")
        if not self._free_snaps:
            self._drain()
        deadline = time.monotonic() + self._timeout
        while not self._free_snaps:
            self._wait_message(deadline, f"a free snapshot slot for version {version}")
        slot = self._free_snaps.pop()
        self._state[slot] = PUBLISHED if self._cpu else COPIED
        if not self._cpu:
            torch._foreach_copy_(self._sviews[slot], [p.detach() for p in params],
                                 non_blocking=True)
        ints: list[int] = [version, slot, self._gen]
        if la is None:
            ints.append(DRAW)
        else:
            ints += self._put_batch(slot, batch)
        if self._events is not None:
            self._events[slot].record(torch.cuda.current_stream(self._descent_device))
        self._slot_of[version] = slot
        self._send(_pack(b"J", *ints))

    def _send_amp(self, version: int, amp: AutocastState) -> None:
        """Tell the worker that the jobs from ``version`` on run under ``amp``."""
        self._send(b"A" + pickle.dumps(amp.to_state()))
        self._amp_sent = amp
        lo = version - self._ms - 1  # older versions are never computed or saved again
        keep = [c for c in self._amp_changes if c[0] >= lo]
        older = [c for c in self._amp_changes if c[0] < lo]
        self._amp_changes = older[-1:] + keep + [(version, amp)]

    def _amp_of(self, version: int) -> AutocastState:
        """The autocast in effect when ``version`` was published."""
        state = self._amp_changes[0][1]
        for v, amp in self._amp_changes:
            if v <= version:
                state = amp
        return state

    def _put_batch(self, slot: int, batch: Any) -> list[int]:
        """Copy ``batch`` into ``slot``'s leaf buffers (new buffers when it does not fit) and
        return the job's batch fields: the number of leaves, then each leaf's ndim and shape."""
        if batch is None:
            return [NONE]
        leaves, structure = flatten(batch)
        if structure != self._structure:
            self._send(b"T" + pickle.dumps(structure))
            self._structure = structure
        bufs, meta = self._leaf_bufs[slot], self._leaf_meta[slot]
        out = [len(leaves)]
        for i, leaf in enumerate(leaves):
            shape, n, dtype = leaf.shape, leaf.numel(), leaf.dtype
            if i >= len(bufs) or meta[i][0] != dtype or meta[i][1] < n:
                cap = max(n, 1) if i >= len(bufs) or meta[i][0] != dtype else 2 * n
                buf = torch.empty(cap, dtype=dtype).share_memory_()
                if i < len(bufs):
                    bufs[i], meta[i] = buf, (dtype, cap)
                else:
                    bufs.append(buf)
                    meta.append((dtype, cap))
                self._send(b"B" + bytes(ForkingPickler.dumps((slot, i, buf))))
            leaf_view(bufs[i], shape).copy_(leaf, non_blocking=not self._cpu)
            out += [len(shape), *shape]
        return out

    def seal(self, version: int) -> None:
        """Make sure the snapshot of ``version`` is taken before the caller changes the weights:
        copy it here if the worker has not started it (counted in ``main_copies``); wait if the
        worker is copying it (it holds the slot's lock)."""
        if not self._cpu:
            return
        slot = self._slot_of.get(version)
        if slot is None:
            return
        lock = self._locks[slot]
        deadline = time.monotonic() + self._timeout
        while not lock.acquire(timeout=POLL_S):
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"AsyncSAM: the worker process did not finish copying the snapshot of "
                    f"version {version} within timeout={self._timeout:g}s; it is "
                    f"{self._phase()}")
        try:
            if self._state[slot] == PUBLISHED:
                torch._foreach_copy_(self._sviews[slot], self._live)
                self._state[slot] = COPIED
                self.main_copies += 1
        finally:
            lock.release()

    def acquire(self, step: int) -> Result:
        """Block until a direction in the window of ``step`` exists; return the freshest (its
        tensors are views of the direction ring, valid until a later step takes a fresher
        one)."""
        self._check_open()
        self._ctrl[NEXT] = step
        lo, hi = window(step, self._tau, self._ms, self._origin)
        deadline = time.monotonic() + self._timeout
        self._drain()
        while (v := freshest(self._done, lo, hi)) is None:
            self._wait_message(deadline, f"a direction with version in [{lo}, {hi}] for step "
                                         f"{step}")
        old = [w for w in self._done if w < v]
        if old:
            slots = [self._done.pop(w) for w in old]
            for w in old:
                self._kept.pop(w, None)
                self._compute_s.pop(w, None)
            for d in slots:  # a direction still being copied to the device stays until it landed
                event = self._h2d.pop(d, None)
                if event is not None:
                    event.synchronize()
            self._release += slots
        self._ctrl[NEXT] = step + 1
        dslot = self._done[v]
        direction = self._dviews[dslot]
        if self._descent_device.type == "cuda":
            direction = self._to_device(v, dslot, direction)
        return Result(v, direction, self._kept.get(v), self._compute_s.get(v, 0.0))

    def _to_device(self, version: int, dslot: int, direction: list[torch.Tensor]
                   ) -> list[torch.Tensor]:
        """The direction on the descent device (asynchronous from the pinned ring; the slot is
        released only after the copy, see :meth:`_release_after_copy`)."""
        out = [d.to(p.device, non_blocking=True) for d, p in zip(direction, self._params,
                                                                 strict=True)]
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self._descent_device))
        self._h2d[dslot] = event
        return out

    def _wait_message(self, deadline: float, what: str) -> None:
        """Wait for one message from the worker (at most until ``deadline``), checking that it
        is alive; ``TimeoutError`` past the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            alive = self._proc.exitcode is None
            raise TimeoutError(
                f"AsyncSAM: no {what} after timeout={self._timeout:g}s (tau={self._tau}, "
                f"max_staleness={self._ms}); the ascent worker process (pid {self.pid}) is "
                f"{'alive' if alive else 'dead'} and {self._phase()}. Increase timeout, lower "
                "ascent_batch_size, or check ascent_loss / ascent_batches for a hang.")
        self._flush()
        try:
            msgs = self._chan.receive(min(remaining, POLL_S))
        except (EOFError, OSError):
            self._died()
        for msg in msgs:
            self._handle(msg)
        self._raise_if_failed()
        if not msgs:
            self._check_alive()

    def _phase(self) -> str:
        code, v = int(self._ctrl[PHASE]), int(self._ctrl[PHASE_VERSION])
        if code == 1:
            return f"idle with pending versions {sorted(self._slot_of)}"
        return PHASES.get(code, "in an unknown state").format(v=v)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("AsyncSAM worker is closed; create a new optimizer")
        if self._dead is not None or self._error is not None:
            self._check_alive()

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self, version: int) -> dict[str, Any]:
        """The thread backend's format (a state saved with either backend loads into both):
        the completed directions and the published, not yet computed snapshots with version ≥
        the lower end of the window of step ``version``, and the origin."""
        self._drain()
        lo, _ = window(version, self._tau, self._ms, self._origin)
        directions = {v: [u.clone() for u in self._dviews[d]] for v, d in self._done.items()
                      if v >= lo}
        snapshots = {}
        for v, slot in sorted(self._slot_of.items()):
            if v < lo or v in directions or self._state[slot] == DROPPED:
                continue
            src = self._sviews[slot] if self._state[slot] == COPIED else self._params
            snapshots[v] = [t.detach().clone() for t in src]
        return {"directions": directions, "snapshots": snapshots,
                "amp": {v: self._amp_of(v).to_state() for v in snapshots},
                "origin": self._origin}

    def load_state_dict(self, state: dict[str, Any], version: int) -> None:
        """Replace the pipeline by a saved one: the worker stops, drops its jobs, and resumes
        with the saved directions and snapshots (results in flight are discarded)."""
        self._check_open()
        self._ack = None
        self._send(b"P")
        deadline = time.monotonic() + self._timeout
        while self._ack != b"p":
            self._wait_message(deadline, "the worker process's acknowledgement of a restore")
        self._gen += 1
        self._done.clear()
        self._slot_of.clear()
        self._kept.clear()
        self._free_snaps = list(range(self.slots - 1, -1, -1))
        free_dirs = list(range(self.slots - 1, -1, -1))
        for v, u in sorted(state["directions"].items()):
            d = free_dirs.pop()
            torch._foreach_copy_(self._dviews[d], [t.to("cpu") for t in u])
            self._done[int(v)] = d
        self._origin = int(state["origin"])
        self._ctrl[ORIGIN] = self._origin
        self._ctrl[NEXT] = version
        jobs = []
        amps = {int(v): a for v, a in state.get("amp", {}).items()}
        la = self._lookahead
        for v, w in sorted(state["snapshots"].items()):
            v = int(v)
            slot = self._free_snaps.pop()
            torch._foreach_copy_(self._sviews[slot], [t.to("cpu") for t in w])
            self._state[slot] = COPIED
            fields = [DRAW] if la is None else self._put_batch(
                slot, la.ascent_batch(v + la.lead, self._batch_size))
            jobs.append([v, slot, self._gen, *fields])
            self._slot_of[v] = slot
        self._amp_changes = sorted(
            [(v, AutocastState.from_state(a)) for v, a in amps.items() if v < version]
            + [(version, self._amp_sent)], key=lambda c: c[0])
        self._send(b"S" + pickle.dumps({"gen": self._gen, "jobs": jobs,
                                        "free_dirs": free_dirs, "amp": amps,
                                        "amp_now": self._amp_sent.to_state()}))

    def close(self, join_timeout: float = 30.0) -> None:
        """Stop the worker process: ask it to stop, join it, terminate (then kill) it if it does
        not stop within ``join_timeout`` seconds.  Idempotent; never raises for a worker that
        already died."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._chan.send(b"Q")
        self._proc.join(timeout=join_timeout)
        if self._proc.exitcode is None:
            self._proc.terminate()
            self._proc.join(timeout=5.0)
        if self._proc.exitcode is None:  # pragma: no cover - SIGTERM ignored
            self._proc.kill()
            self._proc.join()
        with contextlib.suppress(Exception):
            self._chan.close()

    @property
    def alive(self) -> bool:
        """Whether the worker process runs."""
        return self._proc.exitcode is None


# -- the worker process ------------------------------------------------------------------------
def _error_payload(exc: BaseException, where: str) -> bytes:
    try:
        pickled = pickle.dumps(exc)
        pickle.loads(pickled)
    except Exception:  # noqa: BLE001 - an exception that does not survive pickling
        pickled = None
    return b"E" + pickle.dumps({"type": type(exc).__name__, "message": f"{exc} ({where})",
                                "traceback": traceback.format_exc(), "exception": pickled})


def _child_main(conn: Any, spec_bytes: bytes, shared: dict[str, Any]) -> None:
    """Entry point of the worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctrl = shared["ctrl"].numpy()
    chan = Channel(conn)
    try:
        child = _Child(chan, pickle.loads(spec_bytes), shared)
    except BaseException as exc:  # noqa: BLE001 - reported to the training process
        ctrl[PHASE] = 8
        with contextlib.suppress(Exception):
            chan.send(_error_payload(
                exc, "while loading the ascent loss, model and batch source in the worker "
                     "process"))
        sys.exit(1)
    chan.send(b"R")
    try:
        child.run()
    except BaseException as exc:  # noqa: BLE001 - reported to the training process
        ctrl[PHASE] = 8
        with contextlib.suppress(Exception):
            chan.send(_error_payload(exc, f"in the worker process, {child.where}"))
        sys.exit(1)


@dataclass
class _Job:
    version: int
    slot: int
    mode: int  # LEAVES, DRAW or NONE
    shapes: list[tuple[int, ...]]
    structure: Any
    amp: AutocastState  # the autocast of the step that published it


class _Child:
    """The worker process's loop: messages in, directions out (module docstring)."""

    def __init__(self, conn: Any, spec: ProcessSpec, shared: dict[str, Any]) -> None:
        self.conn = conn
        self.spec = spec
        torch.set_num_threads(spec.num_threads)
        self.device = torch.device(spec.device)
        layout: Layout = shared["layout"]
        self.live = shared["live"]
        self.snaps = [layout.views(shared["snaps"], k) for k in range(len(shared["locks"]))]
        self.dirs = [layout.views(shared["dirs"], k) for k in range(len(shared["locks"]))]
        self.state = shared["state"].numpy()
        self.ctrl = shared["ctrl"].numpy()
        self.locks = shared["locks"]
        self.events = None
        if shared["events"] is not None:
            dev = shared["event_device"]
            self.events = [torch.cuda.Event.from_ipc_handle(dev, h) for h in shared["events"]]
        model = spec.model
        params = None
        if model is not None:
            all_params = list(model.parameters())
            params = [all_params[i] for i in spec.positions]
        else:
            params = self.snaps[0]
        self.computer = AscentComputer(spec.ascent_loss, self.device, model, params,
                                       spec.adaptive)
        self.source = BatchSource(spec.source)
        self.on_device = None
        if self.device.type != "cpu":
            self.on_device = [torch.empty_like(t, device=self.device) for t in self.snaps[0]]
        self.pending: dict[int, _Job] = {}
        self.free_dirs = list(range(len(self.dirs) - 1, -1, -1))
        self.leaf_bufs: dict[int, dict[int, torch.Tensor]] = {}
        self.structure: Any = None
        self.amp = AutocastState()  # stamped on each job as it arrives
        self.gen = 0
        self.stop = False
        self.paused = False
        self.where = "starting"

    def phase(self, code: int, version: int = -1) -> None:
        self.ctrl[PHASE] = code
        self.ctrl[PHASE_VERSION] = version
        self.where = PHASES[code].format(v=version)

    # -- messages -------------------------------------------------------------------------------
    def receive(self, block: bool) -> None:
        """Handle the messages that arrived; with ``block``, wait for at least one (checking
        that the training process is alive)."""
        try:
            msgs = self.conn.receive(1.0 if block else 0.0)
            while block and not msgs:
                parent = mp.parent_process()
                if parent is not None and not parent.is_alive():
                    self.stop = True
                    return
                msgs = self.conn.receive(1.0)
            for msg in msgs:
                self.handle(msg)
        except (EOFError, OSError):  # the training process is gone
            self.stop = True

    def handle(self, msg: bytes) -> None:
        tag = msg[:1]
        if tag == b"J":
            ints = _unpack(msg)
            version, slot, gen, mode = ints[:4]
            shapes: list[tuple[int, ...]] = []
            if mode > 0:
                k = 4
                for _ in range(mode):
                    nd = ints[k]
                    shapes.append(tuple(ints[k + 1:k + 1 + nd]))
                    k += 1 + nd
            if gen == self.gen:
                self.pending[version] = _Job(version, slot, LEAVES if mode >= 0 else mode,
                                             shapes, self.structure, self.amp)
        elif tag == b"A":
            self.amp = AutocastState.from_state(pickle.loads(msg[1:]))
        elif tag == b"R":
            self.free_dirs.extend(_unpack(msg))
        elif tag == b"B":
            slot, i, buf = ForkingPickler.loads(msg[1:])
            self.leaf_bufs.setdefault(slot, {})[i] = buf
        elif tag == b"T":
            self.structure = pickle.loads(msg[1:])
        elif tag == b"P":
            self.pending.clear()
            self.paused = True
            self.conn.send(b"p")
        elif tag == b"S":
            state = pickle.loads(msg[1:])
            self.gen = state["gen"]
            self.free_dirs = list(state["free_dirs"])
            self.pending = {}
            for ints in state["jobs"]:
                self.amp = AutocastState.from_state(state["amp"].get(ints[0]))
                self.handle(_pack(b"J", *ints))
            self.amp = AutocastState.from_state(state["amp_now"])
            self.paused = False
        elif tag == b"Q":
            self.stop = True
        else:  # pragma: no cover - a protocol error
            raise RuntimeError(f"unknown message {tag!r} from the training process")

    def send(self, *msgs: bytes) -> None:
        try:
            self.conn.send(*msgs)
        except (BrokenPipeError, EOFError, OSError):
            self.stop = True

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        self.phase(1)
        while True:
            self.receive(block=self.paused or not self.pending or not self.free_dirs)
            if self.stop:
                return
            if self.paused or not self.free_dirs:
                continue
            lo, hi = window(int(self.ctrl[NEXT]), self.spec.tau, self.spec.max_staleness,
                            int(self.ctrl[ORIGIN]))
            chosen, dropped = choose_pending(self.pending, lo, hi)
            for v in dropped:
                self.drop(self.pending.pop(v))
            if chosen is not None:
                self.compute(self.pending.pop(chosen))
                self.phase(1)

    def drop(self, job: _Job) -> None:
        with self.locks[job.slot]:
            self.state[job.slot] = DROPPED
        self.send(_pack(b"X", job.version, job.slot, self.gen))

    def compute(self, job: _Job) -> None:
        v, slot = job.version, job.slot
        t0 = time.perf_counter_ns()
        if self.live is not None:
            self.phase(2, v)
            with self.locks[slot]:
                if self.state[slot] == PUBLISHED:
                    torch._foreach_copy_(self.snaps[slot], self.live)
                    self.state[slot] = COPIED
        elif self.events is not None:
            self.phase(3, v)
            self.events[slot].synchronize()
        if job.mode == DRAW:
            self.phase(4, v)
            raw = self.source.draw(self.spec.batch_size)
        elif job.mode == NONE:
            raw = None
        else:
            bufs = self.leaf_bufs[slot]
            raw = unflatten(job.structure, [leaf_view(bufs[i], s)
                                            for i, s in enumerate(job.shapes)])
        self.phase(5, v)
        batch = move_batch(raw, self.device)
        weights = self.snaps[slot]
        if self.on_device is not None:
            torch._foreach_copy_(self.on_device, weights)
            weights = self.on_device
        self.phase(6, v)
        with job.amp.enter(self.device.type):
            weights_changed()  # the replica's weights were re-bound since the last pass
            u = self.computer.direction(weights, batch)
        self.phase(7, v)
        d = self.free_dirs.pop()
        torch._foreach_copy_(self.dirs[d], u)
        if self.spec.keep_batch:  # a copy (the slot's buffers serve later jobs), before the result
            kept = unflatten(*_cloned(batch))
            kept_msg = [b"K" + bytes(ForkingPickler.dumps((v, kept)))]
        else:
            kept_msg = []
        self.send(*kept_msg, _pack(b"D", v, d, slot, self.gen, time.perf_counter_ns() - t0,
                                   _examples(batch)))


def _examples(batch: Any) -> int:
    """Examples in a batch: the leading size of its last tensor (the targets of an ``(x, y)``
    batch; 0 without tensors)."""
    leaves, _ = flatten(batch)
    return int(leaves[-1].shape[0]) if leaves and leaves[-1].dim() else 0


def _cloned(batch: Any) -> tuple[Any, list[torch.Tensor]]:
    leaves, structure = flatten(batch)
    return structure, [t.detach().cpu().clone() for t in leaves]


def worker_pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (exists and is not a zombie; for tests that check that no
    worker outlives its optimizer)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # no /proc (macOS): existing is running
        return True
