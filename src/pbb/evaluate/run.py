"""Running one evaluation: programs x inputs x modes x samples -> predictions-<condition>.jsonl.

A prediction's `group` is the one the metrics report (`composed` for a composed program,
which is evaluated with the w/o IO group). The baselines ask the base model after a
one-shot example in the graded format (`pbb.prompts.ONE_SHOT`): it never saw the format.

The work list is a pure function of (config, data), in a fixed order: mode, group,
program (file order), distribution, input (file order), sample. It is cut into chunks
at fixed positions; each chunk is generated as one backend call and appended to the
predictions file with a flush (`pbb.evaluate.chunks`). A killed evaluation therefore leaves whole chunks (and
perhaps one truncated line): a rerun keeps the whole chunks, drops the rest and goes
on from the next chunk boundary, so its batches, and so its bytes, are those of an
uninterrupted run.

Each mode's generation cap is `pbb.budgets.generation_budgets` (the config's, or the
longest reference completion plus a margin); a prediction records whether generation
hit it (`capped`). Under the shuffled-code control a w/o IO prediction is graded a second
time, against the output of the source its name was trained with
(`data/shuffled_code.jsonl`): `shuffled_expected`, `shuffled_correct`.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pbb import prompts
from pbb.budgets import generation_budgets
from pbb.config import Experiment
from pbb.data.composition import evaluation_group, executable_source
from pbb.errors import PbbError
from pbb.evaluate.backends import GenerationBackend, get_backend, stops_for_mode
from pbb.evaluate.chunks import ChunkedPredictions
from pbb.prompts import grade
from pbb.schema import BASELINES
from pbb.progress import ProgressBar, console
from pbb.records import Example, Prediction, Program, ShuffledCode
from pbb.store import DataStore, read_records

CHUNK_BATCHES = 4
"""Prompts per chunk = this x eval.batch_size: enough for length-sorting to pay off,
small enough that a kill loses little work."""

KEY_FIELDS = ("program_id", "mode", "distribution", "input", "prompt", "sample")
"""What a kept prediction must match to count as done (the prompt catches in-context vs not)."""


@dataclass(frozen=True)
class Query:
    """One prompt of the work list (its samples become `n_samples` prediction lines)."""

    program: Program
    mode: str
    distribution: str
    example: Example
    prompt: str


def load_data(data_dir: str | os.PathLike) -> tuple[list[Program], dict[tuple[str, str], list[Example]]]:
    """Programs (file order) and examples by (program_id, distribution), as the data build wrote them."""
    data = DataStore(data_dir)
    return data.read_programs(), data.examples_by_key()


def check_one_shot(programs: list[Program]) -> None:
    """Raise PbbError when the baselines' one-shot example (`pbb.prompts.ONE_SHOT`) is a program of the build."""
    ex = prompts.ONE_SHOT
    for p in programs:
        if p.name == ex.name or p.source.strip() == ex.source.strip():
            raise PbbError(
                f"program {p.id} ({p.name}) of the build is the baselines' one-shot example {ex.name}; "
                "rename it (the example must be a program the build does not hold)"
            )


def build_queries(
    exp: Experiment, programs: list[Program], examples: dict[tuple[str, str], list[Example]], *, in_context: bool,
    cap: int | None = None, one_shot: bool = False,
) -> tuple[list[Query], list[str]]:
    """The ordered work list, and warnings about empty groups or distributions.

    `one_shot` (the baselines) puts `pbb.prompts.ONE_SHOT`, asked and answered in the
    graded format, before every prompt.
    """
    if one_shot:
        check_one_shot(programs)
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
                        if one_shot:
                            text = prompts.with_one_shot(mode, text, show_source=in_context)
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


def _predictions_file(out_path: Path, queries: list[Query], bounds: list[tuple[int, int]], n: int) -> ChunkedPredictions:
    """The predictions file, its chunks keyed by what a kept prediction must match to count as done."""
    return ChunkedPredictions(
        out_path, [[_key(q, s) for q in queries[start:end] for s in range(n)] for start, end in bounds],
        key=lambda r: tuple(getattr(r, f) for f in KEY_FIELDS),
        read=lambda path: read_records(path, Prediction, skip_truncated_tail=True),
        to_json=Prediction.to_json,
    )


