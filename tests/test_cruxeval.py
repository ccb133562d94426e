"""CRUXEval's output-prediction protocol: prompts, stop words, answer extraction, sampling and pass@k."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pbb.errors import PbbError
from pbb.evaluate import cruxeval
from pbb.evaluate.backends import GenerationBackend, apply_stops
from pbb.evaluate.backends.base import Stop
from pbb.evaluate.corpus_eval import PROTOCOLS, eval_corpus
from pbb.evaluate.metrics import pass_at_k

# ---------------------------------------------------------------- prompts


def _lm_eval_task(name: str) -> dict:
    """lm-evaluation-harness's own copy of CRUXEval's task (its YAML, `!function` tags ignored)."""
    lm_eval = pytest.importorskip("lm_eval")
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    path = Path(lm_eval.__file__).parent / "tasks" / "cruxeval" / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"this lm-eval has no {path.name}")
    return yaml.load(path.read_text(), Loader=Loader)


def _jinja(template: str, **fields: str) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: fields[m.group(1)], template)


def test_cot_prompt_is_the_one_lm_eval_also_copied_from_cruxeval() -> None:
    """Two independent copies of CRUXEval's `make_cot_output_prompt` give the same text."""
    task = _lm_eval_task("cruxeval_output_cot")
    code, inp = "def f(x):\n    return x + 1", "3"
    theirs = task["description"] + _jinja(task["doc_to_text"], code=code, input=inp)
    assert cruxeval.make_prompt(code, inp, "cot") == theirs


def test_direct_prompt_instruction_and_shape() -> None:
    task = _lm_eval_task("cruxeval_output")
    p = cruxeval.make_prompt("def f(x):\n    return x", "'a', 2", "direct")
    assert p.split("\n\n", 1)[0] == task["description"].strip()
    # the model is asked for the whole assertion, after an open [ANSWER] tag
    assert p.endswith("[PYTHON]\ndef f(x):\n    return x\nassert f('a', 2) == ??\n[/PYTHON]\n[ANSWER]\n")
    assert p.count("[ANSWER]\nassert f(") == 2  # the two shots
    assert cruxeval.STOP_WORDS["direct"] == ["[/ANSWER]"] == task["generation_kwargs"]["until"][:1]


def test_phind_prompt_ends_on_the_comparison_and_stops_at_done() -> None:
    p = cruxeval.make_prompt("def f(x):\n    return x", "1", "phind")
    assert p.endswith("def f(x):\n    return x\nassert f(1) ==")
    assert 'assert f("x9j") == "x9ja" # done' in p
    assert cruxeval.STOP_WORDS["phind"] == ["# done"]


def test_code_braces_and_backslashes_go_in_untouched() -> None:
    code = "def f(d):\n    return '{}{x}\\n'.format(1, x=d)"
    assert f"\n{code}\nassert f({{'a': 1}}) == ??\n" in cruxeval.make_prompt(code, "{'a': 1}", "direct")


def test_protocol_defaults_are_the_leaderboards() -> None:
    p = PROTOCOLS["cruxeval"]
    assert (p.n_samples, p.temperature, p.top_p) == (10, 0.2, 0.95)
    assert cruxeval.PASS_AT == (1, 5)


# ---------------------------------------------------------------- answer extraction


