"""New inputs for a real function: its given argument values, mutated by type.

`mutate` keeps a value's type and rough size (ints, floats, strings, bytes, lists,
tuples, sets, dicts, nested): an edited string draws mostly from its own alphabet, a
tuple keeps its length (often a fixed structure), a dict mostly keeps its keys. With
`grow` the value gets larger or longer: the *shifted* inputs of the corpus import.
Mutation is a pure function of the value and the rng; whether a mutated input is any
good is for the sandbox to say (`pbb.data.corpus_import`).
"""

from __future__ import annotations

import math
import random
import string
from typing import Any

from pbb.data.arguments import parse_args, render_args


def _mutate_char(c: str, rng: random.Random, palette: str) -> str:
    if c.isdigit():
        return rng.choice(string.digits)
    if c.islower():
        return rng.choice(string.ascii_lowercase)
    if c.isupper():
        return rng.choice(string.ascii_uppercase)
    return rng.choice(palette)


def _mutate_str(s: str, rng: random.Random, grow: bool) -> str:
    if not s:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 4 if not grow else 12)))
    palette = s  # new characters come mostly from the string's own alphabet
    chars = list(s)
    if grow:
        extra = [_mutate_char(rng.choice(s), rng, palette) for _ in range(rng.randint(len(s), 2 * len(s) + 3))]
        for c in extra:
            chars.insert(rng.randint(0, len(chars)), c)
        return "".join(chars)
    for _ in range(rng.randint(1, max(1, min(3, len(s))))):
        op = rng.random() if len(chars) > 1 else 0.0
        if op < 0.6 or not chars:  # replace (the only edit of a one-character string: keeps its length)
            if chars:
                i = rng.randrange(len(chars))
                chars[i] = _mutate_char(chars[i], rng, palette)
        elif op < 0.8:
            chars.insert(rng.randint(0, len(chars)), _mutate_char(rng.choice(s), rng, palette))
        else:
            del chars[rng.randrange(len(chars))]
    return "".join(chars)


def _mutate_int(v: int, rng: random.Random, grow: bool) -> int:
    if grow:
        return v * rng.randint(3, 12) + rng.choice((-1, 1)) * rng.randint(10, 99)
    span = max(5, abs(v))
    return v + rng.choice((-1, 1)) * rng.randint(1, span) if rng.random() < 0.7 else rng.randint(-span, 2 * span)


def mutate(value: Any, rng: random.Random, grow: bool = False, depth: int = 0) -> Any:
    """A value of the same type and similar size (`grow`: larger, longer) as `value`."""
    if isinstance(value, bool):
        return rng.random() < 0.5
    if isinstance(value, int):
        return _mutate_int(value, rng, grow)
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        scale = max(1.0, abs(value)) * (5 if grow else 0.5)
        return round(value + rng.uniform(-scale, scale), 2)
    if isinstance(value, str):
        return _mutate_str(value, rng, grow)
    if isinstance(value, bytes):
        return _mutate_str(value.decode("latin-1"), rng, grow).encode("latin-1")
    if depth > 6:
        return value
    if isinstance(value, tuple):  # often a fixed structure: keep the length, change the parts
        return tuple(mutate(v, rng, grow, depth + 1) if rng.random() < 0.6 else v for v in value)
    if isinstance(value, list) and not value:
        # No element to imitate: guess small ints or short words; a wrong guess just fails to run.
        if rng.random() < 0.3:
            return []
        make = (lambda: rng.randint(-9, 20)) if rng.random() < 0.6 else (lambda: _mutate_str("", rng, False))
        return [make() for _ in range(rng.randint(1, 8 if grow else 4))]
    if isinstance(value, list):
        items = [mutate(v, rng, False, depth + 1) if rng.random() < 0.5 else v for v in value]
        if value and grow:
            items += [mutate(rng.choice(value), rng, False, depth + 1) for _ in range(rng.randint(len(value), 2 * len(value) + 2))]
        elif value and rng.random() < 0.5:
            if rng.random() < 0.5 or len(items) < 2:
                items.insert(rng.randint(0, len(items)), mutate(rng.choice(value), rng, False, depth + 1))
            else:
                del items[rng.randrange(len(items))]
        return items
    if isinstance(value, (set, frozenset)):
        out = {mutate(v, rng, False, depth + 1) if rng.random() < 0.5 else v for v in sorted(value, key=repr)}
        if value and grow:
            out |= {mutate(v, rng, True, depth + 1) for v in sorted(value, key=repr)}
        return type(value)(out)
    if isinstance(value, dict):
        keys = list(value)
        out: dict = {}
        for k in keys:
            nk = mutate(k, rng, False, depth + 1) if rng.random() < 0.25 else k
            out[nk] = mutate(value[k], rng, False, depth + 1) if rng.random() < 0.5 else value[k]
        if keys and (grow or rng.random() < 0.3):
            for _ in range(rng.randint(len(keys), 2 * len(keys) + 2) if grow else 1):
                k = rng.choice(keys)
                out[mutate(k, rng, grow, depth + 1)] = mutate(value[k], rng, False, depth + 1)
        elif len(keys) > 1 and rng.random() < 0.3:
            del out[rng.choice(list(out))]
        return out
    return value  # None and anything else: kept


def mutate_args(args: tuple, rng: random.Random, grow: bool) -> tuple:
    """Mutate some arguments (at least one) of an argument tuple."""
    if not args:
        return args
    which = [i for i in range(len(args)) if rng.random() < 0.6] or [rng.randrange(len(args))]
    return tuple(mutate(a, rng, grow) if i in which else a for i, a in enumerate(args))


def literal_text(args: tuple) -> str | None:
    """The argument text, or None when a mutation made something that is not a literal."""
    try:
        text = render_args(args)
        parse_args(text)
        return text
    except Exception:
        return None
