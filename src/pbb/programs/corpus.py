"""The `corpus` suite: real Python functions imported from JSONL (CRUXEval's format).

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

The registered suite `corpus` runs (or reads) the same import and serves its validated
input pools per split, so the data builder treats corpus functions like any other suite.

The natural-language descriptions are approximations: no one can write a faithful
description of arbitrary code automatically, so an NL doc here is an honest *structural*
summary ("takes a list `nums` and a string `sep`; loops over `nums`; calls .append,
.join; returns a string"), not a specification. Experiments whose claims rest on NL
docs should use the generated suites, whose descriptions are exact.
"""

from __future__ import annotations

import ast
import builtins
import json
import math
import os
import random
import string
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field

from pbb.data.normalise import normalise_output
from pbb.errors import PbbError, stable_reasons
from pbb.io import ensure_writable_dir, read_jsonl, sha256_files, write_json, write_jsonl
from pbb.programs.base import Example, Program, ProgramSpec, Suite, SuiteOptions, register_suite
from pbb.programs.names import invented_name

DEFAULT_PATH = "../shared/data/cruxeval/cruxeval-dev.jsonl"
"""Where the shared 400 CRUXEval functions lie, relative to the repository root (or the cwd)."""

REQUIRED_FIELDS = ("code", "input", "output")
MAX_INPUT_CHARS = 10_000  # longer argument text is not worth parsing (and could be a parser bomb)
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


def _param_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = fn.args
    return [x.arg for x in (*a.posonlyargs, *a.args)] + ([a.vararg.arg] if a.vararg else [])


def _target(tree: ast.Module, wanted: str = "f") -> ast.FunctionDef | None:
    """The corpus function: the top-level `def f`, else the last top-level def."""
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    for d in defs:
        if d.name == wanted:
            return d
    return defs[-1] if defs else None


class _Renamer(ast.NodeTransformer):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id == self.old:
            node.id = self.new
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        if node.arg == self.old:
            node.arg = self.new
        return node

    def _def(self, node):
        if node.name == self.old:
            node.name = self.new
        self.generic_visit(node)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _def

    def visit_Global(self, node: ast.Global) -> ast.Global:
        node.names = [self.new if n == self.old else n for n in node.names]
        return node

    visit_Nonlocal = visit_Global


def rename_function(code: str, old: str, new: str) -> str:
    """`code` with every binding and use of the name `old` renamed to `new` (recursion included).

    Renames in place, keeping the author's formatting, and checks the result against an
    AST-level rename; where they differ (rare constructs) the AST is unparsed instead.
    """
    tree = ast.parse(code)
    expected = ast.dump(_Renamer(old, new).visit(ast.parse(code)))
    spans: list[tuple[int, int, int]] = []  # (line, byte start, byte end)
    lines = code.splitlines(keepends=True)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == old:
            spans.append((node.lineno, node.col_offset, node.end_col_offset))
        elif isinstance(node, ast.arg) and node.arg == old:
            spans.append((node.lineno, node.col_offset, node.col_offset + len(old.encode())))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == old:
            text = lines[node.lineno - 1].encode()
            kw = b"class" if isinstance(node, ast.ClassDef) else b"def"
            at = text.find(kw, node.col_offset)
            start = text.find(old.encode(), at + len(kw)) if at >= 0 else -1
            if start >= 0:
                spans.append((node.lineno, start, start + len(old.encode())))
    edited = [ln.encode() for ln in lines]
    for lineno, start, end in sorted(spans, reverse=True):
        b = edited[lineno - 1]
        if b[start:end] == old.encode():
            edited[lineno - 1] = b[:start] + new.encode() + b[end:]
    out = b"".join(edited).decode()
    try:
        if ast.dump(ast.parse(out)) == expected:
            return out
    except SyntaxError:
        pass
    return ast.unparse(_Renamer(old, new).visit(ast.parse(code))) + "\n"


def _names_in(code: str) -> set[str]:
    tree = ast.parse(code)
    found = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    found |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    found |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return found


