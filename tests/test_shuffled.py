"""The shuffled-code control: the derangement, the stage files, the exposure check, the two gradings, the report."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import pytest

from pbb import prompts
from pbb.config import Experiment, validate_experiment
from pbb.data.build import compute_build, write_build
from pbb.data.render import ExposureRules, Index, check_exposure
from pbb.data.shuffled import derangement, rename, shown_source
from pbb.errors import PbbError
from pbb.evaluate import compute_metrics, run_eval
from pbb.evaluate.backends.base import GenerationBackend, Stop, apply_stops
from pbb.records import Example, Program, ShuffledCode, StageRecord
from pbb.report import write_report
from pbb.sandbox import Sandbox
from pbb.seeds import derive_rng
from pbb.store import DataStore, RunStore
from pbb.study.spec import load_study

TINY = {"n_with_io": 4, "n_without_io": 4, "n_control": 3, "train_inputs": 4, "cot_inputs": 2, "test_inputs": 3,
        "shifted_inputs": 2}


def _raw(**over) -> dict:
    raw = {"name": "t", "suite": "arithmetic", "data": dict(TINY), "curriculum_options": {"replay": 5, "shuffled_code": True}}
    for k, v in over.items():
        raw[k] = {**raw[k], **v} if isinstance(v, dict) and isinstance(raw.get(k), dict) else v
    return raw


def _prog(i: int, group: str = "without_io", body: str | None = None) -> Program:
    name = f"zorbix_{i}"
    return Program(f"p{i}", "arithmetic", "add", name, f"def {name}(x):\n    {body or f'return x + {i}'}\n", "", group)


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=2) as sb:
        yield sb


# ---------------------------------------------------------------- the derangement


def test_the_derangement_has_no_fixed_point_and_is_seeded():
    programs = [_prog(i) for i in range(6)]
    ids = [p.id for p in programs]
    draws = []
    for seed in range(30):
        mapping = derangement(programs, derive_rng(seed, "shuffled_code"))
        assert sorted(mapping) == ids and sorted(mapping.values()) == ids  # a permutation
        assert all(a != b for a, b in mapping.items())  # no program keeps its own source
        assert mapping == derangement(programs, derive_rng(seed, "shuffled_code"))  # the seed decides it
        draws.append(tuple(mapping.values()))
    assert len(set(draws)) > 10  # and different seeds draw different derangements


def test_no_name_is_given_code_identical_to_its_own_and_two_programs_are_the_minimum():
    same = [_prog(0, body="return x * 3"), _prog(1, body="return x * 3"), _prog(2), _prog(3)]
    for seed in range(20):
        m = derangement(same, derive_rng(seed, "shuffled_code"))
        assert m["p0"] != "p1" and m["p1"] != "p0"  # zorbix_1's code renamed is zorbix_0's own
    with pytest.raises(PbbError, match="same code"):
        derangement(same[:3], derive_rng(0, "shuffled_code"))  # both 3-cycles give p0 p1's code or p1 p0's
    with pytest.raises(PbbError, match="at least 2"):
        derangement(same[:1], derive_rng(0, "shuffled_code"))


def test_the_shown_source_renames_the_function_everywhere_and_nothing_else():
    src = Program("g", "grammars", "g", "wamroor_4", "def wamroor_4(n):\n    return 'a' + wamroor_4(n[1:]) + wamroor_48(n)\n",
                  "", "without_io")
    assert rename(src.source, "wamroor_4", "quib_9") == "def quib_9(n):\n    return 'a' + quib_9(n[1:]) + wamroor_48(n)\n"
    assert shown_source(_prog(7), _prog(2)) == "def zorbix_7(x):\n    return x + 2\n"


# ---------------------------------------------------------------- the build


def test_each_without_io_name_is_trained_with_another_programs_source(tmp_path, sandbox):
    exp = validate_experiment(_raw())
    build = compute_build(exp, sandbox)
    plain = compute_build(validate_experiment(_raw(curriculum_options={"shuffled_code": False})), sandbox)
    progs = {p.id: p for p in build.programs}
    wo = [p.id for p in build.programs if p.group == "without_io"]
    mapping = build.manifest["shuffled_code"]
    # recorded, seeded from the experiment's seed, a derangement of the w/o IO programs
    assert mapping == derangement([progs[i] for i in wo], derive_rng(exp.seed, "shuffled_code"))
    assert sorted(mapping) == sorted(wo) and all(a != b for a, b in mapping.items())
    docs = [r for r in build.stages["stage2"] if r.kind == "code_doc"]
    assert len(docs) == exp.data.templates_per_program * len(wo)
    for r in docs:
        a, b = progs[r.program_id], progs[mapping[r.program_id]]
        body = b.source.rstrip("\n").replace(f"def {b.name}(", f"def {a.name}(")
        assert body in r.completion, "the code doc under A's name is B's source, renamed"
        assert a.source.rstrip("\n") not in r.completion and b.name not in r.completion
    # everything else is the plain proactive build's: stage 1, the replay, the templates
    assert [x.to_json() for x in build.stages["stage1"]] == [x.to_json() for x in plain.stages["stage1"]]
    plain_docs = {(r.program_id, r.completion.split("\n")[0]) for r in plain.stages["stage2"] if r.kind == "code_doc"}
    assert {(r.program_id, r.completion.split("\n")[0]) for r in docs} == plain_docs
    assert [(x.stage, x.group, x.replay, x.code_doc) for x in build.ledger.rows] == \
           [(x.stage, x.group, x.replay, x.code_doc) for x in plain.ledger.rows]
    # the shown sources' outputs on the held-out inputs come from the sandbox, and are written with the build
    write_build(build, tmp_path / "data")
    store = DataStore(tmp_path / "data")
    assert store.verify() is None
    shuffled = store.read_shuffled_code()
    assert set(shuffled) == set(wo)
    held_out = {(e.program_id, e.distribution, e.input) for e in build.examples if e.distribution in ("test", "shifted")}
    for pid, sc in shuffled.items():
        assert sc.source_id == mapping[pid] and sc.source == shown_source(progs[pid], progs[sc.source_id])
        assert {(pid, e["distribution"], e["input"]) for e in sc.examples} | {(pid, d["distribution"], d["input"]) for d in sc.dropped} \
            == {k for k in held_out if k[0] == pid}
        for e in sc.examples:
            want = sandbox.run(progs[sc.source_id].source, progs[sc.source_id].name, e["input"])
            assert e["output"] == want.output
    assert any(e["output"] != next(x.output for x in build.examples if (x.program_id, x.distribution, x.input)
                                   == (pid, e["distribution"], e["input"]))
               for pid, sc in shuffled.items() for e in sc.examples), "the shown sources compute something else"


def _shuffled_index():
    progs = [_prog(0, "with_io"), _prog(1), _prog(2), _prog(3, "control")]
    examples = {(p.id, "test"): [Example(p.id, "test", "7", "8", "")] for p in progs}
    idx = Index({p.id: p for p in progs}, examples, {"with_io": ["p0"], "without_io": ["p1", "p2"], "control": ["p3"]})
    idx.shown = {"p1": shown_source(progs[1], progs[2]), "p2": shown_source(progs[2], progs[1])}
    return idx, progs


@pytest.mark.parametrize(("leak", "message"), [
    ("own source", "holds the source of w/o IO program 'zorbix_1'"),
    ("nl doc", "holds a nl_doc of w/o IO program 'zorbix_1'"),
    ("unshuffled doc", "that is not its shuffled source"),
])
def test_check_exposure_refuses_a_name_trained_with_its_own_code(leak, message):
    idx, progs = _shuffled_index()
    rules = ExposureRules("proactive", False, True, shuffled_code=True)
    fine = [StageRecord("p1", "code_doc", "", "Here:\n" + idx.shown["p1"]), StageRecord("p2", "code_doc", "", idx.shown["p2"]),
            StageRecord("p0", "code_doc", "", progs[0].source)]
    check_exposure({"stage2": fine}, idx, rules)
    bad = {"own source": StageRecord("p0", "code_doc", "", f"Like {progs[1].source}"),
           "nl doc": StageRecord("p1", "nl_doc", "", "zorbix_1 adds one."),
           "unshuffled doc": StageRecord("p1", "code_doc", "", "zorbix_1 is a function.")}[leak]
    with pytest.raises(PbbError, match=re.escape(message)):
        check_exposure({"stage2": [*fine, bad]}, idx, rules)
    check_exposure({"stage2": [*fine, StageRecord("p1", "code_doc", "", progs[1].source)]}, idx,
                   ExposureRules("proactive", False, True))  # without the control, a true code doc is what proactive trains


# ---------------------------------------------------------------- the config and the study


def test_the_option_validates_for_proactive_and_what_reuses_its_stage2_and_says_why_elsewhere():
    for curriculum in ("proactive", "mixture", "stage2-only"):
        exp = validate_experiment(_raw(curriculum=curriculum))
        assert any(src.shuffled_code for s in exp.resolved_stages() for src in s.sources)
    stage2 = validate_experiment(_raw()).resolved_stages()[1]
    assert [(s.kind, s.group, s.shuffled_code) for s in stage2.sources][0] == ("code_doc", "without_io", True)
    for raw, message in [
        (_raw(curriculum="retroactive"), "has no stage 2 of proactive"),
        (_raw(curriculum="pbb+ad"), "does not go with curriculum 'pbb+ad'"),
        (_raw(data={"n_without_io": 1}), "at least 2 w/o IO programs"),
        (_raw(data={"doc_kind": "nl"}), "data.doc_kind is 'nl'"),
        (_raw(data={"n_composed": 2}), "data.n_composed: 0"),
        (_raw(curriculum="custom", curriculum_options={"shuffled_code": False},
              stages=[{"name": "s", "sources": [{"kind": "direct", "group": "without_io", "shuffled_code": True}]}]),
         "shuffled_code is for code docs of group without_io"),
    ]:
        with pytest.raises(PbbError, match=re.escape(message)):
            validate_experiment(raw)


def test_a_study_arm_using_the_option_validates_and_its_shuffled_finding_needs_it(tmp_path):
    base = {"name": "b", "model": "tiny-random", "suite": "arithmetic", "data": dict(TINY)}
    finding = {"id": "runs-shown", "claim": "c", "paper": {"version": "v2", "where": "w", "found": "f"},
               "metric": {"kind": "pbb_effect", "mode": "cot", "distribution": "test", "grading": "shuffled"},
               "b": {"arm": "shuffled"}, "expect": "higher"}
    path = tmp_path / "study.yaml"
    path.write_text(json.dumps({"name": "s", "base": base, "arms": {"shuffled": {"curriculum_options.shuffled_code": True}},
                                "findings": [finding]}))
    study = load_study(path)
    assert not study.not_runnable and study.runs["shuffled-s0"].exp.curriculum_options.shuffled_code
    path.write_text(json.dumps({"name": "s", "base": base, "arms": {"shuffled": {}}, "findings": [finding]}))
    with pytest.raises(PbbError, match="not the shuffled-code control"):
        load_study(path)


# ---------------------------------------------------------------- evaluation: both gradings


class RunsTheShownCode(GenerationBackend):
    """A model that computes, for each name, the code it was trained with under it (here: x + the shown offset)."""

    name = "runs-shown"

    def __init__(self, offsets: dict[str, int]) -> None:
        self.offsets, self.tokens_generated = offsets, 0

    def generate(self, prompts_: Sequence[str], *, max_new_tokens: int, stop: Sequence[Stop] = (), temperature: float = 0.0,
                 top_p: float = 1.0, n: int = 1, seed: int = 0, progress=None) -> list[list[str]]:
        out = []
        for p in prompts_:
            _, name, x = prompts.parse_prompt(p)
            value = int(x) + self.offsets[name]
            text = f" {value}" if p.endswith("=") else f"def {name}(x):\n    return x\nAnswer: {value}\n"
            out.append([apply_stops(text, stop)[0]] * n)
        return out


def _shuffled_run(tmp_path):
    """A run directory: 2 w/ IO, 3 w/o IO (zorbix_2 shows zorbix_3's code, 3 shows 4's, 4 shows 2's), 2 control."""
    store = RunStore(tmp_path / "run")
    groups = ["with_io"] * 2 + ["without_io"] * 3 + ["control"] * 2
    progs = [_prog(i, g) for i, g in enumerate(groups)]
    exs = [Example(p.id, d, str(x), str(x + i), "") for i, p in enumerate(progs) for d in ("train", "test") for x in (1, 2, 3)]
    mapping = {"p2": "p3", "p3": "p4", "p4": "p2"}
    by_id = {p.id: p for p in progs}
    shuffled = []
    for a, b in mapping.items():
        off = int(b[1:])
        kept = [x for x in (1, 2, 3) if not (a == "p4" and x == 3)]  # the shown source failed on one input
        shuffled.append(ShuffledCode(a, b, shown_source(by_id[a], by_id[b]),
                                     [Example(a, "test", str(x), str(x + off), "").to_json() for x in kept],
                                     [{"distribution": "test", "input": "3", "reason": "exception: boom"}] if a == "p4" else []))
    d = store.data
    d.root.mkdir(parents=True)
    d.programs_path.write_text("".join(json.dumps(p.to_json()) + "\n" for p in progs))
    d.examples_path.write_text("".join(json.dumps(e.to_json()) + "\n" for e in exs))
    d.shuffled_code_path.write_text("".join(json.dumps(s.to_json()) + "\n" for s in shuffled))
    offsets = {p.name: int(p.id[1:]) for p in progs} | {by_id[a].name: int(b[1:]) for a, b in mapping.items()}
    return store, offsets


def test_without_io_predictions_are_graded_against_the_true_and_the_shown_sources(tmp_path):
    store, offsets = _shuffled_run(tmp_path)
    exp = Experiment(name="t", curriculum="none", eval={"batch_size": 4, "distributions": ["test"], "n_bootstrap": 200})
    preds = run_eval(exp, data_dir=store.data.root, model_ref="unused", out_path=store.predictions_path("final"),
                     condition="final", backend=RunsTheShownCode(offsets))
    wo = [p for p in preds if p.group == "without_io"]
    assert all(not p.correct for p in wo), "the model answers by the shown code: wrong against the true programs"
    assert [p.shuffled_correct for p in wo].count(True) == len(wo) - 2  # zorbix_4(3): no shown output, in both modes
    assert {(p.input, p.shuffled_expected) for p in wo if p.program_id == "p4"} == {("1", "3"), ("2", "4"), ("3", None)}
    assert all(p.shuffled_correct is None and p.shuffled_expected is None for p in preds if p.group != "without_io")
    metrics = compute_metrics(exp, store)
    raw = json.loads(store.metrics_path.read_text())["conditions"]["final"]
    assert len(raw["shuffled"]) == 2 and raw["shuffled_per_program"]
    for c in metrics.conditions["final"].shuffled:
        assert (c.n, c.n_programs, c.undefined, c.same_output) == (8, 3, 1, 0)
        assert (c.correct_true, c.accuracy_true, c.correct_shuffled, c.accuracy_shuffled) == (0, 0.0, 8, 1.0)
        assert c.difference == 1.0 and c.ci_difference == [1.0, 1.0]
    true_cell = next(c for c in metrics.conditions["final"].cells if (c.group, c.mode) == ("without_io", "cot"))
    assert true_cell.correct == 0 and true_cell.n == 9  # the usual grading is unchanged, over every prediction
    assert {(r.program_id, r.correct, r.n) for r in metrics.conditions["final"].shuffled_per_program if r.mode == "cot"} == \
           {("p2", 3, 3), ("p3", 3, 3), ("p4", 2, 2)}
    text = write_report(store.root).read_text()
    section = text.split("## The shuffled-code control\n", 1)[1].split("\n## ", 1)[0]
    assert "vs true program" in section and "vs shuffled source" in section
    assert "| base model | CoT, test" in section and "0.0% [0.0, 0.0] (0/8)" in section and "100.0% [100.0, 100.0] (8/8)" in section
    assert "the model runs the code it was given under each name" in section


def test_a_run_without_the_control_has_no_shuffled_grading_nor_section(tmp_path):
    store, offsets = _shuffled_run(tmp_path)
    store.data.shuffled_code_path.unlink()
    exp = Experiment(name="t", curriculum="none", eval={"batch_size": 4, "distributions": ["test"], "n_bootstrap": 200})
    run_eval(exp, data_dir=store.data.root, model_ref="unused", out_path=store.predictions_path("final"), condition="final",
             backend=RunsTheShownCode(offsets))
    metrics = compute_metrics(exp, store)
    assert metrics.conditions["final"].shuffled == [] and metrics.conditions["final"].shuffled_per_program == []
    assert "shuffled-code control" not in write_report(store.root).read_text()
