"""CRUXEval's output-prediction protocol (CRUXEval-O), as its authors ran it.

Gu et al. 2024, "CRUXEval: A Benchmark for Code Reasoning, Understanding and
Execution" (arXiv 2401.03065); code and data: github.com/facebookresearch/cruxeval,
MIT licence, copyright Meta Platforms, Inc. The three prompt templates below are
copied verbatim from that repository's `prompts.py` (`make_direct_output_prompt`,
`make_cot_output_prompt`, `make_direct_output_prompt_phind`); only the f-strings'
`{code}` / `{input}` became `str.format` fields. The rest of the protocol, from
`inference/` and `evaluation/` there:

- the prompt is sent as plain text (base-model style, no chat template);
- generation stops at `[/ANSWER]` (the Phind prompt: at `# done`), and is capped at
  1024 tokens of prompt plus generation (`--max_length_generation`);
- 10 samples per record, top-p 0.95, and pass@k by the unbiased estimator (Chen et al.
  2021). The leaderboard's Pass@1 is pass@1 of a run at temperature 0.2, its Pass@5 is
  pass@5 of a *second* run at temperature 0.8 (`evaluation/read_results.py` picks them so);
  a run here reports every pass@k of its own samples, so a table needs both runs;
- post-processing: for CoT, the text after `[ANSWER]`; then the text after `==`; and
  the verdict is `assert <true output> == <answer>`, *executed* (a generation that
  contains the call `f(<input>)` itself is marked wrong without running it).

Where pbb departs from this, on purpose:

- the answer is located with `ast` (the comparator of `assert f(...) == X`), not by
  splitting on the first `==`, so an input or output that contains `==` or `[ANSWER]`
  does not break it (CRUXEval's split would);
- the answer is parsed with `ast.literal_eval` and compared as a value, never run: an
  answer that is an expression (`'a' * 3`), a call, or anything only equal under
  execution is wrong here. CRUXEval's prompts ask for "a literal (no unsimplified
  expressions, no function calls)", so this is the prompt's own rule. On CRUXEval's
  published codellama-7b generations for the 400 development records the two verdicts
  agree on every generation (tests/test_score.py);
- the generation cap is a fixed number of new tokens (`MAX_NEW_TOKENS`), not 1024 minus
  the prompt's length: a direct answer line needs at most 90 of the 256 allowed; the CoT
  cap is within 91 tokens of CRUXEval's on every development record;
- sampling is pbb's (per-row seeded, `pbb.evaluate.backends`), not vLLM's: the same
  distribution, other draws.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pbb.errors import PbbError
from pbb.prompts import MAX_ANSWER_CHARS, is_parsed, parse_literal

if TYPE_CHECKING:  # the backends import torch; scoring a generations file needs none of it
    from pbb.evaluate.backends.base import Stop

DIRECT_PROMPT = '''You are given a Python function and an assertion containing an input to the function. Complete the assertion with a literal (no unsimplified expressions, no function calls) containing the output when executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Provide the full assertion with the correct output in [ANSWER] and [/ANSWER] tags, following the examples.

[PYTHON]
def f(n):
    return n
assert f(17) == ??
[/PYTHON]
[ANSWER]
assert f(17) == 17
[/ANSWER]

[PYTHON]
def f(s):
    return s + "a"
assert f("x9j") == ??
[/PYTHON]
[ANSWER]
assert f("x9j") == "x9ja"
[/ANSWER]

[PYTHON]
{code}
assert f({input}) == ??
[/PYTHON]
[ANSWER]
'''
"""CRUXEval's `make_direct_output_prompt`, verbatim (MIT, copyright Meta)."""

