"""Atomic file writes, JSONL helpers and content hashing.

Every step of a run writes through these helpers, so a killed process never leaves
a half-written file that a later step would trust (write to a temp file, then rename).
Files get the mode an ordinary `open` would give them (0666 less the umask), so
colleagues who share a results folder can read them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pbb.errors import PbbError


def dumps(obj: Any) -> str:
    """Canonical JSON for one record: sorted keys, no NaN surprises, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temp file beside `path`; on success fsync and rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process's umask, read without changing it (Linux), else by setting and restoring it."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ensure_writable_dir(path: str | os.PathLike, what: str = "output directory") -> Path:
    """Create `path` (with its parents) now, or raise a PbbError that says why it cannot be written.

    Called before any expensive step, so a bad `--out` fails at once rather than after the work.
    """
    path = Path(path)
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise PbbError(f"{what} {path}: {blocker} is a file, not a directory; choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PbbError(f"{what} {path}: cannot create it ({e.strerror or e}); choose another path") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PbbError(f"{what} {path}: not writable by this user; choose another path")
    return path


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path) as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Write records one per line (canonical JSON); return how many."""
    n = 0
    with atomic_open(path) as f:
        for r in records:
            f.write(dumps(r) + "\n")
            n += 1
    return n


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path: str | os.PathLike, *, skip_truncated_tail: bool = False) -> list[dict]:
    """Read a JSONL file. With `skip_truncated_tail`, a last line cut short by a kill is ignored."""
    out: list[dict] = []
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if skip_truncated_tail and i == len(lines) - 1 and not line.endswith("\n"):
                break
            raise
    return out


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_obj(obj: Any) -> str:
    """Hash of a JSON-able object in canonical form."""
    return sha256_bytes(dumps(obj).encode())


def sha256_files(paths: Iterable[str | os.PathLike]) -> str:
    """One hash over several files' names and contents, in the order given."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:  # in blocks: model weights are hundreds of MB
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()
