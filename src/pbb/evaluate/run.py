"""Running one evaluation: programs x inputs x modes x samples -> predictions-<label>.jsonl.

The work list is a pure function of (config, data), in a fixed order: mode, group,
program (file order), distribution, input (file order), sample. It is cut into chunks
at fixed positions; each chunk is generated as one backend call and appended to the
predictions file with a flush. A killed evaluation therefore leaves whole chunks (and
perhaps one truncated line): a rerun keeps the whole chunks, drops the rest and goes
on from the next chunk boundary, so its batches, and so its bytes, are those of an
uninterrupted run.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pbb import prompts
from pbb.data.composition import executable_source
from pbb.config import Experiment
from pbb.errors import PbbError
from pbb.evaluate.backends import GenerationBackend, get_backend, stops_for_mode
from pbb.evaluate.grading import grade
from pbb.io import dumps, read_jsonl, write_jsonl
from pbb.programs.base import Example, Program

console = Console(stderr=True)

CHUNK_BATCHES = 4
"""Prompts per chunk = this x eval.batch_size: enough for length-sorting to pay off,
small enough that a kill loses little work."""

KEY_FIELDS = ("program_id", "mode", "distribution", "input", "prompt", "sample")
"""What a kept prediction must match to count as done (the prompt catches in-context vs not)."""


class ProgressBar:
    """A progress bar with an ETA in a terminal; in a log (no terminal), a line every 30 s."""

    LOG_EVERY_S = 30.0

    def __init__(self, description: str, total: int, completed: int = 0) -> None:
        self.description, self.total, self.done = description, total, completed
        self.start, self.last_log = time.perf_counter(), time.perf_counter()
        self._base = completed
        self._final_logged = completed == total  # nothing to report for work already done
        self._bar: Progress | None = None
        if console.is_terminal:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("ETA"), TimeRemainingColumn())
            self._bar = Progress(*columns, console=console)
            self._task = self._bar.add_task(description, total=total, completed=completed)

    def __enter__(self) -> ProgressBar:
        if self._bar:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.__exit__(*exc)  # type: ignore[arg-type]

    def advance(self, k: int) -> None:
        self.update(self.done + k)

    def update(self, completed: int) -> None:
        self.done = min(completed, self.total)
        if self._bar:
            self._bar.update(self._task, completed=self.done)
            return
        now = time.perf_counter()
        final = self.done == self.total and not self._final_logged
        if now - self.last_log >= self.LOG_EVERY_S and self.done < self.total or final:
            self.last_log, self._final_logged = now, self._final_logged or final
            rate = (self.done - self._base) / max(now - self.start, 1e-9)
            eta = f"{(self.total - self.done) / rate:.0f}s" if rate > 0 else "?"
            console.print(f"{self.description}: {self.done}/{self.total}, {now - self.start:.0f}s elapsed, ETA {eta}",
                          highlight=False)


@dataclass(frozen=True)
class Query:
    """One prompt of the work list (its samples become `n_samples` prediction lines)."""

    program: Program
    mode: str
    distribution: str
    example: Example
    prompt: str


def load_data(data_dir: str | os.PathLike) -> tuple[list[Program], dict[tuple[str, str], list[Example]]]:
    """Programs (file order) and examples by (program_id, split), as the data build wrote them."""
    data_dir = Path(data_dir)
    files = [data_dir / "programs.jsonl", data_dir / "examples.jsonl"]
    for f in files:
        if not f.exists():
            raise PbbError(f"{f} does not exist: build the data first (`pbb data CONFIG`) or pass the right data directory")
    programs = [Program.from_json(d) for d in read_jsonl(files[0])]
    examples: dict[tuple[str, str], list[Example]] = defaultdict(list)
    for d in read_jsonl(files[1]):
        try:
            ex = Example(**{k: d[k] for k in Example.__dataclass_fields__})
        except KeyError as e:
            raise PbbError(f"{files[1]}: a line lacks the field {e.args[0]!r}; rebuild the data") from None
        examples[(ex.program_id, ex.split)].append(ex)
    return programs, examples


def build_queries(
    exp: Experiment, programs: list[Program], examples: dict[tuple[str, str], list[Example]], *, in_context: bool,
    cap: int | None = None,
) -> tuple[list[Query], list[str]]:
    """The ordered work list, and warnings about empty groups or distributions."""
    warnings: list[str] = []
    by_group: dict[str, list[Program]] = defaultdict(list)
    for p in programs:
        by_group[p.group].append(p)
    for g in exp.eval.groups:
        if not by_group.get(g):
            warnings.append(f"group {g!r} has no programs in programs.jsonl: it gets no predictions and no metrics")
    cap = cap or exp.eval.max_inputs_per_program
    queries: list[Query] = []
    missing: dict[str, int] = defaultdict(int)
    for mode in exp.eval.modes:
        for g in exp.eval.groups:
            for prog in by_group.get(g, []):
                for dist in exp.eval.distributions:
                    exs = examples.get((prog.id, dist), [])[:cap]
                    if not exs and mode == exp.eval.modes[0]:
                        missing[dist] += 1
                    for ex in exs:
                        text = prompts.prompt_for(mode, prog.name, ex.input)
                        if in_context:
                            # a composed program's callees are part of what the model must see
                            text = prompts.in_context(text, executable_source(prog))
                        queries.append(Query(prog, mode, dist, ex, text))
    for dist, k in missing.items():
        warnings.append(f"{k} evaluated program(s) have no {dist!r} inputs in examples.jsonl")
    return queries, warnings


def _chunks(queries: list[Query], size: int) -> list[tuple[int, int]]:
    """Fixed [start, end) chunk bounds; a chunk never mixes modes (one backend call each)."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(queries) + 1):
        if i == len(queries) or i - start == size or queries[i].mode != queries[start].mode:
            bounds.append((start, i))
            start = i
    return bounds