def _fresh_name(rng: random.Random, taken: set[str]) -> str:
    import keyword

    while True:
        name = invented_name(rng)
        if name not in taken and not keyword.iskeyword(name) and not hasattr(builtins, name):
            taken.add(name)
            return name


def _parse_args(text: str) -> tuple:
    """CRUXEval argument text as a tuple of values: literals only, never evaluated."""
    if len(text) > MAX_INPUT_CHARS:
        raise ValueError(f"input has {len(text)} characters (limit {MAX_INPUT_CHARS})")
    if not text.strip():
        return ()
    return ast.literal_eval(f"({text},)")


def read_literal(text: str) -> tuple[bool, Any]:
    """(True, value) for a Python literal, else (False, None): the text is untrusted, and the
    parser's limits raise SyntaxError, RecursionError, MemoryError or ValueError."""
    try:
        return True, ast.literal_eval(text)
    except Exception:
        return False, None


def _normalised(tree: ast.Module, name: str) -> str:
    """The function's source up to formatting, comments and its own name: what makes two records one function."""
    return ast.dump(_Renamer(name, "_pbb_function").visit(tree))


def literal(value: Any) -> str:
    """`repr`, except that sets list their elements sorted: the text must not depend on the hash seed."""
    if type(value) is set:
        return "{" + ", ".join(sorted(literal(v) for v in value)) + "}" if value else "set()"
    if type(value) is list:
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if type(value) is tuple:
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if type(value) is dict:
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def render_args(args: tuple) -> str:
    """The canonical argument text of values: `'abc', [1, 2]`."""
    return ", ".join(literal(a) for a in args)


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
    key = _normalised(tree, old)
    if key in seen:
        first_line, first_id = seen[key]
        return None, f"duplicate of line {first_line} ({first_id}): the same function"
    try:
        args = _parse_args(d["input"])
    except Exception as e:
        return None, f"input is not a Python literal (inputs are parsed, never evaluated): {type(e).__name__}: {e}"[:200]
    ok, _ = read_literal(d["output"])
    if not ok:
        return None, "recorded output is not a Python literal"
    name = _fresh_name(name_rng, taken | _names_in(d["code"]))
    code = rename_function(d["code"], old, name)
    if not code.endswith("\n"):
        code += "\n"
    seen[key] = (lineno, rid)
    return _Record(lineno, rid, code, name, args, d["output"].strip(), random.Random(f"corpus:{seed}:{lineno}")), ""


# ---------------------------------------------------------------- mutation


def _mutate_char(c: str, rng: random.Random, palette: str) -> str:
    if c.isdigit():
        return rng.choice(string.digits)
    if c.islower():
        return rng.choice(string.ascii_lowercase)
    if c.isupper():
        return rng.choice(string.ascii_uppercase)
    return rng.choice(palette)


def _mutate_str(s: str, rng: random.Random, grow: bool) -> str:
    if not s:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 4 if not grow else 12)))
    palette = s  # new characters come mostly from the string's own alphabet
    chars = list(s)
    if grow:
        extra = [_mutate_char(rng.choice(s), rng, palette) for _ in range(rng.randint(len(s), 2 * len(s) + 3))]
        for c in extra:
            chars.insert(rng.randint(0, len(chars)), c)
        return "".join(chars)
    for _ in range(rng.randint(1, max(1, min(3, len(s))))):
        op = rng.random() if len(chars) > 1 else 0.0
        if op < 0.6 or not chars:  # replace (the only edit of a one-character string: keeps its length)
            if chars:
                i = rng.randrange(len(chars))
                chars[i] = _mutate_char(chars[i], rng, palette)
        elif op < 0.8:
            chars.insert(rng.randint(0, len(chars)), _mutate_char(rng.choice(s), rng, palette))
        else:
            del chars[rng.randrange(len(chars))]
    return "".join(chars)


def _mutate_int(v: int, rng: random.Random, grow: bool) -> int:
    if grow:
        return v * rng.randint(3, 12) + rng.choice((-1, 1)) * rng.randint(10, 99)
    span = max(5, abs(v))
    return v + rng.choice((-1, 1)) * rng.randint(1, span) if rng.random() < 0.7 else rng.randint(-span, 2 * span)


