"""The data build: determinism, groups, splits, the no-leak promises, stage datasets, composition, drops."""

from __future__ import annotations

import ast
import json
import random
from pathlib import Path

import pytest

from pbb import prompts
from pbb.config import validate_experiment
from pbb.data.build import build_data, compute_build
from pbb.data.splits import input_key, sample_inputs, split_groups
from pbb.data.traces import cap_lines, generic_trace, render_trace
from pbb.errors import PbbError
from pbb.io import read_json, read_jsonl, sha256_files
from pbb.programs import SUITES, Program, ProgramSpec, Suite, register_suite
from pbb.sandbox import Sandbox
from pbb.curricula import CURRICULA

TINY = {"n_with_io": 4, "n_without_io": 3, "n_control": 3, "train_inputs": 4, "cot_inputs": 2, "test_inputs": 3,
        "shifted_inputs": 2}



def _k(r: dict) -> str:
    """What a stage record counts as: code_doc / nl_doc, direct / cot, or replay (as the data manifest counts them)."""
    return "replay" if r.get("replay") else (r["mode"] if r["kind"] == "example" else r["kind"])

def tiny(**over) -> dict:
    raw = {"name": "t", "suite": "arithmetic", "data": dict(TINY), "curriculum_options": {"replay": 5}}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(raw.get(k), dict):
            raw[k] = {**raw[k], **v}
        else:
            raw[k] = v
    return raw


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=2) as sb:  # one pool for the whole module, as a build reuses one
        yield sb


@pytest.fixture(scope="module")
def quick_fail():
    """A pool with a short wall-clock limit, for the suite whose program loops forever."""
    with Sandbox(workers=1, timeout_s=0.5) as sb:
        yield sb


def build(tmp_path: Path, sandbox, raw: dict | None = None, sub: str = "data") -> tuple[dict, Path]:
    exp = validate_experiment(raw or tiny())
    out = tmp_path / sub
    return build_data(exp, out, progress=False, sandbox=sandbox), out


def load(out: Path):
    programs = {p["id"]: p for p in read_jsonl(out / "programs.jsonl")}
    examples = read_jsonl(out / "examples.jsonl")
    stages = {p.stem: read_jsonl(p) for p in sorted((out / "stages").glob("*.jsonl"))}
    return programs, examples, stages


def _leaks(programs: dict, examples: list[dict], stages: dict) -> list[str]:
    """Every way a training file could betray the experiment: control programs, held-out inputs."""
    problems = []
    control = {pid for pid, p in programs.items() if p["group"] == "control"}
    control_names = {programs[pid]["name"] for pid in control}
    held = {prompts.call(programs[e["program_id"]]["name"], e["input"]) for e in examples if e["distribution"] in ("test", "shifted")}
    for name, recs in stages.items():
        for r in recs:
            text = r["prompt"] + (r.get("completion") or "")
            if r["program_id"] in control or any(n in text for n in control_names):
                problems.append(f"{name}: control program in {r}")
            if any(call in r["prompt"] for call in held):
                problems.append(f"{name}: held-out input in {r['prompt']!r}")
    return problems


# ---------------------------------------------------------------- the build's files and promises


def test_same_config_gives_byte_identical_files(tmp_path, sandbox):
    m1, a = build(tmp_path, sandbox, sub="a")
    m2, b = build(tmp_path, sandbox, sub="b")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert [str(f) for f in files] == ["examples.jsonl", "ledger.json", "manifest.json", "programs.jsonl", "stages/stage1.jsonl",
                                       "stages/stage2.jsonl"]
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    _, c = build(tmp_path, sandbox, tiny(seed=1), sub="c")
    assert (c / "programs.jsonl").read_bytes() != (a / "programs.jsonl").read_bytes()

    class Minimal:  # a runner without progress callbacks takes the chunked path: same bytes
        def run_many(self, jobs, trace=False):
            return sandbox.run_many(jobs, trace=trace)

    _, d = build(tmp_path, Minimal(), sub="d")
    assert all((a / f).read_bytes() == (d / f).read_bytes() for f in files)


