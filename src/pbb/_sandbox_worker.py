"""The sandbox worker: runs untrusted program code, one call at a time, for `pbb.sandbox`.

This file is executed as a script (`python -S -s _sandbox_worker.py`), never imported by
the parent, and uses the standard library only: it must not import `pbb` (site-packages
are off) and it must work after `chroot` into an empty directory.

Start-up (before any untrusted code runs), in this order:
1. keep private duplicates of the request/response pipes, point fds 0/1/2 at /dev/null
   (a program that prints, or reads stdin, cannot touch the protocol);
2. import every standard-library module programs are allowed to use (after the chroot
   there is no filesystem to import from);
3. as root: enter a new network namespace (only a downed loopback: no network),
   `chroot` into the throwaway directory, drop to `nobody` (which clears all
   capabilities); as a normal user: try an unprivileged user+network namespace and a
   chroot, then drop the capabilities the namespace granted; otherwise carry on with
   rlimits and the audit hook only (reported back as `isolation`);
   As root the working directory is also a size-limited tmpfs in a private mount
   namespace: the total a call can write is capped, not only each file;
4. rlimits: address space (memory), file size, open files, no core dumps;
5. an audit hook that refuses sockets, subprocesses, fork/exec, ctypes and writes
   outside the working directory while program code runs (defence in depth).

Each call runs either in place or in a child forked for the call (`pbb._sandbox_policy`
decides from the source): a program that could reach anything outliving its call (the
worker's frames, builtins, modules, classes, its reply channel) runs in the child, which
closes the protocol pipes, gets no new processes (NPROC 0), a CPU-time limit and an audit
hook without an off switch, replies through a pipe of its own and is killed after.

Protocol: frames of a 4-byte big-endian length then UTF-8 JSON. Each request carries a
random `nonce` that the response must echo, so a program that writes to the response
pipe cannot forge the answer to a later request. The parent checks every reply's shape
and sizes (`pbb.sandbox`): nothing from a worker is trusted.
"""

from __future__ import annotations

import os
import struct
import sys

# Private copies of the protocol pipes, taken before anything else can run.
_REQ_FD = os.dup(0)
_RESP_FD = os.dup(1)
_null = os.open(os.devnull, os.O_RDWR)
for _fd in (0, 1, 2):
    os.dup2(_null, _fd)
os.close(_null)

import _sandbox_policy  # noqa: E402  (this file's folder is sys.path[0])
from _sandbox_isolation import PR_SET_PDEATHSIG, Guard, isolate, libc, make_hook  # noqa: E402
import ast  # noqa: E402
import builtins  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import reprlib  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402

# Modules a program may import. Imported now because after the chroot nothing can be
# loaded from disk; `import x` then finds x in sys.modules.
PRELOAD = (
    "collections", "collections.abc", "math", "cmath", "itertools", "functools", "operator", "re", "string",
    "heapq", "bisect", "copy", "random", "statistics", "fractions", "decimal", "datetime", "calendar", "time",
    "textwrap", "unicodedata", "array", "enum", "dataclasses", "typing", "numbers", "struct", "json",
    "base64", "binascii", "hashlib", "zlib", "difflib", "pprint", "keyword", "locale", "codecs", "types",
    "encodings.idna", "encodings.punycode", "encodings.rot_13", "encodings.ascii", "encodings.latin_1",
    "encodings.utf_16", "encodings.utf_32", "encodings.cp1252", "encodings.unicode_escape",
    "encodings.raw_unicode_escape", "encodings.hex_codec", "encodings.base64_codec", "string",
)
for _m in PRELOAD:
    try:
        __import__(_m)
    except ImportError:
        pass

PROGRAM_FILE = "<pbb-program>"
MAX_CHANGES_PER_EVENT = 32
MAX_CODE_CHARS = 200
MAX_NAME_CHARS = 100


