"""Splits: programs into groups (w/ IO, w/o IO, control) and inputs into splits (train, test, ...).

Both are pure functions of their random stream. Inputs are compared by value (`1,2` and
`1, 2` are the same call), and the held-out splits are kept disjoint from every input a
model may train on: test and shifted inputs never equal a train or natural input.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable

from pbb.schema import GROUPS, HELD_OUT

SAMPLING_ORDER = ("train", "natural", "test", "shifted")
"""Training splits first, so the held-out ones can avoid them."""


TRIES_PER_INPUT = 30
"""Sampling attempts per wanted input before a distribution is declared short (a small input space)."""


def split_groups(ids: list[str], sizes: dict[str, int], rng: random.Random) -> dict[str, str]:
    """Assign `sizes[g]` of the ids to each group g, disjointly, after a seeded shuffle.

    `ids` must hold at least sum(sizes) items; the rest are left unassigned.
    """
    need = sum(sizes.get(g, 0) for g in GROUPS)
    if len(ids) < need:
        raise ValueError(f"{len(ids)} programs cannot fill groups of total size {need}")
    order = list(ids)
    rng.shuffle(order)
    out: dict[str, str] = {}
    pos = 0
    for g in GROUPS:
        for pid in order[pos : pos + sizes.get(g, 0)]:
            out[pid] = g
        pos += sizes.get(g, 0)
    return out


def input_key(text: str) -> str:
    """A canonical form of an argument list, so equal calls compare equal whatever the spacing."""
    try:
        return repr(ast.literal_eval(f"({text},)"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text.strip()


def sample_inputs(
    sampler: Callable[[random.Random, str], str], rng: random.Random, wanted: dict[str, int]
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Draw distinct inputs per distribution; held-out splits avoid every training input.

    Returns (inputs per distribution, shortfall per distribution): when the input space is too small
    the distribution keeps what exists and the shortfall says how many are missing.
    """
    inputs: dict[str, list[str]] = {}
    short: dict[str, int] = {}
    training: set[str] = set()
    for distribution in SAMPLING_ORDER:
        n = wanted.get(distribution, 0)
        if n <= 0:
            continue
        seen: set[str] = set()
        got: list[str] = []
        avoid = training if distribution in HELD_OUT else set()
        for _ in range(TRIES_PER_INPUT * n + 20):
            if len(got) == n:
                break
            text = sampler(rng, distribution)
            key = input_key(text)
            if key in seen or key in avoid:
                continue
            seen.add(key)
            got.append(text)
        inputs[distribution] = got
        if len(got) < n:
            short[distribution] = n - len(got)
        if distribution not in HELD_OUT:
            training |= seen
    return inputs, short
