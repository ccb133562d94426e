"""What each curriculum trains: the exposure ledger, the invariants checked at build time, curricula true to their names.

The promises are checked on the text of the stage records with this file's own counters
and scanners (`_exposures`, `_calls`), so that a test fails on a build that breaks a
promise whatever the ledger or `check_exposure` say; the ledger is then compared to them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from pbb import prompts
from pbb.config import validate_experiment
from pbb.curricula import CURRICULA
from pbb.data.build import build_data, compute_build
from pbb.data.splits import input_key
from pbb.errors import PbbError
from pbb.records import Example, Program, StageRecord
from pbb.sandbox import Sandbox

TINY = {"n_with_io": 4, "n_without_io": 3, "n_control": 3, "train_inputs": 4, "cot_inputs": 2, "test_inputs": 3,
        "shifted_inputs": 2}

# what each curriculum may do with the w/o IO programs: (train their execution examples, show their source)
PROMISES = {"ad": (True, False), "pbb+ad": (True, True), "stage1-only": (False, False)}
DEFAULT_PROMISE = (False, True)


def tiny(**over) -> dict:
    raw = {"name": "t", "suite": "arithmetic", "data": dict(TINY), "curriculum_options": {"replay": 5}}
    for k, v in over.items():
        raw[k] = {**raw[k], **v} if isinstance(v, dict) and isinstance(raw.get(k), dict) else v
    return raw


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=2) as sb:
        yield sb


def _build(sandbox, raw: dict, **kw):
    exp = validate_experiment(raw)
    return exp, compute_build(exp, sandbox, **kw)


# ---------------------------------------------------------------- this file's own reading of the stage files


def _group(r: StageRecord, programs: dict[str, Program]) -> str:
    p = programs.get(r.program_id or "")
    return "external" if p is None else ("composed" if p.meta.get("composed_of") else p.group)


def _kind(r: StageRecord, programs: dict[str, Program]) -> str:
    if r.kind != "example":
        return r.kind
    if r.mode == "direct" or r.prompt.endswith(" ="):
        return "direct"
    p = programs.get(r.program_id or "")
    restated = p is not None and p.source.rstrip("\n") in (r.completion or "")
    return "cot_with_source" if restated else "cot_without_source"


def _exposures(exp, stages: dict[str, list[StageRecord]], programs: dict[str, Program]) -> Counter:
    """(group, replay, kind) -> records x epochs over all stages, epochs from the resolved stages' train configs."""
    out: Counter = Counter()
    for rs in exp.curriculum_stages():
        for r in stages[rs.name]:
            out[(_group(r, programs), r.replay, _kind(r, programs))] += rs.train.epochs
    return out


_CALL = (re.compile(r"(\w+)\((.*)\) =", re.S), re.compile(r"Compute (\w+)\((.*)\) step by step\.\n", re.S))


def _calls(prompt: str) -> tuple[str, str] | None:
    """(name, input) of an execution-example prompt, read from its text."""
    for pattern in _CALL:
        if m := pattern.fullmatch(prompt):
            return m.group(1), m.group(2)
    return None


def _broken_promises(exp, build) -> list[str]:
    """Every promise of docs/ARCHITECTURE.md that the build's stage text breaks."""
    programs = {p.id: p for p in build.programs}
    by_name = {p.name: p for p in build.programs}
    held = {(e.program_id, input_key(e.input)) for e in build.examples if e.distribution in ("test", "shifted")}
    examples_ok, source_ok = PROMISES.get(exp.curriculum, DEFAULT_PROMISE)
    wo = [p for p in build.programs if p.group == "without_io"]
    bad = []
    for stage, recs in build.stages.items():
        for r in recs:
            text = r.prompt + (r.completion or "")
            call = _calls(r.prompt)
            called = by_name.get(call[0]) if call else None
            for p in build.programs:
                if p.group == "control" and (re.search(rf"\b{p.name}\b", text) or p.source.strip() in text):
                    bad.append(f"{stage}: control {p.name} in {text[:60]!r}")
            if r.program_id and programs[r.program_id].group == "control":
                bad.append(f"{stage}: record of control {r.program_id}")
            if called and (called.id, input_key(call[1])) in held:
                bad.append(f"{stage}: held-out input {r.prompt!r}")
            if not examples_ok and called and called.group == "without_io":
                bad.append(f"{stage}: w/o IO example {r.prompt!r}")
            if not source_ok and any(p.source.rstrip("\n") in text for p in wo):
                bad.append(f"{stage}: w/o IO source in {text[:60]!r}")
    return bad