@pytest.mark.parametrize(
    ("completion", "mode", "inp", "want"),
    [
        ("assert f(17) == 17\n", "direct", "17", "17"),
        ('assert f("x9j") == "x9ja"\n', "direct", '"x9j"', '"x9ja"'),
        # `==` inside the input or the output: CRUXEval's split on the first `==` would break
        ("assert f('a==b', 1) == 'a==b1'\n", "direct", "'a==b', 1", "'a==b1'"),
        ("assert f([1, 2]) == [x == 1 for x in 'ab']\n", "direct", "[1, 2]", "[x == 1 for x in 'ab']"),
        ("assert f(1) == 'x == y'\n", "direct", "1", "'x == y'"),
        # a multi-line literal, and junk after the statement
        ("assert f(1) == [1,\n    2]\n[PYTHON]\ndef g", "direct", "1", "[1,\n    2]"),
        ("assert f(1) == (1, 2)  # a comment\n", "direct", "1", "(1, 2)"),
        ("assert 'x' == f(1)\n", "direct", "1", "'x'"),
        ("'a'", "direct", "1", "'a'"),  # already post-processed (CRUXEval's generations files)
        ("'=='", "direct", "1", "'=='"),
        (" 17 ", "phind", "17", "17"),
        ("assert f(1) == 'ok'[/ANSWER]", "direct", "1", "'ok'"),
        # CoT: the block after the [ANSWER] tag that opens a line, not one quoted in the thought
        ("The input is '[ANSWER]'.\n[/THOUGHT]\n[ANSWER]\nassert f('[ANSWER]') == 'ok'\n", "cot", "'[ANSWER]'", "'ok'"),
        ("Let's see: f(1) == 2 at first.\n[/THOUGHT]\n[ANSWER]\nassert f(1) == 3\n", "cot", "1", "3"),
        ("s becomes 'hihi' and f('hi') == 'bhihia'", "cot", "'hi'", None),  # no tags: no answer
        ("", "direct", "1", None),
    ],
)
def test_extract_answer(completion: str, mode: str, inp: str, want: str | None) -> None:
    assert cruxeval.extract_answer(completion, mode, inp) == want


def test_unparseable_assert_falls_back_to_the_call_text() -> None:
    # the answer is broken (graded wrong either way), but the record shows what the model wrote
    assert cruxeval.extract_answer("assert f('==') == [1, 2\n", "direct", "'=='") == "[1, 2"


def test_expressions_are_extracted_but_never_evaluated() -> None:
    from pbb.prompts import grade_answer

    answer = cruxeval.extract_answer("assert f(3) == '<' * 3\n", "direct", "3")
    assert answer == "'<' * 3"
    g = grade_answer(None, answer, "'<<<'")
    assert not g.parsed and not g.correct  # CRUXEval would execute it and say True: by design, pbb does not


# ---------------------------------------------------------------- eval_corpus under the protocol


class SampledBackend(GenerationBackend):
    """Completions from a function of (prompt, sample); records what it was asked."""

    name = "sampled"

    def __init__(self, answer: Callable[[str, int], str], die_after: int | None = None) -> None:
        self.answer, self.die_after, self.calls, self.asked = answer, die_after, 0, []

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, stop: Sequence[Stop] = (), temperature: float = 0.0,
                 top_p: float = 1.0, n: int = 1, seed: int = 0, progress=None) -> list[list[str]]:
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.asked.append({"n": n, "temperature": temperature, "top_p": top_p, "stop": list(stop),
                           "max_new_tokens": max_new_tokens, "prompts": list(prompts)})
        return [[apply_stops(self.answer(p, s), stop)[0] for s in range(n)] for p in prompts]


def _records(tmp_path: Path, n: int = 6) -> Path:
    p = tmp_path / "crux.jsonl"
    p.write_text("".join(json.dumps({"id": f"s{i}", "code": f"def f(x):\n    return x + {i}", "input": str(i),
                                     "output": str(2 * i)}) + "\n" for i in range(n)))
    return p


def _answers(prompt: str, sample: int) -> str:
    """Record i gets i of its 10 samples right (as full assertions, closed by the tag)."""
    i = int(re.findall(r"return x \+ (\d+)", prompt)[-1])
    value = 2 * i if sample < i else -1
    return f"assert f({i}) == {value}\n[/ANSWER]\n\n[PYTHON]\ndef g(): pass"


