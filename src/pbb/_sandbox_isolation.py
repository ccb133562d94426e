"""The sandbox worker's isolation: namespaces, chroot, dropped privileges, rlimits, audit hooks.

Imported by `_sandbox_worker.py` (its folder is sys.path[0]) before the chroot; standard
library only, like the worker. `isolate` is step 3-4 of the worker's start-up and
`make_hook` step 5 (see the worker's docstring). Programs never reach this module: the
policy (`_sandbox_policy`) lets a call import only the preloaded standard-library modules,
and a call that could reach anything else runs in a forked child.
"""

from __future__ import annotations

import ctypes
import os
import resource

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4

def libc():
    return ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> bool:
    try:
        return libc().unshare(flags) == 0
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
        return libc().capset(ctypes.byref(hdr), data) == 0
    except Exception:
        return False


def _mount_tmpfs(workdir: str, cfg: dict) -> bool:
    """As root: a private mount namespace with a size-capped tmpfs on the working directory."""
    try:
        c = libc()
        if c.unshare(CLONE_NEWNS) != 0 or c.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            return False
        size_kb = max(64, cfg["max_written_bytes"] // 1024)
        opts = f"size={size_kb}k,nr_inodes=4096,mode=0700,uid={cfg['drop_uid']},gid={cfg['drop_gid']}"
        return c.mount(b"tmpfs", os.fsencode(workdir), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts.encode()) == 0
    except Exception:
        return False


def _chroot(workdir: str) -> bool:
    """chroot into the working directory (then "/" is it); False where this process may not."""
    try:
        os.chroot(workdir)
        os.chdir("/")
        return True
    except OSError:
        return False


def isolate(cfg: dict) -> dict:
    """Enter the namespaces, chroot and drop privileges that this machine allows; report which."""
    workdir = cfg["workdir"]
    info = {"root": os.geteuid() == 0, "netns": False, "chroot": False, "uid": os.geteuid()}
    os.chdir(workdir)
    if os.geteuid() == 0:
        info["netns"] = _unshare(CLONE_NEWNET)
        info["write_cap"] = "tmpfs" if _mount_tmpfs(workdir, cfg) else "hook"
        info["chroot"] = _chroot(workdir)
        uid, gid = cfg["drop_uid"], cfg["drop_gid"]
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)  # all uids non-zero: the kernel clears every capability
        info["uid"] = os.geteuid()
    elif _unshare(CLONE_NEWUSER | CLONE_NEWNET):
        info["netns"] = True
        info["write_cap"] = "hook"
        info["chroot"] = _chroot(workdir)
        # Without this, CAP_SYS_CHROOT inside the namespace would allow the classic chroot escape.
        if not _drop_all_capabilities():
            raise RuntimeError("could not drop the capabilities of the user namespace")
    # Die with the parent (a killed build must not leave a worker spinning in a loop). Set
    # after the uid change, which clears it; the ppid check covers a parent already gone.
    # Not dumpable: a process of the same uid (a call's child, another worker) cannot ptrace it.
    try:
        libc().prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
        libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except Exception:
        pass
    info.setdefault("write_cap", "hook")
    if cfg.get("parent_pid") not in (None, os.getppid()):
        os._exit(0)
    # Home and temp are the throwaway directory itself (after a chroot: "/").
    os.environ["HOME"] = os.environ["TMPDIR"] = os.getcwd()
    mem = cfg["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    # NPROC stays open here: the worker forks a child per call that could taint it, and the
    # child sets NPROC 0 (fork bombs and threads fail with EAGAIN); programs run in place
    # cannot reach os, threads or subprocesses at all.
    fsize = min(cfg["max_file_bytes"], cfg["max_written_bytes"])
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


class Guard:
    active = False  # on only while program code runs: the worker's own bookkeeping is unhindered


_TRACING_EVENTS = frozenset({"sys.settrace", "sys.setprofile"})


def make_hook(workdir: str, *, always: bool, max_write_opens: int | None = None):
    """The audit hook. `always=False`: only while `Guard.active` (the worker's own hook).
    `always=True`: for a call's child: unconditional (no flag to flip), tracing allowed (it
    only affects the child), and at most `max_write_opens` files opened for writing (the cap
    on what a call writes where no tmpfs caps it). Like any audit hook it is defence in
    depth: code in the same interpreter can subvert it, but in a child only for its own call;
    the boundary is the OS isolation."""
    root = os.path.realpath(workdir)
    prefix = root.rstrip("/") + "/"
    blocked = _BLOCKED_EVENTS - _TRACING_EVENTS if always else _BLOCKED_EVENTS
    path_events, write_flags, guard = _PATH_EVENTS, _WRITE_FLAGS, Guard
    realpath, fsdecode, is_int, is_str = os.path.realpath, os.fsdecode, int, str
    opens = [0]

    def inside(path) -> bool:
        if isinstance(path, is_int):
            return True  # an fd the process already holds
        try:
            p = realpath(fsdecode(path))
        except Exception:
            return False
        return p == root or p.startswith(prefix)

    def hook(event: str, args: tuple) -> None:
        if not always and not guard.active:
            return
        if event in blocked or event.startswith("socket."):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writes = (isinstance(mode, is_str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, is_int) and flags & write_flags)
            if writes and path is not None and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the working directory is not allowed")
            if writes and max_write_opens is not None and not isinstance(path, is_int):
                opens[0] += 1
                if opens[0] > max_write_opens:
                    raise PermissionError(f"sandbox: a call may write at most {max_write_opens} files")
        elif event in path_events:
            for a in args[:2]:
                if isinstance(a, (str, bytes, os.PathLike)) and not inside(a):
                    raise PermissionError(f"sandbox: {event} outside the working directory is not allowed")

    return hook
