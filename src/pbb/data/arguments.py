"""Argument text, CRUXEval style (`'abc', [1, 2]`): parsed as literals, never evaluated.

The text of an argument list is untrusted wherever it comes from a corpus file: it is
read with `ast.literal_eval` within a length limit, and written back canonically (sets
sorted, `pbb.data.normalise.literal`), so equal values give equal text.
"""

from __future__ import annotations

import ast

from pbb.data.normalise import literal

MAX_INPUT_CHARS = 10_000  # longer argument text is not worth parsing (and could be a parser bomb)


def parse_args(text: str) -> tuple:
    """CRUXEval argument text as a tuple of values: literals only, never evaluated."""
    if len(text) > MAX_INPUT_CHARS:
        raise ValueError(f"input has {len(text)} characters (limit {MAX_INPUT_CHARS})")
    if not text.strip():
        return ()
    return ast.literal_eval(f"({text},)")


def render_args(args: tuple) -> str:
    """The canonical argument text of values: `'abc', [1, 2]`."""
    return ", ".join(literal(a) for a in args)
