"""Stage rendering: the selected programs and their examples -> one dataset per curriculum stage.

The second part of the data build (`pbb.data.build`). Each `SourceSpec` of a stage
renders to `StageRecord`s: declarative documents (code or NL, in pointer templates),
execution examples (direct or CoT, for SFT with a completion, for GRPO with only the
expected output), or a replay of earlier execution examples. A stage's records are
repeated as asked, then interleaved by a seeded shuffle. `check_exposure` then reads the
rendered records' text: no control program and no held-out input may reach a training
file, and w/o IO programs are trained only as the curriculum declares (under the
shuffled-code control, only as another program's code: `pbb.data.shuffled`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pbb import prompts
from pbb.curricula import CURRICULA, SourceSpec, StageSpec
from pbb.data.documents import document_records
from pbb.data.splits import input_key
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
    shown: dict[str, str] = field(default_factory=dict)  # shuffled-code control: w/o IO id -> the source its docs show

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


def example_record(mode: str, program: Program, ex: Example, *, with_completion: bool = True,
                   restate_source: bool = True) -> StageRecord:
    """An execution example: the prompt of `mode`, and (for SFT) the completion that answers it.

    A CoT completion restates the program's source before the trace unless `restate_source` is false.
    """
    prompt = prompts.prompt_for(mode, program.name, ex.input)
    source = program.source if restate_source else None
    completion = prompts.completion_for(mode, ex.output, source=source, trace=ex.trace) if with_completion else None
    return StageRecord(program_id=program.id, kind="example", prompt=prompt, completion=completion, mode=mode, expected=ex.output)


def reference_completions(stage: StageSpec, records: list[StageRecord], programs: dict[str, Program],
                          examples: dict[tuple[str, str], list[Example]]) -> list[str | None]:
    """For each record of a GRPO stage, the completion SFT would train on for its prompt (its reference), or None.

    A GRPO record carries no completion; its reference is rendered again from the build's
    program and example exactly as `example_record` renders it for an SFT stage with the
    same sources (CoT restating the source as the source asks). GRPO never trains on it:
    it sizes the rollouts (`pbb.train.grpo`), which must have room for it.
    """
    wanted = {r.program_id for r in records}
    refs: dict[tuple[str | None, str], str] = {}
    for src in stage.sources:
        if src.kind not in ("direct", "cot"):
            continue
        for pid in wanted:
            program = programs.get(pid) if pid is not None else None
            for ex in examples.get((pid, src.distribution), []) if program is not None else []:
                rec = example_record(src.kind, program, ex, restate_source=src.restate_source)
                key = (pid, rec.prompt)
                if len(rec.completion or "") > len(refs.get(key, "")):
                    refs[key] = rec.completion or ""
    return [refs.get((r.program_id, r.prompt)) for r in records]


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
        programs = [idx.programs[pid] for pid in idx.ids(src.group)]
        if src.shuffled_code:  # the same templates (they depend on the program's id), another program's code
            missing = [p.id for p in programs if p.id not in idx.shown]
            if missing:
                raise PbbError(f"stage {stage.name!r}: a shuffled code-doc source, but no shuffled source was drawn for "
                               f"{', '.join(missing)} (the build draws them for the plain w/o IO programs)")
            programs = [dataclasses.replace(p, source=idx.shown[p.id]) for p in programs]
            doc_kind = "code"
        return [r for p in programs for r in document_records(p, doc_kind, exp.seed, k)]  # type: ignore[arg-type]
    if src.kind == "replay":
        stage_name, position = src.draw_as.rpartition(":")[::2] if src.draw_as else (stage.name, si)
        rng = derive_rng(exp.seed, "replay", stage_name, position)  # str(1) == "1": draw_as reproduces that source's stream
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
    return [example_record(src.kind, p, e, with_completion=stage.method != "grpo", restate_source=src.restate_source)
            for p, e in pairs]


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


@dataclass(frozen=True)
class ExposureRules:
    """What a curriculum may train beyond the promises every build keeps (see `check_exposure`)."""

    curriculum: str
    without_io_examples: bool  # may train execution examples of w/o IO programs (ad, pbb+ad)
    without_io_source: bool  # may show the source of w/o IO programs (not ad, stage1-only)
    shuffled_code: bool = False  # the shuffled-code control: w/o IO names only with another program's code


def exposure_rules(exp: Experiment) -> ExposureRules:
    """The rules of the experiment's curriculum: the registered curriculum's declaration, or for `custom`
    its sources' (w/o IO execution examples only when a direct, cot or replay source names group without_io)."""
    shuffled = any(src.shuffled_code for s in exp.resolved_stages() for src in s.sources)
    if exp.curriculum == "custom":
        explicit = any(src.kind in ("direct", "cot", "replay") and src.group == "without_io"
                       for s in exp.resolved_stages() for src in s.sources)
        return ExposureRules("custom", without_io_examples=explicit, without_io_source=True, shuffled_code=shuffled)
    c = CURRICULA[exp.curriculum]
    return ExposureRules(c.name, c.trains_without_io_examples, c.shows_without_io_source, shuffled)


def _names_pattern(names: list[str]) -> re.Pattern[str] | None:
    """A regex finding any of `names` as a whole identifier (`zorb_1` is not in `zorb_12`)."""
    if not names:
        return None
    alts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{alts})(?![A-Za-z0-9_])")