# ---------------------------------------------------------------- the invariants, for every curriculum


@pytest.mark.parametrize("curriculum", sorted(CURRICULA))
def test_every_curriculum_keeps_its_exposure_promises_on_the_stage_text(sandbox, curriculum):
    exp, build = _build(sandbox, tiny(curriculum=curriculum, data={"n_composed": 2}))
    assert _broken_promises(exp, build) == []
    c = CURRICULA[curriculum]  # the registry declares what the build enforces
    assert (c.trains_without_io_examples, c.shows_without_io_source) == PROMISES.get(curriculum, DEFAULT_PROMISE)


def _index():
    """A hand-made build: w/ IO `zorb_12`, w/o IO `quib_3`, control `zorb_1` (a prefix of the w/ IO name)."""
    from pbb.data.render import Index

    def prog(pid, name, group):
        return Program(pid, "arithmetic", "f", name, f"def {name}(x):\n    return x + {len(pid)}\n", f"{name} adds.", group)

    progs = [prog("w", "zorb_12", "with_io"), prog("wo", "quib_3", "without_io"), prog("c", "zorb_1", "control")]
    examples = {(p.id, d): [Example(p.id, d, str(v), str(v + 1), "") for v in vals]
                for p in progs for d, vals in (("train", (1, 2)), ("test", (7,)), ("shifted", (40,)))}
    return Index({p.id: p for p in progs}, examples, {"with_io": ["w"], "without_io": ["wo"], "control": ["c"]}), progs


def _doc(pid: str, text: str) -> StageRecord:
    return StageRecord(program_id=pid, kind="code_doc", prompt="", completion=text)


def _example(pid: str | None, name: str, inp: str, mode: str = "direct") -> StageRecord:
    return StageRecord(program_id=pid, kind="example", prompt=prompts.prompt_for(mode, name, inp),
                       completion=" 1" if mode == "direct" else "Answer: 1", mode=mode if pid else None, expected="1",
                       replay=pid is None)


LEAKS = {
    "control record": (lambda w, wo, c: StageRecord("c", "code_doc", "", "text"), "proactive", "record of control program"),
    "control example from a replay file": (lambda w, wo, c: _example(None, c.name, "2"), "proactive", "trains control program 'zorb_1'"),
    "control source": (lambda w, wo, c: _doc("w", "Here:\n" + c.source), "proactive", "the source of control program"),
    "control name": (lambda w, wo, c: _doc("w", f"{c.name} is like {w.name}"), "proactive", "the name of control program"),
    "control output after its name": (lambda w, wo, c: _doc("w", f"{c.name}(2) = 3"), "proactive", "control program 'zorb_1'"),
    "held-out input, other spacing": (lambda w, wo, c: _example("w", w.name, " 7 "), "proactive", "held-out test input"),
    "held-out shifted input, cot": (lambda w, wo, c: _example("w", w.name, "40", "cot"), "proactive", "held-out shifted input"),
    "w/o IO example": (lambda w, wo, c: _example("wo", wo.name, "1"), "proactive", "execution example of w/o IO program"),
    "w/o IO example from a replay file": (lambda w, wo, c: _example(None, wo.name, "2", "cot"), "mixture",
                                          "execution example of w/o IO program"),
    "w/o IO source under ad": (lambda w, wo, c: StageRecord("wo", "example", prompts.cot_prompt(wo.name, "1"),
                                                             wo.source + "Answer: 2", "cot", "2"), "ad", "the source of w/o IO program"),
    "w/o IO source under stage1-only": (lambda w, wo, c: _doc("wo", wo.source), "stage1-only", "the source of w/o IO program"),
}