COT_PROMPT = '''You are given a Python function and an assertion containing an input to the function. Complete the assertion with a literal (no unsimplified expressions, no function calls) containing the output when executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Execute the program step by step before arriving at an answer, and provide the full assertion with the correct output in [ANSWER] and [/ANSWER] tags, following the examples.

[PYTHON]
def f(s):
    s = s + s
    return "b" + s + "a"
assert f("hi") == ??
[/PYTHON]
[THOUGHT]
Let's execute the code step by step:

1. The function f is defined, which takes a single argument s.
2. The function is called with the argument "hi", so within the function, s is initially "hi".
3. Inside the function, s is concatenated with itself, so s becomes "hihi".
4. The function then returns a new string that starts with "b", followed by the value of s (which is now "hihi"), and ends with "a".
5. The return value of the function is therefore "bhihia".
[/THOUGHT]
[ANSWER]
assert f("hi") == "bhihia"
[/ANSWER]

[PYTHON]
{code}
assert f({input}) == ??
[/PYTHON]
[THOUGHT]
'''
"""CRUXEval's `make_cot_output_prompt`, verbatim (MIT, copyright Meta)."""

PHIND_PROMPT = '''Based on the given Python code, which may contain errors, complete the assert statement with the output when executing the code on the given test case. Do NOT output any extra information, even if the function is incorrect or incomplete. Output "# done" after the assertion.

def f(n):
    return n
assert f(17) == 17 # done

def f(s):
    return s + "a"
assert f("x9j") == "x9ja" # done

{code}
assert f({input}) =='''
"""CRUXEval's `make_direct_output_prompt_phind`, verbatim (MIT, copyright Meta): the direct
prompt CRUXEval used for Phind-CodeLlama; the completion is the answer itself."""

TEMPLATES = {"direct": DIRECT_PROMPT, "cot": COT_PROMPT, "phind": PHIND_PROMPT}
MODES = tuple(TEMPLATES)

STOP_WORDS: dict[str, list[Stop]] = {"direct": ["[/ANSWER]"], "cot": ["[/ANSWER]"], "phind": ["# done"]}
"""CRUXEval's stop words (`inference/tasks/output_prediction.py`); generation also ends at EOS."""

MAX_NEW_TOKENS = {"direct": 256, "cot": 640, "phind": 256}
"""New-token caps. CRUXEval caps prompt + generation at 1024 tokens. On the 400
development records (SmolLM2's tokenizer) that leaves 654-764 new tokens to a direct
prompt, whose full answer line `assert f(<input>) == <output>` needs at most 90, and
549-659 to a CoT prompt. A generation that has not closed `[/ANSWER]` by then is graded
on what it wrote, as in CRUXEval."""

N_SAMPLES = 10
TEMPERATURE = 0.2
TEMPERATURE_PASS_AT_5 = 0.8
TOP_P = 0.95
"""The sampling of CRUXEval's leaderboard (`inference/generation_arguments.py` defaults, top-k
off): Pass@1 from a run at 0.2, Pass@5 from a run at 0.8."""

PASS_AT = (1, 5)


def make_prompt(code: str, input_text: str, mode: str) -> str:
    """CRUXEval's prompt for `mode` ('direct', 'cot' or 'phind'), with the code as given."""
    try:
        template = TEMPLATES[mode]
    except KeyError:
        raise ValueError(f"unknown CRUXEval mode {mode!r} (expected one of {', '.join(MODES)})") from None
    return template.format(code=code, input=input_text)


# ---------------------------------------------------------------- answer extraction

_OPEN_TAG = re.compile(r"^[ \t]*\[ANSWER\]", re.MULTILINE)
_CLOSE_TAG = re.compile(r"^[ \t]*\[/ANSWER\]", re.MULTILINE)
MAX_ASSERT_LINES = 40
"""An answer spread over more lines than this is not looked for (keeps parsing cheap)."""


