"""What a sandbox call returns, and the checks a worker's reply passes before it is believed.

A worker runs untrusted code, so its reply is untrusted input: `check_reply` checks every
field's type and size and turns the reply into a `RunResult`, or raises `BadReply` (the
call then fails, and only that call). `pbb.sandbox` re-exports these names.
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass
from typing import Any

from pbb.errors import without_addresses

ERROR_KINDS = ("timeout", "memory", "crash", "exception", "output_too_large", "unprintable")
MAX_ERROR_CHARS = 1000


@dataclass
class RunResult:
    """The outcome of one call of a program on one input."""

    ok: bool
    output: str | None = None  # repr of the return value, a Python literal
    error: str | None = None  # what went wrong, one line
    error_kind: str | None = None  # one of ERROR_KINDS, None when ok
    trace: list[dict] | None = None  # [{"line", "code", "changes"}] when traced

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Call = tuple[str, str, str]
"""(source, func_name, input_text)."""


class BadReply(ValueError):
    """A worker's reply that breaks the protocol's shapes or limits."""


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
        return True
    except Exception:  # SyntaxError (too deep), RecursionError, MemoryError, ValueError: all untrusted text
        return False


def _text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise BadReply(f"{what} is not a string of at most {limit} characters")
    return value


def check_reply(msg: dict, *, max_output_chars: int, max_trace_events: int, trace_repr_chars: int) -> RunResult:
    """The RunResult of a worker's reply, every field checked; raises BadReply.

    An `ok` output must be a Python literal no longer than the cap (so every consumer can read
    it back with `ast.literal_eval`); a trace must have the documented shape within its caps.
    """
    ok = msg.get("ok")
    if not isinstance(ok, bool):
        raise BadReply("'ok' is not a boolean")
    output = None
    if ok:
        output = _text(msg.get("output"), "the output", max_output_chars)
        if not _is_literal(output):
            raise BadReply("the output is not a Python literal")
    error = msg.get("error")
    if error is not None:
        error = without_addresses(_text(error, "the error", 64 * MAX_ERROR_CHARS)[:MAX_ERROR_CHARS])
    kind = msg.get("error_kind")
    kind = None if ok else (kind if kind in ERROR_KINDS else "crash")
    trace = msg.get("trace")
    if trace is not None:
        if not isinstance(trace, list) or len(trace) > max_trace_events:
            raise BadReply(f"the trace is not a list of at most {max_trace_events} events")
        for e in trace:
            if not isinstance(e, dict) or set(e) != {"line", "code", "changes"}:
                raise BadReply("a trace event is not {line, code, changes}")
            if not isinstance(e["line"], int) or isinstance(e["line"], bool):
                raise BadReply("a trace event's line is not an integer")
            _text(e["code"], "a trace event's code", 200)
            changes = e["changes"]
            if not isinstance(changes, dict) or len(changes) > 32:
                raise BadReply("a trace event's changes are not a mapping of at most 32 variables")
            for k, v in changes.items():
                _text(k, "a traced variable's name", 200)
                _text(v, "a traced value", trace_repr_chars)
    return RunResult(ok=ok, output=output, error=error, error_kind=kind, trace=trace)
