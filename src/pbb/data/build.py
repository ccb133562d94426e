"""The data build: config -> programs, groups, inputs, sandboxed ground truth, documents, stage datasets.

`build_data(exp, out_dir)` writes exactly the files of docs/ARCHITECTURE.md:

    programs.jsonl   examples.jsonl   stages/<stage>.jsonl   manifest.json

The build is a pure function of the config: every random draw comes from a stream
derived from `exp.seed` and a purpose (see `pbb.data.seeds`), the ground truth is what
the sandbox returns, and the same config gives byte-identical files. The computation
(`compute_build`) is separate from the writing (`write_build`), so tests and tools can
inspect a build without touching the disk.

Order of work, and why:
1. generate `n_with_io + n_without_io + n_control` programs plus a few *spares*
   (10%, at least 2): a program whose executions fail is replaced by the next spare;
2. sample every program's inputs (train, natural, test, shifted; held-out splits
   disjoint from training ones) and run them all in the sandbox;
3. keep the first usable programs in generation order and split *those* into groups,
   so a drop never leaves a group short and the groups stay a seeded random split;
4. compose programs from the trained groups (w/ IO, w/o IO), run them too;
5. render each stage's records and check that nothing of the control group and no
   held-out input reaches a training file.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pbb import prompts
from pbb.config import Experiment, SourceSpec, StageSpec
from pbb.data.composition import ComposedSpec, composed_candidates, executable_source, is_composable
from pbb.data.documents import document_records
from pbb.data.seeds import derive_rng
from pbb.data.splits import HELD_OUT, sample_inputs, split_groups
from pbb.data.traces import cap_lines, render_trace
from pbb.errors import PbbError
from pbb.io import atomic_open, dumps, read_jsonl, sha256_bytes, sha256_files, sha256_obj, write_json
from pbb.programs import GROUPS, Example, Program, ProgramSpec, get_suite

if TYPE_CHECKING:
    from pbb.sandbox import Sandbox

FORMAT_VERSION = 1
"""Bumped when the build's output changes for the same config (part of `config_hash`)."""

SPARE_FRACTION = 0.1
MIN_SPARES = 2
CHUNK = 128
"""Executions per call of a runner without `on_result`: small enough for a moving progress bar."""

TRAINED_GROUPS = ("with_io", "without_io")
"""`group: all` in a stage means every group a model may be trained on: never the control group."""

_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class _Runner(Protocol):
    def run_many(self, jobs: list[tuple[str, str, str]], trace: bool = ...) -> list[Any]: ...


@dataclass
class Build:
    """Everything a build writes, in memory."""

    programs: list[Program]
    examples: list[Example]
    stages: dict[str, list[dict]]
    manifest: dict[str, Any]
    specs: dict[str, ProgramSpec] = field(default_factory=dict, repr=False)


# ---------------------------------------------------------------- progress


class _Progress:
    """A rich progress bar with an ETA, or nothing (tests, `progress=False`)."""

    def __init__(self, enabled: bool) -> None:
        self._p = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                               TextColumn("eta"), TimeRemainingColumn(), console=Console(stderr=True), transient=False)

    def __enter__(self) -> _Progress:
        if self._p is not None:
            self._p.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)

    def task(self, description: str, total: int) -> Any:
        return self._p.add_task(description, total=total) if self._p is not None else None

    def advance(self, task: Any, n: int) -> None:
        if self._p is not None and task is not None:
            self._p.advance(task, n)


# ---------------------------------------------------------------- ground truth


@dataclass
class _Executed:
    """One program with its inputs run: examples per split, and what was dropped."""

    spec: ProgramSpec
    examples: dict[str, list[Example]]
    dropped: list[dict]
    shortfall: dict[str, int]
    problem: str | None = None  # why the program is unusable, or None