def test_manifest_counts_and_hashes_describe_the_files(tmp_path, sandbox):
    m, out = build(tmp_path, sandbox)
    programs, examples, stages = load(out)
    assert m == read_json(out / "manifest.json")
    assert m["seed"] == 0 and m["suite"] == "arithmetic" and m["options"]["input_max"] == 19
    assert m["counts"]["programs"]["with_io"] == 4 and m["counts"]["programs"]["without_io"] == 3
    assert m["counts"]["programs"]["control"] == 3 and len(programs) == 10
    assert m["counts"]["examples"] == {"train": 40, "test": 30, "shifted": 20}
    assert m["counts"]["stages"] == {name: len(recs) for name, recs in stages.items()}
    paths = [out / "programs.jsonl", out / "examples.jsonl", *sorted((out / "stages").glob("*.jsonl")), out / "ledger.json"]
    assert m["content_hash"] == sha256_files(paths)
    assert m["dropped"] == [] and len(m["data_hash"]) == 64


def test_groups_are_disjoint_and_inputs_held_out(tmp_path, sandbox):
    _, out = build(tmp_path, sandbox)
    programs, examples, stages = load(out)
    assert len({p["name"] for p in programs.values()}) == len(programs)
    by_split: dict[tuple[str, str], set[str]] = {}
    for e in examples:
        key = (e["program_id"], e["distribution"])
        assert input_key(e["input"]) not in by_split.get(key, set()), "inputs repeat within a split"
        by_split.setdefault(key, set()).add(input_key(e["input"]))
    for pid in programs:
        assert not by_split[(pid, "test")] & by_split[(pid, "train")]
        assert not by_split[(pid, "shifted")] & by_split[(pid, "train")]
        assert len(by_split[(pid, "test")]) == 3
    assert _leaks(programs, examples, stages) == []


def test_stage_records_follow_the_prompt_formats_and_the_ground_truth(tmp_path, sandbox):
    _, out = build(tmp_path, sandbox)
    programs, examples, stages = load(out)
    truth = {(e["program_id"], e["input"]): e["output"] for e in examples}
    s1, s2 = stages["stage1"], stages["stage2"]
    kinds = {_k(r) for r in s1}
    assert kinds == {"code_doc", "direct", "cot"}
    assert {programs[r["program_id"]]["group"] for r in s1} == {"with_io"}
    assert {programs[r["program_id"]]["group"] for r in s2 if _k(r) == "code_doc"} == {"without_io"}
    assert sum(_k(r) == "code_doc" for r in s1) == 4 * 5  # templates_per_program documents each
    assert sum(_k(r) == "direct" for r in s1) == 4 * 4 and sum(_k(r) == "cot" for r in s1) == 4 * 2
    assert sum(_k(r) == "replay" for r in s2) == 5
    for r in s1 + s2:
        assert set(r) == {"prompt", "completion", "kind", "mode", "expected", "replay", "program_id"}
        p = programs[r["program_id"]]
        if _k(r) == "code_doc":
            assert r["prompt"] == "" and p["source"].strip() in r["completion"] and p["name"] in r["completion"]
            continue
        inp = r["prompt"].split(p["name"] + "(", 1)[1].rsplit(")", 1)[0]
        out_ = truth[(p["id"], inp)]
        if r["prompt"] == prompts.direct_prompt(p["name"], inp):
            assert r["completion"] == prompts.direct_completion(out_)
        else:
            assert r["prompt"] == prompts.cot_prompt(p["name"], inp)
            assert r["completion"].startswith(p["source"].rstrip("\n"))  # the recall step
            assert r["completion"].endswith(f"Answer: {out_}")
    # interleaved, not grouped by kind
    assert [_k(r) for r in s1] != sorted((_k(r) for r in s1), key=["code_doc", "direct", "cot"].index)


def test_every_cot_example_ends_with_the_true_answer(tmp_path, sandbox):
    m, out = build(tmp_path, sandbox, tiny(data={"n_composed": 2}))
    programs, examples, _ = load(out)
    for e in examples:
        p = programs[e["program_id"]]
        completion = prompts.cot_completion(p["source"], e["trace"], e["output"])
        assert completion.endswith(prompts.ANSWER_MARKER + " " + e["output"])
        assert prompts.extract_answer("cot", completion) == e["output"]