def mutate(value: Any, rng: random.Random, grow: bool = False, depth: int = 0) -> Any:
    """A value of the same type and similar size (`grow`: larger, longer) as `value`."""
    if isinstance(value, bool):
        return rng.random() < 0.5
    if isinstance(value, int):
        return _mutate_int(value, rng, grow)
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        scale = max(1.0, abs(value)) * (5 if grow else 0.5)
        return round(value + rng.uniform(-scale, scale), 2)
    if isinstance(value, str):
        return _mutate_str(value, rng, grow)
    if isinstance(value, bytes):
        return _mutate_str(value.decode("latin-1"), rng, grow).encode("latin-1")
    if depth > 6:
        return value
    if isinstance(value, tuple):  # often a fixed structure: keep the length, change the parts
        return tuple(mutate(v, rng, grow, depth + 1) if rng.random() < 0.6 else v for v in value)
    if isinstance(value, list) and not value:
        # No element to imitate: guess small ints or short words; a wrong guess just fails to run.
        if rng.random() < 0.3:
            return []
        make = (lambda: rng.randint(-9, 20)) if rng.random() < 0.6 else (lambda: _mutate_str("", rng, False))
        return [make() for _ in range(rng.randint(1, 8 if grow else 4))]
    if isinstance(value, list):
        items = [mutate(v, rng, False, depth + 1) if rng.random() < 0.5 else v for v in value]
        if value and grow:
            items += [mutate(rng.choice(value), rng, False, depth + 1) for _ in range(rng.randint(len(value), 2 * len(value) + 2))]
        elif value and rng.random() < 0.5:
            if rng.random() < 0.5 or len(items) < 2:
                items.insert(rng.randint(0, len(items)), mutate(rng.choice(value), rng, False, depth + 1))
            else:
                del items[rng.randrange(len(items))]
        return items
    if isinstance(value, (set, frozenset)):
        out = {mutate(v, rng, False, depth + 1) if rng.random() < 0.5 else v for v in sorted(value, key=repr)}
        if value and grow:
            out |= {mutate(v, rng, True, depth + 1) for v in sorted(value, key=repr)}
        return type(value)(out)
    if isinstance(value, dict):
        keys = list(value)
        out: dict = {}
        for k in keys:
            nk = mutate(k, rng, False, depth + 1) if rng.random() < 0.25 else k
            out[nk] = mutate(value[k], rng, False, depth + 1) if rng.random() < 0.5 else value[k]
        if keys and (grow or rng.random() < 0.3):
            for _ in range(rng.randint(len(keys), 2 * len(keys) + 2) if grow else 1):
                k = rng.choice(keys)
                out[mutate(k, rng, grow, depth + 1)] = mutate(value[k], rng, False, depth + 1)
        elif len(keys) > 1 and rng.random() < 0.3:
            del out[rng.choice(list(out))]
        return out
    return value  # None and anything else: kept


def _mutate_args(args: tuple, rng: random.Random, grow: bool) -> tuple:
    """Mutate some arguments (at least one) of an argument tuple."""
    if not args:
        return args
    which = [i for i in range(len(args)) if rng.random() < 0.6] or [rng.randrange(len(args))]
    return tuple(mutate(a, rng, grow) if i in which else a for i, a in enumerate(args))


def _literal_text(args: tuple) -> str | None:
    """The argument text, or None when a mutation made something that is not a literal."""
    try:
        text = render_args(args)
        _parse_args(text)
        return text
    except Exception:
        return None


# ---------------------------------------------------------------- the import


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
                (ok_got, got), (_, recorded) = read_literal(r1.output), read_literal(rec.output)
                if not ok_got:
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
                        text = _literal_text(_mutate_args(rec.args, rec.rng, grow))
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
                if why is None and not read_literal(r1.output)[0]:
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


# ---------------------------------------------------------------- descriptions and families


def _kind(value: Any) -> str:
    for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (list, "list"),
                    (tuple, "tuple"), (dict, "dict"), ((set, frozenset), "set"), (bytes, "bytes")):
        if isinstance(value, t):
            return name
    return "none" if value is None else "other"


