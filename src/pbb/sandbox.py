"""Isolated execution of untrusted program code in reusable worker processes.

Program source that the project did not write (an imported corpus, a user's file) runs
only here. A `Sandbox` keeps a pool of long-lived worker processes (a fresh interpreter
per call would be ~50x slower) and gives each call:

- a wall-clock limit, enforced by this (parent) process: on timeout the worker is killed
  and replaced, the call fails with `error_kind="timeout"` and the caller goes on;
- a memory limit (RLIMIT_AS), no new processes or threads, a file-size limit and (as root,
  a size-capped tmpfs) a limit on the total a call writes, a cap on the output's size;
- a throwaway working directory (emptied after every call, removed at `close()`, and by a
  small janitor process when this process is killed), a scrubbed environment (only
  a fixed PYTHONHASHSEED (`hash_seed`), PATH, LANG, HOME) and no stdin/stdout: the protocol runs on private
  pipe descriptors, so printing cannot corrupt it;
- no state shared with other calls: a program that could reach anything outliving its call
  (the worker's frames, builtins, modules, classes, reply channel) runs in a process forked
  for the call, which exits after it (`pbb._sandbox_policy` decides, from the source);
- a reply that is checked here, field by field and size by size: a worker's reply is
  untrusted input, and a malformed one fails its call only.

The isolation depends on the privileges we have (`Sandbox.isolation` reports it):

- **as root** (CI, containers): each worker enters a new network namespace (no network
  at all), `chroot`s into its empty throwaway directory and drops to `nobody`, which
  removes every capability. The program then sees no filesystem but its own directory,
  cannot open a connection, and cannot fork. This is the security boundary.
- **as a normal user** (a laptop): the worker tries an unprivileged user + network
  namespace and the same chroot (then drops the namespace's capabilities). Where the
  kernel forbids user namespaces it falls back to rlimits and the audit hook alone, which
  stop accidents and naive attacks but are *not* a boundary: run untrusted corpora in a
  container (or as root in one) there.

In every case an audit hook (`sys.addaudithook`) refuses sockets, subprocesses, fork/exec,
ctypes and writes outside the working directory while program code runs: defence in
depth. Model output is never run here (or anywhere): it is parsed with `ast.literal_eval`.

Outputs are `repr` of the return value and must read back through `ast.literal_eval`
to the same text (else `error_kind="unprintable"`). With `trace=True` a call also returns
the line events of the program's own code with the variables each line changed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pbb.errors import PbbError
from pbb.sandbox_reply import ERROR_KINDS, BadReply, Call, RunResult, check_reply

__all__ = ["ERROR_KINDS", "BadReply", "Call", "RunResult", "Sandbox", "check_reply"]

_WORKER_SCRIPT = Path(__file__).with_name("_sandbox_worker.py")
_STARTUP_TIMEOUT_S = 60.0  # generous: the machine may be loaded; a start-up is normally ~50 ms
# Removes the throwaway directory once its parent is gone, however it ended (SIGKILL included):
# it waits for the end of its stdin, which closes when the parent exits.
_JANITOR = ["/bin/sh", "-c", 'read _ ; rm -rf -- "$0"']


def _frame(obj: dict) -> bytes:
    data = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return struct.pack(">I", len(data)) + data


def _nobody() -> tuple[int, int]:
    import pwd

    try:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        return 65534, 65534


class _Worker:
    """One worker process and the call it is running."""

    def __init__(self, proc: subprocess.Popen, workdir: Path):
        self.proc = proc
        self.workdir = workdir
        self.fd = proc.stdout.fileno()
        self.buf = bytearray()
        self.state = "starting"  # starting | idle | busy
        self.deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        self.index: int | None = None  # which call of the batch it runs
        self.nonce = ""
        self.isolation: dict[str, Any] = {}

    def take_frame(self, max_bytes: int) -> dict | None:
        """The next complete frame in the buffer, or None; raises ValueError on a broken frame."""
        if len(self.buf) < 4:
            return None
        (n,) = struct.unpack(">I", self.buf[:4])
        if n > max_bytes:
            raise ValueError(f"reply of {n} bytes is over the {max_bytes}-byte limit")
        if len(self.buf) < 4 + n:
            return None
        data = bytes(self.buf[4:4 + n])
        del self.buf[:4 + n]
        if self.buf:
            raise ValueError("extra bytes after the reply")
        try:
            msg = json.loads(data.decode("utf-8", "surrogatepass"))
        except Exception as e:  # not UTF-8, not JSON, nested too deep for the decoder
            raise ValueError(f"a reply that is not JSON ({type(e).__name__})") from None
        if not isinstance(msg, dict):
            raise ValueError("a reply that is not an object")
        return msg


def _kill(proc: subprocess.Popen) -> None:
    # The worker leads its own session: killing the group also takes anything it started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)
    for f in (proc.stdin, proc.stdout):
        with contextlib.suppress(Exception):
            f.close()


def _cleanup(workers: list[_Worker], base: str, janitor: subprocess.Popen | None) -> None:
    for w in workers:
        _kill(w.proc)
    workers.clear()
    shutil.rmtree(base, ignore_errors=True)
    if janitor is not None:
        with contextlib.suppress(Exception):
            janitor.stdin.close()
            janitor.wait(timeout=5)


def _start_janitor(base: str) -> subprocess.Popen | None:
    """A process in its own session that removes `base` when this process ends, even by SIGKILL."""
    try:
        return subprocess.Popen([*_JANITOR, base], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
    except OSError:  # no /bin/sh: close() still cleans up; only a killed process leaves the directory
        return None


_warned = False


def _warn_if_weak(isolation: dict[str, Any]) -> None:
    """Say once per process when this machine allows only the in-process defences."""
    global _warned
    if _warned or (isolation.get("netns") and isolation.get("chroot")):
        return
    _warned = True
    missing = [k for k in ("netns", "chroot") if not isolation.get(k)]
    logging.getLogger("pbb.sandbox").warning(
        "sandbox: no %s on this machine (%s); untrusted code is held by rlimits and the audit hook only: "
        "import untrusted corpora as root or in a container", " or ".join(missing), isolation)


class Sandbox:
    """A pool of isolated worker processes that run untrusted functions on literal inputs.

    Use as a context manager (`with Sandbox() as sb:`) or call `close()`: it kills the
    workers and removes the throwaway directory. One thread at a time per Sandbox.
    """

    def __init__(
        self,
        workers: int = 2,
        timeout_s: float = 2.0,
        memory_mb: int = 512,
        max_output_chars: int = 10_000,
        *,
        max_trace_events: int = 200,
        trace_repr_chars: int = 80,
        max_file_mb: int = 16,
        max_written_mb: int = 32,
        audit_hook: bool = True,
        hash_seed: int = 0,
    ):
        """`max_written_mb` caps the total a call writes (as root: a tmpfs of that size; elsewhere
        the audit hook allows max_written_mb // max_file_mb files per call).
        `audit_hook=False` leaves only the OS-level isolation: for tests of the boundary itself.
        `hash_seed` is the workers' PYTHONHASHSEED (fixed, so set and dict orders repeat)."""
        if workers < 1:
            raise PbbError(f"Sandbox workers={workers}: need at least 1 worker.")
        if timeout_s <= 0 or memory_mb < 64:
            raise PbbError(f"Sandbox timeout_s={timeout_s}, memory_mb={memory_mb}: need timeout_s > 0 and memory_mb >= 64.")
        self.n_workers = workers
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.max_output_chars = max_output_chars
        self.max_trace_events = max_trace_events
        self.trace_repr_chars = trace_repr_chars
        self.hash_seed = hash_seed
        self._root = os.geteuid() == 0
        uid, gid = _nobody()
        # A reply holds the output (capped) and a trace (capped); anything larger is a hostile worker.
        # (the worker caps an event at 32 changes, names at 100 and code at 200 characters)
        self._max_frame = 4 * max_output_chars + max_trace_events * (32 * 2 * (trace_repr_chars + 120) + 1024) + 65536
        self._cfg = {
            "memory_mb": memory_mb, "max_output_chars": max_output_chars, "trace_repr_chars": trace_repr_chars,
            "max_file_bytes": max_file_mb * 1024 * 1024, "max_written_bytes": max_written_mb * 1024 * 1024,
            "max_reply_bytes": self._max_frame, "timeout_s": timeout_s, "audit_hook": audit_hook,
            "drop_uid": uid, "drop_gid": gid, "parent_pid": os.getpid(),
        }
        self.base_dir = tempfile.mkdtemp(prefix="pbb-sandbox-")
        os.chmod(self.base_dir, 0o711)  # `nobody` may pass through to its own directory, not list others
        self._janitor = _start_janitor(self.base_dir)
        self._workers: list[_Worker] = []
        self._n_started = 0
        self._sel = selectors.DefaultSelector()
        self._finalizer = weakref.finalize(self, _cleanup, self._workers, self.base_dir, self._janitor)
        self.isolation: dict[str, Any] = {}
        try:
            for _ in range(workers):
                self._spawn()
            self._wait_ready()
            _warn_if_weak(self.isolation)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill every worker and remove the throwaway directory (idempotent)."""
        for w in self._workers:
            with contextlib.suppress(Exception):
                self._sel.unregister(w.fd)
        self._finalizer()
        with contextlib.suppress(Exception):
            self._sel.close()

    def _spawn(self) -> _Worker:
        self._n_started += 1
        workdir = Path(self.base_dir) / f"w{self._n_started}"
        workdir.mkdir(mode=0o700)
        if self._root:
            os.chown(workdir, self._cfg["drop_uid"], self._cfg["drop_gid"])
        env = {"PYTHONHASHSEED": str(self.hash_seed), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": str(workdir)}
        proc = subprocess.Popen(
            # -S -s: no site-packages, no user site; the worker needs only the standard library.
            [sys.executable, "-S", "-s", "-B", str(_WORKER_SCRIPT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=workdir, env=env, close_fds=True, start_new_session=True,
        )
        w = _Worker(proc, workdir)
        os.set_blocking(w.fd, False)
        proc.stdin.write(_frame({**self._cfg, "workdir": str(workdir)}))
        proc.stdin.flush()
        self._workers.append(w)
        self._sel.register(w.fd, selectors.EVENT_READ, w)
        return w

    def _retire(self, w: _Worker) -> None:
        with contextlib.suppress(Exception):
            self._sel.unregister(w.fd)
        _kill(w.proc)
        self._workers.remove(w)
        shutil.rmtree(w.workdir, ignore_errors=True)

    def _replace(self, w: _Worker) -> None:
        self._retire(w)
        self._spawn()

    def _wait_ready(self) -> None:
        while any(w.state == "starting" for w in self._workers):
            self._poll(lambda i, r: None)

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers."""
        return [w.proc.pid for w in self._workers]

    # ------------------------------------------------------------ running

    def run(self, source: str, func_name: str, input_text: str, trace: bool = False,
            max_trace_events: int | None = None) -> RunResult:
        """Call `func_name(*literal_eval(input_text))` of `source` in a worker."""
        return self.run_many([(source, func_name, input_text)], trace=trace, max_trace_events=max_trace_events)[0]

    def run_many(self, calls: Sequence[Call], trace: bool = False, max_trace_events: int | None = None,
                 on_result: Callable[[int, RunResult], None] | None = None) -> list[RunResult]:
        """Run calls in parallel over the workers; results in the order of `calls`.

        `on_result(index, result)` is called as each finishes (e.g. to advance a progress bar).
        """
        if not self._finalizer.alive:
            raise RuntimeError("this Sandbox is closed")
        results: list[RunResult | None] = [None] * len(calls)
        todo = deque(range(len(calls)))
        # at most the pool's cap: replies are checked (and their size bounded) against it
        events = self.max_trace_events if max_trace_events is None else min(max_trace_events, self.max_trace_events)

        def done(i: int, r: RunResult) -> None:
            results[i] = r
            if on_result is not None:
                on_result(i, r)

        while todo or any(w.state == "busy" for w in self._workers):
            for w in self._workers:
                if w.state == "idle" and todo:
                    i = todo.popleft()
                    source, func_name, input_text = calls[i]
                    w.nonce = secrets.token_hex(8)
                    req = {"nonce": w.nonce, "source": source, "func_name": func_name, "input": input_text,
                           "trace": trace, "max_trace_events": events}
                    w.index, w.state = i, "busy"
                    w.deadline = time.monotonic() + self.timeout_s
                    try:
                        w.proc.stdin.write(_frame(req))
                        w.proc.stdin.flush()
                    except (BrokenPipeError, OSError):
                        self._fail(w, "crash", "the worker died before the call", done)
            self._poll(done)
        return results  # type: ignore[return-value]

    def _fail(self, w: _Worker, kind: str, error: str, done: Callable[[int, RunResult], None]) -> None:
        if w.state == "starting":
            self._retire(w)
            raise PbbError(f"A sandbox worker could not start ({error}); check that {sys.executable} runs.")
        if w.state == "busy" and w.index is not None:
            done(w.index, RunResult(ok=False, error=error, error_kind=kind))
        self._replace(w)

    def _poll(self, done: Callable[[int, RunResult], None]) -> None:
        """Wait for replies (or the nearest deadline) and settle what happened."""
        waiting = [w for w in self._workers if w.state in ("busy", "starting")]
        if not waiting:
            return
        timeout = max(0.0, min(w.deadline for w in waiting) - time.monotonic())
        for key, _ in self._sel.select(timeout):
            w: _Worker = key.data
            if w not in self._workers:
                continue
            try:
                chunk = os.read(w.fd, 1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                code = w.proc.poll()
                if code is None:
                    with contextlib.suppress(Exception):
                        code = w.proc.wait(timeout=1)
                why = f"signal {-code}" if isinstance(code, int) and code < 0 else f"exit code {code}"
                self._fail(w, "crash", f"the worker died ({why})", done)
                continue
            w.buf += chunk
            try:
                msg = w.take_frame(self._max_frame)
                if msg is not None and w.state == "idle":
                    raise ValueError("a reply nobody asked for")
            except (ValueError, UnicodeDecodeError) as e:
                self._fail(w, "crash", f"the worker broke the protocol: {e}", done)
                continue
            if msg is None:
                continue
            if w.state == "starting":
                if not msg.get("ready"):
                    self._fail(w, "crash", str(msg.get("error")), done)
                w.deadline = float("inf")
                w.state, w.isolation = "idle", msg.get("isolation", {})
                self.isolation = w.isolation
                continue
            if msg.get("nonce") != w.nonce:
                self._fail(w, "crash", "the worker broke the protocol: wrong nonce", done)
                continue
            try:
                r = check_reply(msg, max_output_chars=self.max_output_chars, max_trace_events=self.max_trace_events,
                                trace_repr_chars=self.trace_repr_chars)
            except BadReply as e:
                self._fail(w, "crash", f"the worker's reply is malformed: {e}", done)
                continue
            index, w.state, w.index = w.index, "idle", None
            done(index, r)
            if msg.get("recycle"):  # the program changed state that would leak into later calls
                self._replace(w)
        now = time.monotonic()
        for w in list(self._workers):
            if w.state in ("busy", "starting") and now >= w.deadline:
                self._fail(w, "timeout", f"no result within {self.timeout_s:g} s", done)