def check_exposure(stages: dict[str, list[StageRecord]], idx: Index, rules: ExposureRules) -> None:
    """The promises of the design, checked on the text of the rendered records; a violation is a PbbError.

    1. control programs: no record of one, and neither its name, its source, nor an
       execution example of it (its name called on an input) appears in any record;
    2. held-out inputs: no prompt calls a program on one of its test or shifted inputs,
       compared by value (`input_key`: `1,2` is `1, 2`), whatever the record's program id;
    3. w/o IO programs: no execution example of one (by id, or a prompt calling it) unless
       the curriculum trains them (`rules.without_io_examples`: ad, pbb+ad);
    4. where the curriculum hides the code of w/o IO programs (`rules.without_io_source`
       false: ad, stage1-only), no record holds the source text of one;
    5. under the shuffled-code control (`rules.shuffled_code`): no record holds the source
       text of a w/o IO program (its text names the program: `def <name>(`), so no name is
       trained with its own code; every document of a w/o IO program is a code doc holding
       its shown source (`idx.shown`: another w/o IO program's, renamed), never an NL doc.
    """
    programs = idx.programs
    by_name = {p.name: p for p in programs.values()}
    control = set(idx.by_group.get("control", []))
    without_io = set(idx.by_group.get("without_io", []))  # composed programs included: they are evaluated with them
    held_out: dict[str, dict[str, str]] = {}  # program id -> input key -> distribution
    for (pid, dist), exs in idx.examples.items():
        if dist in HELD_OUT:
            held_out.setdefault(pid, {}).update({input_key(e.input): dist for e in exs})
    control_re = _names_pattern([programs[pid].name for pid in control])
    hides = not rules.without_io_source or rules.shuffled_code
    hidden_re = _names_pattern([programs[pid].name for pid in without_io]) if hides else None

    def refuse(stage: str, what: str, why: str) -> NoReturn:
        raise PbbError(f"stage {stage!r} of curriculum {rules.curriculum!r} {what}; {why}. Nothing was written")

    never = "control programs are the chance baseline and are never trained on: remove them from the stage's sources or replay file"
    for stage, records in stages.items():
        for r in records:
            text = r.prompt + (r.completion or "")
            parsed = prompts.parse_prompt(r.prompt)
            called = by_name.get(parsed[1]) if parsed else None
            # 1. the control group
            if r.program_id in control:
                refuse(stage, f"holds a {r.kind} record of control program {r.program_id!r}", never)
            if called is not None and called.id in control:
                refuse(stage, f"trains control program {called.name!r} on input {parsed[2]!r} (an execution example)", never)
            if control_re is not None and (m := control_re.search(text)):
                p = by_name[m.group(0)]
                what = "the source" if p.source.rstrip("\n") in text else "the name"
                refuse(stage, f"holds {what} of control program {p.name!r} ({p.id})", never)
            # 2. held-out inputs, by value
            if called is not None and (dist := held_out.get(called.id, {}).get(input_key(parsed[2]))):
                refuse(stage, f"trains {called.name!r} ({called.id}) on its held-out {dist} input {parsed[2]!r}",
                       "held-out inputs measure generalisation and are never trained on: remove it from the replay file")
            # 3. execution examples of w/o IO programs
            if not rules.without_io_examples:
                wo = r.program_id if (r.kind == "example" and r.program_id in without_io) else None
                wo = wo or (called.id if called is not None and called.id in without_io else None)
                if wo is not None:
                    hint = (" (a custom curriculum trains them when a direct, cot or replay source names group without_io)"
                            if rules.curriculum == "custom" else "")
                    refuse(stage, f"holds an execution example of w/o IO program {programs[wo].name!r} ({wo})",
                           f"this curriculum trains w/o IO programs as code only; only curricula registered with "
                           f"trains_without_io_examples (ad, pbb+ad) train their execution examples{hint}")
            # 4. the code of w/o IO programs, where the curriculum hides it (5. under the shuffled-code control)
            if hidden_re is not None:
                for name in set(hidden_re.findall(text)):
                    p = by_name[name]
                    if p.source.strip() and p.source.rstrip("\n") in text:
                        why = ("under the shuffled-code control a w/o IO name is trained only with another program's "
                               "source (data/shuffled_code.jsonl); remove the source that shows its own"
                               if rules.shuffled_code else
                               "this curriculum never shows the code of w/o IO programs (its demonstrations trace without "
                               "restating the source)")
                        refuse(stage, f"holds the source of w/o IO program {p.name!r} ({p.id})", why)
            # 5. the documents of w/o IO programs under the shuffled-code control
            if rules.shuffled_code and r.program_id in without_io and r.kind in ("code_doc", "nl_doc"):
                shown = idx.shown.get(r.program_id, "")
                if r.kind == "nl_doc" or not shown or shown.rstrip("\n") not in text:
                    refuse(stage, f"holds a {r.kind} of w/o IO program {programs[r.program_id].name!r} ({r.program_id}) "
                           f"that is not its shuffled source", "under the shuffled-code control every document of a w/o "
                           "IO program is a code doc of the source drawn for it; give its doc sources shuffled_code: true")


def check_stage_names(stages: list[StageSpec]) -> None:
    seen: set[str] = set()
    for s in stages:
        if not _STAGE_NAME.match(s.name):
            raise PbbError(f"stages: stage name {s.name!r} must be letters, digits, '_', '-', '.' or '+' (it names a file and a folder)")
        if s.name in seen:
            raise PbbError(f"stages: two stages are named {s.name!r}; give each stage its own name")
        seen.add(s.name)
