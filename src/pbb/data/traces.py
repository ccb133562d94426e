"""CoT traces: the step-by-step part of a CoT completion, rendered from the sandbox's trace events.

The sandbox records one event per executed line, `{"line": n, "code": "y = x * 5",
"changes": {"y": "20"}}`. The generic renderer writes each as the line of code followed
by the values it set, `y = x * 5   # y = 20`, which is what the model must learn to do
for a program it only saw as source: recall a line, then compute it. A suite may render
its own trace (`ProgramSpec.render_trace`); either is capped at `data.max_trace_lines`.
"""

from __future__ import annotations

from pbb.data.normalise import normalise_value
from pbb.programs.base import ProgramSpec

ELLIPSIS = "..."
"""The line that ends a trace cut at the cap."""

MAX_VALUE_CHARS = 120
"""Longest value shown in a trace comment; a huge list would otherwise flood the context."""


def _short(value: str) -> str:
    return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 3] + ELLIPSIS


def generic_trace(events: list[dict]) -> str:
    """One line per executed line: its code, then `# var = value, ...` for what it changed."""
    lines: list[str] = []
    for ev in events:
        code = str(ev.get("code", "")).strip()
        changes = ev.get("changes") or {}
        if changes:
            # no memory addresses: the same run must give the same bytes (pbb.data.normalise)
            shown = ", ".join(f"{var} = {_short(normalise_value(str(val)))}" for var, val in changes.items())
            lines.append(f"{code}   # {shown}" if code else f"# {shown}")
        elif code:
            lines.append(code)
    return "\n".join(lines)


def cap_lines(trace: str, max_lines: int) -> str:
    """Keep the first `max_lines` lines; if any were cut, end with a `...` line."""
    lines = trace.split("\n") if trace else []
    if len(lines) <= max_lines:
        return trace
    return "\n".join(lines[:max_lines] + [ELLIPSIS])


def render_trace(spec: ProgramSpec | None, input_text: str, events: list[dict] | None, output: str, max_lines: int) -> str:
    """The trace of one execution: the suite's own rendering if it has one, else the generic one, capped."""
    events = events or []
    try:
        text = spec.render_trace(input_text, events, output) if spec is not None else None
    except Exception:  # a suite renderer that trips on odd events must not sink the build: fall back
        text = None
    if text is None:
        text = generic_trace(events)
    return cap_lines(text.rstrip("\n"), max_lines)
