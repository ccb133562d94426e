"""Run-independent text for values seen in the sandbox: the same program gives the same bytes.

Two things in a value's repr change from one run of the same code to the next:

- **memory addresses**: `<map object at 0x7fdc…>`, `<function f.<locals>.g at 0x…>`, a
  bound method's `of <… object at 0x…>`. They differ with every process (ASLR), so a trace
  that shows one would differ between two imports of the same file and teach a model
  noise. `normalise_value` drops the ` at 0x…` part (`<map object>`), which still says
  what the value is.
- **hash order**: a set of strings iterates in an order fixed by the hash seed. Sandbox
  workers run under one fixed `PYTHONHASHSEED`, and `normalise_output` writes a set's
  elements sorted (`literal`), so an output's text does not depend on that choice. Where
  the *value* depends on hash order (a list built from a set, a dict filled from one), no
  rewriting can fix it: the corpus import runs each input a second time under another
  hash seed and drops the input when the two disagree.
"""

from __future__ import annotations

import ast
import re
from typing import Any

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]*")
"""` at 0x7fdc5a3b1f40`, also when a shortened repr cut the address short."""


def normalise_value(text: str) -> str:
    """A trace value's repr without memory addresses: `<map object at 0x7f…>` -> `<map object>`."""
    return _ADDRESS.sub("", text) if " at 0x" in text else text


def literal(value: Any) -> str:
    """`repr`, except that sets list their elements sorted: the text must not depend on the hash seed."""
    if type(value) is set:
        return "{" + ", ".join(sorted(literal(v) for v in value)) + "}" if value else "set()"
    if type(value) is list:
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if type(value) is tuple:
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if type(value) is dict:
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def normalise_output(text: str) -> str:
    """An output literal with every set's elements in sorted order (else the text unchanged)."""
    if "{" not in text and "set()" not in text:
        return text
    try:
        return literal(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