def run_eval(
    exp: Experiment,
    *,
    data_dir: str | os.PathLike,
    model_ref: str,
    out_path: str | os.PathLike,
    condition: str,
    in_context: bool = False,
    backend: GenerationBackend | None = None,
) -> list[Prediction]:
    """Evaluate `model_ref` on the configured groups x distributions x modes; return all predictions.

    Appends to `out_path` (predictions-<condition>.jsonl) chunk by chunk and resumes from it.
    A baseline condition (`zero_shot`, `in_context`) asks every prompt after the one-shot
    example `pbb.prompts.ONE_SHOT`. `backend` overrides the configured one (tests pass a
    ready backend).
    """
    out_path = Path(out_path)
    cfg = exp.eval
    programs, examples = load_data(data_dir)
    baseline = condition in BASELINES
    cap = cfg.baseline_inputs_per_program if baseline else None
    # the base model has never seen the graded format: the baselines get a one-shot example of it
    queries, warnings = build_queries(exp, programs, examples, in_context=in_context, cap=cap, one_shot=baseline)
    for w in warnings:
        console.print(f"[yellow]warning ({condition}):[/yellow] {w}", highlight=False)
    n = cfg.n_samples
    bounds = _chunks(queries, CHUNK_BATCHES * cfg.batch_size)
    predictions = _predictions_file(out_path, queries, bounds, n)
    resumed = predictions.resume()
    if resumed is None:
        raise PbbError(f"{out_path} holds predictions of a different evaluation (other data, config or order); "
                       "delete it or use another condition")
    records, first = resumed
    if not queries:
        console.print(f"[yellow]{condition}: nothing to evaluate[/yellow] (no programs/inputs match eval.groups and eval.distributions)")
        predictions.restart()
        return []
    if first == len(bounds):
        console.print(f"[dim]{condition}: all {len(records)} predictions already in {out_path}[/dim]")
        return records
    if first:
        console.print(f"{condition}: resuming after {len(records)} predictions in {out_path}", highlight=False)

    data = DataStore(data_dir)
    budgets = generation_budgets(exp, data)
    shuffled = _shuffled_grading(data.read_shuffled_code(), {p.id: p for p in programs})
    caps = ", ".join(f"{m} {b.value} ({'from the data' if b.source == 'data' else 'set'})" for m, b in budgets.items())
    console.print(f"[dim]{condition}: max_new_tokens {caps}[/dim]", highlight=False)
    backend = backend or get_backend(cfg.backend, model_ref, batch_size=cfg.batch_size)
    greedy = cfg.temperature <= 0
    rows_per_query = 1 if greedy else n
    todo = sum(end - start for start, end in bounds[first:]) * rows_per_query
    t0, tok0 = time.perf_counter(), getattr(backend, "tokens_generated", 0)

    def generate(i: int) -> list[Prediction]:
        start, end = bounds[i]
        chunk = queries[start:end]
        mode = chunk[0].mode
        max_new = budgets[mode].value
        outs = backend.generate(
            [q.prompt for q in chunk], max_new_tokens=max_new, stop=stops_for_mode(mode),
            temperature=cfg.temperature, top_p=cfg.top_p, n=n, seed=exp.seed, progress=bar.advance,  # the bar below
        )
        lines = []
        for q, completions in zip(chunk, outs):
            for s, completion in enumerate(completions):
                g = grade(q.program, mode, completion, q.example.output)
                shown, shown_expected = shuffled.get((q.program.id, q.distribution, q.example.input), (None, None))
                lines.append(Prediction(
                    program_id=q.program.id, group=evaluation_group(q.program), mode=mode, distribution=q.distribution,
                    input=q.example.input, prompt=q.prompt, completion=str(completion), answer=g.answer,
                    expected=q.example.output, parsed=g.parsed, correct=g.correct, sample=s,
                    capped=bool(getattr(completion, "capped", False)),  # a backend that does not say: not capped
                    shuffled_expected=shown_expected,
                    shuffled_correct=None if shown is None else grade(shown, mode, completion, shown_expected).correct,
                ))
        return lines

    with ProgressBar(f"eval {condition}", total=todo) as bar:
        done_rows = 0
        for lines in predictions.append(first, generate):
            records.extend(lines)
            done_rows += len(lines) // n * rows_per_query
            bar.update(done_rows)  # exact even if a backend reports no progress
    wall = time.perf_counter() - t0
    toks = getattr(backend, "tokens_generated", 0) - tok0
    console.print(f"{condition}: {todo} generations, {toks} tokens in {wall:.1f}s ({toks / max(wall, 1e-9):.0f} tokens/s)",
                  highlight=False)
    _warn_if_garbage(records, condition)
    return records


def _shuffled_grading(shuffled: dict[str, ShuffledCode], programs: dict[str, Program]) -> dict[tuple[str, str, str], tuple[Program, str]]:
    """(program id, distribution, input) -> (the program whose source the name showed, its output there).

    The shown program grades (its `grading`, its grammar for membership), its output is the expected one.
    """
    out: dict[tuple[str, str, str], tuple[Program, str]] = {}
    for pid, sc in shuffled.items():
        shown = programs.get(sc.source_id)
        if shown is None:
            raise PbbError(f"data/shuffled_code.jsonl names program {sc.source_id!r}, which programs.jsonl lacks; rebuild the data")
        for (dist, text), output in sc.outputs().items():
            out[(pid, dist, text)] = (shown, output)
    return out


def _warn_if_garbage(records: list[Prediction], condition: str) -> None:
    """Say so when the model produced no parseable answer at all: usually a wrong model or format."""
    if not records:
        return
    unparsed = sum(not r.parsed for r in records)
    if unparsed == len(records):
        sample = next((r.completion for r in records if r.completion.strip()), "")
        what = f"e.g. {sample[:80]!r}" if sample else "every completion was empty"
        console.print(f"[yellow]warning ({condition}):[/yellow] no completion had a parseable answer ({what}); "
                      "all are graded wrong. Is this the right model and prompt format?", highlight=False)
    elif unparsed > len(records) / 2:
        console.print(f"[yellow]warning ({condition}):[/yellow] {unparsed}/{len(records)} completions had no parseable answer",
                      highlight=False)
