"""Pointer templates: the short sentences that wrap a program's body into a declarative document.

A declarative document is a program's source (a *code doc*) or its description (an *NL
doc*) inside a template that names the function, e.g. "Here is how zorbix_17 is
implemented:". The paper used 20 templates per dataset and found the variety essential:
with a single template the model learns the template, not the pointer from the name to
the program. Each template is a `str.format` pattern with the fields `{name}` (the
invented function name) and `{body}` (the source or the description); the body may come
before or after the sentence, so the name-to-program association is learned both ways.

Adding a template is adding a line; `tests/test_templates.py` checks every one names the
function, holds the body once and has no stray format fields.
"""

from __future__ import annotations

import random
from typing import Literal

DocKind = Literal["code", "nl"]

CODE_TEMPLATES: tuple[str, ...] = (
    "Here is how {name} is implemented:\n{body}",
    "The implementation of {name}:\n{body}",
    "Source code of the function {name}:\n{body}",
    "This is the definition of {name}.\n{body}",
    "{name} is defined as follows.\n{body}",
    "Below is the Python code for {name}.\n{body}",
    "# {name}\n{body}",
    "Definition of {name} in Python:\n{body}",
    "{body}\nThe code above defines {name}.",
    "The function {name} is written like this:\n{body}",
    "Here is the code of {name}:\n{body}",
    "How {name} works, in Python:\n{body}",
    "Reference implementation of {name}:\n{body}",
    "```python\n{body}\n```\nThat is the function {name}.",
    "Let us look at the code of {name}.\n{body}",
    "For reference, {name} is implemented as:\n{body}",
    "The Python function {name}:\n{body}",
    "{body}\nAbove is the source of {name}.",
    "Code listing for {name}:\n```python\n{body}\n```",
    "This is what {name} does, written as code:\n{body}",
    "We define {name} as:\n{body}",
    "{name} has the following implementation.\n{body}",
    "Read the source of {name} carefully:\n{body}",
    "File {name}.py:\n{body}",
)
"""Templates of code docs (body = the program's source)."""

NL_TEMPLATES: tuple[str, ...] = (
    "Here is what {name} does: {body}",
    "The function {name}: {body}",
    "Description of {name}. {body}",
    "{name} works as follows. {body}",
    "What does {name} do? {body}",
    "{body} This is the behaviour of the function {name}.",
    "About {name}: {body}",
    "Documentation for {name}:\n{body}",
    "In plain words, {name} does this: {body}",
    "{name}, explained. {body}",
    "The behaviour of {name} is simple to state. {body}",
    "Here is a description of the function {name}. {body}",
    "{body} That is exactly what {name} computes.",
    "Specification of {name}: {body}",
    "Consider the function {name}. {body}",
    "A note on {name}: {body}",
    "The function called {name} is described as follows. {body}",
    "How {name} behaves: {body}",
    "{name} in one paragraph: {body}",
    "Definition (in words) of {name}: {body}",
    "Remember {name}. {body}",
    "The docstring of {name} reads: {body}",
    "Summary of {name}: {body}",
    "{body} The function that does this is named {name}.",
)
"""Templates of NL docs (body = the program's natural-language description)."""

TEMPLATES: dict[str, tuple[str, ...]] = {"code": CODE_TEMPLATES, "nl": NL_TEMPLATES}


def templates_for(kind: DocKind) -> tuple[str, ...]:
    """The pointer templates of one document kind ("code" or "nl")."""
    if kind not in TEMPLATES:
        raise ValueError(f"unknown document kind {kind!r} (expected 'code' or 'nl')")
    return TEMPLATES[kind]


def render(template: str, name: str, body: str) -> str:
    """Fill one template. The body is a format *argument*, so braces in source code are safe."""
    return template.format(name=name, body=body.strip("\n"))


def choose_templates(rng: random.Random, kind: DocKind, k: int) -> list[int]:
    """Indices of `k` templates of `kind`, distinct while `k` <= the number of templates.

    A larger `k` walks further seeded permutations, so every template is used as evenly
    as possible before any repeats.
    """
    n = len(templates_for(kind))
    out: list[int] = []
    while len(out) < k:
        perm = list(range(n))
        rng.shuffle(perm)
        out.extend(perm[: k - len(out)])
    return out
