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
4. rlimits: address space (memory), no new processes or threads (NPROC 0), file size,
   open files, no core dumps;
5. an audit hook that refuses sockets, subprocesses, fork/exec, ctypes and writes
   outside the working directory while program code runs (defence in depth).

Protocol: frames of a 4-byte big-endian length then UTF-8 JSON. Each request carries a
random `nonce` that the response must echo, so a program that writes to the response
pipe cannot forge the answer to a later request.
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

import ast  # noqa: E402
import builtins  # noqa: E402
import ctypes  # noqa: E402
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
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
MAX_CHANGES_PER_EVENT = 32
MAX_CODE_CHARS = 200


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


# ---------------------------------------------------------------- isolation


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> bool:
    try:
        return _libc().unshare(flags) == 0
    except Exception:
        return False


def _drop_all_capabilities() -> bool:
    """capset(2) with empty sets: what a user namespace granted is given back."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    hdr = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    try:
        return _libc().capset(ctypes.byref(hdr), data) == 0
    except Exception:
        return False


def _isolate(cfg: dict) -> dict:
    """Enter the namespaces, chroot and drop privileges that this machine allows; report which."""
    workdir = cfg["workdir"]
    info = {"root": os.geteuid() == 0, "netns": False, "chroot": False, "uid": os.geteuid()}
    os.chdir(workdir)
    if os.geteuid() == 0:
        info["netns"] = _unshare(CLONE_NEWNET)
        try:
            os.chroot(workdir)
            os.chdir("/")
            info["chroot"] = True
        except OSError:
            pass
        uid, gid = cfg["drop_uid"], cfg["drop_gid"]
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)  # all uids non-zero: the kernel clears every capability
        info["uid"] = os.geteuid()
    elif _unshare(CLONE_NEWUSER | CLONE_NEWNET):
        info["netns"] = True
        try:
            os.chroot(workdir)
            os.chdir("/")
            info["chroot"] = True
        except OSError:
            pass
        # Without this, CAP_SYS_CHROOT inside the namespace would allow the classic chroot escape.
        if not _drop_all_capabilities():
            raise RuntimeError("could not drop the capabilities of the user namespace")
    # Die with the parent (a killed build must not leave a worker spinning in a loop). Set
    # after the uid change, which clears it; the ppid check covers a parent already gone.
    try:
        _libc().prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    except Exception:
        pass
    if cfg.get("parent_pid") not in (None, os.getppid()):
        os._exit(0)
    # Home and temp are the throwaway directory itself (after a chroot: "/").
    os.environ["HOME"] = os.environ["TMPDIR"] = os.getcwd()
    mem = cfg["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # fork bombs and threads fail with EAGAIN
    fsize = cfg["max_file_bytes"]
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    return info


_BLOCKED_EVENTS = frozenset({
    "os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.kill", "os.killpg",
    "subprocess.Popen", "pty.spawn", "_thread.start_new_thread", "sys.settrace", "sys.setprofile",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function", "ctypes.addressof",
    "os.chroot", "os.setuid", "os.setgid", "os.putenv", "os.unsetenv", "resource.setrlimit",
    "sys.addaudithook", "socket.socket", "socket.__new__", "socket.connect", "socket.bind",
    "socket.getaddrinfo", "socket.sendto", "urllib.Request", "os.startfile", "mmap.__new__", "winreg.OpenKey",
})
_PATH_EVENTS = frozenset({
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.symlink", "os.link",
    "os.truncate", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile", "os.listdir", "os.scandir",
})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class _Guard:
    active = False  # on only while program code runs: the worker's own bookkeeping is unhindered


def _install_audit_hook(workdir: str) -> None:
    root = os.path.realpath(workdir)

    def inside(path) -> bool:
        if isinstance(path, int):
            return True  # an fd the process already holds
        try:
            p = os.path.realpath(os.fsdecode(path))
        except Exception:
            return False
        return p == root or p.startswith(root.rstrip("/") + "/")

    def hook(event: str, args: tuple) -> None:
        if not _Guard.active:
            return
        if event in _BLOCKED_EVENTS or event.startswith("socket."):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writes and path is not None and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the working directory is not allowed")
        elif event in _PATH_EVENTS:
            for a in args[:2]:
                if isinstance(a, (str, bytes, os.PathLike)) and not inside(a):
                    raise PermissionError(f"sandbox: {event} outside the working directory is not allowed")

    sys.addaudithook(hook)


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
        return {k: _display(v, self.repr_limit) for k, v in frame.f_locals.items() if not k.startswith(".")}

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
    active, _Guard.active = _Guard.active, False
    try:
        sys.settrace(fn)
    finally:
        _Guard.active = active


def _literal_ok(text: str, value) -> bool:
    """The output must be a Python literal that reads back to the same text (or an equal value:
    a set rebuilt from its text may iterate in another order)."""
    try:
        parsed = ast.literal_eval(text)
        return repr(parsed) == text or (type(parsed) is type(value) and parsed == value)
    except Exception:
        return False


def _run(req: dict, cfg: dict, clean_builtins: dict) -> dict:
    source, func_name, input_text = req["source"], req["func_name"], req["input"]
    try:
        args = ast.literal_eval(f"({input_text},)") if input_text.strip() else ()
    except Exception as e:
        return {"ok": False, "error_kind": "exception", "error": f"input is not a Python literal: {type(e).__name__}: {e}"}
    tracer = _Tracer(source.splitlines(), req.get("max_trace_events", 200), cfg["trace_repr_chars"]) if req.get("trace") else None
    env = {"__name__": "__pbb_program__", "__builtins__": dict(clean_builtins)}
    result: dict = {"ok": False}
    sys.stdout = sys.stderr = _NullOut()
    sys.stdin = io.StringIO("")
    _Guard.active = True
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
        _Guard.active = False
        sys.stdout, sys.stderr, sys.stdin = sys.__stdout__, sys.__stderr__, sys.__stdin__
    if tracer is not None:
        result["trace"] = tracer.events
    return result


class _State:
    """What a program could change that outlives its call, captured once at start-up."""

    def __init__(self) -> None:
        self.builtins = dict(builtins.__dict__)
        self.modules = {name: (mod, dict(vars(mod))) for name, mod in list(sys.modules.items())
                        if mod is not None and hasattr(mod, "__dict__")}
        self.recursion_limit = sys.getrecursionlimit()
        self.int_digits = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else None
        self.cwd = os.getcwd()

    def restore(self, source: str) -> bool:
        """Undo what can be undone; False when a module was edited (the parent then replaces the worker)."""
        live = builtins.__dict__
        if live.keys() != self.builtins.keys() or any(live[k] is not v for k, v in self.builtins.items()):
            live.clear()
            live.update(self.builtins)
        sys.setrecursionlimit(self.recursion_limit)
        if self.int_digits is not None:
            sys.set_int_max_str_digits(self.int_digits)
        gc.enable()
        for timer in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
            signal.setitimer(timer, 0)
        for sig in (signal.SIGALRM, signal.SIGVTALRM, signal.SIGPROF, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler)
        os.chdir(self.cwd)
        # A program that rebinds a module attribute (math.pi = 3) would poison later calls.
        # Comparing every module costs ~0.2 ms, so only code that could do it is checked.
        if not _may_edit_modules(source):
            return True
        for _name, (mod, snap) in self.modules.items():
            d = vars(mod)
            if len(d) != len(snap) or any(d.get(k, _MISSING) is not v for k, v in snap.items()):
                return False
        return True


_MISSING = object()
_EDITING_NAMES = frozenset({"setattr", "delattr", "vars", "__dict__", "exec", "eval", "compile", "globals", "locals",
                            "__import__", "getattr", "__builtins__", "__setattr__", "__delattr__", "__class__",
                            "__getattribute__", "sys", "importlib", "builtins", "gc", "__subclasses__", "__globals__"})
_edit_cache: dict[str, bool] = {}


def _may_edit_modules(source: str) -> bool:
    """Whether code could rebind module attributes: any attribute store or reflective name. Cached."""
    hit = _edit_cache.get(source)
    if hit is None:
        try:
            tree = ast.parse(source)
            hit = any(
                (isinstance(n, ast.Attribute) and (not isinstance(n.ctx, ast.Load) or n.attr in _EDITING_NAMES))
                or (isinstance(n, ast.Name) and n.id in _EDITING_NAMES)
                or (isinstance(n, ast.alias) and n.name.split(".")[0] in _EDITING_NAMES)
                for n in ast.walk(tree))
        except Exception:
            hit = True
        if len(_edit_cache) > 4096:
            _edit_cache.clear()
        _edit_cache[source] = hit
    return hit


def _clean_workdir() -> None:
    """Remove what the last program wrote, so calls cannot see each other's files."""
    try:
        entries = os.listdir(".")
    except OSError:
        return
    for name in entries:
        try:
            if os.path.isdir(name) and not os.path.islink(name):
                shutil.rmtree(name, ignore_errors=True)
            else:
                os.unlink(name)
        except OSError:
            pass


def main() -> None:
    cfg = _recv()
    try:
        info = _isolate(cfg)
        if cfg.get("audit_hook", True):
            _install_audit_hook(os.getcwd())
        info["audit_hook"] = bool(cfg.get("audit_hook", True))
    except Exception as e:
        _send({"ready": False, "error": f"{type(e).__name__}: {e}"})
        return
    # Programs may not import ctypes (the worker keeps its own reference); after a chroot
    # there is no copy on disk to import either.
    for name in [m for m in sys.modules if m in ("ctypes", "_ctypes") or m.startswith("ctypes.")]:
        del sys.modules[name]
    state = _State()
    _send({"ready": True, "isolation": info})
    while True:
        try:
            req = _recv()
        except EOFError:
            return
        res = _run(req, cfg, state.builtins)
        res["nonce"] = req["nonce"]
        try:
            clean = state.restore(req["source"])
        except Exception:
            clean = False
        if not clean:
            res["recycle"] = True
        _clean_workdir()
        try:
            _send(res)
        except MemoryError:
            _send({"nonce": req["nonce"], "ok": False, "error_kind": "memory", "error": "MemoryError while replying"})


if __name__ == "__main__":
    main()