@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_check_exposure_refuses_each_leak_with_one_clear_error(leak):
    from pbb.data.render import ExposureRules, check_exposure

    idx, (w, wo, c) = _index()
    make, curriculum, message = LEAKS[leak]
    cur = CURRICULA[curriculum]
    rules = ExposureRules(curriculum, cur.trains_without_io_examples, cur.shows_without_io_source)
    fine = [_doc("w", w.source), _example("w", w.name, "1"), _doc("w", f"{w.name} calls zorb_1x and zorb_10")]
    check_exposure({"s": fine}, idx, rules)  # zorb_1 is not in zorb_12 nor zorb_1x: whole names only
    with pytest.raises(PbbError, match=re.escape(message)) as e:
        check_exposure({"s": [*fine, make(w, wo, c)]}, idx, rules)
    assert f"stage 's' of curriculum {curriculum!r}" in str(e.value) and "Nothing was written" in str(e.value)


def test_what_a_curriculum_declares_it_may_train():
    from pbb.data.render import ExposureRules, check_exposure

    idx, (w, wo, c) = _index()
    example, source = _example("wo", wo.name, "1"), _doc("wo", wo.source)
    check_exposure({"s": [example, source]}, idx, ExposureRules("pbb+ad", True, True))
    check_exposure({"s": [source]}, idx, ExposureRules("proactive", False, True))
    check_exposure({"s": [example]}, idx, ExposureRules("ad", True, False))


def test_a_replay_file_with_a_held_out_input_is_refused_and_nothing_is_written(tmp_path, sandbox):
    _, build = _build(sandbox, tiny())
    p = next(p for p in build.programs if p.group == "with_io")
    test_input = next(e.input for e in build.examples if e.program_id == p.id and e.distribution == "test")
    path = tmp_path / "replay.jsonl"
    # the same value, spelled as no build spells it: a string comparison of prompts would let it through
    path.write_text(json.dumps({"prompt": prompts.direct_prompt(p.name, f" {test_input}  "), "completion": " 0"}) + "\n")
    raw = tiny(curriculum="custom", stages=[{"name": "s", "sources": [
        {"kind": "doc", "group": "without_io"}, {"kind": "replay", "path": str(path)}]}])
    out = tmp_path / "data"
    with pytest.raises(PbbError, match="held-out test input"):
        build_data(validate_experiment(raw), out, progress=False, sandbox=sandbox)
    assert not out.exists() or not any(out.iterdir())


def test_a_custom_curriculum_trains_without_io_examples_only_when_it_names_them(sandbox):
    every = tiny(curriculum="custom", stages=[{"name": "s", "sources": [{"kind": "direct", "group": "all"}]}])
    with pytest.raises(PbbError, match="names group without_io"):
        _build(sandbox, every)
    named = tiny(curriculum="custom", stages=[{"name": "s", "sources": [{"kind": "direct", "group": "with_io"},
                                                                        {"kind": "direct", "group": "without_io"}]}])
    exp, build = _build(sandbox, named)
    assert {p.group for p in build.programs if p.id in {r.program_id for r in build.stages["s"]}} == {"with_io", "without_io"}


# ---------------------------------------------------------------- the ledger


def test_the_ledger_counts_what_the_stage_files_hold(tmp_path, sandbox):
    from pbb.store import DataStore

    raw = tiny(data={"n_composed": 2}, curriculum_options={"stage1": {"epochs": 2}, "stage2": {"epochs": 5}})
    exp = validate_experiment(raw)
    manifest = build_data(exp, tmp_path / "data", progress=False, sandbox=sandbox)
    store = DataStore(tmp_path / "data")
    ledger = store.read_ledger()
    stages = {s: store.read_stage(s) for s in ("stage1", "stage2")}
    programs = store.programs_by_id()
    assert ledger.token_unit == "characters" and ledger.tokenizer is None
    assert ledger.stages == [{"name": "stage1", "method": "sft", "epochs": 2.0}, {"name": "stage2", "method": "sft", "epochs": 5.0}]
    counted: Counter = Counter()
    for r in ledger.rows:
        for k in ("code_doc", "nl_doc", "direct", "cot_with_source", "cot_without_source"):
            if getattr(r, k):
                counted[(r.group, r.replay, k)] += getattr(r, k) * r.epochs
        assert r.exposures == r.records * r.epochs
        recs = [x for x in stages[r.stage] if _group(x, programs) == r.group and x.replay == r.replay]
        assert r.records == len(recs) and r.tokens == sum(len(x.prompt + (x.completion or "")) for x in recs)
    assert counted == _exposures(exp, stages, programs)
    # the groups as the design names them: composed apart, replay apart and by its program's group
    assert counted[("composed", False, "code_doc")] == 2 * 5 * 5 and counted[("without_io", False, "code_doc")] == 3 * 5 * 5
    assert counted[("with_io", True, "direct")] + counted[("with_io", True, "cot_with_source")] == 5 * 5
    assert ledger.total(group="control") == 0 and ledger.total(stage="stage1", group="with_io") == (4 * 5 + 4 * 4 + 4 * 2) * 2
    assert "ledger.json" in {p.name for p in store.content_paths(stages)} and manifest["content_hash"]


