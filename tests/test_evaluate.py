"""run_eval (order, resume after a kill, garbage models), stop rules, and the transformers backend."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

import pytest

from pbb import prompts
from pbb.config import Experiment
from pbb.errors import PbbError
from pbb.evaluate import compute_metrics
from pbb.evaluate import run_eval as _run_eval
from pbb.store import DataStore, RunStore


def run_eval(*args, **kwargs) -> list[dict]:
    """The predictions as they are written to predictions-<condition>.jsonl."""
    return [r.to_json() for r in _run_eval(*args, **kwargs)]

from pbb.evaluate.backends import COT_STOP, GenerationBackend, apply_stops, stops_for_mode
from pbb.evaluate.backends.base import Stop
from pbb.programs.base import Example, Program

# ---------------------------------------------------------------- stop rules


@pytest.mark.parametrize(
    ("text", "stop", "want"),
    [
        (" 11\nzorbix(3) = 4", ["\n"], (" 11", True)),
        (" 11", ["\n"], (" 11", False)),
        ("x = 1\nAnswer: 5\nmore", [COT_STOP], ("x = 1\nAnswer: 5", True)),
        ("x = 1\nAnswer: 5", [COT_STOP], ("x = 1\nAnswer: 5", False)),  # the answer line may still grow
        ("a STOP b\nc", ["\n", "STOP"], ("a ", True)),  # earliest rule wins
        ("abc", [re.compile("b")], ("ab", True)),
    ],
)
def test_apply_stops(text: str, stop: list[Stop], want: tuple[str, bool]) -> None:
    assert apply_stops(text, stop) == want


def test_cot_stop_keeps_what_grading_reads() -> None:
    text, hit = apply_stops("def f(x):\n    return x\nAnswer: [1, 2]\nAnswer: 3\n", stops_for_mode("cot"))
    assert hit and prompts.extract_answer("cot", text) == "[1, 2]"


# ---------------------------------------------------------------- run_eval with a scripted backend


class ScriptedBackend(GenerationBackend):
    """Answers from a function of the prompt; can die after some calls, like a killed process."""

    name = "scripted"

    def __init__(self, answer: Callable[[str, int], str], die_after: int | None = None) -> None:
        self.answer, self.die_after, self.calls, self.prompts_seen = answer, die_after, 0, 0
        self.tokens_generated = 0

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, stop: Sequence[Stop] = (), temperature: float = 0.0,
                 top_p: float = 1.0, n: int = 1, seed: int = 0, progress=None) -> list[list[str]]:
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.prompts_seen += len(prompts)
        return [[apply_stops(self.answer(p, s), stop)[0] for s in range(n)] for p in prompts]


def _oracle(outputs: dict[str, str]) -> Callable[[str, int], str]:
    """Correct for programs whose name is even-numbered, wrong otherwise; CoT in the trained format."""

    def answer(prompt: str, sample: int) -> str:
        m = list(re.finditer(r"(zorbix_(\d+))\((.*)\)", prompt))[-1]  # the question, not the shown source
        assert m
        out = outputs[f"{m.group(1)}|{m.group(3)}"] if int(m.group(2)) % 2 == 0 else "'nope'"
        if prompt.endswith("="):
            return f" {out}\nzorbix_0(1) = 99"
        return f"def {m.group(1)}(x):\n    return x\nAnswer: {out}\ntrailing"

    return answer


def _data(tmp_path, groups=("with_io", "without_io", "control"), per_group: int = 2, inputs: int = 3):
    d = tmp_path / "data"
    d.mkdir()
    progs, exs, outputs = [], [], {}
    i = 0
    for g in groups:
        for _ in range(per_group):
            name = f"zorbix_{i}"
            progs.append(Program(id=f"arith-{i:04d}", suite="arithmetic", family="add", name=name,
                                 source=f"def {name}(x):\n    return x + {i}\n", description="", group=g))
            for split in ("train", "test", "shifted"):
                for j in range(inputs):
                    x = j + (100 if split == "shifted" else 0)
                    exs.append(Example(f"arith-{i:04d}", split, str(x), str(x + i), ""))
                    outputs[f"{name}|{x}"] = str(x + i)
            i += 1
    (d / "programs.jsonl").write_text("".join(json.dumps(p.to_json()) + "\n" for p in progs))
    (d / "examples.jsonl").write_text("".join(json.dumps(e.to_json()) + "\n" for e in exs))
    return d, outputs


def _exp(**ev) -> Experiment:
    return Experiment(name="t", curriculum="none", eval={"batch_size": 2, **ev})


def test_run_eval_records_order_and_grading(tmp_path) -> None:
    data, outputs = _data(tmp_path)
    out = tmp_path / "eval" / "predictions-final.jsonl"
    recs = run_eval(_exp(max_inputs_per_program=2), data_dir=data, model_ref="unused", out_path=out, condition="final",
                    backend=ScriptedBackend(_oracle(outputs)))
    assert [json.loads(line) for line in out.read_text().splitlines()] == recs
    # 2 modes x 3 groups x 2 programs x 2 distributions x 2 inputs (capped from 3)
    assert len(recs) == 48
    assert set(recs[0]) == {"program_id", "group", "mode", "distribution", "input", "prompt", "completion", "answer",
                            "expected", "parsed", "correct", "sample", "capped", "shuffled_expected", "shuffled_correct"}
    assert [r["mode"] for r in recs] == ["direct"] * 24 + ["cot"] * 24
    assert [r["group"] for r in recs[:24]] == ["with_io"] * 8 + ["without_io"] * 8 + ["control"] * 8
    assert [r["input"] for r in recs[:4]] == ["0", "1", "100", "101"]
    r0 = recs[0]
    assert r0["prompt"] == "zorbix_0(0) =" and r0["completion"] == " 0" and r0["correct"] and r0["parsed"]
    cot = recs[24]
    assert cot["prompt"] == "Compute zorbix_0(0) step by step.\n" and cot["completion"].endswith("Answer: 0")
    assert all(r["correct"] == (int(r["program_id"][-1]) % 2 == 0) for r in recs)
    assert all(r["parsed"] for r in recs)


TRICKY = [
    ("cot", "x = 0\nAnswer: 0\nAnswer: 7"),  # two answer lines: evaluation stops after the first
    ("cot", "x = 0\nAnswer: 7\nAnswer: 0"),
    ("cot", "x = 0\nAnswer: 0\nthen some text after the answer line"),
    ("cot", "Answer: 7 Answer: 0"),  # two markers on one line: the answer line reads '7 Answer: 0'
    ("cot", "Answer: 0"),  # ended by EOS, no newline
    ("cot", "a trace and no marker, 0"),
    ("direct", " 0\nzorbix_0(1) = 7"),
    ("direct", "\n0"),  # direct generation stops at the first newline: no answer
    ("direct", " 0 and text"),
    ("direct", " zorbix!"),
]


@pytest.mark.parametrize(("mode", "completion"), TRICKY)
def test_grpo_reward_is_the_evaluation_verdict(tmp_path, mode, completion) -> None:
    """The reward of a rollout's raw text (it ran past any stop) equals what evaluation grades for the same generation."""
    from pbb.train.grpo import exact_match_reward

    data, _ = _data(tmp_path, groups=("with_io",), per_group=1, inputs=1)
    [pred] = run_eval(_exp(modes=[mode], groups=["with_io"], distributions=["test"]), data_dir=data, model_ref="x",
                      out_path=tmp_path / "p.jsonl", condition="final", backend=ScriptedBackend(lambda p, s: completion))
    programs = {p.id: p for p in DataStore(data).read_programs()}
    [reward] = exact_match_reward(programs)(prompts=[pred["prompt"]], completions=[completion], mode=[mode],
                                            expected=[pred["expected"]], program_id=[pred["program_id"]])
    assert pred["expected"] == "0"
    assert reward == float(pred["correct"]), f"reward {reward} but evaluation graded {pred['completion']!r} {pred['correct']}"


