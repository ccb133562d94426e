"""The text formats shared by training data and evaluation: one source of truth.

Training renders execution examples with these functions and evaluation builds its
prompts with the same ones, so a model is always asked in exactly the format it was
trained on. Prompts end on a clean token boundary ("=" or a newline) and every
completion starts with a space or a new line, so the loss can be put on the
completion alone.
"""

from __future__ import annotations

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


def cot_completion(source: str, trace: str, output: str) -> str:
    """Restate the source (the recall step), then the trace, then `Answer: <output>`."""
    parts = [source.rstrip("\n")]
    if trace.strip():
        parts.append(trace.rstrip("\n"))
    parts.append(f"{ANSWER_MARKER} {output}")
    return "\n".join(parts)


def in_context(prompt: str, source: str) -> str:
    """The in-context baseline: the program's source shown before the question."""
    return f"{source.rstrip()}\n\n{prompt}"


def prompt_for(mode: str, name: str, input_text: str) -> str:
    if mode == "direct":
        return direct_prompt(name, input_text)
    if mode == "cot":
        return cot_prompt(name, input_text)
    raise ValueError(f"unknown eval mode {mode!r} (expected 'direct' or 'cot')")


def completion_for(mode: str, output: str, *, source: str = "", trace: str = "") -> str:
    if mode == "direct":
        return direct_completion(output)
    if mode == "cot":
        return cot_completion(source, trace, output)
    raise ValueError(f"unknown eval mode {mode!r} (expected 'direct' or 'cot')")


def extract_answer(mode: str, completion: str) -> str | None:
    """The answer text in a completion, or None when there is none.

    Direct: the first line. CoT: what follows the last marker, up to the line end.
    The text is only ever parsed with `ast.literal_eval`, never executed.
    """
    if mode == "direct":
        text = completion.strip("\n").split("\n", 1)[0].strip()
        return text or None
    if mode == "cot":
        idx = completion.rfind(ANSWER_MARKER)
        if idx < 0:
            return None
        text = completion[idx + len(ANSWER_MARKER):].split("\n", 1)[0].strip()
        return text or None
    raise ValueError(f"unknown eval mode {mode!r}")