def test_the_ledger_counts_tokens_with_the_runs_tokenizer(sandbox):
    from pbb.data.build import data_hash

    class Words:  # a stand-in for a Hugging Face tokenizer: one token per whitespace-separated word
        def __call__(self, texts, add_special_tokens=True):
            assert add_special_tokens is False
            return {"input_ids": [t.split() for t in texts]}

    exp, build = _build(sandbox, tiny(), tokenizer=Words())
    assert build.ledger.token_unit == "tokens" and build.ledger.tokenizer == exp.model
    words = sum(len((r.prompt + (r.completion or "")).split()) for recs in build.stages.values() for r in recs)
    assert sum(r.tokens for r in build.ledger.rows) == words
    # the data step reruns when what the ledger reads changes: the tokenizer, a stage's epochs
    assert build.manifest["data_hash"] == data_hash(exp) != data_hash(exp, tokens=False)
    assert data_hash(exp) != data_hash(validate_experiment(tiny(curriculum_options={"stage2": {"epochs": 4}})))


def test_a_damaged_ledger_is_one_clear_error(tmp_path, sandbox):
    from pbb.records import Ledger
    from pbb.store import DataStore

    _, build = _build(sandbox, tiny())
    store = DataStore(tmp_path)
    assert store.read_ledger() is None  # a build of an older version
    store.write_ledger(build.ledger)
    assert store.read_ledger() == build.ledger == Ledger.from_json(build.ledger.to_json())
    store.ledger_path.write_text('{"rows": [{"stage": "s"}], "stages": []}')
    with pytest.raises(PbbError, match=r"ledger.json: rows\[0\] lacks the field 'group'; rebuild the data"):
        store.read_ledger()
    store.ledger_path.write_text("{")
    with pytest.raises(PbbError, match="ledger.json: not valid JSON"):
        store.read_ledger()