def _key(q: Query, sample: int) -> tuple:
    return (q.program.id, q.mode, q.distribution, q.example.input, q.prompt, sample)


def _resume(out_path: Path, queries: list[Query], bounds: list[tuple[int, int]], n: int) -> tuple[list[dict], int]:
    """Records of the whole chunks already written, and the index of the first chunk to do."""
    if not out_path.exists():
        return [], 0
    try:
        old = read_jsonl(out_path, skip_truncated_tail=True)
    except ValueError:  # JSONDecodeError, or undecodable bytes, before the last line
        raise PbbError(f"{out_path} is corrupt (a line before the last is not JSON); delete it to evaluate afresh") from None
    kept: list[dict] = []
    chunk = 0
    for start, end in bounds:
        want = [_key(q, s) for q in queries[start:end] for s in range(n)]
        got = old[len(kept) : len(kept) + len(want)]
        if len(got) < len(want):
            break
        if [tuple(r.get(f) for f in KEY_FIELDS) for r in got] != want:
            raise PbbError(
                f"{out_path} holds predictions of a different evaluation (other data, config or order); "
                "delete it or use another label"
            )
        kept.extend(got)
        chunk += 1
    if len(kept) != len(old) or out_path.stat().st_size and not out_path.read_bytes().endswith(b"\n"):
        write_jsonl(out_path, kept)  # drop a partial chunk / truncated line, atomically
    return kept, chunk