def _is_call_of(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _comparator(src: str, name: str) -> str | None:
    """The `X` of the first `assert <name>(...) == X` that `src` (one statement) parses to."""
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        return None
    test = tree.body[0].test
    if not isinstance(test, ast.Compare) or not test.ops or not isinstance(test.ops[0], ast.Eq):
        return None
    if _is_call_of(test.left, name) or not _is_call_of(test.comparators[0], name):
        first, last = test.comparators[0], test.comparators[-1]
    else:  # written the other way round: assert X == f(...)
        first = last = test.left
        if len(test.comparators) > 1:
            return None
    # the comparator's own text; with a chain (`== a == b`) the whole tail, which is no literal
    lines = src.split("\n")
    lines = [x + "\n" for x in lines[:-1]] + lines[-1:]  # ast counts lines at "\n" only
    text = src[_offset(lines, first.lineno, first.col_offset): _offset(lines, last.end_lineno, last.end_col_offset)]
    return text.strip() or None


def _offset(lines: list[str], lineno: int, col_bytes: int) -> int:
    """String index of an ast position (1-based line, UTF-8 byte column)."""
    before = sum(len(x) for x in lines[: lineno - 1])
    return before + len(lines[lineno - 1].encode()[:col_bytes].decode(errors="ignore"))


def answer_from_assert(text: str, name: str = "f", input_text: str | None = None) -> str | None:
    """The answer in `assert f(<input>) == <answer>` somewhere in `text`, found with `ast`.

    Tries each line that starts with `assert`, joined with the following lines until the
    statement parses (multi-line literals), so junk after the statement does not matter.
    When no line parses, falls back to the text after the literal call `f(<input>) ==`
    on its line (still robust to `==` inside the input). None when neither is there.
    """
    if len(text) > 4 * MAX_ANSWER_CHARS:
        text = text[: 4 * MAX_ANSWER_CHARS]
    lines = text.split("\n")  # not splitlines(): a literal may hold \u2028 and the like
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("assert"):
            continue
        for j in range(i + 1, min(len(lines), i + MAX_ASSERT_LINES) + 1):
            found = _comparator("\n".join(x.strip() if k == i else x for k, x in enumerate(lines[i:j], i)), name)
            if found is not None:
                return found
    if input_text is not None:
        needle = f"{name}({input_text}) =="
        at = text.find(needle)
        if at >= 0:
            rest = text[at + len(needle):].split("\n", 1)[0].strip()
            return rest or None
    return None


def extract_answer(completion: str, mode: str, input_text: str | None = None) -> str | None:
    """The answer text of a CRUXEval completion (never executed; graded by value elsewhere).

    - CoT: the block after the last `[ANSWER]` that opens a line (a tag inside the
      input's text, quoted in the reasoning, is not the answer); none without a tag.
    - The block ends at a `[/ANSWER]` that opens a line, else at the first one (the
      stop word normally removed it already).
    - A block that is itself a literal is the answer (post-processed generations, the
      Phind prompt's ` 17 `); else the comparator of its `assert f(...) == X`, found by
      `answer_from_assert`; else the block as it is (it will not parse: graded wrong).
    """
    text = completion
    if mode == "cot":
        opens = list(_OPEN_TAG.finditer(text))
        if opens:
            text = text[opens[-1].end():]
        elif "[ANSWER]" in text:
            text = text[text.rfind("[ANSWER]") + len("[ANSWER]"):]
        else:
            return None
    candidates = []
    close = _CLOSE_TAG.search(text)
    if close:
        candidates.append(text[: close.start()])
    if "[/ANSWER]" in text:
        candidates.append(text[: text.find("[/ANSWER]")])
    candidates.append(text)
    for block in dict.fromkeys(candidates):
        block = block.strip()
        if not block:
            continue
        if is_parsed(parse_literal(block)):
            return block
        found = answer_from_assert(block, "f", input_text)
        if found is not None:
            return found
    block = candidates[0].strip()
    return block or None


def load_corpus(path: str | os.PathLike, limit: int | None = None) -> list[dict[str, str]]:
    """CRUXEval-format records (`code`, `input`, `output`, optional `id`), checked line by line."""
    path = Path(path)
    if not path.exists():
        raise PbbError(f"{path} does not exist: pass a CRUXEval-format JSONL file (code, input, output)")
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                raise PbbError(f"{path}:{lineno}: not valid JSON; each line must be one object") from None
            if not isinstance(d, dict):
                raise PbbError(f"{path}:{lineno}: expected a JSON object with code, input and output")
            for field in ("code", "input", "output"):
                if not isinstance(d.get(field), str):
                    raise PbbError(f"{path}:{lineno}: field {field!r} is missing or not a string")
            records.append({"id": str(d.get("id", f"line_{lineno}")), "code": d["code"], "input": d["input"],
                            "output": d["output"]})
            if limit is not None and len(records) >= limit:
                break
    if not records:
        raise PbbError(f"{path}: no records")
    return records
