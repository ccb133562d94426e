"""Grading: value equality with CRUXEval semantics, and model output is never executed."""

from __future__ import annotations

import sys
import types

import pytest

from pbb.prompts import MAX_ANSWER_CHARS, Grade, grade
from pbb.programs.base import Program


def _prog(grading: str = "value") -> Program:
    return Program(id="p-0", suite="s", family="f", name="zorbix_1", source="def zorbix_1(x):\n    return x\n",
                   description="", group="without_io", grading=grading, meta={"grammar": "g"})


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (" 11", "11"),
        (" 'a'", "'a'"),
        (' "a"', "'a'"),
        (" [1,2]", "[1, 2]"),
        (" [ 1 ,  2 ]", "[1, 2]"),
        (" {'b': 2, 'a': 1}", "{'a': 1, 'b': 2}"),
        (" 11\nzorbix_1(5) = 13", "11"),  # direct: only the first line counts
        (" (1, 2)", "(1, 2)"),
        (" 1.0", "1"),  # CRUXEval compares with ==
        (" -3", "-3"),
    ],
)
def test_direct_correct(completion: str, expected: str) -> None:
    g = grade(_prog(), "direct", completion, expected)
    assert g == Grade(answer=completion.strip("\n").split("\n")[0].strip(), parsed=True, correct=True)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [(" (1, 2)", "[1, 2]"), (" [1, 2]", "(1, 2)"), (" 12", "11"), (" 'a '", "'a'"), (" '1'", "1")],
)
def test_direct_wrong_but_parsed(completion: str, expected: str) -> None:
    g = grade(_prog(), "direct", completion, expected)
    assert g.parsed and not g.correct


def test_cot_reads_the_first_answer_line_where_evaluation_stops() -> None:
    comp = "def zorbix_1(x):\n    return x\nx = 4\nAnswer: 3\nAnswer: 4\nmore text"
    assert grade(_prog(), "cot", comp, "3") == Grade(answer="3", parsed=True, correct=True)
    assert not grade(_prog(), "cot", comp, "4").correct
    assert grade(None, "cot", "no marker here 4", "4") == Grade(answer=None, parsed=False, correct=False)


def test_direct_reads_the_first_line_only() -> None:
    # evaluation stops at the first newline: a completion that opens with one has no answer
    assert grade(None, "direct", "\n 3", "3") == Grade(answer=None, parsed=False, correct=False)


@pytest.mark.parametrize("completion", ["", "\n", " zorbix", " 1 +", " [1, 2", " foo(3)"])
def test_garbage_is_unparsed(completion: str) -> None:
    g = grade(None, "direct", completion, "3")
    assert not g.parsed and not g.correct


@pytest.mark.parametrize(
    "template",
    [
        "__import__('os').system('touch {f}')",
        "(lambda: __import__('os').system('touch {f}'))()",
        "open('{f}', 'w').write('x')",
        "[open('{f}', 'w') for _ in '1']",
        "exec(\"open('{f}', 'w')\")",
    ],
)
@pytest.mark.parametrize("mode", ["direct", "cot"])
def test_hostile_code_is_never_executed(tmp_path, template: str, mode: str) -> None:
    target = tmp_path / "pwned"
    payload = template.format(f=target)
    completion = f" {payload}" if mode == "direct" else f"trace\nAnswer: {payload}"
    g = grade(None, mode, completion, "0")
    assert not target.exists()
    assert not g.parsed and not g.correct


@pytest.mark.parametrize(
    "payload",
    [
        "9**9**9",
        "9" * 100_000,  # over the length guard
        "1" + "0" * 5000,  # over Python's int-string digit limit
        "[" * 100_000 + "]" * 100_000,
        "[" * 300 + "]" * 300,  # parser nesting limit
        "(" * 190 + ")" * 190,
        "-" * 50_000 + "1",
        "'" + "a" * (MAX_ANSWER_CHARS + 1) + "'",
    ],
)
def test_hostile_sizes_are_refused_quickly(payload: str) -> None:
    g = grade(None, "direct", " " + payload, "1")
    assert not g.correct


def test_deep_but_legal_nesting_still_grades() -> None:
    lit = "[" * 50 + "]" * 50
    assert grade(None, "direct", " " + lit, lit).correct


def test_membership_uses_grammar_checker(monkeypatch) -> None:
    seen: list = []

    def grade_membership(meta, value):
        seen.append((meta, value))
        return value == "ab"

    fake = types.ModuleType("pbb.programs.grammars")
    fake.grade_membership = grade_membership  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pbb.programs.grammars", fake)
    assert grade(_prog("membership"), "direct", " 'ab'", "'ba'").correct  # any member, not the expected one
    assert not grade(_prog("membership"), "direct", " 'zz'", "'ab'").correct
    assert not grade(_prog("membership"), "direct", " zz", "'ab'").parsed
    assert seen == [({"grammar": "g"}, "ab"), ({"grammar": "g"}, "zz")]