def test_tricky_completions_cover_both_verdicts() -> None:
    verdicts = {prompts.grade(None, m, c, "0").correct for m, c in TRICKY}
    assert verdicts == {True, False}


def test_in_context_shows_the_source(tmp_path) -> None:
    data, outputs = _data(tmp_path, groups=("without_io",), per_group=1, inputs=1)
    recs = run_eval(_exp(groups=["without_io"], modes=["direct"], distributions=["test"]), data_dir=data,
                    model_ref="x", out_path=tmp_path / "p.jsonl", condition="in_context", in_context=True,
                    backend=ScriptedBackend(_oracle(outputs)))
    # the baseline's one-shot example comes first, laid out like the question: source, then the call and its answer
    assert recs[0]["prompt"] == ("def wembly_5(x):\n    y = x + 3\n    return y * 2\n\nwembly_5(4) = 14\n\n"
                                 "def zorbix_0(x):\n    return x + 0\n\nzorbix_0(0) =")
    assert recs[0]["parsed"] and recs[0]["correct"]


def test_baselines_ask_after_a_one_shot_example_in_the_graded_format(tmp_path) -> None:
    """zero_shot and in_context prompts start with ONE_SHOT asked and answered exactly as graded; trained conditions do not."""
    ex = prompts.ONE_SHOT
    data, outputs = _data(tmp_path, per_group=1, inputs=1)
    exp = _exp(distributions=["test"])
    recs = {c: run_eval(exp, data_dir=data, model_ref="x", out_path=tmp_path / f"{c}.jsonl", condition=c,
                        in_context=c == "in_context", backend=ScriptedBackend(_oracle(outputs)))
            for c in ("final", "zero_shot", "in_context")}
    cot_demo = "Compute wembly_5(4) step by step.\ndef wembly_5(x):\n    y = x + 3\n    return y * 2\ny = x + 3   # y = 7\nreturn y * 2\nAnswer: 14"
    for final, zero, ic in zip(*recs.values()):
        name = final["prompt"].split("(")[-2].split()[-1]
        plain = prompts.prompt_for(final["mode"], name, final["input"])
        assert final["prompt"] == plain  # a trained model is asked as it was trained
        demo = "wembly_5(4) = 14" if final["mode"] == "direct" else cot_demo
        assert zero["prompt"] == f"{demo}\n\n{plain}"
        assert ic["prompt"].startswith(f"{ex.source}\n{demo}\n\n") and ic["prompt"].endswith(f"\n\n{plain}")
    # the example is a question of the graded format, and its answer is graded right by the grader itself
    for mode in ("direct", "cot"):
        q = prompts.prompt_for(mode, ex.name, ex.input)
        assert prompts.parse_prompt(q) == (mode, ex.name, ex.input)
        completion = prompts.completion_for(mode, ex.output, source=ex.source, trace=ex.trace)
        assert prompts.grade(None, mode, completion, ex.output).correct
    # a base model that follows the example's format gives answers that parse (the old prompts' CoT: 100% unparsed)
    assert all(r["parsed"] for rs in recs.values() for r in rs)