def _wanted(exp: Experiment) -> dict[str, int]:
    d = exp.data
    return {"train": d.train_inputs, "natural": d.natural_inputs, "test": d.test_inputs, "shifted": d.shifted_inputs}


def _reason(result: Any) -> str:
    kind = getattr(result, "error_kind", None) or "error"
    msg = (getattr(result, "error", None) or "").strip().splitlines()
    text = f"{kind}: {msg[-1]}" if msg else str(kind)
    return text[:200]


def _execute(specs: list[ProgramSpec], exp: Experiment, sandbox: _Runner, bar: _Progress, label: str) -> list[_Executed]:
    """Sample inputs for each program and compute the ground truth of every one in the sandbox."""
    wanted = _wanted(exp)
    plans: list[tuple[ProgramSpec, dict[str, list[str]], dict[str, int], str | None]] = []
    jobs: list[tuple[str, str, str]] = []
    where: list[tuple[int, str, str]] = []  # (program index, split, input) of each job
    for i, spec in enumerate(specs):
        p = spec.program
        try:
            inputs, short = sample_inputs(spec.sample_input, derive_rng(exp.seed, "inputs", p.id), wanted)
        except Exception as e:  # a broken sampler fails its program, never the build
            plans.append((spec, {}, {}, f"input sampler failed: {type(e).__name__}: {e}"[:200]))
            continue
        plans.append((spec, inputs, short, None))
        source = executable_source(p)
        for split in ("train", "natural", "test", "shifted"):
            for text in inputs.get(split, []):
                jobs.append((source, p.name, text))
                where.append((i, split, text))
                if isinstance(spec, ComposedSpec):  # the intermediate value, for the trace
                    jobs.append((spec.inner.program.source, spec.inner.program.name, text))
                    where.append((i, "middle", text))

    task = bar.task(label, len(jobs))
    if "on_result" in inspect.signature(sandbox.run_many).parameters:
        # one call keeps every worker busy to the end; the callback moves the bar per result
        results = list(sandbox.run_many(jobs, trace=True, on_result=lambda i, r: bar.advance(task, 1)))
    else:  # a minimal runner: chunks, so the bar still moves
        results = []
        for start in range(0, len(jobs), CHUNK):
            chunk = jobs[start : start + CHUNK]
            results.extend(sandbox.run_many(chunk, trace=True))
            bar.advance(task, len(chunk))

    out = [_Executed(spec, {}, [], short, problem) for spec, _, short, problem in plans]
    middle: dict[tuple[int, str], str] = {}
    for (i, split, text), r in zip(where, results, strict=True):
        if split == "middle" and getattr(r, "ok", False):
            middle[(i, text)] = r.output
    for (i, split, text), r in zip(where, results, strict=True):
        ex = out[i]
        pid = ex.spec.program.id
        if split == "middle":
            continue
        if not getattr(r, "ok", False) or getattr(r, "output", None) is None:
            ex.dropped.append({"id": pid, "split": split, "input": text, "reason": _reason(r)})
            continue
        if isinstance(ex.spec, ComposedSpec) and (i, text) in middle:
            steps = ex.spec.render_composed(text, r.trace or [], middle[(i, text)], r.output)
            trace = cap_lines(steps, exp.data.max_trace_lines)
        else:
            trace = render_trace(ex.spec, text, r.trace, r.output, exp.data.max_trace_lines)
        ex.examples.setdefault(split, []).append(Example(pid, split, text, r.output, trace))
    for ex in out:
        if ex.problem is None:
            ex.problem = _unusable(ex, wanted)
    return out


def _unusable(ex: _Executed, wanted: dict[str, int]) -> str | None:
    """Why a program cannot serve in any group, or None: it needs test inputs, and the training ones asked for."""
    for split in ("test", "train", "natural"):
        if wanted[split] > 0 and not ex.examples.get(split):
            if ex.shortfall.get(split) == wanted[split]:
                return f"no {split} input could be sampled (input space too small{' once training inputs are excluded' if split == 'test' else ''})"
            failed = sum(1 for d in ex.dropped if d["split"] == split)
            return f"no {split} input ran successfully ({failed} failed)"
    return None


