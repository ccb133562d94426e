"""The text protocol between the data and the model: prompts, completions, answers, grading.

One low-level module (no torch, nothing of training or evaluation) that the data
build, the trainers (the GRPO reward) and the evaluation all import, so a model is
always asked in exactly the format it was trained on and a reward means exactly what
"correct" means in the report. Prompts end on a clean token boundary ("=" or a
newline) and every completion starts with a space or a new line, so the loss can be
put on the completion alone.

Grading: model output is untrusted text. It is only ever parsed with `ast.literal_eval`
(which builds constants, containers and nothing else: no calls, no names, no `**`),
after a length guard, with every exception caught. Values are compared the way
CRUXEval does (`assert expected == generated` on Python values): `'a'` equals `"a"`,
`[1,2]` equals `[ 1, 2 ]`, `1` equals `1.0`, but `(1, 2)` is not `[1, 2]`. Grammar
programs (`program.grading == "membership"`) accept any member of the program's
language, so they are graded by `pbb.programs.grammars.grade_membership`.

Stop rules live here too, beside the extraction they feed: evaluation's generation
stops at the first newline (direct) or at the end of the first `Answer:` line (CoT),
and `extract_answer` applies the same rules, so the GRPO reward (`grade` on a rollout)
and evaluation (`grade` on a generation) read one answer from the same text.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from pbb.records import Program

ANSWER_MARKER = "Answer:"
"""The fixed marker after which a CoT completion gives its answer."""


def call(name: str, input_text: str) -> str:
    """`zorbix_17(4)`: the call of a program on an input (CRUXEval's argument text)."""
    return f"{name}({input_text})"


def direct_prompt(name: str, input_text: str) -> str:
    """Direct mode: the answer comes at once, e.g. `zorbix_17(4) =` -> ` 11`."""
    return f"{call(name, input_text)} ="


def direct_completion(output: str) -> str:
    return f" {output}"


def cot_prompt(name: str, input_text: str) -> str:
    """CoT mode: recall the program, step through it, then answer after the marker."""
    return f"Compute {call(name, input_text)} step by step.\n"


def cot_completion(source: str | None, trace: str, output: str) -> str:
    """Restate the source (the recall step), then the trace, then `Answer: <output>`.

    Without a source (None or empty) the completion is the trace and the answer only: a
    demonstration of the execution that does not teach the code (algorithm distillation).
    """
    parts = [source.rstrip("\n")] if source and source.strip() else []
    if trace.strip():
        parts.append(trace.rstrip("\n"))
    parts.append(f"{ANSWER_MARKER} {output}")
    return "\n".join(parts)


_PROMPT_PATTERNS = (
    ("direct", re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\((.*)\) =", re.S)),
    ("cot", re.compile(r"Compute ([A-Za-z_][A-Za-z0-9_]*)\((.*)\) step by step\.\n", re.S)),
)


def in_context(prompt: str, source: str) -> str:
    """The in-context baseline: the program's source shown before the question."""
    return f"{source.rstrip()}\n\n{prompt}"


@dataclass(frozen=True)
class Demonstration:
    """One worked example of a program outside every build, shown to the base model in the graded format."""

    name: str
    source: str
    input: str
    output: str  # what the source returns on `input` (checked against the sandbox by the tests)
    trace: str  # the generic trace of that execution (`pbb.data.traces.generic_trace`)


ONE_SHOT = Demonstration(
    name="wembly_5",
    source="def wembly_5(x):\n    y = x + 3\n    return y * 2\n",
    input="4",
    output="14",
    trace="y = x + 3   # y = 7\nreturn y * 2",
)
"""The baselines' one-shot example. The base model was never shown this lab's format (a CoT
completion that restates the source, traces it and ends `Answer: <value>`), so without an
example its CoT answers do not parse at all. The baselines (`zero_shot`, `in_context`) see
this program first, asked and answered in the very format that is graded. It is in no
build: an invented name has two or three syllables and two digits (`zorbix_17`), this one a
single digit, and `pbb.evaluate.run.build_queries` refuses a build that holds its name or
source. It is an integer program whatever the suite: it shows the format, not the task."""


def with_one_shot(mode: str, prompt: str, *, show_source: bool) -> str:
    """`prompt` after the one-shot example, asked and answered in `mode`'s graded format.

    With `show_source` (the in-context baseline, whose prompt shows the program's source)
    the example's source is shown before its question too, so the example has the
    prompt's own layout.
    """
    ex = ONE_SHOT
    demo = prompt_for(mode, ex.name, ex.input) + completion_for(mode, ex.output, source=ex.source, trace=ex.trace)
    if show_source:
        demo = in_context(demo, ex.source)
    return f"{demo}\n\n{prompt}"


def prompt_for(mode: str, name: str, input_text: str) -> str:
    if mode == "direct":
        return direct_prompt(name, input_text)
    if mode == "cot":
        return cot_prompt(name, input_text)
    raise ValueError(f"unknown eval mode {mode!r} (expected 'direct' or 'cot')")


def parse_prompt(prompt: str) -> tuple[str, str, str] | None:
    """`(mode, name, input_text)` of a direct or CoT prompt (the inverse of `prompt_for`); None for any other text."""
    for mode, pattern in _PROMPT_PATTERNS:
        if m := pattern.fullmatch(prompt):
            return mode, m.group(1), m.group(2)
    return None


def completion_for(mode: str, output: str, *, source: str | None = None, trace: str = "") -> str:
    """The completion that answers a prompt of `mode`; a CoT one restates `source` first when given."""
    if mode == "direct":
        return direct_completion(output)
    if mode == "cot":
        return cot_completion(source, trace, output)
    raise ValueError(f"unknown eval mode {mode!r} (expected 'direct' or 'cot')")


# ---------------------------------------------------------------- stop rules and answer extraction


Stop = Union[str, "re.Pattern[str]"]
"""A stop rule. A string ends generation where it appears and the completion is cut
*before* it (OpenAI / vLLM semantics). A compiled pattern ends generation at its first
match and the completion is cut at the match's *end* (so a rule can keep text, e.g.
the whole `Answer:` line)."""

COT_STOP = re.compile(re.escape(ANSWER_MARKER) + r"[^\n]*(?=\n)")
"""CoT ends at the end of the first `Answer:` line (the newline itself is dropped)."""


def stops_for_mode(mode: str) -> list[Stop]:
    """Direct answers are one line; CoT completions end after the first answer line. Both also end at EOS."""
    if mode == "direct":
        return ["\n"]
    if mode == "cot":
        return [COT_STOP]
    raise ValueError(f"unknown eval mode {mode!r}")


def apply_stops(text: str, stop: Sequence[Stop]) -> tuple[str, bool]:
    """Cut `text` at the earliest stop rule; return (text, whether a rule matched)."""
    best: tuple[int, int] | None = None  # (start, cut position) of the earliest match
    for rule in stop:
        if isinstance(rule, str):
            i = text.find(rule) if rule else -1
            span = (i, i)
        else:
            m = rule.search(text)
            i = m.start() if m else -1
            span = (i, m.end() if m else -1)
        # the earliest *start* wins, so one rule never cuts inside another's match
        if i >= 0 and (best is None or i < best[0]):
            best = span
    if best is None:
        return text, False
    return text[: best[1]], True


def extract_answer(mode: str, completion: str) -> str | None:
    """The answer text evaluation reads in a completion, or None when there is none.

    The completion is first cut where evaluation's generation stops (`stops_for_mode`),
    so a text that ran on past its stop (a GRPO rollout, another tool's generation) reads
    exactly as evaluation would have read it. Direct: the first line (a completion that
    starts with a newline has no answer). CoT: what follows the marker on the first
    `Answer:` line, up to the line end. The text is only ever parsed with
    `ast.literal_eval`, never executed.
    """
    text, _ = apply_stops(completion, stops_for_mode(mode))
    if mode == "direct":
        return text.strip() or None  # one line: the stop rule cut at the first newline
    idx = text.find(ANSWER_MARKER)
    if idx < 0:
        return None
    return text[idx + len(ANSWER_MARKER):].split("\n", 1)[0].strip() or None


# ---------------------------------------------------------------- grading


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

    The one grader of evaluation and of the GRPO reward: the completion is cut at the
    mode's stop rules and its answer read as evaluation reads it (`extract_answer`), so a
    rollout's reward is the verdict evaluation gives the same text. `program` may be None
    (no metadata): value grading.
    """
    return grade_answer(program, extract_answer(mode, completion), expected)
