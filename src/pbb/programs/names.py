"""Invented function names (zorbix_17): pronounceable, meaningless, unique within a build.

An invented name guarantees that pretraining cannot have taught the model anything
about the function: whatever it knows of `zorbix_17` it learned from our documents.
"""

from __future__ import annotations

import keyword
import random

_ONSETS = ["b", "bl", "br", "d", "dr", "f", "fl", "g", "gl", "gr", "k", "kl", "m", "n", "p", "pl", "pr", "qu",
           "s", "sk", "sn", "sp", "st", "t", "tr", "v", "w", "z", "zw", "j", "h", "l", "r", "th"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "oo", "ou", "y"]
_CODAS = ["", "", "b", "ck", "d", "g", "k", "l", "m", "n", "nk", "p", "r", "rb", "s", "t", "x", "z", "sh"]


def invented_name(rng: random.Random) -> str:
    """One name like `zorbix_17`: two or three syllables and a number."""
    syll = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.choice((2, 2, 3))))
    return f"{syll}_{rng.randrange(10, 100)}"


def invented_names(rng: random.Random, n: int, taken: set[str] | None = None) -> list[str]:
    """`n` distinct invented names, none in `taken`, none a Python keyword or builtin."""
    import builtins

    taken = set(taken or ())
    out: list[str] = []
    while len(out) < n:
        name = invented_name(rng)
        if name in taken or keyword.iskeyword(name) or hasattr(builtins, name):
            continue
        taken.add(name)
        out.append(name)
    return out