# ---------------------------------------------------------------- programs and groups


def _dedupe(specs: list[ProgramSpec], dropped: list[dict]) -> list[ProgramSpec]:
    """Drop programs whose id or name repeats an earlier one (a model could not tell them apart)."""
    ids: set[str] = set()
    names: set[str] = set()
    out = []
    for s in specs:
        p = s.program
        if p.id in ids or p.name in names:
            dropped.append({"id": p.id, "reason": f"duplicate id {p.id!r}" if p.id in ids else f"duplicate name {p.name!r}"})
            continue
        ids.add(p.id)
        names.add(p.name)
        out.append(s)
    return out


def _sizes(exp: Experiment) -> dict[str, int]:
    return {"with_io": exp.data.n_with_io, "without_io": exp.data.n_without_io, "control": exp.data.n_control}


def _spares(n: int) -> int:
    return max(MIN_SPARES, math.ceil(SPARE_FRACTION * n))


def _select(executed: list[_Executed], n: int, dropped: list[dict], what: str, fix: str) -> list[_Executed]:
    """The first `n` usable programs in generation order; the unusable ones go to `dropped`."""
    usable = []
    for ex in executed:
        if len(usable) == n:
            break  # unused spares are not part of the build, nor of its report
        dropped.extend(ex.dropped)
        if ex.problem is not None:
            dropped.append({"id": ex.spec.program.id, "reason": ex.problem})
        else:
            usable.append(ex)
    if len(usable) < n:
        reasons = Counter(ex.problem for ex in executed if ex.problem is not None)
        common = f" (most often: {reasons.most_common(1)[0][0]})" if reasons else ""
        raise PbbError(f"only {len(usable)} of {len(executed)} generated {what} were usable{common} but {n} are needed; {fix}")
    return usable[:n]


# ---------------------------------------------------------------- stage rendering


@dataclass
class _Index:
    """The selected programs of a build, by group, with their examples per split."""

    programs: dict[str, Program]
    examples: dict[tuple[str, str], list[Example]]  # (program id, split) -> examples
    by_group: dict[str, list[str]]

    def ids(self, group: str) -> list[str]:
        return [pid for g in _groups_of(group) for pid in self.by_group.get(g, [])]


def _groups_of(group: str) -> tuple[str, ...]:
    if group == "all":
        return TRAINED_GROUPS
    if group == "control":
        raise PbbError(
            "a stage source has group 'control', but control programs are never trained on (they are the chance "
            "baseline); use group with_io, without_io or all"
        )
    return (group,)


def _exec_examples(exp: Experiment, idx: _Index, kind: str, group: str, split: str, cap: int | None) -> list[tuple[Program, Example]]:
    """The (program, example) pairs of a direct or cot source: all inputs (direct) or the first cot_inputs (cot)."""
    out = []
    for pid in idx.ids(group):
        exs = idx.examples.get((pid, split), [])
        if kind == "cot":
            exs = exs[: exp.data.cot_inputs]
        if cap is not None:
            exs = exs[:cap]
        out.extend((idx.programs[pid], e) for e in exs)
    return out


def _sft_record(kind: str, program: Program, ex: Example) -> dict:
    if kind == "direct":
        prompt, completion = prompts.direct_prompt(program.name, ex.input), prompts.direct_completion(ex.output)
    else:
        prompt, completion = prompts.cot_prompt(program.name, ex.input), prompts.cot_completion(program.source, ex.trace, ex.output)
    return {"prompt": prompt, "completion": completion, "kind": kind, "program_id": program.id}


