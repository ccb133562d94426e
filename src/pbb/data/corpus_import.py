"""The corpus import: real Python functions from JSONL (CRUXEval's format) into a data directory.

Each line holds `code` (a function `f`), `input` (its argument text, `'abc', 3`), `output`
(the repr of the result) and optionally `id`. The code is untrusted: it runs only in
`pbb.sandbox`. The import, `import_corpus(path, out_dir)`:

1. reads every line (a UTF-8 byte order mark is accepted); a line that is not JSON, lacks a
   field, has no function or is a duplicate of an earlier function (same source up to
   formatting, comments and the function's name) is dropped with its line number and the
   reason. Nothing a line holds or a sandbox returns can abort the import: every parse of
   untrusted text is guarded, and a bad record is dropped with its reason;
2. renames the function to an invented name (`pbb.programs.names`) with `ast`, recursive
   calls included, keeping the original formatting;
3. checks in the sandbox that the given input reproduces the recorded output;
4. makes new inputs by type-aware mutation of the given one (ints, strings, lists, dicts,
   tuples, sets, nested; types and rough sizes kept) and keeps those whose runs succeed
   and agree when run twice (traced, and untraced under another hash seed), until
   `n_inputs` distinct inputs; outputs and trace values lose what changes from run to
   run (memory addresses, set order: `pbb.data.normalise`);
   *shifted* inputs are grown versions (longer strings and lists, larger numbers);
5. writes `programs.jsonl`, `examples.jsonl` and `manifest.json` (docs/ARCHITECTURE.md),
   every dropped record or input listed with its reason. Same file and seed, same bytes
   (up to a call that times out in one import and not in the other on a loaded machine).
   An import where no function survives is an error (PbbError) and writes nothing.

`pbb import-corpus` is `import_corpus`; the registered suite `corpus` (`pbb.programs.corpus`)
runs the same import in memory (`import_programs`) or reads its output directory, and serves
the validated input pools per split, so the data builder treats corpus functions like any
other suite. The parts: `pbb.data.arguments` (argument text), `pbb.data.mutation` (new
inputs), `pbb.programs.names` (renaming), `pbb.data.corpus_describe` (the NL docs: honest
structural summaries, not specifications).
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbb.data.arguments import parse_args, render_args
from pbb.data.corpus_describe import describe, family_of, value_kind
from pbb.data.mutation import literal_text, mutate_args
from pbb.data.normalise import normalise_output
from pbb.errors import PbbError, stable_reasons
from pbb.io import ensure_writable_dir
from pbb.programs.names import function_key, invented_names, names_in, rename_function
from pbb.prompts import is_parsed, parse_literal
from pbb.records import Example, Program

REQUIRED_FIELDS = ("code", "input", "output")
ROUNDS = 4  # rounds of mutation per record before settling for fewer inputs
CANDIDATES_PER_MISSING = 2  # candidates drawn per input still missing, each round
MAX_TRACE_LINES = 60
HASH_SEED_CHECK = 1
"""The second run of every input uses this PYTHONHASHSEED (the first, the sandbox's fixed 0):
an output that depends on set or hash order is dropped, not recorded in one arbitrary order."""


# ---------------------------------------------------------------- reading and renaming


@dataclass
class _Record:
    """One corpus function on its way through the import."""

    line: int
    original_id: str
    code: str  # renamed source
    name: str
    args: tuple  # the given input's values
    output: str  # the recorded output, normalised
    rng: random.Random
    inputs: dict[str, list[str]] = field(default_factory=lambda: {"train": [], "test": [], "shifted": []})
    results: dict[str, tuple[str, str]] = field(default_factory=dict)  # input -> (output, trace)
    seen: set[str] = field(default_factory=set)  # every input text tried
    problem: str | None = None


def _target(tree: ast.Module, wanted: str = "f") -> ast.FunctionDef | None:
    """The corpus function: the top-level `def f`, else the last top-level def."""
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    for d in defs:
        if d.name == wanted:
            return d
    return defs[-1] if defs else None


def same_value(a: Any, b: Any) -> bool:
    """Equal values of the same types throughout (so 1, 1.0 and True differ), set order ignored."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_value(a[k], b[k]) for k in a)
    return a == b


def _read(path: Path, seed: int, dropped: list[dict]) -> list[_Record]:
    records: list[_Record] = []
    taken: set[str] = set()
    seen: dict[str, tuple[int, str]] = {}  # normalised source -> (line, id) of its first record
    name_rng = random.Random(f"corpus-names:{seed}")
    with open(path, encoding="utf-8-sig", errors="replace") as fh:  # -sig: a byte order mark is not data
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue

            def drop(reason: str, rid: str | None = None) -> None:
                dropped.append({"id": rid or f"line {lineno}", "line": lineno, "reason": reason})

            try:
                d = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as e:
                drop(f"not JSON ({e.msg} at column {e.colno})" if isinstance(e, json.JSONDecodeError) else "not JSON (nested too deep)")
                continue
            if not isinstance(d, dict):
                drop("not a JSON object")
                continue
            missing = [k for k in REQUIRED_FIELDS if not isinstance(d.get(k), str)]
            rid = str(d.get("id") or f"line {lineno}")
            if missing:
                drop(f"missing or non-string field {missing[0]!r}", rid)
                continue
            try:
                record, why = _record(d, lineno, rid, seed, name_rng, taken, seen)
            except Exception as e:  # a parser or recursion limit on code no ordinary function reaches
                record, why = None, f"code could not be processed: {type(e).__name__}: {e}"[:200]
            if record is None:
                drop(why, rid)
            else:
                records.append(record)
    return records


def _record(d: dict, lineno: int, rid: str, seed: int, name_rng: random.Random, taken: set[str],
            seen: dict[str, tuple[int, str]]) -> tuple[_Record | None, str]:
    """One line's record, or (None, why it is dropped)."""
    try:
        tree = ast.parse(d["code"])
    except Exception as e:  # SyntaxError, ValueError (NUL bytes), RecursionError and MemoryError (too deep)
        return None, f"code does not parse: {type(e).__name__}: {e}"[:200]
    fn = _target(tree)
    if fn is None:
        return None, "code defines no top-level function"
    old = fn.name
    key = function_key(tree, old)
    if key in seen:
        first_line, first_id = seen[key]
        return None, f"duplicate of line {first_line} ({first_id}): the same function"
    try:
        args = parse_args(d["input"])
    except Exception as e:
        return None, f"input is not a Python literal (inputs are parsed, never evaluated): {type(e).__name__}: {e}"[:200]
    if not is_parsed(parse_literal(d["output"], max_chars=len(d["output"]))):
        return None, "recorded output is not a Python literal"
    name = invented_names(name_rng, 1, taken | names_in(d["code"]))[0]
    taken.add(name)  # no two records of one import share a name
    code = rename_function(d["code"], old, name)
    if not code.endswith("\n"):
        code += "\n"
    seen[key] = (lineno, rid)
    return _Record(lineno, rid, code, name, args, d["output"].strip(), random.Random(f"corpus:{seed}:{lineno}")), ""


# ---------------------------------------------------------------- the sandbox pass


def _targets(n_inputs: int) -> dict[str, int]:
    shifted = max(1, n_inputs // 4)
    normal = n_inputs - shifted
    test = max(1, normal // 3)
    return {"train": normal - test, "test": test, "shifted": shifted}


def _split_of(rec: _Record, want: dict[str, int]) -> str | None:
    """Which split a new normal input should fill, or None if both are full."""
    for split in ("train", "test"):
        if len(rec.inputs[split]) < want[split]:
            return split
    return None


def _run_pairs(sb: Any, sb_other_seed: Any, jobs: list[tuple[_Record, str]], bar: Any) -> list[tuple[Any, Any]]:
    """Run each (record, input) twice: traced, and untraced under another hash seed. A pair
    that disagrees is non-deterministic (random, time, or set / hash order)."""
    calls = [(rec.code, rec.name, text) for rec, text in jobs]
    task = bar.add_task("running in the sandbox", total=2 * len(calls))
    traced = sb.run_many(calls, trace=True, on_result=lambda i, r: bar.advance(task))
    plain = sb_other_seed.run_many(calls, trace=False, on_result=lambda i, r: bar.advance(task))
    bar.remove_task(task)
    return list(zip(traced, plain))


def _failure(r1: Any, r2: Any) -> str | None:
    for r in (r1, r2):
        if not r.ok:
            msg = (r.error or "").splitlines()
            return f"{r.error_kind}: {msg[-1] if msg else ''}"[:200]
    if normalise_output(r1.output) != normalise_output(r2.output):
        return (f"non-deterministic: two runs disagree (the second under PYTHONHASHSEED={HASH_SEED_CHECK}: "
                "random, time, or set and hash order)")
    return None


def _trace_text(events: list[dict] | None) -> str:
    from pbb.data.traces import cap_lines, generic_trace

    return cap_lines(generic_trace(events or []), MAX_TRACE_LINES)


def _validate(records: list[_Record], n_inputs: int, dropped: list[dict], timeout_s: float, progress: bool) -> list[_Record]:
    """Check each record's recorded output, then grow its input pool by mutation."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from pbb.sandbox import Sandbox

    want = _targets(n_inputs)
    workers = max(1, min(4, os.cpu_count() or 1))
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Sandbox(workers=workers, timeout_s=timeout_s) as sb, \
            Sandbox(workers=workers, timeout_s=timeout_s, hash_seed=HASH_SEED_CHECK) as sb2, \
            Progress(*cols, disable=not progress, transient=True) as bar:
        rounds = bar.add_task("importing corpus (rounds)", total=ROUNDS + 1)
        # Round 0: the given input must reproduce the recorded output.
        jobs = [(rec, render_args(rec.args)) for rec in records]
        for (rec, text), (r1, r2) in zip(jobs, _run_pairs(sb, sb2, jobs, bar)):
            rec.seen.add(text)
            why = _failure(r1, r2)
            if why is None:
                got, recorded = parse_literal(r1.output), parse_literal(rec.output, max_chars=len(rec.output))
                if not is_parsed(got):
                    why = "crash: the output is not a Python literal"
                elif not same_value(got, recorded):
                    why = f"disagrees with recorded output (recorded {rec.output[:60]}, got {r1.output[:60]})"
            if why is not None:
                rec.problem = why if why.startswith("disagrees") else f"given input fails: {why}"
                continue
            rec.inputs["train"].append(text)
            rec.results[text] = (normalise_output(r1.output), _trace_text(r1.trace))
        live = [r for r in records if r.problem is None]
        bar.advance(rounds)
        # Rounds 1..: mutated candidates for the splits still short, each run twice.
        for _ in range(ROUNDS):
            jobs = []
            for rec in live:
                grown = want["shifted"] - len(rec.inputs["shifted"])
                normal = sum(max(0, want[s] - len(rec.inputs[s])) for s in ("train", "test"))
                for grow, missing in ((False, normal), (True, grown)):
                    for _ in range(CANDIDATES_PER_MISSING * missing):
                        text = literal_text(mutate_args(rec.args, rec.rng, grow))
                        if text is not None and text not in rec.seen:
                            rec.seen.add(text)
                            jobs.append((rec, text, grow))
            if not jobs:
                break
            pairs = _run_pairs(sb, sb2, [(rec, text) for rec, text, _ in jobs], bar)
            for (rec, text, grow), (r1, r2) in zip(jobs, pairs):
                split = "shifted" if grow else _split_of(rec, want)
                if split is None or len(rec.inputs[split]) >= want[split]:
                    continue  # enough already: extra candidates are not kept, so pools stay deterministic
                why = _failure(r1, r2)
                if why is None and not is_parsed(parse_literal(r1.output)):
                    why = "crash: the output is not a Python literal"
                if why is not None:
                    dropped.append({"id": rec.original_id, "line": rec.line, "input": text, "reason": why})
                    continue
                rec.inputs[split].append(text)
                rec.results[text] = (normalise_output(r1.output), _trace_text(r1.trace))
            bar.advance(rounds)
    survivors = []
    min_inputs = min(5, n_inputs)
    for rec in records:
        n = sum(len(v) for v in rec.inputs.values())
        if rec.problem is None and n < min_inputs:
            rec.problem = f"too few distinct inputs ({n} < {min_inputs})"
        if rec.problem is not None:
            dropped.append({"id": rec.original_id, "line": rec.line, "reason": rec.problem})
        else:
            survivors.append(rec)
    return survivors


# ---------------------------------------------------------------- outputs


def import_corpus(path: str | os.PathLike, out_dir: str | os.PathLike, *, seed: int = 0, n_inputs: int = 8,
                  timeout_s: float = 5.0, progress: bool = True) -> dict:
    """Import a CRUXEval-format JSONL into `out_dir` (programs.jsonl, examples.jsonl, manifest.json).

    Returns the manifest plus `summary_line`. Deterministic given (file, seed, n_inputs).
    """
    from pbb.store import DataStore

    path = Path(path)
    if not path.is_file():
        raise PbbError(f"Corpus file {str(path)!r} does not exist: give the path of a JSONL file with code, input, output.")
    if n_inputs < 1:
        raise PbbError(f"n_inputs={n_inputs}: need at least 1 input per function.")
    out = ensure_writable_dir(out_dir, "import-corpus --out")  # before the (long) sandbox pass
    programs, examples, manifest = import_programs(path, seed=seed, n_inputs=n_inputs, timeout_s=timeout_s,
                                                   progress=progress)
    if not programs:
        raise PbbError(f"{path}: no function of its {manifest['counts']['records']} records survived the import "
                       f"({_top_reasons(manifest['dropped'])}); nothing was written to {out}")
    manifest = DataStore(out).write_import(programs, examples, manifest)
    c = manifest["counts"]
    summary = (f"imported {c['programs']} of {c['records']} functions ({c['survival_rate']:.1%}) with "
               f"{c['examples']} examples into {out}; dropped {c['dropped_records']} records "
               f"and {c['dropped_inputs']} inputs (reasons in manifest.json)")
    return {**manifest, "summary_line": summary}


def _top_reasons(dropped: list[dict], n: int = 3) -> str:
    """The most common drop reasons, for a one-line error: 'not JSON (2x), ...'."""
    # one reason per record, without its details (columns, values): 'not JSON (... at column 2)' -> 'not JSON'
    kinds = Counter(re.split(r" \(|: ", d["reason"], maxsplit=1)[0] for d in dropped if "input" not in d)
    return ", ".join(f"{k} ({c}x)" for k, c in kinds.most_common(n)) or "no records"


def import_programs(path: Path, *, seed: int, n_inputs: int, timeout_s: float = 5.0,
                    progress: bool = True) -> tuple[list[Program], list[Example], dict]:
    """The import in memory: the surviving programs, their examples, and the manifest (its content hash empty)."""
    dropped: list[dict] = []
    records = _read(path, seed, dropped)
    n_lines = len(records) + len(dropped)
    survivors = _validate(records, n_inputs, dropped, timeout_s, progress)
    programs: list[Program] = []
    examples: list[Example] = []
    for k, rec in enumerate(survivors):
        pid = f"corpus-{k:04d}"
        programs.append(Program(
            id=pid, suite="corpus", family=family_of(rec.args), name=rec.name, source=rec.code,
            description=describe(rec.name, rec.code, rec.args, rec.output),
            meta={"original_id": rec.original_id, "line": rec.line, "n_lines": len(rec.code.strip().splitlines()) - 1,
                  "arg_kinds": [value_kind(a) for a in rec.args]},
        ))
        for split in ("train", "test", "shifted"):
            for text in rec.inputs[split]:
                out, trace = rec.results[text]
                examples.append(Example(pid, split, text, out, trace))
    dropped_records = sum(1 for d in dropped if "input" not in d)
    counts = {"records": n_lines, "programs": len(programs), "examples": len(examples),
              "dropped_records": dropped_records, "dropped_inputs": len(dropped) - dropped_records,
              "survival_rate": round(len(programs) / n_lines, 4) if n_lines else 0.0}
    manifest = {"seed": seed, "suite": "corpus", "options": {"path": str(path), "n_inputs": n_inputs},
                "counts": counts, "dropped": stable_reasons(dropped), "content_hash": ""}
    return programs, examples, manifest