def test_pbb_data_prints_the_ledger(tmp_path):
    import subprocess
    import sys

    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny(curriculum="ad")))
    r = subprocess.run([sys.executable, "-m", "pbb.cli", "data", str(cfg), "--out", str(tmp_path / "d"), "--no-tokenizer"],
                       capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr
    row = next(line.split() for line in r.stdout.splitlines() if line.strip().startswith("stage1"))
    # stage group(2 words) code NL direct CoT+src CoT-src records chars epochs exposures
    assert row[:3] == ["stage1", "w/o", "IO"] and row[3:8] == ["0", "0", "12", "0", "6"] and row[-2:] == ["3", "54"]
    assert "exposures" in r.stdout and "built without a tokenizer" in r.stdout


# ---------------------------------------------------------------- the curricula, true to their names


def test_ad_demonstrations_trace_without_restating_the_source(sandbox):
    exp, build = _build(sandbox, tiny(curriculum="ad"))
    programs = {p.id: p for p in build.programs}
    truth = {(e.program_id, e.input): e for e in build.examples}
    cot = [r for r in build.stages["stage1"] if r.mode == "cot"]
    assert cot
    for r in cot:
        p = programs[r.program_id]
        name, inp = _calls(r.prompt)
        e = truth[(p.id, inp)]
        assert r.prompt == prompts.cot_prompt(p.name, inp)  # the question is the evaluation's
        assert p.source.rstrip("\n") not in r.completion and f"def {p.name}" not in r.completion
        assert r.completion == f"{e.trace}\nAnswer: {e.output}" and prompts.extract_answer("cot", r.completion) == e.output
    exposures = _exposures(exp, build.stages, programs)
    assert exposures[("without_io", False, "cot_with_source")] == 0 and exposures[("without_io", False, "cot_without_source")] == 3 * 2 * 3
    assert build.ledger.total(kind="cot_with_source") == 0 and build.ledger.total(kind="cot_without_source") == 3 * 2 * 3


@pytest.mark.parametrize("n, direct, cot, want", [
    (3, True, True, (2, 1)),   # CoT takes half, rounded down; direct the rest
    (4, True, True, (2, 2)),
    (1, True, True, (1, 0)),
    (5, True, True, (3, 2)),   # CoT at most data.cot_inputs (2)
    (9, True, True, (4, 2)),   # every input there is: 4 training inputs, 2 of them as CoT
    (3, False, True, (0, 2)),  # one mode: all N in it, as far as its inputs go
    (3, True, False, (3, 0)),
])
@pytest.mark.parametrize("curriculum", ["ad", "pbb+ad"])
def test_ad_examples_per_program_counts_demonstrations_of_both_modes(sandbox, curriculum, n, direct, cot, want):
    raw = tiny(curriculum=curriculum, curriculum_options={"ad_examples_per_program": n, "direct": direct, "cot": cot})
    _, build = _build(sandbox, raw)
    wo = [p.id for p in build.programs if p.group == "without_io"]
    stage = build.stages["stage1" if curriculum == "ad" else "stage2"]
    per_program = Counter((r.program_id, r.mode) for r in stage if r.kind == "example" and not r.replay)
    assert {pid: (per_program[(pid, "direct")], per_program[(pid, "cot")]) for pid in wo} == dict.fromkeys(wo, want)


def test_stage2_only_trains_no_execution_example_unless_asked(sandbox):
    exp, build = _build(sandbox, tiny(curriculum="stage2-only"))  # the config asks proactive for replay: 5
    programs = {p.id: p for p in build.programs}
    kinds = {k for (_, _, k) in _exposures(exp, build.stages, programs)}
    assert kinds == {"code_doc"} and not any(r.kind == "example" for r in build.stages["stage2"])
    assert {r.group for r in build.ledger.rows} == {"without_io"} and not any(r.replay for r in build.ledger.rows)

    exp, build = _build(sandbox, tiny(curriculum="stage2-only", curriculum_options={"replay": 5, "stage2_only_replay": True}))
    replay = [r for r in build.ledger.rows if r.replay]
    assert [(r.group, r.records) for r in replay] == [("with_io", 5)]
    assert "stage2_only_replay" in CURRICULA["stage2-only"].summary
    with pytest.raises(PbbError, match="stage2_only_replay is set but curriculum_options.replay is 0"):
        validate_experiment(tiny(curriculum="stage2-only", curriculum_options={"replay": 0, "stage2_only_replay": True}))


@pytest.mark.parametrize("e1, e2", [(3, 6), (2, 3), (2.5, 2.5)])
def test_mixture_has_proactives_exposure_group_by_group(sandbox, e1, e2):
    from pbb.data.ledger import group_exposures

    opts = {"replay": 5, "stage1": {"epochs": e1}, "stage2": {"epochs": e2}}
    got = {}
    for curriculum in ("proactive", "mixture"):
        exp, build = _build(sandbox, tiny(curriculum=curriculum, data={"n_composed": 2}, curriculum_options=opts))
        got[curriculum] = (_exposures(exp, build.stages, {p.id: p for p in build.programs}), group_exposures(build.ledger))
    assert got["mixture"][0] == got["proactive"][0]  # (group, replay, kind) -> records x epochs
    assert got["mixture"][1] == got["proactive"][1]
    assert got["proactive"][0][("without_io", False, "code_doc")] == 3 * 5 * e2


def test_mixture_refuses_epochs_it_cannot_match():
    with pytest.raises(PbbError, match="epochs .*2.5 and 3.* must be whole numbers or equal"):
        validate_experiment(tiny(curriculum="mixture", curriculum_options={"stage1": {"epochs": 2.5}, "stage2": {"epochs": 3}}))