def _draw(pool: list[dict], count: int | None, rng: Any) -> list[dict]:
    """`count` records from `pool` with the seed: without replacement, whole copies first when count > len(pool)."""
    if count is None:
        return list(pool)
    if not pool:
        return []
    whole, rest = divmod(count, len(pool))
    return list(pool) * whole + rng.sample(pool, rest)


def read_replay_file(path: str) -> list[dict]:
    """A user's replay JSONL: one `{"prompt": str, "completion": str}` object per line."""
    p = Path(path)
    if not p.is_file():
        raise PbbError(f"replay file {path}: no such file; fix the `path:` of the replay source or remove it")
    out = []
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise PbbError(f"replay file {path}: not UTF-8 text; it must be JSONL of prompt/completion objects") from None
    import json

    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise PbbError(f"replay file {path} line {n}: not valid JSON ({e.msg}); each line must be one JSON object") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("prompt"), str) or not isinstance(rec.get("completion"), str):
            raise PbbError(f"replay file {path} line {n}: expected an object with string fields \"prompt\" and \"completion\"")
        pid = rec.get("program_id")
        out.append({"prompt": rec["prompt"], "completion": rec["completion"], "kind": "replay",
                    "program_id": pid if isinstance(pid, str) else None})
    if not out:
        raise PbbError(f"replay file {path}: holds no records; add prompt/completion lines or remove the `path:`")
    return out


def _render_source(exp: Experiment, stage: StageSpec, si: int, src: SourceSpec, idx: _Index) -> list[dict]:
    """The records of one source of a stage (before `repeat` and the stage shuffle)."""
    if src.kind in ("doc", "code_doc", "nl_doc"):
        doc_kind = exp.data.doc_kind if src.kind == "doc" else src.kind.removesuffix("_doc")
        k = exp.data.templates_per_program if src.max_per_program is None else min(exp.data.templates_per_program, src.max_per_program)
        return [r for pid in idx.ids(src.group) for r in document_records(idx.programs[pid], doc_kind, exp.seed, k)]  # type: ignore[arg-type]
    if src.kind == "replay":
        rng = derive_rng(exp.seed, "replay", stage.name, si)
        if src.path is not None:
            pool = read_replay_file(src.path)
        else:
            o = exp.curriculum_options
            pool = []
            if o.direct:
                pool += [_sft_record("direct", p, e) for p, e in _exec_examples(exp, idx, "direct", src.group, "train", None)]
            if o.cot and exp.data.cot_inputs > 0:
                pool += [_sft_record("cot", p, e) for p, e in _exec_examples(exp, idx, "cot", src.group, "train", None)]
            pool = [{**r, "kind": "replay"} for r in pool]
        return _draw(pool, src.count, rng)
    pairs = _exec_examples(exp, idx, src.kind, src.group, src.split, src.max_per_program)
    if stage.method == "grpo":
        return [{"prompt": prompts.prompt_for(src.kind, p.name, e.input), "mode": src.kind, "expected": e.output, "program_id": p.id}
                for p, e in pairs]
    return [_sft_record(src.kind, p, e) for p, e in pairs]


def render_stage(exp: Experiment, stage: StageSpec, idx: _Index) -> list[dict]:
    """One stage's dataset: every source rendered, repeated, then interleaved by a seeded shuffle."""
    records: list[dict] = []
    for si, src in enumerate(stage.sources):
        records.extend(_render_source(exp, stage, si, src, idx) * src.repeat)
    if not records:  # a trainer would fail later, and less clearly
        kinds = ", ".join(f"{src.kind}/{src.group}" for src in stage.sources)
        raise PbbError(f"stage {stage.name!r} renders no records from its sources ({kinds}); check data.train_inputs, "
                       f"data.cot_inputs and the sources' max_per_program / count")
    derive_rng(exp.seed, "stage", stage.name).shuffle(records)
    return records