@pytest.mark.parametrize("curriculum", sorted(CURRICULA))
def test_every_named_curriculum_builds_without_leaks(tmp_path, sandbox, curriculum):
    raw = tiny(curriculum=curriculum)
    exp = validate_experiment(raw)
    m, out = build(tmp_path, sandbox, raw)
    programs, examples, stages = load(out)
    assert sorted(stages) == sorted(s.name for s in exp.resolved_stages())
    assert _leaks(programs, examples, stages) == []
    for spec in exp.resolved_stages():
        recs = stages[spec.name]
        assert recs, f"{curriculum}/{spec.name} is empty"
        if spec.method == "grpo":
            assert all(r["completion"] is None and r["mode"] in ("direct", "cot") and r["expected"] for r in recs)
            truth = {(e["program_id"], prompts.prompt_for(r_mode, programs[e["program_id"]]["name"], e["input"])): e["output"]
                     for e in examples for r_mode in ("direct", "cot")}
            assert all(truth[(r["program_id"], r["prompt"])] == r["expected"] for r in recs)


def test_retroactive_all_means_every_trained_group_never_control(tmp_path, sandbox):
    _, out = build(tmp_path, sandbox, tiny(curriculum="retroactive"))
    programs, _, stages = load(out)
    groups = {programs[r["program_id"]]["group"] for r in stages["stage1"]}
    assert groups == {"with_io", "without_io"}


def test_a_stage_source_on_the_control_group_is_refused(tmp_path, sandbox):
    raw = tiny(curriculum="custom", stages=[{"name": "s", "sources": [{"kind": "doc", "group": "control"}]}])
    with pytest.raises(PbbError, match="control"):
        build(tmp_path, sandbox, raw)


def test_a_stage_that_renders_nothing_is_one_clear_error(tmp_path, sandbox):
    raw = tiny(curriculum="custom", stages=[{"name": "s", "sources": [{"kind": "direct", "max_per_program": 0}]}])
    with pytest.raises(PbbError, match="stage 's' renders no records"):
        build(tmp_path, sandbox, raw)


def test_custom_stage_options_cap_repeat_and_explicit_doc_kinds(tmp_path, sandbox):
    raw = tiny(curriculum="custom", stages=[{"name": "only", "sources": [
        {"kind": "nl_doc", "group": "without_io", "max_per_program": 2, "repeat": 3},
        {"kind": "direct", "group": "with_io", "max_per_program": 1},
    ]}])
    _, out = build(tmp_path, sandbox, raw)
    programs, _, stages = load(out)
    recs = stages["only"]
    nl = [r for r in recs if _k(r) == "nl_doc"]
    assert len(nl) == 3 * 2 * 3 and all(programs[r["program_id"]]["description"] in r["completion"] for r in nl)
    assert sum(_k(r) == "direct" for r in recs) == 4


def test_doc_kind_nl_switches_the_documents(tmp_path, sandbox):
    _, out = build(tmp_path, sandbox, tiny(data={"doc_kind": "nl"}))
    programs, _, stages = load(out)
    docs = [r for r in stages["stage2"] if _k(r) != "replay"]
    assert docs and all(_k(r) == "nl_doc" and "def " not in r["completion"] for r in docs)


def test_rebuilding_another_curriculum_removes_stale_stage_files(tmp_path, sandbox):
    build(tmp_path, sandbox)
    _, out = build(tmp_path, sandbox, tiny(curriculum="stage1-only"))
    assert sorted(p.name for p in (out / "stages").iterdir()) == ["stage1.jsonl"]


def test_a_build_killed_while_writing_never_looks_finished(tmp_path, sandbox, monkeypatch):
    import pbb.store as b

    _, out = build(tmp_path, sandbox)
    (out / ".examples.jsonl.x.tmp").write_text("half")  # what a SIGKILL mid-write leaves
    real = b.write_records

    def dies(path, records):
        if path.parent.name == "stages":
            raise KeyboardInterrupt  # killed half-way through the stage files
        return real(path, records)

    monkeypatch.setattr(b, "write_records", dies)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, sandbox, tiny(seed=3))
    assert not (out / "manifest.json").exists()  # so `pbb run` rebuilds instead of trusting it
    assert not list(out.glob(".*.tmp"))
    monkeypatch.setattr(b, "write_records", real)
    m, _ = build(tmp_path, sandbox, tiny(seed=3))
    assert read_json(out / "manifest.json")["content_hash"] == m["content_hash"]


# ---------------------------------------------------------------- replay


def test_replay_from_a_file(tmp_path, sandbox):
    path = tmp_path / "replay.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"q{i} =", "completion": f" {i}"}) for i in range(3)) + "\n")
    raw = tiny(curriculum="custom", stages=[{"name": "s", "sources": [
        {"kind": "doc", "group": "without_io"}, {"kind": "replay", "path": str(path), "count": 7}]}])
    _, out = build(tmp_path, sandbox, raw)
    replay = [r for r in load(out)[2]["s"] if _k(r) == "replay"]
    assert len(replay) == 7 and {r["prompt"] for r in replay} == {"q0 =", "q1 =", "q2 ="}


