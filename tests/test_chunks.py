"""The chunked predictions file both evaluations write: a killed evaluation resumes where it stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbb.errors import PbbError
from pbb.evaluate.chunks import ChunkedPredictions
from pbb.io import read_jsonl

CHUNKS = [[("a", 0), ("a", 1)], [("b", 0), ("b", 1)], [("c", 0), ("c", 1)]]


def _file(path: Path, chunks=CHUNKS) -> ChunkedPredictions:
    return ChunkedPredictions(path, chunks, key=lambda line: (line["id"], line["sample"]),
                              read=lambda p: read_jsonl(p, skip_truncated_tail=True), to_json=lambda line: line)


def _make(calls: list[int], die_at: int | None = None):
    def make(i: int) -> list[dict]:
        if i == die_at:
            raise KeyboardInterrupt
        calls.append(i)
        return [{"id": pid, "sample": s, "answer": f"{pid}{s}"} for pid, s in CHUNKS[i]]

    return make


def _run(f: ChunkedPredictions, make) -> list[dict]:
    kept, first = f.resume()
    for lines in f.append(first, make):
        kept.extend(lines)
    return kept


def test_a_killed_evaluation_resumes_at_its_first_unfinished_chunk(tmp_path) -> None:
    whole = _run(_file(tmp_path / "whole.jsonl"), _make([]))
    f = _file(tmp_path / "p.jsonl")
    with pytest.raises(KeyboardInterrupt):
        _run(f, _make([], die_at=1))
    # a kill while writing chunk 1: part of its lines and half a line on disk
    with open(f.path, "a") as fh:
        fh.write(json.dumps({"id": "b", "sample": 0, "answer": "b0"}) + '\n{"id": "b", "sam')
    calls: list[int] = []
    assert _run(f, _make(calls)) == whole
    assert calls == [1, 2]  # chunk 0 was kept, not generated again
    assert f.path.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()  # no line twice
    assert _file(f.path).resume() == (whole, 3)


def test_lines_of_another_work_list_are_not_resumed(tmp_path) -> None:
    f = _file(tmp_path / "p.jsonl")
    _run(f, _make([]))
    before = f.path.read_bytes()
    other = _file(f.path, [[("z", 0), ("z", 1)], *CHUNKS[1:]])
    assert other.resume() is None
    assert f.path.read_bytes() == before  # left for the caller to refuse or restart
    other.restart()
    assert other.resume() == ([], 0)


def test_a_damaged_line_before_the_last_is_a_user_error(tmp_path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "sample": 0}\n{broken\n{"id": "a", "sample": 1}\n')
    with pytest.raises(PbbError, match="corrupt.*delete it"):
        _file(path).resume()


def test_a_chunk_with_missing_samples_is_refused_and_not_written(tmp_path) -> None:
    f = _file(tmp_path / "p.jsonl")

    def short(i: int) -> list[dict]:  # a backend that returned one sample where two were asked
        return [{"id": CHUNKS[i][0][0], "sample": 0}] if i == 1 else [{"id": p, "sample": s} for p, s in CHUNKS[i]]

    with pytest.raises(PbbError, match="chunk 1 came back with 1 lines for its 2"):
        _run(f, short)
    assert [(x["id"], x["sample"]) for x in read_jsonl(f.path)] == CHUNKS[0]