def _check_no_leak(stages: dict[str, list[dict]], idx: _Index) -> None:
    """The two promises of the design, checked on the rendered files: no control program, no held-out input."""
    control = set(idx.by_group.get("control", []))
    held_out: set[str] = set()
    for (pid, split), exs in idx.examples.items():
        if split in HELD_OUT:
            p = idx.programs[pid]
            for e in exs:
                held_out.update((prompts.direct_prompt(p.name, e.input), prompts.cot_prompt(p.name, e.input)))
    for name, records in stages.items():
        for r in records:
            if r.get("program_id") in control:
                raise AssertionError(f"stage {name!r} holds a record of control program {r['program_id']!r}")
            if r.get("prompt") in held_out:
                raise AssertionError(f"stage {name!r} trains on a held-out input: {r['prompt']!r}")


def _check_stage_names(stages: list[StageSpec]) -> None:
    seen: set[str] = set()
    for s in stages:
        if not _STAGE_NAME.match(s.name):
            raise PbbError(f"stages: stage name {s.name!r} must be letters, digits, '_', '-', '.' or '+' (it names a file and a folder)")
        if s.name in seen:
            raise PbbError(f"stages: two stages are named {s.name!r}; give each stage its own name")
        seen.add(s.name)


# ---------------------------------------------------------------- the build


def config_hash(exp: Experiment) -> str:
    """Hash of everything the build depends on (not training or evaluation settings)."""
    stages = [s.model_dump(mode="json") for s in exp.resolved_stages()]
    replay_files = {}
    for s in exp.resolved_stages():
        for src in s.sources:
            if src.kind == "replay" and src.path and Path(src.path).is_file():
                replay_files[src.path] = sha256_bytes(Path(src.path).read_bytes())
    return sha256_obj({
        "format": FORMAT_VERSION, "seed": exp.seed, "suite": exp.suite, "suite_options": exp.suite_options,
        "data": exp.data.model_dump(mode="json"), "curriculum_options": exp.curriculum_options.model_dump(mode="json"),
        "stages": [{k: s[k] for k in ("name", "method", "sources")} for s in stages], "replay_files": replay_files,
    })


def compute_build(exp: Experiment, sandbox: _Runner, *, progress: bool = False) -> Build:
    """The whole build in memory: a pure function of the config (given a correct sandbox)."""
    stage_specs = exp.resolved_stages()
    _check_stage_names(stage_specs)
    suite = get_suite(exp.suite)
    options = suite.options(exp.suite_options)
    sizes = _sizes(exp)
    n_needed = sum(sizes.values())
    n_spares = _spares(n_needed)
    dropped: list[dict] = []

    with _Progress(progress) as bar:
        specs = suite.generate(options, derive_rng(exp.seed, "programs"), n_needed + n_spares)
        specs = _dedupe(specs, dropped)
        executed = _execute(specs, exp, sandbox, bar, f"ground truth ({exp.suite})")
        chosen = _select(executed, n_needed, dropped, f"{exp.suite} programs",
                         "lower data.n_with_io / n_without_io / n_control, or change suite_options or the seed")
        groups = split_groups([ex.spec.program.id for ex in chosen], sizes, derive_rng(exp.seed, "groups"))
        for ex in chosen:
            ex.spec.program.group = groups[ex.spec.program.id]

        composed: list[_Executed] = []
        if exp.data.n_composed > 0:
            parts = [ex.spec for ex in chosen if ex.spec.program.group in TRAINED_GROUPS and is_composable(ex.spec.program)]
            taken = {ex.spec.program.name for ex in executed}
            cands = composed_candidates(parts, exp.data.n_composed, derive_rng(exp.seed, "compose"), suite=exp.suite,
                                        taken_names=taken, spares=_spares(exp.data.n_composed))
            composed = _select(_execute(cands, exp, sandbox, bar, "ground truth (composed)"), exp.data.n_composed, dropped,
                               "composed programs", "lower data.n_composed")

    final = chosen + composed
    programs = [ex.spec.program for ex in final]
    examples = [e for ex in final for split in ("train", "natural", "test", "shifted") for e in ex.examples.get(split, [])]
    by_group: dict[str, list[str]] = {g: [] for g in GROUPS}
    for p in programs:
        by_group[p.group].append(p.id)
    idx = _Index({p.id: p for p in programs}, {(ex.spec.program.id, s): v for ex in final for s, v in ex.examples.items()}, by_group)

    stages = {s.name: render_stage(exp, s, idx) for s in stage_specs}
    _check_no_leak(stages, idx)

    shortfall = [{"id": ex.spec.program.id, "split": s, "missing": m} for ex in final for s, m in sorted(ex.shortfall.items())]
    manifest = {
        "format": FORMAT_VERSION,
        "seed": exp.seed,
        "suite": exp.suite,
        "options": exp.suite_options,
        "config_hash": config_hash(exp),
        "counts": {
            "programs": {g: len(by_group[g]) for g in GROUPS} | {"composed": len(composed), "spares_generated": n_spares},
            "examples": dict(Counter(e.split for e in examples)),
            "stages": {name: len(recs) for name, recs in stages.items()},
            "stage_kinds": {name: dict(sorted(Counter(r.get("kind", r.get("mode")) for r in recs).items())) for name, recs in stages.items()},
        },
        "dropped": dropped,
        "input_shortfall": shortfall,
    }
    return Build(programs, examples, stages, manifest, {ex.spec.program.id: ex.spec for ex in final})


