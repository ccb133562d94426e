"""Grading one completion: extract the answer, parse it as a literal, compare values.

Model output is untrusted text. It is only ever parsed with `ast.literal_eval` (which
builds constants, containers and nothing else: no calls, no names, no `**`), after a
length guard, with every exception caught. Values are compared the way CRUXEval does
(`assert expected == generated` on Python values): `'a'` equals `"a"`, `[1,2]` equals
`[ 1, 2 ]`, `1` equals `1.0`, but `(1, 2)` is not `[1, 2]`.

Grammar programs (`program.grading == "membership"`) accept any member of the
program's language, so they are graded by `pbb.programs.grammars.grade_membership`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from pbb import prompts
from pbb.programs.base import Program

MAX_ANSWER_CHARS = 20_000
"""Longer answers are refused unparsed: the sandbox caps true outputs at 10,000 chars,
and parsing megabytes of model babble would only cost memory."""

_UNPARSED = object()


@dataclass(frozen=True)
class Grade:
    """The outcome of grading one completion."""

    answer: str | None  # the extracted answer text (None: no answer found)
    parsed: bool  # the answer is a valid Python literal
    correct: bool


def parse_literal(text: str | None, *, max_chars: int = MAX_ANSWER_CHARS) -> Any:
    """The Python value of a literal's text, or `_UNPARSED` (never executes anything).

    `ast.literal_eval` can still exhaust the parser (deep nesting -> RecursionError /
    SyntaxError, huge int literals -> ValueError, MemoryError), hence the broad catch.
    """
    if text is None or len(text) > max_chars:
        return _UNPARSED
    try:
        return ast.literal_eval(text.strip())
    except (Exception, MemoryError, RecursionError):  # noqa: BLE001 - untrusted input
        return _UNPARSED


def is_parsed(value: Any) -> bool:
    return value is not _UNPARSED


def values_equal(a: Any, b: Any) -> bool:
    """CRUXEval's `==` on two parsed literals, with the type of sequences checked.

    Python's `==` already distinguishes tuple from list; deep structures can raise
    RecursionError, which counts as unequal.
    """
    try:
        return bool(a == b)
    except (Exception, RecursionError):  # noqa: BLE001
        return False


def _membership(program: Program, value: Any) -> bool:
    # Imported lazily: only grammar programs need the parser, and it is another module.
    from pbb.programs.grammars import grade_membership

    try:
        return bool(grade_membership(program.meta, value))
    except (Exception, RecursionError):  # noqa: BLE001 - a parser choking on junk is "wrong"
        return False


def grade_answer(program: Program | None, answer: str | None, expected: str) -> Grade:
    """Grade an already extracted answer text against the expected output's literal."""
    value = parse_literal(answer)
    if not is_parsed(value):
        return Grade(answer=answer, parsed=False, correct=False)
    if program is not None and program.grading == "membership":
        return Grade(answer=answer, parsed=True, correct=_membership(program, value))
    want = parse_literal(expected, max_chars=max(MAX_ANSWER_CHARS, len(expected)))
    if is_parsed(want):
        correct = values_equal(value, want)
    else:
        # A ground truth that is not a literal (should not happen: outputs are reprs);
        # fall back to exact text so grading still says something sensible.
        correct = (answer or "").strip() == expected.strip()
    return Grade(answer=answer, parsed=True, correct=correct)


def grade(program: Program | None, mode: str, completion: str, expected: str) -> Grade:
    """Grade one completion of `mode` ('direct' or 'cot') against `expected` (a literal).

    `program` may be None (CRUXEval, GRPO rewards without metadata): value grading.
    """
    return grade_answer(program, prompts.extract_answer(mode, completion), expected)