def test_the_one_shot_example_is_no_program_of_any_build(tmp_path) -> None:
    ex = prompts.ONE_SHOT
    assert not re.fullmatch(r"[a-z]+_\d\d", ex.name)  # invented names end in two digits (pbb.programs.names)
    data, outputs = _data(tmp_path, per_group=1, inputs=1)
    progs = (data / "programs.jsonl").read_text().replace("zorbix_1", ex.name)
    (data / "programs.jsonl").write_text(progs)
    with pytest.raises(PbbError, match="is the baselines' one-shot example wembly_5"):
        run_eval(_exp(), data_dir=data, model_ref="x", out_path=tmp_path / "z.jsonl", condition="zero_shot",
                 backend=ScriptedBackend(lambda p, s: ""))
    run_eval(_exp(), data_dir=data, model_ref="x", out_path=tmp_path / "f.jsonl", condition="final",
             backend=ScriptedBackend(lambda p, s: ""))  # a trained model's evaluation shows no example: no clash


def test_the_one_shot_example_is_what_its_source_computes() -> None:
    from pbb.data.traces import generic_trace
    from pbb.sandbox import Sandbox

    ex = prompts.ONE_SHOT
    with Sandbox(workers=1) as sb:
        r = sb.run(ex.source, ex.name, ex.input, trace=True)
    assert r.ok and r.output == ex.output and generic_trace(r.trace) == ex.trace