@pytest.mark.parametrize("content, match", [
    (None, "no such file"),
    ("{not json\n", "line 1: not valid JSON"),
    ('{"prompt": "a"}\n', "line 1: expected an object"),
    ("\n", "holds no records"),
])
def test_a_bad_replay_file_is_one_clear_error(tmp_path, sandbox, content, match):
    path = tmp_path / "replay.jsonl"
    if content is not None:
        path.write_text(content)
    raw = tiny(curriculum="custom", stages=[{"name": "s", "sources": [
        {"kind": "doc", "group": "without_io"}, {"kind": "replay", "path": str(path)}]}])
    with pytest.raises(PbbError, match=match):
        build(tmp_path, sandbox, raw)


# ---------------------------------------------------------------- composition


def test_composed_programs_call_trained_parts_and_their_truth_chains_them(tmp_path, sandbox):
    m, out = build(tmp_path, sandbox, tiny(data={"n_composed": 3}))
    programs, examples, stages = load(out)
    composed = [p for p in programs.values() if p["family"] == "composed"]
    assert len(composed) == 3 and m["counts"]["programs"]["without_io"] == 3 + 3
    for p in composed:
        inner, outer = (programs[i] for i in p["meta"]["composed_of"])
        assert p["group"] == "without_io" and {inner["group"], outer["group"]} <= {"with_io", "without_io"}
        assert p["source"] == f"def {p['name']}(x):\n    return {outer['name']}({inner['name']}(x))\n"
        assert inner["name"] in p["description"] and outer["name"] in p["description"]
        for e in (e for e in examples if e["program_id"] == p["id"]):
            mid = sandbox.run(inner["source"], inner["name"], e["input"]).output
            assert sandbox.run(outer["source"], outer["name"], mid).output == e["output"]
            assert e["trace"].startswith(f"{inner['name']}({e['input']}):") and f"{outer['name']}({mid}):" in e["trace"]
    # its own code doc is trained in stage 2, never its examples
    s2 = [r for r in stages["stage2"] if r["program_id"] in {p["id"] for p in composed}]
    assert s2 and all(_k(r) == "code_doc" for r in s2)


def test_a_suite_that_cannot_compose_says_so(tmp_path, quick_fail, flaky):
    with pytest.raises(PbbError, match="n_composed"):
        build(tmp_path, quick_fail, {"name": "t", "suite": "fake-flaky",
                                     "data": {"n_with_io": 1, "n_without_io": 1, "n_control": 1, "n_composed": 1,
                                              "train_inputs": 2, "cot_inputs": 1, "test_inputs": 2, "shifted_inputs": 0}})


# ---------------------------------------------------------------- drops, spares, small input spaces


class FlakySuite(Suite):
    """A test suite: programs 0 and 3 always fail, program 1 fails on odd inputs, inputs are 0..5."""

    name = "fake-flaky"
    summary = "test only"

    def generate(self, options, rng, n):
        bodies = ["return 1 // 0", "return x if x % 2 == 0 else [][0]", "return x + 1", "while True: pass", "return x * 2"]
        out = []
        for i in range(n):
            name = f"flaky_{i}"
            src = f"def {name}(x):\n    {bodies[i] if i < len(bodies) else f'return x + {i}'}\n"
            out.append(ProgramSpec(Program(id=f"fake-{i:04d}", suite=self.name, family="f", name=name, source=src,
                                           description=f"{name} does something."), lambda r, split: str(r.randint(0, 5))))
        return out


@pytest.fixture
def flaky():
    """Register the test suite for one test only, so `pbb suites` elsewhere never lists it."""
    register_suite(FlakySuite)
    yield
    SUITES.pop(FlakySuite.name, None)