def _read_exact(n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = os.read(_REQ_FD, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _recv() -> dict:
    (n,) = struct.unpack(">I", _read_exact(4))
    return json.loads(_read_exact(n).decode("utf-8"))


def _send(obj: dict) -> None:
    data = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
    frame = struct.pack(">I", len(data)) + data
    while frame:
        frame = frame[os.write(_RESP_FD, frame):]


# ---------------------------------------------------------------- running a call


class _NullOut(io.TextIOBase):
    """stdout/stderr of the program: accepted and discarded at no cost."""

    def write(self, s):
        return len(s)

    def writable(self):
        return True


_short = reprlib.Repr()
_short.maxlevel, _short.maxlist, _short.maxtuple, _short.maxdict, _short.maxset = 4, 30, 30, 30, 30
_short.maxstring, _short.maxlong, _short.maxother = 120, 120, 120
_short.maxfrozenset = _short.maxdeque = _short.maxarray = 30


def _display(value, limit: int) -> str:
    """A repr for the trace: exact for small values, shortened (with ...) for large ones."""
    try:
        r = _short.repr(value)
    except Exception as e:  # a program's own __repr__ may raise
        r = f"<unrepresentable {type(value).__name__}: {type(e).__name__}>"
    return r if len(r) <= limit else r[: limit - 3] + "..."


class _Tracer:
    """sys.settrace callback: line events of the program's own frames with changed variables."""

    def __init__(self, lines: list[str], max_events: int, repr_limit: int):
        self.lines, self.max_events, self.repr_limit = lines, max_events, repr_limit
        self.events: list[dict] = []
        self.state: dict[int, tuple[int, dict[str, str]]] = {}  # id(frame) -> (pending line, snapshot)
        self.full = False

    def snapshot(self, frame) -> dict[str, str]:
        return {k[:MAX_NAME_CHARS]: _display(v, self.repr_limit) for k, v in frame.f_locals.items() if not k.startswith(".")}

    def flush(self, frame) -> None:
        pending = self.state.pop(id(frame), None)
        if pending is None or self.full:
            return
        line, before = pending
        after = self.snapshot(frame)
        changes = {k: v for k, v in after.items() if before.get(k) != v}
        if len(changes) > MAX_CHANGES_PER_EVENT:  # keeps a reply's size bounded (the parent checks it)
            changes = dict(list(changes.items())[:MAX_CHANGES_PER_EVENT])
        code = self.lines[line - 1].strip()[:MAX_CODE_CHARS] if 0 < line <= len(self.lines) else ""
        self.events.append({"line": line, "code": code, "changes": changes})
        if len(self.events) >= self.max_events:
            self.full = True

    def global_trace(self, frame, event, arg):
        if self.full or frame.f_code.co_filename != PROGRAM_FILE:
            return None
        return self.local_trace

    def local_trace(self, frame, event, arg):
        if event in ("line", "return"):
            self.flush(frame)
            if self.full:
                return None
            if event == "line":
                self.state[id(frame)] = (frame.f_lineno, self.snapshot(frame))
        return self.local_trace


def _set_trace(fn) -> None:
    """sys.settrace for the worker itself: the audit hook refuses it to program code."""
    active, Guard.active = Guard.active, False
    try:
        sys.settrace(fn)
    finally:
        Guard.active = active


def _literal_ok(text: str, value) -> bool:
    """The output must be a Python literal that reads back to the same text (or an equal value:
    a set rebuilt from its text may iterate in another order)."""
    try:
        parsed = ast.literal_eval(text)
        return repr(parsed) == text or (type(parsed) is type(value) and parsed == value)
    except Exception:
        return False


def _run(req: dict, cfg: dict) -> dict:
    """Run one call here (in place or in a call's child); the result, without its nonce."""
    source, func_name, input_text = req["source"], req["func_name"], req["input"]
    try:
        args = ast.literal_eval(f"({input_text},)") if input_text.strip() else ()
    except Exception as e:
        return {"ok": False, "error_kind": "exception", "error": f"input is not a Python literal: {type(e).__name__}: {e}"}
    tracer = _Tracer(source.splitlines(), req.get("max_trace_events", 200), cfg["trace_repr_chars"]) if req.get("trace") else None
    env = {"__name__": "__pbb_program__", "__builtins__": dict(_BUILTINS)}
    result: dict = {"ok": False}
    sys.stdout = sys.stderr = _NullOut()
    sys.stdin = io.StringIO("")
    Guard.active = True
    try:
        code = compile(source, PROGRAM_FILE, "exec")
        exec(code, env)
        fn = env.get(func_name)
        if not callable(fn):
            raise NameError(f"the source defines no function {func_name!r}")
        if tracer is not None:
            _set_trace(tracer.global_trace)
        try:
            value = fn(*args)
        finally:
            _set_trace(None)
        text = repr(value)
        if len(text) > cfg["max_output_chars"]:
            result = {"ok": False, "error_kind": "output_too_large",
                      "error": f"output repr has {len(text)} characters (limit {cfg['max_output_chars']})"}
        elif not _literal_ok(text, value):
            result = {"ok": False, "error_kind": "unprintable",
                      "error": f"output is not a Python literal: {text[:200]}"}
        else:
            result = {"ok": True, "output": text}
    except MemoryError:
        _set_trace(None)
        result = {"ok": False, "error_kind": "memory", "error": f"MemoryError (limit {cfg['memory_mb']} MB)"}
    except BaseException as e:  # SystemExit, KeyboardInterrupt raised by a program are its failures too
        _set_trace(None)
        try:
            msg = f"{type(e).__name__}: {e}"
        except BaseException:
            msg = type(e).__name__
        result = {"ok": False, "error_kind": "exception", "error": msg[:1000]}
    finally:
        Guard.active = False
        sys.stdout, sys.stderr, sys.stdin = sys.__stdout__, sys.__stderr__, sys.__stdin__
    if tracer is not None:
        result["trace"] = tracer.events
    return result


_BUILTINS: tuple = ()
"""The builtins as the worker started, as an immutable tuple: each call gets a fresh dict of them."""


class _State:
    """What could outlive a call run in place, captured once at start-up (a second line of
    defence: the policy lets no program in place change any of it)."""

    def __init__(self) -> None:
        self.builtins = tuple(builtins.__dict__.items())
        self.recursion_limit = sys.getrecursionlimit()
        self.int_digits = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else None
        self.cwd = os.getcwd()

    def intact(self) -> bool:
        """False when something changed that a call in place must not change (the worker is then replaced)."""
        live = builtins.__dict__
        return (len(live) == len(self.builtins) and all(live.get(k, _MISSING) is v for k, v in self.builtins)
                and sys.getrecursionlimit() == self.recursion_limit and gc.isenabled()
                and (self.int_digits is None or sys.get_int_max_str_digits() == self.int_digits)
                and os.getcwd() == self.cwd)


_MISSING = object()
_in_place_cache: dict[str, bool] = {}


def _runs_in_place(source: str) -> bool:
    hit = _in_place_cache.get(source)
    if hit is None:
        hit = _sandbox_policy.runs_in_place(source)
        if len(_in_place_cache) > 4096:
            _in_place_cache.clear()
        _in_place_cache[source] = hit
    return hit


def _read_all(fd: int, limit: int) -> bytes | None:
    """Everything written to `fd` until EOF, or None past `limit` bytes."""
    chunks, n = [], 0
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except InterruptedError:
            continue
        if not chunk:
            return b"".join(chunks)
        n += len(chunk)
        if n > limit:
            return None
        chunks.append(chunk)


def _run_forked(req: dict, cfg: dict) -> dict:
    """Run one call in a child forked for it; nothing the program changes survives the call."""
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError as e:
        os.close(r)
        os.close(w)
        return {"ok": False, "error_kind": "crash", "error": f"could not fork the call's process: {e}"}
    if pid == 0:
        _child(req, cfg, r, w)  # never returns
    os.close(w)
    data = _read_all(r, cfg["max_reply_bytes"])
    os.close(r)
    try:
        os.kill(pid, signal.SIGKILL)  # it may have left its pipe and carried on
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    if data is None:
        return {"ok": False, "error_kind": "crash", "error": "the program's process wrote more than a reply"}
    try:
        res = json.loads(data.decode("utf-8", "surrogatepass")) if data else None
    except Exception:
        res = None
    if isinstance(res, dict):
        return res
    if not data and os.WIFSIGNALED(status) and os.WTERMSIG(status) != signal.SIGKILL:
        why = f"signal {os.WTERMSIG(status)}"
    elif not data and os.WIFEXITED(status):
        why = f"exit code {os.WEXITSTATUS(status)}"
    else:
        why = "a malformed reply" if data else "no reply"
    return {"ok": False, "error_kind": "crash", "error": f"the program's process ended without a result ({why})"}


def _child(req: dict, cfg: dict, r: int, w: int) -> None:
    """The process of one call: cut off from the worker, runs the program, replies on `w`, exits."""
    try:
        for fd in (r, _REQ_FD, _RESP_FD):
            os.close(fd)
        try:
            libc().prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
        except Exception:
            pass
        if os.getppid() != cfg["worker_pid"]:
            os._exit(1)
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # fork bombs and threads fail with EAGAIN
        cpu = int(cfg["timeout_s"]) + 2  # the parent's wall-clock limit comes first; this is a backstop
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        if cfg.get("audit_hook", True):
            opens = None if cfg.get("write_cap") == "tmpfs" else max(1, cfg["max_written_bytes"] // cfg["max_file_bytes"])
            sys.addaudithook(make_hook(os.getcwd(), always=True, max_write_opens=opens))
        res = _run(req, cfg)
        try:
            data = json.dumps(res, ensure_ascii=False).encode("utf-8", "surrogatepass")
        except MemoryError:
            data = b'{"ok": false, "error_kind": "memory", "error": "MemoryError while replying"}'
        while data:
            data = data[os.write(w, data):]
    finally:
        os._exit(0)


def _clean_workdir() -> bool:
    """Remove what the last program wrote, so calls cannot see each other's files; False if something stays."""
    try:
        entries = os.listdir(".")
    except OSError:
        return False
    if not entries:
        return True

    def unlock(func, path, exc):  # a program may have taken away the permissions of what it wrote
        try:
            os.chmod(os.path.dirname(path) or ".", 0o700)
            os.chmod(path, 0o700)
            func(path)
        except OSError:
            pass

    for name in entries:
        try:
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, 0o700)
                shutil.rmtree(name, onerror=unlock)
            else:
                os.unlink(name)
        except OSError:
            pass
    try:
        return not os.listdir(".")
    except OSError:
        return False


def main() -> None:
    global _BUILTINS
    cfg = _recv()
    try:
        info = isolate(cfg)
        cfg["write_cap"] = info["write_cap"]
        cfg["worker_pid"] = os.getpid()
        if cfg.get("audit_hook", True):
            sys.addaudithook(make_hook(os.getcwd(), always=False))
        info["audit_hook"] = bool(cfg.get("audit_hook", True))
    except Exception as e:
        _send({"ready": False, "error": f"{type(e).__name__}: {e}"})
        return
    # Programs may not import ctypes (`_sandbox_isolation` keeps its own reference); after a chroot
    # there is no copy on disk to import either.
    for name in [m for m in sys.modules if m in ("ctypes", "_ctypes") or m.startswith("ctypes.")]:
        del sys.modules[name]
    state = _State()
    _BUILTINS = state.builtins
    _send({"ready": True, "isolation": info})
    while True:
        try:
            req = _recv()
        except EOFError:
            return
        in_place = _runs_in_place(req["source"])
        res = _run(req, cfg) if in_place else _run_forked(req, cfg)
        res["nonce"] = req["nonce"]
        try:
            clean = _clean_workdir() and (not in_place or state.intact())
        except Exception:
            clean = False
        if not clean:
            res["recycle"] = True
        try:
            _send(res)
        except MemoryError:
            _send({"nonce": req["nonce"], "ok": False, "error_kind": "memory", "error": "MemoryError while replying"})


if __name__ == "__main__":
    main()
