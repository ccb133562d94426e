"""Stage rendering: the selected programs and their examples -> one dataset per curriculum stage.

The second part of the data build (`pbb.data.build`). Each `SourceSpec` of a stage
renders to `StageRecord`s: declarative documents (code or NL, in pointer templates),
execution examples (direct or CoT, for SFT with a completion, for GRPO with only the
expected output), or a replay of earlier execution examples. A stage's records are
repeated as asked, then interleaved by a seeded shuffle. The leak check then reads the
rendered records: no control program and no held-out input may reach a training file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbb import prompts
from pbb.curricula import SourceSpec, StageSpec
from pbb.data.documents import document_records
from pbb.seeds import derive_rng
from pbb.errors import PbbError
from pbb.records import Example, Program, StageRecord
from pbb.schema import HELD_OUT, TRAINED_GROUPS

if TYPE_CHECKING:
    from pbb.config import Experiment

_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass
class Index:
    """The selected programs of a build, by group, with their examples per distribution."""

    programs: dict[str, Program]
    examples: dict[tuple[str, str], list[Example]]  # (program id, distribution) -> examples
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


def _exec_examples(exp: Experiment, idx: Index, mode: str, group: str, distribution: str, cap: int | None) -> list[tuple[Program, Example]]:
    """The (program, example) pairs of a direct or cot source: all inputs (direct) or the first cot_inputs (cot)."""
    out = []
    for pid in idx.ids(group):
        exs = idx.examples.get((pid, distribution), [])
        if mode == "cot":
            exs = exs[: exp.data.cot_inputs]
        if cap is not None:
            exs = exs[:cap]
        out.extend((idx.programs[pid], e) for e in exs)
    return out


def example_record(mode: str, program: Program, ex: Example, *, with_completion: bool = True) -> StageRecord:
    """An execution example: the prompt of `mode`, and (for SFT) the completion that answers it."""
    prompt = prompts.prompt_for(mode, program.name, ex.input)
    completion = prompts.completion_for(mode, ex.output, source=program.source, trace=ex.trace) if with_completion else None
    return StageRecord(program_id=program.id, kind="example", prompt=prompt, completion=completion, mode=mode, expected=ex.output)


def _draw(pool: list[StageRecord], count: int | None, rng: Any) -> list[StageRecord]:
    """`count` records from `pool` with the seed: without replacement, whole copies first when count > len(pool)."""
    if count is None:
        return list(pool)
    if not pool:
        return []
    whole, rest = divmod(count, len(pool))
    return list(pool) * whole + rng.sample(pool, rest)


def read_replay_file(path: str) -> list[StageRecord]:
    """A user's replay JSONL: one `{"prompt": str, "completion": str}` object per line (`program_id` optional)."""
    p = Path(path)
    if not p.is_file():
        raise PbbError(f"replay file {path}: no such file; fix the `path:` of the replay source or remove it")
    out = []
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise PbbError(f"replay file {path}: not UTF-8 text; it must be JSONL of prompt/completion objects") from None
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
        out.append(StageRecord(program_id=pid if isinstance(pid, str) else None, kind="example", prompt=rec["prompt"],
                               completion=rec["completion"], replay=True))
    if not out:
        raise PbbError(f"replay file {path}: holds no records; add prompt/completion lines or remove the `path:`")
    return out


def _render_source(exp: Experiment, stage: StageSpec, si: int, src: SourceSpec, idx: Index) -> list[StageRecord]:
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
            for mode, wanted in (("direct", o.direct), ("cot", o.cot and exp.data.cot_inputs > 0)):
                if wanted:
                    pool += [example_record(mode, p, e) for p, e in _exec_examples(exp, idx, mode, src.group, "train", None)]
            for r in pool:
                r.replay = True
        return _draw(pool, src.count, rng)
    pairs = _exec_examples(exp, idx, src.kind, src.group, src.distribution, src.max_per_program)
    return [example_record(src.kind, p, e, with_completion=stage.method != "grpo") for p, e in pairs]


def render_stage(exp: Experiment, stage: StageSpec, idx: Index) -> list[StageRecord]:
    """One stage's dataset: every source rendered, repeated, then interleaved by a seeded shuffle."""
    records: list[StageRecord] = []
    for si, src in enumerate(stage.sources):
        records.extend(_render_source(exp, stage, si, src, idx) * src.repeat)
    if not records:  # a trainer would fail later, and less clearly
        kinds = ", ".join(f"{src.kind}/{src.group}" for src in stage.sources)
        raise PbbError(f"stage {stage.name!r} renders no records from its sources ({kinds}); check data.train_inputs, "
                       f"data.cot_inputs and the sources' max_per_program / count")
    derive_rng(exp.seed, "stage", stage.name).shuffle(records)
    return records


def check_no_leak(stages: dict[str, list[StageRecord]], idx: Index) -> None:
    """The two promises of the design, checked on the rendered records: no control program, no held-out input."""
    control = set(idx.by_group.get("control", []))
    held_out: set[str] = set()
    for (pid, dist), exs in idx.examples.items():
        if dist in HELD_OUT:
            p = idx.programs[pid]
            for e in exs:
                held_out.update((prompts.direct_prompt(p.name, e.input), prompts.cot_prompt(p.name, e.input)))
    for name, records in stages.items():
        for r in records:
            if r.program_id in control:
                raise AssertionError(f"stage {name!r} holds a record of control program {r.program_id!r}")
            if r.prompt in held_out:
                raise AssertionError(f"stage {name!r} trains on a held-out input: {r.prompt!r}")


def check_stage_names(stages: list[StageSpec]) -> None:
    seen: set[str] = set()
    for s in stages:
        if not _STAGE_NAME.match(s.name):
            raise PbbError(f"stages: stage name {s.name!r} must be letters, digits, '_', '-', '.' or '+' (it names a file and a folder)")
        if s.name in seen:
            raise PbbError(f"stages: two stages are named {s.name!r}; give each stage its own name")
        seen.add(s.name)