def test_sampled_pass_at_1_and_5_are_the_unbiased_estimates(tmp_path) -> None:
    backend = SampledBackend(_answers)
    m = eval_corpus(_records(tmp_path), model="x", mode="direct", out_dir=tmp_path / "o", backend=backend)
    call = backend.asked[0]
    assert (call["n"], call["temperature"], call["top_p"], call["stop"]) == (10, 0.2, 0.95, ["[/ANSWER]"])
    assert call["prompts"][0] == cruxeval.make_prompt("def f(x):\n    return x + 0", "0", "direct")
    want1 = sum(pass_at_k(10, i, 1) for i in range(6)) / 6
    want5 = sum(pass_at_k(10, i, 5) for i in range(6)) / 6
    assert m["pass@1"] == pytest.approx(want1) == pytest.approx(0.25)
    assert m["pass_at_k"]["5"]["estimate"] == pytest.approx(want5)
    assert want1 < want5 < 1
    lo, hi = m["pass_at_k"]["5"]["ci"]
    assert lo < want5 < hi
    assert (m["n"], m["generations"], m["correct"], m["n_samples"]) == (6, 60, 15, 10)
    preds = [json.loads(x) for x in (tmp_path / "o" / "predictions.jsonl").read_text().splitlines()]
    assert [(p["id"], p["sample"]) for p in preds[:11]] == [("s0", s) for s in range(10)] + [("s1", 0)]
    assert preds[10]["answer"] == "2" and preds[10]["correct"]
    assert "[/ANSWER]" not in preds[10]["completion"]  # cut by the stop word


def test_greedy_takes_one_sample(tmp_path) -> None:
    backend = SampledBackend(_answers)
    m = eval_corpus(_records(tmp_path), model="x", mode="direct", out_dir=tmp_path / "o", backend=backend, temperature=0)
    assert backend.asked[0]["n"] == 1 and backend.asked[0]["temperature"] == 0
    assert m["n_samples"] == 1 and m["generations"] == 6 and set(m["pass_at_k"]) == {"1"}
    assert m["pass@1"] == pytest.approx(5 / 6)  # sample 0 is right for every record but s0


def test_sampled_run_resumes_to_the_same_bytes(tmp_path) -> None:
    src = _records(tmp_path, 9)
    kw = {"model": "x", "mode": "direct", "batch_size": 2}  # 10 samples: chunks of one record
    eval_corpus(src, out_dir=tmp_path / "a", backend=SampledBackend(_answers), **kw)
    with pytest.raises(KeyboardInterrupt):
        eval_corpus(src, out_dir=tmp_path / "b", backend=SampledBackend(_answers, die_after=4), **kw)
    again = SampledBackend(_answers)
    eval_corpus(src, out_dir=tmp_path / "b", backend=again, **kw)
    assert again.calls == 5
    assert (tmp_path / "b" / "predictions.jsonl").read_bytes() == (tmp_path / "a" / "predictions.jsonl").read_bytes()
    # other settings: the old predictions are not reused
    other = SampledBackend(_answers)
    eval_corpus(src, out_dir=tmp_path / "b", backend=other, temperature=0.8, **kw)
    assert other.calls == 9


def test_a_damaged_predictions_file_is_a_user_error(tmp_path) -> None:
    src = _records(tmp_path, 4)
    kw = {"model": "x", "mode": "direct", "batch_size": 1, "temperature": 0}  # chunks of 4 records
    eval_corpus(src, out_dir=tmp_path / "o", backend=SampledBackend(_answers), **kw)
    pred = tmp_path / "o" / "predictions.jsonl"
    lines = pred.read_text().splitlines(keepends=True)
    pred.write_text(lines[0] + "{broken\n" + "".join(lines[2:]))
    with pytest.raises(PbbError, match="corrupt"):
        eval_corpus(src, out_dir=tmp_path / "o", backend=SampledBackend(_answers), **kw)