def test_samples_are_one_line_each(tmp_path) -> None:
    data, outputs = _data(tmp_path, groups=("without_io",), per_group=1, inputs=1)
    recs = run_eval(_exp(groups=["without_io"], modes=["direct"], distributions=["test"], n_samples=3, temperature=1.0),
                    data_dir=data, model_ref="x", out_path=tmp_path / "p.jsonl", condition="l",
                    backend=ScriptedBackend(_oracle(outputs)))
    assert [r["sample"] for r in recs] == [0, 1, 2]


@pytest.mark.parametrize("die_after", [1, 3, 5])
@pytest.mark.parametrize("truncate", [False, True])
def test_killed_eval_resumes_to_identical_file(tmp_path, die_after: int, truncate: bool) -> None:
    data, outputs = _data(tmp_path)
    exp = _exp()
    full = tmp_path / "full.jsonl"
    run_eval(exp, data_dir=data, model_ref="x", out_path=full, condition="l", backend=ScriptedBackend(_oracle(outputs)))
    part = tmp_path / "part.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_eval(exp, data_dir=data, model_ref="x", out_path=part, condition="l",
                 backend=ScriptedBackend(_oracle(outputs), die_after=die_after))
    written = part.read_bytes()
    assert 0 < len(written) < len(full.read_bytes())
    if truncate:  # killed in the middle of writing: a partial chunk plus half a line
        lines = written.splitlines(keepends=True)
        part.write_bytes(written + lines[0] + lines[1][:17])
    again = ScriptedBackend(_oracle(outputs))
    recs = run_eval(exp, data_dir=data, model_ref="x", out_path=part, condition="l", backend=again)
    assert part.read_bytes() == full.read_bytes()
    assert len(recs) == len(full.read_text().splitlines())
    total_prompts = len(recs)
    assert again.prompts_seen < total_prompts  # finished chunks were not generated again
    # a finished evaluation is not regenerated at all
    idle = ScriptedBackend(_oracle(outputs))
    run_eval(exp, data_dir=data, model_ref="x", out_path=part, condition="l", backend=idle)
    assert idle.calls == 0


def test_predictions_of_another_evaluation_are_refused(tmp_path) -> None:
    data, outputs = _data(tmp_path)
    out = tmp_path / "p.jsonl"
    run_eval(_exp(modes=["cot"]), data_dir=data, model_ref="x", out_path=out, condition="l",
             backend=ScriptedBackend(_oracle(outputs)))
    with pytest.raises(PbbError, match="different evaluation"):
        run_eval(_exp(modes=["direct"]), data_dir=data, model_ref="x", out_path=out, condition="l",
                 backend=ScriptedBackend(_oracle(outputs)))


@pytest.mark.parametrize("junk", ["", "\n\n", " zz(", "Answer:", "\x00\ufffd garbage ]]]"])
def test_garbage_model_is_graded_wrong_and_reported(tmp_path, capsys, junk: str) -> None:
    data, _ = _data(tmp_path, per_group=1, inputs=1)
    out = tmp_path / "eval" / "predictions-zero_shot.jsonl"
    recs = run_eval(_exp(), data_dir=data, model_ref="x", out_path=out, condition="zero_shot",
                    backend=ScriptedBackend(lambda p, s: junk))
    assert recs and all(not r["parsed"] and not r["correct"] for r in recs)
    assert len(out.read_text().splitlines()) == len(recs)
    err = capsys.readouterr().err
    assert "no completion had a parseable answer" in err
    assert err.count(f"eval zero_shot: {len(recs)}/{len(recs)}") == 1  # progress, logged once when not a terminal
    m = compute_metrics(_exp(), RunStore(tmp_path)).to_json()  # metrics still work on an all-wrong condition
    assert all(c["accuracy"] == 0 and c["unparsed"] == c["n"] for c in m["conditions"]["zero_shot"]["cells"])