_ARTICLE = {"int": "an integer", "bool": "a boolean", "float": "a float", "str": "a string", "list": "a list",
            "tuple": "a tuple", "dict": "a dictionary", "set": "a set", "bytes": "a bytes value", "none": "None",
            "other": "a value"}


def family_of(args: tuple) -> str:
    """A coarse kind: the type of the first argument (int for booleans and floats), or `none`."""
    if not args:
        return "none"
    k = _kind(args[0])
    return {"bool": "int", "float": "int"}.get(k, k)


def describe(name: str, code: str, args: tuple, output: str) -> str:
    """An honest structural summary of a function (an approximation, not a specification)."""
    try:
        return _describe(name, code, args, output)
    except Exception:  # code at a parser or recursion limit: say less rather than fail the import
        return f"`{name}` is a Python function. (A structural summary of real code, not a full specification.)"


def _describe(name: str, code: str, args: tuple, output: str) -> str:
    tree = ast.parse(code)
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if fn is None:
        return f"`{name}` is a Python function."
    params = _param_names(fn)
    typed = [f"{_ARTICLE[_kind(v)]} `{p}`" for p, v in zip(params, args)]
    parts = [f"`{name}({', '.join(params)})` takes " + (", ".join(typed) if typed else "no arguments")]
    loops = []
    for node in ast.walk(fn):
        if isinstance(node, ast.For):
            it = ast.unparse(node.iter)
            loops.append(f"over `{it}`" if len(it) <= 30 else "over a sequence")
        elif isinstance(node, ast.While):
            loops.append("while a condition holds")
    if loops:
        parts.append("loops " + ", ".join(dict.fromkeys(loops)))
    if any(isinstance(n, ast.If) for n in ast.walk(fn)):
        parts.append("branches on conditions")
    if any(isinstance(n, (ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp)) for n in ast.walk(fn)):
        parts.append("uses comprehensions")
    if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name for n in ast.walk(fn)):
        parts.append("calls itself recursively")
    methods = Counter(n.func.attr for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute))
    if methods:
        parts.append("calls " + ", ".join(f".{m}" for m in sorted(methods)[:8]))
    builtins_used = sorted({n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                            and n.func.id != name and hasattr(builtins, n.func.id)})
    if builtins_used:
        parts.append("uses the builtins " + ", ".join(builtins_used[:8]))
    try:
        parts.append(f"returns {_ARTICLE[_kind(ast.literal_eval(output))]}")
    except Exception:
        pass
    return "; ".join(parts) + ". (A structural summary of real code, not a full specification.)"


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
    programs, examples, manifest = _import(path, seed, n_inputs, timeout_s, progress)
    if not programs:
        raise PbbError(f"{path}: no function of its {manifest['counts']['records']} records survived the import "
                       f"({_top_reasons(manifest['dropped'])}); nothing was written to {out}")
    write_jsonl(out / "programs.jsonl", [p.to_json() for p in programs])
    write_jsonl(out / "examples.jsonl", [e.to_json() for e in examples])
    manifest["content_hash"] = sha256_files(DataStore(out).content_paths([], ledger=False))
    write_json(out / "manifest.json", manifest)
    c = manifest["counts"]
    summary = (f"imported {c['programs']} of {c['records']} functions ({c['survival_rate']:.1%}) with "
               f"{c['examples']} examples into {out}; dropped {c['dropped_records']} records "
               f"and {c['dropped_inputs']} inputs (reasons in manifest.json)")
    return {**manifest, "summary_line": summary}


def _top_reasons(dropped: list[dict], n: int = 3) -> str:
    """The most common drop reasons, for a one-line error: 'not JSON (2x), ...'."""
    import re

    # one reason per record, without its details (columns, values): 'not JSON (... at column 2)' -> 'not JSON'
    kinds = Counter(re.split(r" \(|: ", d["reason"], maxsplit=1)[0] for d in dropped if "input" not in d)
    return ", ".join(f"{k} ({c}x)" for k, c in kinds.most_common(n)) or "no records"


def _import(path: Path, seed: int, n_inputs: int, timeout_s: float, progress: bool) -> tuple[list[Program], list[Example], dict]:
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
                  "arg_kinds": [_kind(a) for a in rec.args]},
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