def run_eval(
    exp: Experiment,
    *,
    data_dir: str | os.PathLike,
    model_ref: str,
    out_path: str | os.PathLike,
    label: str,
    in_context: bool = False,
    backend: GenerationBackend | None = None,
) -> list[dict]:
    """Evaluate `model_ref` on the configured groups x distributions x modes; return all records.

    Appends to `out_path` (predictions-<label>.jsonl) chunk by chunk and resumes from it.
    `backend` overrides the configured one (tests pass a ready backend).
    """
    out_path = Path(out_path)
    cfg = exp.eval
    programs, examples = load_data(data_dir)
    baseline = label in ("zero_shot", "in_context")
    cap = cfg.baseline_inputs_per_program if baseline else None
    queries, warnings = build_queries(exp, programs, examples, in_context=in_context, cap=cap)
    for w in warnings:
        console.print(f"[yellow]warning ({label}):[/yellow] {w}", highlight=False)
    n = cfg.n_samples
    bounds = _chunks(queries, CHUNK_BATCHES * cfg.batch_size)
    records, first = _resume(out_path, queries, bounds, n)
    if not queries:
        console.print(f"[yellow]{label}: nothing to evaluate[/yellow] (no programs/inputs match eval.groups and eval.distributions)")
        write_jsonl(out_path, [])
        return []
    if first == len(bounds):
        console.print(f"[dim]{label}: all {len(records)} predictions already in {out_path}[/dim]")
        return records
    if first:
        console.print(f"{label}: resuming after {len(records)} predictions in {out_path}", highlight=False)

    backend = backend or get_backend(cfg.backend, model_ref, batch_size=cfg.batch_size)
    greedy = cfg.temperature <= 0
    rows_per_query = 1 if greedy else n
    todo = sum(end - start for start, end in bounds[first:]) * rows_per_query
    out_path.parent.mkdir(parents=True, exist_ok=True)
    t0, tok0 = time.perf_counter(), getattr(backend, "tokens_generated", 0)
    with ProgressBar(f"eval {label}", total=todo) as bar, open(out_path, "a", encoding="utf-8") as f:
        done_rows = 0
        for start, end in bounds[first:]:
            chunk = queries[start:end]
            mode = chunk[0].mode
            max_new = cfg.max_new_tokens_direct if mode == "direct" else cfg.max_new_tokens_cot
            outs = backend.generate(
                [q.prompt for q in chunk], max_new_tokens=max_new, stop=stops_for_mode(mode),
                temperature=cfg.temperature, top_p=cfg.top_p, n=n, seed=exp.seed,
                progress=bar.advance,
            )
            lines = []
            for q, completions in zip(chunk, outs):
                for s, completion in enumerate(completions):
                    g = grade(q.program, mode, completion, q.example.output)
                    lines.append({
                        "program_id": q.program.id, "group": q.program.group, "mode": mode,
                        "distribution": q.distribution, "input": q.example.input, "prompt": q.prompt,
                        "completion": completion, "answer": g.answer, "expected": q.example.output,
                        "parsed": g.parsed, "correct": g.correct, "sample": s,
                    })
            f.write("".join(dumps(r) + "\n" for r in lines))
            f.flush()
            os.fsync(f.fileno())
            records.extend(lines)
            done_rows += len(chunk) * rows_per_query
            bar.update(done_rows)  # exact even if a backend reports no progress
    wall = time.perf_counter() - t0
    toks = getattr(backend, "tokens_generated", 0) - tok0
    console.print(f"{label}: {todo} generations, {toks} tokens in {wall:.1f}s ({toks / max(wall, 1e-9):.0f} tokens/s)",
                  highlight=False)
    _warn_if_garbage(records, label)
    return records


def _warn_if_garbage(records: list[dict[str, Any]], label: str) -> None:
    """Say so when the model produced no parseable answer at all: usually a wrong model or format."""
    if not records:
        return
    unparsed = sum(not r["parsed"] for r in records)
    if unparsed == len(records):
        sample = next((r["completion"] for r in records if r["completion"].strip()), "")
        what = f"e.g. {sample[:80]!r}" if sample else "every completion was empty"
        console.print(f"[yellow]warning ({label}):[/yellow] no completion had a parseable answer ({what}); "
                      "all are graded wrong. Is this the right model and prompt format?", highlight=False)
    elif unparsed > len(records) / 2:
        console.print(f"[yellow]warning ({label}):[/yellow] {unparsed}/{len(records)} completions had no parseable answer",
                      highlight=False)