def test_empty_group_is_reported_not_fatal(tmp_path, capsys) -> None:
    data, outputs = _data(tmp_path, groups=("without_io", "with_io"), per_group=1, inputs=1)
    recs = run_eval(_exp(), data_dir=data, model_ref="x", out_path=tmp_path / "p.jsonl", condition="l",
                    backend=ScriptedBackend(_oracle(outputs)))
    assert recs and {r["group"] for r in recs} == {"with_io", "without_io"}
    assert "group 'control' has no programs" in capsys.readouterr().err


def test_nothing_to_evaluate_writes_an_empty_file(tmp_path, capsys) -> None:
    data, outputs = _data(tmp_path, groups=("with_io",), per_group=1, inputs=1)
    out = tmp_path / "p.jsonl"
    recs = run_eval(_exp(groups=["control"]), data_dir=data, model_ref="x", out_path=out, condition="l",
                    backend=ScriptedBackend(_oracle(outputs)))
    assert recs == [] and out.read_text() == ""
    assert "nothing to evaluate" in capsys.readouterr().err


def test_missing_data_is_a_user_error(tmp_path) -> None:
    with pytest.raises(PbbError, match="programs.jsonl: no such file"):
        run_eval(_exp(), data_dir=tmp_path, model_ref="x", out_path=tmp_path / "p.jsonl", condition="l",
                 backend=ScriptedBackend(lambda p, s: ""))


# ---------------------------------------------------------------- the transformers backend (tiny random model)


@pytest.fixture(scope="module")
def tiny():
    from pbb.models import load_model

    return load_model("tiny-random")


PROMPTS = [f"zorbix_{i}({i * 7}, 'ab') =" if i % 2 else f"Compute qux_{i}([{i}, 2]) step by step.\n" for i in range(6)]


def test_batched_greedy_equals_one_prompt_at_a_time(tiny) -> None:
    from pbb.evaluate.backends.transformers_backend import TransformersBackend

    model, tok = tiny
    be = TransformersBackend(model=model, tokenizer=tok, batch_size=4)
    got = be.generate(PROMPTS, max_new_tokens=10)
    for p, (g,) in zip(PROMPTS, got):
        ids = tok(p, return_tensors="pt")
        ref = model.generate(**ids, max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id)
        assert g == tok.decode(ref[0, ids.input_ids.shape[1]:], skip_special_tokens=True)
    assert be.tokens_generated > 0


def test_stops_and_limits(tiny) -> None:
    from pbb.evaluate.backends.transformers_backend import TransformersBackend

    model, tok = tiny
    be = TransformersBackend(model=model, tokenizer=tok, batch_size=3)
    free = be.generate(PROMPTS, max_new_tokens=16)
    cut = be.generate(PROMPTS, max_new_tokens=16, stop=["\n"])
    for (f,), (c,) in zip(free, cut):
        assert "\n" not in c and f.startswith(c)
        assert c == f.split("\n", 1)[0]
    short = be.generate(PROMPTS, max_new_tokens=2)
    assert all(len(tok(s[0], add_special_tokens=False).input_ids) <= 2 for s in short)


def test_sampling_is_seeded_per_prompt_not_per_batch(tiny) -> None:
    from pbb.evaluate.backends.transformers_backend import TransformersBackend

    model, tok = tiny
    be = TransformersBackend(model=model, tokenizer=tok, batch_size=4)
    few = PROMPTS[:4]
    a = be.generate(few, max_new_tokens=4, temperature=1.0, top_p=0.9, n=2, seed=5)
    b = be.generate(few[::-1], max_new_tokens=4, temperature=1.0, top_p=0.9, n=2, seed=5)
    assert a == b[::-1]
    assert len({s for row in a for s in row}) > len(few)  # samples differ from each other
    assert a != be.generate(few, max_new_tokens=4, temperature=1.0, n=2, seed=6)


def test_run_eval_end_to_end_with_tiny_model(tmp_path, tiny) -> None:
    from pbb.evaluate.backends.transformers_backend import TransformersBackend

    model, tok = tiny
    data, _ = _data(tmp_path, per_group=1, inputs=2)
    exp = _exp(max_new_tokens_cot=16, max_new_tokens_direct=6, distributions=["test"])
    be = TransformersBackend(model=model, tokenizer=tok, batch_size=2)
    out = tmp_path / "eval" / "predictions-final.jsonl"
    recs = run_eval(exp, data_dir=data, model_ref="tiny-random", out_path=out, condition="final", backend=be)
    assert len(recs) == 2 * 3 * 2
    assert all("\n" not in r["completion"] for r in recs if r["mode"] == "direct")
    m = compute_metrics(exp, RunStore(tmp_path)).to_json()
    assert {c["group"] for c in m["conditions"]["final"]["cells"]} == {"with_io", "without_io", "control"}