# ---------------------------------------------------------------- the suite


class CorpusOptions(SuiteOptions):
    """Options of the `corpus` suite (the `suite_options:` block)."""

    path: str | None = Field(None, description="CRUXEval-format JSONL, or a directory written by `pbb import-corpus`; "
                                               f"default {DEFAULT_PATH} (from the repository root or the current directory).")
    n_inputs: int = Field(8, ge=1, description="Distinct validated inputs per function (train + test + shifted).")
    seed: int = Field(0, description="Seed of the input mutations (the import is cached per file, seed and n_inputs).")


def resolve_path(path: str | None) -> Path:
    """The corpus file or import directory: as given, else the shared CRUXEval file; PbbError if missing."""
    repo_root = Path(__file__).resolve().parents[3]
    raw = path or DEFAULT_PATH
    candidates = [Path(raw)] if Path(raw).is_absolute() else [Path.cwd() / raw, repo_root / raw]
    for c in candidates:
        if c.exists():
            return c.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise PbbError(f"suite_options.path: corpus {raw!r} not found (looked at {tried}); set suite_options.path "
                   "to a CRUXEval-format JSONL file or a `pbb import-corpus` output directory.")


@lru_cache(maxsize=4)
def _load(path: str, mtime: float, seed: int, n_inputs: int) -> tuple[tuple[Program, ...], tuple[Example, ...]]:
    p = Path(path)
    if p.is_dir():
        if not (p / "programs.jsonl").is_file() or not (p / "examples.jsonl").is_file():
            raise PbbError(f"suite_options.path: {path} is a directory without programs.jsonl and examples.jsonl; "
                           "point it at a `pbb import-corpus` output or a JSONL file.")
        from pbb.store import DataStore

        problem = DataStore(p).verify()
        if problem is not None:
            raise PbbError(f"suite_options.path: {problem}; run `pbb import-corpus` into {path} again.")
        programs = tuple(Program.from_json(d) for d in read_jsonl(p / "programs.jsonl"))
        examples = tuple(Example.from_json(d) for d in read_jsonl(p / "examples.jsonl"))
        return programs, examples
    programs, examples, _ = _import(p, seed, n_inputs, 5.0, True)
    return tuple(programs), tuple(examples)


def _pool_sampler(pools: dict[str, list[str]]):
    def sample(rng: random.Random, split: str) -> str:
        pool = pools.get(split) or pools["train"]  # no natural split in a corpus: its train pool stands in
        return rng.choice(pool)

    return sample


@register_suite
class CorpusSuite(Suite):
    """Real Python functions (CRUXEval format), validated in the sandbox; inputs from the import's pools."""

    name = "corpus"
    summary = "real Python functions from CRUXEval-format JSONL; new inputs by type-aware mutation, checked in the sandbox"
    Options = CorpusOptions
    untrusted = True

    def generate(self, options: SuiteOptions, rng: random.Random, n: int) -> list[ProgramSpec]:
        """Up to `n` validated corpus functions, drawn with `rng`, renamed with fresh invented names."""
        assert isinstance(options, CorpusOptions)
        path = resolve_path(options.path)
        programs, examples = _load(str(path), path.stat().st_mtime, options.seed, options.n_inputs)
        pools: dict[str, dict[str, list[str]]] = {}
        for ex in examples:
            pools.setdefault(ex.program_id, {}).setdefault(ex.distribution, []).append(ex.input)
        chosen = [p for p in programs if pools.get(p.id, {}).get("train")]
        rng.shuffle(chosen)
        taken: set[str] = set()
        specs = []
        for p in chosen[:n]:
            name = _fresh_name(rng, taken | _names_in(p.source))
            source = rename_function(p.source, p.name, name)
            program = Program(id=p.id, suite=self.name, family=p.family, name=name, source=source,
                              description=p.description.replace(f"`{p.name}(", f"`{name}("), grading="value",
                              meta=dict(p.meta))
            specs.append(ProgramSpec(program, _pool_sampler(pools[p.id])))
        specs.sort(key=lambda s: s.program.id)
        return specs
