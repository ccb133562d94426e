"""A predictions file written chunk by chunk, so a killed evaluation resumes where it stopped.

Both evaluations write this way: `pbb.evaluate.run` (`eval/predictions-<condition>.jsonl`
of a run) and `pbb.evaluate.corpus_eval` (`predictions.jsonl` of `pbb eval-corpus`).
The work list is fixed before anything is generated and cut into chunks at fixed
positions; the caller names the key of every line each chunk must hold. A chunk is
generated whole (one backend call), appended, flushed and fsynced, so a kill leaves whole
chunks and perhaps one line cut short. `resume` keeps the leading whole chunks whose lines
have the expected keys, cuts the file back to them (atomically), and the evaluation goes on
from the next chunk: its batches, and so its bytes, are those of an uninterrupted run, and
no line is written twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from pbb.errors import PbbError
from pbb.io import dumps, write_jsonl

R = TypeVar("R")


class ChunkedPredictions(Generic[R]):
    """The predictions file at `path` for a work list cut into `chunks`, each the keys of its lines in order.

    `key(line)` is a line's key, `read(path)` the file's lines (a last line cut short by a
    kill left out; a damaged line before it raises `PbbError` or `ValueError`) and
    `to_json(line)` a line as JSON.
    """

    def __init__(self, path: str | os.PathLike, chunks: Sequence[Sequence[Hashable]], *, key: Callable[[R], Hashable],
                 read: Callable[[Path], list[R]], to_json: Callable[[R], dict[str, Any]]) -> None:
        self.path = Path(path)
        self.chunks = chunks
        self.key = key
        self.read = read
        self.to_json = to_json

    def resume(self) -> tuple[list[R], int] | None:
        """(the lines of the whole chunks already written, how many chunks that is), the file cut back
        to them; ([], 0) when there is no file; None, the file untouched, when its lines are not this
        work list's (another evaluation's): the caller refuses it or starts over (`restart`)."""
        if not self.path.exists():
            return [], 0
        try:
            old = self.read(self.path)
        except (PbbError, ValueError) as e:
            why = str(e).removeprefix(str(self.path)).strip()
            raise PbbError(f"{self.path} is corrupt ({why}); delete it to evaluate afresh") from None
        kept: list[R] = []
        done = 0
        for want in self.chunks:
            got = old[len(kept) : len(kept) + len(want)]
            if len(got) < len(want):
                break  # a chunk the kill cut short: generated again
            if [self.key(r) for r in got] != list(want):
                return None
            kept.extend(got)
            done += 1
        if len(kept) != len(old) or (self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n")):
            self._write(kept)  # drop a partial chunk and a truncated line, atomically
        return kept, done

    def restart(self) -> None:
        """Empty the file: the evaluation starts from its first chunk."""
        self._write([])

    def append(self, first: int, make: Callable[[int], list[R]]) -> Iterator[list[R]]:
        """Generate chunk i = first, first + 1, ... with `make(i)`; each is appended whole (flushed and
        fsynced) before its lines are yielded. A chunk whose lines do not have its keys (a backend that
        returned too few or too many completions) is a PbbError, and nothing of it is written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for i in range(first, len(self.chunks)):
                lines = make(i)
                want = list(self.chunks[i])
                if [self.key(r) for r in lines] != want:
                    raise PbbError(f"{self.path}: chunk {i} came back with {len(lines)} lines for its {len(want)} "
                                   "prompts x samples, or in another order; the generation backend is at fault")
                f.write("".join(dumps(self.to_json(r)) + "\n" for r in lines))
                f.flush()
                os.fsync(f.fileno())
                yield lines

    def _write(self, lines: list[R]) -> None:
        write_jsonl(self.path, (self.to_json(r) for r in lines))