# ---------------------------------------------------------------- CRUXEval-O (corpus_eval)

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

from pbb.evaluate.corpus_eval import eval_corpus, extract, grade_completion, make_prompt  # noqa: E402

_REPO = Path(__file__).resolve().parents[1]
_CRUX_CANDIDATES = [_REPO.parent / "shared/data/cruxeval/cruxeval-dev.jsonl", Path("/work/shared/data/cruxeval/cruxeval-dev.jsonl")]


@pytest.fixture(scope="module")
def crux() -> list[dict]:
    for p in _CRUX_CANDIDATES:
        if p.exists():
            return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    pytest.skip(f"CRUXEval dev set not found at {' or '.join(map(str, _CRUX_CANDIDATES))}")


def _alt_repr(v) -> str:
    """The same value written differently: double quotes, other spacing."""
    if isinstance(v, str):
        return json.dumps(v) if "\\" not in v and all(ord(c) < 0xD800 for c in v) else repr(v)
    if isinstance(v, list):
        return "[ " + " ,".join(_alt_repr(x) for x in v) + " ]"
    if isinstance(v, tuple):
        return "(" + ",".join(_alt_repr(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, dict):
        return "{" + ",  ".join(f"{_alt_repr(k)} :{_alt_repr(x)}" for k, x in v.items()) + "}"
    return repr(v)


def _perturb(text: str) -> str:
    """A nearby but different literal: bump the first digit, else change a letter, else wrap it."""
    for i, ch in enumerate(text):
        if ch.isdigit():
            return text[:i] + str((int(ch) + 1) % 10) + text[i + 1 :]
    for i, ch in enumerate(text):
        if ch.isalpha() and text[:i].count("'") % 2 == 1:
            return text[:i] + ("b" if ch != "b" else "c") + text[i + 1 :]
    return f"[{text}]"


def test_cruxeval_true_outputs_grade_correct(crux) -> None:
    assert len(crux) == 400
    for r in crux:
        assert grade_completion("direct", f" {r['output']}\n[/ANSWER]", r["output"]).correct, r["id"]
        assert grade_completion("cot", f"1. trace\nAnswer: {r['output']}", r["output"]).correct, r["id"]


def test_cruxeval_quote_and_space_variants_grade_correct(crux) -> None:
    changed = 0
    for r in crux:
        alt = _alt_repr(ast.literal_eval(r["output"]))
        changed += alt != r["output"]
        assert grade_completion("direct", f" {alt}", r["output"]).correct, (r["id"], alt)
    assert changed > 200  # the variants really differ in text


def test_cruxeval_perturbed_outputs_grade_wrong(crux) -> None:
    for r in crux:
        bad = _perturb(r["output"])
        try:
            same = ast.literal_eval(bad) == ast.literal_eval(r["output"])
        except (ValueError, SyntaxError):
            same = False
        if same:  # pragma: no cover - would be a bug in _perturb, not the grader
            continue
        assert not grade_completion("direct", f" {bad}", r["output"]).correct, (r["id"], bad)


def test_cruxeval_answer_extraction() -> None:
    assert extract("direct", ' "x9ja"\n[/ANSWER]') == '"x9ja"'
    assert extract("direct", ' 17 [/ANSWER]') == "17"
    assert extract("direct", ' assert f(17) == 17') == "17"
    # an input holding `==` no longer splits the answer at the wrong place
    assert extract("direct", " assert f('a==b') == 'a'", "'a==b'") == "'a'"
    assert extract("cot", "1. s is 'hi'\nAnswer: 'bhihia'") == "'bhihia'"
    p = make_prompt("def f(x):\n    return x\n", "3", "direct")
    assert p.endswith("[PYTHON]\ndef f(x):\n    return x\nassert f(3) == ??\n[/PYTHON]\n[ANSWER]\nassert f(3) ==")


def _crux_file(tmp_path, n: int = 10) -> Path:
    p = tmp_path / "crux.jsonl"
    p.write_text("".join(json.dumps({"id": f"s{i}", "code": f"def f(x):\n    return x + {i}", "input": str(i),
                                     "output": str(2 * i)}) + "\n" for i in range(n)))
    return p


def _crux_oracle(prompt: str, sample: int) -> str:
    m = list(re.finditer(r"return x \+ (\d+)", prompt))[-1]
    i = int(m.group(1))
    return f" {2 * i}\n[/ANSWER]" if i % 2 == 0 else " 'no'"


def test_eval_corpus_end_to_end_and_resume(tmp_path) -> None:
    src = _crux_file(tmp_path)
    m = eval_corpus(src, model="x", mode="direct", out_dir=tmp_path / "a", batch_size=1, protocol="pbb",
                    backend=ScriptedBackend(_crux_oracle))
    assert (m["pass@1"], m["n"], m["correct"], m["unparsed"]) == (0.5, 10, 5, 0)
    assert m["ci"][0] < 0.5 < m["ci"][1]
    assert json.loads((tmp_path / "a" / "metrics.json").read_text()) == m
    preds = [json.loads(line) for line in (tmp_path / "a" / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == [f"s{i}" for i in range(10)]
    assert {"id", "completion", "answer", "expected", "correct"} <= set(preds[0])
    # killed after two chunks (4 records each), then resumed: same predictions
    with pytest.raises(KeyboardInterrupt):
        eval_corpus(src, model="x", mode="direct", out_dir=tmp_path / "b", batch_size=1, protocol="pbb",
                    backend=ScriptedBackend(_crux_oracle, die_after=2))
    again = ScriptedBackend(_crux_oracle)
    m2 = eval_corpus(src, model="x", mode="direct", out_dir=tmp_path / "b", batch_size=1, protocol="pbb", backend=again)
    assert again.prompts_seen == 2 and m2["pass@1"] == 0.5
    assert (tmp_path / "b" / "predictions.jsonl").read_text() == (tmp_path / "a" / "predictions.jsonl").read_text()


@pytest.mark.parametrize(("line", "msg"), [("{not json", "not valid JSON"), ('{"code": "x", "input": "1"}', "'output'"),
                                           ("[1, 2]", "JSON object")])
def test_eval_corpus_bad_lines_are_user_errors(tmp_path, line: str, msg: str) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(line + "\n")
    with pytest.raises(PbbError, match=msg):
        eval_corpus(p, model="x", mode="direct", out_dir=tmp_path / "o", backend=ScriptedBackend(_crux_oracle))


@pytest.mark.slow
def test_cruxeval_with_the_embedded_model(tmp_path, crux) -> None:
    """The real model through the real backend: 8 records, pbb's direct prompt (ends on `==`)."""
    src = tmp_path / "crux8.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in crux[:8]))
    m = eval_corpus(src, model="smollm2-135m", mode="direct", out_dir=tmp_path / "o", batch_size=8, protocol="pbb")
    assert m["n"] == 8 and 0 <= m["ci"][0] <= m["pass@1"] <= m["ci"][1] <= 1
    assert m["generation"]["new_tokens"] > 0
    preds = [json.loads(line) for line in (tmp_path / "o" / "predictions.jsonl").read_text().splitlines()]
    assert all("\n" not in p["completion"] and "[/ANSWER]" not in p["completion"] for p in preds)
    assert any(p["parsed"] for p in preds)  # the model does answer with literals


def test_corrupt_predictions_file_is_a_user_error(tmp_path) -> None:
    data, outputs = _data(tmp_path, per_group=1, inputs=1)
    out = tmp_path / "p.jsonl"
    out.write_text('{"a": 1}\n{broken\n{"b": 2}\n')
    with pytest.raises(PbbError, match="corrupt"):
        run_eval(_exp(), data_dir=data, model_ref="x", out_path=out, condition="l", backend=ScriptedBackend(_oracle(outputs)))