def write_build(build: Build, out_dir: Path) -> dict:
    """Write the files atomically; the manifest goes last, so a killed build never looks finished."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (out_dir / "manifest.json").unlink()  # the directory is "unfinished" until the new manifest lands
    for leftover in [*out_dir.glob(".*.tmp"), *out_dir.glob("stages/.*.tmp")]:  # temp files of a killed build
        leftover.unlink(missing_ok=True)
    paths = [out_dir / "programs.jsonl", out_dir / "examples.jsonl"]
    _write_lines(paths[0], (p.to_json() for p in build.programs))
    _write_lines(paths[1], (e.to_json() for e in build.examples))
    stage_dir = out_dir / "stages"
    stage_dir.mkdir(exist_ok=True)
    for name, recs in build.stages.items():
        _write_lines(stage_dir / f"{name}.jsonl", recs)
    for stale in stage_dir.glob("*.jsonl"):  # a previous build of another curriculum
        if stale.stem not in build.stages:
            stale.unlink()
    paths += [stage_dir / f"{name}.jsonl" for name in sorted(build.stages)]
    manifest = {**build.manifest, "content_hash": sha256_files(paths)}
    write_json(out_dir / "manifest.json", manifest)
    build.manifest = manifest
    return manifest


def _write_lines(path: Path, records: Iterator[dict] | list[dict]) -> None:
    with atomic_open(path) as f:
        for r in records:
            f.write(dumps(r) + "\n")


def build_data(exp: Experiment, out_dir: Path, *, progress: bool = True, sandbox: Sandbox | None = None) -> dict:
    """Build the data of an experiment into `out_dir` and return its manifest.

    Uses `sandbox` when given (its worker pool is reused for every execution), else
    opens one for the duration of the build.
    """
    with contextlib.ExitStack() as stack:
        if sandbox is None:
            from pbb.sandbox import Sandbox

            sandbox = stack.enter_context(Sandbox(workers=max(1, min(2, os.cpu_count() or 1))))
        build = compute_build(exp, sandbox, progress=progress)
    return write_build(build, Path(out_dir))


def load_stage(data_dir: Path, stage: str) -> list[dict]:
    """The records of one stage dataset of a build."""
    path = Path(data_dir) / "stages" / f"{stage}.jsonl"
    if not path.is_file():
        raise PbbError(f"{path}: no such stage dataset; run `pbb data` for this config first")
    return read_jsonl(path)
