"""`pbb score-corpus`: grading generations made elsewhere, against CRUXEval's own verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbb.errors import PbbError
from pbb.evaluate.metrics import pass_at_k
from pbb.evaluate.score import score_generations

SHARED = [Path(__file__).resolve().parents[1].parent / "shared/data/cruxeval", Path("/work/shared/data/cruxeval")]

# Where pbb's verdict may differ from CRUXEval's by design: pbb never executes the answer, so an
# answer that is an expression or a call, or that is only equal to the output under execution,
# is wrong for pbb however it evaluates. On codellama-7b's 4,000 development generations no
# verdict differs: each of its 90 non-literal answers also evaluates to a wrong value
# or does not parse for CRUXEval either (NON_LITERAL below). Adding a case here needs its reason.
BY_DESIGN: dict[tuple[str, int], str] = {}

# The non-literal answers in that file (generations per record), all wrong for both graders:
# two expressions, sample_51's `'<' * 10` (the output is 20) and sample_125's
# `'"Leap and the net will appear!' + str(123)` (the output starts with '3'); the rest are
# unterminated literals, repetitions cut by CodeLlama's generation limit.
NON_LITERAL = {"sample_51": 7, "sample_53": 9, "sample_125": 4, "sample_129": 10, "sample_134": 6, "sample_151": 4,
               "sample_154": 10, "sample_169": 8, "sample_218": 1, "sample_244": 10, "sample_250": 8, "sample_259": 1,
               "sample_280": 8, "sample_299": 4}


def _shared(name: str) -> Path:
    for d in SHARED:
        if (d / name).exists():
            return d / name
    pytest.skip(f"{name} is not in the shared CRUXEval folder")


def test_codellama_generations_agree_with_cruxevals_verdicts(tmp_path) -> None:
    gens = _shared("codellama-7b-output-scored-dev.json")
    m = score_generations(_shared("cruxeval-dev.jsonl"), gens, tmp_path)
    published = json.loads(gens.read_text())
    agreement = m["cruxeval_agreement"]
    assert agreement["unaligned"] == []  # every record's verdict list lines up with its generations
    assert agreement["compared"] == m["n_generations"] == 4000 and m["n_records"] == 400
    differ = {(d["id"], d["sample"]): d for d in agreement["disagree"]}
    assert set(differ) == set(BY_DESIGN), [differ[k] for k in set(differ) ^ set(BY_DESIGN) if k in differ]
    assert agreement["agree"] == 4000 - len(BY_DESIGN)
    # the same totals as CRUXEval's, and pass@k computed from them as CRUXEval does
    theirs = published["raw_scored_generations"]
    assert m["correct"] == sum(sum(v) for v in theirs.values())
    want1 = sum(pass_at_k(len(v), sum(v), 1) for v in theirs.values()) / len(theirs)
    want5 = sum(pass_at_k(len(v), sum(v), 5) for v in theirs.values()) / len(theirs)
    assert m["pass_at_k"]["1"]["estimate"] == pytest.approx(want1)
    assert m["pass_at_k"]["5"]["estimate"] == pytest.approx(want5)
    lo, hi = m["pass_at_k"]["1"]["ci"]
    assert lo < want1 < hi and hi - lo < 0.12
    # the unparsed answers are exactly the non-literal ones, and all are wrong
    verdicts = [json.loads(x) for x in (tmp_path / "verdicts.jsonl").read_text().splitlines()]
    unparsed: dict[str, int] = {}
    for v in verdicts:
        if not v["parsed"]:
            unparsed[v["id"]] = unparsed.get(v["id"], 0) + 1
            assert v["correct"] is False and v["cruxeval_verdict"] is False
    assert unparsed == NON_LITERAL and m["unparsed"] == sum(NON_LITERAL.values())


def _corpus(tmp_path: Path) -> Path:
    p = tmp_path / "c.jsonl"
    recs = [{"id": "add", "code": "def f(x):\n    return x + 1", "input": "1", "output": "2"},
            {"id": "cat", "code": "def f(a, b):\n    return a + b", "input": "'x==', 'y'", "output": "'x==y'"}]
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return p


def _gens(tmp_path: Path, data) -> Path:
    p = tmp_path / "g.json"
    p.write_text(json.dumps(data))
    return p


def test_keys_by_id_or_by_position_and_raw_continuations(tmp_path) -> None:
    c = _corpus(tmp_path)
    by_id = score_generations(c, _gens(tmp_path, {"add": ["2", "3"], "cat": ["'x==y'", '"x==y"']}), tmp_path / "a")
    by_pos = score_generations(c, _gens(tmp_path, {"sample_0": ["assert f(1) == 2\n", "assert f(1) == 3"],
                                                   "sample_1": ["assert f('x==', 'y') == 'x==y'", "'x==y'"]}),
                               tmp_path / "b")
    for m in (by_id, by_pos):
        assert (m["n_records"], m["n_generations"], m["correct"]) == (2, 4, 3)
        assert m["pass_at_k"]["1"]["estimate"] == pytest.approx(0.75)
        assert m["pass_at_k"]["2"]["estimate"] == pytest.approx(1.0)
        assert "cruxeval_agreement" not in m and m["missing"] == []
    lines = [json.loads(x) for x in (tmp_path / "b" / "verdicts.jsonl").read_text().splitlines()]
    assert [x["answer"] for x in lines] == ["2", "3", "'x==y'", "'x==y'"]


def test_cot_generations_are_read_between_the_tags(tmp_path) -> None:
    cot = "f(1) == 2 since x + 1\n[/THOUGHT]\n[ANSWER]\nassert f(1) == 2\n"
    m = score_generations(_corpus(tmp_path), _gens(tmp_path, {"add": [cot, "no tags at all: 2"]}), tmp_path / "o", mode="cot")
    assert (m["correct"], m["unparsed"], m["missing"]) == (1, 1, ["cat"])


def test_a_scored_file_is_compared_verdict_by_verdict(tmp_path) -> None:
    scored = {"raw_generations": {"sample_0": ["2", "1 + 1"], "sample_1": ["'x==y'"]},
              "raw_scored_generations": {"sample_0": [True, True], "sample_1": [True]}}
    m = score_generations(_corpus(tmp_path), _gens(tmp_path, scored), tmp_path / "o")
    a = m["cruxeval_agreement"]
    assert (a["compared"], a["agree"]) == (3, 2)
    assert [(d["id"], d["sample"], d["cruxeval"], d["pbb"]) for d in a["disagree"]] == [("add", 1, True, False)]


@pytest.mark.parametrize(("data", "msg"), [
    ({"sample_7": ["1"]}, "match no record"),
    ({"add": "2"}, "list of strings"),
    ([["2"]], "JSON object"),
    ({"add": ["2"], "sample_0": ["2"]}, "both name record"),
])
def test_bad_generation_files_are_user_errors(tmp_path, data, msg: str) -> None:
    with pytest.raises(PbbError, match=msg):
        score_generations(_corpus(tmp_path), _gens(tmp_path, data), tmp_path / "o")