def test_failing_programs_are_dropped_with_reasons_and_replaced_by_spares(tmp_path, quick_fail, flaky):
    data = {"n_with_io": 2, "n_without_io": 1, "n_control": 1, "train_inputs": 3, "cot_inputs": 1, "test_inputs": 2, "shifted_inputs": 0}
    m, out = build(tmp_path, quick_fail, {"name": "t", "suite": "fake-flaky", "data": data})
    programs, examples, _ = load(out)
    assert "fake-0000" not in programs and "fake-0003" not in programs and len(programs) == 4
    reasons = {d["id"]: d["reason"] for d in m["dropped"] if "distribution" not in d}
    assert "fake-0000" in reasons and "exception" in m["dropped"][0]["reason"]
    assert any(d["id"] == "fake-0003" and "timeout" in d["reason"] for d in m["dropped"])
    # program 1 keeps only its even inputs; the odd ones are reported, not silently lost
    if "fake-0001" in programs:
        assert all(int(e["input"]) % 2 == 0 for e in examples if e["program_id"] == "fake-0001")


def test_a_too_small_input_space_is_reported_not_fatal(tmp_path, quick_fail, flaky):
    data = {"n_with_io": 1, "n_without_io": 1, "n_control": 1, "train_inputs": 4, "cot_inputs": 0, "test_inputs": 4, "shifted_inputs": 0}
    m, out = build(tmp_path, quick_fail, {"name": "t", "suite": "fake-flaky", "data": data})
    assert any(s["distribution"] == "test" and s["missing"] > 0 for s in m["input_shortfall"])  # 6 values cannot give 4 + 4


def test_asking_for_more_programs_than_usable_is_one_clear_error(tmp_path, flaky):
    from pbb.programs import get_suite

    class _FakeSandbox:
        def run_many(self, jobs, trace=False):
            from pbb.sandbox import RunResult
            return [RunResult(ok=False, error="boom", error_kind="crash") for _ in jobs]

    exp = validate_experiment({"name": "t", "suite": "fake-flaky", "data": {
        "n_with_io": 1, "n_without_io": 1, "n_control": 1, "train_inputs": 2, "cot_inputs": 1, "test_inputs": 2}})
    assert get_suite("fake-flaky")
    with pytest.raises(PbbError, match="usable .*ran successfully.* 3 are needed"):
        compute_build(exp, _FakeSandbox())


class BadSamplerSuite(Suite):
    """A test suite whose second program's input sampler raises."""

    name = "fake-badsampler"
    summary = "test only"

    def generate(self, options, rng, n):
        def broken(r, split):
            raise ValueError("no inputs today")

        return [ProgramSpec(Program(id=f"bad-{i:04d}", suite=self.name, family="f", name=f"fine_{i}",
                                    source=f"def fine_{i}(x):\n    return x + {i}\n", description="adds"),
                            broken if i == 1 else (lambda r, split: str(r.randint(0, 99))))
                for i in range(n)]


def test_a_broken_input_sampler_fails_its_program_not_the_build(tmp_path, sandbox):
    register_suite(BadSamplerSuite)
    try:
        m, out = build(tmp_path, sandbox, {"name": "t", "suite": "fake-badsampler", "data": {
            "n_with_io": 1, "n_without_io": 1, "n_control": 1, "train_inputs": 2, "cot_inputs": 1, "test_inputs": 2}})
    finally:
        SUITES.pop(BadSamplerSuite.name, None)
    assert "bad-0001" not in load(out)[0]
    assert {"id": "bad-0001", "reason": "input sampler failed: ValueError: no inputs today"} in m["dropped"]


def test_natural_split_feeds_ad_and_stays_apart_from_test_inputs(tmp_path, sandbox):
    if "ciphers" not in SUITES:
        pytest.skip("the ciphers suite has not landed")
    raw = tiny(suite="ciphers", curriculum="ad", data={"natural_inputs": 3}, curriculum_options={"ad_split": "natural"})
    m, out = build(tmp_path, sandbox, raw)
    programs, examples, stages = load(out)
    assert m["counts"]["examples"]["natural"] == 3 * len(programs)
    natural = {(e["program_id"], e["input"]) for e in examples if e["distribution"] == "natural"}
    train = {(e["program_id"], e["input"]) for e in examples if e["distribution"] == "train"}
    recs = stages["stage1"]
    assert {programs[r["program_id"]]["group"] for r in recs} == {"without_io"}
    for r in recs:
        name = programs[r["program_id"]]["name"]
        inp = r["prompt"].split(name + "(", 1)[1].rsplit(")", 1)[0]
        assert (r["program_id"], inp) in natural and (r["program_id"], inp) not in train - natural
    assert _leaks(programs, examples, stages) == []


# ---------------------------------------------------------------- every suite


CRUXEVAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cruxeval" / "cruxeval-dev.jsonl"


