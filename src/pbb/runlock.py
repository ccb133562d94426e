"""One run at a time per run directory.

Two runs on one directory would write the same files: predictions appended twice, one
run's temp files renamed under the other. `hold_run_lock(run_dir)` takes an exclusive
`flock` on `run_dir/.lock` for as long as the run lasts, and writes who holds it (pid,
host, start time, command) into the file. A second run gets one PbbError naming the
holder. The kernel releases the lock when its process ends, however it ends, so the lock
of a killed run is taken over at once; the file still names that run, which is said.

Under `accelerate launch` only the main process takes the lock (the others share its run).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from pbb.errors import PbbError

LOCK_NAME = ".lock"


def _read_holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 65536)
        holder = json.loads(data.decode("utf-8")) if data.strip() else {}
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    return (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}"
            f" ({holder.get('command', '?')})")


def _say(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[yellow]{escape(message)}[/yellow]", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def hold_run_lock(run_dir: str | os.PathLike, *, enabled: bool = True) -> Iterator[dict]:
    """Hold `run_dir`'s lock for the duration; yields the previous holder's record when its
    run ended without releasing it ({} otherwise). Raises PbbError when a live run holds it."""
    if not enabled:
        yield {}
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PbbError(f"{run_dir} is in use by another run: {_describe(_read_holder(fd))} (lock {path}); "
                           "wait for it to finish, or give this run another --out") from None
        except OSError as e:  # a filesystem without locks: warn, and run unprotected
            _say(f"{run_dir}: cannot lock {path} ({e.strerror or e}); nothing stops a second run on this directory")
            yield {}
            return
        previous = _read_holder(fd)
        if previous:
            _say(f"{run_dir}: taking over the lock of a run that ended without releasing it ({_describe(previous)})")
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(sys.argv)[:500]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        try:
            yield previous
        finally:
            os.ftruncate(fd, 0)  # a run that ended cleanly leaves no holder behind
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