def test_cot_reads_the_tagged_assertion(tmp_path) -> None:
    def cot(prompt: str, sample: int) -> str:
        i = int(re.findall(r"return x \+ (\d+)", prompt)[-1])
        return f"x is {i}, f({i}) == {i} + {i}\n[/THOUGHT]\n[ANSWER]\nassert f({i}) == {2 * i}\n[/ANSWER]"

    m = eval_corpus(_records(tmp_path), model="x", mode="cot", out_dir=tmp_path / "o", backend=SampledBackend(cot),
                    temperature=0)
    assert m["pass@1"] == 1.0


def test_many_greedy_samples_are_a_user_error(tmp_path) -> None:
    with pytest.raises(PbbError, match="greedy samples are all the same"):
        eval_corpus(_records(tmp_path), model="x", mode="direct", out_dir=tmp_path / "o", temperature=0, n_samples=10,
                    backend=SampledBackend(_answers))


def test_unknown_protocol_or_mode_is_a_user_error(tmp_path) -> None:
    with pytest.raises(PbbError, match="protocol"):
        eval_corpus(_records(tmp_path), model="x", mode="direct", out_dir=tmp_path / "o", protocol="humaneval")
    with pytest.raises(PbbError, match="phind"):
        eval_corpus(_records(tmp_path), model="x", mode="phind", out_dir=tmp_path / "o", protocol="pbb")


CRUX_DEV = [Path(__file__).resolve().parents[1].parent / "shared/data/cruxeval/cruxeval-dev.jsonl",
            Path("/work/shared/data/cruxeval/cruxeval-dev.jsonl")]


@pytest.mark.slow
def test_cruxeval_protocol_with_the_embedded_model(tmp_path) -> None:
    """The real model, CRUXEval's direct prompt, 2 samples of 4 records: assertions come back, cut at the tag."""
    path = next((p for p in CRUX_DEV if p.exists()), None)
    if path is None:
        pytest.skip("the shared CRUXEval development file is absent")
    src = tmp_path / "crux4.jsonl"
    src.write_text("".join(path.read_text().splitlines(keepends=True)[:4]))
    m = eval_corpus(src, model="smollm2-135m", mode="direct", out_dir=tmp_path / "o", batch_size=8, n_samples=2)
    assert (m["n"], m["generations"], m["n_samples"]) == (4, 8, 2)
    assert 0 <= m["pass_at_k"]["2"]["ci"][0] <= m["pass_at_k"]["2"]["estimate"] <= 1
    preds = [json.loads(x) for x in (tmp_path / "o" / "predictions.jsonl").read_text().splitlines()]
    assert all("[/ANSWER]" not in p["completion"] for p in preds)
    assert sum(p["completion"].lstrip().startswith("assert f(") for p in preds) >= 4  # the model follows the shots
    assert any(p["parsed"] for p in preds)


def test_samples_share_their_prompts_prefill_without_changing_them() -> None:
    """n samples of a prompt prefill it once (KV cache rows copied); each sample is what it was alone."""
    from pbb.evaluate.backends.transformers_backend import TransformersBackend
    from pbb.models import load_model

    model, tok = load_model("tiny-random", dtype="fp32", device="cpu")
    prompts = ["zorbix(3) =", "assert f([1, 2]) == ??\n[ANSWER]\n"]
    shared = TransformersBackend(model=model, tokenizer=tok, batch_size=8)
    alone = TransformersBackend(model=model, tokenizer=tok, batch_size=1)  # one row a batch: nothing to share
    kw = {"max_new_tokens": 6, "temperature": 1.0, "top_p": 0.95, "n": 4, "seed": 3}
    prefilled = []
    forward = shared._forward
    shared._forward = lambda ids, *a: (prefilled.append(ids.shape[0]) if ids.shape[1] > 1 else None, forward(ids, *a))[1]
    assert shared.generate(prompts, **kw) == alone.generate(prompts, **kw)
    assert prefilled == [2]  # one batch of 8 rows, two distinct prompts
    assert shared.prompt_tokens == alone.prompt_tokens