def _suite_params() -> list:
    # the full corpus import runs 400 untrusted functions (~30 s): slow; the fast one takes a slice
    out: list = [s for s in sorted(SUITES) if s != "corpus"]
    if "corpus" in SUITES:
        out += ["corpus-slice", pytest.param("corpus", marks=pytest.mark.slow)]
    return out


@pytest.mark.parametrize("suite", _suite_params())
def test_every_suite_builds(tmp_path, sandbox, suite):
    raw = tiny(suite=suite)
    if suite.startswith("corpus"):
        if not CRUXEVAL.is_file():
            pytest.skip(f"{CRUXEVAL} is missing")
    if suite == "corpus-slice":
        path = tmp_path / "slice.jsonl"
        path.write_text("".join(CRUXEVAL.read_text(encoding="utf-8").splitlines(keepends=True)[:24]), encoding="utf-8")
        raw = tiny(suite="corpus", suite_options={"path": str(path)})
    m, out = build(tmp_path, sandbox, raw)
    programs, examples, stages = load(out)
    assert m["counts"]["programs"]["with_io"] == 4 and _leaks(programs, examples, stages) == []
    for e in examples:
        ast.literal_eval(e["output"])  # ground truth is a literal
    cot = [r for r in stages["stage1"] if _k(r) == "cot"]
    assert cot and all(prompts.ANSWER_MARKER in r["completion"] for r in cot)


# ---------------------------------------------------------------- pure parts


def test_split_groups_is_seeded_and_disjoint():
    ids = [f"p{i}" for i in range(12)]
    a = split_groups(ids, {"with_io": 4, "without_io": 3, "control": 3}, random.Random(0))
    assert a == split_groups(ids, {"with_io": 4, "without_io": 3, "control": 3}, random.Random(0))
    assert len(a) == 10 and sorted(a.values()).count("control") == 3


def test_inputs_compare_by_value_and_held_out_avoids_training():
    vals = iter(["1, 2", "1,2", "3, 4", "1 ,2", "5, 6"] * 10)
    got, short = sample_inputs(lambda r, s: next(vals), random.Random(0), {"train": 1, "test": 2})
    assert got["train"] == ["1, 2"] and got["test"] == ["3, 4", "5, 6"] and short == {}


def test_generic_trace_and_cap():
    events = [{"line": 2, "code": "y = x * 5", "changes": {"y": "20"}}, {"line": 3, "code": "return y % 11", "changes": {}}]
    assert generic_trace(events) == "y = x * 5   # y = 20\nreturn y % 11"
    assert cap_lines("a\nb\nc", 2) == "a\nb\n..."
    assert cap_lines("a\nb", 2) == "a\nb"


def test_a_suite_trace_renderer_that_raises_falls_back_to_the_generic_trace():
    def broken(input_text, events, output):
        raise KeyError("x")

    spec = ProgramSpec(Program("p", "s", "f", "f_1", "def f_1(x):\n    return x\n", "d"), lambda r, s: "1", broken)
    events = [{"line": 2, "code": "return x", "changes": {}}]
    assert render_trace(spec, "1", events, "1", 40) == "return x"


def test_trace_cap_applies_to_built_examples(tmp_path, sandbox):
    _, out = build(tmp_path, sandbox, tiny(data={"max_trace_lines": 1}, suite_options={"min_lines": 3, "max_lines": 3}))
    _, examples, _ = load(out)
    assert all(e["trace"].split("\n")[-1] == "..." and len(e["trace"].split("\n")) == 2 for e in examples)


# ---------------------------------------------------------------- the real tokenizer


@pytest.mark.slow  # loads the embedded model's tokenizer (converting the GGUF on a cold cache)
def test_prompts_end_on_a_clean_token_boundary_for_the_real_tokenizer(tmp_path, sandbox):
    from pbb.models import load_tokenizer

    tok = load_tokenizer("smollm2-135m")
    bad = []
    for suite in sorted(s for s in SUITES if s != "corpus"):
        _, out = build(tmp_path, sandbox, tiny(suite=suite), sub=suite)
        for r in load(out)[2]["stage1"]:
            if not r["prompt"]:
                continue
            p = tok(r["prompt"], add_special_tokens=False)["input_ids"]
            full = tok(r["prompt"] + r["completion"], add_special_tokens=False)["input_ids"]
            if full[: len(p)] != p:  # the loss mask would cut a token in two
                bad.append((suite, _k(r), r["prompt"], r["completion"][:20]))
    assert bad == []
